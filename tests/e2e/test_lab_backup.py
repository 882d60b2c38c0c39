"""The hub database leaves its host and comes back (issue 18, item 6).

The backup role's database job on the db host puts a fresh dump into the
backup repository; the database is then wiped, and playbooks/restore.yml
brings it back: the hub serves with its users, their running servers and
their tokens. Bounded; leaves hub-a serving, as it found it.
"""

from __future__ import annotations

import json
import time

from labhub import HUBS, User, lab_hub, wait_serving
from support import ansible_playbook, lab, lab_exec

DB_HOST = lab().group("db")[0]
RESTIC = "set -a; . /etc/twinhub/backup.env; set +a; restic"


def database_snapshots() -> list[dict]:
    out = lab_exec(DB_HOST, "sh", "-c", f"{RESTIC} snapshots --json --tag twinhub-db").stdout
    return json.loads(out) or []


def test_the_database_leaves_its_host_and_a_wiped_database_comes_back():
    hub = lab_hub()
    bob = User(hub, "bob")
    bob.spawn()
    try:
        assert bob.run("6 * 7") == "42"
        before = database_snapshots()

        # The nightly job, now: dump, then a dated snapshot in the repository.
        lab_exec(DB_HOST, "systemctl", "start", "twinhub-db-backup.service", timeout=180)
        after = database_snapshots()
        assert len(after) == len(before) + 1
        newest = after[-1]
        assert newest["hostname"] == DB_HOST
        assert newest["paths"] == ["/var/backups/twinhub-postgres"]
        listing = lab_exec(DB_HOST, "sh", "-c", f"{RESTIC} ls {newest['short_id']}").stdout
        assert "/var/backups/twinhub-postgres/jupyterhub.dump" in listing
        metric = lab_exec(DB_HOST, "cat", "/var/lib/prometheus/node-exporter/twinhub_backup_database.prom").stdout
        assert 'twinhub_backup_last_success_timestamp_seconds{kind="database"}' in metric

        # Wipe: both hubs stopped, the database dropped and made empty.
        for host in HUBS:
            lab_exec(host, "systemctl", "stop", "twinhub-hub", timeout=90)
        wipe = "runuser -u postgres -- dropdb --force jupyterhub && runuser -u postgres -- createdb --owner=jupyterhub jupyterhub"
        lab_exec(DB_HOST, "sh", "-c", wipe)
        tables = lab_exec(
            DB_HOST,
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-tAc",
            "select count(*) from pg_tables where schemaname='public'",
            "jupyterhub",
        )
        assert tables.stdout.strip() == "0"

        t0 = time.monotonic()
        r = ansible_playbook(
            "-i", str(lab().inventory), "playbooks/restore.yml", "-e", "restore_database=jupyterhub", timeout=600
        )
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stdout[-4000:]
        print(f"\nrestore.yml restore_database=jupyterhub: {took:.0f}s")

        # The database as it was, not only its tables: nobody else may connect
        # (the postgres role revoked it; a second site.yml run finds nothing to change).
        public = "select has_database_privilege('public', 'jupyterhub', 'CONNECT')"
        assert lab_exec(DB_HOST, "runuser", "-u", "postgres", "--", "psql", "-tAc", public).stdout.strip() == "f"

        # The hub serves with bob: his token is still his, his server (never
        # stopped) is adopted, and its kernel answers through the hub's proxy.
        me = bob.api.get(f"{hub.url}/hub/api/user", timeout=30)
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "bob"
        assert me.json()["servers"][""]["ready"] is True
        assert bob.run("6 * 7") == "42"
    finally:
        for host in HUBS:
            lab_exec(host, "systemctl", "start", "twinhub-hub", timeout=90)
        wait_serving(lab().preferred_hub)
        bob.stop_quietly()
