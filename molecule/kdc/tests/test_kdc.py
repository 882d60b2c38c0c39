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


def ssh(cache, *options, user="john.doe"):
    return CLIENT.run(
        f"KRB5CCNAME={cache} ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        f" -o GSSAPIAuthentication=yes {' '.join(options)} {user}@kdc-client id -un"
    )


def test_sshd_takes_the_persons_ticket_and_no_password():
    r, cache = kinit("john.doe", "john-doe-molecule-pw")
    assert r.rc == 0, r.stderr
    r = ssh(cache, "-o PreferredAuthentications=gssapi-with-mic")
    assert r.rc == 0, r.stderr
    assert r.stdout.strip() == "john.doe"
    # The ticket for the host's service is in the person's cache now.
    assert "host/kdc-client@MOLECULE.TEST" in CLIENT.check_output(f"klist -c {cache}")
    # Another person's ticket does not open john.doe's account.
    r, alice = kinit("alice", "alice-molecule-pw")
    assert r.rc == 0, r.stderr
    assert ssh(alice, "-o PreferredAuthentications=gssapi-with-mic").rc != 0
    # No ticket, no login; and passwords are not asked for at all.
    assert ssh("FILE:/tmp/krb5cc_none", "-o PreferredAuthentications=gssapi-with-mic").rc != 0
    r = ssh(cache, "-o PreferredAuthentications=password,keyboard-interactive")
    assert r.rc != 0
    assert "Permission denied" in r.stderr


def test_service_keys_are_made_once_and_kept_as_secrets():
    keytab = CLIENT.file("/etc/krb5.keytab")
    assert (keytab.mode, keytab.user) == (0o600, "root")
    assert "host/kdc-client@MOLECULE.TEST" in CLIENT.check_output("klist -k /etc/krb5.keytab")
    exported = KDC.file("/var/lib/krb5kdc/keytabs/HTTP_hub.molecule.test.keytab")
    assert exported.mode == 0o600
    assert KDC.file("/var/lib/krb5kdc/keytabs").mode == 0o700
    local = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "keytabs", "HTTP_hub.molecule.test.keytab")
    assert oct(os.stat(local).st_mode & 0o777) == "0o600"
    # The controller's copy is the key the KDC has (same key version number).
    kvno = KDC.check_output("kadmin.local -q 'getprinc HTTP/hub.molecule.test' | sed -n 's/.*vno \\([0-9]*\\).*/\\1/p' | head -1")
    assert kvno
    assert f" {kvno} " in KDC.check_output("klist -k /var/lib/krb5kdc/keytabs/HTTP_hub.molecule.test.keytab")
