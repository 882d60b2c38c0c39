"""Every server mounts the user's home and the shared area; SQLite stays local.

Jupyter keeps SQLite databases (IPython history, notebook signatures, the
file-id index) that corrupt on NFS; they go to a local directory instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def sqlite_off_network_storage(c: Any, state_dir: str) -> None:
    c.Spawner.environment = {
        **(c.Spawner.environment or {}),
        "JUPYTER_RUNTIME_DIR": f"{state_dir}/runtime",
        # Read by the notebook image's /etc/ipython/ipython_config.py.
        "TWINHUB_IPYTHON_HIST_FILE": f"{state_dir}/ipython-history.sqlite",
    }
    c.Spawner.args = [
        "--NotebookNotary.db_file=:memory:",
        f"--BaseFileIdManager.db_path={state_dir}/file_id_manager.db",
    ]


def home_creator(cfg: dict[str, Any]):
    """pre_spawn_hook: make home/<user> (uid:gid, 0700) before the first spawn.

    Runs where the hub sees the storage tree at home_host_path (hub hosts
    mount it). Never widens a mode that exists.
    """
    template = cfg["storage"]["home_host_path"]
    uid, gid = cfg["spawner"]["notebook_uid"], cfg["spawner"]["notebook_gid"]

    def pre_spawn_hook(spawner: Any) -> None:
        home = Path(template.format(username=spawner.user.name))
        if home.exists():
            return
        home.mkdir(mode=0o700, parents=False)
        os.chown(home, uid, gid)
        home.chmod(0o700)

    return pre_spawn_hook


def apply(c: Any, cfg: dict[str, Any]) -> None:
    st = cfg["storage"]
    kind = cfg["spawner"]["type"]
    sqlite_off_network_storage(c, st["local_state_dir"])
    if kind in ("docker", "swarm"):
        volumes = {st["home_host_path"]: st["home_mount_path"]}
        if st["shared_enabled"]:
            volumes[st["shared_host_path"]] = st["shared_mount_path"]
        c.DockerSpawner.volumes = volumes
        c.DockerSpawner.notebook_dir = st["home_mount_path"]
        c.Spawner.pre_spawn_hook = home_creator(cfg)
    elif kind == "kube":
        c.KubeSpawner.volumes = [
            {"name": "home", "persistentVolumeClaim": {"claimName": "twinhub-home"}},
            *([{"name": "shared", "persistentVolumeClaim": {"claimName": "twinhub-shared"}}] if st["shared_enabled"] else []),
        ]
        c.KubeSpawner.volume_mounts = [
            {"name": "home", "mountPath": st["home_mount_path"], "subPath": "{username}"},
            *([{"name": "shared", "mountPath": st["shared_mount_path"]}] if st["shared_enabled"] else []),
        ]
        c.KubeSpawner.notebook_dir = st["home_mount_path"]
