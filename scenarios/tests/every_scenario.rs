//! Runs every scenario in `scenarios/*.scn` over its seeds. Each must end without a
//! violation, and its outcome (seeds run, faults injected, operations checked, violations:
//! deterministic figures only) is kept as an insta snapshot, so a change of behaviour under
//! a scenario shows up in review.

use std::path::PathBuf;

fn scenario_files() -> Vec<PathBuf> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "scn"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_passes_over_its_seeds() {
    let files = scenario_files();
    assert!(files.len() >= 10, "the scenarios are there: {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let scenario = zk_scenarios::load(file).unwrap_or_else(|error| panic!("{error}"));
        let outcome = scenario.run(scenario.seeds.clone());
        assert!(outcome.steps_applied > 0, "{}: the timeline did something", scenario.name);
        if outcome.failed() {
            let relative = format!("scenarios/{}.scn", scenario.name);
            let replays: Vec<String> =
                outcome.failures.iter().map(|(seed, _)| scenario.replay_command(&relative, *seed)).collect();
            failures.push(format!("{outcome}{}", replays.join("\n")));
        }
        insta::assert_snapshot!(scenario.name.clone(), outcome.to_string());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
