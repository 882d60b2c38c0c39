"""Bad inventories fail in playbooks/validate.yml, before any host changes.

validate.yml is site.yml's first playbook: a bad inventory must make it fail, naming the setting; a good one
passes it. It runs against a throwaway container (validation changes
nothing; the valid-inventory tests check so). Running site.yml --check
instead would parse every later play for nothing: ~15% of each run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml
from support import ansible_playbook, image


def facts_cache(container: str) -> Path:
    """Where runs against a container keep its hosts' facts.

    The hosts of one container have the same facts in every test: gathered
    by the first run, read by the others (4-5 s of a 15 s run saved). A
    directory per container, so a host name (p1) never brings another
    container's facts (the bullseye host's) into a test.
    """
    return Path(tempfile.gettempdir()) / "twinhub-validate-facts" / container


def remove_container(name: str) -> None:
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    shutil.rmtree(facts_cache(name), ignore_errors=True)


def start_container(extra: list[str]) -> str:
    name = f"twinhub-validate-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "--label",
            "io.twinhub.test=1",
            *extra,
            image("lab-host"),
            # Removed by the fixture; the hour only bounds a container left
            # behind by a killed run (600 s ran out mid-module on a loaded machine).
            "sleep",
            "3600",
        ],
        check=True,
        capture_output=True,
    )
    return name


@pytest.fixture(scope="module")
def target():
    name = start_container([])
    yield name
    remove_container(name)


@pytest.fixture(scope="module")
def bullseye_target(tmp_path_factory):
    """A host that says it is Debian 11, which twinhub does not support."""
    d = tmp_path_factory.mktemp("bullseye")
    (d / "os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nNAME="Debian GNU/Linux"\nVERSION_ID="11"\n'
        'VERSION="11 (bullseye)"\nVERSION_CODENAME=bullseye\nID=debian\n'
    )
    (d / "debian_version").write_text("11.9\n")
    name = start_container(["-v", f"{d}/os-release:/usr/lib/os-release:ro", "-v", f"{d}/debian_version:/etc/debian_version:ro"])
    yield name
    remove_container(name)


def inventory(tmp_path: Path, container: str, groups: dict[str, list[str]], hostvars=None) -> Path:
    """An inventory whose hosts all live in one container."""
    hostvars = hostvars or {}
    children = {
        g: {"hosts": {h: {"ansible_host": container, **hostvars.get(h, {})} for h in hosts}} for g, hosts in groups.items()
    }
    site = {"ansible_connection": "community.docker.docker", "twinhub_hub_name": "jupyter.example.org"}
    data = {"all": {"vars": site, "children": children}}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_site(inv: Path) -> subprocess.CompletedProcess:
    """site.yml's validation (its first playbook), with the facts of the inventory's (first) container."""
    hosts = (h for g in yaml.safe_load(inv.read_text())["all"]["children"].values() for h in g["hosts"].values())
    return ansible_playbook("-i", str(inv), "playbooks/validate.yml", facts_cache=facts_cache(next(hosts)["ansible_host"]))


@pytest.fixture(autouse=True)
def ansibles_own_strategy(monkeypatch):
    # Mitogen (ansible.cfg) bootstraps a context per host, which a whole
    # site.yml run pays back and a validation-only run never does: 13 s
    # a run for a five-host inventory, 9 s with Ansible's linear strategy.
    monkeypatch.setenv("ANSIBLE_STRATEGY", "linear")


def assert_stopped_in_validation(result: subprocess.CompletedProcess, *needles: str) -> str:
    out = result.stdout + result.stderr
    assert result.returncode != 0, "validation let the inventory through:\n" + out
    for needle in needles:
        assert needle in out, f"{needle!r} not in output:\n{out}"
    return out


def test_valid_inventory_passes_validation(tmp_path, target):
    inv = inventory(tmp_path, target, {"swarm_managers": ["m1"], "swarm_workers": ["w1", "w2"]})
    result = run_site(inv)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workers_without_a_manager(tmp_path, target):
    inv = inventory(tmp_path, target, {"swarm_workers": ["w1", "w2"]})
    assert_stopped_in_validation(run_site(inv), "swarm_managers", "needs at least one manager", "w1, w2")


def test_even_number_of_managers(tmp_path, target):
    inv = inventory(tmp_path, target, {"swarm_managers": ["m1", "m2"], "swarm_workers": ["w1"]})
    assert_stopped_in_validation(run_site(inv), "has 2 managers", "expected an odd number")


def test_wrong_variable_type(tmp_path, target):
    inv = inventory(tmp_path, target, {"swarm_managers": ["m1"]}, {"m1": {"docker_log_max_file": "many"}})
    assert_stopped_in_validation(run_site(inv), "docker_log_max_file", "int")


def test_value_not_among_choices(tmp_path, target):
    inv = inventory(tmp_path, target, {"swarm_managers": ["m1"]}, {"m1": {"docker_source": "snap"}})
    assert_stopped_in_validation(run_site(inv), "docker_source", "distro, upstream")


def test_live_restore_on_a_swarm_node(tmp_path, target):
    inv = inventory(tmp_path, target, {"swarm_managers": ["m1"]}, {"m1": {"docker_live_restore": True}})
    assert_stopped_in_validation(run_site(inv), "docker_live_restore=true", "expected false")


def test_unsupported_operating_system(tmp_path, bullseye_target):
    inv = inventory(tmp_path, bullseye_target, {"proxy": ["p1"]})
    assert_stopped_in_validation(run_site(inv), "p1 runs Debian 11", "ansible_distribution", '"Debian": ["12"]')


def test_one_bad_host_stops_every_host(tmp_path, target, bullseye_target):
    """any_errors_fatal: a good host is not touched when another is bad."""
    inv = inventory(tmp_path, target, {"proxy": ["good"]})
    data = yaml.safe_load(inv.read_text())
    data["all"]["children"]["legacy"] = {"hosts": {"old": {"ansible_host": bullseye_target}}}
    inv.write_text(yaml.safe_dump(data))
    out = assert_stopped_in_validation(run_site(inv), "old runs Debian 11")
    assert "Gathering Facts" in out


STORAGE_OK = {
    "nfs_server_homedir_token": "t" * 40,
    "backup_password": "p" * 20,
}


def test_valid_storage_inventory_passes_validation(tmp_path, target):
    inv = inventory(
        tmp_path, target, {"storage": ["s1"], "hubs": ["h1"], "db": ["d1"]}, {"s1": STORAGE_OK, "h1": HUB_SECRETS, "d1": DB_OK}
    )
    result = run_site(inv)
    assert result.returncode == 0, result.stdout + result.stderr


def test_export_path_outside_the_storage_root(tmp_path, target):
    exports = {"home": {"path": "../../etc", "mode": "0755"}, "shared": {"path": "shared", "mode": "2775"}}
    inv = inventory(tmp_path, target, {"storage": ["s1"]}, {"s1": {**STORAGE_OK, "nfs_server_exports": exports}})
    assert_stopped_in_validation(run_site(inv), "nfs_server_exports.home.path=../../etc", "stays inside it")


def test_unknown_nfs_implementation(tmp_path, target):
    inv = inventory(tmp_path, target, {"storage": ["s1"]}, {"s1": {**STORAGE_OK, "nfs_server_implementation": "samba"}})
    assert_stopped_in_validation(run_site(inv), "nfs_server_implementation", "ganesha, kernel", "samba")


def test_missing_backup_password(tmp_path, target):
    inv = inventory(tmp_path, target, {"storage": ["s1"]}, {"s1": {"nfs_server_homedir_token": "t" * 40}})
    assert_stopped_in_validation(run_site(inv), "backup_password is empty", "from Ansible Vault")


def test_owncloud_user_name_outside_the_rules(tmp_path, target):
    oc = {"owncloud_admin_password": "a" * 16, "owncloud_db_password": "d" * 20, "owncloud_users": ["alice", "John Doe"]}
    inv = inventory(tmp_path, target, {"owncloud": ["o1"]}, {"o1": oc})
    assert_stopped_in_validation(run_site(inv), "owncloud_users: 'John Doe' is not an allowed user name", "lowercase letters")


HUB_SECRETS = {
    "hub_image": "registry.example.org:5000/twinhub/hub:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "relay_image": "registry.example.org:5000/twinhub/relay:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "hub_cookie_secret": "ab" * 32,
    "hub_crypt_key": "cd" * 32,
    "hub_proxy_token": "p" * 40,
    "hub_prometheus_token": "m" * 40,
    "hub_db_password": "d" * 24,
    "hub_platform_config": {
        "auth": {"type": "pam", "allowed_groups": ["jupyter"]},
        "spawner": {
            "images": {
                "notebook": "registry.example.org:5000/twinhub/notebook:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            },
            "profiles": {"small": {"display_name": "Small", "image": "notebook"}},
        },
    },
}
DB_OK = {
    "postgres_databases": [{"name": "jupyterhub", "owner": "jupyterhub", "password": "d" * 24}],
    # The database host's dumps go into the backup repository: one it reaches.
    "backup_repository": "sftp:backup@backup.example.org:/srv/restic",
    "backup_password": "b" * 24,
}


def platform_inventory(tmp_path, target, hub_vars=None, db_vars=None, hub_b_vars=None, platform=None) -> Path:
    """The platform's hosts; `platform` are inventory-wide settings (group_vars/all)."""
    groups = {"proxy": ["p1"], "hubs": ["h1", "h2"], "db": ["d1"], "registry": ["r1"]}
    everywhere = {"pki_ca_dir": str(tmp_path / "ca"), **(platform or {})}
    hostvars = {
        "p1": everywhere,
        "h1": {**everywhere, **HUB_SECRETS, **(hub_vars or {})},
        "h2": {**everywhere, **HUB_SECRETS, **(hub_vars or {}), **(hub_b_vars or {})},
        "d1": {**everywhere, **DB_OK, **(db_vars or {})},
        # Pushes go to the registry host's loopback push side with this login.
        "r1": {**everywhere, "registry_push_password": "r" * 24},
    }
    return inventory(tmp_path, target, groups, hostvars)


