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


def stub_pam(monkeypatch, auth_errno: int | None = None, account_errno: int | None = None) -> list[tuple[str, str, str]]:
    """pamela's two PAM steps stubbed (auth, account), each refusing with the given PAM code;
    returns the list of calls (step, user, service) as they happen."""
    import pamela

    calls: list[tuple[str, str, str]] = []

    def step(name: str, errno: int | None):
        def call(username, *args, service, encoding):
            calls.append((name, username, service))
            if errno is not None:
                raise pamela.PAMError(errno=errno)

        return call

    monkeypatch.setattr(pamela, "authenticate", step("auth", auth_errno))
    monkeypatch.setattr(pamela, "check_account", step("account", account_errno))
    return calls
