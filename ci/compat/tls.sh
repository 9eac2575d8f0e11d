#!/usr/bin/env bash
# TLS on the client port with real clients: zkd standalone with secureClientPort, its key and
# trust stores in JKS, then in PKCS12 (the fixtures of runtime-tokio/tests/fixtures/tls);
# zkCli (Java's Netty client, with JKS and with PKCS12 client stores) and kazoo (use_ssl, PEM
# files). Debian's C client is built without TLS, so it has no part here.
#   tls.sh <python> <work dir> <port>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=$1 work=$2 port=$3
fixtures="$root/runtime-tokio/tests/fixtures/tls"
zkd=${ZKD:-$root/target/release/zkd}
# zkCli prints an id's commas URL-encoded.
subject="'x509,'CN=zk-client%2COU=Clients%2CO=Example\\%2C Inc%2CC=US"

# shellcheck source=servers-common.sh
source "$here/servers-common.sh"

# Java's zkCli with the Netty client socket, which Debian's zkCli.sh leaves off its classpath.
zkcli_tls() {
    local store_type=$1 server=$2 commands=$3
    local classpath="/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
    classpath+=$(find /usr/share/java -maxdepth 1 -name 'netty-*.jar' ! -name '*-4.*' -printf ':%p')
    (sleep 4; printf '%b' "$commands"; echo quit) | timeout 120 java -cp "$classpath" \
        -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty -Dzookeeper.client.secure=true \
        -Dzookeeper.ssl.keyStore.location="$fixtures/client.$store_type" -Dzookeeper.ssl.keyStore.password=changeit \
        -Dzookeeper.ssl.trustStore.location="$fixtures/truststore.$store_type" \
        -Dzookeeper.ssl.trustStore.password=changeit \
        org.apache.zookeeper.ZooKeeperMain -server "$server" 2>&1
}

expect() {
    local what=$1 needle=$2 output=$3
    if ! grep -qF -- "$needle" <<<"$output"; then
        echo "$what: expected $needle in:" >&2
        echo "$output" >&2
        exit 1
    fi
}

start_zkd() {
    local dir=$1 store_type=$2
    rm -rf "$dir" && mkdir -p "$dir/data"
    printf '%s\n' "dataDir=$dir/data" "clientPort=$port" "clientPortAddress=127.0.0.1" \
        "secureClientPort=$((port + 1))" "secureClientPortAddress=127.0.0.1" \
        "ssl.keyStore.location=$fixtures/server.$store_type" "ssl.keyStore.password=changeit" \
        "ssl.trustStore.location=$fixtures/truststore.$store_type" "ssl.trustStore.password=changeit" \
        "4lw.commands.whitelist=srvr" >"$dir/zoo.cfg"
    "$zkd" "$dir/zoo.cfg" >>"$dir/zkd.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 100); do
        [[ $(srvr "$port") == *"Mode: "* ]] && return 0
        sleep 0.1
    done
    echo "zkd did not start; see $dir/zkd.log" >&2
    exit 1
}

stop_zkd() { kill "$(cat "$1/pid")" 2>/dev/null && wait "$(cat "$1/pid")" 2>/dev/null || true; }

dir="$work/tls"
trap 'stop_zkd "$dir"' EXIT
start_zkd "$dir" jks
secure="127.0.0.1:$((port + 1))"
out=$(zkcli_tls jks "$secure" 'create /tls-jks hello auth::cdrwa\ngetAcl /tls-jks\nget /tls-jks\n')
expect "zkCli over TLS (JKS stores)" "Created /tls-jks" "$out"
expect "zkCli over TLS (JKS stores)" "$subject" "$out"
expect "zkCli over TLS (JKS stores)" "hello" "$out"
echo "zkCli over TLS with JKS stores against zkd (JKS): as expected"
"$python" "$here/kazoo_tls.py" "$secure" "$fixtures"
stop_zkd "$dir"

# The same data directory, served from PKCS12 stores to a PKCS12 client.
sed -i 's/\.jks$/.p12/' "$dir/zoo.cfg"
"$zkd" "$dir/zoo.cfg" >>"$dir/zkd.log" 2>&1 &
echo $! >"$dir/pid"
for _ in $(seq 1 100); do [[ $(srvr "$port") == *"Mode: "* ]] && break; sleep 0.1; done
out=$(zkcli_tls p12 "$secure" 'get /tls-jks\nget /tls-kazoo\n')
expect "zkCli over TLS (PKCS12 stores)" "hello" "$out"
expect "zkCli over TLS (PKCS12 stores)" "kazoo-over-tls" "$out"
echo "zkCli over TLS with PKCS12 stores against zkd (PKCS12): as expected"
stop_zkd "$dir"
