//! Replays every seed in `sim/regressions.txt`: seeds that once failed (or that match a
//! known, reported core issue), each with the ensemble it failed in.
//!
//! A line is `seed=N servers=N observers=N clients=N faults=SPEC [strict]  # why`.

use zk_sim::{FaultConfig, SimConfig};

fn parse(line: &str) -> Option<(SimConfig, String)> {
    let (fields, why) = line.split_once('#').map_or((line, ""), |(fields, why)| (fields, why.trim()));
    if fields.trim().is_empty() {
        return None;
    }
    let mut config = SimConfig::new(0);
    for field in fields.split_whitespace() {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        let number = || value.parse::<u64>().unwrap_or_else(|error| panic!("{field}: {error}"));
        match key {
            "seed" => config.seed = number(),
            "servers" => config.voters = number(),
            "observers" => config.observers = number(),
            "clients" => config.clients = number() as usize,
            "safety-ms" => config.safety_ms = number(),
            "faults" => config.faults = FaultConfig::parse(value).unwrap_or_else(|problem| panic!("{problem}")),
            "strict" => config.strict = true,
            _ => panic!("unknown field {field:?} in regressions.txt"),
        }
    }
    Some((config, why.to_owned()))
}

fn regressions() -> Vec<(SimConfig, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/regressions.txt");
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    text.lines().filter_map(parse).collect()
}

#[test]
fn every_seed_that_once_failed_passes() {
    let cases = regressions();
    assert!(!cases.is_empty(), "regressions.txt lists seeds");
    let mut failures = Vec::new();
    for (config, why) in cases {
        let report = zk_sim::run(config);
        if report.failed() {
            failures.push(format!("({why})\n{}", report.describe_failure()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Known core issue, reported: on a learner, a write pipelined behind a sync is answered
/// with an older zxid than the sync's reply (see `check::client_order`). Passes once core
/// answers it with a zxid no lower than any it sent before on that connection.
#[test]
#[ignore = "known core issue: a write's reply after a sync carries an older zxid (seed 246)"]
fn known_issue_write_reply_after_sync_carries_an_older_zxid() {
    let config = SimConfig {
        voters: 5,
        observers: 1,
        clients: 8,
        strict: true,
        faults: FaultConfig::all(),
        ..SimConfig::new(246)
    };
    let report = zk_sim::run(config);
    assert!(!report.failed(), "{}", report.describe_failure());
}

/// Core bug, reported: a follower that stays attached to its leader across the leader's
/// re-election (it never ran the new election: its learner re-registered with the new
/// epoch) keeps advertising its old settled vote (old round, old peer epoch) to looking
/// servers, while the leader advertises its new vote. FLE counts settled votes as agreeing
/// only with equal leader and peer epoch, so a server rejoining after a partition sees no
/// quorum and stays LOOKING forever: here server 1, 14 s after every fault healed.
#[test]
#[ignore = "core bug: a rejoining server stays LOOKING because a follower advertises a stale vote (seeds 1098, 595, 171)"]
fn core_bug_a_rejoining_server_stays_looking_behind_a_stale_follower_vote() {
    for seed in [1098, 595, 171] {
        let report = zk_sim::run(SimConfig::new(seed));
        assert!(!report.failed(), "{}", report.describe_failure());
    }
}
