//! The quick sweep `cargo test` runs: fixed seeds of 3- and 5-server ensembles under every
//! kind of fault, each of which must end without a violation. A longer sweep is the CLI:
//! `cargo run -p zk-sim --release -- --seeds 0..1000 --servers 5 --observers 1 --clients 8`.

use zk_sim::{FaultConfig, SimConfig};

fn sweep(seeds: std::ops::Range<u64>, voters: u64, observers: u64, clients: usize) {
    let mut failures = Vec::new();
    for seed in seeds {
        let config = SimConfig { voters, observers, clients, faults: FaultConfig::all(), ..SimConfig::new(seed) };
        let report = zk_sim::run(config);
        if report.failed() {
            failures.push(report.describe_failure());
        }
    }
    assert!(failures.is_empty(), "{} seeds failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn three_servers_under_all_faults() {
    sweep(1_000..1_150, 3, 0, 4);
}

#[test]
fn five_servers_and_an_observer_under_all_faults() {
    sweep(2_000..2_060, 5, 1, 8);
}

#[test]
fn a_standalone_server_under_crashes_and_pauses() {
    sweep(3_000..3_020, 1, 0, 3);
}
