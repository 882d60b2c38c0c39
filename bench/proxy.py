#!/usr/bin/env python3
"""Proxy overhead in the lab: a user's server API through NGINX -> CHP versus CHP directly.

Bob's server answers GET /user/bob/api/status. The same client (Python,
keep-alive sessions) calls it at the serving hub's CHP port (plain HTTP) and
through NGINX (HTTPS, HTTP/1.1), alternating the two paths in rounds so both
see the same machine load. Prints, per path: p50 latency of sequential
requests and requests/s with --threads concurrent clients; and the ratios
(goal: throughput >= 0.9 of direct, p50 added <= 1 ms).

    ./twinhub bench-proxy [--rounds 5] [--requests 300] [--threads 8] [--seconds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the lab toolkit

from labhub import CA, Bob, active_hub  # noqa: E402


def session(token: str, host: str | None = None) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"token {token}"
    if host:
        # Straight to a hub's CHP: it routes by host (one origin per user).
        s.headers["Host"] = host
    s.verify = CA
    s.trust_env = False  # the lab CA, not REQUESTS_CA_BUNDLE
    return s


def latencies(url: str, token: str, n: int, host: str | None = None) -> list[float]:
    s = session(token, host)
    s.get(url).raise_for_status()  # connection (and TLS) set up before timing
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = s.get(url)
        out.append(time.perf_counter() - t0)
        r.raise_for_status()
    return out


def throughput(url: str, token: str, threads: int, seconds: float, host: str | None = None) -> float:
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        s = session(token, host)
        while time.monotonic() < stop:
            s.get(url).raise_for_status()
            counts[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts) / seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()

    bob = Bob()
    bob.start()
    _, hub_url = active_hub()
    bob_host = urlparse(bob.base).hostname
    paths = {"direct (CHP)": f"{hub_url}/user/bob/api/status", "NGINX -> CHP": f"{bob.base}/api/status"}
    hosts = {"direct (CHP)": bob_host, "NGINX -> CHP": None}
    lat = {name: [] for name in paths}
    rps = {name: [] for name in paths}
    try:
        for rnd in range(1, args.rounds + 1):
            for name, url in paths.items():
                lat[name] += latencies(url, bob.token, args.requests, hosts[name])
                rps[name].append(throughput(url, bob.token, args.threads, args.seconds, hosts[name]))
            print(f"round {rnd}: " + "; ".join(f"{n} {rps[n][-1]:.0f} req/s" for n in paths), flush=True)
    finally:
        bob.api.delete(f"{bob.hub.url}/hub/api/users/bob/server", timeout=60)
    direct, proxied = paths
    p50 = {n: statistics.median(v) * 1000 for n, v in lat.items()}
    tput = {n: statistics.median(v) for n, v in rps.items()}
    for n in paths:
        print(f"{n:14s}: p50 {p50[n]:.2f} ms over {len(lat[n])} requests; {tput[n]:.0f} req/s with {args.threads} clients")
    print(
        f"\nthroughput ratio (NGINX / direct): {tput[proxied] / tput[direct]:.2f};"
        f" p50 added by NGINX: {p50[proxied] - p50[direct]:+.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
