"""A real three-worker Swarm: membership, labels, drain, overlay traffic."""

import json
import os
import time

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = [f"ansible://manager-1?ansible_inventory={INVENTORY}"]

SERVICE = "twinhub-overlay-check"


def nodes(host):
    out = host.check_output("docker node ls --format '{{json .}}'")
    return {n["Hostname"]: n for n in map(json.loads, out.splitlines())}


def inspect_node(host, name):
    return json.loads(host.check_output(f"docker node inspect {name}"))[0]


def test_swarm_has_one_manager_and_three_workers(host):
    n = nodes(host)
    assert sorted(n) == ["manager-1", "worker-1", "worker-2", "worker-3"]
    assert all(v["Status"] == "Ready" for v in n.values()), n
    assert n["manager-1"]["ManagerStatus"] == "Leader"
    assert all(n[w]["ManagerStatus"] == "" for w in ("worker-1", "worker-2", "worker-3"))


def test_removed_worker_is_drained_and_others_active(host):
    n = nodes(host)
    assert n["worker-3"]["Availability"] == "Drain"
    assert n["worker-1"]["Availability"] == "Active"
    assert n["worker-2"]["Availability"] == "Active"


def test_worker_labels_from_inventory(host):
    for w in ("worker-1", "worker-2"):
        assert inspect_node(host, w)["Spec"]["Labels"] == {"twinhub.notebooks": "true"}
    assert inspect_node(host, "manager-1")["Spec"].get("Labels", {}) == {}


def test_notebook_network_is_an_attachable_overlay(host):
    net = json.loads(host.check_output("docker network inspect twinhub-notebooks"))[0]
    assert net["Driver"] == "overlay"
    assert net["Scope"] == "swarm"
    assert net["Attachable"] is True
    # No route out: users' servers reach only what is on the overlay.
    assert net["Internal"] is True
    assert net["IPAM"]["Config"][0]["Subnet"].startswith("10.233.")


@pytest.fixture(scope="module")
def service(host):
    image = os.environ["TWINHUB_IMAGE_PROBE"]
    host.run(f"docker service rm {SERVICE}")
    # Each task serves its own hostname; one task per node, workers only.
    host.check_output(
        f"docker service create -d --name {SERVICE} --replicas 2 --replicas-max-per-node 1"
        f" --constraint node.role==worker --constraint node.labels.twinhub.notebooks==true"
        f" --network twinhub-notebooks {image}"
        " sh -c 'hostname > index.html && exec httpd -f -p 8080 -h .'"
    )
    deadline = time.monotonic() + 90
    tasks = []
    while time.monotonic() < deadline:
        out = host.check_output(f"docker service ps {SERVICE} --filter desired-state=running --format '{{{{json .}}}}'")
        tasks = [json.loads(line) for line in out.splitlines()]
        if len(tasks) == 2 and all(t["CurrentState"].startswith("Running") for t in tasks):
            break
        time.sleep(1)
    yield tasks
    host.run(f"docker service rm {SERVICE}")


def test_service_runs_two_replicas_on_the_active_workers(service):
    assert sorted(t["Node"] for t in service) == ["worker-1", "worker-2"], service


def task_container(worker):
    out = worker.check_output(f"docker ps -q --filter label=com.docker.swarm.service.name={SERVICE}")
    assert out, f"no {SERVICE} task on {worker}"
    return out.splitlines()[0]


def test_tasks_reach_each_other_over_the_overlay(service):
    w1 = testinfra.get_host(f"ansible://worker-1?ansible_inventory={INVENTORY}")
    w2 = testinfra.get_host(f"ansible://worker-2?ansible_inventory={INVENTORY}")
    c1, c2 = task_container(w1), task_container(w2)
    # Task IPs on the notebook network, then a request each way.
    ip2 = w2.check_output(f"docker inspect -f '{{{{(index .NetworkSettings.Networks \"twinhub-notebooks\").IPAddress}}}}' {c2}")
    ip1 = w1.check_output(f"docker inspect -f '{{{{(index .NetworkSettings.Networks \"twinhub-notebooks\").IPAddress}}}}' {c1}")
    name1 = w1.check_output(f"docker exec {c1} hostname")
    name2 = w2.check_output(f"docker exec {c2} hostname")
    assert w1.check_output(f"docker exec {c1} timeout 5 wget -qO- http://{ip2}:8080/index.html") == name2
    assert w2.check_output(f"docker exec {c2} timeout 5 wget -qO- http://{ip1}:8080/index.html") == name1
    # Swarm's DNS knows both tasks by the service name.
    resolved = w1.check_output(f"docker exec {c1} nslookup tasks.{SERVICE}")
    assert ip1 in resolved
    assert ip2 in resolved


def test_tasks_cannot_leave_the_notebook_network(host, service):
    """A server on the internal overlay reaches nothing outside the Swarm."""
    image = os.environ["TWINHUB_IMAGE_PROBE"]
    # Something listening on the manager host's own address.
    host.run("docker rm -f twinhub-outside")
    host.check_output(f"docker run -d --name twinhub-outside --network host {image} httpd -f -p 18080 -h /etc")
    try:
        manager_ip = host.check_output("hostname -i").split()[0]
        assert host.run(f"curl -sf -m 5 http://{manager_ip}:18080/hostname").rc == 0
        w1 = testinfra.get_host(f"ansible://worker-1?ansible_inventory={INVENTORY}")
        c1 = task_container(w1)
        blocked = w1.run(f"docker exec {c1} timeout 5 wget -qO- http://{manager_ip}:18080/hostname")
        assert blocked.rc != 0, blocked.stdout
    finally:
        host.run("docker rm -f twinhub-outside")
