"""hubconfig.provider: names bound to the provider's identity, tokens refreshed
before they run out, missing claims named. The provider's answers are
stubbed here (its token and userinfo calls); the real provider is in
molecule/lemonldap and tests/e2e/test_lab_oidc.py."""

from __future__ import annotations

import asyncio
import time

import pytest
from tornado import web

from hubconfig.provider import TwinhubOIDCAuthenticator


class FakeUser:
    def __init__(self, name: str, state: dict | None):
        self.name, self.state = name, state

    async def get_auth_state(self):
        return self.state


class FakeHandler:
    def __init__(self, users: dict[str, FakeUser]):
        self.users = users

    def find_user(self, name):
        return self.users.get(name)


def authenticator(userinfo: dict, tokens: list[dict]) -> TwinhubOIDCAuthenticator:
    a = TwinhubOIDCAuthenticator(
        client_id="hub",
        client_secret="secret",
        token_url="https://idp.example.org/token",
        userdata_url="https://idp.example.org/userinfo",
        authorize_url="https://idp.example.org/authorize",
        enable_auth_state=True,
        manage_groups=True,
        username_claim="preferred_username",
        allowed_groups={"jupyter-users"},
        admin_groups={"hub-admins"},
        auth_state_groups_key="oauth_user.groups",
        token_min_lifetime=60,
    )
    calls = {"token": 0, "userinfo": 0}

    async def get_token_info(handler, params):
        calls["token"] += 1
        return dict(tokens[min(calls["token"] - 1, len(tokens) - 1)])

    async def token_to_user(token_info):
        calls["userinfo"] += 1
        return dict(userinfo)

    a.get_token_info = get_token_info
    a.token_to_user = token_to_user
    a.calls = calls
    return a


def run(coro):
    return asyncio.run(coro)


TOKEN = {"access_token": "a1", "refresh_token": "r1", "expires_in": 3600, "token_type": "Bearer"}


def stored(seconds_left: float) -> dict:
    """alice's auth state as the hub keeps it, her access token running out in `seconds_left`."""
    return {
        "identity": "3f6c-uuid",
        "access_token": "a1",
        "refresh_token": "r1",
        "expires_at": time.time() + seconds_left,
        "token_response": TOKEN,
    }


ALICE = {"sub": "3f6c-uuid", "preferred_username": "alice", "groups": ["jupyter-users"]}


def test_the_name_comes_from_the_username_claim_and_the_identity_from_sub():
    a = authenticator(ALICE, [TOKEN])
    model = run(a._token_to_auth_model(TOKEN))
    assert model["name"] == "alice"
    assert model["auth_state"]["identity"] == "3f6c-uuid"
    assert model["auth_state"]["expires_at"] == pytest.approx(time.time() + 3600, abs=5)


def test_a_second_identity_under_a_bound_name_is_refused():
    a = authenticator({**ALICE, "sub": "someone-else"}, [TOKEN])
    handler = FakeHandler({"alice": FakeUser("alice", {"identity": "3f6c-uuid"})})
    model = run(a._token_to_auth_model(TOKEN))
    with pytest.raises(web.HTTPError) as info:
        run(a._check_binding(handler, model))
    assert info.value.status_code == 403
    assert "belongs to another account" in info.value.log_message


def test_the_bound_identity_logs_in_and_a_new_name_binds_at_first_login():
    a = authenticator(ALICE, [TOKEN])
    model = run(a._token_to_auth_model(TOKEN))
    run(a._check_binding(FakeHandler({"alice": FakeUser("alice", {"identity": "3f6c-uuid"})}), model))
    run(a._check_binding(FakeHandler({}), model))
    # A user an admin made before any login has no identity yet: bound now.
    run(a._check_binding(FakeHandler({"alice": FakeUser("alice", None)}), model))


@pytest.mark.parametrize(
    ("claim", "setting"),
    [("sub", "auth.oidc.identity_claim"), ("preferred_username", "auth.oidc.username_claim")],
)
def test_a_missing_claim_names_its_setting(claim, setting):
    info_without = {k: v for k, v in ALICE.items() if k != claim}
    a = authenticator(info_without, [TOKEN])
    with pytest.raises(web.HTTPError) as info:
        run(a._token_to_auth_model(TOKEN))
    assert info.value.status_code == 403
    assert setting in info.value.log_message % info.value.args  # as the error page shows it


def test_a_token_about_to_expire_is_swapped_through_the_refresh_token():
    fresh = {"access_token": "a2", "expires_in": 3600, "token_type": "Bearer"}
    a = authenticator(ALICE, [fresh])
    state = stored(10)
    model = run(a.refresh_user(FakeUser("alice", state)))
    assert a.calls["token"] == 1
    assert model["auth_state"]["access_token"] == "a2"
    # The provider kept the refresh token as it was: so does the hub.
    assert model["auth_state"]["refresh_token"] == "r1"


def test_a_token_with_time_left_is_not_swapped():
    a = authenticator(ALICE, [TOKEN])
    state = stored(3000)
    model = run(a.refresh_user(FakeUser("alice", state)))
    assert a.calls["token"] == 0
    assert model["auth_state"]["access_token"] == "a1"


def test_a_refresh_that_finds_the_user_out_of_the_groups_requires_a_login():
    a = authenticator({**ALICE, "groups": []}, [TOKEN])
    state = stored(5)
    assert run(a.refresh_user(FakeUser("alice", state))) is False


def test_a_refresh_that_comes_back_as_another_identity_requires_a_login():
    a = authenticator({**ALICE, "sub": "someone-else"}, [TOKEN])
    state = stored(5)
    assert run(a.refresh_user(FakeUser("alice", state))) is False


