"""Run a real JupyterHub from the venv, configured only by hubconfig, that
spawns notebook containers on this machine's Docker. Part of the lab toolkit:
used by tests/hub, tools/labhub.py and bench/spawn.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import requests
import yaml
from labkit import ROOT, free_port, image
from tornado.websocket import websocket_connect

NETWORK = "twinhub-hub-e2e"
PASSWORD = "lab-" + secrets.token_hex(8)
CHP_BIN = ROOT / ".cache" / "node" / "node_modules" / ".bin"
# nbviewer is registered (its own origin); nothing serves this name here.
NBVIEWER_URL = "https://nbviewer.e2e.test/"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def write_secret(path: Path, value: str) -> None:
    path.write_text(value + "\n")
    path.chmod(0o600)


def platform_config(workdir: Path, gateway: str, hub_port: int, home_root: Path, shared: Path) -> dict:
    secrets_dir = workdir / "secrets"
    secrets_dir.mkdir()
    for name in ("cookie_secret", "crypt_key", "proxy_token", "prometheus_token", "nbviewer_token"):
        write_secret(secrets_dir / name, secrets.token_hex(32))
    write_secret(workdir / "dummy_password", PASSWORD)
    return {
        "environment": "lab",
        "hub": {
            "bind_url": f"http://127.0.0.1:{free_port()}",
            "hub_bind_url": f"http://0.0.0.0:{hub_port}",
            # Servers reach the hub API through the bridge's gateway.
            "hub_connect_url": f"http://{gateway}:{hub_port}",
            "db_url": f"sqlite:///{workdir}/jupyterhub.sqlite",
            "secrets_dir": str(secrets_dir),
            "proxy_api_url": f"http://127.0.0.1:{free_port()}",
            "log_format": "json",
        },
        "auth": {
            "type": "dummy",
            "admin_users": ["ops"],
            "allowed_users": ["alice", "bob"],
            "dummy": {"password_file": str(workdir / "dummy_password")},
        },
        "spawner": {
            "type": "docker",
            "images": {"notebook": image("notebook")},
            "profiles": {
                "small": {"display_name": "Small", "image": "notebook", "cpu_limit": 0.5, "mem_limit": "1G"},
                "medium": {"display_name": "Medium", "image": "notebook", "cpu_limit": 1, "mem_limit": "2G"},
            },
            "name_prefix": f"twinhub-e2e-{uuid.uuid4().hex[:6]}",
            "network": NETWORK,
            "pull_policy": "never",
            "start_timeout": 90,
            "http_timeout": 60,
            "poll_interval": 2,
        },
        "storage": {
            "home_host_path": str(home_root) + "/{username}",
            "shared_host_path": str(shared),
        },
        "services": {
            "idle_culler": {"enabled": True, "timeout": 3600, "every": 60},
            "nbviewer": {"enabled": True, "url": NBVIEWER_URL},
        },
    }


class Hub:
    """A client of a hub at url (a hub this module started, or the lab's)."""

    def __init__(self, url: str, proc=None, cfg: dict | None = None, home_root: Path | None = None, log: Path | None = None):
        self.url, self.proc, self.cfg, self.home_root, self.log = url, proc, cfg, home_root, log
        self.password = PASSWORD
        # Every API token issued through this client (the log tests check
        # none of them reaches a log line).
        self.issued_tokens: list[str] = []
        # What this client's sessions verify TLS against (a CA file for the lab's proxy).
        self.verify: bool | str = True

    def session(self) -> requests.Session:
        s = requests.Session()
        s.verify = self.verify
        # requests lets REQUESTS_CA_BUNDLE from the environment override the
        # session's own CA file; a lab CA must win.
        s.trust_env = self.verify is True
        return s

    def login_attempt(self, user: str, password: str | None = None) -> tuple[requests.Session, requests.Response]:
        """Submit the hub's HTML login form, as a browser does: the session and the hub's answer (302 when let in)."""
        s = self.session()
        page = s.get(f"{self.url}/hub/login", timeout=30)
        page.raise_for_status()
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        r = s.post(
            f"{self.url}/hub/login?next=%2Fhub%2Fhome",
            data={"username": user, "password": password or self.password, "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )
        s.headers["X-XSRFToken"] = s.cookies.get("_xsrf", xsrf)
        return s, r

    def login(self, user: str, password: str | None = None) -> requests.Session:
        """Log in through the hub's HTML login form, as a browser does."""
        s, r = self.login_attempt(user, password)
        assert r.status_code == 302, (r.status_code, r.text[:500])
        return s

    def token(self, session: requests.Session, user: str, scopes: list[str] | None = None) -> str:
        """A new API token of user's (scopes: JupyterHub's default for tokens unless given, e.g. ["inherit"])."""
        body = {"note": "e2e", "expires_in": 3600, **({"scopes": scopes} if scopes else {})}
        r = session.post(f"{self.url}/hub/api/users/{quote(user, safe='')}/tokens", json=body)
        assert r.status_code == 201, r.text
        self.issued_tokens.append(r.json()["token"])
        return r.json()["token"]

    def api(self, token: str) -> requests.Session:
        s = self.session()
        s.headers["Authorization"] = f"token {token}"
        return s

    def wait_ready(self, api: requests.Session, user: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        model = {}
        while time.monotonic() < deadline:
            model = api.get(f"{self.url}/hub/api/users/{quote(user, safe='')}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return server
            time.sleep(0.5)
        log = self.log.read_text()[-3000:] if self.log else ""
        raise AssertionError(f"{user}'s server not ready in {timeout}s: {model}\n{log}")


@contextlib.contextmanager
def running_hub(users: list[str] | None = None, db: Path | None = None, settings: dict | None = None) -> Iterator[Hub]:
    """A hub for `users` (default: alice and bob); `db`: a SQLite file kept across hubs; `settings`: more
    top-level sections of the platform config (e.g. {"sharing": {...}}), merged into the lab's by key."""
    if not (CHP_BIN / "configurable-http-proxy").exists():
        raise RuntimeError("configurable-http-proxy missing: `./twinhub hub-e2e` installs it with npm")
    docker("network", "rm", NETWORK, check=False)
    docker("network", "create", "--label", "io.twinhub.test=1", NETWORK)
    gateway = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", NETWORK).stdout.strip()
    workdir = Path(f"/tmp/twinhub-hub-e2e-{uuid.uuid4().hex[:6]}")
    workdir.mkdir(mode=0o755)
    home_root = workdir / "home"
    home_root.mkdir()
    shared = workdir / "shared"
    shared.mkdir(mode=0o2775)
    (shared / "published").mkdir(mode=0o2775)
    for path in (shared, shared / "published"):
        os.chown(path, 1000, 100)
        path.chmod(0o2775)
    hub_port = free_port()
    cfg = platform_config(workdir, gateway, hub_port, home_root, shared)
    if users:
        cfg["auth"]["allowed_users"] = users
    if db:
        cfg["hub"]["db_url"] = f"sqlite:///{db}"
    for key, value in (settings or {}).items():
        # A section's keys are added to the lab's (storage keeps its paths).
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) and isinstance(cfg.get(key), dict) else value
    (workdir / "platform.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = dict(
        os.environ,
        TWINHUB_PLATFORM_CONFIG=str(workdir / "platform.yaml"),
        PYTHONPATH=str(ROOT),
        PATH=f"{CHP_BIN}:{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    log = workdir / "hub.log"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(ROOT / "hubconfig" / "jupyterhub_config.py")],
        cwd=workdir, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    hub = Hub(cfg["hub"]["bind_url"], proc, cfg, home_root, log)
    try:
        hub.startup_seconds = wait_healthy(hub, t0)
        yield hub
    finally:
        stop_hub(hub, workdir)


def wait_healthy(hub: Hub, t0: float, timeout: float = 60) -> float:
    """Seconds from t0 until /hub/health answers 200."""
    while time.monotonic() - t0 < timeout:
        try:
            if requests.get(f"{hub.url}/hub/health", timeout=1).status_code == 200:
                return time.monotonic() - t0
        except requests.ConnectionError:
            pass
        if hub.proc.poll() is not None:
            raise RuntimeError("hub exited:\n" + hub.log.read_text()[-4000:])
        time.sleep(0.05)
    raise RuntimeError(f"hub not healthy in {timeout}s:\n" + hub.log.read_text()[-4000:])


def stop_hub(hub: Hub, workdir: Path, slow: float = 10) -> None:
    proc, cfg = hub.proc, hub.cfg
    t0 = time.monotonic()
    proc.terminate()
    try:
        # A loaded machine (CI runs everything on two cores) can take a while.
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise
    if (took := time.monotonic() - t0) > slow:
        # Said in pytest's warnings summary with what the hub logged last,
        # before its log is removed below (how the idle culler's swallowed
        # SIGINT was found: hubconfig/culler.py).
        tail = "\n".join(hub.log.read_text(errors="replace").splitlines()[-15:])
        warnings.warn(f"the hub took {took:.0f}s to stop; its last log lines:\n{tail}", stacklevel=2)
    prefix = cfg["spawner"]["name_prefix"]
    ids = docker("ps", "-aq", "--filter", f"name={prefix}").stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)
    docker("network", "rm", NETWORK, check=False)
    shutil.rmtree(workdir, ignore_errors=True)


async def open_kernel(ws_url: str, token: str, ca_certs: str | None = None):
    """A kernel's websocket (channels), authenticated with the user's token."""
    from tornado.httpclient import HTTPRequest

    return await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}, ca_certs=ca_certs))


async def execute(conn, code: str, timeout: float = 60) -> str:
    """Execute code over an open kernel websocket; return the result text.

    Raises ConnectionError when the websocket closes before the answer.
    """
    msg_id = uuid.uuid4().hex
    conn.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id, "msg_type": "execute_request", "username": "e2e",
                    "session": uuid.uuid4().hex, "version": "5.3",
                },
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False},
            }
        )
    )  # fmt: skip
    result = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = await asyncio.wait_for(conn.read_message(), max(0.1, deadline - time.monotonic()))
        if raw is None:
            raise ConnectionError(f"the kernel websocket closed ({conn.close_code} {conn.close_reason})")
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["header"]["msg_type"]
        if kind == "execute_result":
            result = msg["content"]["data"]["text/plain"]
        elif kind == "error":
            raise AssertionError(msg["content"])
        elif kind == "status" and msg["content"]["execution_state"] == "idle" and result is not None:
            break
    return result


async def run_code(ws_url: str, token: str, code: str, ca_certs: str | None = None) -> str:
    """Execute code in a kernel over a websocket of its own; return the result text."""
    conn = await open_kernel(ws_url, token, ca_certs)
    try:
        return await execute(conn, code)
    finally:
        conn.close()
