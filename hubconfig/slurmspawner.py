"""A user's server as a Slurm batch job, through the cluster's slurmrestd (issue 19).

batchspawner's state machine (submit, wait in the queue, wait for the
server's port, poll, cancel; the job id kept in the spawner's state, so a
hub that takes over adopts running jobs) with twinhub's door to the
cluster instead of its shell commands: batchspawner runs ``sudo -u user
sbatch`` on the hub's host, and twinhub's hub has neither root nor a Slurm
client. Submitting, looking up and cancelling go to ``hubconfig.slurm``
(a 60 s token per request, signed with the cluster's key, naming the user):
the job runs as the user's own uid on the compute node.

The job runs batchspawner's ``batchspawner-singleuser`` from the compute
nodes' Jupyter (the notebook image's environment, installed there by the
slurm role): it picks a free port, tells the hub (``/hub/api/batchspawner``)
and starts ``jupyterhub-singleuser``. batchspawner's handler for that call
sets *any* attribute of the spawner the caller names (``cmd``,
``environment``...) for anyone holding the server's token, which the user's
own code has: ``PortReport`` below replaces it and takes only a port, only
while the server is starting.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import batchspawner
from jupyterhub.apihandlers import APIHandler, default_handlers
from tornado import web
from traitlets import Dict, Integer, List, Unicode

from hubconfig import names
from hubconfig.slurm import ClusterUnavailable, SlurmCluster, SlurmError

# The job's script. Jinja (batchspawner's templates); values are checked
# by the platform config's schema (module names, the path) before they get here.
SCRIPT = """#!/bin/bash
# {{ username }}'s Jupyter server, started by the hub (twinhub) on cluster {{ cluster }}.
set -eu
export HOME="$(getent passwd "$(id -un)" | cut -d: -f6)"
cd "$HOME"
# Jupyter's SQLite files, off network storage: this user's own directory.
mkdir -p -m 0700 "{{ state_dir }}"
[ -O "{{ state_dir }}" ] || { echo "{{ state_dir }} is not $(id -un)'s" >&2; exit 1; }
{% if modules %}module load {{ modules | join(' ') }}
{% endif %}export PATH="{{ jupyter_path }}:$PATH"
{% if kerberos %}# The person's Kerberos ticket, from their login (hubconfig.kerberos): a
# file of theirs only, renewed while the server runs, gone when it stops
# (the slurm role's epilog removes it should this script be killed).
export KRB5CCNAME="FILE:/tmp/krb5cc_twinhub_${SLURM_JOB_ID}"
(umask 077 && printf '%s' "$TWINHUB_KRB5_CCACHE" | base64 -d > "${KRB5CCNAME#FILE:}")
unset TWINHUB_KRB5_CCACHE
(trap 'kill $! 2>/dev/null; exit 0' TERM
 while :; do sleep {{ renew_interval }} & wait $!; kinit -R || echo "Kerberos ticket not renewed" >&2; done) &
