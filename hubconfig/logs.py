"""The hub's logs: JSON lines with ECS field names, and platform events.

Every line is one JSON object the log shipper (roles/log_shipping) sends to
Elasticsearch as it is. Lines that record something operators count (a
login, a spawn and how long it took, a failed spawn, a hub taking over or
fencing itself) also carry `twinhub.event`, `user.name` and, for spawns,
`user.id` (the name as homes and Swarm services spell it, hubconfig.names),
`twinhub.spawn_duration_s`: the Kibana dashboard counts those fields instead
of matching message text.
"""

from __future__ import annotations

import logging
from typing import Any

from hubconfig import names

# JupyterHub's and the leader supervisor's own messages (their format
# strings, before % formatting) -> the event they record.
EVENTS: dict[str, str] = {
    "User logged in: %s": "login",
    "User %s took %.3f seconds to start": "spawn",
    "leader lock %s acquired: this hub is active": "hub_active",
    "lost the leader lock (%s): fencing this hub": "hub_fenced",
}


class EventFilter(logging.Filter):
    """Adds twinhub.event (and the user, the spawn time) to the lines above."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else ""
        event = EVENTS.get(msg)
        if event is None and "failed to start" in msg:
            event = "spawn_failed"
        if event is None:
            return True
        fields: dict[str, Any] = {"twinhub.event": event}
        args = record.args if isinstance(record.args, tuple) else ()
        if event in ("login", "spawn") and args:
            # A named server is "user:name"; the user is the part before.
            fields["user.name"] = str(args[0]).split(":", 1)[0]
            # The spelling of the user's home, service and published/<user>
            # (hubconfig.names): what an operator greps for on the hosts.
            fields["user.id"] = names.escape(fields["user.name"])
        if event == "spawn" and len(args) > 1:
            fields["twinhub.spawn_duration_s"] = round(float(args[1]), 3)
        for key, value in fields.items():
            setattr(record, key, value)
        return True


def json_logging_config(dataset: str) -> dict[str, Any]:
    """logging.config dict pieces: the JSON formatter and the event filter."""
    return {
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "log.level", "name": "log.logger"},
                # ISO 8601 in UTC, the form Elasticsearch's date type reads.
                "timestamp": "@timestamp",
                "static_fields": {"event.dataset": dataset},
            }
        },
        "filters": {"twinhub_events": {"()": "hubconfig.logs.EventFilter"}},
    }


def apply(c: Any, cfg: dict[str, Any]) -> None:
    hub = cfg["hub"]
    c.JupyterHub.log_level = hub["log_level"]
    if hub["log_format"] == "json":
        config = json_logging_config("jupyterhub")
        config["handlers"] = {"console": {"formatter": "json", "filters": ["twinhub_events"]}}
        c.JupyterHub.logging_config = config
