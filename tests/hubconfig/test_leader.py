"""The leader supervisor against a real PostgreSQL: one hub at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from hubconfig.leader import EXIT_FENCED

# Stands in for `jupyterhub`: records that it runs, then waits to be stopped.
FAKE_HUB = r"""
import os, signal, sys, time
path = sys.argv[1]
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
with open(path, "w") as f:
    f.write(str(os.getpid()))
while True:
    time.sleep(0.1)
"""


def start(db_url: str, marker: Path, key: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hubconfig.leader", "--db-url", db_url, "--lock-key", str(key),
         "--check-interval", "0.2",
         "--", sys.executable, "-c", FAKE_HUB, str(marker)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def wait_for(predicate, timeout: float) -> float:
    """Seconds until predicate() is true; fails after timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError(f"not true within {timeout}s")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def lock_holders(conn: psycopg.Connection, key: int) -> list[int]:
    """Backend pids holding the leader lock (at most one, if the lock works)."""
    rows = conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND ((classid::bigint << 32) | objid::bigint) = %s",
        (key,),
    ).fetchall()
    return [r[0] for r in rows]


def supervisor_sessions(conn: psycopg.Connection) -> int:
    """Database sessions of running supervisors (holder and standbys)."""
    row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'twinhub-leader'").fetchone()
    return row[0]


def leader_sessions(db_url: str, key: int) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND ((classid::bigint << 32) | objid::bigint) = %s",
            (key,),
        ).fetchone()
    return row[0]


@pytest.fixture
def key(request) -> int:
    # A lock key per test, so tests cannot see each other's hubs.
    return 4242000 + abs(hash(request.node.name)) % 100000


@pytest.fixture
def hubdb(postgres, key) -> str:
    """A hub pair's database and role of its own (a new leader ends every
    other session of its role: the tests' watchers use the superuser)."""
    name = f"hub_{key}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"DROP ROLE IF EXISTS {name}")
        conn.execute(f"CREATE ROLE {name} LOGIN")
        conn.execute(f"CREATE DATABASE {name} OWNER {name}")
    url = urlsplit(postgres)
    return url._replace(netloc=f"{name}@{url.hostname}:{url.port}", path=f"/{name}").geturl()


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_second_supervisor_waits_and_takes_over_within_a_second(postgres, hubdb, tmp_path, key, procs):
    markers = [tmp_path / f"hub{i}" for i in range(4)]
    active = start(hubdb, markers[0], key)
    procs.append(active)
    wait_for(markers[0].exists, 10)
    standby = start(hubdb, markers[1], key)
    procs.append(standby)
    with psycopg.connect(postgres, autocommit=True) as conn:
        wait_for(lambda: supervisor_sessions(conn) == 2, 15)
    time.sleep(1.0)
    assert not markers[1].exists(), "the standby started a hub while the lock was held"
    assert leader_sessions(postgres, key) == 1

    # Three unplanned deaths in a row; the median is what counts on a
    # loaded 2-core machine, the max must stay bounded too.
    takeovers = []
    with psycopg.connect(postgres, autocommit=True) as watcher:
        for i in range(1, 4):
            old_hub = int(markers[i - 1].read_text())
            [old_backend] = lock_holders(watcher, key)
            active.kill()  # the active supervisor dies without any clean-up
            # Takeover: the standby's session holds the lock. Measured in
            # the database, so it does not include starting the hub process.
            try:
                takeovers.append(wait_for(lambda b=old_backend: lock_holders(watcher, key) not in ([], [b]), 5))
            except AssertionError:
                standby.kill()
                raise AssertionError(f"round {i}: no takeover; standby said:\n{standby.stdout.read()}") from None
            wait_for(markers[i].exists, 10)
            # PDEATHSIG: the old hub died with its supervisor, never two hubs.
            wait_for(lambda p=old_hub: not pid_alive(p), 2)
            assert len(lock_holders(watcher, key)) == 1
            active = standby
            if i < 3:
                standby = start(hubdb, markers[i + 1], key)
                procs.append(standby)
                # Measure from a standby that is up and waiting on the lock.
                wait_for(lambda: supervisor_sessions(watcher) == 2, 15)
    print(f"lock takeovers: {[round(t, 3) for t in takeovers]} s")
    assert sorted(takeovers)[1] < 1.0, f"median lock takeover {sorted(takeovers)[1]:.2f}s: {takeovers}"
    assert max(takeovers) < 3.0, takeovers


