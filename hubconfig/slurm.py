"""Users' jobs on a Slurm cluster, through the cluster's slurmrestd (issue 19).

The hub submits, looks up and cancels a user's job as that user: every
request carries a token (JWT, HS256, 60 s) whose ``sun`` claim names the
user, signed with the cluster's key (``slurm_jwt_key``, roles/slurm);
slurmctld checks it and the job runs with the user's own uid on the compute
node. Neither the hub nor its image runs a Slurm client, munge or sudo:
the hub never runs as root, and the key is the only trust it holds (the
cluster refuses jobs as root: ``DisableRootJobs``). This is why twinhub
submits through slurmrestd rather than ``sudo -u user sbatch`` in the hub's
container (root-less, capability-less hubs have no sudo) or ssh to a login
node (a second key and a forced command to keep).

Slurm 22.05's OpenAPI plugin is ``v0.0.38``. Requests are synchronous
(``requests``); the spawner runs them off the event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import names

API = "v0.0.38"
TOKEN_LIFETIME = 60
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SYSTEM_ACCOUNTS = frozenset({"root", "slurm", "munge", "nobody"})


class SlurmError(RuntimeError):
    """The cluster answered and refused (its own message, with the cluster's name)."""


class ClusterUnavailable(SlurmError):
    """The cluster's slurmrestd or controller does not answer in time."""


@dataclass(frozen=True)
class Job:
    id: int
    state: str  # PENDING, RUNNING, COMPLETED, CANCELLED, FAILED, ...
    node: str  # where it runs ('' while pending)
    user: str
    cpus: int
    memory_mb: int
    time_limit_minutes: int
    reason: str  # why it waits (Priority, Resources, ...), or 'None'
    name: str = ""


@dataclass(frozen=True)
class SlurmCluster:
    name: str
    url: str  # http://controller:6820
    key: bytes
    timeout: float = 5.0

    def token(self, user: str) -> str:
        import jwt

        # Tokens for the cluster's own accounts would reach everyone's jobs.
        if user in SYSTEM_ACCOUNTS:
            raise ValueError(f"no Slurm token for {user!r}: a system account of the cluster, never a hub user")
        if why := names.problem(user):
            raise ValueError(f"no Slurm token for {user!r}: {why}")
        now = int(time.time())
        return jwt.encode({"sun": user, "iat": now, "exp": now + TOKEN_LIFETIME}, self.key, algorithm="HS256")

    def submit(
        self,
        user: str,
        script: str,
        *,
        partition: str,
        cpus: int,
        memory_mb: int,
        minutes: int,
        cwd: str,
        environment: dict[str, str],
        output: str = "/dev/null",
        job_name: str = "jupyterhub",
    ) -> int:
        job = {
            "name": job_name,
            "partition": partition,
            "cpus_per_task": int(cpus),
            "memory_per_node": int(memory_mb),
            "time_limit": int(minutes),
            "current_working_directory": cwd,
            # Slurm refuses a job without an environment: a PATH at least.
            "environment": {"PATH": DEFAULT_PATH, **environment},
            "standard_output": output,
            "standard_error": output,
        }
        reply = self._call("POST", "/job/submit", user, {"script": script, "job": job})
        return int(reply["job_id"])

    def job(self, user: str, job_id: int) -> Job | None:
        """The job as Slurm sees it now; None when Slurm no longer knows it."""
        try:
            reply = self._call("GET", f"/job/{int(job_id)}", user)
        except SlurmError as exc:
            if "Invalid job id" in str(exc):
                return None
            raise
        jobs = reply.get("jobs") or []
        return _job(jobs[0]) if jobs else None

    def jobs_named(self, user: str, name: str) -> list[Job]:
        """The user's jobs of this name that Slurm still knows."""
        jobs = self._call("GET", "/jobs", user).get("jobs") or []
        return [_job(j) for j in jobs if j.get("name") == name and j.get("user_name") == user]

    def cancel(self, user: str, job_id: int) -> None:
        self._call("DELETE", f"/job/{int(job_id)}", user)

    def node_address(self, user: str, node: str) -> str:
        """The address a compute node is reached at (its NodeAddr; the name when Slurm gives none)."""
        nodes = self._call("GET", f"/node/{node}", user).get("nodes") or []
        return str(nodes[0].get("address") or node) if nodes else node

    def _call(self, method: str, path: str, user: str, body: Any = None) -> dict:
        import requests

        headers = {"X-SLURM-USER-NAME": user, "X-SLURM-USER-TOKEN": self.token(user)}
        url = f"{self.url.rstrip('/')}/slurm/{API}{path}"
        try:
            r = requests.request(method, url, headers=headers, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ClusterUnavailable(f"Slurm cluster {self.name} does not answer at {self.url}: {exc}") from exc
        try:
            reply = r.json()
        except ValueError:
            reply = {}
        errors = [e.get("description") or e.get("error") or str(e) for e in reply.get("errors") or []]
        if r.status_code >= 400 or errors:
            detail = "; ".join(str(e) for e in errors) or r.text.strip()[:200] or f"HTTP {r.status_code}"
            if "Unable to contact slurm controller" in detail:
                raise ClusterUnavailable(f"Slurm cluster {self.name}: its controller does not answer ({detail})")
            raise SlurmError(f"Slurm cluster {self.name} refused {method} {path} for {user}: {detail}")
        return reply


def _job(j: dict) -> Job:
    return Job(
        id=int(j["job_id"]),
        state=str(j.get("job_state", "")),
        node=str(j.get("nodes") or "") if j.get("job_state") != "PENDING" else "",
        user=str(j.get("user_name", "")),
        cpus=int(j.get("cpus") or 0),
        memory_mb=int(j.get("memory_per_node") or 0),
        time_limit_minutes=int(j.get("time_limit") or 0),
        reason=str(j.get("state_reason", "")),
        name=str(j.get("name", "")),
    )
