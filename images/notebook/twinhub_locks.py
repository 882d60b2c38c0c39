"""Locks on the shared area: one writer per file across users' servers (issue 20).

Every user's server mounts the same ``shared/`` tree. Real-time collaboration
(jupyter-collaboration) merges edits inside one server, not between servers:
two people editing ``shared/analysis.ipynb`` from their own servers would
overwrite each other's saves. Here the first server to open a file under a
locked directory holds a lock on it; every other server gets the file
read-only (its contents model says ``writable: false``: JupyterLab shows
"notebook is read-only", and collaboration's room does not save) and the
model names the holder (``twinhub_lock``; also ``GET /api/twinhub/locks/PATH``
and ``twinhub-lock PATH`` in a terminal).

The lock is a file beside the one it locks, ``.twinhub-lock.<name>``
(hidden, so Jupyter neither lists nor serves it), made with an exclusive
create, which NFS (v4) decides on the server: two servers cannot both make
it. It names the holder and when it expires. The holder rewrites it while the
file is in use (a collaboration room reads the file's model every second
while it is open; a save counts too) and removes it when the file has not
been used for half its lifetime, when the server stops, or on
``DELETE /api/twinhub/locks/PATH``. A holder that goes away without that
(its server killed, its node lost) leaves a lock that expires; the next
server that has the file open, or opens it, takes it over.

A save from a server that does not hold the lock is not lost: it is written
to ``<name>-<user>-<UTC time>.<ext>`` beside the file, and the save is
refused (409) with a message naming the holder and the copy.
``POST /api/twinhub/locks/copy/PATH`` writes such a copy on request (of the
model in the body, or of the file as it is on disk). ``nbdime`` diffs and
merges the copies.

What it does not defend against: every user's server writes the shared area
as the same uid (the notebook image's), so anyone can write or remove a lock
file by hand (a terminal). A server counts a lock at most its lifetime past
the moment it first read it as it is, so a forged one that nobody keeps
rewriting ends by itself whatever it claims; an admin breaks any lock by
removing its file (docs/sharing.md).

Written here rather than taken from a library: no maintained Jupyter
extension locks files between servers on shared POSIX storage
(cs3api4lab does it for CS3 storage through its own API).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import os
import secrets
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LOCK_PREFIX = ".twinhub-lock."


@dataclass
class Lock:
    holder: str
    server: str
    token: str
    acquired: float
    expires: float

    def public(self, mine: bool) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "server": self.server,
            "mine": mine,
            "acquired": _iso(self.acquired),
            "expires": _iso(self.expires),
        }


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="seconds")


def lock_path(path: Path) -> Path:
    return path.with_name(LOCK_PREFIX + path.name)


class LockStore:
    """Locks held by one server, as files beside the files they lock.

    `lifetime`: seconds a lock lives past its last write. Every server of a
    platform uses the same one (hubconfig.storage passes it).
    """

    def __init__(self, holder: str, lifetime: float, server: str | None = None, clock=time.time):
        self.holder = holder
        self.lifetime = float(lifetime)
        self.server = server or socket.gethostname()
        self.clock = clock
        self.token = secrets.token_hex(8)
        # path -> (lock we hold, when the file was last used here)
        self.held: dict[Path, tuple[Lock, float]] = {}
        # (lock file, its text) -> when this server first read it so
        self.seen: dict[tuple[Path, str], float] = {}

    # -- reading ---------------------------------------------------------
    def state(self, path: Path) -> tuple[Lock | None, bool]:
        """The lock file's lock and whether it still holds (None, False: no lock file)."""
        lp = lock_path(path)
        try:
            # open() revalidates with the NFS server (close-to-open), where
            # a cached stat could still say "no such file".
            with open(lp, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return None, False
        now = self.clock()
        try:
            data = json.loads(text)
            lock = Lock(**{k: data[k] for k in ("holder", "server", "token", "acquired", "expires")})
            lock.expires = float(lock.expires)
        except (ValueError, KeyError, TypeError):
            # Unreadable or half written: it holds a lifetime, as any lock.
            lock = Lock("(unreadable lock)", "?", "?", now, now + self.lifetime)
        # A lock counts at most a lifetime past the moment this server first
        # saw it as it is: its holder rewrites it well before that, and one
        # written by hand to last for ever (or with a clock far ahead) ends
        # like any other. Neither the file's times nor the writer's clock
        # are trusted for that.
        first = self.seen.setdefault((lp, text), now)
        lock.expires = min(lock.expires, first + self.lifetime)
        return lock, lock.expires > now

    def read(self, path: Path) -> Lock | None:
        """The lock on `path` if one holds."""
        lock, live = self.state(path)
        return lock if live else None

    def mine(self, lock: Lock | None) -> bool:
        return lock is not None and lock.token == self.token

    # -- writing ---------------------------------------------------------
    def _new(self) -> Lock:
        now = self.clock()
        return Lock(self.holder, self.server, self.token, now, now + self.lifetime)

    def _create(self, path: Path, lock: Lock) -> bool:
        lp = lock_path(path)
        try:
            fd = os.open(lp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(lock), f)
            f.flush()
            os.fsync(f.fileno())
        return True

    def _rewrite(self, path: Path, lock: Lock) -> None:
        lp = lock_path(path)
        tmp = lp.with_name(f"{lp.name}.{self.token}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(asdict(lock), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, lp)

    def _break(self, path: Path, seen: Lock) -> None:
        """Remove an expired lock, and only that one.

        Renaming is atomic, so of two servers breaking the same lock one
        moves it and the other finds nothing. If what was moved is not the
        expired lock that was read (another server took the file over in
        between), it is put back (link: never over a newer lock).
        """
        lp = lock_path(path)
        aside = lp.with_name(f"{lp.name}.{self.token}.broken")
        try:
            os.rename(lp, aside)
        except FileNotFoundError:
            return
        try:
            with open(aside, encoding="utf-8") as f:
                moved_token = json.load(f).get("token", "?")
        except (OSError, ValueError, AttributeError):
            moved_token = "?"
        if moved_token != seen.token:
            with contextlib.suppress(FileExistsError):
                os.link(aside, lp)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)

    def acquire(self, path: Path) -> Lock | None:
        """Hold `path` if nobody else does. Returns the lock that stands: ours or another's."""
        for _ in range(3):
            lock, live = self.state(path)
            if live and self.mine(lock):
                return self.touch(path, lock)
            if live:
                self.held.pop(path, None)
                return lock
            if lock is not None:
                self._break(path, lock)
            fresh = self._new()
            if self._create(path, fresh):
                self.held[path] = (fresh, self.clock())
                return fresh
        return self.read(path)

    def _renewed(self, path: Path, lock: Lock, now: float) -> Lock:
        """Our lock, rewritten with a new expiry once a third of its life has gone."""
        if lock.expires - now >= self.lifetime * 2 / 3:
            return lock
        lock = Lock(lock.holder, lock.server, lock.token, lock.acquired, now + self.lifetime)
        self._rewrite(path, lock)
        return lock

    def touch(self, path: Path, lock: Lock) -> Lock:
        """The file was used here: keep the lock."""
        now = self.clock()
        lock = self._renewed(path, lock, now)
        self.held[path] = (lock, now)
        return lock

    def release(self, path: Path) -> bool:
        """Give up `path` if we hold it."""
        self.held.pop(path, None)
        lock = self.read(path)
        if not self.mine(lock):
            return False
        self._break(path, lock)
        return True

    def tick(self) -> None:
        """Run every quarter lifetime: keep locks on files in use, let go of the others."""
        now = self.clock()
        self.seen = {k: t for k, t in self.seen.items() if now - t < 2 * self.lifetime}
        for path, (_held, used) in list(self.held.items()):
            if now - used > self.lifetime / 2:
                self.release(path)
                continue
            current = self.read(path)
            if not self.mine(current):
                # Taken over (it expired while this server was stopped, or
                # was broken by hand): no longer ours.
                self.held.pop(path, None)
                continue
            self.held[path] = (self._renewed(path, current, now), used)

    def release_all(self) -> None:
        for path in list(self.held):
            with contextlib.suppress(OSError):
                self.release(path)


def copy_name(path: str, user: str, now: float, taken=lambda name: False) -> str:
    """`dir/name.ext` -> `dir/name-<user>-<UTC time>.ext` (API path), `-2`, `-3`... if that is taken."""
    head, _, base = path.rpartition("/")
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    stamp = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        name = f"{stem}-{user}-{stamp}" + (f"-{n}" if n > 1 else "") + (f".{ext}" if ext else "")
        out = f"{head}/{name}" if head else name
        if not taken(out):
            return out
    raise FileExistsError(path)


# --- Jupyter Server: the contents manager and the API ----------------------
try:
    from jupyter_server.auth.decorator import authorized
    from jupyter_server.base.handlers import APIHandler
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from jupyter_server.utils import url_path_join
    from tornado import web
    from traitlets import Float, List, Unicode, default
except ImportError:  # the CLI and the unit tests of the store need none of it
    AsyncLargeFileManager = None

if AsyncLargeFileManager is not None:

    class LockingContentsManager(AsyncLargeFileManager):
        """Jupyter's file contents manager with locks on files under `locked_dirs`."""

        locked_dirs = List(
            Unicode(),
            default_value=["shared"],
            help="API paths of the directories whose files are locked while a server has them open",
        ).tag(config=True)
        lock_lifetime = Float(120.0, help="seconds a lock lives past its last rewrite (the same on every server)").tag(
            config=True
        )
        lock_holder = Unicode(help="the name a lock shows (the server's user)").tag(config=True)
        copy_user = Unicode(help="the user part of a copy's name (as homes spell it)").tag(config=True)

        @default("lock_holder")
        def _default_holder(self):
            return os.environ.get("JUPYTERHUB_USER") or os.environ.get("USER") or "jovyan"

        @default("copy_user")
        def _default_copy_user(self):
            return os.environ.get("TWINHUB_USER_DIR_NAME") or self.lock_holder

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.locks = LockStore(self.lock_holder, self.lock_lifetime)
            self._copies: dict[str, str] = {}
            self._opened: dict[Path, float] = {}
            atexit.register(self.locks.release_all)

        def is_locked_path(self, path: str) -> bool:
            path = path.strip("/")
            return any(path.startswith(d.strip("/") + "/") for d in self.locked_dirs if d.strip("/"))

        def _os(self, path: str) -> Path:
            return Path(self._get_os_path(path.strip("/")))

        def lock_model(self, path: str, lock: Lock | None) -> dict[str, Any] | None:
            return None if lock is None else lock.public(self.locks.mine(lock))

        def _refused(self, path: str, lock: Lock, action: str) -> web.HTTPError:
            return web.HTTPError(
                409,
                f"{path} is open for writing in {lock.holder}'s server (locked until {_iso(lock.expires)} unless"
                f" they keep working on it); {action}",
            )

        async def get(self, path, content=True, type=None, format=None, **kwargs):
            model = await super().get(path, content=content, type=type, format=format, **kwargs)
            if model["type"] == "directory" or not self.is_locked_path(path):
                return model
            os_path = self._os(path)
            # Opening a file (reading its content), or using one this server
            # opened lately (a collaboration room reads the model every
            # second while the file is open), takes or keeps the lock, and
            # takes it over once another holder's expires; a look at the
            # model alone (a listing, another tab) only reads it.
            now = time.time()
            try:
                if content or now - self._opened.get(os_path, -1e9) < self.lock_lifetime / 2:
                    self._opened[os_path] = now
                    lock = self.locks.acquire(os_path)
                else:
                    lock = self.locks.read(os_path)
            except OSError as error:
                # A directory this server may not write (a read-only
                # dataset under shared/): no lock to take; the file opens as
                # Jupyter says it may.
                self.log.debug("twinhub_locks: no lock on %s: %s", path, error)
                return model
            if lock is not None and not self.locks.mine(lock):
                model["writable"] = False
            model["twinhub_lock"] = self.lock_model(path, lock)
            return model

        async def save(self, model, path=""):
            if model.get("type") == "directory" or not self.is_locked_path(path):
                return await super().save(model, path)
            os_path = self._os(path)
            try:
                lock = self.locks.acquire(os_path)
            except OSError as error:
                # No lock can be written there: Jupyter's save says what it can do.
                self.log.debug("twinhub_locks: no lock on %s: %s", path, error)
                return await super().save(model, path)
            if lock is not None and not self.locks.mine(lock):
                if "chunk" in model or "content" not in model:
                    raise self._refused(path, lock, "nothing was written")
                copy = self._copies.get(path) or self._copy_name(path)
                await super().save(dict(model), copy)
                self._copies[path] = copy
                raise self._refused(path, lock, f"your version was saved as {copy}")
            return await super().save(model, path)

        def _copy_name(self, path: str) -> str:
            return copy_name(path.strip("/"), self.copy_user, time.time(), lambda p: self._os(p).exists())

        async def save_copy(self, path: str, model: dict[str, Any] | None) -> str:
            """Write `model` (or the file on disk) to this user's dated copy of `path`."""
            path = path.strip("/")
            if model is None or "content" not in model:
                model = await super().get(path, content=True)
            copy = self._copy_name(path)
            await super().save({k: model[k] for k in ("type", "format", "content") if k in model}, copy)
            return copy

        async def delete_file(self, path):
            if self.is_locked_path(path):
                lock = self.locks.read(self._os(path))
                if lock is not None and not self.locks.mine(lock):
                    raise self._refused(path, lock, "it was not deleted")
                self.locks.release(self._os(path))
            return await super().delete_file(path)

        async def rename_file(self, old_path, new_path):
            if self.is_locked_path(old_path):
                lock = self.locks.read(self._os(old_path))
                if lock is not None and not self.locks.mine(lock):
                    raise self._refused(old_path, lock, "it was not renamed")
                self.locks.release(self._os(old_path))
            return await super().rename_file(old_path, new_path)

    class LocksHandler(APIHandler):
        """GET: who holds PATH. DELETE: let it go (this server's lock only)."""

        # Registered only when the contents manager is LockingContentsManager.
        auth_resource = "contents"

        @web.authenticated
        @authorized
        async def get(self, path):
            cm = self.contents_manager
            if not cm._os(path).is_file():
                raise web.HTTPError(404, f"No such file: {path}")
            lock = cm.locks.read(cm._os(path))
            self.finish(json.dumps({"path": path, "locked": cm.is_locked_path(path), "lock": cm.lock_model(path, lock)}))

        @web.authenticated
        @authorized
        async def delete(self, path):
            cm = self.contents_manager
            released = cm.locks.release(cm._os(path))
            self.set_status(204 if released else 409)
            if not released:
                self.finish(json.dumps({"message": f"this server does not hold the lock on {path}"}))
            else:
                self.finish()

    class CopyHandler(APIHandler):
        """POST: save a copy of PATH as <name>-<user>-<time>.<ext> (the body's model, or the file)."""

        auth_resource = "contents"

        @web.authenticated
        @authorized
        async def post(self, path):
            body = json.loads(self.request.body) if self.request.body else None
            copy = await self.contents_manager.save_copy(path, body if isinstance(body, dict) and body else None)
            self.set_status(201)
            self.finish(json.dumps({"path": copy}))

    def _jupyter_server_extension_points():
        return [{"module": "twinhub_locks"}]

    def _load_jupyter_server_extension(serverapp):
        cm = serverapp.contents_manager
        if not isinstance(cm, LockingContentsManager):
            serverapp.log.warning("twinhub_locks: the contents manager is not LockingContentsManager; no locks")
            return
        from tornado.ioloop import PeriodicCallback

        base = serverapp.web_app.settings["base_url"]
        serverapp.web_app.add_handlers(
            ".*$",
            [
                (url_path_join(base, r"/api/twinhub/locks/copy/(.+)"), CopyHandler),
                (url_path_join(base, r"/api/twinhub/locks/(.+)"), LocksHandler),
            ],
        )
        cm._lock_ticker = PeriodicCallback(cm.locks.tick, cm.lock_lifetime / 4 * 1000)
        cm._lock_ticker.start()
        serverapp.log.info("twinhub_locks: files under %s are locked while open (%.0f s)", cm.locked_dirs, cm.lock_lifetime)


def main(argv: list[str] | None = None) -> int:
    """twinhub-lock PATH...: who holds each file (read from the lock files)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print("usage: twinhub-lock FILE...   who has each file open for writing (locks on shared/)")
        return 0 if args else 2
    lifetime = float(os.environ.get("TWINHUB_LOCK_LIFETIME", "120"))
    store = LockStore(os.environ.get("JUPYTERHUB_USER", ""), lifetime)
    for arg in args:
        lock = store.read(Path(arg).absolute())
        if lock is None:
            print(f"{arg}: not locked")
        else:
            print(
                f"{arg}: open for writing in {lock.holder}'s server ({lock.server}) since {_iso(lock.acquired)},"
                f" until {_iso(lock.expires)} unless renewed"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
