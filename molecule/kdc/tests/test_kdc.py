"""The realm: people get renewable tickets with their password, nothing without it."""

import os

import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
KDC = testinfra.get_host(f"ansible://kdc?ansible_inventory={INVENTORY}")
CLIENT = testinfra.get_host(f"ansible://kdc-client?ansible_inventory={INVENTORY}")


def kinit(principal, password, *options):
    cache = f"FILE:/tmp/krb5cc_test_{principal.replace('.', '_')}"
    r = CLIENT.run(f"printf '%s\\n' {password!r} | kinit -c {cache} {' '.join(options)} {principal}")
    return r, cache


def test_the_right_password_gets_a_renewable_ticket_for_the_person():
    r, cache = kinit("john.doe", "john-doe-molecule-pw")
    assert r.rc == 0, r.stderr
    out = CLIENT.check_output(f"klist -f -c {cache}")
    assert "Default principal: john.doe@MOLECULE.TEST" in out
    assert "krbtgt/MOLECULE.TEST@MOLECULE.TEST" in out
    flags = out.split("Flags: ")[1].split()[0]
    assert "R" in flags  # renewable
    assert CLIENT.run(f"kinit -R -c {cache}").rc == 0


def test_a_wrong_password_or_an_unknown_person_gets_nothing():
    r, _ = kinit("john.doe", "not-the-password")
    assert r.rc != 0
    assert "Password incorrect" in r.stderr
    r, _ = kinit("mallory", "whatever-password")
    assert r.rc != 0
    assert "not found in Kerberos database" in r.stderr


def test_only_aes_keys_and_the_database_key_stashed():
    out = KDC.check_output("kadmin.local -q 'getprinc alice'")
    keys = [line for line in out.splitlines() if line.startswith("Key: ")]
    assert keys
    assert all("aes" in k for k in keys), keys
    assert KDC.file("/etc/krb5kdc/stash").mode == 0o600
    assert KDC.service("krb5-kdc").is_running
