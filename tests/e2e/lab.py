"""The lab's hub as a user sees it: address, login, servers, kernels."""

from __future__ import annotations

import json
import subprocess
import time

import requests
from hubrun import Hub
from support import ROOT, lab_exec

HUBS = ("hub-a", "hub-b")
PASSWORD_FILE = ROOT / ".secrets" / "lab" / "lab_login_password"


def container_ip(host: str) -> str:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", f"twinhub-lab-{host}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()[0]


def active_hub(timeout: float = 90) -> tuple[str, str]:
    """(host, url) of the hub pair member that serves (holds the leader lock)."""
    deadline = time.monotonic() + timeout
    while True:
        for host in HUBS:
            try:
                url = f"http://{container_ip(host)}:8000"
                if requests.get(f"{url}/hub/health", timeout=2).status_code == 200:
                    return host, url
            except (requests.RequestException, subprocess.CalledProcessError, IndexError):
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no hub of {HUBS} answered /hub/health within {timeout}s")
        time.sleep(1)


def lab_hub() -> Hub:
    _, url = active_hub()
    hub = Hub(url)
    hub.password = PASSWORD_FILE.read_text().strip()
    return hub


def service_of(user: str, manager: str = "services") -> dict:
    out = lab_exec(manager, "docker", "service", "inspect", f"twinhub-{user}").stdout
    return json.loads(out)[0]


def running_task(user: str, manager: str = "services") -> dict:
    out = lab_exec(
        manager, "docker", "service", "ps", f"twinhub-{user}", "--filter", "desired-state=running", "--format", "{{json .}}"
    ).stdout
    tasks = [json.loads(line) for line in out.splitlines()]
    assert len(tasks) == 1, tasks
    return tasks[0]


def task_container(user: str, node: str) -> str:
    out = lab_exec(node, "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name=twinhub-{user}").stdout
    assert out.strip(), f"no container of twinhub-{user} on {node}"
    return out.split()[0]
