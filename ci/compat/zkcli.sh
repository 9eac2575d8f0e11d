#!/usr/bin/env bash
# Runs the scripted zkCli.sh session (zkcli-session.txt) against a server and compares the
# normalized transcript with zkcli-expected.txt, which was recorded against Apache ZooKeeper
# 3.8.0. The server must not hold /compat beforehand.
#   zkcli.sh <host:port>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
server=$1
actual=$(mktemp)
timeout 120 /usr/share/zookeeper/bin/zkCli.sh -server "$server" <"$here/zkcli-session.txt" 2>&1 |
    "$here/normalize-zkcli.sh" >"$actual"
if diff -u "$here/zkcli-expected.txt" "$actual"; then
    echo "zkCli session against $server: as expected"
    rm -f "$actual"
else
    echo "zkCli session against $server differs from Apache ZooKeeper's (above; - expected, + actual)" >&2
    exit 1
fi
