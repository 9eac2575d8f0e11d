#!/usr/bin/env python3
"""Exercises kazoo's recipes against a ZooKeeper-compatible server.

    kazoo_recipes.py <host:port>[,<host:port>...]

Lock, Election, Barrier, Counter, Queue, ChildrenWatch and DataWatch, each with more than
one client where the recipe is about coordination, and each checked for the outcome the
recipe promises. Exits non-zero with the failing check on the first failure. Every wait is
bounded, so a server that stops answering fails the run instead of hanging it.
"""

import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.recipe.barrier import Barrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

TIMEOUT_S = 20
ROOT = "/kazoo-compat"


def client(hosts):
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=TIMEOUT_S)
    return zk


def wait_for(what, condition):
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def check(what, condition):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}")


def lock_excludes(hosts):
    """Two clients contend for one lock: never both inside; both get it in turn."""
    clients = [client(hosts) for _ in range(2)]
    inside = []
    overlaps = []
    done = []

    def worker(index):
        lock = Lock(clients[index], f"{ROOT}/lock", identifier=f"worker-{index}")
        for _ in range(5):
            with lock:
                inside.append(index)
                if len(inside) > 1:
                    overlaps.append(tuple(inside))
                time.sleep(0.01)
                inside.remove(index)
        done.append(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    check("Lock: both workers finished", sorted(done) == [0, 1])
    check("Lock: never two holders at once", not overlaps)
    for zk in clients:
        zk.stop()


def election_elects_one(hosts):
    """Three candidates: exactly one leads at a time; when it leaves, another takes over."""
    clients = [client(hosts) for _ in range(3)]
    leaders = []
    release = [threading.Event() for _ in range(3)]
    elections = [Election(clients[i], f"{ROOT}/election", identifier=f"c{i}") for i in range(3)]

    def candidate(index):
        election = elections[index]

        def lead():
            leaders.append(index)
            release[index].wait(TIMEOUT_S)

        election.run(lead)

    threads = [threading.Thread(target=candidate, args=(i,), daemon=True) for i in range(3)]
    for thread in threads:
        thread.start()
    wait_for("a first leader", lambda: len(leaders) == 1)
    time.sleep(0.2)
    check("Election: one leader at a time", len(leaders) == 1)
    first = leaders[0]
    contenders = Election(clients[0], f"{ROOT}/election").contenders()
    check("Election: all three are contenders", len(contenders) == 3)
    release[first].set()
    wait_for("a second leader", lambda: len(leaders) == 2)
    check("Election: a different candidate took over", leaders[1] != first)
    for election in elections:
        election.cancel()
    for event in release:
        event.set()
    for thread in threads:
        thread.join(TIMEOUT_S)
    for zk in clients:
        zk.stop()


def barrier_holds_until_removed(hosts):
    zk = client(hosts)
    waiter = client(hosts)
    barrier = Barrier(zk, f"{ROOT}/barrier")
    barrier.create()
    passed = []
    thread = threading.Thread(target=lambda: passed.append(Barrier(waiter, f"{ROOT}/barrier").wait(TIMEOUT_S)))
    thread.start()
    time.sleep(0.3)
    check("Barrier: a waiter is held while the barrier stands", not passed)
    barrier.remove()
    thread.join(TIMEOUT_S)
    check("Barrier: the waiter passes once it is removed", passed == [True])
    zk.stop()
    waiter.stop()


def counter_counts(hosts):
    clients = [client(hosts) for _ in range(3)]

    def bump(zk):
        counter = Counter(zk, f"{ROOT}/counter")
        for _ in range(20):
            counter += 1

    threads = [threading.Thread(target=bump, args=(zk,)) for zk in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    value = Counter(clients[0], f"{ROOT}/counter").value
    check(f"Counter: 3 clients x 20 increments = 60 (got {value})", value == 60)
    for zk in clients:
        zk.stop()


def queues_keep_order(hosts):
    zk = client(hosts)
    queue = Queue(zk, f"{ROOT}/queue")
    for item in [b"one", b"two", b"three"]:
        queue.put(item)
    check("Queue: three items", len(queue) == 3)
    check("Queue: FIFO order", [queue.get(), queue.get(), queue.get()] == [b"one", b"two", b"three"])
    check("Queue: empty after", queue.get() is None)
    locking = LockingQueue(zk, f"{ROOT}/locking-queue")
    locking.put(b"low", priority=100)
    locking.put(b"high", priority=1)
    first = locking.get(TIMEOUT_S)
    check("LockingQueue: priority order", first == b"high")
    check("LockingQueue: consume", locking.consume())
    check("LockingQueue: next item", locking.get(TIMEOUT_S) == b"low" and locking.consume())
    zk.stop()


def watches_see_changes(hosts):
    zk = client(hosts)
    other = client(hosts)
    zk.ensure_path(f"{ROOT}/watched")
    children_seen = []
    data_seen = []
    ChildrenWatch(zk, f"{ROOT}/watched", lambda children: children_seen.append(sorted(children)))
    DataWatch(zk, f"{ROOT}/watched", lambda data, stat: data_seen.append(data))
    other.create(f"{ROOT}/watched/a", b"")
    other.create(f"{ROOT}/watched/b", b"", ephemeral=True)
    wait_for("ChildrenWatch to see a and b", lambda: children_seen and children_seen[-1] == ["a", "b"])
    check("ChildrenWatch: saw the children appear", children_seen[0] == [] and children_seen[-1] == ["a", "b"])
    other.set(f"{ROOT}/watched", b"v1")
    other.set(f"{ROOT}/watched", b"v2")
    wait_for("DataWatch to see v2", lambda: data_seen and data_seen[-1] == b"v2")
    check("DataWatch: saw the data change", data_seen[-1] == b"v2")
    other.stop()
    wait_for("the ephemeral child to vanish with its session", lambda: children_seen[-1] == ["a"])
    check("ChildrenWatch: an ephemeral went with its session", children_seen[-1] == ["a"])
    zk.stop()


def main():
    hosts = sys.argv[1]
    zk = client(hosts)
    if zk.exists(ROOT):
        zk.delete(ROOT, recursive=True)
    zk.ensure_path(ROOT)
    zk.stop()
    for recipe in [lock_excludes, election_elects_one, barrier_holds_until_removed, counter_counts,
                   queues_keep_order, watches_see_changes]:
        recipe(hosts)
    zk = client(hosts)
    zk.delete(ROOT, recursive=True)
    zk.stop()
    print(f"kazoo recipes against {hosts}: all passed")


if __name__ == "__main__":
    main()
