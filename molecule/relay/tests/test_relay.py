"""The hub API relay: servers on the internal notebook network reach the hub through it, held across a gap."""

import json
import os
import time

import pytest
import testinfra

NODE = testinfra.get_host(f"ansible://relay-node?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")
# A client on the notebook network. The relay's own image has bash (the
# probe image's static busybox cannot resolve names).
CLIENT = os.environ["TWINHUB_IMAGE_RELAY"]


def from_a_server(path: str, timeout: int = 40) -> tuple[int, dict | str]:
    """What a user's server sees calling the hub: (HTTP status, JSON body or text)."""
    request = f"GET {path} HTTP/1.0\\r\\nHost: twinhub-hub-api\\r\\n\\r\\n"
    out = NODE.check_output(
        f"docker run --rm --network twinhub-notebooks --entrypoint bash {CLIENT} -c "
        f"'exec 3<>/dev/tcp/twinhub-hub-api/8081; printf \"{request}\" >&3; timeout {timeout} cat <&3'"
    )
    head, _, body = out.partition("\r\n\r\n") if "\r\n\r\n" in out else out.partition("\n\n")
    status = int(head.split()[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


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
    assert from_a_server("/hub/api/users") == (200, {"path": "/hub/api/users"})


def test_only_the_hub_api_is_relayed():
    status, _ = from_a_server("/hub/login")
    assert status == 404


def test_a_call_is_held_while_no_hub_serves():
    NODE.check_output("systemctl stop standin-hub")
    # The hub comes back 5 s later; the call made meanwhile waits for it.
    NODE.check_output("systemd-run --on-active=5 systemctl start standin-hub")
    t0 = time.monotonic()
    answer = from_a_server("/hub/api/held")
    waited = time.monotonic() - t0
    assert answer == (200, {"path": "/hub/api/held"})
    assert waited >= 4, f"answered after {waited:.1f}s: the hub was away for 5 s"


def test_the_network_keeper_holds_the_notebook_network_on_every_node():
    # One do-nothing task per node, attached to the notebook network, locked down.
    spec = json.loads(NODE.check_output("docker service inspect twinhub-notebook-network-keeper"))[0]["Spec"]
    assert "Global" in spec["Mode"]
    task = spec["TaskTemplate"]
    assert task["ContainerSpec"]["Command"] == ["sleep", "infinity"]
    assert task["ContainerSpec"].get("CapabilityDrop") == ["ALL"]
    assert task["ContainerSpec"].get("ReadOnly") is True
    assert task["Resources"]["Limits"]["MemoryBytes"] == 16 * 1024 * 1024
    NODE.check_output(
        "timeout 60 sh -c 'until docker ps --filter label=com.docker.swarm.service.name=twinhub-notebook-network-keeper"
        " --format {{.Networks}} | grep -q twinhub-notebooks; do sleep 1; done'"
    )
    # As the image's user (www-data), not root.
    cid = NODE.check_output("docker ps -q --filter label=com.docker.swarm.service.name=twinhub-notebook-network-keeper")
    assert NODE.check_output(f"docker exec {cid} id -u") != "0"
