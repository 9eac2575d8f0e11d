#!/usr/bin/env python3
"""kazoo over TLS (use_ssl) against a server's secure client port.

    kazoo_tls.py <host:port> <fixtures dir>

With the test CA's client certificate: reads /tls-jks (which zkCli created with an `auth`
ACL, so only this certificate's x509 identity may read it) and checks its ACL names the
certificate's subject as Java prints it. Without a certificate: the server (ssl.clientAuth
need) must refuse the connection. Every wait is bounded.
"""

import os
import sys

from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

SUBJECT = "CN=zk-client,OU=Clients,O=Example\\, Inc,C=US"


def main():
    hosts, fixtures = sys.argv[1], sys.argv[2]
    path = lambda name: os.path.join(fixtures, name)  # noqa: E731
    zk = KazooClient(hosts=hosts, timeout=10, use_ssl=True, ca=path("ca.pem"),
                     certfile=path("client-cert.pem"), keyfile=path("client-key.pem"), verify_certs=True)
    zk.start(timeout=20)
    data, _ = zk.get("/tls-jks")
    assert data == b"hello", data
    acls, _ = zk.get_acls("/tls-jks")
    ids = [(acl.id.scheme, acl.id.id) for acl in acls]
    assert ids == [("x509", SUBJECT)], ids
    zk.create("/tls-kazoo", b"kazoo-over-tls")
    zk.stop()
    zk.close()

    anonymous = KazooClient(hosts=hosts, timeout=3, use_ssl=True, ca=path("ca.pem"), verify_certs=True,
                            connection_retry={"max_tries": 2, "delay": 0.2})
    try:
        anonymous.start(timeout=6)
    except KazooTimeoutError:
        pass
    else:
        raise AssertionError("a client without a certificate was let in")
    finally:
        anonymous.stop()
        anonymous.close()
    print("kazoo over TLS against %s: as expected" % hosts)


if __name__ == "__main__":
    main()
