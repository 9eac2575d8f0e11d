#!/usr/bin/env bash
# Installs what the compatibility suite needs, idempotently: Apache ZooKeeper 3.8 (server,
# zkCli.sh), its C client (cli_mt, load_gen), and Go with the go-zookeeper client
# (github.com/samuel/go-zookeeper/zk, built offline in GOPATH mode by go-client.sh) from Debian.
set -euo pipefail
missing=()
for package in zookeeper zookeeper-bin golang-go golang-github-samuel-go-zookeeper-dev; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# kazoo (with pure-sasl, its SASL mechanisms), in a virtualenv under target/ so the system
# Python is left alone.
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/target/compat-venv"
if ! "$venv/bin/python" -c "import kazoo, puresasl" 2>/dev/null; then
    [[ -x $venv/bin/pip ]] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q "kazoo==2.11.0" "pure-sasl==0.6.2"
fi
