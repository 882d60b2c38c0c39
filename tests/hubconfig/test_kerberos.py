"""hubconfig.kerberos and the ticket in a Slurm job's script. PAM is stubbed
(pamela's two calls) and MIT's kinit is a stand-in script that keeps what
it was asked; the real realm (pam_krb5, the KDC, a job on a cluster, sshd
taking the ticket) runs in molecule/kdc and tests/e2e/test_lab_kerberos.py."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import stat
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from support import stub_pam
from tornado import web

from hubconfig import kerberos
from hubconfig.kerberos import KDCUnavailable, TicketRefused, TwinhubKerberosAuthenticator

REALM = "TWINHUB.TEST"


@pytest.fixture
def fake_kinit(tmp_path, monkeypatch):
    """A kinit on PATH: the right password (or -R on a cache) writes a cache; it logs its calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "kinit.log"
    (bin_dir / "kinit").write_text(
        textwrap.dedent(f"""\
            #!/bin/bash
            cache="${{KRB5CCNAME#FILE:}}"
            echo "$* mode=$(stat -c %a "$(dirname "$cache")")" >> {log}
            case "${{KDC:-up}}" in down) echo "kinit: Cannot contact any KDC for realm '{REALM}' while getting initial credentials" >&2; exit 1;; esac
            if [ "$1" = -R ]; then
              [ "$(cat "$cache")" = "ticket-1" ] || {{ echo "kinit: Ticket expired while renewing credentials" >&2; exit 1; }}
              echo -n ticket-2 > "$cache"; exit 0
            fi
            read -r password
            [ "$password" = right ] || {{ echo "kinit: Password incorrect while getting initial credentials" >&2; exit 1; }}
            echo -n ticket-1 > "$cache"
        """)
    )
    (bin_dir / "kinit").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return log


def test_a_ticket_is_got_in_a_private_place_and_nothing_is_left(fake_kinit, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(fake_kinit.parent))
    assert kerberos.new_ticket("john.doe@" + REALM, "right", REALM) == b"ticket-1"
    assert kerberos.renewed(b"ticket-1", REALM) == b"ticket-2"
    calls = fake_kinit.read_text().splitlines()
    assert calls == [f"john.doe@{REALM} mode=700", "-R mode=700"]
    assert not list(fake_kinit.parent.glob("twinhub-krb5-*"))  # the caches are gone


def test_a_refusal_and_a_silent_kdc_are_told_apart(fake_kinit, monkeypatch):
    with pytest.raises(TicketRefused, match="Password incorrect"):
        kerberos.new_ticket("john.doe@" + REALM, "wrong", REALM)
    with pytest.raises(TicketRefused, match="Ticket expired"):
        kerberos.renewed(b"stale", REALM)
    monkeypatch.setenv("KDC", "down")
    with pytest.raises(KDCUnavailable) as info:
        kerberos.new_ticket("john.doe@" + REALM, "right", REALM)
    assert info.value.status_code == 503
    assert f"no KDC of {REALM} answers the hub" in info.value.log_message
    assert "kdc_servers" in info.value.log_message


def authenticator() -> TwinhubKerberosAuthenticator:
    return TwinhubKerberosAuthenticator(realm=REALM)


def test_a_login_keeps_the_persons_ticket(monkeypatch, fake_kinit):
    calls = stub_pam(monkeypatch)
    model = asyncio.run(authenticator().authenticate(None, {"username": "john.doe", "password": "right"}))
    assert calls == [("auth", "john.doe", "twinhub-krb5"), ("account", "john.doe", "twinhub-krb5")]
    assert model == {
        "name": "john.doe",
        "auth_state": {"krb5_principal": f"john.doe@{REALM}", "krb5_ccache": base64.b64encode(b"ticket-1").decode()},
    }


def test_refused_by_pam_is_a_failed_login(monkeypatch, fake_kinit):
    stub_pam(monkeypatch, auth_errno=7)  # PAM_AUTH_ERR
    assert asyncio.run(authenticator().authenticate(None, {"username": "john.doe", "password": "wrong"})) is None


@pytest.mark.parametrize(("step", "says"), [("auth", "Kerberos realm's servers"), ("account", "user directory")])
def test_a_service_that_cannot_be_asked_is_named(monkeypatch, step, says):
    stub_pam(monkeypatch, **{f"{step}_errno": 9})  # PAM_AUTHINFO_UNAVAIL
    with pytest.raises(web.HTTPError) as info:
        asyncio.run(authenticator().authenticate(None, {"username": "john.doe", "password": "right"}))
    assert info.value.status_code == 503
    assert says in info.value.log_message


