"""Logins with system accounts on the lab (issue 16): the hubs' PAM through
the hub hosts' sssd, over the lab's OpenLDAP.

The hub pair runs with auth.type pam for this module (LAB_AUTH, conftest:
playbooks/hub.yml with lab_auth=pam, the hub role's sssd check included).
Every login goes through NGINX to the serving hub, whose container asks the
hub host's sssd through its sockets; sssd binds to slapd over LDAPS with the
platform CA. The directory is changed and stopped for real and put back.
"""

from __future__ import annotations

import json
import time

import pytest
from labhub import HUBS, Directory, User, active_hub, lab_hub, password_logins
from support import lab_exec

LAB_AUTH = "pam"
# sssd's default: identity answers are reused this long within one client's PAM requests.
PAM_ID_TIMEOUT = 5
DIRECTORY = Directory()


@pytest.fixture(scope="module")
def hub():
    return lab_hub()


def hub_container(host: str) -> dict:
    return json.loads(lab_exec(host, "docker", "inspect", "twinhub-hub").stdout)[0]


def sssd_online(host: str, timeout: float = 30) -> None:
    """sssd back online on host: it retries on its own; USR2 makes it try now."""
    lab_exec(host, "systemctl", "kill", "--signal=USR2", "sssd")
    deadline = time.monotonic() + timeout
    while "Online status: Online" not in lab_exec(host, "sssctl", "domain-status", "--online", "twinhub").stdout:
        assert time.monotonic() < deadline, f"sssd on {host} still offline after {timeout}s"
        time.sleep(1)


def test_right_password_logs_in_wrong_password_gets_the_login_error(hub):
    seconds = password_logins(hub, "john.doe")
    print(f"PAM login through NGINX (hub -> sssd -> slapd): {seconds:.2f}s")


def test_names_with_an_at_sign_are_one_person(hub):
    # sssd would take anna.berg@site.org for anna.berg in a domain site.org
    # without the sssd role's re_expression.
    session, r = hub.login_attempt("anna.berg@site.org")
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert session.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == "anna.berg@site.org"


def test_groups_from_the_directory_allow_and_make_admins(hub):
    dana = hub.login("dana")  # allowed by jupyter-users only
    assert dana.get(f"{hub.url}/hub/api/user", timeout=30).json()["admin"] is False
    erin = hub.login("erin")  # hub-admins
    assert erin.get(f"{hub.url}/hub/api/user", timeout=30).json()["admin"] is True
    # frank's password is right, but he is in no allowed group.
    _, frank = hub.login_attempt("frank")
    assert frank.status_code == 403


def test_a_user_taken_out_of_the_group_is_refused_at_the_next_login(hub):
    assert hub.login_attempt("dana")[1].status_code == 302
    with DIRECTORY.without("jupyter-users", "dana"):
        # sssd asks the directory for the person's groups at each login (not
        # after its cache's 60 s), once pam_id_timeout (5 s) after the last:
        # that covers the requests of one login (auth, account), not two logins.
        time.sleep(PAM_ID_TIMEOUT + 1)
        _, r = hub.login_attempt("dana")
        assert r.status_code == 403, r.status_code
    time.sleep(PAM_ID_TIMEOUT + 1)  # and back in the group, she is in again
    assert hub.login_attempt("dana")[1].status_code == 302


def test_directory_down_gives_a_clear_error_and_logged_in_users_go_on(hub):
    carol = hub.login("carol")
    with DIRECTORY.down():
        t0 = time.monotonic()
        _, r = hub.login_attempt("bob")
        took = time.monotonic() - t0
        assert r.status_code == 503, (r.status_code, r.text[:300])
        assert "the user directory cannot be reached" in r.text
        assert "your session and server keep working" in r.text
        assert took < 20, f"the login waited {took:.1f}s for a stopped directory"
        assert carol.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == "carol"
    sssd_online(active_hub()[0])
    assert hub.login_attempt("bob")[1].status_code == 302


def test_a_server_starts_for_a_pam_user(hub):
    john = User(hub, "john.doe")
    john.spawn("small")
    try:
        assert john.run("6 * 7") == "42"
    finally:
        john.stop_quietly()


def test_the_hub_container_gets_sssds_sockets_and_no_more_privilege():
    for host in HUBS:
        c = hub_container(host)
        assert c["Config"]["User"] == "990:990"
        assert c["HostConfig"]["CapDrop"] == ["ALL"]
        assert not c["HostConfig"]["CapAdd"]
        assert c["HostConfig"]["Privileged"] is False
        pipes = [m for m in c["Mounts"] if m["Destination"] == "/var/lib/sss/pipes"]
        assert pipes, c["Mounts"]
        assert pipes[0]["RW"] is False
    host = active_hub()[0]
    # sssd's root-only socket directory stays closed to the hub's user.
    private = lab_exec(host, "docker", "exec", "twinhub-hub", "ls", "/var/lib/sss/pipes/private", check=False)
    assert private.returncode != 0
    assert "Permission denied" in private.stderr
    # The people the hub sees are the directory's, with its numbers.
    passwd = lab_exec(host, "docker", "exec", "twinhub-hub", "getent", "passwd", "john.doe").stdout
    entry = lab_exec(
        DIRECTORY.host, "ldapsearch", "-Q", "-LLL", "-Y", "EXTERNAL", "-H", "ldapi:///",
        "-b", DIRECTORY.person("john.doe"), "-s", "base", "uidNumber",
    ).stdout  # fmt: skip
    assert f"uidNumber: {passwd.split(':')[2]}" in entry, (passwd, entry)


def test_a_group_sssd_does_not_know_is_refused_before_the_hub_restarts():
    # The hub role's check (python -m hubconfig accounts) in the hub image
    # with the hub host's sssd, on a copy of the platform config with a typo.
    host = active_hub()[0]
    image = hub_container(host)["Config"]["Image"]
    lab_exec(host, "sh", "-c", "sed 's/- jupyter-users/- jupyter-userz/' /etc/twinhub/platform.yaml > /tmp/typo.yaml")
    r = lab_exec(
        host, "docker", "run", "--rm", "--user", "990:990", "-v", "/etc/twinhub:/etc/twinhub:ro",
        "-v", "/tmp/typo.yaml:/tmp/typo.yaml:ro", "-v", "/var/lib/sss/pipes:/var/lib/sss/pipes:ro",
        "--entrypoint", "python", image, "-m", "hubconfig", "accounts", "/tmp/typo.yaml", check=False,
    )  # fmt: skip
    assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
    assert "auth.allowed_groups: 'jupyter-userz'" in r.stderr
    assert "not known to the hub host's sssd" in r.stderr
    ok = lab_exec(
        host, "docker", "run", "--rm", "--user", "990:990", "-v", "/etc/twinhub:/etc/twinhub:ro",
        "-v", "/var/lib/sss/pipes:/var/lib/sss/pipes:ro", "--entrypoint", "python", image,
        "-m", "hubconfig", "accounts", "/etc/twinhub/platform.yaml", check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "jupyter-users (gid 21000)" in ok.stdout
