"""The lock store of the notebook image's twinhub_locks, on a real directory.

Two stores stand for two users' servers on the same shared tree; a clock of
the test's own moves time. What the servers do with it (read-only models,
refused saves, copies) is tested with real notebook servers in
tests/hub/test_shared_locks.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys

import pytest
from support import ROOT

spec = importlib.util.spec_from_file_location("twinhub_locks", ROOT / "images/notebook/twinhub_locks.py")
locks = importlib.util.module_from_spec(spec)
sys.modules["twinhub_locks"] = locks
spec.loader.exec_module(locks)


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def shared(tmp_path):
    d = tmp_path / "shared"
    d.mkdir()
    nb = d / "plan.ipynb"
    nb.write_text("{}")
    return nb


def stores(clock, lifetime=60):
    return (
        locks.LockStore("alice", lifetime, server="jupyter-alice", clock=clock),
        locks.LockStore("bob", lifetime, server="jupyter-bob", clock=clock),
    )


def test_first_opener_holds_and_the_other_sees_who(shared):
    clock = Clock()
    alice, bob = stores(clock)
    lock = alice.acquire(shared)
    assert alice.mine(lock)
    theirs = bob.acquire(shared)
    assert not bob.mine(theirs)
    assert (theirs.holder, theirs.server) == ("alice", "jupyter-alice")
    # The lock is a hidden file beside the notebook, readable by the others.
    assert (shared.parent / ".twinhub-lock.plan.ipynb").is_file()
    assert sorted(p.name for p in shared.parent.iterdir()) == [".twinhub-lock.plan.ipynb", "plan.ipynb"]


def test_a_lock_whose_holder_went_away_expires_and_passes_on(shared):
    clock = Clock()
    alice, bob = stores(clock)
    alice.acquire(shared)
    clock.now += 59
    assert not bob.mine(bob.acquire(shared))
    clock.now += 2
    assert bob.mine(bob.acquire(shared))
    # alice comes back: it is bob's now, and her tick lets go of her record.
    assert not alice.mine(alice.acquire(shared))
    alice.tick()
    assert shared not in alice.held


def test_the_holder_keeps_it_while_working_and_lets_go_when_idle(shared):
    clock = Clock()
    alice, bob = stores(clock)
    alice.acquire(shared)
    for _ in range(10):  # 10 minutes of work, a use every 15 s, ticks between
        for _ in range(4):
            clock.now += 15
            alice.acquire(shared)
            alice.tick()
        assert bob.read(shared).holder == "alice"
    # Unused for more than half the lifetime: the next tick removes it.
    clock.now += 31
    alice.tick()
    assert bob.read(shared) is None
    assert not (shared.parent / ".twinhub-lock.plan.ipynb").exists()


def test_release_only_by_the_holder(shared):
    clock = Clock()
    alice, bob = stores(clock)
    alice.acquire(shared)
    assert bob.release(shared) is False
    assert bob.read(shared).holder == "alice"
    assert alice.release(shared) is True
    assert bob.mine(bob.acquire(shared))


def test_a_lock_written_by_hand_to_last_for_ever_ends_a_lifetime_after_it_was_first_seen(shared):
    clock = Clock()
    _alice, bob = stores(clock)
    lp = shared.parent / ".twinhub-lock.plan.ipynb"
    lp.write_text(json.dumps({"holder": "mallory", "server": "x", "token": "t", "acquired": 0, "expires": 9e12}))
    os.utime(lp, (9e9, 9e9))  # file times in the far future count for nothing
    assert bob.acquire(shared).holder == "mallory"
    clock.now += 59
    assert bob.acquire(shared).holder == "mallory"
    clock.now += 2
    assert bob.mine(bob.acquire(shared))


def test_an_unreadable_lock_holds_a_lifetime_then_is_cleared(shared):
    clock = Clock()
    _alice, bob = stores(clock)
    lp = shared.parent / ".twinhub-lock.plan.ipynb"
    lp.write_text("{half a lo")
    assert bob.acquire(shared).holder == "(unreadable lock)"
    clock.now += 61
    assert bob.mine(bob.acquire(shared))
    assert json.loads(lp.read_text())["holder"] == "bob"


def test_breaking_an_expired_lock_never_removes_a_fresh_one(shared):
    """bob read alice's expired lock; carol took over before bob broke it: carol's stays."""
    clock = Clock()
    alice, bob = stores(clock)
    carol = locks.LockStore("carol", 60, server="jupyter-carol", clock=clock)
    alice.acquire(shared)
    clock.now += 61
    expired, live = bob.state(shared)
    assert expired.holder == "alice"
    assert not live
    assert carol.mine(carol.acquire(shared))
    bob._break(shared, expired)
    assert bob.read(shared).holder == "carol"
    assert not bob.mine(bob.acquire(shared))


def test_copy_names():
    t = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    assert locks.copy_name("shared/plan.ipynb", "john-2edoe", t) == "shared/plan-john-2edoe-20270115T080000Z.ipynb"
    assert locks.copy_name("shared/a/notes", "bob", t) == "shared/a/notes-bob-20270115T080000Z"
    assert locks.copy_name("shared/.bashrc", "bob", t) == "shared/.bashrc-bob-20270115T080000Z"
    assert re.fullmatch(r"x\.tar-bob-\d{8}T\d{6}Z\.gz", locks.copy_name("x.tar.gz", "bob", t))
    # Two copies in one second do not overwrite each other.
    taken = {"shared/plan-bob-20270115T080000Z.ipynb", "shared/plan-bob-20270115T080000Z-2.ipynb"}
    assert locks.copy_name("shared/plan.ipynb", "bob", t, taken.__contains__) == "shared/plan-bob-20270115T080000Z-3.ipynb"


def test_the_cli_names_the_holder(shared, capsys, monkeypatch):
    alice = locks.LockStore("alice", 120, server="jupyter-alice")
    alice.acquire(shared)
    assert locks.main([str(shared), str(shared.parent / "other.ipynb")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "open for writing in alice's server (jupyter-alice)" in out[0]
    assert out[1].endswith("other.ipynb: not locked")
