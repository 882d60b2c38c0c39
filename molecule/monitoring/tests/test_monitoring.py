"""Prometheus, Alertmanager and the exporters: targets up, rules loaded,
alerts fire on real conditions and reach the webhook receiver."""

import json
import os
import time

import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOST = testinfra.get_host(f"ansible://monitor?ansible_inventory={INVENTORY}")


# monitoring_web_users in molecule.yml; TLS from the scenario's platform CA.
OPS = "ops:molecule-operator-password"
CURL = "curl -s --max-time 10 --cacert /etc/prometheus/tls/ca.crt"


def api(path):
    return json.loads(HOST.check_output(f"{CURL} -f -u {OPS} 'https://monitor:9090{path}'"))["data"]


def status(url, extra=""):
    return HOST.check_output(f"{CURL} -o /dev/null -w '%{{http_code}}' {extra} '{url}' || true")


def test_anonymous_clients_can_neither_read_nor_silence():
    silence = (
        """-X POST -H 'Content-Type: application/json' -d '{"matchers": [{"name": "alertname", "value": "x", """
        """"isRegex": false}], "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z", """
        """"createdBy": "mallory", "comment": "quiet"}'"""
    )
    for url in ("https://monitor:9090/api/v1/query?query=up", "https://monitor:9090/graph", "https://monitor:9093/api/v2/alerts"):
        assert status(url) == "401", url
        assert status(url, "-u ops:wrong-password") == "401", url
    assert status("https://monitor:9093/api/v2/silences", silence) == "401"
    assert status("https://monitor:9090/-/reload", "-X POST") == "401"
    # No plain HTTP on those ports.
    assert status("http://monitor:9090/api/v1/query?query=up") in ("000", "400")
    # An operator reads and silences.
    assert status("https://monitor:9090/api/v1/query?query=up", f"-u {OPS}") == "200"
    made = json.loads(HOST.check_output(f"{CURL} -f -u {OPS} {silence} https://monitor:9093/api/v2/silences"))
    HOST.check_output(f"{CURL} -f -u {OPS} -X DELETE https://monitor:9093/api/v2/silence/{made['silenceID']}")


def test_only_hashes_on_the_host():
    web = HOST.file("/etc/prometheus/web.yml")
    assert (web.user, web.group, web.mode) == ("root", "prometheus", 0o640)
    assert "molecule-operator-password" not in web.content_string
    assert web.content_string.count("$2b$10$") == 2
    key = HOST.file("/etc/prometheus/tls/monitoring.key")
    assert (key.group, key.mode & 0o007) == ("prometheus", 0)
    HOST.check_output("promtool check web-config /etc/prometheus/web.yml")


def wait_alert(name, timeout=60):
    """The alert's labels once Prometheus says it fires."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        firing = [a for a in api("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == name and a["state"] == "firing"]
        if firing:
            return firing[0]["labels"]
        time.sleep(1)
    raise AssertionError(f"{name} did not fire in {timeout}s: {api('/api/v1/alerts')}")


def delivered(name, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = HOST.file("/var/log/webhook-alerts.jsonl")
        if log.exists:
            for line in log.content_string.splitlines():
                body = json.loads(line)
                if any(a["labels"]["alertname"] == name and a["status"] == "firing" for a in body["alerts"]):
                    return body
        time.sleep(1)
    raise AssertionError(f"{name} was not delivered to the webhook in {timeout}s")


def test_services_run_as_prometheus_not_root():
    for unit in ("prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter", "prometheus-node-exporter"):
        service = HOST.service(unit)
        assert service.is_running, unit
        assert service.is_enabled, unit
        pid = HOST.check_output(f"systemctl show -p MainPID --value {unit}")
        assert HOST.check_output(f"ps -o user= -p {pid}") == "prometheus", unit


def test_alertmanager_does_not_open_a_gossip_port():
    assert not HOST.socket("tcp://0.0.0.0:9094").is_listening
    assert HOST.socket("tcp://127.0.0.1:9115").is_listening  # blackbox: loopback only
    assert not HOST.socket("tcp://0.0.0.0:9115").is_listening


def test_every_target_is_up():
    targets = api("/api/v1/targets")["activeTargets"]
    jobs = {t["labels"]["job"]: t["health"] for t in targets}
    assert set(jobs) == {"prometheus", "alertmanager", "node"}, jobs
    deadline = time.monotonic() + 30
    while any(t["health"] != "up" for t in targets) and time.monotonic() < deadline:
        time.sleep(1)
        targets = api("/api/v1/targets")["activeTargets"]
    assert all(t["health"] == "up" for t in targets), [(t["labels"], t["lastError"]) for t in targets]
    node = next(t for t in targets if t["labels"]["job"] == "node")
    assert node["labels"]["instance"] == "monitor"
    assert node["labels"]["storage"] == "true"


def test_all_twinhub_rules_are_loaded():
    rules = {r["name"] for g in api("/api/v1/rules")["groups"] for r in g["rules"]}
    assert {
        "TwinhubActiveHubDown", "TwinhubHubFailover", "TwinhubNoHubHealthy", "TwinhubProxyDown",
        "TwinhubSpawnFailuresRising", "TwinhubSpawnSlow", "TwinhubStorageFilling", "TwinhubBackupStale",
        "TwinhubCertificateExpiring", "TwinhubTargetDown", "TwinhubBackupCheckFailed",
    } <= rules  # fmt: skip


def test_a_full_storage_file_system_fires_and_is_delivered():
    """A small file system mounted under the storage tree, filled to 90 %."""
    HOST.check_output("mkdir -p /srv/twinhub/fill && mount -t tmpfs -o size=4m tmpfs /srv/twinhub/fill")
    try:
        HOST.check_output("dd if=/dev/zero of=/srv/twinhub/fill/blob bs=1k count=3700 status=none")
        labels = wait_alert("TwinhubStorageFilling")
        assert labels["mountpoint"] == "/srv/twinhub/fill"
        assert labels["severity"] == "critical"
        body = delivered("TwinhubStorageFilling")
        assert body["receiver"] == "twinhub"
    finally:
        HOST.run("umount /srv/twinhub/fill && rmdir /srv/twinhub/fill")


def test_a_backup_older_than_the_limit_fires():
    path = "/var/lib/prometheus/node-exporter/twinhub_backup.prom"
    stale = int(time.time()) - 27 * 3600
    HOST.check_output(f"echo 'twinhub_backup_last_success_timestamp_seconds {stale}' > {path}")
    try:
        wait_alert("TwinhubBackupStale")
    finally:
        HOST.run(f"rm -f {path}")


def test_a_failed_repository_check_fires():
    path = "/var/lib/prometheus/node-exporter/twinhub_backup_check.prom"
    HOST.check_output(f"echo 'twinhub_backup_check_success 0' > {path}")
    try:
        labels = wait_alert("TwinhubBackupCheckFailed")
        assert labels["severity"] == "critical"
    finally:
        HOST.run(f"rm -f {path}")


def test_configs_pass_their_own_checkers():
    HOST.check_output("promtool check config /etc/prometheus/prometheus.yml")
    HOST.check_output("amtool check-config /etc/prometheus/alertmanager.yml")