def test_a_refused_refresh_token_requires_a_login():
    a = authenticator(ALICE, [TOKEN])

    async def refused(handler, params):
        raise web.HTTPError(400, "invalid_grant")

    a.get_token_info = refused
    state = stored(-1)
    assert run(a.refresh_user(FakeUser("alice", state))) is False


# `python -m hubconfig provider` (hubconfig.provider.check) against a stand-in
# provider on loopback: what it refuses, and the setting it names.


@pytest.fixture
def provider():
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers: dict = {"token_error": "invalid_grant"}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code: int, body: dict) -> None:
            raw = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self):
            self._send(200, answers["discovery"])

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            code = 401 if answers["token_error"] == "invalid_client" else 400
            self._send(code, {"error": answers["token_error"]})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_port}/"
    answers["discovery"] = {
        "issuer": base,
        "authorization_endpoint": base + "authorize",
        "token_endpoint": base + "token",
        "userinfo_endpoint": base + "userinfo",
        "code_challenge_methods_supported": ["S256"],
    }
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield base, answers
    server.shutdown()


def provider_cfg(base: str, secret_file) -> dict:
    return {
        "auth": {
            "type": "oidc",
            "oidc": {
                "issuer": base,
                "client_id": "hub",
                "client_secret_file": str(secret_file),
                "authorize_url": base + "authorize",
                "token_url": base + "token",
                "userdata_url": base + "userinfo",
                "callback_url": "https://hub.example.org/hub/oauth_callback",
                "ca_file": "",
            },
        }
    }


@pytest.fixture
def secret_file(tmp_path):
    p = tmp_path / "client_secret"
    p.write_text("the-client-secret-0123456789\n")
    p.chmod(0o600)
    return p


def test_a_provider_that_matches_and_knows_the_client_passes(provider, secret_file):
    from hubconfig.provider import check

    base, _ = provider
    assert "discovery matches, client hub known" in check(provider_cfg(base, secret_file))


def test_an_issuer_mismatch_names_auth_oidc_issuer(provider, secret_file):
    from hubconfig.provider import check

    base, answers = provider
    answers["discovery"]["issuer"] = "https://somewhere.else/"
    with pytest.raises(RuntimeError, match=r"auth.oidc.issuer is .* but the provider calls itself 'https://somewhere.else/'"):
        check(provider_cfg(base, secret_file))


def test_an_endpoint_mismatch_names_its_setting(provider, secret_file):
    from hubconfig.provider import check

    base, answers = provider
    answers["discovery"]["token_endpoint"] = base + "other-token"
    with pytest.raises(RuntimeError, match=r"auth.oidc.token_url is .* but the provider's token_endpoint is"):
        check(provider_cfg(base, secret_file))


def test_a_wrong_client_secret_names_the_secret_file(provider, secret_file):
    from hubconfig.provider import check

    base, answers = provider
    answers["token_error"] = "invalid_client"
    with pytest.raises(RuntimeError, match=r"auth.oidc.client_id 'hub' or the secret in auth.oidc.client_secret_file"):
        check(provider_cfg(base, secret_file))


def test_an_unreachable_provider_names_the_issuer(secret_file):
    from hubconfig.provider import check

    with pytest.raises(RuntimeError, match=r"auth.oidc.issuer http://127.0.0.1:9/: .* cannot be read"):
        check(provider_cfg("http://127.0.0.1:9/", secret_file))


def test_a_provider_that_does_not_answer_gives_the_unavailable_page():
    from tornado.httpclient import HTTPClientError

    from hubconfig.provider import ProviderUnavailable

    a = authenticator(ALICE, [TOKEN])
    del a.token_to_user  # the real userinfo call, down to the HTTP client

    async def no_answer(req, **kwargs):
        raise HTTPClientError(599, "Timeout while connecting")

    a.fetch = no_answer
    with pytest.raises(ProviderUnavailable) as info:
        run(a._token_to_auth_model(TOKEN))
    assert info.value.status_code == 503
    assert "https://idp.example.org/userinfo" in info.value.args[0]


def test_the_cli_reaches_the_provider_and_exits_78_naming_what_is_wrong(provider, secret_file, tmp_path, capsys):
    import yaml

    from hubconfig.__main__ import main

    base, answers = provider
    secrets_dir = secret_file.parent
    for name in ("cookie_secret", "crypt_key", "proxy_token"):
        (secrets_dir / name).write_text("x" * 64 + "\n")
        (secrets_dir / name).chmod(0o600)
    cfg = {
        "hub": {
            "db_url": "postgresql://hub@db.example.org:5432/hub",
            "secrets_dir": str(secrets_dir),
            "subdomain_host": "https://hub.example.org",
        },
        "spawner": {
            "images": {"base": "registry.example.org/nb:1"},
            "profiles": {"small": {"display_name": "S", "image": "base"}},
        },
        **provider_cfg(base, secret_file),
    }
    cfg["auth"]["allowed_groups"] = ["jupyter"]
    cfg["auth"]["oidc"]["callback_url"] = ""
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["provider", str(path)]) == 0
    assert main(["directory", str(path)]) == 0  # not ldap: nothing to reach
    answers["discovery"]["issuer"] = "https://elsewhere.example.org/"
    assert main(["provider", str(path)]) == 78
    assert "twinhub: the identity provider: auth.oidc.issuer is" in capsys.readouterr().err


def test_a_token_without_a_lifetime_is_checked_not_swapped():
    a = authenticator(ALICE, [TOKEN])
    state = {**stored(0), "expires_at": None}
    model = run(a.refresh_user(FakeUser("alice", state)))
    assert a.calls["token"] == 0
    assert model["auth_state"]["access_token"] == "a1"
