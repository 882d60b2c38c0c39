"""Notebooks on the lab's Slurm clusters from the spawn form (issue 19, items 2, 3, 5, 6).

john.doe (from the lab's directory) picks the "Cluster alpha" or "Cluster
beta" profile of the same form that offers the Swarm ones: the hub submits
a job as him through the cluster's slurmrestd, the job runs the notebook
image's Jupyter on the cluster's compute node under his own uid, and he
works in it through NGINX like in any server. Stopping the server cancels
the job; a hub failover keeps it; a cluster whose controller is down fails
the spawn at once, naming the cluster; a job waiting in the queue says so
on the spawn-pending page; the idle culler stops an idle job's server, and
with it the job.
"""

from __future__ import annotations

import json
import time

import pytest
from labhub import (
    SLURM_CLUSTERS,
    User,
    active_hub,
    lab_hub,
    other_hub,
    slurm_cluster,
    slurm_gone,
    slurm_job,
    wait_serving,
    wait_standby,
)
from support import lab, lab_exec

CLUSTERS = SLURM_CLUSTERS
WHO = "john.doe"


def running_job(name: str) -> dict[str, str]:
    return slurm_job(name, WHO)


def gone(name: str, timeout: float = 20) -> bool:
    return slurm_gone(name, WHO, timeout)


def events(user: User, timeout: float = 240, on_event=None) -> list[dict]:
    """The spawn's progress as the spawn-pending page reads it (the event stream), until ready or failed."""
    out = []
    url = f"{user.hub.url}/hub/api/users/{user.path}/server/progress"
    with user.api.get(url, stream=True, timeout=timeout) as r:
        assert r.status_code == 200, r.text
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                event = json.loads(line[5:])
                out.append(event)
                if on_event:
                    on_event(event)
                if event.get("ready") or event.get("failed"):
                    break
    return out


@pytest.fixture(scope="module")
def john():
    user = User(lab_hub(), WHO)
    yield user
    user.stop_quietly()


def start(user: User, profile: str, on_event=None) -> list[dict]:
    r = user.api.post(f"{user.hub.url}/hub/api/users/{user.path}/server", json={"profile": profile})
    assert r.status_code in (201, 202), r.text
    return events(user, on_event=on_event)


@pytest.mark.parametrize("name", sorted(CLUSTERS))
def test_a_profile_runs_the_server_as_a_job_of_the_user_on_its_cluster(john, name):
    seen = start(john, name)
    assert seen[-1].get("ready"), seen
    try:
        node = CLUSTERS[name]
        uid = int(lab_exec(node, "id", "-u", WHO).stdout)
        # The kernel runs on the cluster's compute node, as john.doe himself.
        out = john.run("import os, socket; f\"{socket.gethostname()} {os.getuid()} {os.environ['HOME']}\"")
        assert out.strip("'").split() == [node, str(uid), f"/home/{WHO}"]
        # Slurm has it under his name with the profile's cores, memory and time.
        job = running_job(name)
        limit = "1:00:00" if name == "alpha" else "2:00:00"
        assert (job["state"], job["user"], job["cores"], job["memory"], job["time"], job["node"]) == (
            "RUNNING", WHO, "1", "512M", limit, node,
        ), job  # fmt: skip
        job_id = int(job["id"])
    finally:
        john.stop()
    # Stopping the server cancelled the job.
    assert slurm_cluster(name).job(WHO, job_id).state in ("CANCELLED", "COMPLETED", "COMPLETING"), job_id
    assert gone(name)


# What a job's own code would send the hub to change its server: the
# command, the environment, where the hub's proxy sends the user.
PORT_REPORT = """
import json, os, urllib.error, urllib.request
def report(body):
    req = urllib.request.Request(os.environ["JUPYTERHUB_API_URL"] + "/batchspawner", data=json.dumps(body).encode(),
        headers={"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"], "Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(req, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code
f'{report({"port": 40000, "ip": "203.0.113.9", "cmd": ["/bin/sh"]})} {report({"port": 40000})}'
"""


def test_failover_keeps_the_job_and_the_job_cannot_rewrite_its_spawner(john):
    assert start(john, "alpha")[-1].get("ready")
    try:
        job = running_job("alpha")
        # batchspawner's own handler would set ip and cmd; twinhub's takes a
        # port only, and only while the server starts.
        assert john.run(PORT_REPORT).strip("'").split() == ["409", "409"]
        assert john.run("x = 6 * 7; x") == "42"
        serving, _ = active_hub()
        standby = other_hub(serving)
        lab_exec(serving, "docker", "kill", "twinhub-hub")
        wait_serving(standby)
        # The new hub adopted the job (its id in the server's state): same
        # job, same kernel, through NGINX.
        assert running_job("alpha")["id"] == job["id"]
        assert john.api.get(f"{john.hub.url}/hub/api/users/{john.path}").json()["servers"][""]["ready"]
        assert john.run("import socket; socket.gethostname()") == "'worker-1'"
        wait_standby(serving)
    finally:
        john.stop()
    assert gone("alpha")


