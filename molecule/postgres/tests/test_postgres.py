"""The hub database: reachable from hub hosts only, over TLS, dumped daily."""

import os

import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HUB = testinfra.get_host(f"ansible://db-hub?ansible_inventory={INVENTORY}")
OTHER = testinfra.get_host(f"ansible://other?ansible_inventory={INVENTORY}")
DB = testinfra.get_host(f"ansible://db?ansible_inventory={INVENTORY}")


def psql(client, db="jupyterhub", user="jupyterhub", password="molecule-hub-db-password", sslmode="require", sql="SELECT 1"):
    return client.run(
        f"PGPASSWORD={password} PGCONNECT_TIMEOUT=5 psql -Atq 'host=db dbname={db} user={user} sslmode={sslmode}' -c {sql!r}"
    )


def test_hub_host_connects_over_tls():
    r = psql(HUB, sql="SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert r.rc == 0, r.stderr
    assert r.stdout.strip() == "t"


def test_hub_owns_its_database_and_can_create_tables():
    r = psql(HUB, sql="CREATE TABLE IF NOT EXISTS probe (id int); SELECT current_user")
    assert r.rc == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "jupyterhub"


def test_plain_text_connections_are_refused():
    r = psql(HUB, sslmode="disable")
    assert r.rc != 0
    assert "pg_hba.conf rejects connection" in r.stderr
    assert "no encryption" in r.stderr


def test_wrong_password_is_refused():
    r = psql(HUB, password="not-the-password-at-all")
    assert r.rc != 0
    assert "password authentication failed" in r.stderr


def test_a_role_reaches_only_its_own_database():
    r = psql(HUB, db="staging", user="jupyterhub", password="molecule-hub-db-password")
    assert r.rc != 0


def test_hosts_outside_the_hub_group_are_refused():
    r = psql(OTHER)
    assert r.rc != 0
    assert "pg_hba.conf rejects connection" in r.stderr


def test_daily_dump_of_every_database():
    assert DB.service("twinhub-pgdump.timer").is_enabled
    DB.check_output("systemctl start twinhub-pgdump.service")
    for name in ("jupyterhub", "staging"):
        f = DB.file(f"/var/backups/twinhub-postgres/{name}.dump")
        assert f.exists
        assert f.user == "postgres"
        assert f.size > 0
    listing = DB.check_output("pg_restore --list /var/backups/twinhub-postgres/jupyterhub.dump")
    assert "TABLE public probe" in listing
    assert DB.file("/var/backups/twinhub-postgres").mode == 0o700
