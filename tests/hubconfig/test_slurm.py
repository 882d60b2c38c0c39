"""hubconfig.slurm: the tokens the hub signs and how a silent cluster is reported (the lab runs it for real)."""

from __future__ import annotations

import time

import jwt
import pytest
from support import free_port

from hubconfig.slurm import TOKEN_LIFETIME, ClusterUnavailable, SlurmCluster

KEY = b"k" * 40


def test_a_token_names_the_user_and_lives_a_minute():
    claims = jwt.decode(SlurmCluster("alpha", "http://x", KEY).token("john.doe"), KEY, algorithms=["HS256"])
    assert claims["sun"] == "john.doe"
    assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME == 60
    assert abs(claims["iat"] - time.time()) < 5


@pytest.mark.parametrize("user", ["root", "slurm", "munge"])
def test_no_token_for_the_clusters_own_accounts(user):
    with pytest.raises(ValueError, match="system account"):
        SlurmCluster("alpha", "http://x", KEY).token(user)


def test_no_token_for_a_name_the_platform_refuses():
    with pytest.raises(ValueError, match="no Slurm token for 'John Doe'"):
        SlurmCluster("alpha", "http://x", KEY).token("John Doe")


def test_a_cluster_that_does_not_answer_is_named_at_once():
    c = SlurmCluster("beta", f"http://127.0.0.1:{free_port()}", KEY, timeout=2)
    t0 = time.monotonic()
    with pytest.raises(ClusterUnavailable, match=r"Slurm cluster beta does not answer at http://127\.0\.0\.1:"):
        c.submit("john.doe", "#!/bin/sh\n", partition="batch", cpus=1, memory_mb=64, minutes=1, cwd="/tmp", environment={})
    assert time.monotonic() - t0 < 2


# ------------------------------------------- profiles of kind slurm (issue 19) ---
def slurm_platform(tmp_path, **profile_changes) -> dict:
    """A platform with a Swarm profile and a Slurm one on cluster alpha (one partition, 2 cores, 2 GB, 8 h)."""
    import secrets as random

    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for name in ("cookie_secret", "crypt_key", "proxy_token", "prometheus_token"):
        (secrets_dir / name).write_text(random.token_hex(32))
        (secrets_dir / name).chmod(0o600)
    (tmp_path / "alpha.key").write_text("k" * 40)
    hpc = {"display_name": "Alpha", "kind": "slurm", "cluster": "alpha", "partition": "batch", "cpu_limit": 2,
           "mem_limit": "1G", "time_limit": "02:00:00", "modules": ["gcc/12.2"], **profile_changes}  # fmt: skip
    return {
        "environment": "production",
        "hub": {
            "db_url": "postgresql://hub@db/hub",
            "secrets_dir": str(secrets_dir),
            "subdomain_host": "https://hub.example.org",
        },
        "auth": {"type": "pam", "allowed_groups": ["jupyter"]},
        "spawner": {
            "type": "swarm",
            "images": {"base": "registry.example.org/notebook:1"},
            "profiles": {"small": {"display_name": "Small", "image": "base"}, "alpha": hpc},
            "slurm": {
                "clusters": {
                    "alpha": {
                        "url": "http://ctl.example.org:6820",
                        "key_file": str(tmp_path / "alpha.key"),
                        "partitions": {"batch": {"max_cpus": 2, "max_memory_mb": 2048, "max_time": "08:00:00"}},
                    }
                },
                "hub_url": "https://hub.example.org",
            },
        },
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"cluster": "gamma"}, "spawner.profiles.alpha.cluster: 'gamma' is not a Slurm cluster of the platform; expected one of ['alpha']"),
        ({"partition": "gpu"}, "spawner.profiles.alpha.partition: 'gpu' is not a partition of cluster alpha; expected one of ['batch']"),
        ({"cpu_limit": 4}, "spawner.profiles.alpha.cpu_limit: 4 cores; expected a whole number up to 2 (partition batch of cluster alpha)"),
        ({"cpu_limit": 1.5}, "spawner.profiles.alpha.cpu_limit: 1.5 cores; expected a whole number up to 2"),
        ({"mem_limit": "4G"}, "spawner.profiles.alpha.mem_limit: '4G' (4096 MB); expected at most 2048 MB (partition batch of cluster alpha)"),
        ({"time_limit": "1-00:00:00"}, "spawner.profiles.alpha.time_limit: '1-00:00:00'; expected at most 08:00:00"),
        ({"time_limit": "two hours"}, "spawner.profiles.alpha.time_limit: 'two hours' is not a Slurm time limit like 02:00:00"),
        ({"image": "base"}, "spawner.profiles.alpha.image: 'base' set on a slurm profile; expected it left out"),
        ({"modules": ["gcc; rm -rf ~"]}, "spawner.profiles.alpha.modules.0: 'gcc; rm -rf ~' is not a module name"),
        ({"queue": "batch"}, "Additional properties are not allowed ('queue' was unexpected)"),
    ],
    ids=["unknown-cluster", "unknown-partition", "cores-beyond", "cores-not-whole", "memory-beyond", "time-beyond",
         "time-not-slurm", "image-on-a-job", "module-name-injection", "unknown-option"],
)  # fmt: skip
def test_slurm_profiles_are_checked_against_their_cluster(tmp_path, change, expected):
    from hubconfig.schema import PlatformConfigError, validate

    with pytest.raises(PlatformConfigError) as info:
        validate(slurm_platform(tmp_path, **change))
    assert expected in str(info.value)


