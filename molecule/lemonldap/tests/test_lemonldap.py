"""The OpenID Connect provider as a browser and a relying party meet it:
the login page over TLS, the code flow with PKCE and state, tokens, userinfo
with the directory's groups, refresh, and what it refuses."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import testinfra

sys.path.insert(0, str(Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "tools"))
from oidcflow import Client, LoginRefused, pkce_pair, portal_login

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
CA = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ca", "ca.crt")
HOST = testinfra.get_host(f"ansible://lemonldap?ansible_inventory={INVENTORY}")
PORTAL = "login.molecule.test"
ISSUER = f"https://{PORTAL}/"
CALLBACK = "https://jupyter.molecule.test/hub/oauth_callback"
SECRET = "molecule-client-secret-of-32-characters"


@pytest.fixture(scope="module", autouse=True)
def portal_resolves():
    """The portal's name resolves to its container in this process only."""
    ip = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "lemonldap"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return original(ip if host == PORTAL else host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    yield
    socket.getaddrinfo = original


def client(**kw) -> Client:
    return Client(ISSUER, "jupyterhub", kw.pop("secret", SECRET), CALLBACK, verify=CA, **kw)


def tokens_for(user: str, password: str) -> dict:
    c = client()
    verifier, challenge = pkce_pair()
    code = c.login(user, password, challenge)["code"]
    r = c.code_for_tokens(code, verifier)
    assert r.status_code == 200, r.text
    return r.json()


def test_discovery_names_the_issuer_code_flow_and_pkce_only():
    d = requests.get(ISSUER + ".well-known/openid-configuration", verify=CA, timeout=30).json()
    assert d["issuer"] == ISSUER
    assert d["response_types_supported"] == ["code"]
    assert "S256" in d.get("code_challenge_methods_supported", ["S256"])
    assert "registration_endpoint" not in d


def test_a_user_logs_in_through_the_login_page_and_the_id_token_is_signed():
    c = client()
    verifier, challenge = pkce_pair()
    code = c.login("alice", "alice-password", challenge)["code"]
    r = c.code_for_tokens(code, verifier)
    assert r.status_code == 200, r.text
    claims = c.id_claims(r.json()["id_token"])
    # sub is the directory's entryUUID: stable, not the (renamable) uid.
    assert claims["sub"] != "alice"
    assert len(claims["sub"]) == 36, claims
    info = c.userinfo(r.json()["access_token"]).json()
    assert info["sub"] == claims["sub"]
    assert info["preferred_username"] == "alice"
    assert info["name"] == "Alice Liddell"
    assert info["groups"] == ["jupyter-users"]


def test_groups_claim_lists_every_group():
    t = tokens_for("john.doe", "john-password")
    info = client().userinfo(t["access_token"]).json()
    assert sorted(info["groups"]) == ["hub-admins", "jupyter-users"]
    assert info["preferred_username"] == "john.doe"


def test_wrong_password_shows_the_login_page_with_an_error():
    with pytest.raises(LoginRefused):
        client().login("alice", "not-alice-password", pkce_pair()[1])


def test_a_code_without_its_pkce_verifier_is_refused():
    c = client()
    verifier, challenge = pkce_pair()
    code = c.login("alice", "alice-password", challenge)["code"]
    r = c.code_for_tokens(code, pkce_pair()[0])
    assert r.status_code == 400, r.text
    assert "access_token" not in r.json()
    # Nor without any verifier; and the code is spent either way.
    assert c.code_for_tokens(code, None).status_code == 400
    assert c.code_for_tokens(code, verifier).status_code == 400


def test_an_authorization_request_without_pkce_gets_no_code():
    back = client().login("alice", "alice-password", challenge=None)
    assert "code" not in back
    assert back["error"] == "invalid_request", back


def test_a_redirect_uri_not_registered_is_never_redirected_to():
    c = client()
    c.redirect_uri = "https://evil.example/hub/oauth_callback"
    # Client.login follows redirects: one to evil.example would fail to
    # resolve instead of ending on the provider's own page.
    with pytest.raises(LoginRefused):
        c.login("alice", "alice-password", pkce_pair()[1])


def test_a_wrong_client_secret_gets_no_tokens():
    c = client(secret="not-the-secret-of-the-client-00000")
    verifier, challenge = pkce_pair()
    code = c.login("alice", "alice-password", challenge)["code"]
    r = c.code_for_tokens(code, verifier)
    assert r.status_code == 401, r.text


def test_an_access_token_expires_and_a_refresh_gives_a_new_one():
    c = client()
    t = tokens_for("alice", "alice-password")
    assert t["expires_in"] <= 10
    assert "refresh_token" in t
    assert c.userinfo(t["access_token"]).status_code == 200
    time.sleep(t["expires_in"] + 2)
    assert c.userinfo(t["access_token"]).status_code == 401
    r = c.refresh(t["refresh_token"])
    assert r.status_code == 200, r.text
    fresh = r.json()["access_token"]
    assert fresh != t["access_token"]
    assert c.userinfo(fresh).json()["preferred_username"] == "alice"


def test_the_relying_partys_session_follows_the_login_page():
    """portal_login: the browser-side helper the hub tests use, against the bare portal."""
    s = requests.Session()
    s.verify, s.trust_env = CA, False
    page = s.get(ISSUER, timeout=30)
    r = portal_login(s, page, "alice", "alice-password")
    assert r.status_code == 200
    assert any(c.name == "twinhub-idp" and c.secure for c in s.cookies)


def test_the_configuration_and_keys_are_the_portals_only():
    conf = HOST.file("/var/lib/lemonldap-ng/conf/lmConf-1.json")
    assert conf.user == "www-data"
    assert conf.mode == 0o600
    assert json.loads(conf.content_string)["oidcServiceAllowDynamicRegistration"] == 0
    key = HOST.file("/etc/lemonldap-ng/tls/portal.key")
    assert key.mode & 0o007 == 0, oct(key.mode)
    assert key.group == "www-data"


def test_the_admin_and_session_endpoints_are_closed():
    for path in ("sessions/global", "config/latest", "adminSessions"):
        r = requests.get(ISSUER + path, verify=CA, timeout=30)
        assert r.status_code == 403, (path, r.status_code)


def test_tls_below_1_2_is_refused():
    r = HOST.run(f"openssl s_client -connect 127.0.0.1:443 -servername {PORTAL} -tls1_1 </dev/null")
    assert r.rc != 0
