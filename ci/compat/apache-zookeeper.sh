#!/usr/bin/env bash
# Starts or stops an Apache ZooKeeper 3.8 standalone server from the Debian package on
# loopback, with its own data directory, for comparison runs.
#   apache-zookeeper.sh start <port> <dir>    (returns once it answers ruok)
#   apache-zookeeper.sh stop <dir>
set -euo pipefail
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
    java -Dzookeeper.log.dir="$dir" -cp "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 100); do
        # ruok answers before the server serves; srvr reports a mode only once it does.
        if [[ $(exec 3<>"/dev/tcp/127.0.0.1/$port" && echo srvr >&3 && timeout 2 cat <&3) == *"Mode: "* ]] 2>/dev/null; then
            exit 0
        fi
        sleep 0.2
    done
    echo "Apache ZooKeeper did not start on port $port; see $dir/server.log" >&2
    exit 1
    ;;
stop)
    dir=$2
    [[ -f "$dir/pid" ]] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    ;;
*)
    echo "usage: $0 start <port> <dir> | stop <dir>" >&2
    exit 2
    ;;
esac