def test_valid_platform_inventory_passes_validation(tmp_path, target):
    inv = platform_inventory(tmp_path, target)
    result = run_site(inv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "ca").exists(), "validation made the CA: it must change nothing"


def test_hubs_with_different_secrets(tmp_path, target):
    inv = platform_inventory(tmp_path, target, hub_b_vars={"hub_cookie_secret": "ef" * 32})
    assert_stopped_in_validation(run_site(inv), "hub_cookie_secret differs between the hubs", "expected one value")


def test_platform_config_refused_by_hubconfig(tmp_path, target):
    cfg = yaml.safe_load(yaml.safe_dump(HUB_SECRETS["hub_platform_config"]))
    cfg["spawner"]["profiles"]["small"]["image"] = "docker.io/anything:latest"
    cfg["spawner"]["pull_policy"] = "sometimes"
    inv = platform_inventory(tmp_path, target, hub_vars={"hub_platform_config": cfg})
    assert_stopped_in_validation(
        run_site(inv), "spawner.pull_policy: 'sometimes' is not allowed", "expected one of ['ifnotpresent', 'always', 'never']"
    )


def test_platform_config_setting_what_the_hub_role_sets(tmp_path, target):
    # The role's value would silently win over the inventory's: refuse it.
    cfg = yaml.safe_load(yaml.safe_dump(HUB_SECRETS["hub_platform_config"]))
    cfg["hub"] = {"db_url": "sqlite:///tmp/hub.sqlite"}
    inv = platform_inventory(tmp_path, target, hub_vars={"hub_platform_config": cfg})
    assert_stopped_in_validation(
        run_site(inv),
        'hub_platform_config.hub.db_url is "sqlite:///tmp/hub.sqlite"',
        "expected it left out of hub_platform_config",
    )


