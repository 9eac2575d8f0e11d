#!/usr/bin/env python3
"""Acknowledged writes across a leader failure, with kazoo.

    failover.py write <hosts> <seconds> <ack file>   write /failover/n-<i> for <seconds>,
                                                     recording every acknowledged create
    failover.py verify <hosts> <ack file>            every acknowledged create is there

A create whose reply was lost to a connection failure has an unknown outcome and is not
recorded; every create the server acknowledged must survive any failure. The writer keeps
going through connection loss (kazoo moves the session to another server), and fails if
it cannot write for 30 s in a row.
"""

import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NodeExistsError, OperationTimeoutError, SessionExpiredError

ROOT = "/failover"


def connect(hosts):
    zk = KazooClient(hosts=hosts, timeout=10, connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1})
    zk.start(timeout=30)
    return zk


def write(hosts, seconds, ack_path):
    zk = connect(hosts)
    zk.ensure_path(ROOT)
    acknowledged = 0
    unknown = 0
    deadline = time.monotonic() + seconds
    last_success = time.monotonic()
    index = 0
    with open(ack_path, "w") as acks:
        while time.monotonic() < deadline:
            path = f"{ROOT}/n-{index:08d}"
            index += 1
            try:
                zk.create(path, path.encode())
            except NodeExistsError:
                unknown += 1  # an earlier attempt's outcome, unknown to us, took effect
                continue
            except (ConnectionLoss, OperationTimeoutError, SessionExpiredError):
                unknown += 1
                if time.monotonic() - last_success > 30:
                    raise SystemExit(f"no write succeeded for 30 s (last acknowledged {acknowledged})")
                time.sleep(0.05)
                continue
            acks.write(path + "\n")
            acks.flush()
            acknowledged += 1
            last_success = time.monotonic()
    zk.stop()
    print(f"failover writer: {acknowledged} creates acknowledged, {unknown} with unknown outcome")


def verify(hosts, ack_path):
    zk = connect(hosts)
    with open(ack_path) as acks:
        paths = [line.strip() for line in acks if line.strip()]
    missing = [path for path in paths if zk.exists(path) is None]
    wrong = [path for path in paths if path not in missing and zk.get(path)[0] != path.encode()]
    zk.stop()
    if missing or wrong:
        raise SystemExit(f"{len(missing)} acknowledged creates missing (first {missing[:3]}), {len(wrong)} with wrong data")
    print(f"failover check: all {len(paths)} acknowledged creates present")


def main():
    if sys.argv[1] == "write":
        write(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "verify":
        verify(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
