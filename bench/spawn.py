#!/usr/bin/env python3
"""Spawn benchmark: users start their servers through the hub API.

Default: a real hub from the venv (tools/hubrun.py: hubconfig, DockerSpawner,
the notebook image on this machine's Docker); N users spawn at once.

With --lab: the lab's deployed hub (site.yml), spawning Swarm services on the
worker nodes. It prints, for the spawner the lab runs (twinhub's):
- one spawn alone, --solo times (the image is on the nodes), with where the
  first one's time went: the hub (request to service created), Swarm
  (to the container started on its worker), the server (to its first
  request to the hub), the hub noticing it (to ready);
- N spawns at once: p50, p95, max, failures, and the CPU time the lab's
  hosts used meanwhile (this machine has 2 cores);
- with --floor, the floor on the same workers, no hub: a Swarm task of the
  notebook image until it runs, plus that image's Jupyter server until it
  answers HTTP (`docker run` on a worker), measured once after each solo
  spawn (side by side); medians, and one spawn's ratio to it;
- with --upstream, the same spawns with dockerspawner's SwarmSpawner as
  released (deployed for the run with spawner.swarm_spawner: upstream, then
  put back), side by side.

With --slurm: the lab's Slurm profiles (servers as jobs through slurmrestd):
one user alone (--solo times) and five directory users at once on the two
clusters, submit to ready p50/p95, with where the time went from the hub's
log: the hub until the job is submitted, the queue (until the hub sees it
running; it polls every 0.5 s), the job until batchspawner's port report
(Python and Jupyter starting on the node), the report until the hub calls
the server ready.

    ./twinhub bench-spawn [--users 20]
    ./twinhub bench-spawn --lab [--users 10] [--floor] [--upstream]
    ./twinhub bench-spawn --slurm [--users 5] [--solo 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the lab toolkit

from hubrun import running_hub  # noqa: E402

# Timed on the lab host itself (one `docker exec` around the whole loop), so
# the controller's round trips are not counted in the floor.
FLOOR_TASK = r"""
docker service rm twinhub-floor >/dev/null 2>&1; sleep 1
t0=$(date +%s.%N)
docker service create --detach --quiet --name twinhub-floor --restart-condition none \
  --constraint node.hostname=={node} {image} sleep 600 >/dev/null
until docker service ps --filter desired-state=running --format '{{{{.CurrentState}}}}' twinhub-floor | grep -q ^Running; do
  sleep 0.05
done
t1=$(date +%s.%N)
docker service rm twinhub-floor >/dev/null
python3 -c "print($t1 - $t0)"
"""
FLOOR_SERVER = r"""
docker rm -f twinhub-floor-run >/dev/null 2>&1
t0=$(date +%s.%N)
docker run --detach --rm --name twinhub-floor-run -p 127.0.0.1:18888:8888 {image} \
  jupyter server --ip=0.0.0.0 --port=8888 --ServerApp.token= --ServerApp.password= >/dev/null
until curl -sf -o /dev/null http://127.0.0.1:18888/api/status; do sleep 0.05; done
t1=$(date +%s.%N)
docker rm -f twinhub-floor-run >/dev/null
python3 -c "print($t1 - $t0)"
"""


def floor_once(image: str) -> tuple[float, float]:
    """(Swarm task to Running, server start to HTTP answer) on the lab's first worker, no hub."""
    from labhub import LAB, lab_exec

    manager, worker = LAB.hubs[0], LAB.group("swarm_workers")[0]
    task = float(lab_exec(manager, "bash", "-c", FLOOR_TASK.format(node=worker, image=image), timeout=120).stdout)
    server = float(lab_exec(worker, "bash", "-c", FLOOR_SERVER.format(image=image), timeout=120).stdout)
    return task, server


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def instant(stamp: str) -> float:
    """An RFC 3339 time (Docker's nanoseconds, the hub's microseconds) as epoch seconds."""
    stamp = stamp.rstrip("Z").replace("+00:00", "")
    whole, _, frac = stamp.partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float(f"0.{frac or 0}")


