#!/usr/bin/env bash
# Memory and recovery, zkd against Apache ZooKeeper 3.8 on this machine; one server runs at
# a time, so neither competes with the other.
#
#   memory    standalone: populate ZNODES znodes of 100 B (zk-bench's populate workload, many
#             creates in flight, /zk-bench/populate/pNNNN/cNNNNNNN, 1000 children per parent);
#             VmRSS of the server process (for ZooKeeper, the java process) idle and full; stop
#             it cleanly (SIGTERM) and time the exit; then BENCH_ROUNDS times, alternating,
#             start it again and time from the start command to the first exists() of the
#             last znode written that succeeds (zk-bench probe, a new attempt every 2 ms).
#   failover  3-server ensembles (tickTime 500): a writer on a survivor keeps 8 setData in
#             flight, the leader (srvr: "Mode: leader") is SIGKILLed, and the figure is the time
#             from the kill to the first acknowledged write sent once it is dead; the writer resumes
#             its session on a survivor when its connection drops. BENCH_ROUNDS rounds, A B.
#
#   ZNODES=1000000 BENCH_ROUNDS=2 BENCH_PARTS="memory failover" ci/bench-recovery.sh
# ci/bench.sh calls it for its memory and failover parts (with ZKD, ZK_BENCH and BENCH_SKIP_BUILD=1 set);
# run alone, it builds as ci/bench.sh does (BENCH_ZKD_REV included).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
znodes=${ZNODES:-1000000}
rounds=${BENCH_ROUNDS:-2}
parts=${BENCH_PARTS:-"memory failover"}
out="$root/target/bench"
work=$(mktemp -d)
cleanup() {
    for server in apache zkd; do
        "$(control "$server")" stop "$work/$server" || true
        for round in $(seq 1 "$rounds"); do "$(control "$server")" stop "$work/$server-ensemble-$round" || true; done
    done
    rm -rf "$work"
}
control() { if [[ $1 == apache ]]; then echo "$here/compat/apache-zookeeper.sh"; else echo "$here/compat/zkd.sh"; fi; }
trap cleanup EXIT
has_part() { [[ " $parts " == *" $1 "* ]]; }

if [[ -z ${BENCH_SKIP_BUILD:-} ]]; then
    "$here/compat/install-deps.sh"
    {
        read -r zkd_binary
        read -r bench
        read -r zkd_origin
    } < <("$here/bench-build.sh")
    [[ -x ${zkd_binary:-} && -x ${bench:-} ]] || { echo "building zkd or zk-bench failed" >&2; exit 1; }
    export ZKD=$zkd_binary
    echo "zkd: $zkd_origin" >&2
else
    bench=${ZK_BENCH:-$root/target/release/zk-bench}
fi
mkdir -p "$out"
figures="$out/recovery-results.txt"
: >"$figures"

