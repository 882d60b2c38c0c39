"""A SwarmSpawner that notices a started task within a tenth of a second,
and routes to the task's own address.

dockerspawner's SwarmSpawner waits for the service's task with a fixed
schedule: a whole second when the task does not exist yet on its first look
(create_object), then one second before looking at its state and 1.5x
backoff up to 11 s, so a task that runs after 1.2 s is seen at 2.5 s and one
that runs after 2.6 s at 4.75 s. The schedule is hard-coded, not a setting,
hence this subclass: the same states and errors as upstream, polled from
`spawner.start_poll`, and create_service returns once the task exists.

Upstream routes to the service's name. A name that was just removed and
re-created (a user stopping and starting) can resolve to the old task's
address for a while, and the virtual IP needs IPVS, which some nodes lack.
This routes to the running task's address on the notebook network instead;
when Swarm reschedules the task (its node was lost), the address changes and
poll() reports the server stopped, so the hub drops the stale route and the
user starts a fresh server.

start() also waits for the server to answer HTTP before returning, looking
every `http_poll` (50 ms, growing 1.1x to 0.5 s; a refused connection costs
the hub a millisecond): JupyterHub's own wait afterwards backs off 0.2, 0.4,
0.8, 1.6, 3.2 s, and the task's 1.5x schedule still lost 0.3 s on a server
that answers 1 s after its task runs (measured in the lab). While it waits
it looks at the task every second, so a server that exits at start (a
broken image, a bad setting) fails the spawn with its task's error in about
a second instead of after http_timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from docker.errors import APIError
from dockerspawner import SwarmSpawner
from jupyterhub.utils import exponential_backoff
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Float, Integer, Unicode

# Task states that are on their way to running (upstream's list).
PENDING = {"new", "assigned", "accepted", "starting", "pending", "preparing", "ready", "rejected"}


class TwinhubSwarmSpawner(SwarmSpawner):
    start_poll = Float(0.1, config=True, help="First wait between looks at a starting task, in seconds.")
    start_poll_max = Float(1.0, config=True, help="Longest wait between looks, in seconds.")
    pids_limit = Integer(0, config=True, help="Processes and threads a server's container may have; 0: Docker's default.")
    http_poll = Float(0.05, config=True, help="First wait between tries of a started server's HTTP, in seconds.")
    docker_threads = Integer(8, config=True, help="Threads making Docker API calls for all servers.")
    swarm_unavailable_timeout = Float(
        60.0, config=True, help="How long to wait for a Swarm without a leader before trusting its errors, in seconds."
    )

    _twinhub_executor = None

    @property
    def executor(self):
        # Upstream sends every Docker API call of every spawner through one
        # thread: 20 users starting at once queue behind each other's polls.
        # docker-py's client keeps a pool of 10 connections; 8 threads fit.
        cls = TwinhubSwarmSpawner
        if cls._twinhub_executor is None:
            cls._twinhub_executor = ThreadPoolExecutor(self.docker_threads, thread_name_prefix="twinhub-docker")
        return cls._twinhub_executor

    async def docker(self, method, *args, **kwargs):
        if method == "create_service" and self.pids_limit:
            # dockerspawner builds Resources with docker-py, which knows no
            # PIDs limit; the Engine API does (Resources.Limits.Pids, 1.41+).
            resources = kwargs["task_template"].setdefault("Resources", {})
            resources.setdefault("Limits", {})["Pids"] = self.pids_limit
        result = await super().docker(method, *args, **kwargs)
        if method == "create_service":
            # Upstream's create_object looks for the new service's task once and
            # then sleeps a whole second if Swarm has not made it yet (one
            # spawn in three here). Wait for it at start_poll instead: its
            # first look then finds it.
            async def made() -> bool:
                return bool(await super(TwinhubSwarmSpawner, self).docker("tasks", filters={"service": self.service_name}))

            with contextlib.suppress(asyncio.TimeoutError):
                await self.poll_until(made, f"Service {self.service_name} has no task", 5.0)
        return result

    async def start_object(self):
        async def started():
            task = await self.get_task()
            if task is None:
                # Swarm has not made the task yet (create_service returns first).
                if not await self.get_object():
                    raise RuntimeError(f"Service {self.service_name} not found")
                return None
            return task if task["Status"]["State"].lower() not in PENDING else None

        task = await self.poll_until(started, f"Service {self.service_name} did not start", self.start_timeout)
        if task["Status"]["State"].lower() != "running":
            raise RuntimeError(f"Service {self.service_name} not running: {task['Status']}")

    task_id = Unicode("", help="The Swarm task this hub started (kept in the hub database).")

    async def start(self):
        ip, port = await super().start()
        self.task_id = ((await self.get_task()) or {}).get("ID", "")
        await self.wait_for_http(f"http://{ip}:{port}{self.server.base_url}api")
        return ip, port

    def get_state(self):
        state = super().get_state()
        if self.task_id:
            state["task_id"] = self.task_id
        return state

    def load_state(self, state):
        super().load_state(state)
        self.task_id = state.get("task_id", "")

    def clear_state(self):
        super().clear_state()
        self.task_id = ""

    async def wait_for_http(self, url: str) -> None:
        """Until anything answers at url (at most http_timeout); the hub checks properly after.

        RuntimeError when the task stops meanwhile (the server exited).
        """
        client = AsyncHTTPClient()
        loop = asyncio.get_running_loop()
        next_look = loop.time() + 1.0

        async def answers() -> bool:
            nonlocal next_look
            try:
                await client.fetch(url, connect_timeout=1, request_timeout=2, raise_error=False)
            except (HTTPClientError, OSError):
                pass
            else:
                return True
            if loop.time() >= next_look:
                next_look = loop.time() + 1.0
                task = await self.get_task()
                state = (task or {}).get("Status", {}).get("State", "gone").lower()
                if state != "running":
                    raise RuntimeError(
                        f"Service {self.service_name} stopped while starting ({state}): {(task or {}).get('Status')}"
                    )
            return False

        with contextlib.suppress(asyncio.TimeoutError):
            await exponential_backoff(
                answers,
                f"{url} does not answer",
                start_wait=self.http_poll,
                scale_factor=1.1,
                max_wait=0.5,
                timeout=self.http_timeout,
            )

    async def poll_until(self, check, message: str, timeout: float):
        """check()'s first truthy result, polled from start_poll up to start_poll_max apart.

        JupyterHub's own backoff (with jitter); asyncio.TimeoutError(message) after timeout.
        """
        return await exponential_backoff(
            check, message, start_wait=self.start_poll, scale_factor=1.5, max_wait=self.start_poll_max, timeout=timeout
        )

    def task_address(self, task: dict | None) -> str | None:
        """The task's IP on the notebook network."""
        for attachment in (task or {}).get("NetworksAttachments") or []:
            if attachment["Network"]["Spec"]["Name"] == self.network_name and attachment.get("Addresses"):
                return attachment["Addresses"][0].split("/")[0]
        return None

    async def get_ip_and_port(self):
        address = self.task_address(await self.get_task())
        if not address:
            raise RuntimeError(f"Service {self.service_name} has no address on network {self.network_name}")
        return address, self.port

    async def swarm_call(self, call):
        """await call(), waiting out a Swarm without a leader.

        When a manager is lost (a hub host), every manager API call answers
        500 until the others elect a new leader (about 10 s) — the moment a
        new hub polls its servers. Upstream reads that 500 as "the server is
        on an unhealthy node" and forgets a server that is running fine.
        """
        unavailable: list[APIError] = []

        async def attempt():
            try:
                return (await call(),)  # a tuple: the call's own result may be None
            except APIError as exc:
                if exc.response is None or exc.response.status_code != 500:
                    raise
                unavailable[:] = [exc]
                self.log.warning("Swarm unavailable for %s (%s): waiting", self.service_name, exc.explanation)
                return None

        try:
            (result,) = await exponential_backoff(
                attempt,
                f"Swarm unavailable for {self.service_name}",
                start_wait=self.start_poll,
                scale_factor=2,
                max_wait=2.0,
                timeout=self.swarm_unavailable_timeout,
            )
        except TimeoutError:
            raise unavailable[-1] from None
        return result

    async def get_object(self):
        # Upstream's own handling follows (404: gone; 500 for too long: unhealthy).
        with contextlib.suppress(APIError):
            await self.swarm_call(lambda: self.docker("inspect_service", self.object_name))
        return await super().get_object()

    async def poll(self):
        status = await self.swarm_call(super().poll)
        if status is not None or not (self.server and self.server.ip):
            return status
        task = await self.swarm_call(self.get_task)
        if self.task_id and task and task["ID"] != self.task_id:
            # Swarm replaced the task (the server died, maybe while no hub was
            # running): a fresh server without the user's kernels. Report the
            # one the user had as stopped rather than adopt the stranger.
            self.log.warning("Service %s runs task %s, not %s: reporting it stopped", self.service_name, task["ID"], self.task_id)
            return "restarted: Swarm replaced the server"
        address = self.task_address(task)
        if address and address != self.server.ip:
            self.log.warning("Service %s moved from %s to %s: reporting it stopped", self.service_name, self.server.ip, address)
            return "moved: Swarm restarted the server on another node"
        return None
