"""The hub image starts from a platform config, as an unprivileged user, and
reports healthy (its HEALTHCHECK) with users able to log in."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from hubrun import docker
from support import free_port, image

HUB_UID = 990


@pytest.fixture
def hub_container():
    work = Path(f"/tmp/twinhub-hub-image-{uuid.uuid4().hex[:6]}")
    (work / "secrets").mkdir(parents=True)
    for name in ("cookie_secret", "crypt_key", "proxy_token", "prometheus_token", "dummy_password"):
        f = work / "secrets" / name
        f.write_text(secrets.token_hex(32) + "\n")
        f.chmod(0o600)
        shutil.chown(f, HUB_UID, HUB_UID)
    cfg = {
        "environment": "lab",
        "hub": {"db_url": "sqlite:////srv/jupyterhub/jupyterhub.sqlite", "secrets_dir": "/etc/twinhub/secrets"},
        "auth": {"type": "dummy", "allowed_users": ["alice"], "dummy": {"password_file": "/etc/twinhub/secrets/dummy_password"}},
        "spawner": {"type": "local", "images": {"none": "none"}, "profiles": {"p": {"display_name": "P", "image": "none"}}},
    }
    (work / "platform.yaml").write_text(yaml.safe_dump(cfg))
    port = free_port()
    name = f"twinhub-hub-image-{uuid.uuid4().hex[:6]}"
    docker(
        "run", "-d", "--name", name, "--label", "io.twinhub.test=1", "-p", f"127.0.0.1:{port}:8000",
        "-v", f"{work}/platform.yaml:/etc/twinhub/platform.yaml:ro",
        "-v", f"{work}/secrets:/etc/twinhub/secrets:ro",
        image("hub"),
    )  # fmt: skip
    try:
        yield name, port, (work / "secrets" / "dummy_password").read_text().strip()
    finally:
        print(docker("logs", "--tail", "30", name, check=False).stderr[-3000:])
        docker("rm", "-f", name, check=False)
        shutil.rmtree(work, ignore_errors=True)


def test_hub_image_runs_unprivileged_and_becomes_healthy(hub_container):
    name, port, password = hub_container
    deadline = time.monotonic() + 90
    state = {}
    while time.monotonic() < deadline:
        state = json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)
        if state.get("Health", {}).get("Status") == "healthy" or not state["Running"]:
            break
        time.sleep(1)
    assert state["Running"], state
    assert state["Health"]["Status"] == "healthy", state["Health"]
    ps = subprocess.run(["docker", "exec", name, "id", "-u"], capture_output=True, text=True)
    assert ps.stdout.strip() == str(HUB_UID)
    s = requests.Session()
    page = s.get(f"http://127.0.0.1:{port}/hub/login", timeout=5)
    xsrf = page.text.split('name="_xsrf" value="')[1].split('"')[0]
    r = s.post(
        f"http://127.0.0.1:{port}/hub/login",
        data={"username": "alice", "password": password, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302