def test_a_cluster_whose_controller_is_down_fails_the_spawn_at_once_and_swarm_goes_on(john):
    lab_exec("worker-2", "systemctl", "stop", "slurmctld")
    try:
        t0 = time.monotonic()
        r = john.api.post(f"{john.hub.url}/hub/api/users/{john.path}/server", json={"profile": "beta"})
        took = time.monotonic() - t0
        # Within the hub's first 10 s of a spawn, its error is the request's answer.
        assert r.status_code == 503, r.text
        assert "Slurm cluster beta" in r.json()["message"], r.text
        assert took < 10, f"the spawn failed after {took:.1f}s"
        assert not john.api.get(f"{john.hub.url}/hub/api/users/{john.path}").json()["servers"]
        # Swarm's profiles work meanwhile.
        john.spawn("small")
        assert john.run("6 * 7") == "42"
        john.stop()
    finally:
        lab_exec("worker-2", "systemctl", "start", "slurmctld")
    # slurmrestd held the unanswered submission and queues it once the
    # controller is back: the hub cancels that job, and beta is free again.
    deadline = time.monotonic() + 60
    while lab_exec("worker-2", "sinfo", "--noheader", "--format", "%T", check=False).stdout.strip() != "idle":
        assert time.monotonic() < deadline, f"beta's node is not idle: {running_job('beta')}"
        time.sleep(1)


def test_a_job_waiting_in_the_queue_says_so_on_the_pending_page(john):
    # john.doe's own batch job takes both of alpha's cores: the server's job waits.
    blocker = lab_exec(
        "worker-1", "su", "-s", "/bin/sh", WHO, "-c",
        "cd /tmp && sbatch --parsable --partition interactive --cpus-per-task 2 --mem 256 --output /dev/null --wrap 'sleep 300'",
    ).stdout.strip()  # fmt: skip
    released = []

    def release_when_queued(event: dict) -> None:
        if "waits in the queue of cluster alpha" in event.get("message", "") and not released:
            released.append(event["message"])
            lab_exec("worker-1", "scancel", blocker)

    try:
        seen = start(john, "alpha", on_event=release_when_queued)
        assert released, [e.get("message") for e in seen]
        assert "(Resources)" in released[0] or "(Priority)" in released[0], released[0]
        assert seen[-1].get("ready"), seen
        assert john.run("6 * 7") == "42"
    finally:
        lab_exec("worker-1", "scancel", blocker, check=False)
        john.stop()


# The hub's own idle culler program (its idle-culler service runs the same),
# with a 10 s timeout, run in the serving hub's container until it culls.
CULLER = (
    "python -m hubconfig.culler --url=http://127.0.0.1:{port}/hub/api --timeout=10 --cull-every=5"
    " > /tmp/culler-e2e.log 2>&1 & c=$!;"
    " for i in $(seq 120); do grep -q 'Culling server' /tmp/culler-e2e.log && break; sleep 0.5; done;"
    " sleep 2; kill $c; cat /tmp/culler-e2e.log; rm -f /tmp/culler-e2e.log"
)


def test_the_idle_culler_cancels_an_idle_job(john):
    assert start(john, "alpha")[-1].get("ready")
    job_id = int(running_job("alpha")["id"])
    admin = User(john.hub, "admin")
    serving, _ = active_hub()
    try:
        out = lab_exec(
            serving, "docker", "exec", "-e", f"JUPYTERHUB_API_TOKEN={admin.api.headers['Authorization'].split()[1]}", "twinhub-hub",
            "sh", "-c", CULLER.format(port=lab().hub_api_port), timeout=120,
        ).stdout  # fmt: skip
        assert f"Culling server {WHO}" in out, out[-2000:]
        # The culler stopped the server: the hub cancelled its job.
        assert gone("alpha", timeout=30)
        assert slurm_cluster("alpha").job(WHO, job_id).state in ("CANCELLED", "COMPLETED"), job_id
        assert not john.api.get(f"{john.hub.url}/hub/api/users/{john.path}").json()["servers"]
    finally:
        john.stop_quietly()
