//! The quick sweep `cargo test` runs: fixed seeds of 3- and 5-server ensembles under every
//! kind of fault, with clients running the lock and election recipes beside their
//! workload and holding watches of every kind, each of which must end without a violation. A longer sweep is the CLI:
//! `cargo run -p zk-sim --release -- --seeds 0..1000 --servers 5 --observers 1 --clients 8`.

use zk_sim::{FaultConfig, SimConfig};

fn sweep(seeds: std::ops::Range<u64>, voters: u64, observers: u64, clients: usize) {
    sweep_under(FaultConfig::all(), seeds, voters, observers, clients);
}

fn sweep_under(faults: FaultConfig, seeds: std::ops::Range<u64>, voters: u64, observers: u64, clients: usize) {
    let mut failures = Vec::new();
    for seed in seeds {
        let config = SimConfig { voters, observers, clients, faults, ..SimConfig::new(seed) };
        let report = zk_sim::run(config);
        if report.failed() {
            failures.push(report.describe_failure());
        }
    }
    assert!(failures.is_empty(), "{} seeds failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn three_servers_under_all_faults() {
    sweep(1_000..1_250, 3, 0, 4);
}

#[test]
fn five_servers_and_an_observer_under_all_faults() {
    sweep(2_000..2_100, 5, 1, 8);
}

#[test]
fn a_standalone_server_under_crashes_and_pauses() {
    sweep(3_000..3_020, 1, 0, 3);
}

#[test]
fn five_servers_under_asymmetric_partitions_clock_skew_corrupt_reads_and_full_disks() {
    let faults = FaultConfig::parse("asymmetric_partition=3,clock_skew=3,corrupt_read=2,disk_full=2,crash=1,pause=1")
        .expect("a valid fault list");
    sweep_under(faults, 4_000..4_060, 5, 1, 8);
}
