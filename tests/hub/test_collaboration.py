"""Real-time collaboration (issue 20, item 2): two users edit one notebook
and each sees the other's changes, over jupyter-collaboration's Y protocol
(tools/ydocclient.py: what JupyterLab does, with pycrdt), in a real notebook
container behind a real hub. alice shares her server with bob (sharing on);
the document store stays off the home (network storage in production)."""

from __future__ import annotations

import asyncio
import time

import pytest
from hubrun import docker, running_hub
from test_sharing import Person
from ydocclient import notebook, shared_notebook, source, type_into

NOTEBOOK = notebook()


@pytest.fixture(scope="module")
def hub():
    with running_hub(users=["alice", "bob"], settings={"sharing": {"enabled": True}}) as h:
        yield h


async def until(check, timeout: float = 10) -> float:
    """Seconds until check() holds (polled every 10 ms)."""
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, "the other side never saw the change"
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


def test_two_users_edit_one_notebook_and_see_each_others_changes(hub):
    alice, bob = Person(hub, "alice"), Person(hub, "bob")
    r = alice.api.post(f"{hub.url}/hub/api/users/alice/server", json={"profile": "small"})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(alice.api, "alice")
    server = f"{hub.url}/user/alice"
    r = alice.api.put(f"{server}/api/contents/together.ipynb", json={"type": "notebook", "content": NOTEBOOK})
    assert r.status_code in (200, 201), r.text
    assert alice.api.post(f"{hub.url}/hub/api/shares/alice/", json={"user": "bob"}).status_code == 200

    async def edit() -> tuple[float, float]:
        async with (
            shared_notebook(alice.api, server, "together.ipynb", alice.token) as mine,
            shared_notebook(bob.api, server, "together.ipynb", bob.token) as theirs,
        ):
            assert source(mine) == source(theirs) == "x = 1"
            type_into(mine, "\ny = 2")
            to_bob = await until(lambda: source(theirs) == "x = 1\ny = 2")
            type_into(theirs, "  # bob was here")
            to_alice = await until(lambda: source(mine) == "x = 1\ny = 2  # bob was here")
            return to_bob, to_alice

    to_bob, to_alice = asyncio.run(edit())
    print(f"\nan edit reaches the other user in {to_bob * 1000:.0f} ms (alice to bob), {to_alice * 1000:.0f} ms (bob to alice)")
    # The shared document is saved to the file for both.
    deadline = time.monotonic() + 15
    while "bob was here" not in "".join(
        alice.api.get(f"{server}/api/contents/together.ipynb").json()["content"]["cells"][0]["source"]
    ):
        assert time.monotonic() < deadline, "the edits never reached the file"
        time.sleep(0.5)
    # The document store (SQLite) is off the home, in the local state dir.
    assert not (hub.home_root / "alice" / ".jupyter_ystore.db").exists()
    name = f"{hub.cfg['spawner']['name_prefix']}-alice"
    state = hub.cfg.get("storage", {}).get("local_state_dir", "/tmp/twinhub-state")
    assert docker("exec", name, "ls", state).stdout.split().count("ystore.db") == 1