def breakdown(user: str, t0: float, ready: float) -> dict[str, float]:
    """Where a running spawn's time went (seconds), from the hub's log and the server's container."""
    from labhub import active_hub, lab_exec, running_task, service_name, task_container

    hub, _ = active_hub()
    created = None
    for line in lab_exec(hub, "journalctl", "-u", "twinhub-hub", "-o", "cat", "--since", f"@{int(t0) - 1}").stdout.splitlines():
        with contextlib.suppress(ValueError, KeyError):
            entry = json.loads(line)
            if entry["message"].startswith(f"Created service {service_name(user)} "):
                created = instant(entry["@timestamp"])
    task = running_task(user)
    container = task_container(user, task["Node"])
    started = instant(lab_exec(task["Node"], "docker", "inspect", "-f", "{{.State.StartedAt}}", container).stdout.strip())
    answered = None
    logs = lab_exec(task["Node"], "docker", "logs", "-t", container)
    for line in (logs.stdout + logs.stderr).splitlines():
        if "Jupyter Server" in line and "is running at" in line:
            answered = instant(line.split()[0])
    if created is None or answered is None:
        return {}
    return {"hub": created - t0, "swarm": started - created, "server": answered - started, "ready": ready - answered}


class Spawns:
    """Spawning through the lab's (or a local) hub with an admin token."""

    def __init__(self, hub, admin_name: str, timeout: float, profile: str) -> None:
        self.hub, self.timeout, self.profile = hub, timeout, profile
        session = hub.login(admin_name)
        r = session.post(
            f"{hub.url}/hub/api/users/{admin_name}/tokens",
            json={"note": "bench", "expires_in": 3600, "scopes": ["admin:users", "admin:servers", "read:servers"]},
        )
        r.raise_for_status()
        self.admin = hub.api(r.json()["token"])

    def create(self, users: list[str]) -> None:
        # Admin-created users are allowed to have servers.
        r = self.admin.post(f"{self.hub.url}/hub/api/users", json={"usernames": users})
        assert r.status_code in (201, 409), r.text

    def spawn(self, user: str, profile: str | None = None) -> tuple[str, float | None, str, float]:
        """(user, seconds to ready or None, why not, start time)."""
        t0 = time.time()
        url = f"{self.hub.url}/hub/api/users/{user}"
        r = self.admin.post(f"{url}/server", json={"profile": profile or self.profile})
        if r.status_code not in (201, 202):
            return user, None, f"HTTP {r.status_code}: {r.text[:200]}", t0
        while time.time() - t0 < self.timeout:
            r = self.admin.get(url)
            if r.status_code != 200:
                # NGINX's hub API limit (50/s a client) slows ten users
                # polling every 0.1 s with 429s: a poll again, not a failure.
                time.sleep(0.2)
                continue
            server = r.json().get("servers", {}).get("")
            if server and server.get("ready"):
                return user, time.time() - t0, "", t0
            if not server:
                return user, None, "server vanished (spawn failed)", t0
            time.sleep(0.1)
        return user, None, f"not ready in {self.timeout}s", t0

    def stop(self, users: list[str]) -> None:
        for user in users:
            self.admin.delete(f"{self.hub.url}/hub/api/users/{user}/server")
        deadline = time.time() + 60
        while time.time() < deadline:
            r = self.admin.get(f"{self.hub.url}/hub/api/users", params={"state": "active"})
            if not {u["name"] for u in r.json()} & set(users):
                return
            time.sleep(0.5)

    def at_once(self, users: list[str], profiles: list[str] | None = None) -> tuple[list, float]:
        t_all = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(users)) as pool:
            results = list(pool.map(self.spawn, users, profiles or [None] * len(users)))
        return results, time.monotonic() - t_all


def summary(times: list[float]) -> str:
    if not times:
        return "no spawn finished"
    return f"p50 {statistics.median(times):.2f} s, p95 {percentile(times, 0.95):.2f} s, max {max(times):.2f} s"


def lab_spawner_run(kind: str, args, users: list[str], floor_image: str | None) -> dict:
    """One spawner's figures on the lab: solo spawns (with a breakdown), then all users at once.

    With floor_image, a floor run follows each solo spawn: side by side, so
    the machine's noise falls on both alike.
    """
    from labhub import cpu_seconds, lab_hub, machine_cpu_seconds, use_swarm_spawner

    deployed = use_swarm_spawner(kind)
    if deployed:
        print(f"[{kind}] deployed the hubs with spawner.swarm_spawner {kind} in {deployed:.0f} s")
    s = Spawns(lab_hub(), "admin", args.timeout, args.profile)
    # A name of its own for every spawn: a service re-created under the name
    # of one just removed can resolve to the old task while it shuts down
    # (upstream routes by name and would call that one ready).
    users = [f"{u}{kind[0]}" for u in users]
    solo_users = [f"benchsolo{kind[0]}{i}" for i in range(args.solo)]
    s.create([*users, *solo_users])
    solos, parts, failures, floors = [], [], [], []
    for user in solo_users:
        _, seconds, why, t0 = s.spawn(user)
        if seconds is None:
            failures.append((user, why))
        else:
            solos.append(seconds)
            parts.append(breakdown(user, t0, t0 + seconds))
        s.stop([user])
        time.sleep(1)
        if floor_image:
            floors.append(floor_once(floor_image))
    before, machine = cpu_seconds(), machine_cpu_seconds()
    results, wall = s.at_once(users)
    machine = machine_cpu_seconds() - machine
    used = {host: seconds - before[host] for host, seconds in cpu_seconds().items()}
    s.stop(users)
    failures += [(u, why) for u, t, why, _ in results if t is None]
    return {
        "solos": solos,
        "parts": {k: statistics.median(p[k] for p in parts if p) for k in next((p for p in parts if p), {})},
        "floors": floors,
        "times": [t for _, t, _, _ in results if t is not None],
        "wall": wall,
        "cpu": used,
        "machine": machine,
        "failures": failures,
    }


