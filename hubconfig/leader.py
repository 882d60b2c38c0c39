"""Leader lock: run JupyterHub only while holding a PostgreSQL advisory lock.

JupyterHub must own its database: two hubs on one database diverge. Both hub
hosts run this supervisor; exactly one holds the lock and runs `jupyterhub`,
the other waits. The lock lives on a dedicated database session, so:

- if the active hub's process or host dies, PostgreSQL ends its session (at
  once for a dead process; within the TCP keepalive window for a dead host,
  set per session below) and releases the lock: the standby takes over;
- if the active hub loses its session (network cut, backend terminated,
  database restart), it stops its `jupyterhub` at once (fencing), since it can
  no longer prove it is the only hub, and exits non-zero so systemd restarts
  it as a standby.

The child is tied to the supervisor with PR_SET_PDEATHSIG: if the supervisor
is killed, the kernel kills the hub too, so a hub never outlives its lock.

Usage:  python -m hubconfig.leader --db-url URL [--lock-key N] -- jupyterhub -f CONFIG
The password may come from a file: --db-password-file (mode 0600).
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import logging.config
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

log = logging.getLogger("twinhub.leader")

# "twinhub" as an int8: the default key every twinhub hub pair agrees on.
DEFAULT_LOCK_KEY = int.from_bytes(b"twinhub\0", "big") & 0x7FFFFFFFFFFFFFFF
PR_SET_PDEATHSIG = 1

EXIT_FENCED = 75  # EX_TEMPFAIL: lost the database session; systemd restarts us
# "<supervisor pid>:<its database backend pid>", given to the hub it starts.
HOLDER_ENV = "TWINHUB_LEADER_HOLDER"
# Warm standby: the pipe a waiting child reads HOLDER_ENV's value from.
GO_FD_ENV = "TWINHUB_LEADER_GO_FD"


@dataclass(frozen=True)
class LeaderSettings:
    db_url: str
    lock_key: int = DEFAULT_LOCK_KEY
    # How often the holder proves its session is alive, and how long one
    # check may take before the hub is fenced. A 2 s database stall (a slow
    # link, a busy server) must not fence the hub: 3 s.
    check_interval: float = 0.5
    check_timeout: float = 3.0
    # How long one wait for the lock in the database lasts (between waits
    # the standby checks the holder is not silent).
    lock_wait: float = 1.0
    # A holder whose session has been silent this long (no check reached
    # the database: its hub froze, its host stalled, a partition) is taken
    # over: the standby ends the holder's session. Longer than the holder's
    # own fencing (check_interval + check_timeout) with a margin, so a holder
    # that still runs has fenced itself before its lock is taken.
    takeover_after: float = 5.0
    # Server-side keepalives for this session: a dead host's session (and so
    # the lock) is dropped after about idle + interval * count seconds.
    keepalive_idle: int = 2
    keepalive_interval: int = 1
    keepalive_count: int = 2
    # Grace period for the hub after SIGTERM before SIGKILL.
    stop_grace: float = 10.0


def session_options(settings: LeaderSettings) -> dict:
    """libpq options for every session of a hub pair: the lock's and JupyterHub's own.

    A session's packets unanswered for check_timeout (a cut network) fail it,
    where TCP would retransmit for many minutes; keepalives both ways, set on
    the server with `options`, so PostgreSQL notices a vanished client (and
    frees its lock, ends its transactions) after a few seconds, not hours.
    """
    keepalives = (settings.keepalive_idle, settings.keepalive_interval, settings.keepalive_count)
    return {
        "keepalives": 1,
        "keepalives_idle": settings.keepalive_idle,
        "keepalives_interval": settings.keepalive_interval,
        "keepalives_count": settings.keepalive_count,
        "tcp_user_timeout": int(settings.check_timeout * 1000),
        "options": "-c tcp_keepalives_idle={} -c tcp_keepalives_interval={} -c tcp_keepalives_count={}".format(*keepalives),
    }


# pg_locks rows (alias l) of the granted advisory lock whose int8 key is the parameter.
HELD_LOCK = "l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = %s"


def connect(settings: LeaderSettings) -> psycopg.Connection:
    conn = psycopg.connect(
        settings.db_url,
        autocommit=True,
        connect_timeout=max(1, int(settings.check_timeout)),
        application_name="twinhub-leader",
        **session_options(settings),
    )
    with conn.cursor() as cur:
        cur.execute(f"SET statement_timeout = {int(settings.check_timeout * 1000)}")
    return conn


def try_lock(conn: psycopg.Connection, key: int) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
        row = cur.fetchone()
    return bool(row and row[0])


def wait_lock(conn: psycopg.Connection, key: int, seconds: float) -> bool:
    """Wait up to `seconds` for the lock inside PostgreSQL: granted the moment the holder's session ends."""
    with conn.cursor() as cur:
        cur.execute(f"SET lock_timeout = {max(1, int(seconds * 1000))}")
        try:
            cur.execute("SELECT pg_advisory_lock(%s)", (key,))
        except psycopg.errors.LockNotAvailable:
            return False
        finally:
            cur.execute("SET lock_timeout = 0")
    return True


