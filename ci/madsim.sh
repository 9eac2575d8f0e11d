#!/usr/bin/env bash
# zkd in madsim's deterministic simulation: the daemon's own socket, framing, timer and
# reconnect code (built with `--cfg madsim`, madsim-tokio in place of tokio, files in
# memory) runs a 3-server ensemble and a client through a partition of the leader, a kill
# and restart, and checks that it keeps serving and loses no acknowledged write
# (runtime-tokio/tests/madsim.rs). Its own target dir, so the normal build is not redone.
#   ci/madsim.sh                                    seeds 1..3
#   MADSIM_SEEDS=200 ci/madsim.sh                   more seeds (each takes milliseconds)
#   MADSIM_TEST_SEED=42 MADSIM_SEEDS=1 ci/madsim.sh replay one seed (a failure prints its seed)
#   RUST_LOG=info ci/madsim.sh                      with zkd's logs, in simulated time
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=${MADSIM_SEEDS:-3}
first=${MADSIM_TEST_SEED:-1}
if ! [[ $seeds =~ ^[0-9]+$ && $first =~ ^[0-9]+$ ]]; then
    echo "MADSIM_SEEDS and MADSIM_TEST_SEED must be numbers" >&2
    exit 2
fi

echo "== madsim: zkd ensemble, partition and kill, seeds $first..$((first + seeds - 1))"
RUSTFLAGS="${RUSTFLAGS:-} --cfg madsim" MADSIM_TEST_SEED="$first" MADSIM_TEST_NUM="$seeds" \
    cargo test -p zk-runtime-tokio --test madsim --target-dir target/madsim -- --nocapture
