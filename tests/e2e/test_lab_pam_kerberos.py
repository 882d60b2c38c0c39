"""Kerberos on the lab (issue 19, item 4): the hubs log people in through
PAM's pam_krb5 against the lab's KDC, and a Slurm job holds the person's
ticket.

The hub pair runs with auth.type kerberos for this module (LAB_AUTH; named
to run after the pam module, so the suite switches the hubs once more, not
twice). The KDC is on the services host; the hubs and the Slurm nodes are
its clients; the nodes' sshd takes tickets (kdc_client_ssh). Everything is
the real program: MIT's KDC, pam_krb5 in the hub's process, sssd for the
groups, Slurm running the job as john.doe, OpenSSH with GSSAPI.
"""

from __future__ import annotations

import ast
import re
import time

import pytest
from labhub import SLURM_CLUSTERS, User, lab_hub, password_logins, slurm_gone, slurm_job
from support import ROOT, lab_exec

LAB_AUTH = "kerberos"
PASSWORD = (ROOT / ".secrets" / "lab" / "lab_login_password").read_text().strip()
WHO = "john.doe"
REALM = "TWINHUB.LAB"
# auth.kerberos.job_renew_interval in the lab's platform config.
RENEW_EVERY = 15


def kinit(host: str, principal: str, password: str):
    cache = f"FILE:/tmp/krb5cc_e2e_{principal.replace('.', '_')}"
    script = f"printf '%s\\n' \"$PW\" | kinit -c {cache} {principal} && klist -c {cache}; rc=$?; kdestroy -c {cache} 2>/dev/null; exit $rc"
    return lab_exec(host, "env", f"PW={password}", "sh", "-c", script, check=False)


@pytest.mark.parametrize("host", ["hub-a", "worker-2"])
def test_a_directory_user_gets_a_ticket_with_the_lab_password(host):
    r = kinit(host, WHO, PASSWORD)
    assert r.returncode == 0, r.stderr
    assert f"Default principal: {WHO}@{REALM}" in r.stdout


def test_a_wrong_password_gets_no_ticket():
    r = kinit("worker-1", WHO, "not-" + PASSWORD)
    assert r.returncode != 0
    assert "Password incorrect" in r.stderr


@pytest.fixture(scope="module")
def hub():
    return lab_hub()


def kdc_log_since(since: str) -> str:
    return lab_exec("services", "journalctl", "--no-pager", "-o", "cat", "-u", "krb5-kdc", "--since", since).stdout


def test_the_login_form_asks_the_kdc_and_checks_its_answer_with_the_hubs_key(hub):
    since = lab_exec("services", "date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    seconds = password_logins(hub, WHO)
    print(f"Kerberos login through NGINX (hub -> pam_krb5 -> KDC, sssd for the groups): {seconds:.2f}s")
    log = kdc_log_since(since)
    # The password got a ticket (AS) and pam_krb5 asked for a ticket to the
    # hub's own principal (TGS), which only a KDC that knows the hub's key
    # can give: a forged KDC's answer fails there.
    assert re.search(rf"AS_REQ .*ISSUE: .*{re.escape(WHO)}@{REALM} for krbtgt/{REALM}@{REALM}", log), log[-2000:]
    assert re.search(rf"TGS_REQ .*ISSUE: .*{re.escape(WHO)}@{REALM} for host/hub\.twinhub\.lab@{REALM}", log), log[-2000:]


def test_groups_still_come_from_the_directory(hub):
    dana = hub.login("dana")  # allowed by jupyter-users only
    assert dana.get(f"{hub.url}/hub/api/user", timeout=30).json()["admin"] is False
    erin = hub.login("erin")  # hub-admins
    assert erin.get(f"{hub.url}/hub/api/user", timeout=30).json()["admin"] is True


@pytest.fixture(scope="module")
def john(hub):
    user = User(hub, WHO)
    yield user
    user.stop_quietly()


KLIST = "import subprocess; subprocess.run(['klist'], capture_output=True, text=True).stdout"
# The kernel's view of its ticket file: the name Kerberos uses, owner and mode.
CACHE = (
    "import os, stat; p = os.environ['KRB5CCNAME'].removeprefix('FILE:'); s = os.stat(p);"
    " f'{p} {s.st_uid == os.getuid()} {oct(stat.S_IMODE(s.st_mode))}'"
)
# ssh with the job's ticket to the other cluster's node (its sshd takes
# tickets only); the command answers who it runs as and where.
SSH = (
    "import subprocess; r = subprocess.run(['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',"
    " '-o', 'UserKnownHostsFile=/dev/null', '-o', 'PreferredAuthentications=gssapi-with-mic',"
    " '{user}@twinhub-lab-worker-2', 'echo $(id -un)@$(hostname)'], capture_output=True, text=True, timeout=60);"
    " (r.returncode, r.stdout.strip(), r.stderr.strip()[-300:])"
)


def starts(klist: str) -> list[str]:
    """The 'Valid starting' time of the ticket-granting ticket in klist's listing."""
    return [line.split("  ")[0] for line in klist.splitlines() if f"krbtgt/{REALM}@{REALM}" in line]


def value(user: User, code: str):
    """What the expression at the end of code is, in the user's kernel."""
    return ast.literal_eval(user.run(code))


def test_a_job_holds_the_persons_ticket_renewed_and_gone_when_it_stops(john):
    john.spawn("alpha", timeout=240)
    job = slurm_job("alpha", WHO)
    try:
        klist = value(john, KLIST)
        assert f"Default principal: {WHO}@{REALM}" in klist, klist
        assert "renew until" in klist, klist
        path, own, mode = value(john, CACHE).split()
        assert (path, own, mode) == (f"/tmp/krb5cc_twinhub_{job['id']}", "True", "0o600")
        # On the node: the file is john.doe's, and nobody else's to read.
        assert lab_exec(SLURM_CLUSTERS["alpha"], "stat", "-c", "%U %a", path).stdout.split() == [WHO, "600"]
        # A Kerberos service elsewhere in the lab takes the job's ticket.
        rc, out, err = value(john, SSH.format(user=WHO))
        assert (rc, out) == (0, f"{WHO}@worker-2"), err
        # ... for john.doe only, whose ticket it is.
        rc, out, _ = value(john, SSH.format(user="alice"))
        assert rc != 0
        assert not out
        # The job renews the ticket (every RENEW_EVERY s in the lab).
        first = starts(klist)
        assert first, klist
        deadline = time.monotonic() + RENEW_EVERY * 3
        while starts(value(john, KLIST)) == first:
            assert time.monotonic() < deadline, f"the ticket was not renewed in {RENEW_EVERY * 3}s"
            time.sleep(3)
    finally:
        john.stop()
    assert slurm_gone("alpha", WHO)
    # Stopping the server cancelled the job, and its ticket went with it.
    assert lab_exec(SLURM_CLUSTERS["alpha"], "ls", path, check=False).returncode != 0


def test_a_silent_kdc_stops_logins_with_a_message_that_says_so(hub, john):
    lab_exec("services", "systemctl", "stop", "krb5-kdc")
    try:
        _, r = hub.login_attempt(WHO)
        assert r.status_code == 503, (r.status_code, r.text[:300])
        assert "Kerberos realm&#39;s servers cannot be reached right now" in r.text, r.text[-1500:]
        # Those logged in already go on.
        assert john.api.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == WHO
    finally:
        lab_exec("services", "systemctl", "start", "krb5-kdc")
    _, r = hub.login_attempt(WHO)
    assert r.status_code == 302, (r.status_code, r.text[:300])
