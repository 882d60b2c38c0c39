#!/usr/bin/env python3
"""Deploy time of site.yml on the lab: cold (fresh hosts) and the idempotent rerun.

    ./twinhub bench-deploy          # recreates the lab hosts first
    ./twinhub bench-deploy --warm   # only the rerun, on the lab as it is
    ./twinhub bench-deploy --warm --compare
                                    # and the rerun again without Mitogen
                                    # (Ansible's own linear strategy), side by side

Prints the wall time of each run, its PLAY RECAP changed counts and the ten
slowest tasks (ansible.posix.profile_tasks). Images are built beforehand and
not counted: they are cached by content hash and shared by every run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASK_LINE = re.compile(r"^(?P<task>.+?) -{2,} (?P<secs>[0-9.]+)s$")
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def site(label: str, strategy: str | None = None) -> dict:
    env = dict(
        os.environ,
        **({"ANSIBLE_STRATEGY": strategy} if strategy else {}),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="400",
        ANSIBLE_NOCOLOR="1",
    )
    playbook = Path(sys.executable).parent / "ansible-playbook"
    t0 = time.monotonic()
    p = subprocess.run(
        [str(playbook), "-i", "inventories/lab", "playbooks/site.yml"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.monotonic() - t0
    if p.returncode != 0:
        print(p.stdout[-4000:], p.stderr[-2000:])
        raise SystemExit(f"{label}: site.yml failed ({p.returncode})")
    tasks = []
    for line in p.stdout.splitlines():
        m = TASK_LINE.match(line.strip())
        if m:
            tasks.append((float(m["secs"]), m["task"].strip()))
    recap = {h: int(changed) for h, _ok, changed, *_ in RECAP.findall(p.stdout)}
    return {"wall": wall, "tasks": sorted(tasks, reverse=True), "recap": recap}


def report(label: str, run: dict) -> None:
    print(f"\n== {label}: {run['wall']:.1f} s wall, changed per host {run['recap']}")
    print("   slowest tasks:")
    for secs, task in run["tasks"][:10]:
        print(f"   {secs:7.1f} s  {task}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warm", action="store_true", help="skip the cold run")
    ap.add_argument("--compare", action="store_true", help="rerun once more with Ansible's linear strategy (no Mitogen)")
    args = ap.parse_args()
    if not args.warm:
        subprocess.run([sys.executable, "tools/lab.py", "down"], cwd=ROOT, check=True)
        subprocess.run([sys.executable, "tools/lab.py", "up"], cwd=ROOT, check=True)
        report("cold site.yml (fresh lab hosts)", site("cold"))
    rerun = site("rerun")
    report("second site.yml (idempotent)", rerun)
    if args.compare:
        plain = site("rerun-linear", strategy="linear")
        report("idempotent again, Ansible's linear strategy (no Mitogen)", plain)
        print(f"\n== Mitogen / linear wall time: {rerun['wall'] / plain['wall']:.2f}")


if __name__ == "__main__":
    main()
