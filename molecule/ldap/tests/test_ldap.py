"""The directory: people and groups over TLS only, nothing for anonymous
clients, each person their own entry, the hubs' account no passwords."""

import os

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
CA_DIR = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ca")
CLIENT = testinfra.get_host(f"ansible://ldap-client?ansible_inventory={INVENTORY}")
LDAP = testinfra.get_host(f"ansible://ldap?ansible_inventory={INVENTORY}")
SUFFIX = "dc=molecule,dc=test"
HUB = f"cn=twinhub-hub,ou=services,{SUFFIX}"


@pytest.fixture(scope="module", autouse=True)
def ca_on_client():
    with open(os.path.join(CA_DIR, "ca.crt")) as f:
        CLIENT.run(f"cat > /tmp/platform-ca.crt <<'EOF'\n{f.read()}\nEOF")


def ldap(tool, url, *args):
    quoted = " ".join(f"'{a}'" for a in args)
    return CLIENT.run(f"LDAPTLS_CACERT=/tmp/platform-ca.crt LDAPTLS_REQCERT=demand {tool} -x -H {url} {quoted}")


def person(uid):
    return f"uid={uid},ou=people,{SUFFIX}"


def test_a_person_binds_over_ldaps_and_over_starttls():
    r = ldap("ldapwhoami", "ldaps://ldap", "-D", person("john.doe"), "-w", "john-password")
    assert r.rc == 0, r.stderr
    assert r.stdout.strip() == f"dn:{person('john.doe')}"
    r = ldap("ldapwhoami", "ldap://ldap", "-ZZ", "-D", person("anna.berg@site.org"), "-w", "anna-password")
    assert r.rc == 0, r.stderr


def test_wrong_password_is_refused():
    r = ldap("ldapwhoami", "ldaps://ldap", "-D", person("alice"), "-w", "not-alice-password")
    assert r.rc == 49, (r.rc, r.stderr)


def test_anonymous_and_plain_text_binds_are_refused():
    anon = ldap("ldapwhoami", "ldaps://ldap")
    assert anon.rc != 0
    assert "anonymous bind disallowed" in anon.stderr
    plain = ldap("ldapwhoami", "ldap://ldap", "-D", person("alice"), "-w", "alice-password")
    assert plain.rc != 0
    assert "confidentiality required" in plain.stderr


def test_a_certificate_the_client_does_not_trust_is_refused():
    r = CLIENT.run(f"LDAPTLS_REQCERT=demand ldapwhoami -x -H ldaps://ldap -D '{person('alice')}' -w alice-password")
    assert r.rc != 0
    assert "Can't contact LDAP server" in r.stderr


def test_tls_below_1_2_is_refused():
    r = CLIENT.run("echo | openssl s_client -connect ldap:636 -tls1_1 2>&1")
    assert "Cipher is (NONE)" in r.stdout or "alert" in r.stdout.lower() or r.rc != 0


def hub_search(base, *args):
    """ldapsearch over LDAPS as the hub's search account."""
    return ldap("ldapsearch", "ldaps://ldap", "-D", HUB, "-w", "molecule-search-password", "-LLL", "-b", base, *args)


def test_the_hubs_account_reads_people_and_groups_but_no_password():
    r = hub_search(SUFFIX, "(uid=*)", "uid", "userPassword", "uidNumber")
    assert r.rc == 0, r.stderr
    assert "uid: anna.berg@site.org" in r.stdout
    assert "uidNumber: 30001" in r.stdout
    assert "uid: john.doe" in r.stdout
    assert "userPassword" not in r.stdout
    g = hub_search(f"ou=groups,{SUFFIX}", "(cn=jupyter-users)", "member")
    assert f"member: {person('alice')}" in g.stdout
    assert f"member: {person('john.doe')}" in g.stdout


def test_a_person_sees_only_their_own_entry_and_the_groups():
    def look(base):
        return ldap(
            "ldapsearch", "ldaps://ldap", "-D", person("alice"), "-w", "alice-password", "-LLL", "-b", base, "-s", "base", "dn"
        )

    assert look(person("alice")).rc == 0
    other = look(person("john.doe"))
    assert other.rc == 32, (other.rc, other.stdout)  # no such object: others are invisible
    assert look(f"cn=jupyter-users,ou=groups,{SUFFIX}").rc == 0


def test_posix_attributes_for_sssd():
    r = hub_search(
        person("alice"),
        "-s",
        "base",
        "uidNumber",
        "gidNumber",
        "homeDirectory",
    )
    assert "uidNumber: 20000" in r.stdout
    assert "gidNumber: 20000" in r.stdout
    assert "homeDirectory: /home/alice" in r.stdout


def test_the_key_is_for_slapd_only():
    key = LDAP.file("/etc/ldap/tls/ldap.key")
    assert key.mode == 0o640
    assert key.user == "root"
    assert key.group == "openldap"
