"""Offboarding on a real hub (hubconfig only): a user taken out of the
allowed list cannot log in at the next attempt, and credentials run out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hubrun import running_hub


def test_user_removed_from_the_allowed_list_cannot_log_in(tmp_path):
    db = tmp_path / "hub.sqlite"
    with running_hub(users=["alice", "leaver"], db=db) as hub:
        session = hub.login("leaver")
        # No API token outlives hub.token_max_age (30 days by default): a
        # longer one is refused, one asked for without an expiry gets the limit.
        year = session.post(f"{hub.url}/hub/api/users/leaver/tokens", json={"note": "a year", "expires_in": 365 * 86400})
        assert year.status_code == 400, year.text
        forever = session.post(f"{hub.url}/hub/api/users/leaver/tokens", json={"note": "forever"})
        assert forever.status_code == 201, forever.text
        expires = datetime.fromisoformat(forever.json()["expires_at"].replace("Z", "+00:00"))
        assert timedelta(days=29.9) < expires - datetime.now(UTC) <= timedelta(days=30)
    # The next deployment no longer lists leaver; the user is still in the
    # hub's database (JupyterHub's allow_existing_users would let them in).
    with running_hub(users=["alice"], db=db) as hub:
        assert hub.login_attempt("leaver")[1].status_code == 403
        assert hub.login_attempt("alice")[1].status_code == 302
