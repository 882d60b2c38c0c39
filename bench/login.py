#!/usr/bin/env python3
"""Logins per second through NGINX, as browsers do them: LDAP, OpenID Connect and PAM.

A login is the whole flow with a fresh browser session (no cookies):

- ldap: GET /hub/login (the form), POST it (the hub binds to the directory
  over LDAPS as the search account, finds the user, binds as them, reads
  their groups), follow to /hub/home;
- oidc: GET /hub/oauth_login (redirect to the provider), the provider's
  login page, POST it (LemonLDAP::NG binds to the same directory), the
  redirect back with a code, the hub's token and userinfo calls, /hub/home;
- pam: the ldap form flow, but the hub asks PAM, which asks the hub host's
  sssd, which binds to the same directory as the user and reads their groups.

Each level runs N logins with C concurrent clients (threads; users taken in
turn from the lab's directory) and prints logins/s, p50 and p95 latency and
failures. For oidc and pam the hubs are deployed with lab_auth=oidc or pam
first (as the e2e modules do) and put back on the directory (ldap) at the end.
Public anchor: a 1-CPU hub topped out near 2 logins/s with 5-7 s latency
(neurohackademy/nh2020-jupyterhub#44, a load test with a GitHub login).

    ./twinhub bench-login [--auth ldap|oidc|pam|all] [--logins 20] [--concurrency 1 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the lab toolkit

from labhub import LAB, lab_hub, oidc_session, use_auth  # noqa: E402


def users() -> list[str]:
    allowed = LAB.setting("hub_platform_config")["auth"]["allowed_users"]
    return [u for u in allowed if u != "a-2eb"] + ["dana", "erin"]


def form_login(hub, name: str) -> None:
    s, r = hub.login_attempt(name)
    assert r.status_code == 302, (r.status_code, r.text[:200])
    home = s.get(f"{hub.url}/hub/home", timeout=60)
    assert home.status_code == 200, home.status_code


def oidc_login(hub, name: str) -> None:
    s = oidc_session(hub, name)
    home = s.get(f"{hub.url}/hub/home", timeout=60)
    assert home.status_code == 200, home.status_code


def level(hub, login, names: list[str], total: int, concurrency: int) -> dict:
    times: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            name = names[i % len(names)]
            t0 = time.perf_counter()
            try:
                login(hub, name)
            except Exception as exc:  # a failed login is a figure, not a crash
                with lock:
                    failures.append(f"{name}: {exc}"[:200])
                continue
            with lock:
                times.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    times.sort()
    return {
        "logins": len(times),
        "failed": len(failures),
        "per_s": len(times) / wall if wall else 0.0,
        "p50": statistics.median(times) if times else float("nan"),
        "p95": times[max(0, round(0.95 * len(times)) - 1)] if times else float("nan"),
        "first_failures": failures[:3],
    }


def run(kind: str, logins: int, levels: list[int]) -> list[tuple[str, int, dict]]:
    hub = lab_hub()
    login = oidc_login if kind == "oidc" else form_login
    names = users()
    login(hub, names[0])  # warm: connections, the provider's caches
    out = []
    for c in levels:
        r = level(hub, login, names, max(logins, c), c)
        out.append((kind, c, r))
        print(
            f"{kind:5} clients={c:2}: {r['logins']} logins, {r['failed']} failed, {r['per_s']:.1f} logins/s,"
            f" p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s",
            flush=True,
        )
        for f in r["first_failures"]:
            print(f"      failed: {f}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--auth", choices=["ldap", "oidc", "pam", "all"], default="all")
    ap.add_argument("--logins", type=int, default=20, help="logins per level (at least the concurrency)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 10])
    args = ap.parse_args()
    kinds = ["ldap", "oidc", "pam"] if args.auth == "all" else [args.auth]
    results = []
    try:
        for kind in kinds:
            if seconds := use_auth(kind):
                print(f"deploying the hubs with auth.type {kind}: {seconds:.0f} s", flush=True)
            results += run(kind, args.logins, args.concurrency)
    finally:
        if seconds := use_auth("ldap"):
            print(f"back on the directory (ldap): {seconds:.0f} s", flush=True)
    print("\nanchor: ~2 logins/s, 5-7 s per login on a 1-CPU hub (nh2020-jupyterhub#44); here the clients, NGINX,")
    print("the hub, the directory and the provider share this machine's 2 cores")
    return 1 if any(r["failed"] for _, _, r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
