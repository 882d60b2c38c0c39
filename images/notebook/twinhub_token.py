"""Your access token at the platform's identity provider, from inside a notebook.

    import twinhub_token
    headers = {"Authorization": f"Bearer {twinhub_token.access_token()}"}

    $ twinhub-token                 # the token, for curl -H "Authorization: Bearer $(twinhub-token)"
    $ twinhub-token --json          # with its expiry and scopes

Nothing to paste: the hub keeps each user's tokens from their login
(encrypted) and refreshes them before they run out; this server's own hub
token may read its user's tokens, nobody else's (scope
admin:auth_state!user). Ask again rather than keeping a token: each answer
has at least the platform's minimum lifetime left (auth.oidc.token_min_lifetime)
when the hub refreshes it. Works when the hub logs in through OpenID Connect
(auth.type oidc).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class TokenUnavailable(RuntimeError):
    """The hub gave no token: why, in words a user can act on."""


def token_info(timeout: float = 30) -> dict[str, Any]:
    """access_token, expires_at (epoch seconds or None), expires_in, scope, from the hub."""
    try:
        # /users/<name>, not /user: only the former fills in auth_state (JupyterHub's UserAPIHandler).
        user = urllib.parse.quote(os.environ["JUPYTERHUB_USER"], safe="")
        url = os.environ["JUPYTERHUB_API_URL"].rstrip("/") + "/users/" + user
        api_token = os.environ["JUPYTERHUB_API_TOKEN"]
    except KeyError as exc:
        raise TokenUnavailable(f"{exc.args[0]} is not set: run this in a server the hub started") from exc
    req = urllib.request.Request(url, headers={"Authorization": f"token {api_token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            model = json.load(r)
    except urllib.error.HTTPError as exc:
        raise TokenUnavailable(f"the hub answered {exc.code} at {url}: log in again and restart your server") from exc
    except OSError as exc:
        raise TokenUnavailable(f"the hub cannot be reached at {url} ({exc}); try again in a moment") from exc
    state = model.get("auth_state")
    if not state or not state.get("access_token"):
        raise TokenUnavailable(
            "the hub gave no token: it keeps one only for OpenID Connect logins (auth.type oidc), and only "
            "servers started since it was switched on may read it; stop and start your server"
        )
    expires_at = state.get("expires_at")
    return {
        "access_token": state["access_token"],
        "expires_at": expires_at,
        "expires_in": round(expires_at - time.time()) if expires_at else None,
        "scope": state.get("scope") or [],
        "user": model.get("name"),
    }


def access_token(timeout: float = 30) -> str:
    """The current access token of this server's user (a string for an Authorization: Bearer header)."""
    return token_info(timeout)["access_token"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="twinhub-token", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="the token with its expiry, scopes and user, as JSON")
    args = ap.parse_args(argv)
    try:
        info = token_info()
    except TokenUnavailable as exc:
        print(f"twinhub-token: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(info) if args.json else info["access_token"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
