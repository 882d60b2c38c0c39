#!/usr/bin/env python3
"""Unplanned hub failover in the lab, as a user sees it through NGINX.

A user (bob) logs in through the proxy, starts a server, sets a variable in a
kernel and keeps two kernel websockets open, each running a cell every 0.5 s.
Then, --runs times: `docker kill` the serving hub's container while a client
calls the hub API and bob's server every 0.1 s through NGINX; wait for the
standby to serve. Before each kill, wait until the other hub stands by (its
leader supervisor waits on the lock, tools/labhub.py wait_standby). Prints,
per run and overall (median, max):

- outage: the longest time without a good hub API answer after the kill
  (NGINX holds requests while no hub answers, so this is the wait a user
  sees, from the last good answer of the old hub to the first of the new);
- failed requests (any non-200 through NGINX), websocket drops;
- lost servers: bob's Swarm task replaced or its kernel variable gone;
- where the takeover's time goes, from the new hub's own log: the lock
  (kill -> lock acquired), JupyterHub's config (-> "Running JupyterHub"),
  its init with init_spawners (-> "Initialized N spawners"), listening
  (-> "Hub API listening"), the first route check (-> "now running"), and
  NGINX (-> the first good answer through it).

    ./twinhub bench-failover [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the lab toolkit

from labhub import Bob, active_hub, lab_exec, other_hub, running_task, wait_serving, wait_standby  # noqa: E402

# (stage, the new hub's log message that ends it)
STAGES = [
    ("lock", "leader lock"),
    ("config", "Running JupyterHub version"),
    ("init", "Initialized "),
    ("listen", "Hub API listening"),
    ("routes", "JupyterHub is now running"),
]


def log_times(host: str, since: float) -> dict[str, float]:
    """Wall-clock time of each stage's message in host's hub journal since `since`."""
    stamp = datetime.fromtimestamp(since).strftime("%Y-%m-%d %H:%M:%S")
    out = lab_exec(host, "journalctl", "-u", "twinhub-hub", "--since", stamp, "-o", "cat").stdout
    found: dict[str, float] = {}
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("message", "")
        for stage, marker in STAGES:
            if stage not in found and message.startswith(marker) and (stage != "lock" or "acquired" in message):
                found[stage] = datetime.fromisoformat(entry["@timestamp"]).timestamp()
    return found


def breakdown(t_kill: float, times: dict[str, float], goods: list[float]) -> dict[str, float]:
    """Seconds of each stage, from the kill to the first good answer through NGINX after the last one."""
    parts, previous = {}, t_kill
    for stage, _ in STAGES:
        if stage in times:
            parts[stage] = times[stage] - previous
            previous = times[stage]
    parts["nginx"] = min((end for end in goods if end >= previous), default=previous) - previous
    return parts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()

    bob = Bob()
    bob.start()
    assert bob.run("x = 6 * 7; x") == "42"
    hub_api = f"{bob.hub.url}/hub/api/users/bob"
    outages, failed, lost, drops, parts = [], 0, 0, 0, []
    wall = time.time() - time.monotonic()  # monotonic -> wall clock (the hubs log wall time)
    try:
        for run in range(1, args.runs + 1):
            active, _ = active_hub()
            new = other_hub(active)
            # Only a standby waiting on the lock takes over: after a restart
            # (the last run's, or lab-e2e's of a whole hub host) wait for it.
            standby_after = wait_standby(new)
            if standby_after > 1.5:
                print(f"(waited {standby_after:.0f}s for {new}'s hub to stand by)", flush=True)
            task = running_task("bob")
            links = bob.kernel_links(2)
            poller = bob.poller()
            t_kill = time.monotonic()
            lab_exec(active, "docker", "kill", "twinhub-hub")
            took = wait_serving(new)
            time.sleep(1.5)
            poller.stop()
            links.stop()
            outage = poller.longest_gap(hub_api, t_kill)
            goods = [end + wall for _, end, url, status in poller.results if url == hub_api and status == 200]
            stages = breakdown(t_kill + wall, log_times(new, t_kill + wall - 2), goods)
            fails = len(poller.failures())
            same_task = running_task("bob")["ID"] == task["ID"]
            kept = same_task and bob.run("x") == "42"
            outages.append(outage)
            failed += fails
            drops += len(links.drops)
            lost += 0 if kept else 1
            parts.append(stages)
            print(
                f"run {run:2d}: killed {active}'s hub; outage {outage:5.2f}s (standby serving after {took:4.2f}s);"
                f" {poller.summary()}; {len(links.drops)} websocket drops"
                f" ({sum(links.answers)} round trips on 2){''.join(f' [{why}]' for _, _, why in links.drops)};"
                f" server {'kept' if kept else 'LOST (' + ('kernel variable gone' if same_task else 'task replaced') + ')'};"
                f" takeover: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()),
                flush=True,
            )
            time.sleep(3)
    finally:
        bob.api.delete(hub_api + "/server", timeout=60)
    print(
        f"\nunplanned failover over {len(outages)} runs: outage median {statistics.median(outages):.2f}s,"
        f" max {max(outages):.2f}s; failed requests {failed}; websocket drops {drops}; lost servers {lost}"
    )
    names = [stage for stage, _ in STAGES] + ["nginx"]
    cells = []
    for n in names:
        values = [p.get(n, 0.0) for p in parts]
        cells.append(f"{n} {statistics.median(values):.2f} ({max(values):.2f})")
    print("takeover breakdown, median (max) s: " + ", ".join(cells))
    return 0 if lost == 0 and drops == 0 and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
