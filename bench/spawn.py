#!/usr/bin/env python3
"""Spawn benchmark: N users start their servers at once through the hub API.

Runs a real hub from the venv (tests/hubrun.py: hubconfig, DockerSpawner,
the notebook image on this machine's Docker), creates N users, asks for all
servers concurrently, and prints p50, p95 and max time from the request to
the server being ready, the failures, and the hub's own startup time.

    ./twinhub bench-spawn            # or: .venv/bin/python bench/spawn.py --users 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hubrun import running_hub  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=180)
    args = ap.parse_args()
    users = [f"bench{i:03d}" for i in range(args.users)]

    with running_hub(users=users) as hub:
        session = hub.login("ops")
        r = session.post(
            f"{hub.url}/hub/api/users/ops/tokens",
            json={"note": "bench", "expires_in": 3600, "scopes": ["admin:users", "admin:servers", "read:servers"]},
        )
        r.raise_for_status()
        admin = hub.api(r.json()["token"])
        # allowed_users exist in the hub's database from its start.

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

        t_all = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(users)) as pool:
            results = list(pool.map(spawn, users))
        wall = time.monotonic() - t_all

        times = [t for _, t, _ in results if t is not None]
        failures = [(u, why) for u, t, why in results if t is None]
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
