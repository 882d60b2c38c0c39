"""Real logins on the lab: JupyterHub against the lab's OpenLDAP (issue 16).

Every login goes through NGINX to the serving hub, which binds to slapd
over LDAPS and checks its certificate against the platform CA. The
directory is changed and stopped for real (ldapmodify over ldapi://,
systemctl on the services host) and put back.
"""

from __future__ import annotations

import time

import pytest
from labhub import User, lab_hub
from support import lab, lab_exec

DIRECTORY = lab().group("ldap")[0]
SUFFIX = lab().setting("ldap_suffix", DIRECTORY)


def ldapmodify(ldif: str) -> None:
    lab_exec(DIRECTORY, "sh", "-c", f"ldapmodify -Q -Y EXTERNAL -H ldapi:/// <<'EOF'\n{ldif}\nEOF")


def group_members(group: str) -> list[str]:
    out = lab_exec(
        DIRECTORY, "ldapsearch", "-Q", "-LLL", "-Y", "EXTERNAL", "-H", "ldapi:///",
        "-b", f"cn={group},ou=groups,{SUFFIX}", "-s", "base", "member",
    ).stdout  # fmt: skip
    return [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("member: ")]


def set_members(group: str, members: list[str]) -> None:
    lines = "\n".join(f"member: {m}" for m in members)
    ldapmodify(f"dn: cn={group},ou=groups,{SUFFIX}\nchangetype: modify\nreplace: member\n{lines}")


@pytest.fixture
def hub():
    return lab_hub()


def test_right_password_logs_in_wrong_password_gets_the_login_error(hub):
    session, r = hub.login_attempt("john.doe")
    assert r.status_code == 302
    assert r.headers["location"] == "/hub/home"
    assert session.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == "john.doe"
    _, wrong = hub.login_attempt("john.doe", "not-" + hub.password)
    assert wrong.status_code == 403
    assert "Invalid username or password" in wrong.text
    # Not in the directory at all: the same answer (no telling who exists).
    _, nobody = hub.login_attempt("nobody.here")
    assert nobody.status_code == 403
    assert "Invalid username or password" in nobody.text


def test_a_user_allowed_by_group_is_refused_once_taken_out(hub):
    dana = f"uid=dana,ou=people,{SUFFIX}"
    before = group_members("jupyter-users")
    assert dana in before
    assert hub.login_attempt("dana")[1].status_code == 302
    # Someone else must stay: groupOfNames needs a member.
    set_members("jupyter-users", [m for m in before if m != dana] or [f"uid=alice,ou=people,{SUFFIX}"])
    try:
        _, r = hub.login_attempt("dana")
        assert r.status_code == 403, r.status_code
    finally:
        set_members("jupyter-users", before)
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
        lab_exec(DIRECTORY, "systemctl", "stop", "slapd")
        try:
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
        finally:
            lab_exec(DIRECTORY, "systemctl", "start", "slapd")
        deadline = time.monotonic() + 30
        while (code := hub.login_attempt("bob")[1].status_code) != 302 and time.monotonic() < deadline:
            time.sleep(1)
        assert code == 302
    finally:
        alice.stop_quietly()


def test_the_directory_refuses_what_the_hub_never_does():
    ip = lab().ip(DIRECTORY)
    # No anonymous bind, no plain-text bind (even with a right password).
    anon = lab_exec(DIRECTORY, "ldapwhoami", "-x", "-H", f"ldap://{ip}", check=False)
    assert anon.returncode != 0
    assert "anonymous bind disallowed" in anon.stderr, anon.stderr
    password = lab_hub().password
    plain = lab_exec(
        DIRECTORY, "ldapwhoami", "-x", "-H", f"ldap://{ip}", "-D", f"uid=dana,ou=people,{SUFFIX}", "-w", password, check=False
    )
    assert plain.returncode != 0
    assert "onfidentiality required" in plain.stderr, plain.stderr
