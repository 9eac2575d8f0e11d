//! zk-sim: the deterministic cluster simulator (being written).