class User:
    name = "john.doe"

    def __init__(self, state):
        self.state = state

    async def get_auth_state(self):
        return self.state


def test_before_a_spawn_the_ticket_is_renewed_or_the_person_logs_in_again(monkeypatch, fake_kinit):
    a = authenticator()
    fresh = {"krb5_principal": f"john.doe@{REALM}", "krb5_ccache": base64.b64encode(b"ticket-1").decode()}
    renewed = asyncio.run(a.refresh_user(User(fresh)))
    assert base64.b64decode(renewed["auth_state"]["krb5_ccache"]) == b"ticket-2"
    assert renewed["auth_state"]["krb5_principal"] == f"john.doe@{REALM}"
    # Past its renewable life: log in again.
    stale = {**fresh, "krb5_ccache": base64.b64encode(b"ticket-0").decode()}
    assert asyncio.run(a.refresh_user(User(stale))) is False
    # Logged in before Kerberos was the login: no ticket to give jobs.
    assert asyncio.run(a.refresh_user(User(None))) is False
    # The KDC silent: the kept ticket may still be good; the session goes on.
    monkeypatch.setenv("KDC", "down")
    assert asyncio.run(a.refresh_user(User(fresh))) is True


def job_script(tmp_path, renew_interval=1):
    from hubconfig.slurmspawner import TwinhubSlurmSpawner

    job = TwinhubSlurmSpawner()
    return asyncio.run(
        job._get_batch_script(
            cmd="sleep 60", cluster="alpha", modules=[], jupyter_path=str(tmp_path / "bin"),
            state_dir=str(tmp_path / "state"), username="john.doe", kerberos=True, renew_interval=renew_interval,
        )
    )  # fmt: skip


def test_a_jobs_ticket_is_the_users_file_renewed_and_gone_when_the_job_stops(tmp_path, fake_kinit):
    script = tmp_path / "job.sh"
    script.write_text(job_script(tmp_path))
    (tmp_path / "bin" / "kdestroy").write_text(f"#!/bin/sh\necho kdestroy >> {fake_kinit}\n")
    (tmp_path / "bin" / "kdestroy").chmod(0o755)
    job_id = f"test{os.getpid()}"
    cache = Path(f"/tmp/krb5cc_twinhub_{job_id}")
    env = {
        "PATH": os.environ["PATH"], "SLURM_JOB_ID": job_id,
        "TWINHUB_KRB5_CCACHE": base64.b64encode(b"ticket-1").decode(),
    }  # fmt: skip
    job = subprocess.Popen(["bash", str(script)], env=env, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while "-R" not in (fake_kinit.read_text() if fake_kinit.exists() else ""):
            assert time.monotonic() < deadline, "the ticket was not renewed"
            time.sleep(0.2)
        assert stat.S_IMODE(cache.stat().st_mode) == 0o600
        assert cache.read_bytes() == b"ticket-2"  # renewed in place (the stand-in kinit -R)
        # The server sees where the ticket is, never the ticket itself.
        server = subprocess.run(["pgrep", "-s", str(job.pid), "-x", "sleep"], capture_output=True, text=True)
        environ = Path(f"/proc/{server.stdout.split()[0]}/environ").read_bytes().split(b"\0")
        assert f"KRB5CCNAME=FILE:{cache}".encode() in environ
        assert not any(e.startswith(b"TWINHUB_KRB5_CCACHE=") for e in environ)
        # scancel: Slurm's SIGTERM.
        job.send_signal(signal.SIGTERM)
        assert job.wait(timeout=10) == 143
        assert not cache.exists()
        assert "kdestroy" in fake_kinit.read_text()
        # Nothing left running (a zombie waits for this machine's init to reap it).
        left = subprocess.run(["pgrep", "-a", "-r", "D,R,S,T", "-s", str(job.pid)], capture_output=True, text=True)
        assert not left.stdout
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        cache.unlink(missing_ok=True)


def test_the_hubs_logins_never_skip_the_check_of_the_kdcs_answer(tmp_path, monkeypatch):
    import configparser

    monkeypatch.setenv("KRB5_KTNAME", "")
    monkeypatch.setenv("KRB5_CONFIG", "")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    TwinhubKerberosAuthenticator(realm=REALM, keytab_file="/etc/twinhub/secrets/krb5.keytab")
    assert os.environ["KRB5_KTNAME"] == "FILE:/etc/twinhub/secrets/krb5.keytab"
    host, ours = os.environ["KRB5_CONFIG"].split(":")
    assert host == "/etc/krb5.conf"
    conf = configparser.ConfigParser()
    conf.read(ours)
    assert conf["libdefaults"]["verify_ap_req_nofail"] == "true"
