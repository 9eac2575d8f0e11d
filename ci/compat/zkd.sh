#!/usr/bin/env bash
# Runs zkd servers on loopback for the compatibility suite.
#   zkd.sh standalone <client port> <dir>         start one standalone server
#   zkd.sh ensemble <first client port> <dir>     write configs for 3 servers and start them
#   zkd.sh start <dir> <id>                       (re)start server <id> of an ensemble
#   zkd.sh restart <dir> [<id>]                   start again the standalone server in <dir> (or
#                                                 server <id> of the ensemble in <dir>), keeping its data
#   zkd.sh pid <dir> [<id>]                       print the server's process id
#   zkd.sh kill9 <dir> <id>                       SIGKILL server <id>
#   zkd.sh leader <dir>                           print the id of the serving leader
#   zkd.sh stop <dir>                             SIGTERM every server under <dir>
#   zkd.sh hosts <dir>                            print the ensemble's host:port list
# Each call returns once the servers it started serve (srvr reports a mode).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
zkd=${ZKD:-$root/target/release/zkd}

# shellcheck source=servers-common.sh
source "$(dirname "$0")/servers-common.sh"

wait_serving() {
    local port=$1
    for _ in $(seq 1 150); do
        [[ $(srvr "$port") == *"Mode: "* ]] && return 0
        sleep 0.1
    done
    echo "zkd on port $port did not start serving" >&2
    return 1
}

launch() {
    local config=$1 dir=$2
    "$zkd" "$config" >>"$dir/zkd.log" 2>&1 &
    echo $! >"$dir/pid"
}

action=$1
case "$action" in
standalone)
    port=$2 dir=$3
    rm -rf "$dir" && mkdir -p "$dir/data"
    printf '%s\n' "tickTime=2000" "dataDir=$dir/data" "clientPort=$port" "clientPortAddress=127.0.0.1" \
        "4lw.commands.whitelist=*" "extendedTypesEnabled=true" >"$dir/zoo.cfg"
    launch "$dir/zoo.cfg" "$dir"
    wait_serving "$port"
    ;;
ensemble)
    port=$2 dir=$3
    ensemble_configs "$port" "$dir"
    for id in 1 2 3; do launch "$dir/$id/zoo.cfg" "$dir/$id"; done
    for id in 1 2 3; do wait_serving "$(cat "$dir/$id/port")"; done
    ;;
start)
    dir=$2 id=$3
    launch "$dir/$id/zoo.cfg" "$dir/$id"
    wait_serving "$(cat "$dir/$id/port")"
    ;;
restart)
    dir=$2
    [[ -n ${3:-} ]] && dir=$2/$3
    launch "$dir/zoo.cfg" "$dir"
    wait_serving "$(sed -n 's/^clientPort=//p' "$dir/zoo.cfg")"
    ;;
pid)
    dir=$2
    [[ -n ${3:-} ]] && dir=$2/$3
    cat "$dir/pid"
    ;;
kill9 | leader | hosts)
    ensemble_action "$@"
    ;;
stop)
    dir=$2
    for pidfile in "$dir"/pid "$dir"/*/pid; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 0.5
    ;;
*)
    echo "usage: see the header of $0" >&2
    exit 2
    ;;
esac
