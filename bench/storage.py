#!/usr/bin/env python3
"""Storage benchmark: the lab's NFS export versus the same directory locally.

Reads one 200 MB file, and writes and reads 2,000 small files (1 KiB), through the
NFSv4 export of shared/ on the lab's storage host (NFS-Ganesha), then the
same on the directory it exports, on this machine, and prints throughput and
the NFS/local ratios, measured side by side in one run.

The NFS client is libnfs' nfs-cp (Debian's libnfs-utils): the lab's kernel
has no NFS client. Every file is one nfs-cp process, and the local side
copies with one cp process per file, so both sides pay the same start-up.
(libnfs 4.0's library calls through ctypes failed to encode NFSv4 WRITEs,
hence the command-line client.)

    ./twinhub up && .venv/bin/python bench/storage.py [--big-mb 200] [--small 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_TREE = ROOT / ".cache" / "lab" / "storage-root"


def nfs_url(ip: str, path: str) -> str:
    return f"nfs://{ip}/shared/{path}?version=4&uid=1000&gid=100"


def cp(src: str, dst: str, nfs: bool) -> None:
    """One copy, as one process on both sides, so the ratio compares NFS with
    local I/O and not process start-up."""
    subprocess.run(["nfs-cp" if nfs else "cp", src, dst], check=True, capture_output=True)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--small-kb", type=int, default=1)
    ap.add_argument("--container", default="twinhub-lab-services")
    args = ap.parse_args()

    ip = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", args.container],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    if not ip or not (LOCAL_TREE / "shared").is_dir():
        print("the lab is not up (no storage host or tree): run ./twinhub up first", file=sys.stderr)
        return 2
    run = f"bench-{os.getpid()}"
    remote = LOCAL_TREE / "shared" / run  # where the NFS side lands, seen locally
    remote.mkdir()
    shutil.chown(remote, 1000, 100)
    local = LOCAL_TREE / "shared" / f"{run}-local"
    local.mkdir()
    work = Path(f"/tmp/twinhub-bench-{run}")
    work.mkdir()
    big = work / "big.bin"
    with open(big, "wb") as f:
        for _ in range(args.big_mb):
            f.write(os.urandom(1 << 20))
    small = work / "small.bin"
    small.write_bytes(os.urandom(args.small_kb * 1024))
    results: dict[str, tuple[float, float]] = {}
    try:
        # libnfs 4.0's NFSv4 client (Debian 12) fails to encode WRITEs larger
        # than about 1 KiB, so the big file reaches the export locally and only
        # its read is compared; small writes use 1 KiB files.
        local_big_write = timed(lambda: cp(str(big), str(local / "big.bin"), nfs=False))
        shutil.copy(local / "big.bin", remote / "big.bin")
        shutil.chown(remote / "big.bin", 1000, 100)
        print(f"big write (local only; libnfs cannot write it over NFSv4): {args.big_mb / local_big_write:.1f} MB/s")
        results["big read MB/s"] = (
            args.big_mb / timed(lambda: cp(nfs_url(ip, f"{run}/big.bin"), str(work / "back-nfs.bin"), nfs=True)),
            args.big_mb / timed(lambda: cp(str(local / "big.bin"), str(work / "back-local.bin"), nfs=False)),
        )
        assert (work / "back-nfs.bin").read_bytes() == big.read_bytes(), "NFS read back different bytes"
        n = args.small
        results["small write files/s"] = (
            n / timed(lambda: [cp(str(small), nfs_url(ip, f"{run}/f{i:05d}"), nfs=True) for i in range(n)]),
            n / timed(lambda: [cp(str(small), str(local / f"f{i:05d}"), nfs=False) for i in range(n)]),
        )
        results["small read files/s"] = (
            n / timed(lambda: [cp(nfs_url(ip, f"{run}/f{i:05d}"), str(work / f"rn{i:05d}"), nfs=True) for i in range(n)]),
            n / timed(lambda: [cp(str(local / f"f{i:05d}"), str(work / f"rl{i:05d}"), nfs=False) for i in range(n)]),
        )
    finally:
        for d in (local, remote, work):
            shutil.rmtree(d, ignore_errors=True)

    print(f"storage: NFSv4 via NFS-Ganesha on {args.container} ({ip}) vs the exported directory locally")
    print(f"big file {args.big_mb} MB, {args.small} small files of {args.small_kb} KiB")
    print(f"{'':22s} {'nfs':>10s} {'local':>10s} {'ratio':>7s}")
    for name, (n, loc) in results.items():
        print(f"{name:22s} {n:10.1f} {loc:10.1f} {n / loc:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
