#!/usr/bin/env bash
# Starts or stops Apache ZooKeeper 3.8 from the Debian package on loopback, with its own data
# directories, for comparison runs: a standalone server or a 3-server ensemble configured as
# zkd.sh configures zkd's (same tickTime, limits and ports layout). fsync is on, as by default
# (zookeeper.forceSync=yes).
#   apache-zookeeper.sh start <port> <dir>            start a standalone server (returns once it serves)
#   apache-zookeeper.sh restart <dir> [<id>]          start again the standalone server in <dir>, or
#                                                     server <id> of the ensemble in <dir>, keeping its data
#   apache-zookeeper.sh ensemble <first port> <dir>   write configs for 3 servers and start them
#   apache-zookeeper.sh kill9 <dir> <id>              SIGKILL server <id> of an ensemble
#   apache-zookeeper.sh leader <dir>                  print the id of the serving leader
#   apache-zookeeper.sh hosts <dir>                   print the ensemble's host:port list
#   apache-zookeeper.sh pid <dir> [<id>]              print the java process id
#   apache-zookeeper.sh stop <dir>                    SIGTERM every server under <dir>
set -euo pipefail

# shellcheck source=servers-common.sh
source "$(dirname "$0")/servers-common.sh"

# srvr reports a mode only once the server serves (ruok answers before that).
wait_serving() {
    local port=$1 log=$2
    for _ in $(seq 1 300); do
        [[ $(srvr "$port") == *"Mode: "* ]] && return 0
        sleep 0.1
    done
    echo "Apache ZooKeeper did not start on port $port; see $log" >&2
    return 1
}

launch() {
    local dir=$1
    java -Dzookeeper.log.dir="$dir" -Dzookeeper.forceSync=yes \
        -cp "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >>"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
}

member_dir() { if [[ -n ${2:-} ]]; then echo "$1/$2"; else echo "$1"; fi; }

action=$1
case "$action" in
start)
    port=$2 dir=$3
    rm -rf "$dir" && mkdir -p "$dir/data"
    cat >"$dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
4lw.commands.whitelist=*
extendedTypesEnabled=true
admin.enableServer=false
CFG
    echo "$port" >"$dir/port"
    launch "$dir"
    wait_serving "$port" "$dir/server.log"
    ;;
ensemble)
    port=$2 dir=$3
    ensemble_configs "$port" "$dir" "admin.enableServer=false"
    for id in 1 2 3; do launch "$dir/$id"; done
    for id in 1 2 3; do wait_serving "$(cat "$dir/$id/port")" "$dir/$id/server.log"; done
    ;;
restart)
    dir=$(member_dir "$2" "${3:-}")
    launch "$dir"
    wait_serving "$(cat "$dir/port")" "$dir/server.log"
    ;;
kill9 | leader | hosts)
    ensemble_action "$@"
    ;;
pid)
    cat "$(member_dir "$2" "${3:-}")/pid"
    ;;
stop)
    dir=$2
    for pidfile in "$dir"/pid "$dir"/*/pid; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    ;;
*)
    echo "usage: see the header of $0" >&2
    exit 2
    ;;
esac
