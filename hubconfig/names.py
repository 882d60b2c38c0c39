"""One spelling of a user's name outside JupyterHub, and the names allowed.

JupyterHub keeps a user's name as logged in (lowercased). Everything the
platform names after a user outside the hub's database (the home directory,
``shared/published/<user>``, the Swarm service, the Kubernetes PVC subPath,
log fields) uses one spelling of it: DockerSpawner's escaping, the same
spelling DockerSpawner already gives ``{username}`` in volume and object
names. It keeps ``[a-z0-9]`` and writes every other character as ``-`` and
its hex code, so ``john.doe`` is ``john-2edoe`` and ``a-2eb`` is
``a-2d2eb``: two names never share a spelling. A name made of letters and
digits only is its own spelling, so those users' homes stay where they are.

KubeSpawner's ``{escaped_username}`` is the same function (escapism with
``-``, lowercase letters and digits kept); a test holds the two together.
"""

from __future__ import annotations

import re

# What a user may be called: lowercase letters, digits and . _ - @,
# starting and ending with a letter or digit (first.last and e-mail names).
# JupyterHub lowercases names before it checks them against this.
PATTERN = r"[a-z0-9](?:[a-z0-9._@-]*[a-z0-9])?"
# The escaped name is part of a Swarm service name (63 characters at most,
# with the name prefix and a dash) and of a DNS label.
MAX_ESCAPED = 48
RULE = (
    "lowercase letters, digits and . _ - @, starting and ending with a letter or digit,"
    f" at most {MAX_ESCAPED} characters once escaped (each character other than a-z 0-9 counts 3)"
)


def escape(name: str) -> str:
    """The spelling of a user's name outside the hub (DockerSpawner's escaping)."""
    # Imported here: the schema (and `python -m hubconfig.leader`) import
    # this module and must not pay for DockerSpawner's import.
    from dockerspawner import DockerSpawner

    return DockerSpawner._escape(name)


def problem(name: str) -> str | None:
    """Why `name` is not an allowed user name, or None when it is."""
    if not re.fullmatch(PATTERN, name):
        return f"{name!r} is not an allowed user name: expected {RULE}"
    if len(escaped := escape(name)) > MAX_ESCAPED:
        return f"{name!r} is {len(escaped)} characters once escaped ({escaped}): expected {RULE}"
    return None


def apply(c, cfg) -> None:
    """Refuse other names at login, before a user record exists."""
    c.Authenticator.username_pattern = f"^{PATTERN}$"

    def refuse_long_names(authenticator, handler, authentication):
        # username_pattern cannot count the escaped length: refuse here (a
        # None authentication is a failed login) with the reason in the log.
        if authentication and (why := problem(authentication["name"])):
            authenticator.log.warning("login refused: %s", why)
            return None
        return authentication

    c.Authenticator.post_auth_hook = refuse_long_names
