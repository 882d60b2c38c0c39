"""Where things are defined: the checks that would find a second copy.

Issue 14 gave each platform fact one definition (roles/twinhub) and the lab,
tests and benches one toolkit (tools/). These fail when a copy comes back.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_FILES = [
    p
    for d in ("roles", "playbooks", "inventories")
    for p in sorted((ROOT / d).rglob("*"))
    if p.is_file() and p.suffix in {".yml", ".j2", ".py", ".lua", ".conf"} and not p.is_relative_to(ROOT / "roles" / "twinhub")
]

# A platform fact written outside roles/twinhub: (what, pattern, where it may appear).
FACTS = [
    ("the hub API port", r"\b8081\b", set()),
    ("the notebook network", r"twinhub-notebooks", set()),
    ("the hub uid", r"\b990\b", set()),
    ("a host's platform address", r"default_ipv4'\]\['address|default_ipv4\.address", set()),
    ("the mode's default", r"twinhub_mode\s*\|\s*default", set()),
    ("the preferred hub's fallback", r"groups\[['\"]hubs['\"]\]\s*(\|\s*first|\[0\])", set()),
    # The in-container port of the hub's proxy is the hub image's, named once in the hub role.
    ("the hub port", r"\b8000\b", {"roles/hub/vars/main.yml"}),
]


@pytest.mark.parametrize(("what", "pattern", "allowed"), FACTS, ids=[f[0] for f in FACTS])
def test_platform_fact_is_defined_once(what, pattern, allowed):
    found = {str(p.relative_to(ROOT)) for p in DEPLOY_FILES if re.search(pattern, p.read_text(errors="replace"))}
    assert found <= allowed, f"{what} written outside roles/twinhub (read the twinhub_* fact instead): {sorted(found - allowed)}"


def test_bench_and_tools_use_the_lab_toolkit_not_the_tests():
    offenders = [
        str(p.relative_to(ROOT))
        for d in ("bench", "tools")
        for p in sorted((ROOT / d).glob("*.py"))
        if re.search(r"""ROOT\s*/\s*["']tests["']""", p.read_text())
    ]
    assert not offenders, f"reach into tests/ (move the helper into tools/): {offenders}"


@pytest.mark.parametrize("inventory", sorted(p.name for p in (ROOT / "inventories").iterdir() if p.is_dir()))
def test_the_platform_ca_is_kept_where_git_ignores_it(inventory):
    """The CA's key must never be committed with a site's inventory: pki_ca_dir lies under .secrets/."""
    import subprocess

    import yaml

    settings = {}
    for path in sorted((ROOT / "inventories" / inventory / "group_vars").rglob("*.yml")):
        settings.update(yaml.safe_load(path.read_text()) or {})
    where = settings["pki_ca_dir"]
    # As Ansible expands it, with inventory_dir and the lab's lab_secrets.
    where = where.replace("{{ inventory_dir }}", str(ROOT / "inventories" / inventory))
    where = where.replace("{{ inventory_dir | basename }}", inventory)
    where = re.sub(r"\{\{\s*lab_secrets\s*\}\}", settings.get("lab_secrets", ""), where)
    where = where.replace("{{ inventory_dir }}", str(ROOT / "inventories" / inventory))
    resolved = Path(where).resolve()
    assert resolved.is_relative_to(ROOT / ".secrets"), f"{inventory}: pki_ca_dir is {resolved}"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(resolved / "ca.key")], cwd=ROOT)
    assert ignored.returncode == 0, f"{inventory}: git does not ignore {resolved}/ca.key"
