//! The same seed gives the same run, byte for byte: the whole trace (every event with its
//! virtual time) and the report.

use zk_sim::SimConfig;

#[test]
fn the_same_seed_gives_the_same_trace_twice() {
    for (seed, voters, observers) in [(11, 3, 0), (12, 5, 1)] {
        let config = SimConfig { voters, observers, clients: 6, trace: true, ..SimConfig::new(seed) };
        let first = zk_sim::run(config.clone());
        let second = zk_sim::run(config);
        let (first_trace, second_trace) = (first.trace_text().unwrap(), second.trace_text().unwrap());
        assert!(first_trace.lines().count() > 1000, "the trace records the run");
        assert!(first_trace == second_trace, "seed {seed}: the traces differ");
        assert_eq!(first.stats, second.stats);
        assert_eq!(first.operations, second.operations);
        assert_eq!(first.violations, second.violations);
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let first = zk_sim::run(SimConfig { trace: true, ..SimConfig::new(21) });
    let second = zk_sim::run(SimConfig { trace: true, ..SimConfig::new(22) });
    assert_ne!(first.trace_text(), second.trace_text());
}
