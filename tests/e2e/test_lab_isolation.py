"""Isolation between users on the lab: one spelling of a name everywhere and
no server configuration loaded from a user's home (issue 15).

Users with the names a facility has (first.last, e-mail shaped) and a
collision pair (a.b, and a-2eb: the raw spelling of a.b's escaped name) log
in, spawn on Swarm and write files; each finds only their own. Last, a
leaver is offboarded (playbooks/offboard.yml).
"""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import quote

import pytest
from labhub import User, lab_hub, server_url, service_of
from support import ansible_playbook, lab, lab_exec

from hubconfig import names

STORAGE = "/srv/twinhub"
NAMES = ["john.doe", "anna.berg@site.org", "a.b", "a-2eb"]


@pytest.fixture(scope="module")
def users():
    hub = lab_hub()
    started: dict[str, User] = {}
    try:
        for name in NAMES:
            user = User(hub, name)
            user.spawn("small")
            started[name] = user
        yield started
    finally:
        for user in started.values():
            user.stop_quietly()


def test_each_name_has_its_own_home_service_and_files(users):
    markers = {name: uuid.uuid4().hex for name in NAMES}
    for name, user in users.items():
        user.run(f"open('/home/jovyan/who.txt', 'w').write({markers[name]!r})")
    homes = {name: f"{STORAGE}/home/{names.escape(name)}" for name in NAMES}
    # Four homes, never shared (a.b's is a-2eb, a-2eb's is a-2d2eb).
    assert len(set(homes.values())) == len(NAMES)
    for name, user in users.items():
        assert lab_exec("services", "cat", f"{homes[name]}/who.txt").stdout == markers[name], name
        # Owned by the notebook uid, private, and the server sees only this home.
        assert lab_exec("services", "stat", "-c", "%u %a", homes[name]).stdout.split() == ["1000", "700"]
        assert user.run("open('/home/jovyan/who.txt').read()") == repr(markers[name])
        assert service_of(name)["Spec"]["Name"] == f"twinhub-{names.escape(name)}"
    # No directory of a raw name that needed escaping was made.
    listing = set(lab_exec("services", "ls", f"{STORAGE}/home").stdout.split())
    assert {"john.doe", "anna.berg@site.org", "a.b"}.isdisjoint(listing), listing


def test_published_notebooks_go_under_the_escaped_name(users):
    user = users["john.doe"]
    out = user.run(
        "import json, subprocess; json.dump({'cells': [], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5},"
        " open('/home/jovyan/iso.ipynb', 'w')); "
        "subprocess.run(['twinhub-publish', '/home/jovyan/iso.ipynb'], capture_output=True, text=True, check=True).stdout"
    )
    assert "localfile/john-2edoe/iso.ipynb" in out, out
    lab_exec("services", "test", "-f", f"{STORAGE}/shared/published/john-2edoe/iso.ipynb")
    user.run("import subprocess; subprocess.run(['twinhub-publish', '--remove', 'iso.ipynb'], check=True)")


