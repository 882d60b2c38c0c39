"""Real OpenID Connect logins on the lab (issue 16): the hubs against the
lab's LemonLDAP::NG provider (login.twinhub.lab, over the lab's directory),
and the user's access token in a real notebook.

The hub pair runs with auth.type oidc for this module (LAB_AUTH, conftest:
playbooks/hub.yml with lab_auth=oidc, the hub role's provider check included). Every login is a browser's: the hub's
redirect to the provider's login page, its form posted, the code back to the
hub's callback through NGINX (PKCE and state checked by both sides).
"""

from __future__ import annotations

import ast
import json
import time

import pytest
import requests
from labhub import CA, INVENTORY, User, active_hub, lab_hub, oidc_session
from oidcflow import LoginRefused, portal_login
from support import ansible_playbook, lab

LAB_AUTH = "oidc"
ISSUER = f"https://{lab().setting('lemonldap_portal_name')}/"
MIN_LIFETIME = lab().setting("hub_platform_config")["auth"]["oidc"]["token_min_lifetime"]


@pytest.fixture(scope="module")
def hub():
    return lab_hub()


def userinfo(access_token: str) -> requests.Response:
    s = requests.Session()
    s.verify, s.trust_env = CA, False
    endpoint = s.get(ISSUER + ".well-known/openid-configuration", timeout=30).json()["userinfo_endpoint"]
    return s.get(endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=30)


def token_in_kernel(user: User) -> dict:
    """twinhub_token.token_info() in a fresh kernel of the user's server (imported there at start)."""
    return json.loads(ast.literal_eval(user.run("import json; json.dumps(twinhub_token.token_info())")))


def test_a_user_logs_in_on_the_providers_page_and_lands_on_the_hub(hub):
    t0 = time.monotonic()
    s = oidc_session(hub, "dana")
    seconds = time.monotonic() - t0
    home = s.get(f"{hub.url}/hub/home", timeout=30)
    assert home.status_code == 200
    assert "dana" in home.text
    print(f"OIDC login through NGINX (provider's page, code, callback): {seconds:.2f}s")


def test_a_wrong_password_stays_on_the_providers_page(hub):
    with pytest.raises(LoginRefused) as info:
        oidc_session(hub, "dana", "not-the-password")
    assert "portal message 5" in str(info.value)  # LemonLDAP::NG: bad user name or password


def test_the_hub_keeps_the_identity_and_the_groups_from_the_provider(hub):
    dana = User(hub, "dana", oidc_session(hub, "dana"))
    model = dana.api.get(f"{hub.url}/hub/api/users/dana", timeout=30).json()
    assert "jupyter-users" in model["groups"]
    assert model["admin"] is False
    # The admin group at the provider makes erin an admin of the hub.
    erin = User(hub, "erin", oidc_session(hub, "erin"))
    assert erin.api.get(f"{hub.url}/hub/api/users/erin", timeout=30).json()["admin"] is True


def test_a_user_in_no_allowed_group_is_refused(hub):
    s = hub.session()
    page = s.get(f"{hub.url}/hub/oauth_login?next=%2Fhub%2Fhome", timeout=30)
    r = portal_login(s, page, "frank", hub.password)
    assert r.status_code == 403, (r.status_code, r.url)
    assert s.get(f"{hub.url}/hub/home", timeout=30, allow_redirects=False).status_code == 302


def test_a_notebook_gets_its_users_token_and_a_fresh_one_after_expiry(hub):
    dana = User(hub, "dana", oidc_session(hub, "dana"))
    dana.spawn()
    try:
        first = token_in_kernel(dana)
        assert first["user"] == "dana"
        # The provider accepts it as dana's (sub is the directory's entryUUID, not her name).
        info = userinfo(first["access_token"])
        assert info.status_code == 200, info.text
        assert info.json()["preferred_username"] == "dana"
        assert info.json()["sub"] != "dana"
        # The CLI gives the same kind of answer.
        cli = "import subprocess; subprocess.run(['twinhub-token'], capture_output=True, text=True).stdout.strip()"
        assert userinfo(ast.literal_eval(dana.run(cli))).status_code == 200
        # Wait until the token has less than the lab's token_min_lifetime left
        # (40 s tokens, 20 s minimum), past the hub's refresh_age (10 s): the
        # next answer is a new token, and the old one dies at its expiry.
        # The hub swaps it at the first check past refresh_age once it is due:
        # ask until then, never past the old token's expiry.
        time.sleep(max(0, first["expires_in"] - MIN_LIFETIME) + 2)
        while (second := token_in_kernel(dana))["access_token"] == first["access_token"]:
            assert time.time() < first["expires_at"] - 2, "the helper still gave the old token close to its expiry"
            time.sleep(2)
        assert second["expires_in"] > MIN_LIFETIME
        time.sleep(max(0, first["expires_at"] - time.time()) + 2)
        assert userinfo(first["access_token"]).status_code == 401
        assert userinfo(second["access_token"]).status_code == 200
    finally:
        dana.stop_quietly()


def test_another_users_token_is_out_of_reach(hub):
    dana = User(hub, "dana", oidc_session(hub, "dana"))
    alice = User(hub, "alice", oidc_session(hub, "alice"))
    assert "auth_state" not in alice.api.get(f"{hub.url}/hub/api/users/dana", timeout=30).json()
    own = dana.api.get(f"{hub.url}/hub/api/users/dana", timeout=30).json()
    assert own["auth_state"]["access_token"]


def test_a_wrong_client_secret_is_refused_before_the_hubs_restart(hub):
    before, _ = active_hub()
    r = ansible_playbook(
        "-i", str(INVENTORY), "playbooks/facts.yml", "playbooks/hub.yml", "-e", "lab_auth=oidc",
        "-e", "hub_oidc_client_secret=not-the-secret-of-the-lab-client",
    )  # fmt: skip
    assert r.returncode != 0
    said = " ".join((r.stdout + r.stderr).split())  # Ansible wraps long lines
    # (YAML output doubles the quotes around the client id.)
    assert "the identity provider: auth.oidc.client_id" in said
    assert "or the secret in auth.oidc.client_secret_file is not what the provider knows" in said
    # The running hub was never restarted: logins go on.
    assert active_hub()[0] == before
    assert oidc_session(hub, "dana").get(f"{hub.url}/hub/home", timeout=30).status_code == 200