def test_holder_is_fenced_when_its_session_is_killed(postgres, hubdb, tmp_path, key, procs):
    marker = tmp_path / "a"
    a = start(hubdb, marker, key)
    procs.append(a)
    wait_for(marker.exists, 10)
    hub = int(marker.read_text())
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND ((classid::bigint << 32) | objid::bigint) = %s",
            (key,),
        )
    fenced = wait_for(lambda: not pid_alive(hub), 3)
    assert a.wait(5) == EXIT_FENCED
    assert fenced < 1.5, f"fencing took {fenced:.2f}s"
    assert "fencing this hub" in a.stdout.read()


def test_sigterm_stops_the_hub_and_releases_the_lock(postgres, hubdb, tmp_path, key, procs):
    marker = tmp_path / "a"
    a = start(hubdb, marker, key)
    procs.append(a)
    wait_for(marker.exists, 10)
    a.send_signal(signal.SIGTERM)
    assert a.wait(10) == 0  # the hub's own exit code, passed through
    wait_for(lambda: leader_sessions(postgres, key) == 0, 3)


def test_password_file_must_be_private(tmp_path):
    from hubconfig.leader import db_url_with_password

    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    with pytest.raises(SystemExit, match="mode 0644; expected 0600"):
        db_url_with_password("postgresql://hub@db/hub", str(secret))
    secret.chmod(0o600)
    assert "password=s3cret" in db_url_with_password("postgresql://hub@db/hub", str(secret))


# Stands in for the hub image's jupyterhub_config.py: the guard, then a mark.
GUARDED_HUB = r"""
import sys
from hubconfig.leader import assert_leader
assert_leader()
open(sys.argv[1], "w").write("started")
"""


def test_hub_started_outside_the_supervisor_refuses(postgres):
    from hubconfig.leader import assert_leader

    env = {"TWINHUB_LEADER_DB_URL": postgres}
    with pytest.raises(SystemExit, match="refusing to start JupyterHub outside the leader supervisor"):
        assert_leader(env)
    # A holder string copied from elsewhere does not help: wrong parent.
    with pytest.raises(SystemExit, match="is not the lock holder 1"):
        assert_leader({**env, "TWINHUB_LEADER_HOLDER": "1:12345"})
    # Without a pair (no leader lock configured) nothing is checked.
    assert_leader({})


