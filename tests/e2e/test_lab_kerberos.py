"""The lab's Kerberos realm (issue 19, item 4 begins): a directory user's name and password get a ticket.

The KDC runs on the services host; the hubs and the Slurm nodes are its
clients (/etc/krb5.conf). The hubs' PAM login through pam_krb5 and the
ticket in the user's job are the next steps of issue 19.
"""

from __future__ import annotations

import pytest
from support import ROOT, lab_exec

PASSWORD = (ROOT / ".secrets" / "lab" / "lab_login_password").read_text().strip()


def kinit(host: str, principal: str, password: str):
    cache = f"FILE:/tmp/krb5cc_e2e_{principal.replace('.', '_')}"
    script = f"printf '%s\\n' \"$PW\" | kinit -c {cache} {principal} && klist -c {cache}; rc=$?; kdestroy -c {cache} 2>/dev/null; exit $rc"
    return lab_exec(host, "env", f"PW={password}", "sh", "-c", script, check=False)


@pytest.mark.parametrize("host", ["hub-a", "worker-2"])
def test_a_directory_user_gets_a_ticket_with_the_lab_password(host):
    r = kinit(host, "john.doe", PASSWORD)
    assert r.returncode == 0, r.stderr
    assert "Default principal: john.doe@TWINHUB.LAB" in r.stdout


def test_a_wrong_password_gets_no_ticket():
    r = kinit("worker-1", "john.doe", "not-" + PASSWORD)
    assert r.returncode != 0
    assert "Password incorrect" in r.stderr
