#!/usr/bin/env bash
# The ZooKeeper C client against a server: cli_mt in batch mode (one session per command,
# compared with c-client-expected.txt, recorded against Apache ZooKeeper 3.8.0), then
# load_gen's create/read/delete cycles for a few seconds with no client error.
#   c-client.sh <host:port> [load seconds, default 5]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
server=$1
seconds=${2:-5}
bin=/usr/lib/zookeeper/bin
actual=$(mktemp)
commands=("create /cmt" "set /cmt hello" "get /cmt" "ls /" "exists /cmt" "create /cmt" "delete /cmt" "exists /cmt")
for command in "${commands[@]}"; do
    echo "== $command"
    # Session ids, timings and log lines differ from server to server; the results do not.
    timeout 20 "$bin/cli_mt" -h "$server" -c "$command" 2>&1 |
        grep -v -E '^$|^Batch mode|^Watcher SESSION_EVENT|^Got a new session id|^time = |ZOO_(INFO|DEBUG)' |
        sed -E 's/(ctime|mtime) ?= ?.*/\1 = <time>/; s/(czxid|mzxid|pzxid)=[0-9a-fx]+/\1=<zxid>/g' || true
done >"$actual"
if ! diff -u "$here/c-client-expected.txt" "$actual"; then
    echo "cli_mt against $server differs from Apache ZooKeeper's (above; - expected, + actual)" >&2
    exit 1
fi
rm -f "$actual"
echo "cli_mt against $server: as expected"

log=$(mktemp)
timeout "$seconds" "$bin/load_gen" "$server" /loadgen 50 >"$log" 2>&1 || true
cycles=$(grep -c "Starting the delete cycle" "$log" || true)
if grep -q ZOO_ERROR "$log" || [[ $cycles -lt 1 ]]; then
    tail -20 "$log" >&2
    echo "load_gen against $server: $cycles full cycles, errors above" >&2
    exit 1
fi
timeout 60 "$bin/load_gen" "$server" /loadgen clean >/dev/null 2>&1 || true
rm -f "$log"
echo "load_gen against $server: $cycles create/read/delete cycles of 50 nodes in ${seconds}s, no error"
