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

# Wall seconds of each scenario in CI on the 2-core build machine
# (2026-12-07, two workers beside the lab's deploy). Only the order reads
# them: a stale figure makes the queue less tight, never a test different.
# A scenario not listed here counts as long (it runs early).
SECONDS_IN_CI = {
    "proxy": 426,
    "backup": 307,
    "lemonldap": 285,
    "ldap": 206,
    "swarm": 184,
    "postgres": 166,
    "registry": 146,
    "kdc": 132,
    "hub": 129,
    "slurm": 127,
    "monitoring": 122,
    "log_shipping": 121,
    "docker": 118,
    "firewall": 107,
    "relay": 94,
    "nfs_client": 86,
    "nfs_server": 85,
    "sssd": 82,
    "twinhub": 69,
    "common": 62,
    "owncloud": 42,
    "pki": 35,
    "nbviewer": 33,
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
