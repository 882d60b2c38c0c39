#!/usr/bin/env python3
"""The order `./twinhub test` runs Molecule scenarios in: longest first.

    python tools/molecule_queue.py [SCENARIO ...]   one scenario per line

`./twinhub` puts the list in a queue file that its workers take scenarios
from (two at first; the lab's deploy joins as a third when it is done), so
a worker that finishes early takes the next scenario instead of idling while
a fixed lane still has a long one ahead. Longest first keeps the last
scenario to start a short one: the phase ends within a short scenario of
its workers' mean. Every scenario names its hosts uniquely (the shared
platform is named after the scenario; tests/unit/test_roles.py checks that
no two scenarios share a host name), so any two can run at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Wall seconds of each scenario in CI on the 2-core build machine: the
# mean of two CI runs (2026-12-06 and -07, two workers beside the lab's
# deploy; one scenario's time swings up to 2x with what runs beside it).
# Only the order reads them: a stale figure makes the queue less tight,
# never a test different. A scenario not listed here counts as long (it
# runs early).
SECONDS_IN_CI = {
    "proxy": 384,
    "backup": 268,
    "lemonldap": 246,
    "hub": 203,
    "postgres": 195,
    "swarm": 168,
    "ldap": 164,
    "monitoring": 155,
    "registry": 142,
    "sssd": 134,
    "slurm": 127,
    "kdc": 120,
    "log_shipping": 116,
    "docker": 110,
    "firewall": 108,
    "relay": 106,
    "nfs_server": 92,
    "nfs_client": 78,
    "common": 69,
    "twinhub": 62,
    "owncloud": 59,
    "pki": 46,
    "nbviewer": 42,
}
UNKNOWN = max(SECONDS_IN_CI.values())


def queue(scenarios: list[str]) -> list[str]:
    return sorted(scenarios, key=lambda s: (-SECONDS_IN_CI.get(s, UNKNOWN), s))


def main() -> int:
    scenarios = sys.argv[1:] or sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
    print("\n".join(queue(scenarios)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
