//! The scenario parser: what it reads, and errors that name the file and the line.

use super::*;

fn parsed(text: &str) -> Scenario {
    parse("test.scn", "test", text).unwrap_or_else(|error| panic!("{error}"))
}

fn error(text: &str) -> String {
    parse("bad.scn", "bad", text).expect_err("the text is rejected").to_string()
}

#[test]
fn the_example_scenario_parses_into_a_timeline() {
    let scenario = parsed(
        "# Leader loss under write load\n\
         ensemble 5 voters 0 observers\n\
         clients 8\n\
         seeds 20\n\
         at 2s crash leader\n\
         at 6s restart crashed\n\
         at 10s partition {1, 2} from rest for 8s\n\
         check all\n",
    );
    assert_eq!(scenario.title, "Leader loss under write load");
    assert_eq!((scenario.voters, scenario.observers, scenario.clients), (5, 0, 8));
    assert_eq!(scenario.seeds, 0..20);
    assert_eq!(scenario.run_ms, 20_000, "2 s after the partition ends");
    assert_eq!(
        scenario.checkers,
        vec!["client-order", "election", "linearizability", "liveness", "lock", "sessions", "watches", "zab"]
    );
    assert_eq!(
        scenario.timeline,
        vec![
            TimedFault {
                at_ms: 2_000,
                step: FaultStep::Crash {
                    target: Target::Leader,
                    tear: Tear::Random,
                    restart_after_ms: None,
                    order: RestartOrder::Forward,
                    restart_gap_ms: 0
                }
            },
            TimedFault {
                at_ms: 6_000,
                step: FaultStep::Restart { target: Target::Crashed, order: RestartOrder::Forward, gap_ms: 0 }
            },
            TimedFault {
                at_ms: 10_000,
                step: FaultStep::Partition { group: Target::Servers(vec![1, 2]), from: None, duration_ms: 8_000 }
            },
        ]
    );
}

#[test]
fn every_step_form_parses() {
    let scenario = parsed(
        "ensemble 3 voters 1 observer\n\
         run 30s\n\
         faults crash,pause=2\n\
         at 1.5s isolate the leader for 3s\n\
         at 2s flap leader with a follower 4 times every 250ms\n\
         at 3s crash a quorum torn for 2s restart reverse every 300ms\n\
         at 4s pause server 2 for 5s\n\
         at 5s slow-fsync leader for 4s fsync 100ms..900ms\n\
         at 6s latency-spike all for 1s\n\
         at 7s crash all clean\n\
         at 8s restart crashed reverse every 100ms\n\
         check zab linearizable\n",
    );
    assert_eq!(scenario.run_ms, 30_000);
    assert_eq!(scenario.faults.weight(zk_sim::FaultKind::Crash), 1);
    assert_eq!(scenario.checkers, vec!["linearizability", "zab"]);
    assert_eq!(scenario.timeline.len(), 8);
    assert_eq!(scenario.timeline[0].at_ms, 1_500);
    assert_eq!(
        scenario.timeline[1].step,
        FaultStep::Flap { a: Target::Leader, b: Some(Target::Follower), times: 4, period_ms: 250 }
    );
    assert_eq!(
        scenario.timeline[2].step,
        FaultStep::Crash {
            target: Target::Quorum,
            tear: Tear::Torn,
            restart_after_ms: Some(2_000),
            order: RestartOrder::Reverse,
            restart_gap_ms: 300
        }
    );
    assert_eq!(
        scenario.timeline[4].step,
        FaultStep::SlowFsync { target: Target::Leader, duration_ms: 4_000, fsync_ms: (100, 900) }
    );
}

