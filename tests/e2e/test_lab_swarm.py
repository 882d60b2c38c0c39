"""The lab after site.yml: a Swarm of three managers and two workers.

Ordered: the idempotence check runs on the freshly deployed lab, the
manager-loss check last (it stops and restarts a host container).
"""

from __future__ import annotations

import re
import subprocess
import time

from labhub import active_hub, wait_standby
from support import ansible_playbook, lab, lab_exec, swarm_nodes

MANAGERS = {"hub-a", "hub-b", "services"}
WORKERS = {"worker-1", "worker-2"}


def test_swarm_membership_follows_the_inventory():
    nodes = swarm_nodes()
    assert set(nodes) == MANAGERS | WORKERS
    assert all(n["Status"] == "Ready" and n["Availability"] == "Active" for n in nodes.values()), nodes
    assert {h for h, n in nodes.items() if n["ManagerStatus"] in ("Leader", "Reachable")} == MANAGERS
    assert sum(n["ManagerStatus"] == "Leader" for n in nodes.values()) == 1


def test_workers_carry_the_notebook_label():
    for worker in WORKERS:
        labels = lab_exec("hub-a", "docker", "node", "inspect", "-f", "{{json .Spec.Labels}}", worker).stdout
        assert '"twinhub.notebooks":"true"' in labels


def test_notebook_network_is_attachable():
    out = lab_exec("hub-a", "docker", "network", "inspect", "-f", "{{.Driver}} {{.Attachable}}", "twinhub-notebooks")
    assert out.stdout.split() == ["overlay", "true"]


def test_second_site_run_changes_nothing():
    result = ansible_playbook("-i", "inventories/lab", "playbooks/site.yml", timeout=900)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.M)
    assert {host for host, *_ in recap} == MANAGERS | WORKERS | {"proxy"}, recap
    assert all(changed == "0" and unreachable == "0" and failed == "0" for _, changed, unreachable, failed in recap), recap


def test_swarm_survives_losing_a_hub_host():
    """Why the lab has three managers: losing a hub host keeps the Raft quorum."""
    lab().stop("hub-b", timeout=5)
    try:
        deadline = time.monotonic() + 60
        nodes = {}
        while time.monotonic() < deadline:
            try:
                nodes = swarm_nodes("hub-a")
            except subprocess.CalledProcessError:
                # hub-b was the Raft leader: no manager answers until the
                # other two have elected one (~10 s).
                time.sleep(1)
                continue
            if nodes["hub-b"]["Status"] == "Down":
                break
            time.sleep(1)
        assert nodes["hub-b"]["Status"] == "Down", nodes
        assert nodes["hub-b"]["ManagerStatus"] == "Unreachable"
        # The Swarm still takes changes (needs quorum): label a worker and read it back.
        lab_exec("hub-a", "docker", "node", "update", "--label-add", "twinhub.quorum-check=1", "worker-1")
        labels = lab_exec("hub-a", "docker", "node", "inspect", "-f", "{{json .Spec.Labels}}", "worker-1").stdout
        assert '"twinhub.quorum-check":"1"' in labels
    finally:
        lab_exec("hub-a", "docker", "node", "update", "--label-rm", "twinhub.quorum-check", "worker-1", check=False)
        lab().start("hub-b")
    # The host comes back by itself: systemd starts the engine, it rejoins.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        nodes = swarm_nodes("hub-a")
        if nodes["hub-b"]["Status"] == "Ready" and nodes["hub-b"]["ManagerStatus"] == "Reachable":
            break
        time.sleep(2)
    assert nodes["hub-b"]["Status"] == "Ready", nodes
    assert nodes["hub-b"]["ManagerStatus"] == "Reachable", nodes
    # And its hub stands by again (the pair can fail over), by itself too.
    serving, _ = active_hub()
    assert serving == "hub-a"
    took = wait_standby("hub-b", timeout=180)
    print(f"hub-b's hub stands by again {took:.0f}s after its host rejoined the Swarm")
