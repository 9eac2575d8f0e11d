# Shared by apache-zookeeper.sh and zkd.sh (sourced, not run): the pieces that are the same
# for both servers, so the two are configured and driven alike.

# The srvr four-letter word's answer from a loopback port (empty if nothing answers).
srvr() { (exec 3<>"/dev/tcp/127.0.0.1/$1" && echo srvr >&3 && timeout 2 cat <&3) 2>/dev/null || true; }

# ensemble_configs <first client port> <dir> [extra zoo.cfg line...]: data dirs, myid files,
# zoo.cfg and port files for servers 1..3 under <dir>/<id> (tickTime 500, all on loopback).
ensemble_configs() {
    local port=$1 dir=$2 id peer
    shift 2
    rm -rf "$dir"
    for id in 1 2 3; do
        mkdir -p "$dir/$id/data"
        echo "$id" >"$dir/$id/data/myid"
        {
            printf '%s\n' "tickTime=500" "initLimit=10" "syncLimit=4" "dataDir=$dir/$id/data" \
                "clientPort=$((port + id - 1))" "clientPortAddress=127.0.0.1" "4lw.commands.whitelist=*" \
                "extendedTypesEnabled=true" "$@"
            for peer in 1 2 3; do
                echo "server.$peer=127.0.0.1:$((port + 100 + peer)):$((port + 200 + peer))"
            done
        } >"$dir/$id/zoo.cfg"
        echo $((port + id - 1)) >"$dir/$id/port"
    done
}

# The ensemble actions both scripts answer the same way: kill9 <dir> <id>, leader <dir>,
# hosts <dir>. Returns 1 for any other action.
ensemble_action() {
    local action=$1 dir=$2 id
    case "$action" in
    kill9) kill -9 "$(cat "$dir/$3/pid")" 2>/dev/null || true ;;
    leader)
        for id in 1 2 3; do
            if [[ $(srvr "$(cat "$dir/$id/port")") == *"Mode: leader"* ]]; then
                echo "$id"
                return 0
            fi
        done
        exit 1
        ;;
    hosts) echo "127.0.0.1:$(cat "$dir/1/port"),127.0.0.1:$(cat "$dir/2/port"),127.0.0.1:$(cat "$dir/3/port")" ;;
    *) return 1 ;;
    esac
}
