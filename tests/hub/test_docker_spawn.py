"""A real JupyterHub, configured only by hubconfig, spawning real notebook
containers (the notebook image) on this machine's Docker.

The hub runs from the venv with configurable-http-proxy from npm; users log
in through the login form, spawn from a profile, run code in a kernel over
its websocket and write files into their home on the host.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from hubrun import NBVIEWER_URL, PASSWORD, Hub, docker, run_code, running_hub
from support import ROOT, image


@pytest.fixture(scope="module")
def hub():
    with running_hub() as h:
        print(f"\nhub startup (process start to /hub/health 200): {h.startup_seconds:.2f}s")
        yield h


def container_of(hub: Hub, user: str) -> dict:
    name = f"{hub.cfg['spawner']['name_prefix']}-{user}"
    return json.loads(docker("inspect", name).stdout)[0]


# The tests run in order and share alice's server.
def test_login_spawn_from_profile_with_its_limits(hub):
    s = hub.login("alice")
    form = s.get(f"{hub.url}/hub/spawn")
    assert 'name="profile" value="medium"' in form.text
    r = s.post(f"{hub.url}/hub/spawn", data={"profile": "medium", "_xsrf": s.headers["X-XSRFToken"]}, allow_redirects=False)
    assert r.status_code == 302, r.text[:500]
    token = hub.token(s, "alice")
    server = hub.wait_ready(hub.api(token), "alice")
    assert server["user_options"] == {"profile": "medium"}
    c = container_of(hub, "alice")
    host = c["HostConfig"]
    assert host["Memory"] == 2 * 1024**3
    # DockerSpawner expresses CPUs as a CFS quota per 100 ms period.
    assert host["CpuQuota"] / host["CpuPeriod"] == 1.0
    assert c["Config"]["User"] == "1000:100"
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["CapDrop"] == ["ALL"]
    assert not any("docker.sock" in m["Source"] for m in c["Mounts"])
    assert c["Config"]["Image"] == image("notebook")


def test_kernel_runs_code_and_writes_to_the_home_mount(hub):
    s = hub.login("alice")
    token = hub.token(s, "alice")
    api = hub.api(token)
    r = api.post(f"{hub.url}/user/alice/api/kernels", json={"name": "python3"})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    ws = hub.url.replace("http://", "ws://") + f"/user/alice/api/kernels/{kid}/channels"
    assert asyncio.run(run_code(ws, token, "1+1")) == "2"
    code = "open('/home/jovyan/from-kernel.txt', 'w').write('written by alice'); import os; os.getuid()"
    assert asyncio.run(run_code(ws, token, code)) == "1000"
    home = hub.home_root / "alice"
    assert (home / "from-kernel.txt").read_text() == "written by alice"
    st = home.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (1000, 0o700)
    assert (home / "from-kernel.txt").stat().st_uid == 1000
    # SQLite stays off the (network) home: IPython's history is local.
    assert not (home / ".ipython" / "profile_default" / "history.sqlite").exists()


def test_publish_a_notebook_for_nbviewer(hub):
    """twinhub-publish in alice's server copies into shared/published/alice/ and prints nbviewer's URL."""
    session = hub.login("alice")
    services = hub.api(hub.token(session, "alice")).get(f"{hub.url}/hub/api/services").json()
    assert services["nbviewer"]["info"]["url"] == NBVIEWER_URL  # registered as an external service
    name = container_of(hub, "alice")["Name"].lstrip("/")
    nb = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    docker("exec", name, "sh", "-c", f"echo '{nb}' > '/home/jovyan/My analysis.ipynb'")
    out = docker("exec", name, "twinhub-publish", "/home/jovyan/My analysis.ipynb").stdout.strip()
    assert out == f"{NBVIEWER_URL}localfile/alice/My%20analysis.ipynb"
    published = hub.home_root.parent / "shared" / "published" / "alice" / "My analysis.ipynb"
    assert published.read_text().strip() == nb
    assert published.stat().st_mode & 0o777 == 0o644
    assert docker("exec", name, "twinhub-publish", "--list").stdout.strip() == out
    refused = docker("exec", name, "twinhub-publish", "/etc/passwd", check=False)
    assert refused.returncode != 0
    assert "expected an existing .ipynb file" in refused.stderr


def test_stop_removes_the_container_and_keeps_files(hub):
    s = hub.login("alice")
    api = hub.api(hub.token(s, "alice"))
    r = api.delete(f"{hub.url}/hub/api/users/alice/server")
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and api.get(f"{hub.url}/hub/api/users/alice").json()["servers"]:
        time.sleep(0.5)
    assert api.get(f"{hub.url}/hub/api/users/alice").json()["servers"] == {}
    name = f"{hub.cfg['spawner']['name_prefix']}-alice"
    assert docker("inspect", name, check=False).returncode != 0
    assert (hub.home_root / "alice" / "from-kernel.txt").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"profile": "root-shell"}, "profile 'root-shell' is not allowed; choose one of ['medium', 'small']"),
        ({"profile": "small", "image": "docker.io/evil/miner"}, "unknown spawn options ['image']"),
    ],
)
def test_refuses_profiles_and_images_not_allowed(hub, options, message):
    s = hub.login("bob")
    api = hub.api(hub.token(s, "bob"))
    r = api.post(f"{hub.url}/hub/api/users/bob/server", json=options)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert api.get(f"{hub.url}/hub/api/users/bob").json()["servers"] == {}


def test_wrong_password_and_unlisted_user_cannot_log_in(hub):
    for user, password in (("alice", "wrong"), ("mallory", PASSWORD)):
        s = requests.Session()
        page = s.get(f"{hub.url}/hub/login")
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        r = s.post(f"{hub.url}/hub/login", data={"username": user, "password": password, "_xsrf": xsrf}, allow_redirects=False)
        assert r.status_code == 403, (user, r.status_code)


def test_hub_refuses_to_start_on_a_bad_config(hub, tmp_path):
    bad = dict(hub.cfg, spawner={**hub.cfg["spawner"], "imagez": {}})
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(bad))
    r = subprocess.run(
        [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(ROOT / "hubconfig" / "jupyterhub_config.py")],
        env=dict(os.environ, TWINHUB_PLATFORM_CONFIG=str(path), PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 78, r.stderr[-2000:]
    assert "spawner: Additional properties are not allowed ('imagez' was unexpected)" in r.stderr


# Last: the whole log of this hub's run, logins and spawns included.
def test_hub_log_is_json_with_events_and_no_secret(hub):
    """Every line JupyterHub wrote is a JSON object with ECS fields; no secret, password or token is in any line."""
    lines = hub.log.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) > 20
    for r in records:
        assert {"@timestamp", "log.level", "log.logger", "message"} <= r.keys(), r
        assert r["event.dataset"] == "jupyterhub", r
        assert r["@timestamp"].endswith("+00:00"), r
    # Lines that are not JSON come from the proxy (CHP) or the idle culler, not the hub.
    others = [line for line in lines if not line.startswith("{") and line.strip()]
    assert all("[ConfigProxy]" in line or "idle-culler" in line or "[JupyterHub" not in line for line in others), others[:5]
    events = {(r.get("twinhub.event"), r.get("user.name")) for r in records}
    assert ("login", "alice") in events, sorted(events, key=str)
    assert ("spawn", "alice") in events, sorted(events, key=str)
    spawn = next(r for r in records if r.get("twinhub.event") == "spawn")
    assert 0 < spawn["twinhub.spawn_duration_s"] < 120
    secrets_dir = Path(hub.cfg["hub"]["secrets_dir"])
    secrets = [p.read_text().strip() for p in secrets_dir.iterdir()] + [PASSWORD] + hub.issued_tokens
    assert len(hub.issued_tokens) >= 3
    log = hub.log.read_text()
    leaked = [s[:6] + "..." for s in secrets if s and s in log]
    assert not leaked, f"secrets in the hub log: {leaked}"