def test_server_config_in_the_home_is_not_loaded(users):
    user = users["a.b"]
    marker = f"/home/jovyan/loaded-{uuid.uuid4().hex[:8]}"
    config_dir = user.run(
        # Where Jupyter looks for a user's config when nothing stops it (the
        # control: the files below are where they would take effect).
        "import os, subprocess; env = {k: v for k, v in os.environ.items() if k != 'JUPYTERHUB_DISABLE_USER_CONFIG'}; "
        "subprocess.run(['python', '-c', 'from jupyter_core.paths import jupyter_config_dir; print(jupyter_config_dir())'],"
        " env=env, capture_output=True, text=True).stdout.strip()"
    )
    assert config_dir == "'/home/jovyan/.jupyter'", config_dir
    py = f"open({marker!r}, 'w').write('loaded')\n"
    js = json.dumps({"ServerApp": {"tornado_settings": {"headers": {"X-Twinhub-User-Config": "loaded"}}}})
    user.run(
        "import os; os.makedirs('/home/jovyan/.jupyter', exist_ok=True); "
        f"open('/home/jovyan/.jupyter/jupyter_server_config.py', 'w').write({py!r}); "
        f"open('/home/jovyan/.jupyter/jupyter_server_config.json', 'w').write({js!r})"
    )
    try:
        user.stop()
        user.spawn("small")
        assert user.run(f"import os; os.path.exists({marker!r})") == "False"
        assert user.run("import os; os.environ.get('JUPYTERHUB_DISABLE_USER_CONFIG')") == "'1'"
        r = user.api.get(f"{server_url(user.hub, user.api, user.name)}/api/status", timeout=30)
        assert r.status_code == 200, r.text
        assert "X-Twinhub-User-Config" not in r.headers
    finally:
        user.run("import os; [os.remove(f'/home/jovyan/.jupyter/jupyter_server_config.{x}') for x in ('py', 'json')]")


def offboard(*args: str):
    return ansible_playbook("-i", str(lab().inventory), "playbooks/offboard.yml", *args, timeout=300)


def test_offboarding_a_leaver():
    hub = lab_hub()
    admin = hub.api(hub.token(hub.login("admin"), "admin"))
    # A leaver: in the hub's database with a server and a token, no longer
    # in the allowed list (the admin made the record, as an earlier
    # deployment's list would have).
    leaver = f"leaver.{uuid.uuid4().hex[:6]}"
    path = quote(leaver, safe="")
    assert admin.post(f"{hub.url}/hub/api/users/{path}", timeout=30).status_code == 201
    r = admin.post(f"{hub.url}/hub/api/users/{path}/tokens", json={"note": "leaver", "expires_in": 3600}, timeout=30)
    assert r.status_code == 201, r.text
    theirs = hub.api(r.json()["token"])
    assert admin.post(f"{hub.url}/hub/api/users/{path}/server", json={"profile": "small"}, timeout=30).status_code in (201, 202)
    hub.wait_ready(admin, leaver, timeout=150)
    home = f"{STORAGE}/home/{names.escape(leaver)}"
    lab_exec("services", "test", "-d", home)
    assert theirs.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == leaver
    # Not in the allowed list: no login (auth.allow_existing_users is off).
    assert hub.login_attempt(leaver)[1].status_code == 403

    # A user still allowed is refused before anything changes.
    refused = offboard("-e", "user=alice")
    assert refused.returncode != 0
    assert 'user "alice" is still in hub_platform_config.auth.allowed_users' in refused.stdout, refused.stdout[-3000:]
    assert hub.login_attempt("alice")[1].status_code == 302

    done = offboard("-e", f"user={leaver}", "-e", "nfs_server_offboard_home=archive")
    assert done.returncode == 0, done.stdout[-3000:]
    assert theirs.get(f"{hub.url}/hub/api/user", timeout=30).status_code == 403
    services = lab_exec("services", "docker", "service", "ls", "--format", "{{.Name}}").stdout.split()
    assert f"twinhub-{names.escape(leaver)}" not in services
    assert lab_exec("services", "test", "-e", home, check=False).returncode == 1
    archived = lab_exec("services", "sh", "-c", f"ls {STORAGE}/archive/{names.escape(leaver)}-*.tar.gz").stdout.split()
    assert len(archived) == 1, archived
    assert f"{names.escape(leaver)}/" in lab_exec("services", "tar", "-tzf", archived[0]).stdout

    again = offboard("-e", f"user={leaver}", "-e", "nfs_server_offboard_home=archive")
    assert again.returncode == 0, again.stdout[-3000:]
    changed = re.findall(r"changed=(\d+)", again.stdout)
    assert changed, again.stdout[-2000:]
    assert set(changed) == {"0"}, again.stdout[-2000:]
