#!/usr/bin/env bash
# zkd against Apache ZooKeeper 3.8, side by side on this machine, standalone: the same
# zk-bench load against each, in alternation (A B A B), and a table of the ratios.
#   BENCH_SECONDS=10 BENCH_ROUNDS=2 ci/bench.sh
# The ensemble comparison, the trivial-responder ceiling, memory and recovery figures are
# issue 6's remaining work.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-2}
workloads=${BENCH_WORKLOADS:-"set get mixed90 create-delete multi5 watch ephemeral-churn"}
work=$(mktemp -d)
trap '"$here/compat/apache-zookeeper.sh" stop "$work/apache" || true; "$here/compat/zkd.sh" stop "$work/zkd" || true' EXIT

"$here/compat/install-deps.sh"
(cd "$root" && cargo build --release -q -p zk-runtime-tokio -p zk-bench)
bench="$root/target/release/zk-bench"

apache_port=$((30000 + RANDOM % 5000))
zkd_port=$((apache_port + 10))
"$here/compat/apache-zookeeper.sh" start "$apache_port" "$work/apache"
"$here/compat/zkd.sh" standalone "$zkd_port" "$work/zkd"

results="$work/results.txt"
for round in $(seq 1 "$rounds"); do
    for workload in $workloads; do
        for server in apache zkd; do
            port=$apache_port
            [[ $server == zkd ]] && port=$zkd_port
            "$bench" --server "127.0.0.1:$port" --workload "$workload" --duration-s "$seconds" --warmup-s 1 \
                --label "$server" | grep '^RESULT' >>"$results"
        done
    done
    echo "round $round of $rounds done" >&2
done

python3 - "$results" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    rows[fields["workload"]][fields["label"]].append((float(fields["ops_per_s"]), int(fields["p99_us"])))
print(f"{'workload':<16}{'ZooKeeper ops/s':>16}{'zkd ops/s':>12}{'ratio':>8}{'ZK p99 ms':>11}{'zkd p99 ms':>12}{'ratio':>8}")
for workload, by_server in rows.items():
    zk_ops = statistics.median(r[0] for r in by_server["apache"])
    zkd_ops = statistics.median(r[0] for r in by_server["zkd"])
    zk_p99 = statistics.median(r[1] for r in by_server["apache"]) / 1000
    zkd_p99 = statistics.median(r[1] for r in by_server["zkd"]) / 1000
    print(f"{workload:<16}{zk_ops:>16.0f}{zkd_ops:>12.0f}{zkd_ops / zk_ops:>8.2f}{zk_p99:>11.2f}{zkd_p99:>12.2f}{zkd_p99 / max(zk_p99, 0.001):>8.2f}")
PY
