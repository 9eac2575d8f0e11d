#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every test of the workspace (the
# simulator's seed sweeps included), the daemon's madsim test, then the real-client
# compatibility suite, which installs what it needs itself (Debian's zookeeper and
# zookeeper-bin, kazoo from PyPI).
#   ci/test.sh                  everything
#   ZKD_SKIP_COMPAT=1 ci/test.sh  skip the compatibility suite (for a quick local run)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test"
cargo test --workspace

echo "== the daemon under madsim (deterministic network, partitions, kills)"
ci/madsim.sh

if [[ ${ZKD_SKIP_COMPAT:-0} != 1 ]]; then
    echo "== compatibility: zkCli, the C client and kazoo against Apache ZooKeeper 3.8 and zkd"
    ci/compat/run.sh
fi
