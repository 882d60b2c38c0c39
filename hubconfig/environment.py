"""Users' servers' environment, added to by several modules.

spawner.py (the operator's spawner.environment), storage.py and services.py
each add variables; `add` merges, so the modules can apply in any order. A
variable two of them set differently is a configuration error, not a
silent last-one-wins.
"""

from __future__ import annotations

from typing import Any

from hubconfig.schema import PlatformConfigError


def add(c: Any, values: dict[str, str]) -> None:
    """Merge values into c.Spawner.environment."""
    spawner = c.Spawner
    current = spawner["environment"] if "environment" in spawner and isinstance(spawner["environment"], dict) else {}
    clashes = sorted(k for k, v in values.items() if k in current and current[k] != v)
    if clashes:
        raise PlatformConfigError(
            f"spawner.environment: {', '.join(clashes)} set twice with different values"
            f" ({', '.join(f'{k}={current[k]!r} and {values[k]!r}' for k in clashes)}); expected one value each"
            " (twinhub sets these itself: leave them out of spawner.environment)"
        )
    spawner.environment = {**current, **values}
