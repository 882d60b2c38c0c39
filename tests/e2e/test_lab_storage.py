"""The lab's storage layer after site.yml: one tree, served over NFSv4,
homes created by the storage host, backups scheduled."""

from __future__ import annotations

import json
import subprocess
import uuid

from support import ROOT, lab, lab_exec


def services_ip() -> str:
    return lab().ip(lab().group("storage")[0])


def test_a_file_written_on_a_worker_is_served_by_nfs_ganesha():
    name = f"e2e-{uuid.uuid4().hex[:8]}.txt"
    lab_exec(
        "worker-1", "sh", "-c", f"echo from-worker-1 > /srv/twinhub/shared/{name} && chown 1000:100 /srv/twinhub/shared/{name}"
    )
    try:
        assert lab_exec("services", "cat", f"/srv/twinhub/shared/{name}").stdout == "from-worker-1\n"
        over_nfs = subprocess.run(
            ["nfs-cat", f"nfs://{services_ip()}/shared/{name}?version=4&uid=1000&gid=100"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert over_nfs.stdout == "from-worker-1\n", over_nfs.stderr
    finally:
        lab_exec("worker-1", "rm", "-f", f"/srv/twinhub/shared/{name}", check=False)


def test_hub_host_gets_a_private_home_from_the_storage_host():
    token = (ROOT / ".secrets" / "lab" / "homedird_token").read_text().strip()
    user = f"e2e{uuid.uuid4().hex[:8]}"
    out = lab_exec(
        "hub-a", "curl", "-sf", "-X", "PUT", "-H", f"Authorization: Bearer {token}", f"http://services:9780/homes/{user}"
    ).stdout
    assert json.loads(out)["created"] is True
    # Every node sees the same tree: the home is there, private, on a worker.
    stat = lab_exec("worker-2", "stat", "-c", "%u:%g %a", f"/srv/twinhub/home/{user}").stdout.split()
    assert stat == ["1000:100", "700"]
    lab_exec("services", "rmdir", f"/srv/twinhub/home/{user}")


def test_backups_are_scheduled_on_the_storage_host():
    assert lab_exec("services", "systemctl", "is-enabled", "twinhub-backup.timer").stdout.strip() == "enabled"
    assert lab_exec("services", "systemctl", "is-active", "nfs-ganesha").stdout.strip() == "active"
