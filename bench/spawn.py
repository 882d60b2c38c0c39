#!/usr/bin/env python3
"""Spawn benchmark: N users start their servers at once through the hub API.

Default: a real hub from the venv (tools/hubrun.py: hubconfig, DockerSpawner,
the notebook image on this machine's Docker). With --lab: the lab's deployed
hub (site.yml), spawning Swarm services on the worker nodes.

It creates N users, asks for all servers concurrently, and prints p50, p95
and max time from the request to the server being ready, and the failures;
with --lab also one spawn alone first (the image is on the nodes), and
with --floor the floor of a spawn on the same lab in the same run, without
any hub: a Swarm task of the notebook image pinned to a worker until it
runs (on a manager), plus that image's Jupyter server until it answers
HTTP (`docker run` on the worker); printed with the single spawn's ratio.

    ./twinhub bench-spawn [--users 20]
    ./twinhub bench-spawn --lab [--users 20] [--floor]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the lab toolkit

import contextlib  # noqa: E402

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


def floor(image: str) -> tuple[float, float]:
    """(Swarm task to Running, server start to HTTP answer) on the lab's first worker, no hub."""
    from labhub import LAB, lab_exec

    manager, worker = LAB.hubs[0], LAB.group("swarm_workers")[0]
    task = lab_exec(manager, "bash", "-c", FLOOR_TASK.format(node=worker, image=image), timeout=120).stdout
    server = lab_exec(worker, "bash", "-c", FLOOR_SERVER.format(image=image), timeout=120).stdout
    return float(task.strip()), float(server.strip())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--lab", action="store_true", help="the lab's deployed hub (Swarm) instead of a local one")
    ap.add_argument("--floor", action="store_true", help="with --lab: measure the floor (no hub) in the same run")
    args = ap.parse_args()
    users = [f"bench{i:03d}" for i in range(args.users)]

    if args.lab:
        from labhub import lab_hub

        context, admin_name = contextlib.nullcontext(lab_hub()), "admin"
    else:
        context, admin_name = running_hub(users=users), "ops"
    with context as hub:
        session = hub.login(admin_name)
        r = session.post(
            f"{hub.url}/hub/api/users/{admin_name}/tokens",
            json={"note": "bench", "expires_in": 3600, "scopes": ["admin:users", "admin:servers", "read:servers"]},
        )
        r.raise_for_status()
        admin = hub.api(r.json()["token"])
        if args.lab:
            # Admin-created users are allowed to have servers.
            r = admin.post(f"{hub.url}/hub/api/users", json={"usernames": [*users, "benchsolo"]})
            assert r.status_code in (201, 409), r.text

        def spawn(user: str) -> tuple[str, float | None, str]:
            t0 = time.monotonic()
            r = admin.post(f"{hub.url}/hub/api/users/{user}/server", json={"profile": "small"})
            if r.status_code not in (201, 202):
                return user, None, f"HTTP {r.status_code}: {r.text[:200]}"
            while time.monotonic() - t0 < args.timeout:
                server = admin.get(f"{hub.url}/hub/api/users/{user}").json().get("servers", {}).get("")
                if server and server.get("ready"):
                    return user, time.monotonic() - t0, ""
                if not server:
                    return user, None, "server vanished (spawn failed)"
                time.sleep(0.25)
            return user, None, f"not ready in {args.timeout}s"

        if args.lab:
            _, alone, why = spawn("benchsolo")
            print(f"one spawn alone: {alone:.2f} s" if alone else f"one spawn alone failed: {why}")
            admin.delete(f"{hub.url}/hub/api/users/benchsolo/server")
            time.sleep(3)
            if args.floor:
                import yaml
                from labhub import LAB, lab_exec

                deployed = yaml.safe_load(lab_exec(LAB.hubs[0], "cat", "/etc/twinhub/platform.yaml").stdout)
                image = deployed["spawner"]["images"]["notebook"]
                task, server = floor(image)
                print(
                    f"floor (same workers, no hub): Swarm task running {task:.2f} s + Jupyter server answering {server:.2f} s"
                    f" = {task + server:.2f} s; one spawn alone / floor = {(alone or float('nan')) / (task + server):.2f}"
                )

        t_all = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(users)) as pool:
            results = list(pool.map(spawn, users))
        wall = time.monotonic() - t_all

        times = [t for _, t, _ in results if t is not None]
        failures = [(u, why) for u, t, why in results if t is None]
        if args.lab:
            print(f"spawner: swarm (the lab's hub at {hub.url}, servers on the worker nodes)")
        else:
            print(f"spawner: docker (DockerSpawner, {hub.cfg['spawner']['images']['notebook']})")
            print(f"hub startup (process start to /hub/health 200): {hub.startup_seconds:.2f} s")
        print(f"users: {len(users)} concurrent spawns, wall {wall:.1f} s")
        if times:
            print(
                f"spawn time: p50 {statistics.median(times):.2f} s, p95 {percentile(times, 0.95):.2f} s, max {max(times):.2f} s"
            )
        print(f"failures: {len(failures)}")
        for user, why in failures:
            print(f"  {user}: {why}")
        for user in users:
            admin.delete(f"{hub.url}/hub/api/users/{user}/server")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
