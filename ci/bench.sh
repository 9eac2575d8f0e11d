#!/usr/bin/env bash
# zkd against Apache ZooKeeper 3.8, side by side on this machine, in one run: the same
# zk-bench client against each, in alternation per workload (A B A B), and one table per
# shape with the ratios zkd/ZooKeeper.
#
#   ci/bench.sh                                        everything, defaults below
#   BENCH_SECONDS=3 BENCH_ROUNDS=1 BENCH_PARTS=standalone ci/bench.sh
#
# Knobs (environment):
#   BENCH_SECONDS    measured seconds per run (10); each run also warms up for 1 s, and each
#                    server gets one unmeasured 3 s run first (JIT warm-up)
#   BENCH_ROUNDS     A B rounds per workload, medians reported (2); also failover and restart rounds
#   BENCH_WORKLOADS  "set get mixed90 create-delete multi5 sync-get watch ephemeral-churn"
#   BENCH_PARTS      any of "standalone ensemble responder memory failover" (all)
#                      standalone  one server of each, loopback
#                      ensemble    3 servers of each on loopback (tickTime 500, fsync on for both),
#                                  sessions spread round-robin over the 3
#                      responder   zk-bench's trivial responder, the ceiling of this client and
#                                  machine (1 process, and 3 for the ensemble shape)
#                      memory      ZNODES znodes of 100 B: RSS, clean stop, restart to first reply
#                      failover    3-server ensembles: SIGKILL the leader, time to the next acked write
#   BENCH_SESSIONS, BENCH_IN_FLIGHT   load shape (8 sessions x 16 requests in flight)
#   ZNODES           znodes for the memory part (1000000); see ci/bench-recovery.sh
#   BENCH_ZKD_REV    measure zkd as committed at this git revision (e.g. HEAD) rather than the
#                    working tree; see ci/bench-build.sh
# Results land in target/bench/ (raw RESULT lines and the tables).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-2}
workloads=${BENCH_WORKLOADS:-"set get mixed90 create-delete multi5 sync-get watch ephemeral-churn"}
parts=${BENCH_PARTS:-"standalone ensemble responder memory failover"}
sessions=${BENCH_SESSIONS:-8}
in_flight=${BENCH_IN_FLIGHT:-16}
out="$root/target/bench"
work=$(mktemp -d)
responder_pids=()
cleanup() {
    "$here/compat/apache-zookeeper.sh" stop "$work/apache" || true
    "$here/compat/apache-zookeeper.sh" stop "$work/apache-ensemble" || true
    "$here/compat/zkd.sh" stop "$work/zkd" || true
    "$here/compat/zkd.sh" stop "$work/zkd-ensemble" || true
    for pid in "${responder_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # The servers' data (gigabytes after the write workloads) goes with the run.
    rm -rf "$work"
}
trap cleanup EXIT
has_part() { [[ " $parts " == *" $1 "* ]]; }

"$here/compat/install-deps.sh"
{
    read -r zkd_binary
    read -r bench
    read -r zkd_origin
} < <("$here/bench-build.sh")
[[ -x ${zkd_binary:-} && -x ${bench:-} ]] || { echo "building zkd or zk-bench failed" >&2; exit 1; }
export ZKD=$zkd_binary
mkdir -p "$out"
results="$out/results.txt"
: >"$results"

machine() {
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB memory, Linux $(uname -r)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "zkd: $zkd_origin"
    echo "Apache ZooKeeper: $(dpkg-query -W -f '${Version}' zookeeper), $(java -version 2>&1 | head -1)"
    echo "load: $sessions sessions x $in_flight requests in flight, $seconds s measured after 1 s of warm-up, $rounds rounds, medians"
}
machine | tee "$out/machine.txt"

# run <shape> <label> <connect string> <workload>: one zk-bench run, its RESULT line kept.
run() {
    local shape=$1 label=$2 servers=$3 workload=$4 line
    if line=$("$bench" --server "$servers" --workload "$workload" --duration-s "$seconds" --warmup-s 1 \
        --sessions "$sessions" --in-flight "$in_flight" --label "$label" | grep '^RESULT'); then
        echo "${line/RESULT /RESULT shape=$shape }" >>"$results"
    else
        echo "RESULT shape=$shape label=$label workload=$workload failures=1" >>"$results"
        echo "zk-bench failed: $shape $label $workload" >&2
    fi
}

