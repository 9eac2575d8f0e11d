#!/usr/bin/env bash
# Installs what the compatibility suite needs, idempotently: Apache ZooKeeper 3.8 (server,
# zkCli.sh) and its C client (cli_mt, load_gen) from Debian.
set -euo pipefail
missing=()
for package in zookeeper zookeeper-bin; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
