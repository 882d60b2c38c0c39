"""twinhub's hub configuration: one platform config file -> JupyterHub traits.

In jupyterhub_config.py (the hub image ships hubconfig/jupyterhub_config.py):

    from hubconfig import configure
    configure(get_config())

Each module sets the traits of one concern; schema.py validates the file
first, and a bad file stops the hub with a message naming the key.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_PATH = "/etc/twinhub/platform.yaml"
EX_CONFIG = 78

__all__ = ["PlatformConfigError", "configure", "load"]


def __getattr__(name: str) -> Any:
    # The schema (jsonschema: over a second of imports) only when asked for:
    # `hubconfig.names` alone is imported by Ansible's filters (every task
    # that spells a user's name) and by the leader supervisor at start-up.
    if name in ("PlatformConfigError", "load"):
        from hubconfig import schema

        return getattr(schema, name)
    raise AttributeError(f"module 'hubconfig' has no attribute {name!r}")


def configure(c: Any, path: str | Path | None = None) -> dict[str, Any]:
    """Validate the platform config and set c's traits from it."""
    # Imported here, not at the top: `python -m hubconfig.leader` imports
    # this package too and must start fast (it is the standby's start-up).
    from hubconfig import auth, hub, logs, names, services, sharing, spawner, storage
    from hubconfig.schema import PlatformConfigError, load

    path = path or os.environ.get("TWINHUB_PLATFORM_CONFIG", DEFAULT_PATH)
    try:
        cfg = load(path)
        for module in (hub, logs, auth, names, spawner, storage, services, sharing):
            module.apply(c, cfg)
    except PlatformConfigError as exc:
        # JupyterHub logs and ignores exceptions from its config file and
        # would start on defaults: exit instead.
        print(f"twinhub: refusing to start, bad platform config: {exc}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from exc
    return cfg
