"""Hub failover and switching, as users see it through the lab's NGINX.

A user logs in through the proxy, starts a server and sets a variable in a
kernel; then the active hub dies in several ways, or is switched on purpose,
while a client keeps calling the hub and the user's server. Each test checks
that the standby took over, that the user's server is the same Swarm task
with the same kernel state, that the user is still logged in, and that the
two hubs were never connected to the database at once. Bounded: every wait
has a deadline; the lab is left with hub-a serving and hub-b standing by.
"""

from __future__ import annotations

import time

import pytest
import requests
from labhub import (
    HUBS,
    Bob,
    Poller,
    active_hub,
    container_ip,
    db_ip,
    hub_connections,
    other_hub,
    running_task,
    switch,
    task_container,
    wait_serving,
    wait_standby,
    wait_standby_reaches,
)
from support import lab, lab_exec


@pytest.fixture(scope="module")
def bob():
    user = Bob()
    user.start()
    assert user.run("x = 6 * 7; x") == "42"
    took = wait_standby_reaches("bob")
    print(f"\nboth hubs reach bob's server after {took:.1f}s")
    yield user
    try:
        user.api.delete(f"{user.hub.url}/hub/api/users/bob/server", timeout=60)
    except requests.RequestException as exc:
        print(f"could not stop bob's server: {exc}")


def survived(bob: Bob, task_before: dict) -> None:
    """What a user must find after a failover: same server, same kernel, same login."""
    assert running_task("bob")["ID"] == task_before["ID"], "the user's server was replaced"
    assert bob.run("x") == "42", "the kernel lost its state"
    assert bob.logged_in(), "the user was logged out"
    model = bob.api.get(f"{bob.hub.url}/hub/api/users/bob").json()
    assert model["servers"][""]["ready"], model


def settled(bob: Bob, timeout: float = 90) -> None:
    """Until bob's server answers through NGINX (its route is back after a takeover)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if bob.api.get(f"{bob.base}/api/status", timeout=10, allow_redirects=False).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"bob's server not routed through NGINX within {timeout}s"
        time.sleep(1)


def test_killed_hub_container_fails_over(bob):
    active, _ = active_hub()
    task = running_task("bob")
    poller = bob.poller()
    t_kill = time.monotonic()
    lab_exec(active, "docker", "kill", "twinhub-hub")
    took = wait_serving(other_hub(active))
    time.sleep(2)
    poller.stop()
    outage = poller.longest_gap(f"{bob.hub.url}/hub/api/users/bob", t_kill)
    print(f"\nkill {active}'s hub container: standby serving after {took:.1f}s; hub API outage through NGINX {outage:.2f}s;"
          f" {poller.summary()}")  # fmt: skip
    survived(bob, task)
    # The user's server answered throughout: its traffic never needed the hub.
    assert poller.longest_gap(f"{bob.base}/api/status", t_kill) < 15
    wait_standby(active)


def test_stopped_hub_host_fails_over(bob):
    active, _ = active_hub()
    task = running_task("bob")
    poller = bob.poller()
    lab().stop(active, timeout=5)
    try:
        took = wait_serving(other_hub(active))
        time.sleep(2)
        poller.stop()
        print(f"\nstop host {active}: standby serving after {took:.1f}s;"
              f" {poller.summary()}")  # fmt: skip
        survived(bob, task)
    finally:
        lab().start(active)
    wait_standby(active, timeout=240)


def test_a_second_hub_never_starts_while_one_holds_the_lock(bob):
    active, _ = active_hub()
    standby = other_hub(active)
    # By hand, bypassing the supervisor: refused before it opens the database.
    r = lab_exec(
        standby, "docker", "exec", "twinhub-hub", "jupyterhub", "-f",
        "/opt/hub/lib/python3.11/site-packages/hubconfig/jupyterhub_config.py", check=False, timeout=120,
    )  # fmt: skip
    assert r.returncode != 0
    assert "refusing to start JupyterHub outside the leader supervisor" in r.stdout + r.stderr
    # A second supervisor in the standby's container waits on the lock.
    r = lab_exec(
        standby, "docker", "exec", "twinhub-hub", "timeout", "8", "python", "-m", "hubconfig.leader", "--", "sleep", "600",
        check=False, timeout=60,
    )  # fmt: skip
    assert r.returncode == 124, r.stdout + r.stderr  # still waiting when timeout stopped it
    assert "held elsewhere: standing by" in r.stderr, r.stderr
    assert "acquired" not in r.stderr, r.stderr
    # PostgreSQL agrees: JupyterHub sessions come from one hub host only.
    conns = hub_connections()
    assert list(conns) == [container_ip(active)], conns


def test_hub_cut_off_from_the_database_is_fenced(bob):
    active, _ = active_hub()
    task = running_task("bob")
    rules = [["-d", db_ip(), "-p", "tcp", "--dport", "5432"], ["-s", db_ip(), "-p", "tcp", "--sport", "5432"]]
    for rule in rules:
        lab_exec(active, "iptables", "-I", "DOCKER-USER", *rule, "-j", "DROP")
    try:
        took = wait_serving(other_hub(active), timeout=60)
        print(f"\ncut {active} off from PostgreSQL: fenced, standby serving after {took:.1f}s")
        # The cut-off hub serves nothing: it cannot prove it is alone.
        assert active not in lab().serving_hubs(timeout=5)
    finally:
        for rule in rules:
            lab_exec(active, "iptables", "-D", "DOCKER-USER", *rule, "-j", "DROP", check=False)
    survived(bob, task)
    wait_standby(active)
    # The fenced hub's own sessions died with it; PostgreSQL notices the
    # vanished client by its keepalives (postgres role: within ~40 s).
    deadline = time.monotonic() + 90
    while list(conns := hub_connections()) != [container_ip(other_hub(active))]:
        assert time.monotonic() < deadline, conns
        time.sleep(2)


def test_planned_switch_under_load_fails_no_request(bob):
    # From a settled pair: the hub that took over in the test before may
    # still be restoring routes (its proxy sends /user/bob to the hub then).
    settled(bob)
    active, _ = active_hub()
    target = other_hub(active)
    task = running_task("bob")
    load = Poller(bob.api, [f"{bob.hub.url}/hub/api/users/bob", f"{bob.base}/api/status"], rate=50)
    load.start()
    result, took = switch(target)
    time.sleep(2)
    load.stop()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    rate = load.achieved_rate()
    print(f"\nplanned switch {active} -> {target}: {took:.0f}s, {len(load.results)} requests at {rate:.0f}/s,"
          f" {load.summary()}")  # fmt: skip
    assert rate >= 45
    assert load.failures() == []
    assert active_hub()[0] == target
    survived(bob, task)


def test_server_killed_while_no_hub_runs_is_reported_stopped(bob):
    """Runs last: it stops bob's server, then switches back to the inventory's hub-a."""
    for host in HUBS:
        lab_exec(host, "systemctl", "stop", "twinhub-hub")
    try:
        task = running_task("bob")
        lab_exec(task["Node"], "docker", "kill", task_container("bob", task["Node"]))
    finally:
        for host in HUBS:
            lab_exec(host, "systemctl", "start", "twinhub-hub")
    active_hub()
    deadline = time.monotonic() + 60
    while bob.api.get(f"{bob.hub.url}/hub/api/users/bob", timeout=60).json()["servers"]:
        assert time.monotonic() < deadline, "the new hub still reports bob's dead server as running"
        time.sleep(1)
    result, _ = switch("hub-a")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert active_hub()[0] == "hub-a"
    assert bob.logged_in()
