"""One spawn form for servers in containers and jobs on Slurm clusters (issue 19).

Used when a profile of the platform config has ``kind: slurm``; otherwise
the hub runs the container spawner itself. The profile a user picks decides
which spawner runs the server: the container class (``spawner.type``) or
``TwinhubSlurmSpawner``. This spawner only holds that choice and hands every
call to the one it made.

wrapspawner's ProfilesSpawner does the same and was the library to use,
but 1.0.1 (2021) builds its child from a hand-picked list of arguments
without ``orm_spawner``, which JupyterHub 4 and later need for the server's
record; the child here gets exactly the arguments JupyterHub gave this one.
The kind is kept in the spawner's state beside the child's own (job id,
service id), so a hub that takes over rebuilds the same child and adopts
the running server or job; a state without it is a container server's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterhub.spawner import Spawner
from traitlets import Instance, Type, Unicode, directional_link

KIND_KEY = "twinhub_kind"
# What the hub sets on its spawner after making it (api_token before the
# options are applied): passed on. A batch job reports its port to this
# spawner, so a Slurm child gets the port too; a container child keeps its
# own (DockerSpawner's 8888), never this one's 0.
PASSED_ON = ("api_token", "user_options", "cert_paths")


class TwinhubProfileSpawner(Spawner):
    container_class = Type(
        "hubconfig.swarmspawner.TwinhubSwarmSpawner", klass=Spawner, config=True, help="the spawner of kind container"
    )
    slurm_class = Type("hubconfig.slurmspawner.TwinhubSlurmSpawner", klass=Spawner, config=True)
    kind = Unicode("", help="container or slurm: whose server this is")
    child = Instance(Spawner, allow_none=True)

    def __init__(self, **kwargs: Any) -> None:
        # Everything JupyterHub made this spawner with, for the child.
        self._made_with = dict(kwargs)
        super().__init__(**kwargs)

    def use(self, kind: str) -> Spawner:
        """The spawner of this kind for the next server (made, or the one already made)."""
        if self.child is not None and self.kind == kind:
            return self.child
        cls = self.slurm_class if kind == "slurm" else self.container_class
        self.kind, self.child = kind, cls(**self._made_with)
        for name in PASSED_ON + (("port",) if kind == "slurm" else ()):
            directional_link((self, name), (self.child, name))
        # The hub reads the timeouts of this spawner: the child's (a batch queue waits longer).
        self.start_timeout, self.http_timeout = self.child.start_timeout, self.child.http_timeout
        return self.child

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        state = dict(state or {})
        kind = state.pop(KIND_KEY, "container")
        if state or kind != "container":
            self.use(kind).load_state(state)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.child is not None:
            state.update(self.child.get_state(), **{KIND_KEY: self.kind})
        return state

    def clear_state(self) -> None:
        super().clear_state()
        if self.child is not None:
            self.child.clear_state()
        self.kind, self.child = "", None

    def _synced(self) -> Spawner:
        """The child, seeing this spawner's Server object.

        JupyterHub sets the server's address on this spawner's Server; a
        Server object keeps its own copy of the address, so the child must
        use the same object (the Swarm spawner compares the task's address
        with it to notice a server Swarm moved).
        """
        self.child._server = self.server
        return self.child

    async def start(self) -> Any:
        if self.child is None:  # apply_user_options always makes one; a server with no options gets the default's
            raise RuntimeError("no profile applied to this server")
        if self.kind == "slurm":
            # A batch job reports its port to this spawner: a stale one must not look like the report.
            self.port = 0
        return await self._synced().start()

    async def stop(self, now: bool = False) -> None:
        if self.child is not None:
            await self._synced().stop(now=now)

    async def poll(self) -> int | None:
        if self.child is None:
            return 0
        return await self._synced().poll()

    async def progress(self):
        while self.child is None:
            await asyncio.sleep(0.5)
        async for event in self._synced().progress():
            yield event
