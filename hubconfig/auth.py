"""Who may log in: dummy (lab only), PAM, LDAP or OpenID Connect.

Never open sign-up: nobody gets in unless listed in allowed_users or a
member of allowed_groups (or an admin); allow_all stays False.
"""

from __future__ import annotations

from typing import Any

from hubconfig.secrets import read_secret

CLASSES = {
    "dummy": "jupyterhub.auth.DummyAuthenticator",
    "pam": "jupyterhub.auth.PAMAuthenticator",
    "ldap": "ldapauthenticator.LDAPAuthenticator",
    "oidc": "oauthenticator.generic.GenericOAuthenticator",
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
    elif kind == "ldap":
        ldap = auth["ldap"]
        c.LDAPAuthenticator.server_address = ldap["server_address"]
        c.LDAPAuthenticator.server_port = ldap["server_port"]
        c.LDAPAuthenticator.tls_strategy = "on_connect" if ldap["use_ssl"] else "before_bind"
        c.LDAPAuthenticator.bind_dn_template = ldap["bind_dn_template"]
        c.LDAPAuthenticator.user_search_base = ldap["user_search_base"]
        c.LDAPAuthenticator.user_attribute = ldap["user_attribute"]
        c.LDAPAuthenticator.lookup_dn = ldap["lookup_dn"]
        c.LDAPAuthenticator.allowed_groups = list(auth["allowed_groups"])
    elif kind == "oidc":
        oidc = auth["oidc"]
        c.GenericOAuthenticator.client_id = oidc["client_id"]
        c.GenericOAuthenticator.client_secret = read_secret(oidc["client_secret_file"], "auth.oidc.client_secret_file")
        c.GenericOAuthenticator.authorize_url = oidc["authorize_url"]
        c.GenericOAuthenticator.token_url = oidc["token_url"]
        c.GenericOAuthenticator.userdata_url = oidc["userdata_url"]
        if oidc["callback_url"]:
            c.GenericOAuthenticator.oauth_callback_url = oidc["callback_url"]
        c.GenericOAuthenticator.username_claim = oidc["username_claim"]
        c.GenericOAuthenticator.scope = list(oidc["scope"])
        c.GenericOAuthenticator.allowed_groups = set(auth["allowed_groups"])
        c.GenericOAuthenticator.auth_state_groups_key = f"oauth_user.{oidc['groups_claim']}"
        # Keep the access token (encrypted with the crypt key) so notebooks
        # can call other services as the user (the HBP token service case).
        c.GenericOAuthenticator.enable_auth_state = True
        c.GenericOAuthenticator.refresh_pre_spawn = True
