"""The hub API relay: servers on the internal notebook network reach the hub through it, held across a gap."""

import json
import os
import time

import pytest
import testinfra

NODE = testinfra.get_host(f"ansible://relay-node?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")
PROBE = os.environ["TWINHUB_IMAGE_PROBE"]


def from_a_server(path: str, timeout: int = 40):
    """What a user's server sees calling the hub: wget from a container on the notebook network."""
    return NODE.run(
        f"docker run --rm --network twinhub-notebooks {PROBE} wget -q -T {timeout} -O - http://twinhub-hub-api:8081{path}"
    )


@pytest.fixture(autouse=True)
def hub_up():
    NODE.run("systemctl start standin-hub")
    yield
    NODE.run("systemctl stop 'run-r*.timer'")
    NODE.run("systemctl start standin-hub")


def test_relay_runs_as_a_locked_down_swarm_service():
    spec = json.loads(NODE.check_output("docker service inspect twinhub-hub-api"))[0]["Spec"]
    task = spec["TaskTemplate"]
    assert task["ContainerSpec"].get("CapabilityDrop") == ["ALL"]
    assert task["Resources"]["Limits"]["MemoryBytes"] == 128 * 1024 * 1024
    files = sorted(c["File"]["Name"] for c in task["ContainerSpec"]["Configs"])
    assert files == ["/etc/nginx/nginx.conf", "/etc/nginx/twinhub-hold.lua"]
    NODE.check_output(
        "timeout 60 sh -c 'until docker service ps -q -f desired-state=running twinhub-hub-api "
        "| xargs -r docker inspect -f {{.Status.State}} | grep -qx running; do sleep 1; done'"
    )


def test_a_server_reaches_the_hub_api_through_the_relay():
    r = from_a_server("/hub/api/users")
    assert r.rc == 0, r.stderr
    assert json.loads(r.stdout) == {"path": "/hub/api/users"}


def test_only_the_hub_api_is_relayed():
    r = from_a_server("/hub/login")
    assert r.rc != 0
    assert "404" in r.stderr


def test_a_call_is_held_while_no_hub_serves():
    NODE.check_output("systemctl stop standin-hub")
    # The hub comes back 5 s later; the call made meanwhile waits for it.
    NODE.check_output("systemd-run --on-active=5 systemctl start standin-hub")
    t0 = time.monotonic()
    r = from_a_server("/hub/api/held")
    waited = time.monotonic() - t0
    assert r.rc == 0, r.stderr
    assert json.loads(r.stdout) == {"path": "/hub/api/held"}
    assert waited >= 4, f"answered after {waited:.1f}s: the hub was away for 5 s"
