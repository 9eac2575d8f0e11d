#!/usr/bin/env bash
# The real-client compatibility suite: zkCli.sh, the C client (cli_mt, load_gen), the Go client
# (go-zookeeper) and kazoo's recipes, first against Apache ZooKeeper 3.8 from Debian (so the
# expected outputs are ZooKeeper's own), then against zkd; then zkCli and kazoo over TLS and
# with SASL DIGEST-MD5.
#   ci/compat/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python="$root/target/compat-venv/bin/python"
work=$(mktemp -d)
cleanup() {
    "$here/apache-zookeeper.sh" stop "$work/apache" || true
    "$here/zkd.sh" stop "$work/zkd" || true
    "$here/zkd.sh" stop "$work/ensemble" || true
    rm -rf "$work"
}
trap cleanup EXIT

"$here/install-deps.sh"
(cd "$root" && cargo build --release -q -p zk-runtime-tokio --bin zkd)

suite() {
    local server=$1
    "$here/zkcli.sh" "$server"
    "$here/c-client.sh" "$server" 3
    "$here/go-client.sh" "$server"
    timeout 300 "$python" "$here/kazoo_recipes.py" "$server"
}

port=$((20000 + RANDOM % 10000))
"$here/apache-zookeeper.sh" start "$port" "$work/apache"
echo "--- Apache ZooKeeper 3.8 on 127.0.0.1:$port"
suite "127.0.0.1:$port"
"$here/apache-zookeeper.sh" stop "$work/apache"

port=$((port + 10))
"$here/zkd.sh" standalone "$port" "$work/zkd"
echo "--- zkd standalone on 127.0.0.1:$port"
suite "127.0.0.1:$port"
"$here/zkd.sh" stop "$work/zkd"

port=$((port + 10))
"$here/zkd.sh" ensemble "$port" "$work/ensemble"
hosts=$("$here/zkd.sh" hosts "$work/ensemble")
echo "--- zkd 3-server ensemble on $hosts"
suite "$hosts"

echo "--- zkd ensemble: SIGKILL the leader under write load"
acks="$work/acks.txt"
"$python" "$here/failover.py" write "$hosts" 8 "$acks" &
writer=$!
sleep 3
leader=$("$here/zkd.sh" leader "$work/ensemble")
echo "killing leader server.$leader with SIGKILL"
"$here/zkd.sh" kill9 "$work/ensemble" "$leader"
wait "$writer"
"$python" "$here/failover.py" verify "$hosts" "$acks"
"$here/zkd.sh" start "$work/ensemble" "$leader"

echo "--- zkd ensemble: restart every server, the data is intact"
"$here/zkd.sh" stop "$work/ensemble"
for id in 1 2 3; do "$here/zkd.sh" start "$work/ensemble" "$id" & done
wait
"$python" "$here/failover.py" verify "$hosts" "$acks"
port=$((port + 20))
echo "--- zkd standalone with TLS on 127.0.0.1:$((port + 1)): zkCli (JKS, PKCS12) and kazoo"
"$here/tls.sh" "$python" "$work" "$port"
port=$((port + 10))
echo "--- zkd standalone with SASL DIGEST-MD5 on 127.0.0.1:$port: kazoo and zkCli"
"$here/sasl.sh" "$python" "$work" "$port"
echo "compatibility suite: all passed"