def test_hub_started_by_the_lock_holder_runs(postgres, hubdb, tmp_path, key, procs):
    marker = tmp_path / "started"
    env = {**os.environ, "TWINHUB_LEADER_DB_URL": hubdb, "TWINHUB_LEADER_LOCK_KEY": str(key)}
    p = subprocess.Popen(
        [sys.executable, "-m", "hubconfig.leader", "--", sys.executable, "-c", GUARDED_HUB, str(marker)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    procs.append(p)
    assert p.wait(20) == 0, p.stdout.read()
    assert marker.read_text() == "started"


# Stands in for hubconfig.warmstart: ready at once, runs when told.
WARM_HUB = r"""
import os, sys, time
fd = int(os.environ["TWINHUB_LEADER_GO_FD"])
open(sys.argv[1] + ".waiting", "w").write(str(os.getpid()))
holder = os.fdopen(fd, "rb").readline().decode().strip()
if not holder:
    sys.exit(0)
open(sys.argv[1], "w").write(holder)
while True:
    time.sleep(0.1)
"""


def test_warm_standby_runs_its_waiting_hub_when_the_holder_dies(postgres, hubdb, tmp_path, key, procs):
    def warm(marker):
        return subprocess.Popen(
            [sys.executable, "-m", "hubconfig.leader", "--db-url", hubdb, "--lock-key", str(key), "--warm",
             "--check-interval", "0.2", "--", sys.executable, "-c", WARM_HUB, str(marker)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    a_marker, b_marker = tmp_path / "a", tmp_path / "b"
    a = warm(a_marker)
    procs.append(a)
    wait_for(a_marker.exists, 10)
    b = warm(b_marker)
    procs.append(b)
    # B's hub is up and waiting, but not running the hub.
    wait_for(lambda: (tmp_path / "b.waiting").exists(), 10)
    time.sleep(1)
    assert not b_marker.exists()
    assert a_marker.read_text().split(":")[0] == str(a.pid)
    a.kill()
    took = wait_for(b_marker.exists, 5)
    assert b_marker.read_text().split(":")[0] == str(b.pid)
    print(f"warm standby running {took:.3f}s after the holder's death")


def holder(db_url: str, key: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hubconfig.leader", "holder", "--db-url", db_url, "--lock-key", str(key)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_holder_names_the_session_that_holds_the_lock(postgres, hubdb, tmp_path, key, procs):
    # Nobody holds it: exit 1, nothing printed (the switch waits on that).
    nobody = holder(postgres, key)
    assert (nobody.returncode, nobody.stdout) == (1, "")
    procs.append(start(hubdb, tmp_path / "hub", key))
    wait_for(lambda: leader_sessions(postgres, key) == 1, 10)
    held = holder(postgres, key)
    assert held.returncode == 0, held.stderr
    # One holder; over a unix socket PostgreSQL has no client address.
    [address] = held.stdout.split()
    with psycopg.connect(postgres, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(host(client_addr), 'local') FROM pg_stat_activity WHERE application_name = 'twinhub-leader'"
        ).fetchone()
    assert address == row[0]


def test_a_frozen_holder_is_taken_over_and_its_sessions_end(postgres, hubdb, tmp_path, key, procs):
    # SIGSTOP: the holder's kernel still answers TCP keepalives, so its
    # session and lock would live forever; its checks stop, and the standby
    # takes over once the session has been silent for takeover_after (5 s).
    a_marker, b_marker = tmp_path / "a", tmp_path / "b"
    a = start(hubdb, a_marker, key)
    procs.append(a)
    wait_for(a_marker.exists, 10)
    a_hub = int(a_marker.read_text())
    b = start(hubdb, b_marker, key)
    procs.append(b)
    # A's JupyterHub would have sessions of its own on the same role.
    old_hub_session = psycopg.connect(hubdb, autocommit=True)
    with psycopg.connect(postgres, autocommit=True) as watcher:
        wait_for(lambda: supervisor_sessions(watcher) >= 2, 15)
        time.sleep(0.5)
        for pid in (a.pid, a_hub):
            os.kill(pid, signal.SIGSTOP)
        t_freeze = time.monotonic()
        try:
            wait_for(b_marker.exists, 12)
            took = time.monotonic() - t_freeze
            # Not before the holder could have fenced itself, not much after.
            assert 4.5 < took < 8.0, f"takeover {took:.2f}s after the freeze"
            with pytest.raises(psycopg.OperationalError):
                old_hub_session.execute("SELECT 1")
            [holder_backend] = lock_holders(watcher, key)
        finally:
            for pid in (a.pid, a_hub):
                os.kill(pid, signal.SIGCONT)
        # The resumed holder finds its session gone and fences its hub.
        assert a.wait(5) == EXIT_FENCED
        wait_for(lambda: not pid_alive(a_hub), 2)
        assert lock_holders(watcher, key) == [holder_backend]
    print(f"frozen holder taken over after {took:.2f}s")


# Stands in for JupyterHub's engine: connects once through the fence.
FENCED_ENGINE = r"""
import sys
import sqlalchemy
from hubconfig.leader import fence_database_connections
fence_database_connections()
engine = sqlalchemy.create_engine(sys.argv[1])
try:
    with engine.connect() as conn:
        print("connected", conn.execute(sqlalchemy.text("SELECT 1")).scalar())
except sqlalchemy.exc.OperationalError as exc:
    print("refused", exc.orig)
"""


def test_a_fenced_hub_cannot_open_database_connections(hubdb, key):
    holder_session = psycopg.connect(hubdb, autocommit=True)
    holder_session.execute("SELECT pg_advisory_lock(%s)", (key,))
    backend = holder_session.info.backend_pid
    env = {
        **os.environ,
        "TWINHUB_LEADER_DB_URL": hubdb,
        "TWINHUB_LEADER_LOCK_KEY": str(key),
        "TWINHUB_LEADER_HOLDER": f"1:{backend}",
    }
    engine_url = hubdb.replace("postgresql://", "postgresql+psycopg://")

    def connect_once() -> str:
        r = subprocess.run([sys.executable, "-c", FENCED_ENGINE, engine_url], env=env, capture_output=True, text=True, timeout=60)
        return r.stdout.strip() or r.stderr

    assert connect_once() == "connected 1"
    holder_session.close()  # the lock is gone: this hub lost it
    out = connect_once()
    assert out.startswith("refused"), out
    assert f"this hub is fenced: database session {backend} no longer holds the leader lock" in out


def test_hub_sessions_carry_the_lock_sessions_timeouts(hubdb):
    from hubconfig.leader import LeaderSettings, session_options

    opts = session_options(LeaderSettings(db_url=""))
    with psycopg.connect(hubdb, autocommit=True, **opts) as conn:
        shown = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in
                 ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")}  # fmt: skip
    assert shown == {"tcp_keepalives_idle": "2", "tcp_keepalives_interval": "1", "tcp_keepalives_count": "2"}
    assert opts["tcp_user_timeout"] == 3000
