"""Hub services: the idle culler, nbviewer, Prometheus metrics, the operators' service."""

from __future__ import annotations

import sys
from typing import Any

from hubconfig import auth, environment, sharing
from hubconfig.secrets import read_secret, secret_path


def apply(c: Any, cfg: dict[str, Any]) -> None:
    sv = cfg["services"]
    services: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    # What every user holds beyond their own (JupyterHub's `user` role is `self`).
    user_scopes = ["self", *auth.user_scopes(cfg)]

    culler = sv["idle_culler"]
    if culler["enabled"]:
        services.append(
            {
                "name": "idle-culler",
                "command": [
                    sys.executable, "-m", "hubconfig.culler",  # jupyterhub_idle_culler; SIGINT ends it
                    f"--timeout={culler['timeout']}", f"--cull-every={culler['every']}",
                ],
            }
        )  # fmt: skip
        roles.append(
            {
                "name": "idle-culler",
                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                "services": ["idle-culler"],
            }
        )

    nbviewer = sv["nbviewer"]
    if nbviewer["enabled"]:
        # External service on its own origin: hub cookies never reach it.
        # Its address goes in `info`, not `url`: JupyterHub waits for every
        # service with a url (up to its timeout, and with no limit for a host
        # that drops packets) before it restores users' routes, so a stopped
        # nbviewer would hold up every hub start and every failover.
        services.append(
            {
                "name": "nbviewer",
                "display": False,
                "info": {"url": nbviewer["url"], "description": "Published notebooks (shared/published), read-only"},
                "api_token": read_secret(secret_path(cfg, "nbviewer_token"), "hub.secrets_dir/nbviewer_token"),
            }
        )
        # Users find it in the services API (the URL in its info).
        user_scopes += ["list:services!service=nbviewer", "read:services!service=nbviewer"]
        # For `twinhub-publish` in users' servers (images/notebook): where
        # the published area is mounted and the URL nbviewer serves it at.
        environment.add(
            c,
            {
                "TWINHUB_NBVIEWER_URL": nbviewer["url"],
                "TWINHUB_PUBLISH_DIR": cfg["storage"]["shared_mount_path"].rstrip("/") + "/published",
            },
        )

    c.JupyterHub.authenticate_prometheus = sv["metrics"]["authenticate"]
    if sv["metrics"]["authenticate"]:
        services.append(
            {
                "name": "prometheus",
                "api_token": read_secret(secret_path(cfg, "prometheus_token"), "hub.secrets_dir/prometheus_token"),
            }
        )
        roles.append({"name": "prometheus", "scopes": ["read:metrics"], "services": ["prometheus"]})

    if sv["ops"]["enabled"]:
        # The operators' playbooks (playbooks/offboard.yml) call the hub API
        # with this token: remove a leaver (their server, tokens and login
        # go with the user record). Nothing else holds these scopes.
        token = read_secret(secret_path(cfg, "ops_token"), "hub.secrets_dir/ops_token")
        services.append({"name": "twinhub-ops", "api_token": token})
        roles.append({"name": "twinhub-ops", "scopes": ["admin:users", "admin:servers"], "services": ["twinhub-ops"]})

    # Sharing a server (hubconfig.sharing): everyone's role, or the sharing groups'.
    user_scopes += sharing.user_scopes(cfg)
    roles += sharing.roles(cfg)
    if len(user_scopes) > 1:
        roles.append({"name": "user", "scopes": user_scopes})
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles
