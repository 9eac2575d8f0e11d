//! zk-runtime-tokio: the zkd daemon (being written).
