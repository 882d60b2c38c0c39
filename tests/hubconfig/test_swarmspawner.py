"""TwinhubSwarmSpawner's handling of a Swarm without a leader (no Swarm needed)."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
import time

import pytest
import requests
from docker.errors import APIError

from hubconfig.swarmspawner import TwinhubSwarmSpawner


def api_error(status: int) -> APIError:
    response = requests.Response()
    response.status_code = status
    return APIError("rpc error: the swarm does not have a leader", response=response)


class Spawner(TwinhubSwarmSpawner):
    service_name = "twinhub-bob"  # no hub user needed


def spawner(timeout: float = 5.0) -> TwinhubSwarmSpawner:
    sp = Spawner.__new__(Spawner)  # no hub, no Docker client needed
    sp._trait_values.update(start_poll=0.01, swarm_unavailable_timeout=timeout)
    return sp


class Flaky:
    def __init__(self, errors: list[int], result="task"):
        self.errors, self.result, self.calls = list(errors), result, 0

    async def __call__(self):
        self.calls += 1
        if self.errors:
            raise api_error(self.errors.pop(0))
        return self.result


def test_waits_out_a_leader_election():
    call = Flaky([500, 500, 500])
    assert asyncio.run(spawner().swarm_call(call)) == "task"
    assert call.calls == 4


def test_other_errors_are_not_retried():
    call = Flaky([404])
    with pytest.raises(APIError):
        asyncio.run(spawner().swarm_call(call))
    assert call.calls == 1


def test_gives_up_after_the_timeout():
    call = Flaky([500] * 1000)
    with pytest.raises(APIError):
        asyncio.run(spawner(timeout=0.2).swarm_call(call))
    assert 2 < call.calls < 1000


class FakeSwarm(Spawner):
    """Docker API calls answered from a script: the service's tasks per call, the task's state."""

    def _docker(self, method, *args, **kwargs):
        self.calls.append(method)
        if method == "create_service":
            return {"ID": "svc"}
        if method == "tasks":
            return [{"ID": "t1"}] if len(self.calls) > self.task_after else []
        raise AssertionError(method)

    async def get_task(self):
        return {"ID": "t1", "Status": {"State": self.state, "Err": "exit status 1"}}


def fake_swarm(task_after: int = 0, state: str = "running") -> FakeSwarm:
    sp = FakeSwarm.__new__(FakeSwarm)
    sp._trait_values.update(start_poll=0.01, start_poll_max=0.05, http_poll=0.01, http_timeout=30)
    sp.calls, sp.task_after, sp.state = [], task_after, state
    return sp


def test_create_service_returns_once_swarm_made_the_task():
    # Upstream's create_object sleeps a whole second when its one look finds
    # no task; the twinhub spawner returns from create_service only once the
    # task exists (here: on the 4th look), so that look finds it.
    sp = fake_swarm(task_after=4)
    t0 = time.monotonic()
    assert asyncio.run(sp.docker("create_service", name="twinhub-bob")) == {"ID": "svc"}
    assert sp.calls == ["create_service", "tasks", "tasks", "tasks", "tasks"]
    assert time.monotonic() - t0 < 0.5


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_exits_at_start_fails_the_spawn_in_about_a_second():
    sp = fake_swarm(state="failed")
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"stopped while starting \(failed\).*exit status 1"):
        asyncio.run(sp.wait_for_http(f"http://127.0.0.1:{closed_port()}/user/bob/api"))
    assert 0.9 < time.monotonic() - t0 < 2.5  # not http_timeout (30 s)


def test_a_server_is_seen_within_a_tenth_of_a_second_of_answering():
    sp = fake_swarm()
    port = closed_port()
    server = http.server.HTTPServer(("127.0.0.1", port), http.server.BaseHTTPRequestHandler)
    answered_at = []

    def serve_later():
        time.sleep(1.0)  # the server starts 1 s into the wait
        answered_at.append(time.monotonic())
        server.serve_forever(poll_interval=0.05)

    threading.Thread(target=serve_later, daemon=True).start()
    try:
        asyncio.run(sp.wait_for_http(f"http://127.0.0.1:{port}/user/bob/api"))
        seen = time.monotonic()
    finally:
        server.shutdown()
        server.server_close()
    # The 1.5x schedule this replaces looked at 0.81 s and then 1.32 s.
    assert seen - answered_at[0] < 0.15


def test_the_service_gets_the_pids_limit():
    # dockerspawner's Resources (docker-py) knows no PIDs limit: the twinhub
    # class adds it to the task template it sends the Engine.
    sp = fake_swarm()
    sp._trait_values["pids_limit"] = 512
    template = {"Resources": {"Limits": {"NanoCPUs": 10**9}}}
    asyncio.run(sp.docker("create_service", task_template=template, name="twinhub-bob"))
    assert template["Resources"]["Limits"] == {"NanoCPUs": 10**9, "Pids": 512}