#[test]
fn the_new_fault_steps_parse() {
    let scenario = parsed(
        "ensemble 5 voters\n\
         at 1s one-way leader to rest for 2s\n\
         at 2s one-way {1,2} to {3} for 1s\n\
         at 3s clock-skew follower for 4s jump -45s rate 90%\n\
         at 4s clock-skew all for 1s\n\
         at 5s corrupt-read a follower\n\
         at 6s corrupt-read leader for 2s\n\
         at 7s disk-full leader for 1.5s\n\
         check watches lock election\n",
    );
    assert_eq!(scenario.checkers, vec!["election", "lock", "watches"]);
    let steps: Vec<&FaultStep> = scenario.timeline.iter().map(|timed| &timed.step).collect();
    assert_eq!(
        steps,
        vec![
            &FaultStep::AsymmetricPartition { group: Target::Leader, to: None, duration_ms: 2_000 },
            &FaultStep::AsymmetricPartition {
                group: Target::Servers(vec![1, 2]),
                to: Some(Target::Servers(vec![3])),
                duration_ms: 1_000
            },
            &FaultStep::ClockSkew {
                target: Target::Follower,
                duration_ms: 4_000,
                jump_ms: -45_000,
                rate_permille: 900
            },
            &FaultStep::ClockSkew { target: Target::All, duration_ms: 1_000, jump_ms: 30_000, rate_permille: 1000 },
            &FaultStep::CorruptRead { target: Target::Follower, restart_after_ms: 500 },
            &FaultStep::CorruptRead { target: Target::Leader, restart_after_ms: 2_000 },
            &FaultStep::DiskFull { target: Target::Leader, duration_ms: 1_500 },
        ]
    );
    assert_eq!(
        error("at 1s clock-skew leader for 1s rate 5%\ncheck all\n"),
        "bad.scn:1: a clock rate lies between 50% and 200%"
    );
    assert_eq!(
        error("at 1s one-way leader from rest for 1s\ncheck all\n"),
        "bad.scn:1: expected `one-way TARGET to rest|TARGET for DURATION`"
    );
}

#[test]
fn errors_name_the_file_and_the_line() {
    assert_eq!(
        error("ensemble 3 voters\n\nat 2s explode leader\ncheck all\n"),
        "bad.scn:3: unknown step \"explode\"; expected partition, isolate, flap, crash, restart, pause, slow-fsync, \
         latency-spike, one-way, clock-skew, corrupt-read or disk-full"
    );
    assert_eq!(error("at 2 crash leader\n"), "bad.scn:1: expected a duration such as 250ms, 2s or 1.5s, found \"2\"");
    assert_eq!(
        error("ensemble 3 voters\nat 2s crash 7\ncheck all\n"),
        "bad.scn:2: server 7 does not exist: the ensemble has servers 1..=3"
    );
    assert_eq!(
        error("check everything\n"),
        "bad.scn:1: unknown property \"everything\"; known: all, zab, linearizable, sessions, client-order, liveness, watches, lock, election"
    );
    assert_eq!(
        error("at 1s pause leader\ncheck all\n"),
        "bad.scn:1: expected `for DURATION` after the target of `pause`"
    );
    assert_eq!(
        error("at 1s crash leader\n"),
        "bad.scn: no `check` line: name the properties to check, e.g. `check all`"
    );
    assert_eq!(
        error("run 5s\nat 6s crash leader\ncheck all\n"),
        "bad.scn:2: this step at 6000 ms comes after the fault phase ends (`run` at line 1 says 5000 ms)"
    );
    assert_eq!(
        error("colour blue\n"),
        "bad.scn:1: unknown directive \"colour\"; expected ensemble, clients, seeds, run, faults, workload, at or check"
    );
    assert_eq!(
        error("workload writes-only\ncheck all\n"),
        "bad.scn:1: unknown workload \"writes-only\"; expected mixed or read-heavy"
    );
    assert_eq!(
        error("at 1s crash leader for 2s sideways\ncheck all\n"),
        "bad.scn:1: unexpected \"sideways\" at the end of the step"
    );
}

#[test]
fn a_missing_file_is_named() {
    let error = load(std::path::Path::new("no/such/file.scn")).expect_err("missing");
    assert_eq!((error.file.as_str(), error.line), ("no/such/file.scn", 0));
    assert!(error.to_string().starts_with("no/such/file.scn: cannot read"));
}

#[test]
fn a_workload_line_sets_the_clients_workload() {
    let scenario = parsed("workload read-heavy\nat 1s pause leader for 1s\ncheck all\n");
    assert_eq!(scenario.workload, zk_sim::config::Workload::ReadHeavy);
    assert_eq!(scenario.config(7).workload, zk_sim::config::Workload::ReadHeavy);
    assert_eq!(parsed("at 1s pause leader for 1s\ncheck all\n").workload, zk_sim::config::Workload::Mixed);
}
