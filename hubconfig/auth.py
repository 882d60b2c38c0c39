"""Who may log in: dummy (lab only), PAM, Kerberos (through PAM), LDAP or OpenID Connect.

Never open sign-up: nobody gets in unless listed in allowed_users or a
member of allowed_groups (or an admin); allow_all stays False.
"""

from __future__ import annotations

import ssl
from typing import Any

from hubconfig import names
from hubconfig.secrets import read_secret

CLASSES = {
    "dummy": "jupyterhub.auth.DummyAuthenticator",
    # PAMAuthenticator through the hub host's sssd, with a clear error when it is offline.
    "pam": "hubconfig.pam.TwinhubPAMAuthenticator",
    # pam_krb5 through PAM, and the person's ticket kept for their Slurm jobs.
    "kerberos": "hubconfig.kerberos.TwinhubKerberosAuthenticator",
    # ldapauthenticator with timeouts, admin groups and clear errors.
    "ldap": "hubconfig.directory.TwinhubLDAPAuthenticator",
    # GenericOAuthenticator with identity binding, fresh tokens, clear errors.
    "oidc": "hubconfig.provider.TwinhubOIDCAuthenticator",
}


def apply(c: Any, cfg: dict[str, Any]) -> None:
    auth = cfg["auth"]
    kind = auth["type"]
    c.JupyterHub.authenticator_class = CLASSES[kind]
    c.Authenticator.admin_users = set(auth["admin_users"])
    c.Authenticator.allowed_users = set(auth["allowed_users"])
    c.Authenticator.allow_all = False
    # JupyterHub lets anyone already in its database log in while
    # allowed_users is set; off, a user taken out of the list (or group)
    # cannot log in at the next attempt.
    c.Authenticator.allow_existing_users = auth["allow_existing_users"]
    if kind == "dummy":
        if auth["dummy"]["password_file"]:
            c.DummyAuthenticator.password = read_secret(auth["dummy"]["password_file"], "auth.dummy.password_file")
    elif kind == "pam":
        c.PAMAuthenticator.allowed_groups = set(auth["allowed_groups"])
        c.PAMAuthenticator.admin_groups = set(auth["admin_groups"])
    elif kind == "kerberos":
        from hubconfig import kerberos

        kerberos.apply(c, auth)
    elif kind == "ldap":
        ldap = auth["ldap"]
        c.LDAPAuthenticator.server_address = ldap["server_address"]
        c.LDAPAuthenticator.server_port = ldap["server_port"]
        c.LDAPAuthenticator.tls_strategy = "on_connect" if ldap["use_ssl"] else "before_bind"
        # ldap3's Tls() checks nothing by default (CERT_NONE): whoever sits
        # between the hub and the directory would collect passwords. Always
        # verify the directory's certificate and its name.
        c.LDAPAuthenticator.tls_kwargs = {"validate": ssl.CERT_REQUIRED, "ca_certs_file": ldap["ca_file"] or None}
        c.LDAPAuthenticator.bind_dn_template = ldap["bind_dn_template"]
        c.LDAPAuthenticator.user_search_base = ldap["user_search_base"]
        c.LDAPAuthenticator.user_attribute = ldap["user_attribute"]
        c.LDAPAuthenticator.lookup_dn = ldap["lookup_dn"]
        # The user's name is the directory's spelling of it (its user_attribute),
        # never another attribute; names as the platform allows them (hubconfig.names).
        c.LDAPAuthenticator.lookup_dn_user_dn_attribute = ldap["user_attribute"]
        c.LDAPAuthenticator.valid_username_regex = f"^{names.PATTERN}$"
        if ldap["search_user"]:
            c.LDAPAuthenticator.lookup_dn_search_user = ldap["search_user"]
            c.LDAPAuthenticator.lookup_dn_search_password = read_secret(
                ldap["search_password_file"], "auth.ldap.search_password_file"
            )
        # Groups are named as everywhere in the platform config; the directory
        # knows them by DN. Admin groups are searched too (their members are allowed).
        admin_dns = [group_dn(ldap, g) for g in auth["admin_groups"]]
        allowed_dns = [group_dn(ldap, g) for g in auth["allowed_groups"]]
        c.LDAPAuthenticator.allowed_groups = allowed_dns + [dn for dn in admin_dns if dn not in allowed_dns]
        c.TwinhubLDAPAuthenticator.admin_groups = admin_dns
        c.TwinhubLDAPAuthenticator.timeout = ldap["timeout"]
    elif kind == "oidc":
        oidc = auth["oidc"]
        c.TwinhubOIDCAuthenticator.client_id = oidc["client_id"]
        c.TwinhubOIDCAuthenticator.client_secret = read_secret(oidc["client_secret_file"], "auth.oidc.client_secret_file")
        c.TwinhubOIDCAuthenticator.authorize_url = oidc["authorize_url"]
        c.TwinhubOIDCAuthenticator.token_url = oidc["token_url"]
        c.TwinhubOIDCAuthenticator.userdata_url = oidc["userdata_url"]
        if oidc["callback_url"]:
            c.TwinhubOIDCAuthenticator.oauth_callback_url = oidc["callback_url"]
        if oidc["ca_file"]:
            c.TwinhubOIDCAuthenticator.http_request_kwargs = {"ca_certs": oidc["ca_file"]}
        c.TwinhubOIDCAuthenticator.validate_server_cert = True
        # The authorization code flow with PKCE (S256) and state.
        c.TwinhubOIDCAuthenticator.enable_pkce = True
        # The hub's name from a readable claim, bound to the identity claim
        # at its first login (hubconfig.provider); names as the platform allows them.
        c.TwinhubOIDCAuthenticator.identity_claim = oidc["identity_claim"]
        c.TwinhubOIDCAuthenticator.username_claim = oidc["username_claim"]
        c.Authenticator.username_pattern = f"^{names.PATTERN}$"
        c.TwinhubOIDCAuthenticator.scope = list(oidc["scope"])
        # The provider's groups claim decides (allowed and admin groups), and
        # the hub's groups follow it (oauthenticator 17 needs manage_groups for both).
        c.TwinhubOIDCAuthenticator.manage_groups = True
        c.TwinhubOIDCAuthenticator.allowed_groups = set(auth["allowed_groups"])
        c.TwinhubOIDCAuthenticator.admin_groups = set(auth["admin_groups"])
        c.TwinhubOIDCAuthenticator.auth_state_groups_key = f"oauth_user.{oidc['groups_claim']}"
        # Tokens kept (encrypted with the crypt key, hub.crypt_key_file) so
        # notebooks can call other services as their user (the HBP token
        # service); checked and refreshed every refresh_age and before each spawn.
        c.TwinhubOIDCAuthenticator.enable_auth_state = True
        c.TwinhubOIDCAuthenticator.refresh_pre_spawn = True
        c.Authenticator.auth_refresh_age = oidc["refresh_age"]
        c.TwinhubOIDCAuthenticator.token_min_lifetime = oidc["token_min_lifetime"]
        # JupyterHub's `server` role, plus reading the user's own tokens
        # (twinhub-token in the notebook image asks /hub/api/user for them).
        c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", AUTH_STATE_SCOPE]


# The access token a notebook may read (HBP's token service): its own
# user's auth state, nobody else's. Users hold it (the `user` role,
# hubconfig.services) and their servers' tokens get it (server_token_scopes).
AUTH_STATE_SCOPE = "admin:auth_state!user"


def user_scopes(cfg: dict[str, Any]) -> list[str]:
    """Scopes every user holds for their own tokens (OIDC: reading their own auth state)."""
    return [AUTH_STATE_SCOPE] if cfg["auth"]["type"] == "oidc" else []


def group_dn(ldap: dict[str, Any], group: str) -> str:
    """A group's DN from its name (auth.ldap.group_dn_template)."""
    from ldap3.utils.dn import escape_rdn

    return ldap["group_dn_template"].format(group=escape_rdn(group))
