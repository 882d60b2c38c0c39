"""The platform end to end: users log in through the hub, servers run as
Swarm services on the workers, files live on the storage host.

Ordered as a user's day: spawn, compute, share, stop and come back; then
what a server must not reach; the worker-loss check runs last.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
import yaml
from labhub import User, lab_hub, running_task, service_of, task_container
from support import ROOT, lab, lab_exec, swarm_nodes

WORKERS = {"worker-1", "worker-2"}
STORAGE_HOME = "/srv/twinhub/home"


@pytest.fixture(scope="module")
def hub():
    return lab_hub()


@pytest.fixture(scope="module")
def alice(hub):
    user = User(hub, "alice")
    took = user.spawn("small")
    print(f"\nalice's first spawn (login to ready, through the hub): {took:.1f}s")
    yield user
    user.stop_quietly()


@pytest.fixture(scope="module")
def bob(hub):
    user = User(hub, "bob")
    user.spawn("medium")
    yield user
    user.stop_quietly()


def test_spawn_form_lists_profiles_in_the_inventorys_order(hub):
    # What a user sees at /hub/spawn: the profiles as the operator listed
    # them, the first one chosen (no default_profile in the lab).
    platform = yaml.safe_load((ROOT / "inventories/lab/group_vars/all/platform.yml").read_text())
    listed = list(platform["hub_platform_config"]["spawner"]["profiles"])
    form = hub.login("carol").get(f"{hub.url}/hub/spawn", timeout=30)
    assert form.status_code == 200, form.text
    shown = re.findall(r'name="profile" value="([^"]+)"', form.text)
    assert shown == listed
    assert re.findall(r'value="([^"]+)" checked', form.text) == listed[:1]


def test_server_is_a_swarm_service_on_a_worker_with_its_profile(alice):
    task = running_task("alice")
    assert task["Node"] in WORKERS, task
    spec = service_of("alice")["Spec"]["TaskTemplate"]
    assert spec["ContainerSpec"]["User"] == "1000:100"
    # The small profile: one CPU, 1 GiB, and the platform's PIDs limit.
    assert spec["Resources"]["Limits"] == {"NanoCPUs": 1_000_000_000, "MemoryBytes": 1024**3, "Pids": 1024}
    assert "node.labels.twinhub.notebooks == true" in spec["Placement"]["Constraints"]
    # And the process inside really runs as the notebook uid.
    assert alice.run("import os; (os.getuid(), os.getgid())") == "(1000, 100)"


def test_kernel_writes_a_private_file_on_the_storage_host(alice):
    marker = uuid.uuid4().hex
    alice.run(f"open('/home/jovyan/results.txt', 'w').write({marker!r})")
    # Read back on the storage host (the NFS server's tree), not on a worker.
    out = lab_exec("services", "stat", "-c", "%u %g %a", f"{STORAGE_HOME}/alice/results.txt").stdout.split()
    assert out[0] == "1000"
    assert lab_exec("services", "cat", f"{STORAGE_HOME}/alice/results.txt").stdout == marker
    assert lab_exec("services", "stat", "-c", "%u %a", f"{STORAGE_HOME}/alice").stdout.split() == ["1000", "700"]


def test_shared_area_is_shared_and_homes_are_not(alice, bob):
    note = uuid.uuid4().hex
    alice.run(f"open('/home/jovyan/shared/from-alice.txt', 'w').write({note!r})")
    assert bob.run("open('/home/jovyan/shared/from-alice.txt').read()") == repr(note)
    bob.run("open('/home/jovyan/shared/from-bob.txt', 'w').write('hi')")
    assert alice.run("open('/home/jovyan/shared/from-bob.txt').read()") == "'hi'"
    # Bob's server has his own home only: alice's file is nowhere in it.
    found = bob.run(
        "import os; [os.path.join(d, f) for top in ('/home', '/srv', '/mnt') for d, _, fs in os.walk(top) "
        "for f in fs if f == 'results.txt']"
    )
    assert found == "[]"
    mounts = bob.run("open('/proc/self/mountinfo').read().count('/home/alice')")
    assert mounts == "0"


def test_user_server_is_fenced_off(alice):
    checks = alice.run(
        "import os, socket\n"
        "def reach(host, port):\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=3).close(); return True\n"
        "    except OSError:\n"
        "        return False\n"
        "status = open('/proc/self/status').read()\n"
        "nnp = [l.split()[1] for l in status.splitlines() if l.startswith('NoNewPrivs')][0]\n"
        "capeff = [l.split()[1] for l in status.splitlines() if l.startswith('CapEff')][0]\n"
        "(os.path.exists('/var/run/docker.sock'), os.path.exists('/run/docker.sock'),\n"
        f" reach({db_address()!r}, 5432), reach({db_address()!r}, 2375), reach({db_address()!r}, 2377), nnp, capeff)"
    )
    assert checks == "(False, False, False, False, False, '1', '0000000000000000')", checks


def db_address() -> str:
    out = lab_exec("services", "hostname", "-I").stdout.split()
    return out[0]


def test_stop_and_come_back_files_stay(alice):
    alice.stop()
    assert "twinhub-alice" not in lab_exec("services", "docker", "service", "ls", "--format", "{{.Name}}").stdout.split()
    alice.spawn("small")
    assert alice.run("open('/home/jovyan/results.txt').read()") == repr(
        lab_exec("services", "cat", f"{STORAGE_HOME}/alice/results.txt").stdout
    )


def test_losing_a_worker_loses_no_server_for_long_and_no_file(alice):
    """Stop the worker running alice's server: she gets a server on the other one."""
    node = running_task("alice")["Node"]
    other = (WORKERS - {node}).pop()
    alice.run("open('/home/jovyan/before-loss.txt', 'w').write('kept')")
    lab().stop(node, timeout=2)
    try:
        deadline = time.monotonic() + 180
        served = False
        while time.monotonic() < deadline and not served:
            model = alice.api.get(f"{alice.hub.url}/hub/api/users/alice").json()
            server = model.get("servers", {}).get("")
            if not server:
                alice.spawn("small")  # the hub noticed the loss; the user starts again
            try:
                served = running_task("alice")["Node"] == other and alice.run("1 + 1") == "2"
            except Exception:  # retried until the deadline
                time.sleep(2)
        assert served, f"alice has no working server on {other}"
        assert task_container("alice", other)
        assert alice.run("open('/home/jovyan/before-loss.txt').read()") == "'kept'"
    finally:
        lab().start(node)
        # Back in the Swarm before the next suite looks at it.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and swarm_nodes("services")[node]["Status"] != "Ready":
            time.sleep(2)
