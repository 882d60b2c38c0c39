"""The log pipeline's pieces agree: every field the hub, NGINX and rsyslog
write is mapped in the index template with the right type, and the Kibana
dashboard counts only fields that exist."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import log_assets  # noqa: E402

from hubconfig.logs import EventFilter  # noqa: E402

NGINX_CONF = (ROOT / "roles" / "proxy" / "templates" / "nginx.conf.j2").read_text()
RSYSLOG_CONF = (ROOT / "roles" / "log_shipping" / "templates" / "twinhub-elasticsearch.conf.j2").read_text()


def mapped_type(name: str) -> str | None:
    node = json.loads((log_assets.FILES / "index-template.json").read_text())["template"]["mappings"]["properties"]
    parts = ["@timestamp"] if name == "@timestamp" else name.split(".")
    for part in parts[:-1]:
        node = node.get(part, {}).get("properties", {})
    return node.get(parts[-1], {}).get("type")


def test_generated_files_are_up_to_date():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "log_assets.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_every_nginx_access_log_field_is_mapped():
    fmt = NGINX_CONF[NGINX_CONF.index("log_format twinhub_json") : NGINX_CONF.index("access_log {{")]
    fields = re.findall(r"'\"([^\"]+)\":(\"?)\$", fmt)
    assert len(fields) >= 15
    for name, quoted in fields:
        kind = mapped_type(name)
        assert kind, f"NGINX writes {name} but the index template does not map it"
        # Unquoted values are numbers in the JSON line.
        assert (kind in ("long", "float")) == (quoted == ""), (name, kind)


def test_every_field_rsyslog_writes_is_mapped():
    names = [*re.findall(r'outname="([^"]+)"', RSYSLOG_CONF), "host.name", "event.dataset"]
    assert "message" in names
    for name in names:
        assert mapped_type(name), name


@pytest.mark.parametrize(
    ("msg", "args", "expected"),
    [
        ("User logged in: %s", ("alice",), {"twinhub.event": "login", "user.name": "alice", "user.id": "alice"}),
        ("User logged in: %s", ("john.doe",), {"twinhub.event": "login", "user.name": "john.doe", "user.id": "john-2edoe"}),
        ("User %s took %.3f seconds to start", ("bob:gpu", 5.67891), {"twinhub.event": "spawn", "user.name": "bob",
                                                                          "twinhub.spawn_duration_s": 5.679}),
        ("leader lock %s acquired: this hub is active", (7,), {"twinhub.event": "hub_active"}),
        ("lost the leader lock (%s): fencing this hub", ("gone",), {"twinhub.event": "hub_fenced"}),
        ("carol's server failed to start", (), {"twinhub.event": "spawn_failed"}),
    ],
)  # fmt: skip
def test_platform_events_are_tagged_with_mapped_fields(msg, args, expected):
    record = logging.LogRecord("JupyterHub", logging.INFO, __file__, 1, msg, args, None)
    assert EventFilter().filter(record)
    assert {k: getattr(record, k) for k in expected} == expected
    for key in expected:
        assert mapped_type(key), key


def test_other_lines_pass_untagged():
    record = logging.LogRecord("JupyterHub", logging.INFO, __file__, 1, "200 GET /hub/health (@127.0.0.1) 1.2ms", (), None)
    assert EventFilter().filter(record)
    assert not hasattr(record, "twinhub.event")


def test_dashboard_counts_only_mapped_fields_and_every_panel_resolves():
    objects = [json.loads(line) for line in (log_assets.FILES / "kibana-dashboard.ndjson").read_text().splitlines()]
    by_type: dict[str, list[dict]] = {}
    for o in objects:
        by_type.setdefault(o["type"], []).append(o)
    (view,) = by_type["index-pattern"]
    assert view["attributes"]["timeFieldName"] == "@timestamp"
    vis_ids = {v["id"] for v in by_type["visualization"]}
    for vis in by_type["visualization"]:
        state = json.loads(vis["attributes"]["visState"])
        for agg in state["aggs"]:
            if "field" in agg["params"]:
                assert mapped_type(agg["params"]["field"]), (vis["id"], agg["params"]["field"])
        query = json.loads(vis["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]
        for field in re.findall(r"([\w.@]+):", query):
            assert mapped_type(field), (vis["id"], field)
        assert vis["references"][0]["id"] == view["id"]
    (dashboard,) = by_type["dashboard"]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    refs = {r["name"]: r["id"] for r in dashboard["references"]}
    assert {refs[p["panelRefName"]] for p in panels} == vis_ids
    titles = " ".join(v["attributes"]["title"] for v in by_type["visualization"]).lower()
    for topic in ("logins", "spawns", "spawn duration", "takeovers", "errors by component", "active users"):
        assert topic in titles, topic
