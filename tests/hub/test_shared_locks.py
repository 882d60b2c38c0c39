"""Locks on the shared area (issue 20, item 3): two users' own servers, one shared/ tree.

A real hub spawns alice's and bob's servers (the notebook image, its
twinhub_locks contents manager) with the same shared directory mounted.
The first to open a notebook under shared/ holds it; the other gets it
read-only with the holder named, a save from the other lands in a dated copy
and is refused, the holder's release or her server's end hands it over.
The second test does it the way JupyterLab does, with live documents
(jupyter-collaboration's Y protocol): the holder's edits reach the file and
the other's open copy; the other's never reach the file until the holder's
server is killed and her lock expires.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time

import pytest
from hubrun import docker, running_hub
from test_sharing import Person
from ydocclient import notebook, shared_notebook, source, type_into

LIFETIME = 8  # storage.shared_locks.lifetime_seconds for this hub

NOTEBOOK = notebook()


@pytest.fixture(scope="module")
def hub():
    settings = {"storage": {"shared_locks": {"lifetime_seconds": LIFETIME}}}
    with running_hub(users=["alice", "bob"], settings=settings) as h:
        yield h


@pytest.fixture(scope="module")
def people(hub):
    out = {}
    for name in ("alice", "bob"):
        person = Person(hub, name)
        r = person.api.post(f"{hub.url}/hub/api/users/{name}/server", json={"profile": "small"})
        assert r.status_code in (201, 202), r.text
        out[name] = person
    for name, person in out.items():
        hub.wait_ready(person.api, name)
    return out["alice"], out["bob"]


def put_on_shared(hub, name: str, nb: dict) -> None:
    """A notebook written into shared/ on the storage, as a file another way (ownCloud, a copy) would."""
    path = hub.home_root.parent / "shared" / name
    path.write_text(json.dumps(nb))
    os.chown(path, 1000, 100)


def contents(person, owner: str, path: str, **params):
    return person.api.get(f"{person.hub.url}/user/{owner}/api/contents/{path}", params=params, timeout=30)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def test_one_writer_the_others_read_only_with_the_holder_named(hub, people):
    alice, bob = people
    put_on_shared(hub, "plan.ipynb", NOTEBOOK)
    alice.api.put(f"{hub.url}/user/alice/api/contents/private.ipynb", json={"type": "notebook", "content": NOTEBOOK})

    # Lock acquisition: alice opens it (the first to), beside the same open outside shared/.
    plain = min(timed(lambda: contents(alice, "alice", "private.ipynb"))[1] for _ in range(3))
    r, acquire = timed(lambda: contents(alice, "alice", "shared/plan.ipynb"))
    assert r.status_code == 200, r.text
    model = r.json()
    assert model["writable"] is True
    assert model["twinhub_lock"]["holder"] == "alice"
    assert model["twinhub_lock"]["mine"] is True
    print(f"\nopening a shared notebook (lock taken) {acquire * 1000:.0f} ms, a private one {plain * 1000:.0f} ms")

    # bob, in his own server: read-only, and who holds it.
    model = contents(bob, "bob", "shared/plan.ipynb").json()
    assert model["writable"] is False
    assert model["twinhub_lock"]["holder"] == "alice"
    assert model["twinhub_lock"]["mine"] is False
    lock = bob.api.get(f"{hub.url}/user/bob/api/twinhub/locks/shared/plan.ipynb").json()
    assert lock["lock"]["holder"] == "alice"
    shown = docker("exec", f"{hub.cfg['spawner']['name_prefix']}-bob", "twinhub-lock", "shared/plan.ipynb").stdout
    assert "open for writing in alice's server" in shown

    # bob saves anyway: refused, naming alice, and his version kept in a dated copy.
    mine = json.loads(json.dumps(NOTEBOOK))
    mine["cells"][0]["source"] = "x = 2  # bob"
    r = bob.api.put(f"{hub.url}/user/bob/api/contents/shared/plan.ipynb", json={"type": "notebook", "content": mine})
    assert r.status_code == 409, r.text
    message = r.json()["message"]
    assert "alice's server" in message
    copy = re.search(r"saved as (shared/plan-bob-\d{8}T\d{6}Z\.ipynb)", message).group(1)
    assert contents(bob, "bob", copy).json()["content"]["cells"][0]["source"] == "x = 2  # bob"
    assert contents(alice, "alice", "shared/plan.ipynb").json()["content"]["cells"][0]["source"] == "x = 1"
    # Nor can he remove or rename it.
    assert bob.api.delete(f"{hub.url}/user/bob/api/contents/shared/plan.ipynb").status_code == 409
    r = bob.api.patch(f"{hub.url}/user/bob/api/contents/shared/plan.ipynb", json={"path": "shared/gone.ipynb"})
    assert r.status_code == 409
    # "Save a copy" on request, and nbdime to see what differs.
    r = bob.api.post(f"{hub.url}/user/bob/api/twinhub/locks/copy/shared/plan.ipynb")
    assert r.status_code == 201, r.text
    # Made in the same second as the first: "-2" keeps both.
    assert re.fullmatch(r"shared/plan-bob-\d{8}T\d{6}Z(-2)?\.ipynb", r.json()["path"])
    assert r.json()["path"] != copy
    diff = docker(
        "exec", f"{hub.cfg['spawner']['name_prefix']}-bob", "nbdiff", "--no-color", "shared/plan.ipynb", copy,
    ).stdout  # fmt: skip
    assert "x = 2  # bob" in diff
    assert "x = 1" in diff

    # alice lets go: bob's next open holds it.
    assert bob.api.delete(f"{hub.url}/user/bob/api/twinhub/locks/shared/plan.ipynb").status_code == 409
    t0 = time.perf_counter()
    assert alice.api.delete(f"{hub.url}/user/alice/api/twinhub/locks/shared/plan.ipynb").status_code == 204
    model = contents(bob, "bob", "shared/plan.ipynb").json()
    handover = time.perf_counter() - t0
    assert model["writable"] is True
    assert model["twinhub_lock"]["holder"] == "bob"
    print(f"hand-over on release: {handover * 1000:.0f} ms")
    r = bob.api.put(f"{hub.url}/user/bob/api/contents/shared/plan.ipynb", json={"type": "notebook", "content": mine})
    assert r.status_code == 200, r.text
    assert contents(alice, "alice", "shared/plan.ipynb").json()["writable"] is False


def test_a_read_only_directory_under_shared_opens_without_a_lock(hub, people):
    """A dataset the servers may only read (no lock can be written beside it) still opens."""
    alice, _bob = people
    data = hub.home_root.parent / "shared" / "dataset"
    data.mkdir()
    (data / "survey.ipynb").write_text(json.dumps(NOTEBOOK))
    data.chmod(0o555)  # root's, read-only for the notebook uid
    r = contents(alice, "alice", "shared/dataset/survey.ipynb")
    assert r.status_code == 200, r.text
    assert r.json()["writable"] is False
    assert "twinhub_lock" not in r.json()


def on_disk(hub, name: str) -> str:
    return "".join(json.loads((hub.home_root.parent / "shared" / name).read_text())["cells"][0]["source"])


async def until(check, timeout: float) -> float:
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, "timed out"
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


def test_live_documents_holder_writes_the_other_follows_until_the_holder_is_gone(hub, people):
    alice, bob = people
    put_on_shared(hub, "live.ipynb", NOTEBOOK)
    a_server, b_server = f"{hub.url}/user/alice", f"{hub.url}/user/bob"

    async def work() -> dict[str, float]:
        out = {}
        async with shared_notebook(alice.api, a_server, "shared/live.ipynb", alice.token) as a_doc:
            await until(lambda: contents(alice, "alice", "shared/live.ipynb", content=0).json()["twinhub_lock"], 10)
            async with shared_notebook(bob.api, b_server, "shared/live.ipynb", bob.token) as b_doc:
                assert contents(bob, "bob", "shared/live.ipynb", content=0).json()["writable"] is False
                # alice's edit reaches the file, and bob's open document from there.
                type_into(a_doc, "\ny = 2")
                out["alice's edit to the file"] = await until(lambda: "y = 2" in on_disk(hub, "live.ipynb"), 15)
                out["then to bob's open copy"] = await until(lambda: "y = 2" in source(b_doc), 15)
                # bob's edit never reaches the file while alice holds it.
                type_into(b_doc, "  # bob")
                await asyncio.sleep(3)
                assert "bob" not in on_disk(hub, "live.ipynb")
                # alice's server is killed (no release): the lock expires and
                # bob's open document takes it over.
                docker("kill", f"{hub.cfg['spawner']['name_prefix']}-alice")
                t0 = time.monotonic()
                await until(lambda: contents(bob, "bob", "shared/live.ipynb", content=0).json()["writable"], LIFETIME + 10)
                out["hand-over after the holder's server was killed"] = time.monotonic() - t0
                type_into(b_doc, "\nz = 3  # bob")
                out["bob's edit to the file"] = await until(lambda: "z = 3  # bob" in on_disk(hub, "live.ipynb"), 15)
        return out

    figures = asyncio.run(work())
    for what, seconds in figures.items():
        print(f"{what}: {seconds:.2f} s")
    assert figures["hand-over after the holder's server was killed"] <= LIFETIME + 2
