//! The scenario written for the deposed leader's sync (issue 16) catches the bug it was
//! written for: with the quorum round skipped (a sync answered without a quorum that still
//! follows the leader; the leader's lease still runs from rounds a quorum really
//! confirmed), some seed of a bounded range fails the linearizability checker, and that
//! seed passes without the bug.

use std::path::PathBuf;
use zk_sim::config::PlantedBug;

#[test]
fn a_sync_answered_without_its_quorum_round_is_caught_by_the_paused_leader_scenario() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("a-leader-paused-past-an-election-with-syncs-queued.scn");
    let mut scenario = zk_scenarios::load(&path).unwrap_or_else(|error| panic!("{error}"));
    let linearizability = |outcome: &zk_scenarios::Outcome| -> Vec<u64> {
        let failures = outcome.failures.iter();
        let caught = failures.filter(|(_, violations)| violations.iter().any(|v| v.checker == "linearizability"));
        caught.map(|(seed, _)| *seed).collect()
    };
    scenario.planted = Some(PlantedBug::SyncRoundsSkipped);
    let planted = scenario.run(scenario.seeds.clone());
    let caught = linearizability(&planted);
    println!("a sync without its quorum round is caught at seeds {caught:?} of {:?}", scenario.seeds);
    assert!(!caught.is_empty(), "the planted bug is caught within the scenario's seeds:\n{planted}");
    scenario.planted = None;
    for &seed in caught.iter().take(3) {
        let clean = scenario.run(seed..seed + 1);
        assert!(!clean.failed(), "seed {seed} fails without the planted bug too:\n{clean}");
    }
}
