//! Replays every seed in `sim/regressions.txt`: seeds that once failed, each with the
//! ensemble it failed in and why (the bug it found, since fixed).
//!
//! A line is `seed=N servers=N observers=N clients=N faults=SPEC  # why`.

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