def lab_main(args) -> int:
    from labhub import LAB, lab_exec, use_swarm_spawner

    users = [f"bench{i:03d}" for i in range(args.users)]
    kinds = ["twinhub", *(["upstream"] if args.upstream else [])]
    image = None
    if args.floor:
        import yaml

        deployed = yaml.safe_load(lab_exec(LAB.hubs[0], "cat", "/etc/twinhub/platform.yaml").stdout)
        image = deployed["spawner"]["images"]["notebook"]
    runs = {}
    try:
        for kind in kinds:
            runs[kind] = lab_spawner_run(kind, args, users, image if kind == "twinhub" else None)
    finally:
        if args.upstream:
            use_swarm_spawner("twinhub")
    print(f"lab: {len(LAB.group('swarm_workers'))} workers, profile {args.profile!r}, {args.users} users at once")
    for kind, run in runs.items():
        label = "twinhub (hubconfig.swarmspawner)" if kind == "twinhub" else "upstream (dockerspawner.SwarmSpawner)"
        solos = run["solos"]
        print(f"{label}:")
        print(
            f"  one spawn alone: median {statistics.median(solos):.2f} s of {[round(t, 2) for t in solos]}"
            if solos
            else "  one spawn alone: failed"
        )
        if run["parts"]:
            print("  where it went (medians): " + ", ".join(f"{k} {v:.2f} s" for k, v in run["parts"].items()))
        cpu, cores = run["cpu"], os.cpu_count()
        print(f"  {args.users} at once: {summary(run['times'])}, wall {run['wall']:.1f} s, failures {len(run['failures'])}")
        print(
            f"  CPU used meanwhile: {run['machine']:.1f} s on this machine ({run['machine'] / run['wall']:.2f} of its"
            f" {cores} cores busy); the hosts' own processes: {', '.join(f'{h} {v:.1f}' for h, v in cpu.items())}"
        )
        for user, why in run["failures"]:
            print(f"  failed {user}: {why}")
    ours = runs["twinhub"]
    if "upstream" in runs and ours["solos"] and runs["upstream"]["solos"]:
        up = runs["upstream"]
        solo = statistics.median(up["solos"]) / statistics.median(ours["solos"])
        both = ours["times"] and up["times"]
        p50 = statistics.median(up["times"]) / statistics.median(ours["times"]) if both else float("nan")
        print(f"upstream / twinhub: one spawn {solo:.2f}x, {args.users} at once p50 {p50:.2f}x")
    if ours["floors"]:
        task = statistics.median(t for t, _ in ours["floors"])
        server = statistics.median(v for _, v in ours["floors"])
        alone = statistics.median(ours["solos"]) if ours["solos"] else float("nan")
        print(
            f"floor (same workers, no hub, each run after a spawn alone; medians of {len(ours['floors'])}):"
            f" Swarm task running {task:.2f} s + the image's Jupyter server answering {server:.2f} s"
            f" = {task + server:.2f} s; one spawn alone / floor = {alone / (task + server):.2f}"
        )
    return 1 if any(run["failures"] for run in runs.values()) else 0


# Directory people (the lab's): a job runs as its user, who must exist on
# the cluster's nodes. Five at once: beta's batch partition lets two jobs
# share a core (inventories/lab/group_vars/all/hpc.yml), so the lab's two
# 2-core clusters hold all five one-core notebooks, none left queued.
SLURM_USERS = ["john.doe", "alice", "bob", "carol", "dana"]
SLURM_PROFILES = ["beta", "alpha", "beta", "alpha", "beta"]


