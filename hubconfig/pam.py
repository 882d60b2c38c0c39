"""Logins with system accounts (auth.type pam): PAM through the hub host's sssd.

The hub container holds no accounts: its PAM service ``twinhub`` (the hub
image's /etc/pam.d/twinhub) asks the hub host's sssd through its sockets
(mounted read-only by the hub role), and sssd checks the password against the
site's directory. Groups (allowed and admin) come from the same sssd through
NSS, as JupyterHub's PAMAuthenticator reads them.

Upstream's ``authenticate`` logs every PAM failure and returns None, so a
directory that does not answer looks like a wrong password to the user and
to the operator alike. This subclass runs the same two PAM steps (auth,
account) itself, because the error code it needs is swallowed there: PAM's
"authentication information unavailable" (sssd offline, or not running)
becomes a 503 page that says so, and the hub keeps serving everyone
already logged in.
"""

from __future__ import annotations

import pamela
from jupyterhub.auth import PAMAuthenticator
from tornado import web
from tornado.concurrent import run_on_executor
from traitlets import Unicode

# Linux-PAM's codes for "the service behind the module cannot be asked"
# (security/_pam_types.h): PAM_AUTHINFO_UNAVAIL, and PAM_SYSTEM_ERR
# (pam_sss's answer when the sssd socket is missing or refuses).
PAM_AUTHINFO_UNAVAIL = 9
PAM_SYSTEM_ERR = 4
UNAVAILABLE = {PAM_AUTHINFO_UNAVAIL, PAM_SYSTEM_ERR}


class AccountsUnavailable(web.HTTPError):
    """sssd could not ask the directory: logins wait, sessions go on."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "Sign-in is unavailable: the user directory cannot be reached right now. If you are logged in"
            " already, your session and server keep working; try signing in again in a few minutes."
            " Operators: sssd on the hub host is offline (sssctl domain-status twinhub; the sssd role's"
            " sssd_ldap_uri).",
            reason="Directory unavailable",
        )


class TwinhubPAMAuthenticator(PAMAuthenticator):
    service = Unicode("twinhub", config=True, help="The PAM service (the hub image's /etc/pam.d/twinhub).")

    @run_on_executor
    def _check_password(self, username: str, password: str) -> None:
        self._step("auth", pamela.authenticate, username, password)
        if self.check_account:
            self._step("account", pamela.check_account, username)

    def _step(self, step: str, call, *args: str) -> None:
        """One PAM step; "cannot be asked" becomes the 503 of the service behind that step."""
        try:
            call(*args, service=self.service, encoding=self.encoding)
        except pamela.PAMError as exc:
            if exc.errno in UNAVAILABLE:
                raise self.unavailable(step, exc) from exc
            raise

    def unavailable(self, step: str, exc: pamela.PAMError) -> web.HTTPError:
        """The error page for a PAM step whose service cannot be asked (here sssd, for both steps)."""
        self.log.error("PAM cannot ask the directory (sssd offline or not running): %s", exc)
        return AccountsUnavailable()

    async def check_allowed(self, username, authentication=None):
        if super().check_allowed(username, authentication):
            return True
        # As with ldap and oidc: the admin groups' members may log in too
        # (upstream's PAM allows only allowed_users and allowed_groups; its
        # is_admin answers who is in the admin groups).
        return bool(self.admin_groups) and bool(await self.is_admin(None, {"name": username}))

    async def authenticate(self, handler, data):
        username = data["username"]
        shown = username if len(username) <= 32 else f"{username[:16]}...({len(username)} chars)"
        try:
            await self._check_password(username, data["password"])
        except pamela.PAMError as exc:
            self.log.warning("PAM login refused for %r: %s", shown, exc)
            return None
        return username


# Where sssd's NSS and PAM sockets are (fixed by sssd's build); the hub role
# mounts the hub host's directory there read-only.
SSSD_PIPES = "/var/lib/sss/pipes"


def check(cfg: dict) -> str:
    """Ask the hub host's sssd (through its mounted sockets) for the allowed
    and admin groups, as the hub will at each login; return what was seen.
    Raises RuntimeError with the setting to fix."""
    import grp
    import os

    if not os.path.exists(os.path.join(SSSD_PIPES, "nss")):
        raise RuntimeError(
            f"auth.type pam: no sssd socket at {SSSD_PIPES}/nss in the hub container; expected sssd on the hub host"
            " (the sssd role, inventory group sssd) and its sockets mounted (the hub role does so for auth.type pam)"
        )
    auth = cfg["auth"]
    found, unknown = {}, []
    for key in ("allowed_groups", "admin_groups"):
        for group in auth[key]:
            try:
                found[group] = grp.getgrnam(group).gr_gid
            except KeyError:
                unknown.append(f"auth.{key}: {group!r}")
    if unknown:
        raise RuntimeError(
            f"{', '.join(unknown)} not known to the hub host's sssd; expected groups of the directory it reads"
            " (sssd_ldap_group_search_base, with a gidNumber), and sssd online (sssctl domain-status twinhub)"
        )
    return "sssd answers: " + (", ".join(f"{g} (gid {gid})" for g, gid in found.items()) or "no groups to look up")
