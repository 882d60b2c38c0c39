#!/usr/bin/env python3
"""Split Molecule scenarios into lanes that run at the same time.

    python tools/molecule_lanes.py LANES [SCENARIO ...]   one line per lane

Every scenario names its hosts uniquely (the shared platform is named after
the scenario; tests/unit/test_roles.py checks that no two scenarios share a
host name), so any split is safe; lanes are balanced by the scenarios'
number of hosts (a host costs about a minute of a scenario's time here).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def platform_names(scenario: str) -> list[str]:
    data = yaml.safe_load((ROOT / "molecule" / scenario / "molecule.yml").read_text()) or {}
    platforms = data.get("platforms")
    if platforms is None:  # the shared config's one host, named after the scenario
        return [scenario]
    return [str(p["name"]) for p in platforms]


def lanes(count: int, scenarios: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in range(count)]
    load = [0] * count
    for s in sorted(scenarios, key=lambda s: (-len(platform_names(s)), s)):
        i = load.index(min(load))
        out[i].append(s)
        load[i] += len(platform_names(s))
    return [lane for lane in out if lane]


def main() -> int:
    count = int(sys.argv[1])
    scenarios = sys.argv[2:] or sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
    for lane in lanes(count, scenarios):
        print(" ".join(lane))
    return 0


if __name__ == "__main__":
    sys.exit(main())