def slurm_breakdown(user: str, t0: float, ready: float) -> dict[str, float]:
    """Where a Slurm spawn's time went, from the hub's log (hubconfig.slurmspawner's lines)."""
    from labhub import active_hub, lab_exec

    hub, _ = active_hub()
    marks: dict[str, float] = {}
    for line in lab_exec(hub, "journalctl", "-u", "twinhub-hub", "-o", "cat", "--since", f"@{int(t0) - 1}").stdout.splitlines():
        with contextlib.suppress(ValueError, KeyError):
            entry = json.loads(line)
            message, at = entry["message"], instant(entry["@timestamp"])
            if at < t0 - 0.5:
                continue
            if message.startswith("Slurm job ") and f" submitted for {user} on cluster " in message:
                marks["submitted"] = at
            elif message.startswith("Slurm job ") and f" of {user} runs on " in message:
                marks.setdefault("running", at)
            elif message.startswith(f"Slurm job of {user} reported port "):
                marks["port"] = at
    if len(marks) < 3:
        return {}
    return {
        "submit": marks["submitted"] - t0,
        "queue": marks["running"] - marks["submitted"],
        "job to port report": marks["port"] - marks["running"],
        "port report to ready": ready - marks["port"],
    }


def slurm_main(args) -> int:
    from labhub import lab_hub, slurm_gone

    s = Spawns(lab_hub(), "admin", args.timeout, "alpha")
    users = SLURM_USERS[: args.users]
    s.create(users)

    def settle(names: list[str]) -> None:
        s.stop(names)
        for cluster in ("alpha", "beta"):
            for name in names:
                assert slurm_gone(cluster, name, timeout=60), f"{name}'s job still on {cluster}"

    settle(users)
    solos, parts, failures = [], [], []
    for _ in range(args.solo):
        user, seconds, why, t0 = s.spawn(users[0], "alpha")
        if seconds is None:
            failures.append((user, why))
        else:
            solos.append(seconds)
            parts.append(slurm_breakdown(user, t0, t0 + seconds))
        settle([user])
    results, wall = s.at_once(users, SLURM_PROFILES[: len(users)])
    together = [slurm_breakdown(u, t0, t0 + t) for u, t, _, t0 in results if t is not None]
    settle(users)
    failures += [(u, why) for u, t, why, _ in results if t is None]
    times = [t for _, t, _, _ in results if t is not None]

    def medians(rows: list[dict]) -> str:
        rows = [r for r in rows if r]
        return ", ".join(f"{k} {statistics.median(r[k] for r in rows):.2f} s" for k in rows[0]) if rows else "n/a"

    print("lab: Slurm clusters alpha (worker-1) and beta (worker-2), 2 cores each; servers as jobs (slurmrestd)")
    print(f"1 user (john.doe on alpha), {len(solos)} runs: {summary(solos)}")
    print(f"  where it went (medians): {medians(parts)}")
    print(f"{len(users)} users at once ({', '.join(f'{u}@{p}' for u, p in zip(users, SLURM_PROFILES, strict=False))}):")
    print(f"  {summary(times)}, wall {wall:.1f} s, failures {len(failures)}")
    print(f"  where it went (medians): {medians(together)}")
    for user, why in failures:
        print(f"  failed {user}: {why}")
    return 1 if failures else 0


def local_main(args) -> int:
    users = [f"bench{i:03d}" for i in range(args.users)]
    with running_hub(users=users) as hub:
        s = Spawns(hub, "ops", args.timeout, "small")
        results, wall = s.at_once(users)
        times = [t for _, t, _, _ in results if t is not None]
        failures = [(u, why) for u, t, why, _ in results if t is None]
        print(f"spawner: docker (DockerSpawner, {hub.cfg['spawner']['images']['notebook']})")
        print(f"hub startup (process start to /hub/health 200): {hub.startup_seconds:.2f} s")
        print(f"users: {len(users)} concurrent spawns, wall {wall:.1f} s")
        print(f"spawn time: {summary(times)}")
        print(f"failures: {len(failures)}")
        for user, why in failures:
            print(f"  {user}: {why}")
        s.stop(users)
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20, help="servers started at once")
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--lab", action="store_true", help="the lab's deployed hub (Swarm) instead of a local one")
    ap.add_argument("--solo", type=int, default=3, help="with --lab: spawns alone (and floor runs), medians printed")
    ap.add_argument("--profile", default="small", help="with --lab: the profile spawned")
    ap.add_argument("--floor", action="store_true", help="with --lab: measure the floor (no hub) in the same run")
    ap.add_argument("--upstream", action="store_true", help="with --lab: also dockerspawner's SwarmSpawner, side by side")
    ap.add_argument("--slurm", action="store_true", help="the lab's Slurm profiles: 1 user, then 5 at once")
    args = ap.parse_args()
    if args.slurm:
        args.users = min(args.users, len(SLURM_USERS))
        return slurm_main(args)
    return lab_main(args) if args.lab else local_main(args)


if __name__ == "__main__":
    sys.exit(main())
