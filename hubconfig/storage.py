"""Every server mounts the user's home and the shared area; SQLite stays local.

Jupyter keeps SQLite databases (IPython history, notebook signatures, the
file-id index) that corrupt on NFS; they go to a local directory instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hubconfig import environment, names


def sqlite_off_network_storage(c: Any, state_dir: str) -> None:
    environment.add(
        c,
        {
            "JUPYTER_RUNTIME_DIR": f"{state_dir}/runtime",
            # Read by the notebook image's /etc/ipython/ipython_config.py.
            "TWINHUB_IPYTHON_HIST_FILE": f"{state_dir}/ipython-history.sqlite",
        },
    )
    c.Spawner.args = [
        "--NotebookNotary.db_file=:memory:",
        f"--BaseFileIdManager.db_path={state_dir}/file_id_manager.db",
        # Real-time collaboration's document history (SQLite) and its record
        # of sessions (jupyter-collaboration), else in the home.
        f"--SQLiteYStore.db_path={state_dir}/ystore.db",
        f"--YDocExtension.session_store_path={state_dir}/collaboration_sessions.json",
    ]


def shared_locks(c: Any, st: dict[str, Any]) -> None:
    """Locks on the shared area (the notebook image's twinhub_locks, issue 20).

    The lock's directory is where servers see the shared area, as a path
    under the server's root (the home); one mounted elsewhere is not under
    Jupyter's contents at all and has nothing to lock.
    """
    locks = st["shared_locks"]
    home, shared = Path(st["home_mount_path"]), Path(st["shared_mount_path"])
    if not (st["shared_enabled"] and locks["enabled"] and shared.is_relative_to(home) and shared != home):
        # Jupyter's own contents manager: no locks, nothing else changes.
        c.Spawner.args = [
            *c.Spawner.get("args", []),
            "--ServerApp.contents_manager_class=jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager",
        ]
        return
    c.Spawner.args = [
        *c.Spawner.get("args", []),
        f"--LockingContentsManager.locked_dirs={shared.relative_to(home).as_posix()}",
        f"--LockingContentsManager.lock_lifetime={locks['lifetime_seconds']}",
    ]
    # `twinhub-lock FILE` in a terminal reads locks with the same lifetime.
    environment.add(c, {"TWINHUB_LOCK_LIFETIME": str(locks["lifetime_seconds"])})


def home_creator(cfg: dict[str, Any]):
    """pre_spawn_hook: make home/<escaped user> (uid:gid, 0700) before the first spawn.

    Runs where the hub sees the storage tree at home_host_path (hub hosts
    mount it). Never widens a mode that exists.
    """
    template = cfg["storage"]["home_host_path"]
    uid, gid = cfg["spawner"]["notebook_uid"], cfg["spawner"]["notebook_gid"]

    def pre_spawn_hook(spawner: Any) -> None:
        # DockerSpawner fills the volume's {username} with the same spelling.
        home = Path(template.format(username=names.escape(spawner.user.name)))
        if home.exists():
            return
        home.mkdir(mode=0o700, parents=False)
        os.chown(home, uid, gid)
        home.chmod(0o700)

    return pre_spawn_hook


def home_requester(cfg: dict[str, Any]):
    """pre_spawn_hook: ask the storage host's home directory service for home/<escaped user>.

    For hubs whose view of the storage is root-squashed (NFS): only the
    storage host can create a directory owned by the notebook uid. The
    service answers 201 (made) or 200 (was there); anything else stops the
    spawn with a message for the user instead of a server with no home.
    """
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError
    from tornado.web import HTTPError

    from hubconfig.secrets import read_secret

    st = cfg["storage"]
    base = st["homedir_service_url"].rstrip("/")
    token = read_secret(st["homedir_token_file"], "storage.homedir_token_file")

    async def pre_spawn_hook(spawner: Any) -> None:
        url = f"{base}/homes/{names.escape(spawner.user.name)}"
        try:
            await AsyncHTTPClient().fetch(
                url, method="PUT", body=b"", headers={"Authorization": f"Bearer {token}"}, request_timeout=10
            )
        except (HTTPClientError, OSError) as exc:
            spawner.log.error("home directory service %s: %s", url, exc)
            raise HTTPError(503, "Your home directory could not be prepared; please try again shortly.") from exc

    pre_spawn_hook.service_url = base
    pre_spawn_hook.token_file = st["homedir_token_file"]
    return pre_spawn_hook


def apply(c: Any, cfg: dict[str, Any]) -> None:
    st = cfg["storage"]
    kind = cfg["spawner"]["type"]
    sqlite_off_network_storage(c, st["local_state_dir"])
    shared_locks(c, st)
    if kind in ("docker", "swarm"):
        volumes = {st["home_host_path"]: st["home_mount_path"]}
        if st["shared_enabled"]:
            volumes[st["shared_host_path"]] = st["shared_mount_path"]
        c.DockerSpawner.volumes = volumes
        c.DockerSpawner.notebook_dir = st["home_mount_path"]
        c.Spawner.pre_spawn_hook = home_requester(cfg) if st["homedir_service_url"] else home_creator(cfg)
    elif kind == "kube":
        c.KubeSpawner.volumes = [
            {"name": "home", "persistentVolumeClaim": {"claimName": "twinhub-home"}},
            *([{"name": "shared", "persistentVolumeClaim": {"claimName": "twinhub-shared"}}] if st["shared_enabled"] else []),
        ]
        c.KubeSpawner.volume_mounts = [
            {"name": "home", "mountPath": st["home_mount_path"], "subPath": "{escaped_username}"},
            *([{"name": "shared", "mountPath": st["shared_mount_path"]}] if st["shared_enabled"] else []),
        ]
        c.KubeSpawner.notebook_dir = st["home_mount_path"]
