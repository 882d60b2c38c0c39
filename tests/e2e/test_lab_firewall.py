"""The host firewall (issue 18, item 5): every platform port answers its peers only.

A container on the lab network that is no platform host (the stranger)
tries the platform's ports: each is dropped, while the public ones answer
and each port's peer, from its own host, connects. Ports Docker publishes
(the hubs' proxy and API) are held like the host's own.
"""

from __future__ import annotations

import json

import pytest
from support import image, lab, lab_exec

# (listening host, port, a peer that reaches it): every pair is dropped for
# the stranger and open for the peer.
GUARDED = [
    ("hub-a", 8000, "proxy"),  # the hub's proxy, published by Docker
    ("hub-a", 8081, "proxy"),  # the hub's API, published by Docker
    ("hub-a", 8081, "services"),  # the relay, from a manager
    ("hub-a", 9100, "proxy"),  # node exporter, from monitoring
    ("hub-a", 2377, "worker-1"),  # Swarm's managers, from a node
    ("services", 5432, "hub-a"),  # PostgreSQL, from the hubs
    ("services", 5000, "worker-1"),  # the registry, from the nodes
    ("services", 9780, "hub-b"),  # the home directory service, from the hubs
    ("services", 636, "hub-a"),  # the directory, from the hubs
    ("worker-1", 9323, "proxy"),  # Docker's metrics, from monitoring
    ("proxy", 9090, "proxy"),  # Prometheus: monitoring and the operators
]
PUBLIC = [("proxy", 443), ("services", 443)]  # users' HTTPS, the identity provider

# errno of a TCP connect with a 2 s timeout, for each (address, port) given.
PROBE = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def errno(target):
    s = socket.socket(); s.settimeout(2)
    try: return s.connect_ex((target[0], int(target[1])))
    finally: s.close()
targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(len(targets)) as pool: print(json.dumps(list(pool.map(errno, targets))))
"""


def outcome(errno: int) -> str:
    return {0: "open", 111: "refused"}.get(errno, "dropped")


def from_host(host: str, targets: list[tuple[str, int]]) -> list[str]:
    args = json.dumps([[lab().ip(h), p] for h, p in targets])
    return [outcome(e) for e in json.loads(lab_exec(host, "python3", "-c", PROBE, args).stdout)]


def from_stranger(targets: list[tuple[str, int]]) -> list[str]:
    import docker

    args = json.dumps([[lab().ip(h), p] for h, p in targets])
    client = docker.from_env()
    out = client.containers.run(image("lab-host"), ["python3", "-c", PROBE, args], network="twinhub-lab", remove=True)
    return [outcome(e) for e in json.loads(out)]


def test_a_stranger_reaches_only_the_public_ports():
    targets = [(h, p) for h, p, _ in GUARDED] + PUBLIC
    seen = dict(zip([f"{h}:{p}" for h, p in targets], from_stranger(targets), strict=True))
    assert seen == {f"{h}:{p}": ("open" if (h, p) in PUBLIC else "dropped") for h, p in targets}


@pytest.mark.parametrize(("host", "port", "peer"), GUARDED, ids=[f"{p}->{h}:{port}" for h, port, p in GUARDED])
def test_each_port_answers_its_peer(host, port, peer):
    assert from_host(peer, [(host, port)]) == ["open"]


def test_a_platform_host_that_is_not_the_peer_is_dropped_too():
    # A worker is a Swarm peer of the managers, not a database or a hub client.
    assert from_host("worker-1", [("services", 5432), ("hub-a", 8000), ("services", 9780)]) == ["dropped"] * 3
