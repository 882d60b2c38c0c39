"""Accounts from the directory through sssd: people and groups by name (as
the platform spells them), passwords checked by the directory over verified
TLS, logins by an unprivileged process (the hub's user), a directory that is
down named as such, and nothing of the search account's password readable."""

import os
import time

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOST = testinfra.get_host(f"ansible://sssd?ansible_inventory={INVENTORY}")
SUFFIX = "dc=molecule,dc=test"


def pam_login(user: str, password: str, as_user: str = "nobody"):
    """pamtester with the hub image's PAM service, run as an unprivileged user."""
    return HOST.run(f"printf '%s\\n' '{password}' | runuser -u {as_user} -- pamtester twinhub '{user}' authenticate acct_mgmt")


def membership(change: str, group: str, uid: str):
    """add or delete uid's member value of group, as root over ldapi://."""
    ldif = f"dn: cn={group},ou=groups,{SUFFIX}\nchangetype: modify\n{change}: member\nmember: uid={uid},ou=people,{SUFFIX}"
    return HOST.run(f"ldapmodify -Y EXTERNAL -H ldapi:/// -Q <<'EOF'\n{ldif}\nEOF")


def test_the_configuration_is_root_only_and_has_no_password_in_the_log():
    conf = HOST.file("/etc/sssd/sssd.conf")
    assert (conf.user, conf.group, conf.mode) == ("root", "root", 0o600)
    assert "ldap_tls_reqcert = demand" in conf.content_string
    assert "molecule-search-password" not in HOST.run("journalctl -u sssd --no-pager").stdout


def test_people_resolve_with_their_directory_numbers():
    john = HOST.run("getent passwd john.doe")
    assert john.rc == 0, john.stderr
    assert john.stdout.split(":")[2] == "20001"  # ldap_uid_number_base + index
    anna = HOST.run("getent passwd anna.berg@site.org")  # "@" is part of the name
    assert anna.rc == 0
    assert anna.stdout.split(":")[2] == "30001"


def test_groups_resolve_with_their_members():
    users = HOST.run("getent group jupyter-users")
    assert users.rc == 0, users.stderr
    assert users.stdout.split(":")[2] == "21000"
    assert "hub-admins" in HOST.run("id -Gn anna.berg@site.org").stdout.split()
    assert "jupyter-users" in HOST.run("id -Gn john.doe").stdout.split()


def test_the_right_password_logs_in_from_an_unprivileged_process():
    r = pam_login("john.doe", "john-password")
    assert r.rc == 0, r.stdout + r.stderr
    assert pam_login("anna.berg@site.org", "anna-password").rc == 0


def test_a_wrong_password_and_an_unknown_person_are_refused():
    wrong = pam_login("john.doe", "not-johns-password")
    assert wrong.rc != 0
    assert "Authentication failure" in wrong.stderr
    assert pam_login("nobody-here", "whatever").rc != 0


def test_local_system_accounts_are_not_shadowed():
    # filter_users: root comes from the files only, never from the directory.
    assert HOST.run("getent passwd root").stdout.startswith("root:x:0:0:")


def test_a_person_taken_out_of_a_group_loses_it_at_the_next_login():
    r = membership("delete", "jupyter-users", "alice")
    assert r.rc == 0, r.stderr
    try:
        assert pam_login("alice", "alice-password").rc == 0  # a login refreshes the person's groups
        assert "jupyter-users" not in HOST.run("id -Gn alice").stdout.split()
    finally:
        membership("add", "jupyter-users", "alice")


@pytest.fixture
def directory_down():
    HOST.run("systemctl stop slapd")
    yield
    HOST.run("systemctl start slapd")
    # sssd retries on its own (after up to a minute); USR2 makes it try now.
    HOST.run("systemctl kill --signal=USR2 sssd")
    for _ in range(30):
        if "Online status: Online" in HOST.run("sssctl domain-status --online twinhub").stdout:
            return
        time.sleep(1)


def test_a_directory_that_is_down_is_named_not_taken_for_a_wrong_password(directory_down):
    r = pam_login("john.doe", "john-password")
    assert r.rc != 0
    # PAM_AUTHINFO_UNAVAIL: what hubconfig.pam turns into its 503 page.
    assert "Authentication service cannot retrieve authentication info" in r.stderr, r.stderr
