#!/usr/bin/env bash
# Normalizes a zkCli.sh transcript (stdin) so the same session against Apache ZooKeeper and
# against zkd compares equal: what legitimately differs between two servers (zxids, times,
# session ids) becomes a placeholder, and watch events, which zkCli prints from another
# thread and so interleave with command output at random, are listed after the commands,
# sorted (deleteall deletes children in the order getChildren returns them, which is hash
# order in ZooKeeper and name order in zkd; both are allowed).
set -euo pipefail
awk '
  /SLF4J|^Connecting to |^Welcome to ZooKeeper|^JLine support|^WATCHER::$|^[[:space:]]*$/ { next }
  /^WatchedEvent / { events[++n] = $0; next }
  {
    sub(/^cZxid = 0x[0-9a-f]+$/, "cZxid = <zxid>")
    sub(/^mZxid = 0x[0-9a-f]+$/, "mZxid = <zxid>")
    sub(/^pZxid = 0x[0-9a-f]+$/, "pZxid = <zxid>")
    sub(/^ctime = .*/, "ctime = <time>")
    sub(/^mtime = .*/, "mtime = <time>")
    if ($0 ~ /^ephemeralOwner = 0x[0-9a-f]+$/ && $0 != "ephemeralOwner = 0x0") $0 = "ephemeralOwner = <session>"
    print
  }
  END { print "--- watch events ---"; for (i = 1; i <= n; i++) print events[i] | "LC_ALL=C sort"; }
'
