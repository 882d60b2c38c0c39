"""TwinhubSwarmSpawner's handling of a Swarm without a leader (no Swarm needed)."""

from __future__ import annotations

import asyncio

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
