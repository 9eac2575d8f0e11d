//! zk-test-support: what zk-core's test harness (`core/tests/harness`) and the simulator
//! (`zk-sim`) share, so each concept has one home.
//!
//! - [`disk`]: one server's in-memory disk — the files that survive a crash, the persist
//!   requests not yet fsynced, fsync, and a crash that drops the pending writes or keeps a
//!   prefix of them ending in a torn log append; recovery through `zk_core::ondisk::recover`.
//! - [`config`]: the `NodeConfig` both use (tickTime 100 ms and short election timings).
//!
//! It depends only on zk-core. zk-core takes it as a dev-dependency for its integration
//! tests (a dev-dependency may depend on the crate itself; the integration tests and this
//! crate link the same zk-core library, so their types agree).

pub mod config;
pub mod disk;

pub use config::test_config;
pub use disk::{CrashLoss, Disk, Files, Tear};
