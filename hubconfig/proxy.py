"""The hub pair's proxies: one configurable-http-proxy per hub host, kept in step by the serving hub.

Each hub host runs CHP in a container of its own (the hub role's
twinhub-chp unit), not inside the hub's: a hub's process or container can die,
or stop for a planned switch, while the requests and websockets going through
its host's proxy to users' servers go on. Whichever hub holds the leader lock
keeps the routes of every proxy of the pair:

- changes go to this host's proxy with JupyterHub's own retries (up to 30 s,
  as upstream), and to the peers' at the same time with one short try each: a
  lost host must not hold a spawn or a takeover;
- the routes this reports (JupyterHub's check on start and every
  hub.route_check_interval) are the ones every reachable proxy agrees on. A
  route one proxy lacks or has wrong comes back with an empty target, so
  JupyterHub's check re-adds it everywhere; a route one proxy has that should
  not be there is reported, so the check deletes it everywhere. A proxy that
  was down or restarted empty is put right by the next check.

Upstream's ConfigurableHTTPProxy speaks to one proxy; this subclass only fans
its requests out (the REST calls and the route format stay upstream's).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientError, ClientResponseError, ClientTimeout
from jupyterhub.httpclient import fetch
from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.utils import url_path_join
from traitlets import Float, List, Unicode


class PairProxy(ConfigurableHTTPProxy):
    peer_api_urls = List(
        Unicode(),
        config=True,
        help="The other hub hosts' proxy APIs (http://host:8001), kept with the same routes as api_url's.",
    )
    peer_timeout = Float(1.0, config=True, help="Seconds one request to a peer proxy may take.")

    async def _peer(self, api_url: str, path: str, method: str = "GET", body: str | None = None) -> Any:
        """One try at a peer's REST API: the response, or None if it did not answer as it should."""
        url = url_path_join(api_url, "api/routes", path)
        try:
            return await fetch(
                url,
                method=method,
                headers={"Authorization": f"token {self.auth_token}"},
                data=body,
                timeout=ClientTimeout(total=self.peer_timeout),
            )
        except ClientResponseError as exc:
            if not (method == "DELETE" and exc.status == 404):
                self.log.warning("peer proxy %s: %s %s answered %s", api_url, method, path or "/", exc.status)
        except (TimeoutError, ClientError, OSError) as exc:
            # Down or unreachable (its host is lost or restarting): the next
            # route check puts it right once it answers.
            self.log.warning("peer proxy %s: %s %s failed (%s)", api_url, method, path or "/", exc.__class__.__name__)
        return None

    async def api_request(self, path, method="GET", body=None):
        if method == "GET" or not self.peer_api_urls:
            return await super().api_request(path, method=method, body=body)
        text = json.dumps(body) if isinstance(body, dict) else body
        own, *_ = await asyncio.gather(
            super().api_request(path, method=method, body=body),
            *(self._peer(url, path, method, text) for url in self.peer_api_urls),
            return_exceptions=True,
        )
        if isinstance(own, BaseException):
            raise own
        return own

    def _jupyterhub_routes(self, chp_routes: dict[str, dict]) -> dict[str, dict]:
        """CHP's answer in JupyterHub's route format, JupyterHub's routes only (as upstream reads it)."""
        routes = {}
        for chp_path, chp_data in chp_routes.items():
            if "jupyterhub" in chp_data:
                spec = self._routespec_from_chp_path(chp_path)
                routes[spec] = self._reformat_routespec(spec, dict(chp_data))
        return routes

    async def get_all_routes(self):
        routes = await super().get_all_routes()
        if not self.peer_api_urls:
            return routes
        answers = await asyncio.gather(*(self._peer(url, "") for url in self.peer_api_urls))
        for url, answer in zip(self.peer_api_urls, answers, strict=True):
            if answer is None:
                continue
            try:
                peer = self._jupyterhub_routes(await answer.json())
            except (ClientError, ValueError, AttributeError) as exc:
                self.log.warning("peer proxy %s: unreadable routes (%s)", url, exc)
                continue
            for spec in routes.keys() | peer.keys():
                mine, theirs = routes.get(spec), peer.get(spec)
                if mine and theirs and mine["target"] == theirs["target"]:
                    continue
                # Missing or different on one proxy: an empty target makes
                # the check re-add a route that should be there (to all),
                # and it deletes one that should not (from all).
                routes[spec] = {**(mine or theirs), "target": ""}
        return routes
