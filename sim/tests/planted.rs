//! The checkers catch planted bugs end to end: each bug is switched on in the simulator's
//! own driver or clients (core is never touched), and a bounded number of seeds must find
//! it, reported by the checker that guards that property. (Seeds where only another
//! checker objects are passed over.)

use zk_sim::config::PlantedBug;
use zk_sim::{FaultConfig, SimConfig};

/// The first seed of `seeds` whose run `checker` objects to, with the planted bug on.
fn found_by(bug: PlantedBug, faults: &str, seeds: std::ops::Range<u64>, checker: &str) -> Option<u64> {
    seeds.into_iter().find(|&seed| {
        let config =
            SimConfig { planted: Some(bug), faults: FaultConfig::parse(faults).unwrap(), ..SimConfig::new(seed) };
        zk_sim::run(config).violations.iter().any(|violation| violation.checker == checker)
    })
}

#[test]
fn planted_bug_fsync_acknowledged_before_durable_loses_committed_txns() {
    let found = found_by(PlantedBug::FsyncLies, "power_loss=3,slow_fsync=3,crash=1", 0..200, "zab");
    assert!(found.is_some(), "a lying fsync is found within 200 seeds");
}

#[test]
fn planted_bug_sync_skipped_serves_stale_reads() {
    let faults = "latency_spike=3,slow_fsync=2,isolate_leader=1";
    let found = found_by(PlantedBug::SyncSkipped, faults, 0..200, "linearizability");
    assert!(found.is_some(), "a skipped sync is found within 200 seeds");
}

#[test]
fn planted_bug_a_connection_that_reorders_frames_breaks_client_order() {
    let found = found_by(PlantedBug::ServerFramesReordered, "latency_spike=4", 0..200, "client-order");
    assert!(found.is_some(), "reordered frames are found within 200 seeds");
}
