#!/usr/bin/env bash
# SASL DIGEST-MD5 with real clients: zkd standalone with a JAAS file (given as a system
# property on its command line) and the SASL provider; kazoo (sasl_options and auth_data) and
# zkCli (a client JAAS file).
#   sasl.sh <python> <work dir> <port>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=$1 work=$2 port=$3
zkd=${ZKD:-$root/target/release/zkd}

# shellcheck source=servers-common.sh
source "$here/servers-common.sh"

dir="$work/sasl"
rm -rf "$dir" && mkdir -p "$dir/data"
cat >"$dir/jaas.conf" <<'JAAS'
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_bob="bobsecret";
};
JAAS
cat >"$dir/client-jaas.conf" <<'JAAS'
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="bobsecret";
};
JAAS
printf '%s\n' "dataDir=$dir/data" "clientPort=$port" "clientPortAddress=127.0.0.1" "4lw.commands.whitelist=srvr" \
    "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider" >"$dir/zoo.cfg"
"$zkd" "-Djava.security.auth.login.config=$dir/jaas.conf" "$dir/zoo.cfg" >>"$dir/zkd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [[ $(srvr "$port") == *"Mode: "* ]] && break; sleep 0.1; done

"$python" "$here/kazoo_sasl.py" "127.0.0.1:$port"

out=$( (sleep 4; printf 'getAcl /sasl-kazoo\nget /sasl-kazoo\nquit\n') | CLIENT_JVMFLAGS="-Djava.security.auth.login.config=$dir/client-jaas.conf" \
    timeout 120 /usr/share/zookeeper/bin/zkCli.sh -server "127.0.0.1:$port" 2>&1)
for needle in "'sasl,'bob" "only-bob"; do
    if ! grep -qF -- "$needle" <<<"$out"; then
        echo "zkCli with SASL: expected $needle in:" >&2
        echo "$out" >&2
        exit 1
    fi
done
echo "zkCli with SASL DIGEST-MD5 against zkd: as expected"