renewer=$!
trap 'kill "$renewer" 2>/dev/null; wait "$renewer"; kdestroy 2>/dev/null; rm -f "${KRB5CCNAME#FILE:}"' EXIT
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"; exit 143' TERM
{{ cmd }} &
server=$!
wait "$server"
{% else %}exec {{ cmd }}
{% endif %}"""


# Sweeps after unanswered submissions (TwinhubSlurmSpawner._sweep), running.
SWEEPS: set[asyncio.Future] = set()


class PortReport(APIHandler):
    """POST /hub/api/batchspawner {"port": N} from a starting job (batchspawner-singleuser)."""

    @web.authenticated
    def post(self) -> None:
        token = self.get_auth_token()
        spawner = next((s for s in self.current_user.spawners.values() if s.api_token == token), None)
        if spawner is None or spawner.pending != "spawn":
            raise web.HTTPError(409, "no server of yours is starting with this token")
        body = self.get_json_body() or {}
        port = body.get("port")
        if set(body) != {"port"} or not isinstance(port, int) or not 1024 <= port <= 65535:
            raise web.HTTPError(400, 'expected {"port": N} with N from 1024 to 65535, and nothing else')
        spawner.port = port
        self.log.info("Slurm job of %s reported port %s", self.current_user.name, port)
        self.set_status(201)
        self.finish(json.dumps({"message": f"port {port} noted"}))


# batchspawner appends its own handler for this path when imported: ours
# takes its place (the first match wins, so it is replaced, not added).
default_handlers[:] = [h for h in default_handlers if h[0] != r"/api/batchspawner"]
default_handlers.append((r"/api/batchspawner", PortReport))


class TwinhubSlurmSpawner(batchspawner.BatchSpawnerBase):
    clusters = Dict(config=True, help="spawner.slurm.clusters of the platform config: url, key_file, partitions")
    cluster = Unicode(help="the cluster of the chosen profile")
    partition = Unicode()
    modules = List(Unicode())
    time_minutes = Integer(60)
    jupyter_path = Unicode("/opt/notebook/bin", config=True)
    local_state_dir = Unicode("/tmp/twinhub-state", config=True, help="storage.local_state_dir: Jupyter's SQLite files")
    ca_file = Unicode("/etc/ssl/certs/ca-certificates.crt", config=True)
    # The hub never runs a command for a job: no sudo, no sbatch.
    exec_prefix = Unicode("")
    # batchspawner looks the user up on the hub's host (pwd), where users
    # have no accounts: the script finds the home on the node instead.
    req_homedir = Unicode("")
    # Not the hub's PATH and Python settings: the node's own, and its Jupyter.
    env_keep = List(Unicode(), ["LANG", "LC_ALL"])
    batch_script = Unicode(SCRIPT)
    krb5_renew_interval = Integer(3600, config=True, help="auth.kerberos.job_renew_interval")
    startup_poll_interval = 0.5

    def _cluster(self) -> SlurmCluster:
        conf = self.clusters.get(self.cluster)
        if conf is None:
            raise web.HTTPError(400, f"Slurm cluster {self.cluster!r} is not one of the platform's {sorted(self.clusters)}")
        return SlurmCluster(self.cluster, conf["url"], Path(conf["key_file"]).read_bytes().strip())

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A hubconfig.slurm call as the user, off the hub's event loop (it is synchronous: requests)."""
        return await asyncio.to_thread(getattr(self._cluster(), method), self.user.name, *args, **kwargs)

    def state_dir(self) -> str:
        """storage.local_state_dir, one per user: jobs of several users share a node's /tmp."""
        return f"{self.local_state_dir}-{names.escape(self.user.name)}"

    def _own_state(self, value: str) -> str:
        return self.state_dir() + value[len(self.local_state_dir) :] if value.startswith(self.local_state_dir + "/") else value

    def get_args(self) -> list[str]:
        return [arg.replace(f"={self.local_state_dir}/", f"={self.state_dir()}/") for arg in super().get_args()]

    def get_env(self) -> dict[str, str]:
        env = {name: self._own_state(value) for name, value in super().get_env().items()}
        # The hub's public name is signed by the platform CA: Python's
        # requests (batchspawner-singleuser) reads its own bundle unless told.
        env.update(REQUESTS_CA_BUNDLE=self.ca_file, SSL_CERT_FILE=self.ca_file)
        return env

    async def submit_batch_script(self) -> str:
        subvars = self.get_req_subvars()
        subvars.update(
            cmd=self.cmd_formatted_for_batch(),
            cluster=self.cluster,
            modules=list(self.modules),
            jupyter_path=self.jupyter_path,
            state_dir=self.state_dir(),
            kerberos=False,
            renew_interval=self.krb5_renew_interval,
        )
        env = self.get_env()
        # auth.type kerberos: the ticket kept at login (renewed just before
        # this spawn) travels in the job's environment, which only the user
        # and Slurm's administrators see; the script moves it to a file.
        auth_state = await self.user.get_auth_state() or {}
        if auth_state.get("krb5_ccache"):
            env["TWINHUB_KRB5_CCACHE"] = auth_state["krb5_ccache"]
            subvars["kerberos"] = True
        script = await self._get_batch_script(**subvars)
        cores = int(self.cpu_limit or 1)
        memory_mb = max(1, int(self.mem_limit or 0) // 2**20) if self.mem_limit else 1024
        # A name of its own for this submission: a submission the cluster
        # did not answer in time may still be queued once its controller is
        # back (slurmrestd holds it); the sweep below finds it by this name.
        job_name = f"jupyterhub-{names.escape(self.user.name)}-{secrets.token_hex(4)}"
        try:
            job_id = await self._submit(script, cores, memory_mb, job_name, env)
        except ClusterUnavailable as exc:
            sweep = asyncio.ensure_future(self._sweep(job_name))
            SWEEPS.add(sweep)  # held until done (the loop keeps only weak references)
            sweep.add_done_callback(SWEEPS.discard)
            # Fails the spawn now with the cluster's name, for the form and the API.
            raise web.HTTPError(503, str(exc).replace("%", "%%")) from exc
        except SlurmError as exc:
            raise web.HTTPError(400, str(exc).replace("%", "%%")) from exc
        self.job_id = str(job_id)
        self.log.info("Slurm job %s submitted for %s on cluster %s (%s)", job_id, self.user.name, self.cluster, self.partition)
        return self.job_id

    async def _sweep(self, job_name: str, every: float = 5, for_seconds: float = 180) -> None:
        """Cancel a job of a submission that failed for want of an answer, should it appear."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + for_seconds
        while loop.time() < deadline:
            await asyncio.sleep(every)
            try:
                for job in await self._call("jobs_named", job_name):
                    self.log.warning("Cancelling Slurm job %s of %s: its submission had failed", job.id, self.user.name)
                    await self._call("cancel", job.id)
                    return
            except SlurmError:
                continue

    async def _submit(self, script: str, cores: int, memory_mb: int, job_name: str, env: dict[str, str]) -> int:
        return await self._call(
            "submit",
            script,
            partition=self.partition,
            cpus=cores,
            memory_mb=memory_mb,
            minutes=self.time_minutes,
            # The script goes to the user's home; this only has to exist on the node.
            cwd="/tmp",
            environment=env,
            job_name=job_name,
        )

    async def query_job_status(self) -> batchspawner.JobStatus:
        if not self.job_id:
            self.job_status = ""
            return batchspawner.JobStatus.NOTFOUND
        try:
            job = await self._call("job", int(self.job_id))
        except ClusterUnavailable as exc:
            # A controller that does not answer has not lost the job: keep the server.
            self.log.warning("%s", exc)
            self.job_status = json.dumps({"state": "UNKNOWN", "reason": str(exc)})
            return batchspawner.JobStatus.UNKNOWN
        if job is None:
            self.job_status = ""
            return batchspawner.JobStatus.NOTFOUND
        was_running = self.state_isrunning()
        self.job_status = json.dumps({"state": job.state, "node": job.node, "reason": job.reason})
        if self.state_isrunning() and not was_running:
            # When the queue let it go, as the hub saw it (bench/spawn.py --slurm reads it).
            self.log.info("Slurm job %s of %s runs on %s", self.job_id, self.user.name, job.node)
        if self.state_isrunning():
            return batchspawner.JobStatus.RUNNING
        if self.state_ispending():
            return batchspawner.JobStatus.PENDING
        return batchspawner.JobStatus.NOTFOUND

    async def cancel_batch_job(self) -> None:
        if not self.job_id:
            return
        self.log.info("Cancelling Slurm job %s of %s on cluster %s", self.job_id, self.user.name, self.cluster)
        try:
            await self._call("cancel", int(self.job_id))
        except SlurmError as exc:
            if "already completing or completed" not in str(exc) and "Invalid job id" not in str(exc):
                raise

    # The job's cluster is kept with batchspawner's job id: a hub that takes
    # over asks the same cluster about the same job.
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.job_id:
            state.update(cluster=self.cluster, partition=self.partition)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.cluster = state.get("cluster", self.cluster)
        self.partition = state.get("partition", self.partition)

    def _status(self) -> dict[str, str]:
        try:
            return json.loads(self.job_status) if self.job_status else {}
        except ValueError:
            return {}

    def state_ispending(self) -> bool:
        return self._status().get("state") in ("PENDING", "CONFIGURING", "REQUEUED", "RESIZING")

    def state_isrunning(self) -> bool:
        return self._status().get("state") == "RUNNING"

    def state_isunknown(self) -> bool:
        return self._status().get("state") == "UNKNOWN"

    def state_gethost(self) -> str:
        return self._status().get("node", "")

    async def start(self) -> tuple[str, int]:
        ip, port = await super().start()
        # The node's address as the cluster knows it (NodeAddr): the hub's
        # proxy reaches it even where the node's name does not resolve.
        address = await self._call("node_address", ip)
        self.log.info("Slurm job %s of %s runs on %s (%s), port %s", self.job_id, self.user.name, ip, address, port)
        return address, port

    async def progress(self):
        while True:
            status = self._status()
            state = status.get("state", "")
            if self.state_ispending():
                reason = status.get("reason") or ""
                why = f" ({reason})" if reason and reason != "None" else ""
                where = f"cluster {self.cluster}, partition {self.partition}"
                yield {"message": f"Job {self.job_id} waits in the queue of {where}{why}"}
            elif self.state_isrunning():
                yield {"message": f"Job {self.job_id} runs on {status.get('node')}; waiting for the server to answer"}
                return
            elif state == "UNKNOWN":
                yield {"message": f"Cluster {self.cluster} does not answer; still trying"}
            else:
                yield {"message": f"Submitting the job to cluster {self.cluster}"}
            await asyncio.sleep(1)
