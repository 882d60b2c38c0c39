"""Jinja filters from the platform's own code.

    {{ 'john.doe' | twinhub_user_dir }}  ->  john-2edoe
    {{ owncloud_users | map('twinhub_user_dir', 'owncloud_users') }}  (a bad name names the setting)
    {{ 'John Doe' | twinhub_user_name_problem }}  ->  why the name is refused ('' if it is not)

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


class FilterModule:
    def filters(self):
        return {"twinhub_user_dir": twinhub_user_dir, "twinhub_user_name_problem": twinhub_user_name_problem}
