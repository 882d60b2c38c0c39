"""hubconfig.proxy.PairProxy against real configurable-http-proxy processes.

Two proxies stand for the two hub hosts' twinhub-chp; a third address where
nothing listens stands for a lost host.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CHP = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
TOKEN = "test-proxy-token-0123456789abcdef"
HEADERS = {"Authorization": f"token {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Chp:
    def __init__(self):
        self.port, self.api_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Chp:
        self.proc = subprocess.Popen(
            [str(CHP), "--ip", "127.0.0.1", "--port", str(self.port), "--api-ip", "127.0.0.1",
             "--api-port", str(self.api_port), "--log-level", "warn"],
            env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": TOKEN}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(self.routes_url, headers=HEADERS, timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError("configurable-http-proxy did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)

    @property
    def routes_url(self) -> str:
        return f"{self.api}/api/routes"

    def targets(self) -> dict[str, str]:
        routes = requests.get(self.routes_url, headers=HEADERS, timeout=5).json()
        return {path: r["target"] for path, r in routes.items() if r.get("jupyterhub")}


@pytest.fixture
def chps():
    if not CHP.exists():
        pytest.fail("configurable-http-proxy missing: `./twinhub test` installs it under .cache/node")
    pair = [Chp().start(), Chp().start()]
    yield pair
    for chp in pair:
        chp.stop()


def pair_proxy(own: Chp, peers: list[str]):
    from hubconfig.proxy import PairProxy

    return PairProxy(api_url=own.api, auth_token=TOKEN, should_start=False, peer_api_urls=peers)


def test_routes_reach_every_proxy_and_a_lost_peer_does_not_hold_them(chps):
    own, peer = chps
    lost = f"http://127.0.0.1:{free_port()}"  # nothing listens: a lost host

    async def scenario():
        proxy = pair_proxy(own, [peer.api, lost])
        t0 = time.monotonic()
        await proxy.add_route("/user/alice/", "http://10.0.0.5:8888", {"user": "alice", "server_name": ""})
        added = time.monotonic() - t0
        assert own.targets() == peer.targets() == {"/user/alice": "http://10.0.0.5:8888"}
        routes = await proxy.get_all_routes()
        assert routes["/user/alice/"]["target"] == "http://10.0.0.5:8888"
        await proxy.delete_route("/user/alice/")
        assert own.targets() == peer.targets() == {}
        # Deleting again: gone everywhere, only upstream's warning.
        await proxy.delete_route("/user/alice/")
        return added

    added = asyncio.run(scenario())
    assert added < 1.5, f"adding a route took {added:.2f}s with one peer lost"


def test_a_route_one_proxy_lacks_or_has_wrong_is_reported_for_the_check_to_fix(chps):
    own, peer = chps

    async def scenario():
        proxy = pair_proxy(own, [peer.api])
        await proxy.add_route("/user/alice/", "http://10.0.0.5:8888", {"user": "alice", "server_name": ""})
        await proxy.add_route("/user/bob/", "http://10.0.0.6:8888", {"user": "bob", "server_name": ""})
        # The peer restarted empty but for a stale route of its own, and
        # points bob elsewhere (it missed a change while it was away).
        requests.delete(f"{peer.routes_url}/user/alice", headers=HEADERS, timeout=5)
        requests.post(f"{peer.routes_url}/user/bob", headers=HEADERS, timeout=5,
                      json={"target": "http://10.0.0.99:8888", "jupyterhub": True, "user": "bob"})  # fmt: skip
        requests.post(f"{peer.routes_url}/user/carol", headers=HEADERS, timeout=5,
                      json={"target": "http://10.0.0.7:8888", "jupyterhub": True, "user": "carol"})  # fmt: skip
        return await proxy.get_all_routes()

    routes = asyncio.run(scenario())
    # Every disagreement comes back with an empty target: JupyterHub's check
    # re-adds alice's and bob's routes (to both) and deletes carol's stale one.
    assert {spec: r["target"] for spec, r in routes.items()} == {"/user/alice/": "", "/user/bob/": "", "/user/carol/": ""}
    assert routes["/user/carol/"]["data"]["user"] == "carol"


def test_without_peers_it_is_upstreams_proxy(chps):
    own, peer = chps

    async def scenario():
        proxy = pair_proxy(own, [])
        await proxy.add_route("/user/alice/", "http://10.0.0.5:8888", {"user": "alice"})

    asyncio.run(scenario())
    assert own.targets() == {"/user/alice": "http://10.0.0.5:8888"}
    assert peer.targets() == {}
