#!/usr/bin/env bash
# Builds what ci/bench.sh and ci/bench-recovery.sh run, and prints three lines: the zkd
# binary to measure, the zk-bench binary, and where zkd came from.
#   default              both from the working tree.
#   BENCH_ZKD_REV=<rev>  zkd from a clean export of that git revision, and zk-bench from the
#                        working tree's bench/ built against that revision's zk-core (in
#                        target/bench/), so the figures belong to a commit whatever is being
#                        edited in the working tree meanwhile.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -n ${BENCH_ZKD_REV:-} ]]; then
    rev=$(git -C "$root" rev-parse --short "$BENCH_ZKD_REV")
    src="$root/target/bench/src-$rev"
    if [[ ! -f $src/Cargo.toml ]]; then
        rm -rf "$src" && mkdir -p "$src"
        git -C "$root" archive "$rev" | tar -x -C "$src"
    fi
    rm -rf "$src/bench" && cp -r "$root/bench" "$src/bench"
    target="$root/target/bench/rev-target"
    (cd "$src" && CARGO_TARGET_DIR="$target" cargo build --release -q -p zk-runtime-tokio -p zk-bench) >&2
    echo "$target/release/zkd"
    echo "$target/release/zk-bench"
    echo "commit $rev ($(git -C "$root" log -1 --format=%cs "$rev"), clean export)"
else
    (cd "$root" && cargo build --release -q -p zk-runtime-tokio -p zk-bench) >&2
    dirty=""
    git -C "$root" diff --quiet HEAD -- core runtime-tokio || dirty=", with uncommitted changes in core/ or runtime-tokio/"
    echo "$root/target/release/zkd"
    echo "$root/target/release/zk-bench"
    echo "working tree at $(git -C "$root" rev-parse --short HEAD)$dirty"
fi
