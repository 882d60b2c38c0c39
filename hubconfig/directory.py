"""LDAP logins that verify the directory and say what went wrong.

ldapauthenticator does the directory work (look the user up, bind as them,
search their groups); this subclass adds what a facility needs around it:

- timeouts: ldapauthenticator builds its ``ldap3.Server`` and ``Connection``
  without any, so a directory that drops packets holds every login for the
  kernel's TCP timeout (minutes). ``get_connection`` is the same binding
  logic with ``connect_timeout`` and ``receive_timeout`` (the library has no
  setting for them, hence the override);
- clear errors: a directory that cannot be reached (or whose certificate is
  not trusted) gives the login page a 503 that says so, instead of a 500 or
  "Invalid username or password"; a search account that cannot bind names
  ``auth.ldap.search_user`` and ``auth.ldap.search_password_file``;
- admin groups: members of ``admin_groups`` are admins (and allowed), and
  lose admin when taken out of them, unless listed in admin_users.

Users already logged in never touch the directory: its outage only stops
new logins.
"""

from __future__ import annotations

import asyncio

import ldap3
from ldap3.core.exceptions import LDAPBindError, LDAPException
from ldap3.core.tls import Tls
from ldapauthenticator import LDAPAuthenticator
from ldapauthenticator.ldapauthenticator import TlsStrategy
from tornado import web
from traitlets import Int, List, Unicode


class DirectoryUnavailable(web.HTTPError):
    """The directory could not be asked: logins wait, sessions go on."""

    def __init__(self, where: str):
        super().__init__(
            503,
            "Sign-in is unavailable: the user directory (%s) cannot be reached right now. If you are logged in"
            " already, your session and server keep working; try signing in again in a few minutes."
            " Operators: the hub's log names the cause (auth.ldap.server_address, auth.ldap.ca_file).",
            where,
            reason="Directory unavailable",
        )


class TwinhubLDAPAuthenticator(LDAPAuthenticator):
    admin_groups = List(
        Unicode(),
        config=True,
        help="DNs of groups whose members are admins (they are allowed too).",
    )
    timeout = Int(
        5,
        config=True,
        help="Seconds to connect to the directory and to wait for each of its answers.",
    )

    @property
    def _where(self) -> str:
        scheme = "ldaps" if self.tls_strategy == TlsStrategy.on_connect else "ldap+starttls"
        return f"{scheme}://{self.server_address}:{self.server_port}"

    def get_connection(self, userdn, password):
        if self.tls_strategy == TlsStrategy.on_connect:
            use_ssl, auto_bind = True, ldap3.AUTO_BIND_NO_TLS
        elif self.tls_strategy == TlsStrategy.before_bind:
            use_ssl, auto_bind = False, ldap3.AUTO_BIND_TLS_BEFORE_BIND
        else:
            use_ssl, auto_bind = False, ldap3.AUTO_BIND_NO_TLS
        server = ldap3.Server(
            self.server_address,
            port=self.server_port,
            use_ssl=use_ssl,
            tls=Tls(**self.tls_kwargs),
            connect_timeout=self.timeout,
        )
        try:
            return ldap3.Connection(
                server,
                user=userdn,
                password=password,
                auto_bind=auto_bind,
                # Whole seconds: ldap3 packs it into SO_RCVTIMEO as an integer.
                receive_timeout=self.timeout,
            )
        except LDAPBindError:
            if self.lookup_dn and userdn == self.lookup_dn_search_user:
                self.log.error("LDAP: the search account %s cannot bind to %s", userdn, self._where)
                raise web.HTTPError(
                    500,
                    "Sign-in is misconfigured: the directory refused the hub's search account"
                    " (auth.ldap.search_user %s); expected the password in auth.ldap.search_password_file"
                    " to be that account's.",
                    userdn,
                    reason="Directory login misconfigured",
                ) from None
            return None
        except LDAPException as exc:
            self.log.error("LDAP: %s cannot be reached: %s: %s", self._where, type(exc).__name__, exc)
            raise DirectoryUnavailable(self._where) from None

    async def authenticate(self, handler, data):
        try:
            # ldapauthenticator's authenticate is a coroutine that only makes
            # blocking ldap3 calls (TLS handshakes, binds, searches): on the
            # hub's event loop, ten logins at once stalled every other request
            # of the hub for each other's directory round trips (bench/login.py).
            # It runs on a worker thread with a loop of its own instead.
            model = await asyncio.to_thread(asyncio.run, super().authenticate(handler, data))
        except LDAPException as exc:
            # Lost between the bind and the searches.
            self.log.error("LDAP: %s failed during a login: %s: %s", self._where, type(exc).__name__, exc)
            raise DirectoryUnavailable(self._where) from None
        if model and self.admin_groups:
            groups = set(model["auth_state"].get("ldap_groups", []))
            model["admin"] = bool(groups & set(self.admin_groups)) or model["name"].lower() in self.admin_users
        return model


def check(cfg: dict) -> str:
    """Reach the configured directory as the hub will (TLS verified), bind its
    search account and look under user_search_base; return what was seen.
    Raises RuntimeError with the setting to fix."""
    from traitlets.config import Config

    from hubconfig import auth

    c = Config()
    auth.apply(c, cfg)
    a = TwinhubLDAPAuthenticator(config=c)
    ldap = cfg["auth"]["ldap"]
    try:
        if not a.lookup_dn_search_user:
            conn = ldap3.Connection(
                ldap3.Server(
                    a.server_address,
                    port=a.server_port,
                    use_ssl=a.tls_strategy == TlsStrategy.on_connect,
                    tls=Tls(**a.tls_kwargs),
                    connect_timeout=a.timeout,
                ),
                receive_timeout=a.timeout,
            )
            conn.open()
            if a.tls_strategy == TlsStrategy.before_bind:
                conn.start_tls()
            return f"{a._where}: TLS verified (no search account to bind)"
        conn = a.get_connection(a.lookup_dn_search_user, a.lookup_dn_search_password)
    except web.HTTPError as exc:
        raise RuntimeError(exc.log_message % exc.args) from None
    except LDAPException as exc:
        raise RuntimeError(
            f"auth.ldap.server_address {a.server_address}:{a.server_port}: {type(exc).__name__}: {exc};"
            " expected a directory answering over TLS with a certificate auth.ldap.ca_file trusts"
        ) from None
    conn.search(ldap["user_search_base"], "(objectClass=*)", search_scope=ldap3.BASE)
    if not conn.entries:
        raise RuntimeError(
            f"auth.ldap.user_search_base {ldap['user_search_base']!r}: not found or not readable by"
            f" auth.ldap.search_user {a.lookup_dn_search_user!r}; expected the DN users are under"
        )
    return f"{a._where}: TLS verified, {a.lookup_dn_search_user} bound, {ldap['user_search_base']} readable"
