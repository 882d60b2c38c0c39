"""A real PostgreSQL server (Debian's package) for the hubconfig tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from support import free_port

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


@pytest.fixture(scope="session")
def postgres():
    """A throwaway cluster on 127.0.0.1; yields its base URL."""
    if not PG_BIN or not shutil.which("runuser"):
        pytest.fail("PostgreSQL server binaries missing: `./twinhub test` installs Debian's postgresql")
    bindir = PG_BIN[-1]
    # Not under pytest's tmp dir: that is private to root, and the server
    # runs as the postgres user.
    top = Path(tempfile.mkdtemp(prefix="twinhub-pg-"))
    top.chmod(0o755)
    data = top / "data"
    data.mkdir()
    shutil.chown(data, "postgres", "postgres")
    port = free_port()

    def as_postgres(*cmd):
        return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True, text=True)

    as_postgres(str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres")
    as_postgres(
        str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"),
        "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start",
    )  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(top, ignore_errors=True)
