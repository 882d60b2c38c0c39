"""OpenID Connect logins bound to the provider's identity, with tokens kept fresh.

oauthenticator's GenericOAuthenticator does the protocol (authorization
code flow with PKCE and state, the token and userinfo endpoints, refresh
tokens, encrypted auth state); this subclass adds what a facility needs:

- one identity per name: the hub's user name comes from
  ``auth.oidc.username_claim`` (readable: ``preferred_username``), but OIDC
  Core says that claim is not unique and may change, so each name is bound
  to the provider's ``auth.oidc.identity_claim`` (``sub`` by default, or a
  claim the site asserts unique) at its first login. A later login under
  the same name with another identity is refused, so a reused or renamed
  account at the provider never takes over someone's home, server or
  admin rights (``admin_users`` matches names);
- tokens that notebooks can use: ``auth_state`` records when the access
  token expires; a refresh (``auth.oidc.refresh_age``, also before each
  spawn) swaps it through the refresh token once it has less than
  ``auth.oidc.token_min_lifetime`` seconds left, so a notebook asking for
  its user's token (``twinhub-token`` in the image) gets one that still
  works, and group changes at the provider reach the hub;
- clear errors: a claim missing from the provider's answer names the
  setting, and a provider that cannot be reached gives the login page a 503
  that says so.
"""

from __future__ import annotations

import time
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Int, Unicode


class ProviderUnavailable(web.HTTPError):
    def __init__(self, where: str):
        super().__init__(
            503,
            "Sign-in is unavailable: the identity provider (%s) cannot be reached right now. If you are logged in"
            " already, your session and server keep working; try signing in again in a few minutes.",
            where,
            reason="Identity provider unavailable",
        )


class TwinhubOIDCAuthenticator(GenericOAuthenticator):
    identity_claim = Unicode(
        "sub",
        config=True,
        help="The userinfo claim that identifies a person for good (sub, or a claim the site asserts unique).",
    )
    token_min_lifetime = Int(
        60,
        config=True,
        help="Seconds an access token must have left; a refresh swaps it when it has fewer.",
    )

    def _claim(self, user_info: dict[str, Any], claim: str, setting: str, what: str) -> str:
        """The claim's value, or the 403 page naming the setting that asks for it."""
        value = user_info.get(claim) if isinstance(claim, str) else None
        if not value:
            self.log.error("The provider's userinfo has no %r claim: %s", claim, sorted(user_info))
            raise web.HTTPError(
                403,
                "The identity provider did not %s (claim %s, %s); ask the operators to release it to this hub.",
                what,
                claim,
                setting,
            )
        return value

    def user_info_to_username(self, user_info: dict[str, Any]) -> str:
        return self._claim(user_info, self.username_claim, "auth.oidc.username_claim", "give a user name")

    def build_auth_state_dict(self, token_info: dict[str, Any], user_info: dict[str, Any]) -> dict[str, Any]:
        identity = self._claim(user_info, self.identity_claim, "auth.oidc.identity_claim", "identify you")
        state = super().build_auth_state_dict(token_info, user_info)
        state["identity"] = str(identity)
        lifetime = token_info.get("expires_in")
        state["expires_at"] = time.time() + float(lifetime) if lifetime else None
        return state

    async def httpfetch(self, url, *args, **kwargs):
        # Every call to the provider (token, userinfo, refresh) comes through here.
        try:
            return await super().httpfetch(url, *args, **kwargs)
        except HTTPClientError as exc:
            if exc.code == 599:  # no answer at all (tornado's code for connection errors)
                raise ProviderUnavailable(url) from exc
            raise

    async def authenticate(self, handler, data=None, **kwargs):
        model = await super().authenticate(handler, data, **kwargs)
        if model:
            await self._check_binding(handler, model)
        return model

    async def _check_binding(self, handler, model: dict[str, Any]) -> None:
        """The name is bound to the identity of its first login (trust on first use)."""
        user = handler.find_user(model["name"]) if handler is not None else None
        if user is None:
            return
        before = await user.get_auth_state() or {}
        bound = before.get("identity")
        if bound and bound != model["auth_state"]["identity"]:
            self.log.warning(
                "Login refused: %s is bound to %s=%s, the provider now says %s",
                model["name"],
                self.identity_claim,
                bound,
                model["auth_state"]["identity"],
            )
            raise web.HTTPError(
                403,
                "The name %s belongs to another account at the identity provider; ask the operators "
                "(they can release it with playbooks/offboard.yml).",
                model["name"],
            )

    async def refresh_user(self, user, handler=None, **kwargs):
        if not self.enable_auth_state:
            return True
        state = await user.get_auth_state()
        if not state or not state.get("refresh_token"):
            return await super().refresh_user(user, handler, **kwargs)
        expires_at = state.get("expires_at")
        if not expires_at or expires_at - time.time() > self.token_min_lifetime:
            # Still good (or the provider gave no lifetime): check it with the
            # provider (groups, a revoked session) as upstream does.
            model = await super().refresh_user(user, handler, **kwargs)
        else:
            model = await self._refresh_with_token(user, state, handler)
        if model and model is not True:
            if model["auth_state"].get("identity") != state.get("identity"):
                self.log.warning("Refresh for %s came back as another identity: login required", user.name)
                return False
            if not await self.check_allowed(user.name, model):
                self.log.info("Refresh: %s is no longer allowed (groups at the provider)", user.name)
                return False
        return model

    async def _refresh_with_token(self, user, state: dict[str, Any], handler) -> dict[str, Any] | bool:
        """Swap the access token through the refresh token (as upstream does once a token fails)."""
        params = self.build_refresh_token_request_params(state["refresh_token"])
        try:
            token_info = await self.get_token_info(handler, params)
        except Exception as exc:  # the provider said no or did not answer: a fresh login is needed
            self.log.info("Refreshing %s's access token failed: %s. Login required.", user.name, exc)
            return False
        if not token_info.get("refresh_token"):  # some providers keep the refresh token as it is
            token_info["refresh_token"] = state["refresh_token"]
        try:
            return await self._token_to_auth_model(token_info)
        except Exception as exc:
            self.log.error("A fresh access token for %s did not work: %s. Login required.", user.name, exc)
            return False