def test_switch_timeout_that_does_not_fit_in_the_hold(tmp_path, target):
    # A failed switch puts the old hub back while NGINX holds requests: 55 s
    # for the new hub plus the old one's restart would outlast the 60 s hold.
    inv = platform_inventory(tmp_path, target, hub_vars={"hub_switch_timeout": 55})
    assert_stopped_in_validation(
        run_site(inv), "hub_switch_timeout 55", "expected seconds from 5 to proxy_hold_timeout - 20 (40)"
    )


def test_public_name_without_a_dot_for_user_subdomains(tmp_path, target):
    inv = platform_inventory(tmp_path, target, platform={"twinhub_hub_name": "jupyter"})
    assert_stopped_in_validation(run_site(inv), 'twinhub_hub_name is "jupyter"', "with a dot", "wildcard certificate")


def test_single_origin_in_production_without_the_acknowledgement(tmp_path, target):
    inv = platform_inventory(tmp_path, target, platform={"twinhub_user_subdomains": False})
    assert_stopped_in_validation(
        run_site(inv), "hub.subdomain_host: empty in production", "hub.single_origin_acknowledged: true to accept that risk"
    )


def test_provided_certificate_that_does_not_cover_the_users_names(tmp_path, target):
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2",
         "-subj", "/CN=jupyter.example.org", "-addext", "subjectAltName=DNS:jupyter.example.org"],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = {"proxy_tls_mode": "provided", "proxy_tls_cert": crt.read_text(), "proxy_tls_key": key.read_text()}
    inv = platform_inventory(tmp_path, target, platform=tls)
    assert_stopped_in_validation(
        run_site(inv), "proxy_tls_cert does not cover *.jupyter.example.org", "DNS:*.jupyter.example.org"
    )


