"""Helpers shared by twinhub's pytest suites (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The lab toolkit lives in tools/ (on pytest's path; a script run outside
# pytest gets it here).
if str(ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(ROOT / "tools"))

from labkit import ansible_playbook, free_port, image, lab, lab_exec  # noqa: E402, F401 (re-exported for the suites)


def swarm_nodes(manager: str = "hub-a") -> dict[str, dict]:
    """`docker node ls` on a lab manager, by hostname."""
    out = lab_exec(manager, "docker", "node", "ls", "--format", "{{json .}}").stdout
    return {n["Hostname"]: n for n in map(json.loads, out.splitlines())}
