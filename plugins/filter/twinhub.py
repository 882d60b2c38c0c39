"""Jinja filters from the platform's own code.

    {{ 'john.doe' | twinhub_user_dir }}  ->  john-2edoe
    {{ owncloud_users | map('twinhub_user_dir', 'owncloud_users') }}  (a bad name names the setting)
    {{ 'John Doe' | twinhub_user_name_problem }}  ->  why the name is refused ('' if it is not)
    {{ password | twinhub_bcrypt('monitoring proxy ops') }}  ->  $2b$10$... (the same for the same seed)

The spelling of a user's name for homes and services is hubconfig.names'
(DockerSpawner's escaping): written once, so Ansible imports it rather than
escaping a second way in Jinja.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))


def twinhub_user_dir(name: str, setting: str = "twinhub_user_dir") -> str:
    """`setting`: the variable the name came from, for the refusal message."""
    from ansible.errors import AnsibleFilterError

    from hubconfig import names

    if why := names.problem(str(name)):
        raise AnsibleFilterError(f"{setting}: {why}")
    return names.escape(str(name))


def twinhub_user_name_problem(name: object) -> str:
    """Why the platform refuses `name` as a user's name, or '' (for assert's fail_msg)."""
    from hubconfig import names

    return (names.problem(name) or "") if isinstance(name, str) else f"{name!r} is not a string"


def twinhub_bcrypt(password: str, seed: str, rounds: int = 10) -> str:
    """bcrypt hash of password with a salt derived from seed (where the hash is used and for whom).

    Ansible's password_hash draws a random salt, so every run would write a
    new file and restart what reads it; a salt from the seed keeps reruns
    unchanged. A salt need not be secret, only not shared: the seed names
    the host, the service and the user. The hashing is passlib's (via
    password_hash).
    """
    import hashlib

    from ansible.plugins.filter.core import get_encrypted_password

    # bcrypt salts are 22 characters of ./A-Za-z0-9 whose last one carries
    # only 2 bits: 21 hex characters (all in that alphabet) and '.'.
    salt = hashlib.sha256(f"twinhub {seed}".encode()).hexdigest()[:21] + "."
    return get_encrypted_password(str(password), "bcrypt", salt=salt, rounds=int(rounds))


class FilterModule:
    def filters(self):
        return {
            "twinhub_user_dir": twinhub_user_dir,
            "twinhub_user_name_problem": twinhub_user_name_problem,
            "twinhub_bcrypt": twinhub_bcrypt,
        }