def test_weak_hub_secret(tmp_path, target):
    inv = platform_inventory(tmp_path, target, hub_vars={"hub_crypt_key": "not-hex"})
    assert_stopped_in_validation(run_site(inv), "hub_crypt_key bad", "64 hex characters")


def test_database_without_a_usable_password(tmp_path, target):
    dbs = [{"name": "jupyterhub", "owner": "jupyterhub", "password": "short"}]
    inv = platform_inventory(tmp_path, target, db_vars={"postgres_databases": dbs})
    assert_stopped_in_validation(run_site(inv), "postgres_databases[0]", "password 5 characters", "at least 16")


def test_hub_image_without_a_tag(tmp_path, target):
    inv = platform_inventory(tmp_path, target, hub_vars={"hub_image": "twinhub/hub"})
    assert_stopped_in_validation(run_site(inv), 'hub_image is "twinhub/hub"', "with a tag")


def test_hubs_without_a_database(tmp_path, target):
    inv = inventory(tmp_path, target, {"hubs": ["h1"]}, {"h1": HUB_SECRETS})
    assert_stopped_in_validation(run_site(inv), "hub_db_host is empty", "no db host")


def test_preferred_hub_that_is_not_a_hub(tmp_path, target):
    inv = platform_inventory(tmp_path, target, platform={"twinhub_preferred_hub": "h3"})
    assert_stopped_in_validation(run_site(inv), 'twinhub_preferred_hub is "h3"', 'expected one of the hubs group, ["h1", "h2"]')


def test_old_name_of_the_preferred_hub(tmp_path, target):
    inv = platform_inventory(tmp_path, target, platform={"twinhub_active_hub": "h1"})
    assert_stopped_in_validation(run_site(inv), 'twinhub_active_hub is set ("h1")', "renamed twinhub_preferred_hub")


def test_hub_api_port_set_for_the_hubs_only(tmp_path, target):
    # The relay and NGINX read the same port: a value in group_vars/hubs
    # alone would leave them on the old one.
    inv = platform_inventory(tmp_path, target, hub_vars={"twinhub_hub_api_port": 9081})
    assert_stopped_in_validation(run_site(inv), "twinhub_hub_api_port differs between hosts", "group_vars/all")


def test_mode_that_does_not_exist(tmp_path, target):
    inv = platform_inventory(tmp_path, target, platform={"twinhub_mode": "active-active"})
    assert_stopped_in_validation(run_site(inv), "twinhub_mode must be one of: failover, staging, got: active-active")


def test_notebook_image_by_tag_only(tmp_path, target):
    """Production references images by digest: a tag pushed again must not change what runs."""
    cfg = yaml.safe_load(yaml.safe_dump(HUB_SECRETS["hub_platform_config"]))
    cfg["spawner"]["images"]["notebook"] = "registry.example.org:5000/twinhub/notebook:1.0"
    inv = platform_inventory(tmp_path, target, hub_vars={"hub_platform_config": cfg})
    assert_stopped_in_validation(
        run_site(inv),
        'hub_platform_config.spawner.images.notebook is "registry.example.org:5000/twinhub/notebook:1.0"',
        "expected a reference by digest",
    )


