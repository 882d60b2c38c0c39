"""Metrics and alarms in the lab: Prometheus (on the proxy host) scrapes
every host, the engines, NGINX and the active hub; alerts fire for real
causes within their `for:` window, read back from Prometheus' API.

Bounded: every wait has a deadline. Leaves hub-a serving, as it found it.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
from labhub import active_hub, switch, wait_serving, wait_standby
from support import lab, lab_exec

LAB_HOSTS = {"proxy", "hub-a", "hub-b", "services", "worker-1", "worker-2"}


def monitoring(port: int = 9090, login: bool = True) -> requests.Session:
    """A session for Prometheus (9090) or Alertmanager (9093): the lab CA, and the operator's login unless told not."""
    session = requests.Session()
    session.verify = lab().ca_file
    # REQUESTS_CA_BUNDLE from the environment would override the lab CA.
    session.trust_env = False
    if login:
        session.auth = lab().monitoring_login()
    return session


def api(path: str, **params) -> dict:
    r = monitoring().get(f"{lab().monitoring_url()}{path}", params=params, timeout=10)
    r.raise_for_status()
    return r.json()["data"]


def test_anonymous_clients_can_neither_read_metrics_nor_silence_alerts():
    prometheus, alertmanager = lab().monitoring_url(9090), lab().monitoring_url(9093)
    silence = {
        "matchers": [{"name": "alertname", "value": "TwinhubActiveHubDown", "isRegex": False}],
        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z", "createdBy": "mallory", "comment": "shh",
    }  # fmt: skip
    anonymous = monitoring(login=False)
    wrong = monitoring()
    wrong.auth = ("ops", "not-the-password")
    for client in (anonymous, wrong):
        assert client.get(f"{prometheus}/api/v1/query", params={"query": "up"}, timeout=10).status_code == 401
        assert client.get(f"{prometheus}/alerts", timeout=10).status_code == 401
        assert client.post(f"{prometheus}/-/reload", timeout=10).status_code == 401
        assert client.get(f"{alertmanager}/api/v2/alerts", timeout=10).status_code == 401
        assert client.post(f"{alertmanager}/api/v2/silences", json=silence, timeout=10).status_code == 401
    # Nothing on those ports in plain HTTP.
    plain = requests.get(prometheus.replace("https://", "http://") + "/api/v1/query", params={"query": "up"}, timeout=10)
    assert plain.status_code == 400
    # The operator's login works, and no silence was made by the attempts.
    silences = monitoring(9093).get(f"{alertmanager}/api/v2/silences", timeout=10)
    assert silences.status_code == 200
    assert not [s for s in silences.json() if s["createdBy"] == "mallory"]


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d)", duration)) if duration else 0.0


def rule(name: str) -> dict:
    return next(r for g in api("/api/v1/rules")["groups"] for r in g["rules"] if r["name"] == name)