figure() { echo "FIGURE server=$1 name=$2 value=$3" | tee -a "$figures" >&2; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
now_ns() { date +%s%N; }

# Waits until the process has exited (gone, or a zombie nobody reaped yet).
wait_exit() {
    local pid=$1
    for _ in $(seq 1 6000); do
        [[ -e /proc/$pid ]] || return 0
        [[ $(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) == Z ]] && return 0
        sleep 0.01
    done
    echo "process $pid did not exit within 60 s" >&2
    return 1
}

# stop_clean <server> <dir> <figure>: SIGTERM, wait for the exit, record how long it took.
stop_clean() {
    local server=$1 dir=$2 name=$3 pid started
    pid=$("$(control "$server")" pid "$dir")
    started=$(now_ns)
    kill "$pid"
    wait_exit "$pid"
    figure "$server" "$name" $((($(now_ns) - started) / 1000000))
}

# Below the ephemeral port range, as in ci/bench.sh (ports up to base + ~1000 per round).
base=$((17000 + RANDOM % 3000))

if has_part memory; then
    last=$(printf '/zk-bench/populate/p%04d/c%07d' $(((znodes - 1) / 1000)) $((znodes - 1)))
    port=$base
    for server in apache zkd; do
        port=$((port + 10))
        echo "$port" >"$work/$server.port"
        if [[ $server == apache ]]; then
            "$here/compat/apache-zookeeper.sh" start "$port" "$work/apache"
        else
            "$here/compat/zkd.sh" standalone "$port" "$work/zkd"
        fi
        pid=$("$(control "$server")" pid "$work/$server")
        sleep 1
        figure "$server" rss_idle_kib "$(rss_kib "$pid")"
        line=$("$bench" --server "127.0.0.1:$port" --workload populate --znodes "$znodes" --value-bytes 100 \
            --sessions 8 --in-flight 64 --label "$server" | grep '^RESULT')
        fields=${line#RESULT }
        for field in $fields; do
            case $field in
            ops_per_s=*) figure "$server" populate_per_s "${field#*=}" ;;
            seconds=*) figure "$server" populate_s "${field#*=}" ;;
            esac
        done
        sleep 2
        figure "$server" rss_full_kib "$(rss_kib "$pid")"
        if [[ $server == apache ]] && command -v jcmd >/dev/null; then
            # What the JVM keeps after a full collection, for context: RSS above counts
            # garbage and heap the JVM has not returned.
            jcmd "$pid" GC.run >/dev/null 2>&1 || true
            sleep 1
            figure "$server" rss_after_full_gc_kib "$(rss_kib "$pid")"
        fi
        figure "$server" data_dir_kib "$(du -sk "$work/$server" | cut -f1)"
        stop_clean "$server" "$work/$server" stop_full_ms
    done
    for round in $(seq 1 "$rounds"); do
        for server in apache zkd; do
            port=$(cat "$work/$server.port")
            started=$(now_ns)
            "$(control "$server")" restart "$work/$server" >/dev/null 2>&1 &
            starter=$!
            line=$("$bench" probe --server "127.0.0.1:$port" --path "$last" --timeout-s 600 --label "$server")
            ready=${line##*ready_unix_ns=}
            ready=${ready%% *}
            figure "$server" restart_ms $(((ready - started) / 1000000))
            wait "$starter" || true
            pid=$("$(control "$server")" pid "$work/$server")
            figure "$server" rss_restarted_kib "$(rss_kib "$pid")"
            stop_clean "$server" "$work/$server" stop_ms
        done
    done
fi

if has_part failover; then
    for round in $(seq 1 "$rounds"); do
        for server in apache zkd; do
            dir="$work/$server-ensemble-$round"
            # A quiet disk for each round: the memory part may leave gigabytes to write
            # back, and a failover's fsyncs (epoch files, the sync with the new leader) should
            # not wait behind them for whichever server comes first.
            sync
            # Fresh ports every round: no listener waits on a port of the previous round.
            first=$((base + 100 + round * 1000))
            [[ $server == zkd ]] && first=$((first + 500))
            "$(control "$server")" ensemble "$first" "$dir"
            leader=""
            for _ in $(seq 1 100); do
                leader=$("$(control "$server")" leader "$dir") && break
                sleep 0.1
            done
            survivors=()
            for id in 1 2 3; do
                [[ $id == "$leader" ]] || survivors+=("127.0.0.1:$(cat "$dir/$id/port")")
            done
            pid=$("$(control "$server")" pid "$dir" "$leader")
            if line=$("$bench" failover --server "$(
                IFS=,
                echo "${survivors[*]}"
            )" --kill-pid "$pid" --kill-after-s 3 --timeout-s 60 --label "$server" | grep '^RESULT'); then
                value=${line##*recovered_ms=}
                figure "$server" failover_ms "${value%% *}"
            else
                echo "failover measurement failed for $server (round $round)" >&2
            fi
            "$(control "$server")" stop "$dir" || true
            for id in 1 2 3; do [[ -f $dir/$id/pid ]] && wait_exit "$(cat "$dir/$id/pid")"; done
        done
    done
fi

python3 - "$figures" "$znodes" <<'PY' | tee "$out/recovery-tables.txt"
import collections, statistics, sys

values = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    values[fields["name"]][fields["server"]].append(float(fields["value"]))
znodes = int(sys.argv[2])

def median(name, server):
    runs = values[name][server]
    return statistics.median(runs) if runs else None

rows = [
    ("populate rate (znodes/s)", "populate_per_s", 1, 0),
    ("populate time (s)", "populate_s", 1, 1),
    ("RSS idle (MiB)", "rss_idle_kib", 1024, 0),
    (f"RSS with {znodes} znodes (MiB)", "rss_full_kib", 1024, 0),
    ("  after a full GC (MiB)", "rss_after_full_gc_kib", 1024, 0),
    ("data dir on disk (MiB)", "data_dir_kib", 1024, 0),
    ("clean stop right after populating (ms)", "stop_full_ms", 1, 0),
    ("restart to first reply (ms)", "restart_ms", 1, 0),
    ("clean stop after the restart (ms)", "stop_ms", 1, 0),
    ("RSS after restart (MiB)", "rss_restarted_kib", 1024, 0),
    ("failover: kill -9 leader to next ack (ms)", "failover_ms", 1, 0),
]
print(f"\nmemory and recovery (medians; restart and failover over rounds): ratio = zkd / ZooKeeper")
print(f"{'figure':<44}{'ZooKeeper':>11}{'zkd':>11}{'ratio':>8}")
for title, name, scale, digits in rows:
    if name not in values:
        continue
    zk, zkd = median(name, "apache"), median(name, "zkd")
    cell = lambda v: "n/a" if v is None else f"{v / scale:.{digits}f}"
    ratio = "n/a" if zk in (None, 0) or zkd is None else f"{zkd / zk:.2f}"
    print(f"{title:<44}{cell(zk):>11}{cell(zkd):>11}{ratio:>8}")
if values["rss_full_kib"]:
    for server in ("apache", "zkd"):
        full, idle = median("rss_full_kib", server), median("rss_idle_kib", server)
        if full is not None and idle is not None:
            print(f"{server}: {(full - idle) * 1024 / znodes:.0f} bytes of RSS per znode of 100 B (full minus idle)")
for name in ("restart_ms", "failover_ms"):
    for server in ("apache", "zkd"):
        if values[name][server]:
            print(f"{name} {server} runs: {', '.join(f'{v:.0f}' for v in values[name][server])}")
PY
