"""A user's server asks the hub about every new token often, and keeps working while the hub is away.

jupyterhub-singleuser asks the hub who a request's token belongs to and
keeps the answer `HubOAuth.cache_max_age` seconds (JupyterHub's 300 by
default). Within that time a revoked share (or token) still works in the
server. A short cache makes revocation quick, but then every request asks
the hub, and while no hub answers (a failover, a switch to a hub that does
not start: ~35 s measured) requests to servers fail: the failover suite saw
190 of 386 fail with a 1 s cache.

This extension keeps both: the server asks the hub again once the cache's
answer is older than `cache_max_age` (the platform's
`sharing.auth_cache_seconds`), and only when the hub cannot be asked (no
connection, a 5xx from what stands in front of it, or no answer within
`hub_wait` seconds) it serves the last answer the hub gave for that token,
for at most `outage_seconds` after it was given. A refusal from the hub is
never overridden: a revoked share ends at the next question.

Written here: JupyterHub's HubAuth has no such mode (its cache is a plain
expiring dict), so the server's HubOAuth check is wrapped when the server
starts (the singleuser extension fixes the identity provider's class, so a
subclass cannot be configured in).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tornado.web import HTTPError
from traitlets import Float
from traitlets.config import Configurable


def hub_unreachable(error: Exception) -> bool:
    """HubAuth's errors for "the hub could not be asked" (not "the hub said no")."""
    if not isinstance(error, HTTPError):
        return False
    message = str(error.log_message or "")
    return error.status_code == 502 or (error.status_code == 500 and message.startswith("Failed to connect"))


class TwinhubHubAuth(Configurable):
    outage_seconds = Float(
        300.0,
        help="seconds after the hub's last answer about a token that the server keeps to it while the hub cannot"
        " be asked (0: never)",
    ).tag(config=True)
    hub_wait = Float(2.0, help="seconds to wait for the hub before its last answer is used").tag(config=True)

    def wrap(self, hub_auth: Any, log: Any) -> None:
        original = hub_auth._check_hub_authorization
        answered: dict[str, tuple[float, Any]] = {}
        # Questions to the hub not answered yet: later requests with the
        # same token take the last answer at once instead of waiting again.
        asking: dict[str, asyncio.Future] = {}
        outage, wait = self.outage_seconds, self.hub_wait

        def remember(key: str, result: Any) -> None:
            now = time.monotonic()
            if result is None:
                answered.pop(key, None)
            else:
                answered[key] = (now, result)
            if len(answered) > 4096:
                for k in [k for k, (t, _) in answered.items() if now - t > outage]:
                    answered.pop(k, None)

        async def check(url, api_token, cache_key=None, use_cache=True):
            if not use_cache or cache_key is None:
                return await original(url, api_token, cache_key=cache_key, use_cache=use_cache)
            try:
                return hub_auth.cache[cache_key]  # JupyterHub's, fresh
            except KeyError:
                pass
            last = answered.get(cache_key)
            usable = last is not None and time.monotonic() - last[0] < outage
            if usable and cache_key in asking:
                return last[1]
            task = asyncio.ensure_future(original(url, api_token, cache_key=cache_key, use_cache=True))
            if not usable:
                result = await task
                remember(cache_key, result)
                return result
            try:
                result = await asyncio.wait_for(asyncio.shield(task), wait)
            except TimeoutError:
                # The hub is slow or held (a takeover): its last word now,
                # its answer for later requests when it comes.
                asking[cache_key] = task

                def answered_late(t: asyncio.Future) -> None:
                    asking.pop(cache_key, None)
                    if not t.cancelled() and t.exception() is None:
                        remember(cache_key, t.result())

                task.add_done_callback(answered_late)
                log.warning("twinhub_hubauth: no answer from the hub in %.1f s; using its answer of %.0f s ago", wait,
                            time.monotonic() - last[0])  # fmt: skip
                return last[1]
            except HTTPError as error:
                if not hub_unreachable(error):
                    raise
                log.warning("twinhub_hubauth: hub unreachable (%s); using its answer of %.0f s ago", error.log_message,
                            time.monotonic() - last[0])  # fmt: skip
                return last[1]
            remember(cache_key, result)
            return result

        hub_auth._check_hub_authorization = check


def _jupyter_server_extension_points():
    return [{"module": "twinhub_hubauth"}]


def _load_jupyter_server_extension(serverapp):
    hub_auth = getattr(serverapp.identity_provider, "hub_auth", None)
    if hub_auth is None:
        serverapp.log.info("twinhub_hubauth: not under a hub; nothing to do")
        return
    cfg = TwinhubHubAuth(parent=serverapp)
    if cfg.outage_seconds <= 0:
        return
    cfg.wrap(hub_auth, serverapp.log)
    serverapp.log.info(
        "twinhub_hubauth: the hub's answers count %s s, its last one %.0f s more while it cannot be asked",
        hub_auth.cache_max_age,
        cfg.outage_seconds,
    )