start_responder() {
    local port=$1
    "$bench" responder --listen "127.0.0.1:$port" 2>/dev/null &
    responder_pids+=($!)
    for _ in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the responder did not start on port $port" >&2
    return 1
}

# Below Linux's ephemeral port range (32768-60999 by default): after ephemeral-churn tens of
# thousands of client sockets sit in TIME_WAIT there, and a server port among them cannot be
# bound (a zkd ensemble once failed to start on one).
base=$((10000 + RANDOM % 5000))

# warm <connect string>: an unmeasured run first, so the JVM's JIT has compiled the hot
# paths before the first measured run (zkd needs none; it gets the same for symmetry).
warm() {
    "$bench" --server "$1" --workload mixed90 --duration-s 3 --warmup-s 0 --sessions "$sessions" \
        --in-flight "$in_flight" --label warm-up >/dev/null 2>&1 || true
}

# Standalone: one server of each (and the responder), A B C per workload, per round.
if has_part standalone || has_part responder; then
    apache_port=$base zkd_port=$((base + 10)) responder_port=$((base + 20))
    servers=()
    if has_part standalone; then
        "$here/compat/apache-zookeeper.sh" start "$apache_port" "$work/apache"
        "$here/compat/zkd.sh" standalone "$zkd_port" "$work/zkd"
        warm "127.0.0.1:$apache_port"
        warm "127.0.0.1:$zkd_port"
        servers+=(apache zkd)
    fi
    if has_part responder; then
        start_responder "$responder_port"
        servers+=(responder)
    fi
    for round in $(seq 1 "$rounds"); do
        for workload in $workloads; do
            for server in "${servers[@]}"; do
                case $server in
                apache) port=$apache_port ;;
                zkd) port=$zkd_port ;;
                responder)
                    # The responder keeps no watches: nothing would ever notify.
                    [[ $workload == watch ]] && continue
                    port=$responder_port
                    ;;
                esac
                run standalone "$server" "127.0.0.1:$port" "$workload"
            done
        done
        echo "standalone round $round of $rounds done" >&2
    done
    "$here/compat/apache-zookeeper.sh" stop "$work/apache" || true
    "$here/compat/zkd.sh" stop "$work/zkd" || true
fi

# Ensemble: 3 servers of each on loopback, both running throughout, A B per workload.
if has_part ensemble; then
    apache_base=$((base + 100)) zkd_base=$((base + 1100)) responder_base=$((base + 50))
    "$here/compat/apache-zookeeper.sh" ensemble "$apache_base" "$work/apache-ensemble"
    "$here/compat/zkd.sh" ensemble "$zkd_base" "$work/zkd-ensemble"
    apache_hosts=$("$here/compat/apache-zookeeper.sh" hosts "$work/apache-ensemble")
    zkd_hosts=$("$here/compat/zkd.sh" hosts "$work/zkd-ensemble")
    warm "$apache_hosts"
    warm "$zkd_hosts"
    ensemble_servers=(apache zkd)
    if has_part responder; then
        for offset in 0 1 2; do start_responder $((responder_base + offset)); done
        responder_hosts="127.0.0.1:$responder_base,127.0.0.1:$((responder_base + 1)),127.0.0.1:$((responder_base + 2))"
        ensemble_servers+=(responder)
    fi
    for round in $(seq 1 "$rounds"); do
        for workload in $workloads; do
            for server in "${ensemble_servers[@]}"; do
                case $server in
                apache) hosts=$apache_hosts ;;
                zkd) hosts=$zkd_hosts ;;
                responder)
                    [[ $workload == watch ]] && continue
                    hosts=$responder_hosts
                    ;;
                esac
                run ensemble "$server" "$hosts" "$workload"
            done
        done
        echo "ensemble round $round of $rounds done" >&2
    done
    "$here/compat/apache-zookeeper.sh" stop "$work/apache-ensemble" || true
    "$here/compat/zkd.sh" stop "$work/zkd-ensemble" || true