def test_slurm_profiles_only_beside_swarm_or_docker(tmp_path):
    from hubconfig.schema import PlatformConfigError, validate

    cfg = slurm_platform(tmp_path)
    cfg["spawner"]["type"] = "kube"
    with pytest.raises(PlatformConfigError, match=r"'slurm' with spawner\.type 'kube'; expected spawner\.type swarm or docker"):
        validate(cfg)


class User:
    name = "john.doe"
    url = "/user/john.doe/"
    base_url = "/"

    def __getattr__(self, name):
        return None


def configured(cfg: dict, tmp_path):
    import yaml
    from traitlets.config import Config

    import hubconfig

    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    c = Config()
    hubconfig.configure(c, path)
    return c


def test_one_form_offers_the_swarm_and_the_slurm_profiles(tmp_path):
    import subprocess
    import sys

    from hubconfig.profilespawner import TwinhubProfileSpawner
    from hubconfig.slurmspawner import TwinhubSlurmSpawner
    from hubconfig.swarmspawner import TwinhubSwarmSpawner

    c = configured(slurm_platform(tmp_path), tmp_path)
    assert c.JupyterHub.spawner_class == "hubconfig.profilespawner.TwinhubProfileSpawner"
    # Jobs report their port to twinhub's handler, in place once the config
    # is read (a fresh interpreter: the hub reads its handlers before any spawn).
    check = (
        "import sys; from traitlets.config import Config; import hubconfig; hubconfig.configure(Config(), sys.argv[1]);"
        "from jupyterhub.apihandlers import default_handlers as h;"
        "print([f'{p} {c.__module__}.{c.__name__}' for p, c in h if 'batchspawner' in p])"
    )
    out = subprocess.run([sys.executable, "-c", check, str(tmp_path / "platform.yaml")], capture_output=True, text=True)
    assert out.stdout.strip() == "['/api/batchspawner hubconfig.slurmspawner.PortReport']", out.stderr[-2000:]
    assert "2 cores, 1G memory, 02:00:00 on cluster alpha (partition batch)" in c.Spawner.options_form
    assert 'value="small" checked' in c.Spawner.options_form  # the first profile stays the default
    spawner = TwinhubProfileSpawner(config=c, user=User())
    c.Spawner.apply_user_options(spawner, {"profile": "alpha"})
    job = spawner.child
    assert isinstance(job, TwinhubSlurmSpawner)
    assert (job.cluster, job.partition, job.cpu_limit, job.mem_limit, job.time_minutes, job.modules) == (
        "alpha", "batch", 2.0, 2**30, 120, ["gcc/12.2"],
    )  # fmt: skip
    assert (spawner.start_timeout, job.hub_connect_url) == (300, "https://hub.example.org")
    c.Spawner.apply_user_options(spawner, {"profile": "small"})
    assert isinstance(spawner.child, TwinhubSwarmSpawner)
    assert spawner.child.image == "registry.example.org/notebook:1"
    # The container keeps its own port (this spawner's is a batch job's report).
    assert spawner.child.port == 8888
    # The child sees the address JupyterHub gives this spawner's server (the
    # Swarm spawner compares it with its task's to notice a moved server).
    from jupyterhub.objects import Server

    spawner.server = Server(ip="10.0.0.7", port=8888)
    assert spawner._synced().server.ip == "10.0.0.7"
    # Anything else is refused, as on a Swarm-only form.
    from tornado.web import HTTPError

    with pytest.raises(HTTPError, match="unknown spawn options"):
        c.Spawner.apply_user_options(spawner, {"profile": "alpha", "partition": "gpu"})


