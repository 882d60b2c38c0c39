"""Kerberos logins (auth.type kerberos): name and password through PAM's
pam_krb5, and the person's ticket kept for their Slurm jobs (issue 19).

The login is PAM's decision, as with auth.type pam: the hub image's PAM
service ``twinhub-krb5`` asks the realm's KDC (pam_krb5, which checks the
ticket it gets with the hub's own host key in ``auth.kerberos.keytab_file``,
so a KDC that is not the realm's cannot log anyone in; never skipped, see
``strict_krb5_config``) and the hub host's sssd for the account and the
groups.

pam_krb5 keeps the ticket it got only in its session step, which writes it
to a file owned by the person: root's work, and the hub is not root. So the
authenticator asks the KDC once more with the same password, for a ticket
of its own (MIT ``kinit`` into a private temporary file), and keeps it in
the person's auth_state, which JupyterHub encrypts with the hub's crypt
key. Before each spawn (and when the hub's view of the login is older than
an hour) the ticket is renewed; a ticket past its renewable life means the
person logs in again. A Slurm job gets the ticket in its environment and
writes it to a file of its own (hubconfig.slurmspawner).

Why ``kinit`` and not a Python binding: ``gssapi`` builds from source
against the Kerberos headers (no wheel), and ``kinit``/``klist`` are MIT's
own tools, in the image with pam_krb5.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import tempfile

import pamela
from tornado import web
from traitlets import Integer, Unicode

from hubconfig.pam import TwinhubPAMAuthenticator

# What MIT's tools say when no KDC of the realm answers (krb5 error table).
NO_KDC = ("Cannot contact any KDC", "Cannot find KDC", "Cannot resolve network address")


class KDCUnavailable(web.HTTPError):
    """No KDC answers: logins wait, running sessions and servers go on."""

    def __init__(self, realm: str, detail: str = "") -> None:
        super().__init__(
            503,
            "Sign-in is unavailable: the Kerberos realm's servers cannot be reached right now. If you are logged"
            " in already, your session and server keep working; try signing in again in a few minutes."
            f" Operators: no KDC of {realm} answers the hub (auth.kerberos.realm; the KDCs in the hub host's"
            " /etc/krb5.conf, kdc_servers)." + (f" ({detail})" if detail else ""),
            reason="Kerberos unavailable",
        )


# Kerberos' own default is to skip the check of a ticket when no host key
# is at hand (verify_ap_req_nofail false): a missing or wrong keytab would
# quietly let a forged KDC log people in. The hub's logins never skip it.
STRICT = "[libdefaults]\n    verify_ap_req_nofail = true\n"


def strict_krb5_config(keytab_file: str) -> None:
    """pam_krb5 in this process (through pamela) checks every ticket with a host key from keytab_file, or fails.

    KRB5_KTNAME and KRB5_CONFIG are Kerberos' own settings for the keytab and
    for more configuration files read after the host's /etc/krb5.conf.
    """
    os.environ["KRB5_KTNAME"] = f"FILE:{keytab_file}"
    fd, path = tempfile.mkstemp(prefix="twinhub-krb5-", suffix=".conf")
    with os.fdopen(fd, "w") as f:
        f.write(STRICT)
    os.environ["KRB5_CONFIG"] = f"/etc/krb5.conf:{path}"


class TicketRefused(Exception):
    """The KDC answered no: wrong password, expired, or past its renewable life."""


def _run(argv: list[str], cache: str, timeout: int, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "KRB5CCNAME": f"FILE:{cache}", "LC_ALL": "C"}
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def _ticket_call(argv: list[str], realm: str, timeout: int, cache_bytes: bytes = b"", stdin: str = "") -> bytes:
    """Run an MIT tool on a private ticket cache (0600 in a 0700 directory); return the cache's bytes after."""
    with tempfile.TemporaryDirectory(prefix="twinhub-krb5-") as tmp:
        cache = os.path.join(tmp, "cc")
        if cache_bytes:
            with open(os.open(cache, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
                f.write(cache_bytes)
        try:
            r = _run(argv, cache, timeout, stdin)
        except subprocess.TimeoutExpired as exc:
            raise KDCUnavailable(realm, f"no answer in {timeout}s") from exc
        if r.returncode != 0:
            message = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["(no message)"]
            if any(s in message[0] for s in NO_KDC):
                raise KDCUnavailable(realm, message[0])
            raise TicketRefused(message[0])
        with open(cache, "rb") as f:
            return f.read()


def new_ticket(principal: str, password: str, realm: str, timeout: int = 10) -> bytes:
    """A renewable ticket-granting ticket for principal (krb5.conf's lifetimes), as a ccache file's bytes."""
    return _ticket_call(["kinit", principal], realm, timeout, stdin=password + "\n")


def renewed(cache_bytes: bytes, realm: str, timeout: int = 10) -> bytes:
    """The same ticket renewed (a fresh lifetime, up to its renewable life)."""
    return _ticket_call(["kinit", "-R"], realm, timeout, cache_bytes=cache_bytes)


class TwinhubKerberosAuthenticator(TwinhubPAMAuthenticator):
    service = Unicode("twinhub-krb5", config=True, help="The PAM service (the hub image's /etc/pam.d/twinhub-krb5).")
    realm = Unicode(config=True, help="auth.kerberos.realm")
    timeout = Integer(10, config=True, help="auth.kerberos.timeout: seconds the hub waits for the KDC")
    keytab_file = Unicode(config=True, help="auth.kerberos.keytab_file: the hub's own key")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.keytab_file:
            strict_krb5_config(self.keytab_file)

    def principal(self, username: str) -> str:
        return f"{username}@{self.realm}"

    def unavailable(self, step: str, exc: pamela.PAMError) -> web.HTTPError:
        # The auth step is pam_krb5's (the KDC); the account step stays sssd's.
        if step == "auth":
            self.log.error("PAM cannot ask the KDC of %s: %s", self.realm, exc)
            return KDCUnavailable(self.realm, str(exc))
        return super().unavailable(step, exc)

    async def authenticate(self, handler, data):
        username = await super().authenticate(handler, data)
        if username is None:
            return None
        try:
            cache = await asyncio.to_thread(new_ticket, self.principal(username), data["password"], self.realm, self.timeout)
        except TicketRefused as exc:
            # PAM said yes a moment ago: a password changed in between, or a KDC that disagrees.
            self.log.warning("Kerberos refused a ticket for %s after PAM accepted: %s", username, exc)
            return None
        return {"name": username, "auth_state": {"krb5_principal": self.principal(username), "krb5_ccache": _b64(cache)}}

    async def refresh_user(self, user, handler=None):
        """Renew the kept ticket (before each spawn, and hourly): a ticket that cannot be renewed ends the login."""
        state = await user.get_auth_state()
        if not state or "krb5_ccache" not in state:
            self.log.info("No Kerberos ticket kept for %s: logging in again", user.name)
            return False
        try:
            cache = await asyncio.to_thread(renewed, base64.b64decode(state["krb5_ccache"]), self.realm, self.timeout)
        except TicketRefused as exc:
            self.log.info("The Kerberos ticket of %s cannot be renewed (%s): logging in again", user.name, exc)
            return False
        except KDCUnavailable as exc:
            # The kept ticket may well be valid still: the session goes on.
            self.log.warning("Kerberos ticket of %s not renewed: %s", user.name, exc.log_message)
            return True
        return {"name": user.name, "auth_state": {**state, "krb5_ccache": _b64(cache)}}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def apply(c, auth: dict) -> None:
    """Wire auth.kerberos into the authenticator (hubconfig.auth calls this for auth.type kerberos)."""
    krb = auth["kerberos"]
    c.TwinhubKerberosAuthenticator.realm = krb["realm"]
    c.TwinhubKerberosAuthenticator.timeout = krb["timeout"]
    c.TwinhubKerberosAuthenticator.allowed_groups = set(auth["allowed_groups"])
    c.TwinhubKerberosAuthenticator.admin_groups = set(auth["admin_groups"])
    # Tickets live in auth_state (encrypted with the hub's crypt key).
    c.TwinhubKerberosAuthenticator.enable_auth_state = True
    c.TwinhubKerberosAuthenticator.refresh_pre_spawn = True
    c.TwinhubKerberosAuthenticator.auth_refresh_age = 3600
    c.TwinhubKerberosAuthenticator.keytab_file = krb["keytab_file"]
    # Slurm jobs keep the ticket fresh this often (hubconfig.slurmspawner).
    c.TwinhubSlurmSpawner.krb5_renew_interval = krb["job_renew_interval"]


def check(cfg: dict) -> str:
    """At deploy, as the hub will: the keytab readable, the KDC answering for the hub's own key, sssd's groups.
    Raises RuntimeError naming the setting to fix."""
    from hubconfig import pam

    krb = cfg["auth"]["kerberos"]
    keytab, principal = krb["keytab_file"], f"{krb['service_principal']}@{krb['realm']}"
    if not os.access(keytab, os.R_OK):
        raise RuntimeError(
            f"auth.kerberos.keytab_file: {keytab} is missing or unreadable to the hub's user; expected the keytab of"
            f" {principal} (the hub role copies hub_kerberos_keytab_file there)"
        )
    try:
        _ticket_call(["kinit", "-k", "-t", keytab, principal], krb["realm"], krb["timeout"])
    except KDCUnavailable as exc:
        raise RuntimeError(str(exc.log_message)) from exc
    except TicketRefused as exc:
        raise RuntimeError(
            f"auth.kerberos.service_principal: the KDC of {krb['realm']} refused {principal} with the key in {keytab}"
            f" ({exc}); expected that principal's current keytab (kdc_service_principals)"
        ) from exc
    return f"the KDC of {krb['realm']} accepts {principal}'s key; " + pam.check(cfg)
