"""Every role documents every variable: argument_specs and defaults agree.

The same check prometheus-community/ansible runs in CI, plus what twinhub
adds: the validate entry point equals main, each role has a Molecule
scenario and a validate task file.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())


def load(path: Path):
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_match_defaults(role):
    defaults = load(ROOT / "roles" / role / "defaults" / "main.yml")
    specs = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]
    # twinhub has no `main` entry point (its argument_specs.yml says why).
    options = specs.get("main", specs["validate"])["options"]
    assert sorted(options) == sorted(defaults), (
        f"{role}: only in defaults {sorted(set(defaults) - set(options))}, "
        f"only in argument_specs {sorted(set(options) - set(defaults))}"
    )
    for name, spec in options.items():
        assert spec.get("description"), f"{role}: {name} has no description"
        assert spec.get("default") == defaults[name], f"{role}: default of {name} differs"


@pytest.mark.parametrize("role", ROLES)
def test_variables_are_prefixed_with_the_role_name(role):
    defaults = load(ROOT / "roles" / role / "defaults" / "main.yml")
    assert all(k.startswith(f"{role}_") for k in defaults), sorted(defaults)


@pytest.mark.parametrize("role", ROLES)
def test_validate_entry_point_checks_the_same_options(role):
    specs = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]
    main = specs.get("main", specs["validate"])
    assert specs.get("validate") == main
    assert all(spec == main for spec in specs.values())
    assert (ROOT / "roles" / role / "tasks" / "validate.yml").exists()


@pytest.mark.parametrize("role", ROLES)
def test_role_has_a_molecule_scenario_with_tests(role):
    scenario = ROOT / "molecule" / role
    assert (scenario / "molecule.yml").exists()
    assert list((scenario / "tests").glob("test_*.py")), f"{role}: no testinfra tests"


def test_every_role_is_validated_by_the_validate_playbook():
    play = load(ROOT / "playbooks" / "validate.yml")[1]
    planned = [step["role"] for step in play["vars"]["validate_plan"]]
    for role in ROLES:
        assert role in planned, f"playbooks/validate.yml does not validate {role}"
    assert len(planned) == len(set(planned)), planned


def test_site_validates_before_anything_else():
    site = load(ROOT / "playbooks" / "site.yml")
    assert site[0]["ansible.builtin.import_playbook"] == "validate.yml"
    validate = load(ROOT / "playbooks" / "validate.yml")
    # The facts play comes first (it changes nothing: facts and addresses).
    assert validate[0]["ansible.builtin.import_playbook"] == "facts.yml"
    plays = load(ROOT / "playbooks" / "facts.yml") + validate[1:]
    assert all(play.get("any_errors_fatal") is True for play in plays)


def test_variable_reference_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_molecule_scenarios_name_their_hosts_uniquely():
    # Molecule's docker driver names containers after the platforms: two
    # scenarios sharing a name would destroy each other's hosts when they
    # run at the same time (./twinhub molecule runs two or three at once).
    def platform_names(scenario: str) -> list[str]:
        data = yaml.safe_load((ROOT / "molecule" / scenario / "molecule.yml").read_text()) or {}
        platforms = data.get("platforms")
        if platforms is None:  # the shared config's one host, named after the scenario
            return [scenario]
        return [str(p["name"]) for p in platforms]

    seen: dict[str, str] = {}
    for scenario in sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml")):
        for name in platform_names(scenario):
            assert name not in seen, f"host {name} is in scenarios {seen[name]} and {scenario}"
            seen[name] = scenario
    shared = yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text())["platforms"]
    assert [p["name"] for p in shared] == ["${MOLECULE_SCENARIO_NAME}"]


def test_molecule_queue_holds_every_scenario_once_longest_first():
    sys.path.insert(0, str(ROOT / "tools"))
    from molecule_queue import SECONDS_IN_CI, queue

    scenarios = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
    order = queue(scenarios)
    assert sorted(order) == scenarios
    # The timing table names only scenarios that exist (a removed one is
    # taken out of it) and orders the known ones longest first; a new one
    # counts as long and runs early.
    assert set(SECONDS_IN_CI) <= set(scenarios)
    known = [SECONDS_IN_CI[s] for s in order if s in SECONDS_IN_CI]
    assert known == sorted(known, reverse=True)
    assert queue(["nbviewer", "a-new-one", "proxy"]) == ["a-new-one", "proxy", "nbviewer"]


def test_molecule_hosts_are_started_with_the_lab_flags_once_each(monkeypatch):
    # tools/molecule_hosts.py starts Molecule's hosts like tools/lab.py starts
    # the lab's: the lab's systemd flags, node flags for the lab-node image,
    # and what a platform adds; a flag the platform repeats is given once
    # (Docker refuses a second --tmpfs /run).
    import molecule_hosts
    from lab import NODE_RUN_FLAGS, SYSTEMD_RUN_FLAGS

    monkeypatch.setenv("TWINHUB_IMAGE_LAB_NODE", "lab-node:1")
    platform = {
        "name": "nfs-server",
        "image": "lab-node:1",
        "tmpfs": ["/run", "/run/lock"],
        "capabilities": ["SYS_ADMIN", "DAC_READ_SEARCH"],
        "volumes": ["/sys/fs/cgroup:/sys/fs/cgroup:rw"],
        "networks": [{"name": "net-a"}, {"name": "net-b"}],
    }
    args = molecule_hosts.run_args(platform)
    pairs = list(itertools.pairwise(args))
    assert pairs.count(("--tmpfs", "/run")) == 1
    assert pairs.count(("--cap-add", "SYS_ADMIN")) == 1
    assert ("--cap-add", "DAC_READ_SEARCH") in pairs
    assert ("--network", "net-a") in pairs
    assert args[-2:] == ["lab-node:1", "/sbin/init"]
    text = " ".join(args)
    assert " ".join(SYSTEMD_RUN_FLAGS) in text
    assert " ".join(NODE_RUN_FLAGS) in text
    host = molecule_hosts.run_args({"name": "db", "image": "lab-host:1"})
    assert " ".join(NODE_RUN_FLAGS) not in " ".join(host)


def test_hub_role_sets_the_keys_the_schema_marks_for_it():
    # hubconfig's schema marks what the hub role sets (x-twinhub-managed-by:
    # ansible); the role refuses those keys in hub_platform_config, so the
    # two lists must agree. Whole sections the role renders only when a
    # feature is on (services, storage) are conditional and not marked.
    from hubconfig.schema import managed_keys

    def leaves(node: dict, prefix: str = ""):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    managed = load(ROOT / "roles" / "hub" / "vars" / "main.yml")["hub_managed_config"]
    always = {path for path in leaves(managed) if "." in path}
    assert always == set(managed_keys("ansible"))


def secret_variables() -> set[str]:
    """Every role variable its argument spec marks no_log (passwords, keys, tokens)."""
    found = set()
    for role in ROLES:
        for spec in load(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"].values():
            found |= {name for name, option in spec["options"].items() if option.get("no_log")}
    return found


def template_tasks(role: str):
    """(task file, task) for every template task of a role, blocks included."""

    def walk(tasks):
        for task in tasks or []:
            yield task
            for key in ("block", "rescue", "always"):
                yield from walk(task.get(key))

    for path in sorted((ROOT / "roles" / role / "tasks").glob("*.yml")):
        for task in walk(load(path) if isinstance(load(path), list) else []):
            if "ansible.builtin.template" in task:
                yield path, task


def test_templates_that_carry_secrets_never_show_them_in_a_diff():
    """`--diff` prints a changed template whole: one holding a secret must say diff: false (or no_log)."""
    import fnmatch
    import re

    secrets = secret_variables()
    assert {"proxy_keepalived_password", "monitoring_alert_email_password"} <= secrets
    pattern = re.compile(r"\b(" + "|".join(sorted(secrets)) + r")\b")
    missing = []
    for role in ROLES:
        tasks = list(template_tasks(role))
        # A templated src ({{ item }}.env.j2) stands for the templates no other task names.
        named = {str(t["ansible.builtin.template"]["src"]) for _, t in tasks}
        for path, task in tasks:
            src = str(task["ansible.builtin.template"]["src"])
            glob = re.sub(r"\{\{.*?\}\}", "*", src)
            files = [
                f for f in (ROOT / "roles" / role / "templates").glob("*")
                if fnmatch.fnmatch(f.name, glob) and (f.name == src or f.name not in named)
            ]  # fmt: skip
            if any(pattern.search(f.read_text()) for f in files) and not (task.get("diff") is False or task.get("no_log")):
                missing.append(f"{path.relative_to(ROOT)}: {task['name']}")
    assert not missing, missing


def test_firewall_reads_the_ports_the_owning_roles_set():
    # The firewall's table (roles/firewall/vars/main.yml) reads each port
    # setting with its role's default: the two must agree, or a site that
    # keeps the default would open the wrong port.
    text = (ROOT / "roles" / "firewall" / "vars" / "main.yml").read_text()
    uses = re.findall(r"(\w+) \| default\(([^()]*)\)", text)
    defaults = {}
    for path in (ROOT / "roles").glob("*/defaults/main.yml"):
        defaults.update(load(path) or {})
    checked = 0
    for name, default in uses:
        if name.startswith("firewall_"):
            continue
        assert name in defaults, f"roles/firewall/vars/main.yml reads {name}, which no role sets"
        assert yaml.safe_load(default) == defaults[name], (
            f"{name}: the firewall assumes {default}, its role's default is {defaults[name]!r}"
        )
        checked += 1
    assert checked >= 12


def test_firewall_ports_are_numbers_or_ranges():
    import importlib.util

    from ansible.errors import AnsibleFilterError

    spec = importlib.util.spec_from_file_location("fw", ROOT / "roles" / "firewall" / "filter_plugins" / "firewall.py")
    fw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fw)
    rule = {"name": "servers", "tcp": ["32768-60999", 443, "443", "22"]}
    assert fw._ports(rule, "tcp") == ["22", "443", "32768-60999"]
    for bad in ("60999-32768", "0-10", "1024-70000", "http", "1-2-3"):
        with pytest.raises(AnsibleFilterError, match=f"tcp port '{bad}' is not a port"):
            fw._ports({"name": "servers", "tcp": [bad]}, "tcp")
