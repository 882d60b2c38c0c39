"""A Slurm cluster: jobs run as the user who submitted them, held to what they asked for."""

import json
import os
import time

import pytest
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


# A job that holds a ticket file as a server's job does (hubconfig.slurmspawner
# writes the person's Kerberos ticket there), with no script of its own to
# remove it: the epilog does. Single quotes keep $SLURM_JOB_ID for the job.
TICKET_JOB = "printf '%s\\n' '#!/bin/sh' 'echo ticket > /tmp/krb5cc_twinhub_$SLURM_JOB_ID' 'exec sleep 300' > /tmp/ticket-job.sh"


def test_a_cancelled_job_stops_on_the_node_and_its_ticket_goes():
    CTL.check_output(TICKET_JOB + " && chmod 0644 /tmp/ticket-job.sh")
    out = as_user(CTL, "cd && sbatch --parsable /tmp/ticket-job.sh")
    assert out.rc == 0, out.stderr
    job_id = out.stdout.strip()
    ticket = NODE.file(f"/tmp/krb5cc_twinhub_{job_id}")
    try:
        # RUNNING comes before the script does (the prolog runs first): wait for its sleep.
        for _ in range(60):
            if NODE.run("pgrep -u alice.smith -x sleep").rc == 0:
                break
            time.sleep(0.5)
        assert CTL.check_output(f"squeue --noheader --jobs {job_id} --format %T").strip() == "RUNNING"
        assert NODE.run("pgrep -u alice.smith -x sleep").rc == 0
        assert ticket.exists
        assert ticket.user == "alice.smith"
        assert as_user(CTL, f"scancel {job_id}").rc == 0
        for _ in range(30):
            if NODE.run("pgrep -u alice.smith -x sleep").rc != 0 and not ticket.exists:
                break
            time.sleep(0.5)
        assert NODE.run("pgrep -u alice.smith -x sleep").rc != 0
        assert not ticket.exists
    finally:
        CTL.run(f"scancel {job_id}")


def rest(key=b"molecule-jwt-key-0123456789abcdef0123456789abc"):
    from hubconfig.slurm import SlurmCluster

    address = CTL.check_output("ip -4 -o addr show dev eth0").split()[3].split("/")[0]
    return SlurmCluster("alpha", f"http://{address}:6820", key)


def test_slurmrestd_runs_a_job_as_the_user_named_by_the_token():
    job_id = rest().submit(
        "alice.smith",
        "#!/bin/sh\nid -un > /tmp/rest-job.out\n",
        partition="short",
        cpus=1,
        memory_mb=64,
        minutes=1,
        cwd="/tmp",
        environment={"PATH": "/usr/bin:/bin"},
    )
    for _ in range(40):
        job = rest().job("alice.smith", job_id)
        if job and job.state == "COMPLETED":
            break
        time.sleep(0.25)
    assert job is not None
    assert (job.state, job.node, job.user, job.cpus, job.memory_mb, job.time_limit_minutes) == (
        "COMPLETED",
        "slurm-node",
        "alice.smith",
        1,
        64,
        1,
    )
    out = NODE.file("/tmp/rest-job.out")
    assert out.content_string.strip() == "alice.smith"
    assert out.user == "alice.smith"


def test_slurmrestd_refuses_a_token_from_another_key():
    from hubconfig.slurm import SlurmError

    with pytest.raises(SlurmError, match="Slurm cluster alpha refused GET"):
        rest(key=b"x" * 40).job("alice.smith", 100)


def test_no_job_runs_as_root_even_with_the_key():
    import jwt

    token = jwt.encode({"sun": "root", "exp": int(time.time()) + 60}, b"molecule-jwt-key-0123456789abcdef0123456789abc")
    r = CTL.run(
        "curl -s -X POST -H 'Content-Type: application/json' -H 'X-SLURM-USER-NAME: root'"
        f" -H 'X-SLURM-USER-TOKEN: {token}' http://127.0.0.1:6820/slurm/v0.0.38/job/submit"
        ' -d \'{"script": "#!/bin/sh\\ntrue\\n", "job": {"partition": "short", "current_working_directory": "/tmp",'
        ' "environment": {"PATH": "/bin"}}}\''
    )
    reply = json.loads(r.stdout)
    assert reply["errors"], reply  # refused, with Slurm's reason
    assert not reply.get("job_id"), reply
    assert CTL.check_output("squeue --noheader --user root") == ""