def still_holds(conn: psycopg.Connection, key: int, pid: int | None = None) -> bool:
    """True while session `pid` (default: this connection's own) holds the lock."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM pg_locks l WHERE l.pid = coalesce(%s, pg_backend_pid()) AND {HELD_LOCK}", (pid, key))
        row = cur.fetchone()
    return bool(row and row[0] == 1)


def lock_holders(conn: psycopg.Connection, key: int) -> list[tuple[int, str, float]]:
    """(backend pid, client address, seconds since its last statement) of the lock's holder: one, or none while it moves."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.pid, coalesce(host(a.client_addr), 'local'), extract(epoch FROM clock_timestamp() - a.state_change)"
            f" FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE {HELD_LOCK}",
            (key,),
        )
        return [(pid, address, float(silent or 0)) for pid, address, silent in cur.fetchall()]


def take_over_silent_holder(conn: psycopg.Connection, key: int, silent_for: float) -> str | None:
    """End the lock holder's session if nothing reached the database from it for silent_for seconds.

    A frozen hub (SIGSTOP, a stunned VM, a throttled container) keeps its TCP
    session: its kernel answers keepalives, so PostgreSQL never frees its
    lock. Its checks (every check_interval) stop, though, and with them the
    session's state_change. Returns the holder's address when taken over.
    """
    for pid, address, silent in lock_holders(conn, key):
        if silent >= silent_for:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
            log.warning("the leader lock's holder at %s has been silent for %.1f s: ending its session", address, silent)
            return address
    return None


