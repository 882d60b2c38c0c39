"""Locks on the shared area in the lab (issue 20, item 3): alice's and bob's own
Swarm servers on the lab's workers, one shared/ tree (the lab's hosts
bind-mount one directory of this machine, as they have no kernel NFS
client), everything through NGINX at each user's origin. The first to open a notebook under shared/ holds it;
the other sees it read-only with the holder named and cannot overwrite it
(his version is kept in a dated copy); when the holder's server stops, the
lock is let go and the other writes. Measured: acquisition beside a plain
open, and hand-over times.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from labhub import User, lab_exec, lab_hub, running_task, server_url, task_container
from labkit import ROOT
from ydocclient import notebook

# Where every lab host has /srv/twinhub (inventories/lab/group_vars/all/storage.yml).
SHARED = ROOT / ".cache" / "lab" / "storage-root" / "shared"

NOTEBOOK = notebook()


@pytest.fixture(scope="module")
def people():
    hub = lab_hub()
    alice, bob = User(hub, "alice"), User(hub, "bob")
    for user in (alice, bob):
        user.spawn()
    yield alice, bob
    for user in (alice, bob):
        user.stop_quietly()


def contents(user: User, path: str, **params):
    return user.api.get(f"{server_url(user.hub, user.api, user.name)}/api/contents/{path}", params=params, timeout=30)


def put(user: User, path: str, nb: dict):
    base = server_url(user.hub, user.api, user.name)
    return user.api.put(f"{base}/api/contents/{path}", json={"type": "notebook", "content": nb}, timeout=30)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@pytest.fixture
def name():
    """A notebook's path under shared/; it, its copies and its lock are removed after the test."""
    stem = f"lock-{uuid.uuid4().hex[:6]}"
    yield f"shared/{stem}.ipynb"
    for leftover in SHARED.glob(f"*{stem}*"):
        leftover.unlink()


def test_two_servers_on_one_tree_one_writer_and_the_holder_named(people, name):
    alice, bob = people
    # bob writes it and lets go (a save takes the lock; DELETE releases it).
    assert put(bob, name, NOTEBOOK).status_code in (200, 201)
    bob_base = server_url(bob.hub, bob.api, "bob")
    assert bob.api.delete(f"{bob_base}/api/twinhub/locks/{name}").status_code == 204
    # The two servers run on the lab's workers, the file on the storage host.
    nodes = {user.name: running_task(user.name)["Node"] for user in (alice, bob)}
    print(f"\nalice's server on {nodes['alice']}, bob's on {nodes['bob']}")

    # alice opens it first: hers. Beside the same open of a file outside shared/.
    assert put(alice, "private-lock-check.ipynb", NOTEBOOK).status_code in (200, 201)
    plain = min(timed(lambda: contents(alice, "private-lock-check.ipynb"))[1] for _ in range(3))
    r, acquire = timed(lambda: contents(alice, name))
    model = r.json()
    assert model["writable"] is True
    assert model["twinhub_lock"]["holder"] == "alice"
    print(f"opening a shared notebook on NFS (lock taken) {acquire * 1000:.0f} ms, a private one {plain * 1000:.0f} ms")

    # bob, from his own server: read-only, alice named, in the model and the API.
    model = contents(bob, name).json()
    assert model["writable"] is False
    assert model["twinhub_lock"]["holder"] == "alice"
    assert bob.api.get(f"{bob_base}/api/twinhub/locks/{name}").json()["lock"]["holder"] == "alice"
    # The lock file is on the storage, beside the notebook.
    lock_file = SHARED / f".twinhub-lock.{name.removeprefix('shared/')}"
    assert json.loads(lock_file.read_text())["holder"] == "alice"

    # bob's save: refused naming alice, his version in a dated copy; the file is alice's.
    mine = json.loads(json.dumps(NOTEBOOK))
    mine["cells"][0]["source"] = "x = 2  # bob"
    r = put(bob, name, mine)
    assert r.status_code == 409, r.text
    assert "alice's server" in r.json()["message"]
    copy = re.search(r"saved as (shared/lock-\w+-bob-\d{8}T\d{6}Z\.ipynb)", r.json()["message"]).group(1)
    assert contents(alice, copy).json()["content"]["cells"][0]["source"] == "x = 2  # bob"
    assert contents(alice, name).json()["content"]["cells"][0]["source"] == "x = 1"

    # `twinhub-lock` in bob's terminal names alice too.
    container = task_container("bob", nodes["bob"])
    shown = lab_exec(nodes["bob"], "docker", "exec", container, "twinhub-lock", name).stdout
    assert "open for writing in alice's server" in shown

    # alice's server stops: it lets go as it exits (the hub reports it
    # stopped when Swarm has the service removed, the container may still be
    # on its way out), and bob's next open is his.
    t0 = time.monotonic()
    alice.stop()
    stopped = time.monotonic() - t0
    while not (model := contents(bob, name).json())["writable"]:
        assert time.monotonic() - t0 < 30, "alice's server never let go"
        time.sleep(0.2)
    handover = time.monotonic() - t0
    assert model["twinhub_lock"]["holder"] == "bob"
    print(f"alice's server reported stopped in {stopped:.1f} s; bob holds the file {handover:.1f} s after the stop")
    assert put(bob, name, mine).status_code == 200
    assert "x = 2  # bob" in (SHARED / name.removeprefix("shared/")).read_text()
    # alice comes back: now she reads bob's, read-only.
    alice.spawn()
    model = contents(alice, name).json()
    assert model["writable"] is False
    assert model["twinhub_lock"]["holder"] == "bob"
