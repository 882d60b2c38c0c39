"""The notebook image on its own: the ESS "local notebook server"."""

from __future__ import annotations

import json
import secrets
import time
import uuid

import requests
from hubrun import docker
from support import free_port, image


def test_standalone_server_with_token_and_scientific_stack(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)
    (work / "data.csv").write_text("x,y\n1,2\n3,4\n")
    token = secrets.token_hex(16)
    port = free_port()
    name = f"twinhub-notebook-{uuid.uuid4().hex[:6]}"
    # As documented in the README: docker run -p 8888:8888 -v "$PWD:/home/jovyan/work" IMAGE
    docker(
        "run", "-d", "--name", name, "--label", "io.twinhub.test=1", "-p", f"127.0.0.1:{port}:8888",
        "-e", f"JUPYTER_TOKEN={token}", "-v", f"{work}:/home/jovyan/work", image("notebook"),
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/api/status", params={"token": token}, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        assert requests.get(f"{url}/api/status", params={"token": token}, timeout=5).status_code == 200
        assert requests.get(f"{url}/api/status", timeout=5).status_code == 403
        # Air-gapped by default: JupyterLab neither asks about nor fetches
        # news (the image's overrides are the settings' defaults; the user
        # has set nothing).
        notification = requests.get(
            f"{url}/lab/api/settings/@jupyterlab/apputils-extension:notification", params={"token": token}, timeout=5
        ).json()
        assert notification["settings"] == {}
        defaults = {k: v.get("default") for k, v in notification["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false"
        assert defaults["checkForUpdates"] is False
        files = requests.get(f"{url}/api/contents/work", params={"token": token}, timeout=5).json()
        assert [f["name"] for f in files["content"]] == ["data.csv"]
        out = docker(
            "exec", name, "python", "-c",
            "import numpy, scipy, pandas, matplotlib, ipywidgets, os;"
            "print(pandas.read_csv('work/data.csv').y.sum(), os.getuid(), os.getgid())",
        ).stdout  # fmt: skip
        assert out.split() == ["6", "1000", "100"]
    finally:
        docker("rm", "-f", name, check=False)


def test_server_config_paths_outside_the_home_are_not_the_users():
    # With the hub's disable_user_config the server reads configuration only
    # from the paths outside the home: none of them may be writable by the
    # notebook user (uid 1000), or she could load her own server extension.
    script = (
        "import json, os; from jupyter_core.paths import jupyter_config_path; "
        "home = os.path.expanduser('~'); "
        "paths = [p for p in jupyter_config_path() if not p.startswith(home)]; "
        "writable = [p for p in paths if os.access(p if os.path.exists(p) else os.path.dirname(p), os.W_OK)]; "
        "print(json.dumps({'paths': paths, 'writable': writable}))"
    )
    out = docker("run", "--rm", "--user", "1000:100", "--entrypoint", "python", image("notebook"), "-c", script).stdout
    result = json.loads(out)
    assert "/etc/jupyter" in result["paths"], result
    assert result["writable"] == [], result
