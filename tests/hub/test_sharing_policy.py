"""Sharing policy (issue 20, item 1): only the sharing groups share, codes
off, no sharing with groups; a real hub configured by hubconfig (its own
module: one hub at a time on this machine's test network)."""

from __future__ import annotations

import pytest
from hubrun import running_hub
from test_sharing import Person


@pytest.fixture(scope="module")
def policy_hub():
    settings = {"sharing": {"enabled": True, "groups": ["sharers"], "codes": False, "with_groups": False}}
    with running_hub(users=["alice", "bob"], settings=settings) as h:
        yield h


def test_only_the_sharing_groups_share_and_only_as_the_policy_says(policy_hub):
    hub = policy_hub
    ops, alice, bob = Person(hub, "ops"), Person(hub, "alice"), Person(hub, "bob")
    r = ops.api.post(f"{hub.url}/hub/api/groups/sharers/users", json={"users": ["alice"]})
    assert r.status_code == 200, r.text
    # alice is in sharers: she shares with bob by name.
    r = alice.api.post(f"{hub.url}/hub/api/shares/alice/", json={"user": "bob"})
    assert r.status_code == 200, r.text
    # Not by code (sharing.codes false), not with a group (with_groups false).
    r = alice.api.post(f"{hub.url}/hub/api/share-codes/alice/", json={})
    assert r.status_code == 403
    assert "Share codes are off on this hub (sharing.codes)" in r.json()["message"]
    r = alice.api.post(f"{hub.url}/hub/api/shares/alice/", json={"group": "sharers"})
    assert r.status_code == 403, r.text
    # bob is in no sharing group: he shares nothing.
    assert bob.api.post(f"{hub.url}/hub/api/shares/bob/", json={"user": "alice"}).status_code == 403
