"""hubconfig.pam: PAM logins through the hub host's sssd. PAM itself is
stubbed here (pamela's two calls); the real stack (sssd against slapd) is in
molecule/sssd and tests/e2e/test_lab_pam.py."""

from __future__ import annotations

import asyncio

import pytest
from support import stub_pam
from tornado import web

from hubconfig.pam import TwinhubPAMAuthenticator


def login(monkeypatch, auth_errno=None, account_errno=None, user="john.doe"):
    calls = stub_pam(monkeypatch, auth_errno, account_errno)
    a = TwinhubPAMAuthenticator()
    return asyncio.run(a.authenticate(None, {"username": user, "password": "pw"})), calls


def test_right_password_and_account_log_in_through_the_twinhub_service(monkeypatch):
    name, calls = login(monkeypatch)
    assert name == "john.doe"
    assert calls == [("auth", "john.doe", "twinhub"), ("account", "john.doe", "twinhub")]


@pytest.mark.parametrize("step", ["auth", "account"])
def test_a_refusal_is_a_failed_login(monkeypatch, step):
    # PAM_AUTH_ERR (7) for a wrong password, PAM_PERM_DENIED (6) for an account refused.
    name, _ = login(monkeypatch, **({"auth_errno": 7} if step == "auth" else {"account_errno": 6}))
    assert name is None


@pytest.mark.parametrize("errno", [9, 4])  # PAM_AUTHINFO_UNAVAIL, PAM_SYSTEM_ERR
def test_a_directory_that_cannot_be_asked_is_a_503_that_says_so(monkeypatch, errno):
    with pytest.raises(web.HTTPError) as info:
        login(monkeypatch, auth_errno=errno)
    assert info.value.status_code == 503
    assert "user directory cannot be reached" in info.value.log_message
    assert "sssctl domain-status" in info.value.log_message


def test_admin_groups_members_may_log_in_like_with_ldap_and_oidc(monkeypatch):
    import grp
    import pwd

    a = TwinhubPAMAuthenticator(allowed_groups={"jupyter-users"}, admin_groups={"hub-admins"})
    groups = {"jupyter-users": 21000, "hub-admins": 21001}
    members = {"dana": [21000], "erin": [21001], "frank": []}
    monkeypatch.setattr(a, "_getpwnam", lambda name: pwd.struct_passwd((name, "x", 20000, 20000, "", "/", "/bin/sh")))
    monkeypatch.setattr(a, "_getgrouplist", lambda name, gid: [gid, *members[name]])
    monkeypatch.setattr(a, "_getgrnam", lambda name: grp.struct_group((name, "x", groups[name], [])))  # KeyError if unknown
    assert asyncio.run(a.check_allowed("dana")) is True
    assert asyncio.run(a.check_allowed("erin")) is True
    assert asyncio.run(a.check_allowed("frank")) is False
