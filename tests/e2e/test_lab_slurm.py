"""The lab's two Slurm clusters (issue 19, item 1): a directory user's jobs run as them.

alpha is worker-1 and beta is worker-2, each its cluster's controller and
compute node; people resolve on the nodes through sssd against the lab's
directory, so a job runs with the user's own uid from the directory, never
a shared account, and each cluster keeps its job ids apart.
"""

from __future__ import annotations

import pytest
from support import lab, lab_exec

CLUSTERS = {"alpha": "worker-1", "beta": "worker-2"}


def as_user(host: str, user: str, command: str, timeout: int = 120):
    return lab_exec(host, "su", "-s", "/bin/sh", user, "-c", command, check=False, timeout=timeout)


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
def test_each_cluster_serves_its_partitions(cluster):
    host = CLUSTERS[cluster]
    expected = lab().hostvars[host]["slurm_clusters"][cluster]["partitions"]
    out = lab_exec(host, "sinfo", "--noheader", "--format", "%R %T %N").stdout.split("\n")
    assert sorted(line.split()[0] for line in out if line) == sorted(p["name"] for p in expected)
    assert all(line.split()[1:] == ["idle", host] for line in out if line), out


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
def test_a_directory_users_job_runs_as_them_on_their_cluster(cluster):
    host = CLUSTERS[cluster]
    uid = lab_exec(host, "id", "-u", "john.doe").stdout.strip()  # through sssd, from the directory
    assert int(uid) >= 20000
    job = as_user(
        host, "john.doe", "cd /tmp && sbatch --parsable --wait --output=/tmp/twinhub-e2e-%j.out --wrap 'hostname; id -un; id -u'"
    )
    assert job.returncode == 0, job.stderr
    job_id = int(job.stdout.strip())
    first = lab().hostvars[host]["slurm_clusters"][cluster].get("first_job_id", 1)
    assert first <= job_id < first + 100000
    result = lab_exec(
        host,
        "sh",
        "-c",
        f"cat /tmp/twinhub-e2e-{job_id}.out; stat -c %U /tmp/twinhub-e2e-{job_id}.out; rm -f /tmp/twinhub-e2e-{job_id}.out",
    )
    assert result.stdout.split() == [host, "john.doe", uid, "john.doe"]
