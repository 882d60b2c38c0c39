#!/usr/bin/env python3
"""Storage benchmark: the lab's NFS export versus the same directory locally.

Writes and reads one 200 MB file and 2,000 small files (4 KiB) through the
NFSv4 export of shared/ on the lab's storage host (NFS-Ganesha), then the
same on the directory it exports, on this machine, and prints throughput and
the NFS/local ratios, measured side by side in one run.

The NFS client is libnfs (Debian's libnfs13, called through ctypes): the
lab's kernel has no NFS client, and libnfs keeps one session for the whole
run, so per-file numbers measure NFS round trips, not process start-up.

    ./twinhub up && .venv/bin/python bench/storage.py [--big-mb 200] [--small 2000]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_TREE = ROOT / ".cache" / "lab" / "storage-root"
CHUNK = 1 << 20
O_RDONLY = os.O_RDONLY


class NFS:
    """The few libnfs sync calls the benchmark needs."""

    def __init__(self, server: str, export: str, uid: int, gid: int):
        self.lib = ctypes.CDLL("libnfs.so.13")
        lib = self.lib
        lib.nfs_init_context.restype = ctypes.c_void_p
        lib.nfs_get_error.restype = ctypes.c_char_p
        for name in ("nfs_mount", "nfs_open", "nfs_creat", "nfs_close", "nfs_read", "nfs_write", "nfs_mkdir",
                     "nfs_unlink", "nfs_set_version", "nfs_rmdir"):  # fmt: skip
            getattr(lib, name).restype = ctypes.c_int
        lib.nfs_get_error.argtypes = [ctypes.c_void_p]
        lib.nfs_set_version.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.nfs_set_uid.argtypes = lib.nfs_set_gid.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.nfs_mount.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.nfs_open.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)]
        lib.nfs_creat.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)]
        lib.nfs_close.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.nfs_read.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p]
        lib.nfs_write.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p]
        lib.nfs_mkdir.argtypes = lib.nfs_unlink.argtypes = lib.nfs_rmdir.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.ctx = lib.nfs_init_context()
        self.check(lib.nfs_set_version(self.ctx, 4), "set_version")
        lib.nfs_set_uid(self.ctx, uid)
        lib.nfs_set_gid(self.ctx, gid)
        self.check(lib.nfs_mount(self.ctx, server.encode(), export.encode()), f"mount {server}:{export}")

    def check(self, rc: int, what: str) -> int:
        if rc < 0:
            raise OSError(f"libnfs {what}: {self.lib.nfs_get_error(self.ctx).decode()}")
        return rc

    def write_file(self, path: str, data: bytes, repeat: int = 1) -> None:
        fh = ctypes.c_void_p()
        self.check(self.lib.nfs_creat(self.ctx, path.encode(), 0o644, ctypes.byref(fh)), f"creat {path}")
        buf = ctypes.create_string_buffer(data, len(data))
        for _ in range(repeat):
            self.check(self.lib.nfs_write(self.ctx, fh, len(data), buf), f"write {path}")
        self.check(self.lib.nfs_close(self.ctx, fh), f"close {path}")

    def read_file(self, path: str, chunk: int = CHUNK) -> int:
        fh = ctypes.c_void_p()
        self.check(self.lib.nfs_open(self.ctx, path.encode(), O_RDONLY, ctypes.byref(fh)), f"open {path}")
        buf = ctypes.create_string_buffer(chunk)
        total = 0
        while (n := self.check(self.lib.nfs_read(self.ctx, fh, chunk, buf), f"read {path}")) > 0:
            total += n
        self.check(self.lib.nfs_close(self.ctx, fh), f"close {path}")
        return total

    def mkdir(self, path: str) -> None:
        self.lib.nfs_mkdir(self.ctx, path.encode())


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def local_write(path: Path, data: bytes, repeat: int = 1) -> None:
    with open(path, "wb") as f:
        for _ in range(repeat):
            f.write(data)
        f.flush()
        os.fsync(f.fileno())  # the NFS client commits on close: same durability


def local_read(path: Path) -> int:
    total = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            total += len(chunk)
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--small-kb", type=int, default=4)
    ap.add_argument("--container", default="twinhub-lab-services")
    args = ap.parse_args()

    ip = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", args.container],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    if not ip or not (LOCAL_TREE / "shared").is_dir():
        print("the lab is not up (no storage host or tree): run ./twinhub up first", file=sys.stderr)
        return 2
    nfs = NFS(ip, "/shared", uid=1000, gid=100)
    run = f"bench-{os.getpid()}"
    nfs.mkdir(f"/{run}")
    local = LOCAL_TREE / "shared" / f"{run}-local"
    local.mkdir()
    mb = os.urandom(CHUNK)
    small = os.urandom(args.small_kb * 1024)
    results: dict[str, tuple[float, float]] = {}
    try:
        results["big write MB/s"] = (
            args.big_mb / timed(lambda: nfs.write_file(f"/{run}/big.bin", mb, args.big_mb)),
            args.big_mb / timed(lambda: local_write(local / "big.bin", mb, args.big_mb)),
        )
        results["big read MB/s"] = (
            args.big_mb / timed(lambda: nfs.read_file(f"/{run}/big.bin")),
            args.big_mb / timed(lambda: local_read(local / "big.bin")),
        )

        def nfs_small_write():
            for i in range(args.small):
                nfs.write_file(f"/{run}/f{i:05d}", small)

        def local_small_write():
            for i in range(args.small):
                with open(local / f"f{i:05d}", "wb") as f:
                    f.write(small)

        def nfs_small_read():
            for i in range(args.small):
                nfs.read_file(f"/{run}/f{i:05d}", chunk=len(small) + 1)

        def local_small_read():
            for i in range(args.small):
                (local / f"f{i:05d}").read_bytes()

        results["small write files/s"] = (args.small / timed(nfs_small_write), args.small / timed(local_small_write))
        results["small read files/s"] = (args.small / timed(nfs_small_read), args.small / timed(local_small_read))
    finally:
        shutil.rmtree(local, ignore_errors=True)
        shutil.rmtree(LOCAL_TREE / "shared" / run, ignore_errors=True)

    print(f"storage: NFSv4 via NFS-Ganesha on {args.container} ({ip}) vs the exported directory locally")
    print(f"big file {args.big_mb} MB, {args.small} small files of {args.small_kb} KiB")
    print(f"{'':22s} {'nfs':>10s} {'local':>10s} {'ratio':>7s}")
    for name, (n, loc) in results.items():
        print(f"{name:22s} {n:10.1f} {loc:10.1f} {n / loc:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
