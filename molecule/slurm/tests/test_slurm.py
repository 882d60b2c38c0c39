"""A Slurm cluster: jobs run as the user who submitted them, held to what they asked for."""

import os
import time

import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
CTL = testinfra.get_host(f"ansible://slurm-ctl?ansible_inventory={INVENTORY}")
NODE = testinfra.get_host(f"ansible://slurm-node?ansible_inventory={INVENTORY}")


def as_user(host, command):
    return host.run(f"su alice.smith -c {command!r}")


def test_the_partitions_and_the_node_are_up():
    out = CTL.check_output("sinfo --noheader --format '%P %l %D %T %N'")
    assert out.splitlines() == ["interactive* 1:00:00 1 idle slurm-node", "short 5:00 1 idle slurm-node"]


def test_one_munge_key_across_the_cluster():
    key = CTL.file("/etc/munge/munge.key")
    assert (key.user, key.group, key.mode) == ("munge", "munge", 0o400)
    credential = CTL.check_output("munge -n")
    assert NODE.run(f"echo {credential} | unmunge").rc == 0


def test_a_batch_job_runs_as_its_user_on_the_compute_node():
    out = as_user(CTL, "cd && sbatch --parsable --wait --output=job.out --wrap 'hostname; id -un; id -u'")
    assert out.rc == 0, out.stderr
    job_id = int(out.stdout.strip())
    assert job_id >= 100  # first_job_id: this cluster's range
    result = NODE.file("/home/alice.smith/job.out")
    assert result.content_string.split() == ["slurm-node", "alice.smith", "2101"]
    assert result.user == "alice.smith"


def test_a_job_sees_only_the_cores_it_asked_for():
    out = as_user(CTL, "srun --cpus-per-task=1 nproc")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "1"
    assert as_user(CTL, "srun --cpus-per-task=2 nproc").stdout.strip() == "2"


def test_a_job_past_its_memory_is_killed():
    hog = 'python3 -c "b = bytearray(300 * 1024 * 1024); print(len(b))"'
    out = as_user(CTL, f"srun --mem=64M {hog}")
    assert out.rc != 0
    assert "Out Of Memory" in out.stderr or "oom-kill" in out.stderr, out.stderr
    assert as_user(CTL, f"srun --mem=512M {hog}").stdout.strip() == str(300 * 1024 * 1024)


def test_requests_beyond_a_partition_are_refused_at_submission():
    for request in ("--partition=short --time=00:30:00", "--partition=short --cpus-per-task=2", "--partition=short --mem=512M"):
        out = as_user(CTL, f"sbatch {request} --wrap true")
        assert out.rc != 0, request
        assert "sbatch: error" in out.stderr, out.stderr
    assert as_user(CTL, "sbatch --partition=nowhere --wrap true").stderr.count("invalid partition") == 1


def test_a_cancelled_job_stops_on_the_node():
    out = as_user(CTL, "cd && sbatch --parsable --wrap 'sleep 300'")
    job_id = out.stdout.strip()
    for _ in range(30):
        if CTL.check_output(f"squeue --noheader --jobs {job_id} --format %T").strip() == "RUNNING":
            break
        time.sleep(0.5)
    assert NODE.run("pgrep -u alice.smith -x sleep").rc == 0
    assert as_user(CTL, f"scancel {job_id}").rc == 0
    for _ in range(30):
        if NODE.run("pgrep -u alice.smith -x sleep").rc != 0:
            break
        time.sleep(0.5)
    assert NODE.run("pgrep -u alice.smith -x sleep").rc != 0
