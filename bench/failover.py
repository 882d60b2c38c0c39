#!/usr/bin/env python3
"""Unplanned hub failover in the lab, as a user sees it through NGINX.

A user (bob) logs in through the proxy, starts a server and sets a variable
in a kernel. Then, --runs times: `docker kill` the serving hub's container
while a client calls the hub API and bob's server every 0.1 s through NGINX;
wait for the standby to serve and the killed hub to come back as the new
standby. Prints, per run and overall (median, max):

- outage: the longest time without a good hub API answer after the kill
  (NGINX holds requests while no hub answers, so this is the wait a user
  sees, from the last good answer of the old hub to the first of the new);
- failed requests (any non-200 through NGINX);
- lost servers: bob's Swarm task replaced or its kernel variable gone.

    ./twinhub bench-failover [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the lab toolkit

from labhub import Bob, active_hub, lab_exec, other_hub, running_task, wait_serving, wait_standby  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()

    bob = Bob()
    bob.start()
    assert bob.run("x = 6 * 7; x") == "42"
    hub_api = f"{bob.hub.url}/hub/api/users/bob"
    outages, failed, lost, takeovers = [], 0, 0, []
    try:
        for run in range(1, args.runs + 1):
            active, _ = active_hub()
            task = running_task("bob")
            poller = bob.poller()
            t_kill = time.monotonic()
            lab_exec(active, "docker", "kill", "twinhub-hub")
            takeovers.append(wait_serving(other_hub(active)))
            time.sleep(1)
            poller.stop()
            outage = poller.longest_gap(hub_api, t_kill)
            fails = len(poller.failures())
            kept = running_task("bob")["ID"] == task["ID"] and bob.run("x") == "42"
            outages.append(outage)
            failed += fails
            lost += 0 if kept else 1
            print(
                f"run {run:2d}: killed {active}'s hub; outage {outage:5.2f}s; standby serving after {takeovers[-1]:5.2f}s;"
                f" {fails} failed of {len(poller.results)} requests; server {'kept' if kept else 'LOST'}",
                flush=True,
            )
            wait_standby(active)
            time.sleep(3)
    finally:
        bob.api.delete(hub_api + "/server", timeout=60)
    print(
        f"\nunplanned failover over {len(outages)} runs: outage median {statistics.median(outages):.2f}s,"
        f" max {max(outages):.2f}s; failed requests {failed}; lost servers {lost}"
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
