#!/usr/bin/env bash
# The real-client compatibility suite: zkCli.sh, the C client (cli_mt, load_gen) and kazoo's
# recipes, first against Apache ZooKeeper 3.8 from Debian (so the expected outputs are
# ZooKeeper's own), then against zkd.
#   ci/compat/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python="$root/target/compat-venv/bin/python"
work=$(mktemp -d)
trap '"$here/apache-zookeeper.sh" stop "$work/apache" || true' EXIT

"$here/install-deps.sh"

suite() {
    local server=$1
    "$here/zkcli.sh" "$server"
    "$here/c-client.sh" "$server" 3
    timeout 300 "$python" "$here/kazoo_recipes.py" "$server"
}

port=$((20000 + RANDOM % 10000))
"$here/apache-zookeeper.sh" start "$port" "$work/apache"
echo "--- Apache ZooKeeper 3.8 on 127.0.0.1:$port"
suite "127.0.0.1:$port"
"$here/apache-zookeeper.sh" stop "$work/apache"