def test_relay_image_missing(tmp_path, target):
    inv = platform_inventory(tmp_path, target, hub_vars={"relay_image": ""})
    assert_stopped_in_validation(run_site(inv), 'relay_image is ""', "images/relay")


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"proxy_client_max_body_size": "lots"}, ['proxy_client_max_body_size is "lots"', "NGINX size"]),
        # 0 is NGINX's "no limit": anyone could send any size to /hub/login.
        ({"proxy_hub_max_body_size": "0"}, ['proxy_hub_max_body_size is "0"', "at least one byte"]),
        (
            {"proxy_rate_limits": {"login": {"rate": "0r/s", "burst": 5}, "api": {"rate": "5r/s", "burst": 5},
                                   "token": {"rate": "1r/s", "burst": 1}}},
            ["proxy_rate_limits.login is", '"0r/s"', "1 or more requests like 5r/s"],
        ),
    ],
    ids=["upload-not-a-size", "hub-body-unlimited", "login-rate-zero"],
)  # fmt: skip
def test_proxy_request_limits_that_are_off_or_not_sizes(tmp_path, target, setting, expected):
    inv = platform_inventory(tmp_path, target, platform=setting)
    assert_stopped_in_validation(run_site(inv), *expected)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"firewall_operator_networks": ["10.0.0.0/33"]},
         ["firewall_operator_networks: '10.0.0.0/33' is not an IPv4 or IPv6 address or network", "Expected a list"]),
        ({"firewall_extra_rules": [{"name": "dask", "hosts": ["hubs"], "tcp": [87860], "from": ["proxy"]}]},
         ["firewall rule 'dask': tcp port 87860 is not a port (1-65535)"]),
    ],
    ids=["operator-network-not-a-cidr", "extra-rule-port-out-of-range"],
)  # fmt: skip
def test_firewall_settings_that_are_not_networks_or_ports(tmp_path, target, setting, expected):
    inv = platform_inventory(tmp_path, target, platform=setting)
    assert_stopped_in_validation(run_site(inv), *expected)


def test_hub_uid_taken_by_an_account_of_the_host(tmp_path):
    """A host account with the hub's uid would own the hub's secrets: refused before any change."""
    host = start_container([])
    try:
        subprocess.run(
            ["docker", "exec", host, "useradd", "--system", "--uid", "990", "metricsd"], check=True, capture_output=True
        )
        inv = platform_inventory(tmp_path, host)
        assert_stopped_in_validation(run_site(inv), "twinhub_hub_uid 990 is taken on h1", '"metricsd"')
    finally:
        remove_container(host)


def test_database_host_that_cannot_reach_the_backup_repository(tmp_path, target):
    inv = platform_inventory(tmp_path, target, db_vars={"backup_repository": "/srv/backup/restic"})
    assert_stopped_in_validation(
        run_site(inv), 'backup_repository is "/srv/backup/restic", a path on the storage host', "d1 is not a storage host"
    )


def test_staging_hub_sharing_the_database(tmp_path, target):
    inv = platform_inventory(tmp_path, target, platform={"twinhub_mode": "staging"})
    assert_stopped_in_validation(
        run_site(inv), 'hub_db_name is ["jupyterhub", "jupyterhub"]', "a database of its own for the staging hub"
    )


def test_staging_pair_with_its_own_database_passes(tmp_path, target):
    inv = platform_inventory(
        tmp_path, target, platform={"twinhub_mode": "staging"}, hub_b_vars={"hub_db_name": "jupyterhub_staging"}
    )
    result = run_site(inv)
    assert result.returncode == 0, result.stdout + result.stderr


# --- monitoring, publishing and log shipping ---
MONITORING_USERS = {"monitoring_web_users": {"prometheus": "p" * 24, "ops": "o" * 24}}


