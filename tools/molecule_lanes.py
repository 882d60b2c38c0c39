#!/usr/bin/env python3
"""Split Molecule scenarios into lanes that can run at the same time.

    python tools/molecule_lanes.py LANES [SCENARIO ...]   one line per lane

Molecule's docker driver names containers after the platforms, and
scenarios that reuse a name (the shared config's `instance`, say) would
destroy each other's hosts: they go into the same lane, one after another.
Lanes are balanced by the scenarios' number of hosts (a host costs about a
minute of a scenario's time here).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def platform_names(scenario: str) -> set[str]:
    data = yaml.safe_load((ROOT / "molecule" / scenario / "molecule.yml").read_text()) or {}
    platforms = data.get("platforms")
    if platforms is None:  # the shared config's
        platforms = yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text())["platforms"]
    return {p["name"] for p in platforms if not str(p["name"]).startswith("$")}


def lanes(count: int, scenarios: list[str]) -> list[list[str]]:
    names = {s: platform_names(s) for s in scenarios}
    # Scenarios sharing a host name form one group (transitively).
    groups: list[list[str]] = []
    for s in scenarios:
        touching = [g for g in groups if any(names[s] & names[o] for o in g)]
        merged = [s] + [o for g in touching for o in g]
        groups = [g for g in groups if g not in touching] + [merged]
    cost = {s: len(names[s]) for s in scenarios}
    out: list[list[str]] = [[] for _ in range(count)]
    load = [0] * count
    for group in sorted(groups, key=lambda g: -sum(cost[s] for s in g)):
        i = load.index(min(load))
        out[i] += sorted(group)
        load[i] += sum(cost[s] for s in group)
    return [lane for lane in out if lane]


def main() -> int:
    count = int(sys.argv[1])
    scenarios = sys.argv[2:] or sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
    for lane in lanes(count, scenarios):
        print(" ".join(lane))
    return 0


if __name__ == "__main__":
    sys.exit(main())