def test_a_jobs_script_and_state(tmp_path):
    import asyncio

    from hubconfig.profilespawner import KIND_KEY, TwinhubProfileSpawner

    c = configured(slurm_platform(tmp_path), tmp_path)
    spawner = TwinhubProfileSpawner(config=c, user=User())
    c.Spawner.apply_user_options(spawner, {"profile": "alpha"})
    job = spawner.child
    script = asyncio.run(
        job._get_batch_script(
            cmd=job.cmd_formatted_for_batch(), cluster="alpha", modules=job.modules, jupyter_path=job.jupyter_path,
            state_dir=job.state_dir(), username="john.doe",
        )
    )  # fmt: skip
    assert "module load gcc/12.2\n" in script
    assert 'export PATH="/opt/notebook/bin:$PATH"' in script
    assert "exec batchspawner-singleuser jupyterhub-singleuser" in script
    # Jupyter's SQLite files: one directory per user on a shared node, checked to be theirs.
    assert 'mkdir -p -m 0700 "/tmp/twinhub-state-john-2edoe"' in script
    assert any(a.startswith("--BaseFileIdManager.db_path=/tmp/twinhub-state-john-2edoe/") for a in job.get_args())
    # The job id and the kind survive a hub restart (state in the database).
    job.job_id = "4711"
    state = spawner.get_state()
    assert (state[KIND_KEY], state["job_id"]) == ("slurm", "4711")
    adopted = TwinhubProfileSpawner(config=c, user=User())
    adopted.load_state(state)
    assert (adopted.kind, adopted.child.job_id, adopted.child.cluster, adopted.start_timeout) == ("slurm", "4711", "alpha", 300)
    # A server started before Slurm profiles existed is a container one.
    old = TwinhubProfileSpawner(config=c, user=User())
    old.load_state({"service_id": "abc", "object_id": "abc"})
    assert old.kind == "container"


def test_polls_keep_a_running_job_and_notice_one_that_ended(tmp_path, monkeypatch):
    """JupyterHub polls before it stops a server: a job still running must read as running at every poll."""
    import asyncio

    from hubconfig.profilespawner import TwinhubProfileSpawner
    from hubconfig.slurm import Job
    from hubconfig.slurmspawner import TwinhubSlurmSpawner

    c = configured(slurm_platform(tmp_path), tmp_path)
    spawner = TwinhubProfileSpawner(config=c, user=User())
    c.Spawner.apply_user_options(spawner, {"profile": "alpha"})
    spawner.child.job_id = "4711"
    answers = []

    async def call(self, method, *args, **kwargs):
        assert (method, args) == ("job", (4711,))
        return answers.pop(0)

    monkeypatch.setattr(TwinhubSlurmSpawner, "_call", call)

    def job(state):
        return Job(id=4711, state=state, node="n1", user="john.doe", cpus=2, memory_mb=1024, time_limit_minutes=120,
                   reason="None", name="jupyterhub-john-2edoe-1")  # fmt: skip

    answers += [job("PENDING"), job("RUNNING"), job("RUNNING"), job("RUNNING"), None]
    assert [asyncio.run(spawner.poll()) for _ in range(4)] == [None, None, None, None]
    assert asyncio.run(spawner.poll()) == 1  # gone from Slurm: the server stopped