def firing(name: str) -> list[dict]:
    return [a for a in api("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == name and a["state"] == "firing"]


def wait_firing(name: str, since: float, timeout: float) -> tuple[dict, float]:
    """The firing alert and the seconds from `since` until Prometheus said so."""
    while True:
        alerts = firing(name)
        if alerts:
            return alerts[0], time.monotonic() - since
        assert time.monotonic() - since < timeout, f"{name} did not fire within {timeout:.0f}s: {api('/api/v1/alerts')}"
        time.sleep(1)


def window(name: str) -> float:
    """How late an alert may fire: its for: window, plus a scrape and two evaluations, plus slack for two cores."""
    cfg = api("/api/v1/status/config")["yaml"]
    scrape = seconds(re.search(r"scrape_interval: (\S+)", cfg).group(1))
    evaluation = seconds(re.search(r"evaluation_interval: (\S+)", cfg).group(1))
    return rule(name)["duration"] + scrape + 2 * evaluation + 15


def test_every_target_is_up():
    deadline = time.monotonic() + 90
    while True:
        targets = api("/api/v1/targets")["activeTargets"]
        down = [(t["labels"]["job"], t["labels"]["instance"], t["lastError"]) for t in targets if t["health"] != "up"]
        if not down or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not down, down
    jobs: dict[str, set[str]] = {}
    for t in targets:
        jobs.setdefault(t["labels"]["job"], set()).add(t["labels"]["instance"])
    assert jobs["node"] == LAB_HOSTS
    assert jobs["docker"] == LAB_HOSTS - {"proxy"}
    assert jobs["nginx"] == {"proxy"}
    assert jobs["jupyterhub"] == {"platform"}
    assert jobs["hub_health"] == {"hub-a", "hub-b"}
    assert jobs["proxy_health"] == {"proxy"}


def test_metrics_of_hub_engines_and_nginx_are_there():
    for query in ("jupyterhub_total_users", "swarm_manager_nodes", "nginx_connections_active", "probe_ssl_earliest_cert_expiry",
                  "node_filesystem_avail_bytes{storage=\"true\",mountpoint=\"/srv/twinhub\"}"):  # fmt: skip
        assert api("/api/v1/query", query=query)["result"], f"no samples of {query}"
    # Exactly one hub serves, and it is the inventory's active hub.
    health = {r["metric"]["hub"]: r["value"][1] for r in api("/api/v1/query", query="probe_success{job='hub_health'}")["result"]}
    assert health == {"hub-a": "1", "hub-b": "0"}, health


def test_killing_the_active_hub_fires_hub_down_and_failover():
    active, _ = active_hub()
    assert active == "hub-a", "the lab's inventory names hub-a active"
    assert not firing("TwinhubActiveHubDown")
    assert not firing("TwinhubHubFailover")
    t_kill = time.monotonic()
    lab_exec("hub-a", "docker", "kill", "twinhub-hub")
    try:
        wait_serving("hub-b")
        failover, failover_s = wait_firing("TwinhubHubFailover", t_kill, window("TwinhubHubFailover"))
        down, down_s = wait_firing("TwinhubActiveHubDown", t_kill, window("TwinhubActiveHubDown"))
        print(f"\nhub-a killed: TwinhubHubFailover firing after {failover_s:.0f}s, TwinhubActiveHubDown after {down_s:.0f}s "
              f"(for: {rule('TwinhubActiveHubDown')['duration']:.0f}s)")  # fmt: skip
        assert failover["labels"]["hub"] == "hub-b"
        assert down["labels"]["hub"] == "hub-a"
        assert down_s >= rule("TwinhubActiveHubDown")["duration"], "fired before its for: window"
        # The standby serves: no "no hub" alarm.
        assert not firing("TwinhubNoHubHealthy")
    finally:
        wait_standby("hub-a")
        r, _took = switch("hub-a")
        assert r.returncode == 0, r.stdout[-3000:]
    deadline = time.monotonic() + 60
    while firing("TwinhubActiveHubDown") or firing("TwinhubHubFailover"):
        assert time.monotonic() < deadline, "the hub alerts did not resolve after switching back"
        time.sleep(2)


@pytest.fixture
def small_filesystem_in_the_storage_tree():
    """A 4 MiB file system mounted under /srv/twinhub on the storage host (the lab's disk is far from full)."""
    path = "/srv/twinhub/.twinhub-fill-test"
    lab_exec("services", "sh", "-c", f"mkdir -p {path} && mount -t tmpfs -o size=4m tmpfs {path}")
    yield path
    lab_exec("services", "sh", "-c", f"umount {path}; rmdir {path}", check=False)


def test_a_full_storage_file_system_fires_its_alert(small_filesystem_in_the_storage_tree):
    path = small_filesystem_in_the_storage_tree
    t0 = time.monotonic()
    lab_exec("services", "dd", "if=/dev/zero", f"of={path}/blob", "bs=1k", "count=3700", "status=none")
    alert, took = wait_firing("TwinhubStorageFilling", t0, window("TwinhubStorageFilling"))
    print(
        f"\nstorage at 90 %: TwinhubStorageFilling firing after {took:.0f}s (for: {rule('TwinhubStorageFilling')['duration']:.0f}s)"
    )
    assert alert["labels"]["mountpoint"] == path
    assert alert["labels"]["instance"] == "services"
    assert alert["labels"]["severity"] == "critical"
