"""The end-to-end suites run against the lab brought up by `./twinhub up`.

A module that needs the hubs on another login than the lab's default (ldap)
says so with LAB_AUTH ("oidc", "pam"): the hubs are redeployed with it when
the module starts, only if they run with something else, and put back on
the default at the end of the session. Modules run in name order, so the
oidc and pam modules share their switches (ldap -> oidc -> pam -> ldap).
"""

from __future__ import annotations

import pytest
from support import lab


@pytest.fixture(scope="session", autouse=True)
def lab_is_up():
    if not all(lab().running(host) for host in lab().hosts):
        pytest.fail("the lab is not running: bring it up with `./twinhub up` (or run `./twinhub lab-e2e`)")
    yield
    from labhub import use_auth

    if seconds := use_auth("ldap"):
        print(f"\nhubs back on ldap in {seconds:.0f}s")


@pytest.fixture(scope="module", autouse=True)
def hubs_on_the_modules_login(request, lab_is_up):
    from labhub import use_auth

    kind = getattr(request.module, "LAB_AUTH", "ldap")
    if seconds := use_auth(kind):
        print(f"\nhubs on {kind} in {seconds:.0f}s")
