#!/usr/bin/env python3
"""Planned switch in the lab under load: zero failed requests is the goal.

Bob (through NGINX) keeps a server; a client sends about 50 requests/s
(hub API and bob's server, alternately) and two kernel websockets stay open,
each running a cell every 0.5 s, while playbooks/switch.yml hands the
platform to the other hub, and again back to the inventory's hub. Prints,
per switch: the playbook's duration, requests sent, the rate, failed
requests, websocket drops and the longest wait for a hub API answer.

    ./twinhub bench-switch
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the lab toolkit

from labhub import Bob, Poller, active_hub, other_hub, running_task, switch  # noqa: E402


def main() -> int:
    bob = Bob()
    bob.start()
    hub_api = f"{bob.hub.url}/hub/api/users/bob"
    failed = drops = 0
    try:
        first, _ = active_hub()
        for target in (other_hub(first), first):
            task = running_task("bob")
            links = bob.kernel_links(2)
            load = Poller(bob.api, [hub_api, f"{bob.base}/api/status"], rate=50)
            load.start()
            time.sleep(1)
            t0 = time.monotonic()
            result, took = switch(target)
            time.sleep(2)
            load.stop()
            links.stop()
            if result.returncode != 0:
                print(result.stdout[-3000:], result.stderr[-2000:])
                return 1
            fails = len(load.failures())
            failed += fails
            drops += len(links.drops)
            print(
                f"switch to {target}: playbook {took:.0f}s; {len(load.results)} requests at {load.achieved_rate():.0f}/s;"
                f" {load.summary()}; {links.summary()}; longest hub API wait {load.longest_gap(hub_api, t0):.2f}s;"
                f" server {'kept' if running_task('bob')['ID'] == task['ID'] else 'REPLACED'}",
                flush=True,
            )
    finally:
        bob.api.delete(hub_api + "/server", timeout=60)
    print(f"\nplanned switches: {failed} failed requests, {drops} websocket drops")
    return 0 if failed == 0 and drops == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