fi
for pid in "${responder_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
responder_pids=()

python3 - "$results" <<'PY' | tee "$out/load-tables.txt"
import collections, statistics, sys

rows = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.defaultdict(list)))
responder_shapes = []
for line in open(sys.argv[1]):
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    if fields["label"] == "responder" and fields["shape"] not in responder_shapes:
        responder_shapes.append(fields["shape"])
    if fields.get("failures") != "0":
        rows[fields["shape"]][fields["workload"]][fields["label"] + "-failed"].append(1)
        continue
    rows[fields["shape"]][fields["workload"]][fields["label"]].append(
        (float(fields["ops_per_s"]), int(fields["p50_us"]), int(fields["p99_us"]), int(fields["p999_us"])))

def median(runs, index):
    return statistics.median(run[index] for run in runs) if runs else None

def number(value, digits=0):
    return "n/a" if value is None else f"{value:.{digits}f}"

def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"

def ms(value):
    return None if value is None else value / 1000

names = {"standalone": "standalone (1 server each)", "ensemble": "3-server ensemble on loopback (sessions round-robin)"}
for shape in ("standalone", "ensemble"):
    if shape not in rows:
        continue
    print(f"\n{names[shape]}: ops/s and latency in ms (median of rounds); ratio = zkd / ZooKeeper;")
    print("X/ceil = X's ops/s / the trivial responder's ops/s (same client, same shape)")
    header = ("workload", "ZK ops/s", "zkd ops/s", "ratio", "ZK p50", "zkd p50", "ZK p99", "zkd p99", "ratio",
              "ZK p99.9", "zkd p99.9", "resp ops/s", "ZK/ceil", "zkd/ceil")
    widths = (16, 10, 10, 6, 8, 8, 8, 8, 6, 10, 10, 11, 8, 9)
    print("".join(f"{h:>{w}}" if i else f"{h:<{w}}" for i, (h, w) in enumerate(zip(header, widths))))
    for workload, by_server in rows[shape].items():
        zk, zkd, responder = by_server["apache"], by_server["zkd"], by_server["responder"]
        zk_ops, zkd_ops, responder_ops = median(zk, 0), median(zkd, 0), median(responder, 0)
        cells = (
            workload, number(zk_ops), number(zkd_ops), ratio(zkd_ops, zk_ops),
            number(ms(median(zk, 1)), 2), number(ms(median(zkd, 1)), 2),
            number(ms(median(zk, 2)), 2), number(ms(median(zkd, 2)), 2), ratio(median(zkd, 2), median(zk, 2)),
            number(ms(median(zk, 3)), 2), number(ms(median(zkd, 3)), 2),
            number(responder_ops), ratio(zk_ops, responder_ops), ratio(zkd_ops, responder_ops),
        )
        print("".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, w) in enumerate(zip(cells, widths))))
        failed = [k.removesuffix("-failed") for k in by_server if k.endswith("-failed")]
        if failed:
            print(f"  (runs failed for: {', '.join(failed)}; see stderr)")

for shape in responder_shapes:
    by_workload = rows[shape]
    print(f"\ntrivial responder, {shape} shape (no tree, no storage): the ceiling of this client on this machine")
    print(f"{'workload':<16}{'ops/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'p99.9 ms':>9}")
    for workload, by_server in by_workload.items():
        runs = by_server["responder"]
        if not runs:
            print(f"{workload:<16}{'n/a':>10}")
            continue
        print(f"{workload:<16}{number(median(runs, 0)):>10}{number(ms(median(runs, 1)), 2):>8}"
              f"{number(ms(median(runs, 2)), 2):>8}{number(ms(median(runs, 3)), 2):>9}")
PY

if has_part memory || has_part failover; then
    ZK_BENCH=$bench BENCH_SKIP_BUILD=1 BENCH_ROUNDS=$rounds BENCH_PARTS=$parts "$here/bench-recovery.sh"
fi
