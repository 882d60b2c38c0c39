"""Real logins on the lab: JupyterHub against the lab's OpenLDAP (issue 16).

Every login goes through NGINX to the serving hub, which binds to slapd
over LDAPS and checks its certificate against the platform CA. The
directory is changed and stopped for real (ldapmodify over ldapi://,
systemctl on the services host) and put back.
"""

from __future__ import annotations

import time

import pytest
from labhub import Directory, User, lab_hub, password_logins
from support import lab, lab_exec

DIRECTORY = Directory()


@pytest.fixture
def hub():
    return lab_hub()


def test_right_password_logs_in_wrong_password_gets_the_login_error(hub):
    password_logins(hub, "john.doe")


def test_a_user_allowed_by_group_is_refused_once_taken_out(hub):
    assert hub.login_attempt("dana")[1].status_code == 302
    with DIRECTORY.without("jupyter-users", "dana"):
        _, r = hub.login_attempt("dana")
        assert r.status_code == 403, r.status_code
    assert hub.login_attempt("dana")[1].status_code == 302


def test_admin_group_makes_admins(hub):
    erin = hub.login("erin")
    assert erin.get(f"{hub.url}/hub/api/user", timeout=30).json()["admin"] is True
    dana = hub.login("dana")
    assert dana.get(f"{hub.url}/hub/api/user", timeout=30).json()["admin"] is False


def test_directory_down_gives_a_clear_error_and_logged_in_users_go_on(hub):
    alice = User(hub, "alice")
    alice.spawn("small")
    try:
        with DIRECTORY.down():
            t0 = time.monotonic()
            _, r = hub.login_attempt("bob")
            took = time.monotonic() - t0
            assert r.status_code == 503, (r.status_code, r.text[:300])
            assert "the user directory" in r.text
            assert "cannot be reached" in r.text
            assert "your session and server keep working" in r.text
            assert took < 10, f"the login waited {took:.1f}s for a stopped directory"
            # Alice, logged in before, keeps her hub session and her kernel.
            assert alice.session.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == "alice"
            assert alice.run("6 * 7") == "42"
        deadline = time.monotonic() + 30
        while (code := hub.login_attempt("bob")[1].status_code) != 302 and time.monotonic() < deadline:
            time.sleep(1)
        assert code == 302
    finally:
        alice.stop_quietly()


def test_the_directory_refuses_what_the_hub_never_does():
    ip = lab().ip(DIRECTORY.host)
    # No anonymous bind, no plain-text bind (even with a right password).
    anon = lab_exec(DIRECTORY.host, "ldapwhoami", "-x", "-H", f"ldap://{ip}", check=False)
    assert anon.returncode != 0
    assert "anonymous bind disallowed" in anon.stderr, anon.stderr
    password = lab_hub().password
    plain = lab_exec(
        DIRECTORY.host, "ldapwhoami", "-x", "-H", f"ldap://{ip}", "-D", DIRECTORY.person("dana"), "-w", password, check=False
    )
    assert plain.returncode != 0
    assert "onfidentiality required" in plain.stderr, plain.stderr
