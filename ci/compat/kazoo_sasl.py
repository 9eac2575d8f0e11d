#!/usr/bin/env python3
"""kazoo with SASL DIGEST-MD5 (sasl_options, and the legacy auth_data form) against a server
whose JAAS file has user bob/bobsecret.

    kazoo_sasl.py <host:port>

bob creates /sasl-kazoo readable by sasl:bob only; an anonymous client gets NoAuth; a wrong
password ends in AuthFailedError. Every wait is bounded.
"""

import sys

from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, NoAuthError
from kazoo.security import make_acl


def main():
    hosts = sys.argv[1]
    bob = KazooClient(hosts=hosts, timeout=10,
                      sasl_options={"mechanism": "DIGEST-MD5", "username": "bob", "password": "bobsecret"})
    bob.start(timeout=20)
    bob.create("/sasl-kazoo", b"only-bob", acl=[make_acl("sasl", "bob", all=True)])
    acls, _ = bob.get_acls("/sasl-kazoo")
    assert [(a.id.scheme, a.id.id) for a in acls] == [("sasl", "bob")], acls
    bob.stop()
    bob.close()

    legacy = KazooClient(hosts=hosts, timeout=10, auth_data=[("sasl", "bob:bobsecret")])
    legacy.start(timeout=20)
    assert legacy.get("/sasl-kazoo")[0] == b"only-bob"
    legacy.stop()
    legacy.close()

    anonymous = KazooClient(hosts=hosts, timeout=10)
    anonymous.start(timeout=20)
    try:
        anonymous.get("/sasl-kazoo")
        raise AssertionError("an anonymous client read sasl:bob's node")
    except NoAuthError:
        pass
    finally:
        anonymous.stop()
        anonymous.close()

    eve = KazooClient(hosts=hosts, timeout=5,
                      sasl_options={"mechanism": "DIGEST-MD5", "username": "bob", "password": "guess"},
                      connection_retry={"max_tries": 1, "delay": 0.1})
    # kazoo reports CONNECTED before its SASL exchange ends, so start() may return; the
    # session is unusable either way (as against Apache ZooKeeper).
    try:
        eve.start(timeout=10)
        eve.get("/")
        raise AssertionError("a wrong password logged in")
    except AuthFailedError:
        pass
    finally:
        eve.stop()
        eve.close()
    print("kazoo with SASL DIGEST-MD5 against %s: as expected" % hosts)


if __name__ == "__main__":
    main()