def monitored_inventory(tmp_path, target, monitoring=None, nbviewer=None, everywhere=None) -> Path:
    """The platform with monitoring on the proxy host and nbviewer on the registry host, as in the lab.

    (Hosts of their own cost each run their facts and every role's checks
    once more: ~70 s a run with seven hosts on this machine.)
    """
    inv = platform_inventory(tmp_path, target, platform=everywhere)
    data = yaml.safe_load(inv.read_text())
    base = {"ansible_host": target, "pki_ca_dir": str(tmp_path / "ca"), **(everywhere or {})}
    data["all"]["children"]["monitoring"] = {
        "hosts": {"p1": {**base, "monitoring_hub_metrics_token": "m" * 40, **MONITORING_USERS, **(monitoring or {})}}
    }
    data["all"]["children"]["nbviewer"] = {
        "hosts": {"r1": {**base, "nbviewer_server_name": "nbviewer.example.org", "nbviewer_image": "r.example.org/nbviewer:1",
                         **(nbviewer or {})}}
    }  # fmt: skip
    for hub in ("h1", "h2"):
        data["all"]["children"]["hubs"]["hosts"][hub]["hub_nbviewer_token"] = "n" * 40
    inv.write_text(yaml.safe_dump(data))
    return inv


def test_monitored_platform_passes_validation(tmp_path, target):
    inv = monitored_inventory(tmp_path, target)
    result = run_site(inv)
    assert result.returncode == 0, result.stdout + result.stderr


def test_webhook_receiver_without_a_url(tmp_path, target):
    inv = monitored_inventory(tmp_path, target, monitoring={"monitoring_alert_receiver": "webhook"})
    assert_stopped_in_validation(run_site(inv), 'monitoring_alert_webhook_url=""', "expected the http(s):// URL")


def test_alert_window_that_is_not_a_duration(tmp_path, target):
    windows = {"hub_down": "one minute", "no_hub_healthy": "30s", "failover": "0s", "proxy_down": "1m", "target_down": "5m",
               "spawn_failures": "0s", "spawn_slow": "15m", "storage_full": "5m", "backup_stale": "10m",
               "certificate_expiry": "1h"}  # fmt: skip
    inv = monitored_inventory(tmp_path, target, monitoring={"monitoring_alert_windows": windows})
    assert_stopped_in_validation(run_site(inv), "monitoring_alert_windows.hub_down=one minute", "Prometheus duration")


def test_monitoring_without_the_hub_metrics_token(tmp_path, target):
    inv = monitored_inventory(tmp_path, target, monitoring={"monitoring_hub_metrics_token": ""})
    assert_stopped_in_validation(run_site(inv), "monitoring_hub_metrics_token: empty", "hub_prometheus_token")


@pytest.mark.parametrize(
    "users",
    [{}, {"prometheus": "p" * 24, "ops": "short"}],
    ids=["nobody", "weak-password"],
)
def test_monitoring_open_to_anonymous_or_weak_logins(tmp_path, target, users):
    inv = monitored_inventory(tmp_path, target, monitoring={"monitoring_web_users": users})
    out = assert_stopped_in_validation(run_site(inv), "monitoring_web_users has", "16 or more characters")
    assert "p" * 24 not in out  # the passwords are never printed


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("jupyter.example.org", "nbviewer_server_name=jupyter.example.org is also a name of the hub"),
        # Among users' servers (<user>.jupyter.example.org), in the hub's cookie domain.
        ("nbviewer.jupyter.example.org", "nbviewer_server_name=nbviewer.jupyter.example.org is under the hub's name"),
    ],
    ids=["same-name", "under-the-hub"],
)
def test_nbviewer_on_or_under_the_hubs_name(tmp_path, target, name, expected):
    inv = monitored_inventory(
        tmp_path, target, nbviewer={"nbviewer_server_name": name},
        everywhere={"proxy_server_names": ["jupyter.example.org"]},
    )  # fmt: skip
    assert_stopped_in_validation(run_site(inv), expected)


def test_log_shipping_to_a_url_with_a_path(tmp_path, target):
    inv = platform_inventory(tmp_path, target, platform={"log_shipping_elasticsearch_urls": ["https://es.example.org:9200/logs"]})
    assert_stopped_in_validation(
        run_site(inv), 'log_shipping_elasticsearch_urls contains "https://es.example.org:9200/logs"', "with no path"
    )


