"""Sharing a server (platform config `sharing`, issue 20): JupyterHub's own shares.

JupyterHub (5 and later) lets a user grant others access to one of their
servers: a share with a named user or group, or a share code anyone logged
in can accept until it expires; the owner, and the one shared with, revoke
it at once. Nobody may share until a role grants ``shares``; this module
grants it from the platform's policy:

- who may share: every user, or the members of `sharing.groups`;
- with whom: named users (`with_users`: users can then look up other users'
  names, which JupyterHub needs to address a share), named groups
  (`with_groups`), and share codes (`codes`);
- how long a share code lives at most (`code_max_lifetime`): JupyterHub
  accepts up to a year and gives a day when none is asked for; twinhub's
  handler refuses a longer one and gives the maximum when that is shorter;
- how soon a revoked share stops working (`auth_cache_seconds`, 1 s by
  default): a user's server keeps the hub's answer about a token that long
  (JupyterHub's own default is 5 minutes) and then asks again. While no hub
  can be asked (a failover, a switch to a hub that does not start) the
  server keeps to the hub's last positive answer for `auth_outage_seconds`
  (the notebook image's twinhub_hubauth), so a short cache does not fail
  requests in an outage; a refusal is never kept over. With the plain 1 s
  cache the failover suite saw 190 of 386 requests to a server fail during
  a ~35 s outage. JupyterHub reads a cache age of 0 as "for ever", so 1 is
  the least.

A share grants access to one server: `access:servers!server=owner/name`.
"""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.apihandlers import default_handlers
from jupyterhub.apihandlers.shares import ServerShareCodeAPIHandler
from jupyterhub.scopes import needs_scope
from tornado import web

# JupyterHub's share code lifetime when a request names none (apihandlers.shares).
JUPYTERHUB_CODE_LIFETIME = 86400


def scopes(sharing: dict[str, Any]) -> list[str]:
    """What a user who may share holds."""
    out = ["shares!user"]
    if sharing["with_users"]:
        out.append("read:users:name")
    if sharing["with_groups"]:
        out.append("read:groups:name")
    return out


def user_scopes(cfg: dict[str, Any]) -> list[str]:
    """Added to every user's role when everyone may share."""
    sharing = cfg["sharing"]
    return scopes(sharing) if sharing["enabled"] and not sharing["groups"] else []


def roles(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """A role for the groups that may share, when only they may."""
    sharing = cfg["sharing"]
    if not (sharing["enabled"] and sharing["groups"]):
        return []
    return [{"name": "twinhub-sharing", "scopes": scopes(sharing), "groups": list(sharing["groups"])}]


class ShareCodePolicy(ServerShareCodeAPIHandler):
    """POST /hub/api/share-codes/:user[/:server] with the platform's policy first (codes off; longest lifetime).

    The policy is in the hub's tornado settings (``twinhub_sharing``), set by apply().
    """

    @needs_scope("shares")
    async def post(self, user_name, server_name=None):
        policy = self.settings.get("twinhub_sharing", {"codes": False, "code_max_lifetime": 0})
        codes, max_lifetime = policy["codes"], policy["code_max_lifetime"]
        if not codes:
            raise web.HTTPError(403, "Share codes are off on this hub (sharing.codes); share with a user or group by name")
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise web.HTTPError(400, "expected a JSON body") from exc
        if not isinstance(body, dict):
            raise web.HTTPError(400, "expected a JSON object")
        asked = body.get("expires_in", JUPYTERHUB_CODE_LIFETIME)
        if "expires_in" in body and isinstance(asked, int) and asked > max_lifetime:
            raise web.HTTPError(
                400,
                f"expires_in {asked} s is longer than this hub allows (sharing.code_max_lifetime {max_lifetime} s)",
            )
        if "expires_in" not in body and max_lifetime < JUPYTERHUB_CODE_LIFETIME:
            body["expires_in"] = max_lifetime
            self.request.body = json.dumps(body).encode()
        return await super().post(user_name, server_name)


def apply(c: Any, cfg: dict[str, Any]) -> None:
    sharing = cfg["sharing"]
    if sharing["enabled"]:
        # Users' servers ask the hub who may use them and keep the answer
        # this long: a revoked share ends within it; while the hub cannot be
        # asked they keep its last answer (docstring).
        c.Spawner.args = [
            *c.Spawner.get("args", []),
            f"--HubOAuth.cache_max_age={sharing['auth_cache_seconds']}",
            f"--TwinhubHubAuth.outage_seconds={sharing['auth_outage_seconds']}",
        ]
    c.JupyterHub.tornado_settings = {
        **c.JupyterHub.get("tornado_settings", {}),
        "twinhub_sharing": {"codes": sharing["enabled"] and sharing["codes"], "code_max_lifetime": sharing["code_max_lifetime"]},
    }
    # Ours takes the place of JupyterHub's handler for the same paths (the
    # hub reads its API handlers once, after the config).
    default_handlers[:] = [
        (path, ShareCodePolicy if handler is ServerShareCodeAPIHandler else handler) for path, handler in default_handlers
    ]
