#!/usr/bin/env bash
# The Go client, go-zookeeper (Debian's golang-github-samuel-go-zookeeper-dev), against a
# server: builds go-client/main.go offline in GOPATH mode into target/compat-go/zkgo (again only
# when main.go, the Go package or Go changed), runs it against the server, and compares its
# output with go-client-expected.txt, recorded against Apache ZooKeeper 3.8.0. The program
# removes /go-compat before and after its run.
#   go-client.sh <host:port>[,<host:port>...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
server=$1
out=$root/target/compat-go
bin=$out/zkgo

mkdir -p "$out"
stamp=$({
    sha256sum "$here/go-client/main.go"
    dpkg-query -W -f '${Version}\n' golang-go golang-github-samuel-go-zookeeper-dev
} | sha256sum)
if [[ ! -x $bin || $(cat "$out/zkgo.stamp" 2>/dev/null) != "$stamp" ]]; then
    (cd "$here/go-client" &&
        GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$out/cache GOFLAGS= GOPROXY=off \
            timeout 300 go build -o "$bin.new" .)
    mv "$bin.new" "$bin"
    echo "$stamp" >"$out/zkgo.stamp"
fi

actual=$(mktemp)
log=$(mktemp)
start=$SECONDS
status=0
timeout 60 "$bin" "$server" >"$actual" 2>"$log" || status=$?
if ! diff -u "$here/go-client-expected.txt" "$actual" || ((status != 0)); then
    cat "$log" >&2
    echo "go-zookeeper against $server (exit $status) differs from Apache ZooKeeper's (above; - expected, + actual)" >&2
    exit 1
fi
rm -f "$actual" "$log"
echo "go-zookeeper against $server: as expected ($((SECONDS - start))s)"