def check(cfg: dict[str, Any]) -> str:
    """Reach the provider as the hub would; a one-line summary, or RuntimeError naming the setting.

    The discovery document must name auth.oidc.issuer and the endpoints
    the config gives; the client must be known with its secret (the token
    endpoint answers a made-up code with invalid_grant for a known client
    and invalid_client for a wrong secret).
    """
    import json
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    from hubconfig.secrets import read_secret

    oidc = cfg["auth"]["oidc"]
    issuer = oidc["issuer"]
    ctx = ssl.create_default_context(cafile=oidc["ca_file"] or None)
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            disco = json.load(r)
    except (OSError, ValueError) as exc:
        raise RuntimeError(
            f"auth.oidc.issuer {issuer}: {url} cannot be read ({exc}); check the URL and auth.oidc.ca_file"
        ) from exc
    problems = []
    if disco.get("issuer") != issuer:
        problems.append(f"auth.oidc.issuer is {issuer!r} but the provider calls itself {disco.get('issuer')!r}")
    for key, field in (
        ("authorize_url", "authorization_endpoint"),
        ("token_url", "token_endpoint"),
        ("userdata_url", "userinfo_endpoint"),
    ):
        if oidc[key] and oidc[key] != disco.get(field):
            problems.append(f"auth.oidc.{key} is {oidc[key]!r} but the provider's {field} is {disco.get(field)!r}")
    if "S256" not in disco.get("code_challenge_methods_supported", ["S256"]):
        problems.append("the provider does not support PKCE with S256 (code_challenge_methods_supported)")
    if problems:
        raise RuntimeError("; ".join(problems))
    secret = read_secret(oidc["client_secret_file"], "auth.oidc.client_secret_file")
    body = urllib.parse.urlencode(
        {
            "grant_type": "authorization_code",
            "code": "twinhub-check-not-a-code",
            "redirect_uri": oidc["callback_url"] or "https://invalid.invalid/",
            "client_id": oidc["client_id"],
            "client_secret": secret,
        }
    ).encode()
    req = urllib.request.Request(oidc["token_url"] or disco["token_endpoint"], data=body, method="POST")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            answer = json.load(r)
    except urllib.error.HTTPError as exc:
        try:
            answer = json.load(exc)
        except ValueError:
            answer = {"error": f"HTTP {exc.code}"}
    except OSError as exc:
        raise RuntimeError(f"auth.oidc.token_url: the token endpoint cannot be reached ({exc})") from exc
    if answer.get("error") == "invalid_client":
        raise RuntimeError(
            f"auth.oidc.client_id {oidc['client_id']!r} or the secret in auth.oidc.client_secret_file"
            " is not what the provider knows"
        )
    return f"{issuer}: discovery matches, client {oidc['client_id']} known (token endpoint: {answer.get('error', 'ok')})"