def test_identity_provider_client_with_a_weak_secret(tmp_path, target):
    idp = {
        "lemonldap_portal_name": "login.example.org",
        "lemonldap_ldap_url": "ldaps://ldap.example.org",
        "lemonldap_ldap_people_base": "ou=people,dc=example,dc=org",
        "lemonldap_ldap_groups_base": "ou=groups,dc=example,dc=org",
        "lemonldap_ldap_search_dn": "cn=hub,ou=services,dc=example,dc=org",
        "lemonldap_ldap_search_password": "s" * 24,
        "lemonldap_session_key": "k" * 48,
        "lemonldap_clients": [
            {
                "name": "jupyterhub",
                "client_id": "hub",
                "client_secret": "short",
                "redirect_uris": ["https://jupyter.example.org/hub/oauth_callback"],
            }
        ],
    }
    inv = inventory(tmp_path, target, {"lemonldap": ["i1"]}, {"i1": {"pki_ca_dir": str(tmp_path / "ca"), **idp}})
    out = assert_stopped_in_validation(run_site(inv), "lemonldap_clients[0] is", "client_secret 5 characters", "32+ characters")
    assert "short" not in out.split("client_secret 5 characters")[0].rsplit("lemonldap_clients[0] is", 1)[1]


def test_accounts_from_a_directory_with_a_ca_that_is_not_one(tmp_path, target):
    sssd = {
        "sssd_ldap_uri": "ldaps://ldap.example.org",
        "sssd_ldap_user_search_base": "ou=people,dc=example,dc=org",
        "sssd_ldap_group_search_base": "ou=groups,dc=example,dc=org",
        "sssd_ldap_bind_dn": "cn=hub,ou=services,dc=example,dc=org",
        "sssd_ldap_bind_password": "s" * 24,
        "sssd_ldap_ca_cert": "/etc/ssl/site-ca.crt",  # a path, not the PEM
    }
    inv = inventory(tmp_path, target, {"sssd": ["h1"]}, {"h1": sssd})
    assert_stopped_in_validation(run_site(inv), "sssd_ldap_ca_cert is not a PEM certificate", "system trust store")


# --- HPC: Slurm clusters and the Kerberos realm ---
CLUSTER = {"node_cpus": 2, "node_memory_mb": 2048, "partitions": [{"name": "batch", "default": True, "max_time": "08:00:00"}]}
SLURM_OK = {
    "slurm_cluster": "alpha",
    "slurm_clusters": {"alpha": CLUSTER},
    "slurm_munge_key": "m" * 40,
    "slurm_jwt_key": "j" * 40,
}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"slurm_munge_key": ""}, ["slurm_munge_key has 0 characters on s1 (cluster alpha)", "32 or more from the vault"]),
        ({"slurm_cluster": "gamma"}, ['slurm_cluster is "gamma" on s1', "expected one of the clusters in slurm_clusters (alpha)"]),
        ({"slurm_clusters": {"alpha": {**CLUSTER, "partitions": [{"name": "batch", "max_time": "08:00:00", "max_cpus": 4}]}}},
         ["slurm_clusters.alpha.partitions is", "max_cpus (up to node_cpus 2)"]),
        ({"kdc_realm": "twinhub.lab"}, ['kdc_realm is "twinhub.lab"', "expected an uppercase realm"]),
        ({"slurm_server_ports": "80-60999"}, ['slurm_server_ports is "80-60999" on s1', "within 1024-65535"]),
        ({"kdc_service_principals": ["HTTP/hub.example.org"]},
         ["kdc_keytab_dir is empty, and HTTP/hub.example.org need a keytab", "a directory on the controller"]),
    ],
    ids=["munge-key-missing", "unknown-cluster", "partition-beyond-the-node", "realm-lowercase", "server-ports-privileged",
         "keytab-dir-missing"],
)  # fmt: skip
def test_hpc_settings_refused_before_any_change(tmp_path, target, settings, expected):
    hostvars = {"s1": {**SLURM_OK, "kdc_realm": "TWINHUB.LAB", "kdc_master_password": "k" * 24, **settings}}
    inv = inventory(tmp_path, target, {"slurm_controllers": ["s1"], "slurm_computes": ["s1"], "kdc": ["s1"]}, hostvars)
    assert_stopped_in_validation(run_site(inv), *expected)
