//! The node configuration of tests and simulated runs.

use zk_core::node::NodeConfig;
use zk_core::session::SessionConfig;
use zk_core::zab::ServerId;

/// Test timing: tickTime 100 ms (session timeouts from 200 ms to 2 s), finalizeWait 20 ms,
/// election notifications resent at most every 400 ms, containers checked every second.
/// Everything else (initLimit, syncLimit, snapshot and history sizes, …) is
/// `NodeConfig::ensemble`'s default; the simulator draws its own sizes on top.
pub fn test_config(server_id: ServerId, voters: &[ServerId], observers: &[ServerId]) -> NodeConfig {
    let mut config =
        NodeConfig::ensemble(server_id, voters.iter().copied().collect(), observers.iter().copied().collect());
    config.session = SessionConfig::from_tick_time(100);
    config.election_finalize_wait_ms = 20;
    config.election_resend_interval_ms_max = 400;
    config.container_check_interval_ms = 1000;
    config
}
