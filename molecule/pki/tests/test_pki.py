"""The platform CA: made once on the controller, trusted by hosts, issuing certificates."""

import os
from pathlib import Path

CA_DIR = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ca"


def test_ca_kept_on_the_controller_privately():
    assert (CA_DIR.stat().st_mode & 0o777) == 0o700
    assert (CA_DIR / "ca.key").stat().st_mode & 0o077 == 0
    assert "BEGIN CERTIFICATE" in (CA_DIR / "ca.crt").read_text()


def test_host_trusts_the_ca(host):
    assert host.file("/usr/local/share/ca-certificates/twinhub-platform-ca.crt").exists
    # The issued certificate verifies against the system store alone.
    out = host.check_output("openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt /etc/twinhub/tls/web.crt")
    assert out.endswith("OK")


def test_issued_certificate_names_and_key(host):
    text = host.check_output("openssl x509 -in /etc/twinhub/tls/web.crt -noout -text")
    assert "DNS:web.example.org" in text
    assert "IP Address:10.9.8.7" in text
    assert "TLS Web Server Authentication" in text
    key = host.file("/etc/twinhub/tls/web.key")
    assert (key.mode, key.user) == (0o640, "root")
    # The key matches the certificate.
    pub_cert = host.check_output("openssl x509 -in /etc/twinhub/tls/web.crt -noout -pubkey")
    pub_key = host.check_output("openssl pkey -in /etc/twinhub/tls/web.key -pubout")
    assert pub_cert == pub_key


def test_ca_is_not_a_leaf(host):
    text = host.check_output("openssl x509 -in /usr/local/share/ca-certificates/twinhub-platform-ca.crt -noout -text")
    assert "CA:TRUE, pathlen:0" in text