def end_other_sessions(conn: psycopg.Connection) -> int:
    """Terminate every other session of this role on this database: the old hub's included.

    Run by a new leader before its JupyterHub starts. A hub that froze or was
    cut off and comes back may still hold open sessions (its kernel kept them
    alive); ended here, no write of it lands after the takeover, and the
    connections it opens again are refused (fence_database_connections).
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE usename = current_user AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = cur.fetchone()
    return int(row[0]) if row else 0


def holder_addresses(conn: psycopg.Connection, key: int) -> list[str]:
    """Client addresses of the sessions holding the lock (one, or none while it moves).

    The switch playbook asks this (`python -m hubconfig.leader holder`) to
    confirm that the lock moved to the new hub's host.
    """
    return [address for _, address, _ in lock_holders(conn, key)]


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died between fork and prctl.
    if os.getppid() == 1:
        os._exit(EXIT_FENCED)


class Supervisor:
    def __init__(self, settings: LeaderSettings, command: Sequence[str], warm: bool = False):
        self.settings = settings
        self.command = list(command)
        self.child: subprocess.Popen | None = None
        self.stopping = False
        # Warm standby: the child starts (and imports) while this waits for
        # the lock, and runs the hub only when told the lock is held.
        self.warm = warm
        self.go_fd: int | None = None

    def _on_signal(self, signum, _frame) -> None:
        self.stopping = True
        if self.child and self.child.poll() is None:
            self.child.send_signal(signum)

    def acquire(self) -> psycopg.Connection:
        """Block until this process holds the lock; return its session."""
        announced = False
        while not self.stopping:
            try:
                conn = connect(self.settings)
            except psycopg.OperationalError as exc:
                log.warning("database unreachable, retrying: %s", exc)
                time.sleep(1.0)
                continue
            try:
                while not self.stopping:
                    if self.child and self.child.poll() is not None:
                        log.error("the waiting hub exited with %s", self.child.returncode)
                        raise SystemExit(self.child.returncode or 1)
                    # Waiting in the database (not polling) takes the lock
                    # the moment the holder's session ends; between waits,
                    # check on a holder that went silent.
                    if try_lock(conn, self.settings.lock_key) or wait_lock(conn, self.settings.lock_key, self.settings.lock_wait):
                        ended = end_other_sessions(conn)
                        log.info(
                            "leader lock %s acquired: this hub is active (%d other session(s) of the hub's role ended)",
                            self.settings.lock_key,
                            ended,
                        )
                        return conn
                    if not announced:
                        log.info("leader lock %s held elsewhere: standing by", self.settings.lock_key)
                        announced = True
                    take_over_silent_holder(conn, self.settings.lock_key, self.settings.takeover_after)
            except psycopg.Error as exc:
                log.warning("lost the database session while standing by: %s", exc)
                conn.close()
        raise SystemExit(0)

    def start_warm(self) -> None:
        """Start the child now; it reads the holder string from GO_FD_ENV's pipe
        once the lock is ours (hubconfig.warmstart), or end-of-file if we exit."""
        read_fd, self.go_fd = os.pipe()
        env = {**os.environ, GO_FD_ENV: str(read_fd)}
        self.child = subprocess.Popen(self.command, preexec_fn=_die_with_parent, env=env, pass_fds=(read_fd,))
        os.close(read_fd)
        log.info("started %s (pid %s), waiting for the lock", self.command[0], self.child.pid)

    def fence(self) -> None:
        """Stop the hub now: it can no longer prove it is the only one."""
        if self.child and self.child.poll() is None:
            self.child.kill()
            self.child.wait()

    def stop_child(self) -> int:
        assert self.child is not None
        if self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(self.settings.stop_grace)
            except subprocess.TimeoutExpired:
                self.child.kill()
        return self.child.wait()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if self.warm:
            self.start_warm()
        conn = self.acquire()
        # The child proves it was started by the lock holder (assert_leader).
        holder = f"{os.getpid()}:{conn.info.backend_pid}"
        if self.warm:
            assert self.go_fd is not None
            os.write(self.go_fd, holder.encode() + b"\n")
            os.close(self.go_fd)
            log.info("told the waiting %s (pid %s) to start", self.command[0], self.child.pid)
        else:
            # preexec_fn is safe here: the supervisor runs no other threads.
            self.child = subprocess.Popen(self.command, preexec_fn=_die_with_parent, env={**os.environ, HOLDER_ENV: holder})
            log.info("started %s (pid %s)", self.command[0], self.child.pid)
        try:
            while True:
                rc = self.child.poll()
                if rc is not None:
                    log.info("%s exited with %s; releasing the lock", self.command[0], rc)
                    return rc
                if self.stopping:
                    return self.stop_child()
                try:
                    if not still_holds(conn, self.settings.lock_key):
                        raise psycopg.OperationalError("advisory lock no longer held")
                except psycopg.Error as exc:
                    log.error("lost the leader lock (%s): fencing this hub", exc)
                    self.fence()
                    return EXIT_FENCED
                time.sleep(self.settings.check_interval)
        finally:
            conn.close()


def assert_leader(environ: dict[str, str] | None = None) -> None:
    """Refuse to run a hub of a pair unless its supervisor holds the lock now.

    Called by the hub image's jupyterhub_config.py. Where the leader lock is
    configured (TWINHUB_LEADER_DB_URL), a `jupyterhub` started any other way
    (by hand, `docker exec`, a second supervisor's stale child) exits before
    it opens the database: never two hubs on one database.
    """
    env = os.environ if environ is None else environ
    if not env.get("TWINHUB_LEADER_DB_URL"):
        return
    holder = env.get(HOLDER_ENV, "")
    try:
        supervisor_pid, backend_pid = (int(x) for x in holder.split(":"))
    except ValueError:
        raise SystemExit(
            "leader: refusing to start JupyterHub outside the leader supervisor (TWINHUB_LEADER_DB_URL is set): "
            "start the hub with the image's entrypoint (python -m hubconfig.leader)"
        ) from None
    if os.getppid() != supervisor_pid:
        raise SystemExit(f"leader: refusing to start: parent {os.getppid()} is not the lock holder {supervisor_pid}")
    key = int(env.get("TWINHUB_LEADER_LOCK_KEY", DEFAULT_LOCK_KEY))
    url = db_url_with_password(env["TWINHUB_LEADER_DB_URL"], env.get("TWINHUB_LEADER_DB_PASSWORD_FILE"))
    with psycopg.connect(url, connect_timeout=5, application_name="twinhub-leader-check") as conn:
        held = still_holds(conn, key, pid=backend_pid)
    if not held:
        raise SystemExit(f"leader: refusing to start: database session {backend_pid} does not hold the leader lock")


def fence_database_connections(environ: dict[str, str] | None = None) -> None:
    """Make every database connection JupyterHub opens prove first that its supervisor holds the lock.

    Called by the hub image's jupyterhub_config.py after assert_leader. A hub
    that froze and was taken over finds its sessions ended by the new leader
    (end_other_sessions); when its connection pool opens new ones on
    resuming, they are refused here before any statement of JupyterHub's
    runs, so no write of a fenced hub lands, even in the moment before its
    supervisor notices and stops it.
    """
    env = os.environ if environ is None else environ
    if not env.get("TWINHUB_LEADER_DB_URL"):
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    backend_pid = int(env[HOLDER_ENV].split(":")[1])
    key = int(env.get("TWINHUB_LEADER_LOCK_KEY", DEFAULT_LOCK_KEY))

    def check(dbapi_connection, _record) -> None:
        held = still_holds(dbapi_connection, key, pid=backend_pid)
        dbapi_connection.rollback()
        if not held:
            dbapi_connection.close()
            log.error("leader: session %s no longer holds the leader lock: database connection refused", backend_pid)
            raise psycopg.OperationalError(
                f"leader: this hub is fenced: database session {backend_pid} no longer holds the leader lock"
            )

    event.listen(Engine, "connect", check)


def db_url_with_password(url: str, password_file: str | None) -> str:
    if not password_file:
        return url
    mode = os.stat(password_file).st_mode & 0o777
    if mode & 0o077:
        raise SystemExit(f"leader: {password_file} has mode {mode:04o}; expected 0600 (owner only)")
    with open(password_file) as f:
        password = f.read().strip()
    return psycopg.conninfo.make_conninfo(url, password=password)


def print_holder(argv: Sequence[str]) -> int:
    """`holder`: print the address of the lock holder's database session; exit 1 when nobody holds it."""
    ap = argparse.ArgumentParser(prog="python -m hubconfig.leader holder")
    ap.add_argument("--db-url", default=os.environ.get("TWINHUB_LEADER_DB_URL"))
    ap.add_argument("--db-password-file", default=os.environ.get("TWINHUB_LEADER_DB_PASSWORD_FILE"))
    ap.add_argument("--lock-key", type=int, default=int(os.environ.get("TWINHUB_LEADER_LOCK_KEY", DEFAULT_LOCK_KEY)))
    args = ap.parse_args(argv)
    if not args.db_url:
        raise SystemExit("leader: --db-url (or TWINHUB_LEADER_DB_URL) is required")
    url = db_url_with_password(args.db_url, args.db_password_file)
    with psycopg.connect(url, connect_timeout=5, application_name="twinhub-leader-query") as conn:
        holders = holder_addresses(conn, args.lock_key)
    for address in holders:
        print(address)
    return 0 if holders else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["holder"]:
        return print_holder(argv[1:])
    if "--" not in argv:
        raise SystemExit("usage: python -m hubconfig.leader [options] -- COMMAND [ARGS...] | holder [options]")
    split = argv.index("--")
    ap = argparse.ArgumentParser(prog="python -m hubconfig.leader")
    ap.add_argument("--db-url", default=os.environ.get("TWINHUB_LEADER_DB_URL"), required=False)
    ap.add_argument("--db-password-file", default=os.environ.get("TWINHUB_LEADER_DB_PASSWORD_FILE"))
    ap.add_argument("--lock-key", type=int, default=int(os.environ.get("TWINHUB_LEADER_LOCK_KEY", DEFAULT_LOCK_KEY)))
    ap.add_argument("--check-interval", type=float, default=0.5)
    ap.add_argument("--warm", action="store_true", help="start the command before the lock is held (hubconfig.warmstart)")
    args = ap.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not args.db_url:
        raise SystemExit("leader: --db-url (or TWINHUB_LEADER_DB_URL) is required")
    if not command:
        raise SystemExit("leader: no command after --")
    # JSON lines like the hub's own (hubconfig.logs): takeovers and fencing
    # are events the log dashboard counts.
    from hubconfig.logs import json_logging_config

    config = json_logging_config("jupyterhub.leader")
    config.update(
        version=1,
        disable_existing_loggers=False,
        handlers={"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["twinhub_events"]}},
        root={"level": "INFO", "handlers": ["console"]},
    )
    logging.config.dictConfig(config)
    settings = LeaderSettings(
        db_url=db_url_with_password(args.db_url, args.db_password_file),
        lock_key=args.lock_key,
        check_interval=args.check_interval,
    )
    return Supervisor(settings, command, warm=args.warm).run()


if __name__ == "__main__":
    sys.exit(main())
