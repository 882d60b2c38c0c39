"""Helpers shared by twinhub's pytest suites (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The lab toolkit lives in tools/ (pytest has it on its path; bench/ and
# scripts get it here).
if str(ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(ROOT / "tools"))

from labkit import Result, lab  # noqa: E402


def image(name: str) -> str:
    """Tag of a project image, from the environment or .cache/images.env."""
    key = "TWINHUB_IMAGE_" + name.upper().replace("-", "_")
    if key in os.environ:
        return os.environ[key]
    env = ROOT / ".cache" / "images.env"
    for line in env.read_text().splitlines() if env.exists() else []:
        k, _, v = line.partition("=")
        if k == key:
            return v
    raise RuntimeError(f"{key} unknown: run `./twinhub images` first")


def ansible_playbook(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_CACHE_PLUGIN="memory")
    playbook = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run([str(playbook), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def lab_exec(host: str, *cmd: str, check: bool = True, timeout: int = 60) -> Result:
    """Run a command on a lab host (through the lab toolkit, tools/labkit.py)."""
    return lab().exec(host, *cmd, check=check, timeout=timeout)


def swarm_nodes(manager: str = "hub-a") -> dict[str, dict]:
    """`docker node ls` on a lab manager, by hostname."""
    out = lab_exec(manager, "docker", "node", "ls", "--format", "{{json .}}").stdout
    return {n["Hostname"]: n for n in map(json.loads, out.splitlines())}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
