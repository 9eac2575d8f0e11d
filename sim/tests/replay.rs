//! Replays one seed: `ZK_SIM_SEED=<n> cargo test -p zk-sim replay -- --nocapture`.
//!
//! The ensemble's shape can be given too, as the CLI prints it in a failure's replay
//! command: `ZK_SIM_SERVERS`, `ZK_SIM_OBSERVERS`, `ZK_SIM_CLIENTS`, `ZK_SIM_FAULTS`,
//! `ZK_SIM_SAFETY_MS`; `ZK_SIM_TRACE=<path>` writes the run's trace.
//! Without `ZK_SIM_SEED` it replays a small default seed.

use zk_sim::{FaultConfig, SimConfig};

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|error| panic!("{name}={value:?}: {error}")))
}

#[test]
fn replay() {
    let seed = env_u64("ZK_SIM_SEED").unwrap_or(1);
    let mut config = SimConfig::new(seed);
    config.voters = env_u64("ZK_SIM_SERVERS").unwrap_or(config.voters);
    config.observers = env_u64("ZK_SIM_OBSERVERS").unwrap_or(config.observers);
    config.clients = env_u64("ZK_SIM_CLIENTS").map_or(config.clients, |clients| clients as usize);
    config.safety_ms = env_u64("ZK_SIM_SAFETY_MS").unwrap_or(config.safety_ms);
    if let Ok(faults) = std::env::var("ZK_SIM_FAULTS") {
        config.faults = FaultConfig::parse(&faults).unwrap_or_else(|problem| panic!("ZK_SIM_FAULTS: {problem}"));
    }
    let trace_path = std::env::var("ZK_SIM_TRACE").ok();
    config.trace = trace_path.is_some();
    let report = zk_sim::run(config);
    if let (Some(path), Some(text)) = (&trace_path, report.trace_text()) {
        // A test may write the trace it was asked for.
        std::fs::write(path, text).unwrap_or_else(|error| panic!("cannot write {path}: {error}"));
        println!("trace written to {path}");
    }
    println!(
        "seed {seed}: {} of virtual time, {} events, {} operations, faults: {}",
        zk_sim::trace::time(report.sim_ms),
        report.stats.events,
        report.operations,
        report.faults
    );
    assert!(!report.failed(), "{}", report.describe_failure());
}
