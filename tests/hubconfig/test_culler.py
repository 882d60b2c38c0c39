"""The idle culler service (hubconfig.culler): SIGINT, JupyterHub's first stop signal, ends it at once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sigint_ends_the_culler_at_once_with_a_request_in_flight():
    # A "hub" that takes the culler's request and never answers: SIGINT
    # arrives while the culler waits on it, as at a hub's stop.
    hub = socket.create_server(("127.0.0.1", 0))
    hub.settimeout(30)
    port = hub.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubconfig.culler", f"--url=http://127.0.0.1:{port}/hub/api", "--cull-every=1"],
        cwd=ROOT, env={**os.environ, "JUPYTERHUB_API_TOKEN": "culler-test-token"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        conn, _ = hub.accept()  # the request is in flight
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(10)
        took = time.monotonic() - t0
        conn.close()
    finally:
        proc.kill()
        out = proc.communicate()[0]
        hub.close()
    # Ended by the signal itself (the kernel's default action), not by a
    # KeyboardInterrupt that a callback could catch and the culler outlive.
    assert rc == -signal.SIGINT, (rc, out[-2000:])
    assert took < 2, took
