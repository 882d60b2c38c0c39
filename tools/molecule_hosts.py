#!/usr/bin/env python3
"""Molecule's create and destroy for twinhub's scenarios.

    molecule_hosts.py create PLATFORMS_JSON
    molecule_hosts.py destroy PLATFORMS_JSON

Each platform becomes a systemd container started the way `tools/lab.py`
starts a lab host (its SYSTEMD_RUN_FLAGS, the image archives mounted, the
node flags for the lab-node image), plus what the platform itself lists
(capabilities, volumes, networks, command). Called by the shared
`.config/molecule/create.yml` and `destroy.yml`.

Why not the docker driver's own playbooks: they make one Ansible module
call per container, per network and per wait, 20-35 s per scenario here and
15-20 s again for each of the two destroys (the first finds nothing in CI);
the Docker CLI does the same in a few seconds.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab import CACHE_DIR, NODE_RUN_FLAGS, SYSTEMD_RUN_FLAGS, wait_systemd

LABEL = "owner=molecule"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True)


def networks(platform: dict) -> list[str]:
    return [n["name"] for n in platform.get("networks") or []]


def run_args(platform: dict) -> list[str]:
    name = platform["name"]
    args = ["run", "-d", "--name", name, "--hostname", platform.get("hostname", name), "--label", LABEL]
    args += [*SYSTEMD_RUN_FLAGS, "-v", f"{CACHE_DIR / 'images'}:/opt/twinhub/images:ro"]
    if platform["image"] == os.environ.get("TWINHUB_IMAGE_LAB_NODE"):
        args += NODE_RUN_FLAGS
    # What the platform lists beyond the lab's flags (a flag given twice,
    # e.g. a second --tmpfs /run, is an error to Docker).
    have = set(itertools.pairwise(args))
    for key, flag in (
        ("capabilities", "--cap-add"),
        ("security_opts", "--security-opt"),
        ("tmpfs", "--tmpfs"),
        ("volumes", "-v"),
    ):
        for value in platform.get(key) or []:
            if (flag, value) not in have:
                args += [flag, value]
                have.add((flag, value))
    if platform.get("privileged"):
        args.append("--privileged")
    if platform.get("stop_signal"):
        args += ["--stop-signal", platform["stop_signal"]]
    nets = networks(platform)
    if nets:
        args += ["--network", nets[0]]
    args.append(platform["image"])
    args += shlex.split(platform.get("command") or "/sbin/init")
    return args


def create(platforms: list[dict]) -> None:
    for net in sorted({n for p in platforms for n in networks(p)}):
        if docker("network", "inspect", net, check=False).returncode != 0:
            docker("network", "create", "--label", LABEL, net)
    started = []
    for platform in platforms:
        name = platform["name"]
        state = docker("inspect", "--format", "{{.State.Running}}", name, check=False)
        if state.returncode == 0 and state.stdout.strip() == "true":
            continue
        docker("rm", "-f", "-v", name, check=False)
        docker(*run_args(platform))
        for net in networks(platform)[1:]:
            docker("network", "connect", net, name)
        started.append(name)
    for name in started:
        wait_systemd(name)
    print(f"molecule hosts up: {', '.join(p['name'] for p in platforms)} ({len(started)} started)")


def destroy(platforms: list[dict]) -> None:
    names = [p["name"] for p in platforms]
    docker("rm", "-f", "-v", *names, check=False)
    for net in sorted({n for p in platforms for n in networks(p)}):
        docker("network", "rm", net, check=False)
    print(f"molecule hosts gone: {', '.join(names)}")


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("create", "destroy"):
        sys.exit(__doc__)
    platforms = json.loads(sys.argv[2])
    (create if sys.argv[1] == "create" else destroy)(platforms)


if __name__ == "__main__":
    main()
