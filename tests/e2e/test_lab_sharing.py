"""Sharing a server on the lab (issue 20, item 1), through NGINX with one
origin per user: alice shares her server with bob by name and bob runs a
cell in it at alice's origin; alice revokes and bob's next request is
refused (after the server's 1 s trust in the hub's answer); a share code
carol accepts lets her in. The lab's platform config has sharing on for
everyone (inventories/lab/group_vars/all/platform.yml)."""

from __future__ import annotations

import time

import pytest
from labhub import User, lab_hub, server_url

# Tokens that carry what their owner may do now, shares included (as a
# browser's session at a server does through OAuth).
INHERIT = ["inherit"]


@pytest.fixture(scope="module")
def alice():
    user = User(lab_hub(), "alice", token_scopes=INHERIT)
    user.spawn()
    yield user
    user.api.delete(f"{user.hub.url}/hub/api/shares/alice/")
    user.stop_quietly()


def status(user: User, owner: User) -> int:
    return user.api.get(
        f"{server_url(owner.hub, owner.api, owner.name)}/api/status", timeout=30, allow_redirects=False
    ).status_code


def test_alice_shares_her_server_with_bob_through_nginx_and_revokes_it(alice):
    hub = alice.hub
    bob = User(hub, "bob", token_scopes=INHERIT)
    assert status(bob, alice) == 403
    bob = User(hub, "bob", session=bob.session, token_scopes=INHERIT)  # a token alice's server has not judged yet
    t0 = time.monotonic()
    r = alice.api.post(f"{hub.url}/hub/api/shares/alice/", json={"user": "bob"})
    assert r.status_code == 200, r.text
    assert bob.run("import os; os.environ['JUPYTERHUB_USER']", owner=alice) == "'alice'"
    print(f"\nshare to bob's first cell in alice's server, through NGINX: {time.monotonic() - t0:.2f}s")
    # alice's origin is alice's: bob's own server is elsewhere.
    assert server_url(hub, alice.api, "alice").startswith("https://alice.")
    assert status(bob, alice) == 200
    assert alice.api.patch(f"{hub.url}/hub/api/shares/alice/", json={"user": "bob"}).status_code == 200
    # Refused from bob's next request past the server's 1 s trust in the
    # hub's answer (sharing.auth_cache_seconds), with the token alice's
    # server had let in, and a fresh one.
    time.sleep(1.1)
    assert status(bob, alice) == 403
    fresh = User(hub, "bob", session=bob.session, token_scopes=INHERIT)
    assert status(fresh, alice) == 403


def test_a_share_code_lets_carol_in(alice):
    hub = alice.hub
    carol = User(hub, "carol", token_scopes=INHERIT)
    code = alice.api.post(f"{hub.url}/hub/api/share-codes/alice/", json={"expires_in": 600}).json()
    page = carol.session.get(f"{hub.url}/hub/accept-share", params={"code": code["code"]}, timeout=30)
    assert page.status_code == 200, page.text[:300]
    r = carol.session.post(
        f"{hub.url}/hub/accept-share",
        data={"code": code["code"], "_xsrf": carol.session.headers["X-XSRFToken"]},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert carol.run("6 * 7", owner=alice) == "42"


def test_alice_and_bob_edit_one_notebook_live_through_nginx(alice):
    import asyncio

    from labhub import CA
    from ydocclient import shared_notebook

    hub = alice.hub
    bob = User(hub, "bob", token_scopes=INHERIT)
    server = server_url(hub, alice.api, "alice")
    notebook = {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "code", "id": "c1", "source": "", "metadata": {}, "outputs": [], "execution_count": None}],
    }  # fmt: skip
    assert alice.api.put(f"{server}/api/contents/live.ipynb", json={"type": "notebook", "content": notebook}).status_code in (
        200,
        201,
    )
    assert alice.api.post(f"{hub.url}/hub/api/shares/alice/", json={"user": "bob"}).status_code == 200
    tokens = {u.name: u.api.headers["Authorization"].split()[1] for u in (alice, bob)}

    async def edit() -> float:
        async with (
            shared_notebook(alice.api, server, "live.ipynb", tokens["alice"], CA) as mine,
            shared_notebook(bob.api, server, "live.ipynb", tokens["bob"], CA) as theirs,
        ):
            with mine.ydoc.transaction():
                cell = mine.ycells[0]["source"]
                cell.insert(len(cell), "print('hello bob')")
            t0 = time.monotonic()
            while str(theirs.ycells[0]["source"]) != "print('hello bob')":
                assert time.monotonic() - t0 < 10, "bob never saw alice's edit"
                await asyncio.sleep(0.01)
            return time.monotonic() - t0

    seconds = asyncio.run(edit())
    print(f"\nalice's edit reaches bob through NGINX in {seconds * 1000:.0f} ms")
