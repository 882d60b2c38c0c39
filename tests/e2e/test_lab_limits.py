"""One user's server cannot starve a neighbour on its worker: the profile's
reservations and limits and the PIDs limit, on real Swarm services.

Three users spawn; two of them land on one worker (two workers, spread
placement). One of those two forks until the PIDs limit stops it, then
fills memory past the profile's limit; the other's kernel keeps answering.
"""

from __future__ import annotations

import time

import pytest
from labhub import User, lab_hub, running_task, service_of

# The lab's small profile (inventories/lab/group_vars/all/platform.yml) and
# the platform config's default PIDs limit.
PIDS_LIMIT = 1024
SMALL = {
    "limits": {"NanoCPUs": 1_000_000_000, "MemoryBytes": 1024**3},
    "reserved": {"NanoCPUs": 100_000_000, "MemoryBytes": 256 * 1024**2},
}

# Forks children that sleep until the fork is refused; prints how many and why.
FORKER = """
import os, sys, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(15)
            os._exit(0)
        n += 1
except OSError as exc:
    print(n, exc.errno)
"""
# Touches 3 GiB (the profile allows 1 GiB).
HOG = "b = bytearray(3 * 1024**3)\nfor i in range(0, len(b), 4096):\n    b[i] = 1\n"


@pytest.fixture(scope="module")
def neighbours():
    hub = lab_hub()
    users = [User(hub, name) for name in ("alice", "bob", "carol")]
    try:
        for user in users:
            user.spawn("small")
        nodes = {user.name: running_task(user.name)["Node"] for user in users}
        pair = next((a, b) for i, a in enumerate(users) for b in users[i + 1 :] if nodes[a.name] == nodes[b.name])
        yield pair
    finally:
        for user in users:
            user.stop_quietly()


def answers_within(user: User, seconds: float) -> float:
    t0 = time.monotonic()
    assert user.run("6 * 7") == "42"
    took = time.monotonic() - t0
    assert took < seconds, f"{user.name}'s kernel took {took:.1f}s"
    return took


def test_servers_have_the_profiles_reservations_and_a_pids_limit(neighbours):
    for user in neighbours:
        resources = service_of(user.name)["Spec"]["TaskTemplate"]["Resources"]
        assert resources["Limits"] == {**SMALL["limits"], "Pids": PIDS_LIMIT}
        assert resources["Reservations"] == SMALL["reserved"]


def test_a_fork_bomb_and_a_memory_hog_leave_the_neighbours_kernel_answering(neighbours):
    attacker, neighbour = neighbours
    answers_within(neighbour, 10)
    # The fork bomb: refused (EAGAIN) at the PIDs limit, not at the worker's.
    out = attacker.run(
        "import subprocess, sys\n"
        f"r = subprocess.run([sys.executable, '-c', {FORKER!r}], capture_output=True, text=True, timeout=120)\n"
        "r.stdout.strip()"
    )
    forked, errno = (int(v) for v in out.strip("'").split())
    assert errno == 11, out  # EAGAIN: the cgroup's pids.max
    assert 100 < forked < PIDS_LIMIT, out
    # Its children still hold the PIDs: the neighbour is not affected.
    took = answers_within(neighbour, 10)
    print(f"\n{attacker.name} forked {forked} processes before the limit; {neighbour.name}'s kernel answered in {took:.2f}s")
    time.sleep(16)  # the children exit; the attacker's server can start kernels again

    # The memory hog: killed at the profile's limit, its server and the neighbour live on.
    out = attacker.run(f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {HOG!r}], timeout=120).returncode")
    assert out == "-9", out  # SIGKILL from the cgroup's OOM killer
    took = answers_within(neighbour, 10)
    assert attacker.run("1 + 1") == "2"
    print(f"{attacker.name}'s 3 GiB process was killed at 1 GiB; {neighbour.name}'s kernel answered in {took:.2f}s")
