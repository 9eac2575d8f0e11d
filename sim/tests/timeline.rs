//! The scripted fault timeline: steps run at their exact virtual times, targets are resolved
//! when a step runs (a step with nothing to act on is skipped, not guessed), and a scripted
//! fault finds a planted bug as random ones do.

use zk_sim::config::PlantedBug;
use zk_sim::timeline::{FaultStep, RestartOrder, Target, Tear, TimedFault};
use zk_sim::{FaultConfig, SimConfig};

fn crash(target: Target, tear: Tear, restart_after_ms: Option<u64>) -> FaultStep {
    FaultStep::Crash { target, tear, restart_after_ms, order: RestartOrder::Forward, restart_gap_ms: 0 }
}

fn scripted(seed: u64, timeline: Vec<TimedFault>) -> SimConfig {
    SimConfig { faults: FaultConfig::none(), timeline, trace: true, ..SimConfig::new(seed) }
}

#[test]
fn scripted_steps_run_at_their_exact_virtual_times() {
    let timeline = vec![
        TimedFault { at_ms: 1_500, step: crash(Target::Leader, Tear::Clean, None) },
        TimedFault {
            at_ms: 2_250,
            step: FaultStep::Restart { target: Target::Crashed, order: RestartOrder::Forward, gap_ms: 0 },
        },
        TimedFault { at_ms: 3_000, step: FaultStep::Pause { target: Target::Follower, duration_ms: 400 } },
    ];
    let report = zk_sim::run(scripted(5, timeline));
    assert!(!report.failed(), "{}", report.describe_failure());
    assert_eq!((report.timeline.applied, report.timeline.skipped), (3, 0));
    let trace = report.trace_text().expect("traced");
    for time in ["1.500s SCRIPT Crash", "2.250s SCRIPT Restart", "3.000s SCRIPT Pause"] {
        assert!(trace.contains(time), "the trace shows {time:?}");
    }
    assert!(report.stats.crashes >= 1 && report.stats.restarts >= 1 && report.stats.pauses >= 1);
}

#[test]
fn a_step_whose_target_does_not_exist_is_skipped() {
    let timeline = vec![TimedFault {
        at_ms: 1_000,
        step: FaultStep::Restart { target: Target::Crashed, order: RestartOrder::Forward, gap_ms: 0 },
    }];
    let report = zk_sim::run(scripted(6, timeline));
    assert!(!report.failed(), "{}", report.describe_failure());
    assert_eq!((report.timeline.applied, report.timeline.skipped), (0, 1));
}

#[test]
fn a_step_queued_after_the_run_ends_changes_nothing() {
    // Queuing a scripted step draws nothing from the seed's random stream: a run whose only
    // step falls after its end is the run without a timeline, line for line.
    let plain = zk_sim::run(scripted(7, Vec::new()));
    assert_eq!((plain.timeline.applied, plain.timeline.skipped), (0, 0));
    let late = vec![TimedFault { at_ms: 1_000_000_000, step: crash(Target::All, Tear::Clean, None) }];
    let with_late_step = zk_sim::run(scripted(7, late));
    assert_eq!(plain.trace_text(), with_late_step.trace_text());
    assert_eq!(plain.stats, with_late_step.stats);
}

#[test]
fn planted_bug_fsync_acknowledged_before_durable_is_found_by_a_scripted_power_loss() {
    let timeline = vec![
        TimedFault {
            at_ms: 1_000,
            step: FaultStep::SlowFsync { target: Target::All, duration_ms: 3_000, fsync_ms: (50, 400) },
        },
        TimedFault {
            at_ms: 2_000,
            step: FaultStep::Crash {
                target: Target::All,
                tear: Tear::Random,
                restart_after_ms: Some(300),
                order: RestartOrder::Reverse,
                restart_gap_ms: 100,
            },
        },
    ];
    let found = (0..100).find(|&seed| {
        let config =
            SimConfig { planted: Some(PlantedBug::FsyncLies), trace: false, ..scripted(seed, timeline.clone()) };
        zk_sim::run(config).violations.iter().any(|violation| violation.checker == "zab")
    });
    assert!(found.is_some(), "a lying fsync is found within 100 seeds of a scripted power loss");
}

#[test]
fn a_scripted_corrupt_read_is_refused_and_a_full_disk_stops_the_server_until_there_is_room() {
    let timeline = vec![
        TimedFault { at_ms: 1_000, step: FaultStep::CorruptRead { target: Target::Follower, restart_after_ms: 300 } },
        TimedFault { at_ms: 2_000, step: FaultStep::DiskFull { target: Target::Leader, duration_ms: 1_000 } },
        TimedFault {
            at_ms: 2_500,
            step: FaultStep::AsymmetricPartition { group: Target::Leader, to: None, duration_ms: 1_000 },
        },
        TimedFault {
            at_ms: 3_000,
            step: FaultStep::ClockSkew {
                target: Target::All,
                duration_ms: 500,
                jump_ms: -60_000,
                rate_permille: 1_200,
            },
        },
    ];
    let report = zk_sim::run(scripted(8, timeline));
    assert!(!report.failed(), "{}", report.describe_failure());
    assert_eq!((report.timeline.applied, report.timeline.skipped), (4, 0));
    assert_eq!(report.stats.corrupt_reads_caught, 1, "the first restart read a flipped bit and was refused");
    assert!(report.stats.persists_failed >= 1, "the leader's disk refused a write");
    let trace = report.trace_text().expect("traced");
    assert!(trace.contains("refuses to start: a corrupt read of"), "the trace shows the refusal");
    assert!(trace.contains("stops: its disk is full"), "the trace shows the stop");
}
