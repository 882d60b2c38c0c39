"""hubconfig: the platform config in, JupyterHub traits out, bad input refused."""

from __future__ import annotations

import copy
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets.config import Config

import hubconfig
from hubconfig import schema
from hubconfig.schema import SCHEMA, PlatformConfigError


def write_secret(path: Path, value: str | None = None, mode: int = 0o600) -> Path:
    path.write_text((value or secrets.token_hex(32)) + "\n")
    path.chmod(mode)
    return path


@pytest.fixture
def secrets_dir(tmp_path) -> Path:
    d = tmp_path / "secrets"
    d.mkdir()
    for name in ("cookie_secret", "crypt_key", "proxy_token", "prometheus_token", "nbviewer_token", "ops_token", "client_secret"):
        write_secret(d / name)
    return d


@pytest.fixture
def base(secrets_dir) -> dict[str, Any]:
    return {
        "environment": "production",
        "hub": {
            "db_url": "postgresql://hub@db.example.org:5432/hub",
            "secrets_dir": str(secrets_dir),
            "subdomain_host": "https://hub.example.org",
        },
        "auth": {"type": "pam", "admin_users": ["ops"], "allowed_groups": ["jupyter"]},
        "spawner": {
            "type": "swarm",
            "images": {"base": "registry.example.org/twinhub/notebook:1", "gpu": "registry.example.org/twinhub/gpu:1"},
            "profiles": {
                "small": {"display_name": "Small", "image": "base", "cpu_limit": 1, "mem_limit": "2G"},
                "large": {"display_name": "Large", "image": "gpu", "cpu_limit": 4, "mem_limit": "16G"},
            },
        },
    }


def configured(cfg: dict[str, Any], tmp_path: Path) -> Config:
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    c = Config()
    hubconfig.configure(c, path)
    return c


def refused(cfg: Any) -> str:
    with pytest.raises(PlatformConfigError) as info:
        schema.validate(cfg)
    return str(info.value)


# ----------------------------------------------------------------- schema ---
def test_minimal_config_gets_safe_defaults(base):
    cfg = schema.validate(base)
    assert cfg["hub"]["cleanup_servers"] is False
    assert cfg["hub"]["log_format"] == "json"
    assert cfg["services"]["metrics"]["authenticate"] is True
    assert cfg["spawner"]["name_prefix"] == "twinhub"


@pytest.mark.parametrize(
    ("mutate", "needles"),
    [
        (lambda c: c.update(colour="blue"), ["(top level)", "'colour' was unexpected", "expected one of: auth, environment"]),
        (lambda c: c["hub"].update(db_ulr="x"), ["hub:", "'db_ulr' was unexpected", "db_url"]),
        (lambda c: c["spawner"].update(type="slurm"), ["spawner.type: 'slurm' is not allowed", "['swarm', 'docker', 'kube', 'local']"]),
        (lambda c: c["spawner"]["profiles"]["small"].update(mem_limit="lots"), ["spawner.profiles.small.mem_limit: 'lots' is not a size like 512M or 2G"]),
        (lambda c: c["spawner"]["profiles"]["small"].update(cpu_guarantee=2), ["spawner.profiles.small.cpu_guarantee: 2 is more than its cpu_limit 1; expected at most the limit"]),
        (lambda c: c["spawner"]["profiles"]["small"].update(mem_limit="1024"), ["spawner.profiles.small.mem_limit: '1024' is not a size like 512M or 2G"]),
        (lambda c: c["spawner"]["profiles"]["small"].update(mem_guarantee="512"), ["spawner.profiles.small.mem_guarantee: '512' is not a size like 512M or 2G, or empty"]),
        (lambda c: c["spawner"]["profiles"]["small"].update(mem_guarantee="4G"), ["spawner.profiles.small.mem_guarantee: '4G' is more than its mem_limit '2G'"]),
        (lambda c: c["spawner"]["profiles"]["small"].update(mem_guarantee="half"), ["spawner.profiles.small.mem_guarantee: 'half' is not a size like 512M or 2G, or empty"]),
        (lambda c: c["spawner"].update(pids_limit=0), ["spawner.pids_limit: 0 is less than the minimum of 64"]),
        (lambda c: c["spawner"]["profiles"]["small"].update(cpu_limit="two"), ["spawner.profiles.small.cpu_limit: 'two' is not of type number"]),
        (lambda c: c["spawner"]["profiles"]["small"].update(image="cuda"), ["spawner.profiles.small.image: 'cuda' is not in the image allow-list", "['base', 'gpu']"]),
        (lambda c: c["spawner"].update(default_profile="huge"), ["spawner.default_profile: 'huge' is not a profile", "['large', 'small']"]),
        (lambda c: c["spawner"].update(images={}), ["spawner.images: {} should be non-empty"]),
        (lambda c: c["spawner"].update(name_prefix="Twin_Hub"), ["spawner.name_prefix: 'Twin_Hub' is not a lowercase DNS label"]),
        (lambda c: c["hub"].update(bind_url="0.0.0.0:8000"), ["hub.bind_url: '0.0.0.0:8000' is not an http(s):// URL"]),
        (lambda c: c["hub"].update(secrets_dir="secrets"), ["hub.secrets_dir: 'secrets' is not an absolute path"]),
        (lambda c: c["auth"].update(type="dummy"), ["auth.type: 'dummy'", "expected pam, kerberos, ldap or oidc when environment is production"]),
        (lambda c: c["hub"].update(db_url="sqlite:///jupyterhub.sqlite"), ["hub.db_url: SQLite is for the lab"]),
        (lambda c: c["spawner"].update(type="local"), ["spawner.type: 'local'", "in production"]),
        (lambda c: c["auth"].update(type="ldap"), ["auth.ldap.server_address: empty"]),
        (lambda c: c["auth"].update(type="oidc"), ["auth.oidc.issuer: empty", "auth.oidc.client_id: empty", "auth.oidc.token_url: empty"]),
        (
            lambda c: c["auth"].update(type="oidc", oidc={"callback_url": "https://evil.example.org/hub/oauth_callback"}),
            ["auth.oidc.callback_url: 'https://evil.example.org/hub/oauth_callback' is not on the hub's public name"],
        ),
        (lambda c: c.update(services={"nbviewer": {"enabled": True}}), ["services.nbviewer.url: empty"]),
        (lambda c: c["auth"].update(admin_users="ops"), ["auth.admin_users: 'ops' is not of type array"]),
        (lambda c: c.pop("spawner"), ["'spawner' is a required property"]),
        (lambda c: c["hub"].pop("subdomain_host"), ["hub.subdomain_host: empty in production", "hub.single_origin_acknowledged: true"]),
        (lambda c: c["hub"].update(subdomain_host="http://hub.example.org"), ["hub.subdomain_host: 'http://hub.example.org' is not an https:// URL"]),
        (lambda c: c["hub"].update(subdomain_host="https://hub"), ["'https://hub' is not an https:// URL of a host name with a dot"]),
    ],
)  # fmt: skip
def test_bad_config_names_the_key_and_what_is_expected(base, mutate, needles):
    cfg = copy.deepcopy(base)
    mutate(cfg)
    message = refused(cfg)
    for needle in needles:
        assert needle in message, message


def test_not_a_mapping():
    assert "expected a mapping at the top level, got list" in refused([1, 2])


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(PlatformConfigError, match="no such file"):
        schema.load(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("spawner: [unclosed\n")
    with pytest.raises(PlatformConfigError, match="not valid YAML"):
        schema.load(bad)


def test_hub_refuses_to_start_on_a_bad_config(base, tmp_path, capsys):
    base["spawner"]["typo"] = 1
    with pytest.raises(SystemExit) as info:
        configured(base, tmp_path)
    assert info.value.code == hubconfig.EX_CONFIG
    assert "refusing to start" in capsys.readouterr().err


# ---------------------------------------------------------------- secrets ---
@pytest.mark.parametrize("name", ["cookie_secret", "crypt_key", "proxy_token"])
def test_secret_files_must_be_private(base, secrets_dir, tmp_path, name, capsys):
    (secrets_dir / name).chmod(0o644)
    with pytest.raises(SystemExit):
        configured(base, tmp_path)
    assert f"{name} has mode 0644; expected 0600" in capsys.readouterr().err


def test_missing_secret_is_named(base, secrets_dir, tmp_path, capsys):
    (secrets_dir / "proxy_token").unlink()
    with pytest.raises(SystemExit):
        configured(base, tmp_path)
    assert "proxy_token does not exist" in capsys.readouterr().err


# -------------------------------------------------------------------- hub ---
def test_hub_traits(base, secrets_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY", raising=False)
    password = write_secret(tmp_path / "db_password", "p@ss word")
    base["hub"].update(db_password_file=str(password), hub_connect_url="http://hub-api.internal:8081")
    c = configured(base, tmp_path)
    from sqlalchemy.engine import make_url

    url = make_url(c.JupyterHub.db_url)
    assert (url.drivername, url.username, url.password, url.host, url.database) == (
        "postgresql+psycopg", "hub", "p@ss word", "db.example.org", "hub",
    )  # fmt: skip
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.hub_connect_url == "http://hub-api.internal:8081"
    assert c.JupyterHub.cookie_secret_file == str(secrets_dir / "cookie_secret")
    assert c.ConfigurableHTTPProxy.auth_token == (secrets_dir / "proxy_token").read_text().strip()
    import os

    assert os.environ["JUPYTERHUB_CRYPT_KEY"] == (secrets_dir / "crypt_key").read_text().strip()
    assert c.JupyterHub.logging_config["formatters"]["json"]["()"] == "pythonjsonlogger.json.JsonFormatter"


# ------------------------------------------------------------------- auth ---
def test_no_open_sign_up(base, tmp_path):
    c = configured(base, tmp_path)
    assert c.Authenticator.allow_all is False
    assert c.JupyterHub.authenticator_class == "hubconfig.pam.TwinhubPAMAuthenticator"
    assert c.PAMAuthenticator.allowed_groups == {"jupyter"}
    assert c.Authenticator.admin_users == {"ops"}
    from hubconfig.pam import TwinhubPAMAuthenticator

    pam = TwinhubPAMAuthenticator(config=c)
    # The hub image's PAM service (sssd only), groups from NSS (sssd too).
    assert pam.service == "twinhub"
    assert pam.allowed_groups == {"jupyter"}
    assert pam.check_account is True


def test_oidc_keeps_auth_state_and_reads_its_secret(base, secrets_dir, tmp_path):
    base["auth"] = {
        "type": "oidc",
        "allowed_groups": ["collab-members"],
        "oidc": {
            "issuer": "https://iam.example.org/",
            "client_id": "twinhub",
            "client_secret_file": str(secrets_dir / "client_secret"),
            "authorize_url": "https://iam.example.org/auth",
            "token_url": "https://iam.example.org/token",
            "userdata_url": "https://iam.example.org/userinfo",
            "ca_file": "/etc/twinhub/oidc-ca.crt",
        },
    }
    c = configured(base, tmp_path)
    assert c.JupyterHub.authenticator_class == "hubconfig.provider.TwinhubOIDCAuthenticator"
    g = c.TwinhubOIDCAuthenticator
    assert g.enable_auth_state is True
    assert g.enable_pkce is True
    assert g.client_secret == (secrets_dir / "client_secret").read_text().strip()
    assert g.allowed_groups == {"collab-members"}
    assert g.auth_state_groups_key == "oauth_user.groups"
    # The identity is sub, the name a readable claim bound to it.
    assert g.identity_claim == "sub"
    assert g.username_claim == "preferred_username"
    assert g.http_request_kwargs == {"ca_certs": "/etc/twinhub/oidc-ca.crt"}
    assert c.Authenticator.auth_refresh_age == 300
    # Notebooks read their own user's tokens, nobody else's (twinhub_token).
    assert "admin:auth_state!user" in c.Spawner.server_token_scopes
    assert {"name": "user", "scopes": ["self", "admin:auth_state!user"]} in c.JupyterHub.load_roles
    # oauthenticator 17 refuses allowed or admin groups without manage_groups.
    assert g.manage_groups is True
    from hubconfig.provider import TwinhubOIDCAuthenticator

    TwinhubOIDCAuthenticator(config=c)


def test_ldap(base, tmp_path, secrets_dir):
    (secrets_dir / "ldap_search").write_text("search-secret\n")
    (secrets_dir / "ldap_search").chmod(0o600)
    base["auth"] = {
        "type": "ldap",
        "allowed_groups": ["jupyter"],
        "admin_groups": ["hub-admins"],
        "ldap": {
            "server_address": "ldap.example.org",
            "lookup_dn": True,
            "user_search_base": "ou=people,dc=example,dc=org",
            "search_user": "cn=hub,ou=services,dc=example,dc=org",
            "search_password_file": str(secrets_dir / "ldap_search"),
            "group_dn_template": "cn={group},ou=groups,dc=example,dc=org",
            "ca_file": "/etc/twinhub/ldap-ca.crt",
        },
    }
    c = configured(base, tmp_path)
    assert c.LDAPAuthenticator.server_address == "ldap.example.org"
    assert c.LDAPAuthenticator.tls_strategy == "on_connect"
    assert c.JupyterHub.authenticator_class == "hubconfig.directory.TwinhubLDAPAuthenticator"
    # The directory's certificate is always checked (ldap3 checks nothing by default).
    import ssl

    assert c.LDAPAuthenticator.tls_kwargs == {"validate": ssl.CERT_REQUIRED, "ca_certs_file": "/etc/twinhub/ldap-ca.crt"}
    assert c.LDAPAuthenticator.lookup_dn_search_password == "search-secret"
    # Names as the platform allows them, the directory's own spelling as the user's name.
    assert c.LDAPAuthenticator.lookup_dn_user_dn_attribute == "uid"
    assert re.match(c.LDAPAuthenticator.valid_username_regex, "anna.berg@site.org")
    # Groups by name in the config, by DN in the directory; admin groups searched too.
    assert c.LDAPAuthenticator.allowed_groups == [
        "cn=jupyter,ou=groups,dc=example,dc=org",
        "cn=hub-admins,ou=groups,dc=example,dc=org",
    ]
    assert c.TwinhubLDAPAuthenticator.admin_groups == ["cn=hub-admins,ou=groups,dc=example,dc=org"]
    # The class the hub loads takes that config.
    from hubconfig.directory import TwinhubLDAPAuthenticator

    a = TwinhubLDAPAuthenticator(config=c)
    assert a.allowed_groups == c.LDAPAuthenticator.allowed_groups
    assert a.timeout == 5


@pytest.mark.parametrize(
    ("ldap", "groups", "expected"),
    [
        ({"server_address": "d"}, [], "auth.ldap.bind_dn_template: empty and auth.ldap.lookup_dn is false"),
        (
            {"server_address": "d", "bind_dn_template": ["uid=x,dc=o"]},
            [],
            "auth.ldap.bind_dn_template: 'uid=x,dc=o' has no {username}",
        ),
        ({"server_address": "d", "lookup_dn": True}, [], "auth.ldap.user_search_base: empty"),
        (
            {"server_address": "d", "lookup_dn": True, "user_search_base": "dc=o", "search_user": "cn=hub,dc=o"},
            [],
            "auth.ldap.search_password_file: empty; expected the password file of search_user 'cn=hub,dc=o'",
        ),
        (
            {"server_address": "d", "bind_dn_template": ["uid={username},dc=o"]},
            ["jupyter"],
            "auth.ldap.group_dn_template: '' has no {group}",
        ),
        (
            {"server_address": "d", "bind_dn_template": ["uid={username},dc=o"], "timeout": 0},
            [],
            "auth.ldap.timeout: 0 is less than the minimum of 1",
        ),
    ],
)
def test_ldap_settings_refused(base, ldap, groups, expected):
    base["auth"] = {"type": "ldap", "allowed_groups": groups, "ldap": ldap}
    with pytest.raises(PlatformConfigError) as exc:
        schema.validate(base)
    assert expected in str(exc.value)


# ---------------------------------------------------------------- spawner ---
class FakeSpawner:
    def __init__(self):
        self.environment = {"A": "1"}
        self.image = self.cpu_limit = self.mem_limit = self.cpu_guarantee = self.mem_guarantee = None


def test_profiles_reserve_what_they_say(base, tmp_path):
    base["spawner"]["profiles"]["large"].update(cpu_guarantee=2, mem_guarantee="8G")
    c = configured(base, tmp_path)
    s = FakeSpawner()
    c.Spawner.apply_user_options(s, {"profile": "large"})
    assert (s.cpu_guarantee, s.mem_guarantee) == (2.0, "8G")
    s = FakeSpawner()
    c.Spawner.apply_user_options(s, {"profile": "small"})  # no reservation: none asked of Swarm
    assert (s.cpu_guarantee, s.mem_guarantee) == (None, None)


def test_profiles_set_image_and_limits(base, tmp_path):
    c = configured(base, tmp_path)
    apply = c.Spawner.apply_user_options
    s = FakeSpawner()
    apply(s, {"profile": "large"})
    assert (s.image, s.cpu_limit, s.mem_limit) == ("registry.example.org/twinhub/gpu:1", 4.0, "16G")
    assert s.environment == {"A": "1", "TWINHUB_PROFILE": "large"}
    s = FakeSpawner()
    apply(s, {})  # API spawn without options: the default profile
    assert s.image == "registry.example.org/twinhub/notebook:1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"profile": "root-shell"}, "profile 'root-shell' is not allowed; choose one of ['large', 'small']"),
        ({"profile": "small", "image": "evil/miner"}, "unknown spawn options ['image']"),
    ],
)
def test_profiles_refuse_anything_else(base, tmp_path, options, message):
    from tornado.web import HTTPError

    c = configured(base, tmp_path)
    with pytest.raises(HTTPError) as info:
        c.Spawner.apply_user_options(FakeSpawner(), options)
    assert info.value.status_code == 400
    assert message in info.value.log_message


def test_swarm_spawner_settings(base, tmp_path):
    base["spawner"]["placement_constraints"] = ["node.labels.twinhub.notebooks == true"]
    c = configured(base, tmp_path)
    assert c.JupyterHub.spawner_class == "hubconfig.swarmspawner.TwinhubSwarmSpawner"
    assert c.DockerSpawner.allowed_images == base["spawner"]["images"]
    assert c.SwarmSpawner.extra_container_spec == {"user": "1000:100", "cap_drop": ["ALL"], "init": True}
    assert c.TwinhubSwarmSpawner.start_poll == 0.1
    assert c.TwinhubSwarmSpawner.pids_limit == 1024
    assert c.SwarmSpawner.extra_endpoint_spec == {"mode": "dnsrr"}
    assert c.SwarmSpawner.extra_placement_spec == {"constraints": ["node.labels.twinhub.notebooks == true"]}
    assert c.DockerSpawner.prefix == "twinhub"
    assert c.DockerSpawner.cmd == ["jupyterhub-singleuser"]
    assert 'value="large"' in c.Spawner.options_form


def test_upstream_swarm_spawner_for_comparison(base, tmp_path):
    base["spawner"]["swarm_spawner"] = "upstream"
    c = configured(base, tmp_path)
    assert c.JupyterHub.spawner_class == "dockerspawner.SwarmSpawner"
    # The same containers, placement and allow-list as twinhub's class.
    assert c.SwarmSpawner.extra_container_spec == {"user": "1000:100", "cap_drop": ["ALL"], "init": True}
    assert c.DockerSpawner.allowed_images == base["spawner"]["images"]


def test_docker_spawner_hardening(base, tmp_path):
    base["spawner"]["type"] = "docker"
    c = configured(base, tmp_path)
    assert c.DockerSpawner.extra_create_kwargs == {"user": "1000:100"}
    assert c.DockerSpawner.extra_host_config["security_opt"] == ["no-new-privileges"]
    assert c.DockerSpawner.extra_host_config["cap_drop"] == ["ALL"]


def test_kube_profile_list_and_security(base, tmp_path):
    base["spawner"]["type"] = "kube"
    c = configured(base, tmp_path)
    profiles = {p["slug"]: p for p in c.KubeSpawner.profile_list}
    assert profiles["large"]["kubespawner_override"]["mem_limit"] == "16G"
    assert profiles["small"]["default"] is True
    assert c.KubeSpawner.automount_service_account_token is False
    assert c.KubeSpawner.allow_privilege_escalation is False
    assert c.KubeSpawner.volume_mounts[0]["subPath"] == "{escaped_username}"


# ---------------------------------------------------------------- storage ---
def test_home_and_shared_mounts_and_local_sqlite(base, tmp_path):
    c = configured(base, tmp_path)
    assert c.DockerSpawner.volumes == {
        "/srv/twinhub/home/{username}": "/home/jovyan",
        "/srv/twinhub/shared": "/home/jovyan/shared",
    }
    assert "--NotebookNotary.db_file=:memory:" in c.Spawner.args
    assert c.Spawner.environment["TWINHUB_IPYTHON_HIST_FILE"].startswith("/tmp/")


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ({}, ["--LockingContentsManager.locked_dirs=shared", "--LockingContentsManager.lock_lifetime=120"]),
        (
            {"shared_mount_path": "/home/jovyan/team/common", "shared_locks": {"lifetime_seconds": 30}},
            ["--LockingContentsManager.locked_dirs=team/common", "--LockingContentsManager.lock_lifetime=30"],
        ),
        ({"shared_locks": {"enabled": False}}, ["--ServerApp.contents_manager_class="]),
        # Mounted outside the server's root: Jupyter does not see it, nothing to lock.
        ({"shared_mount_path": "/srv/shared"}, ["--ServerApp.contents_manager_class="]),
        ({"shared_enabled": False}, ["--ServerApp.contents_manager_class="]),
    ],
    ids=["default", "nested-mount", "off", "outside-root", "no-shared-area"],
)
def test_locks_on_the_shared_area(base, tmp_path, storage, expected):
    base["storage"] = storage
    c = configured(base, tmp_path)
    args = [a for a in c.Spawner.args if "LockingContentsManager" in a or "contents_manager_class" in a]
    assert len(args) == len(expected), args
    for arg, prefix in zip(args, expected, strict=True):
        assert arg.startswith(prefix), (arg, prefix)
    locked = any(a.startswith("--LockingContentsManager") for a in args)
    assert ("TWINHUB_LOCK_LIFETIME" in c.Spawner.environment) is locked


def test_home_directory_created_private(base, tmp_path):
    import os

    home_root = tmp_path / "home"
    home_root.mkdir()
    base["storage"] = {"home_host_path": str(home_root) + "/{username}"}
    base["spawner"]["notebook_uid"] = os.getuid() + 1000
    c = configured(base, tmp_path)

    class User:
        name = "john.doe"

    class S:
        user = User()

    c.Spawner.pre_spawn_hook(S())
    # The spelling DockerSpawner mounts as {username} (hubconfig.names).
    st = (home_root / "john-2edoe").stat()
    assert (st.st_mode & 0o777, st.st_uid) == (0o700, os.getuid() + 1000)
    assert sorted(p.name for p in home_root.iterdir()) == ["john-2edoe"]


def homedird(tmp_path: Path, token: str):
    """The storage host's real home directory service, on a free port."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from support import ROOT, free_port

    token_file = write_secret(tmp_path / "homedird-token", token)
    root = tmp_path / "homes"
    root.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, str(ROOT / "roles/nfs_server/files/twinhub-homedird.py"), "--root", str(root),
            "--uid", str(os.getuid() + 1000), "--gid", "100", "--token-file", str(token_file), "--listen", f"127.0.0.1:{port}",
        ]
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    return proc, root, f"http://127.0.0.1:{port}"


def test_home_directory_from_the_storage_service(base, tmp_path):
    """Hubs with root-squashed storage ask the storage host for the home."""
    import asyncio
    import os

    from tornado.web import HTTPError

    token = secrets.token_hex(24)
    proc, root, url = homedird(tmp_path, token)
    try:
        base["storage"] = {"homedir_service_url": url, "homedir_token_file": str(write_secret(tmp_path / "tok", token))}
        c = configured(base, tmp_path)

        class User:
            name = "anna.berg@site.org"

        class S:
            user = User()
            log = __import__("logging").getLogger("test")

        asyncio.run(c.Spawner.pre_spawn_hook(S()))
        st = (root / "anna-2eberg-40site-2eorg").stat()
        assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o700, os.getuid() + 1000, 100)
        asyncio.run(c.Spawner.pre_spawn_hook(S()))  # existing: left as is

        # A wrong token: the spawn stops with a message, no home is made.
        base["storage"]["homedir_token_file"] = str(write_secret(tmp_path / "bad", "x" * 48))
        c = configured(base, tmp_path)
        User.name = "bob"
        with pytest.raises(HTTPError) as info:
            asyncio.run(c.Spawner.pre_spawn_hook(S()))
        assert info.value.status_code == 503
        assert not (root / "bob").exists()
    finally:
        proc.kill()


def test_home_directory_service_refuses_unescaped_names(tmp_path):
    import urllib.error
    import urllib.request

    token = secrets.token_hex(24)
    proc, root, url = homedird(tmp_path, token)
    try:
        for name in ("john.doe", "..", "a%2Fb", "Alice"):
            req = urllib.request.Request(f"{url}/homes/{name}", method="PUT", headers={"Authorization": f"Bearer {token}"})
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(req, timeout=5)
            assert info.value.code == 400, name
        assert list(root.iterdir()) == []
    finally:
        proc.kill()


def test_one_spelling_of_a_user_name(base, tmp_path):
    from dockerspawner import DockerSpawner
    from kubespawner.slugs import escape_slug

    from hubconfig import names

    assert names.escape("alice") == "alice"  # such homes stay where they are
    assert names.escape("john.doe") == "john-2edoe"
    # a.b and the raw spelling of its escaped name never share a home.
    assert names.escape("a.b") == "a-2eb" != names.escape("a-2eb") == "a-2d2eb"
    for name in ("john.doe", "a-2eb", "anna.berg@site.org", "x_y"):
        # DockerSpawner's {username} and KubeSpawner's {escaped_username} are this spelling.
        spawner = DockerSpawner(user=type("U", (), {"name": name})())
        assert spawner.template_namespace()["username"] == names.escape(name) == escape_slug(name)
    c = configured(base, tmp_path)
    server_env = c.Spawner.environment["TWINHUB_USER_DIR_NAME"]
    assert server_env(type("S", (), {"user": type("U", (), {"name": "john.doe"})()})()) == "john-2edoe"
    assert c.Spawner.disable_user_config is True


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("John Doe", "'John Doe' is not a user name"),
        ("john.", "'john.' is not a user name"),
        ("../etc", "'../etc' is not a user name"),
        ("a." * 20 + "b", "characters once escaped"),
    ],
)
def test_user_names_outside_the_rules_are_refused(base, name, needle):
    base["auth"]["allowed_users"] = [name]
    message = refused(base)
    assert "auth.allowed_users" in message, message
    assert needle in message, message
    assert "lowercase letters, digits and . _ - @" in message, message


def test_login_refuses_names_outside_the_rules(base, tmp_path):
    from jupyterhub.auth import Authenticator

    c = configured(base, tmp_path)
    authenticator = Authenticator(config=c)
    assert authenticator.validate_username("john.doe")
    assert not authenticator.validate_username("john doe")
    assert not authenticator.validate_username("john.")
    hook = c.Authenticator.post_auth_hook
    assert hook(authenticator, None, {"name": "john.doe"}) == {"name": "john.doe"}
    assert hook(authenticator, None, {"name": "a." * 20 + "b"}) is None


def test_one_origin_per_user(base, tmp_path):
    c = configured(base, tmp_path)
    assert c.JupyterHub.subdomain_host == "https://hub.example.org"
    assert c.JupyterHub.cookie_host_prefix_enabled is True
    # Each user's host is their name as homes spell it: a DNS label.
    assert c.JupyterHub.subdomain_hook("john.doe", "hub.example.org", "user") == "john-2edoe.hub.example.org"
    assert c.JupyterHub.subdomain_hook("a-2eb", "hub.example.org", "user") == "a-2d2eb.hub.example.org"
    # A site that cannot have a wildcard name says so explicitly.
    base["hub"].pop("subdomain_host")
    base["hub"]["single_origin_acknowledged"] = True
    c = configured(base, tmp_path)
    assert "subdomain_host" not in c.JupyterHub


def test_offboarding_defaults(base, tmp_path):
    # The hub checks a login cookie's age against cookie_max_age_days when it
    # reads it (the browser may keep it longer): tests/hub covers the rest.
    c = configured(base, tmp_path)
    assert c.Authenticator.allow_existing_users is False
    assert c.JupyterHub.cookie_max_age_days == 7
    assert c.JupyterHub.token_expires_in_max_seconds == 30 * 86400


def test_homedir_service_needs_its_token(base):
    base["storage"] = {"homedir_service_url": "http://storage.example.org:9780"}
    assert "storage.homedir_token_file" in refused(base)


# --------------------------------------------------------------- services ---
def test_services_and_scoped_roles(base, secrets_dir, tmp_path):
    base["services"] = {"nbviewer": {"enabled": True, "url": "https://nbviewer.example.org"}}
    c = configured(base, tmp_path)
    names = [s["name"] for s in c.JupyterHub.services]
    assert names == ["idle-culler", "nbviewer", "prometheus"]
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["prometheus"]["scopes"] == ["read:metrics"]
    assert "read:services!service=nbviewer" in roles["user"]["scopes"]
    assert "self" in roles["user"]["scopes"]
    nbviewer = next(s for s in c.JupyterHub.services if s["name"] == "nbviewer")
    # No url: JupyterHub would wait for it before restoring users' routes.
    assert "url" not in nbviewer
    assert nbviewer["info"]["url"] == "https://nbviewer.example.org"
    assert "admin:users" not in roles["idle-culler"]["scopes"]
    # Run so that JupyterHub's SIGINT stops it at once (tests/hubconfig/test_culler.py).
    culler = next(s for s in c.JupyterHub.services if s["name"] == "idle-culler")
    assert culler["command"][1:3] == ["-m", "hubconfig.culler"]
    assert c.JupyterHub.authenticate_prometheus is True
    # Users' servers learn where to publish and the URL nbviewer shows it at.
    assert c.Spawner.environment["TWINHUB_NBVIEWER_URL"] == "https://nbviewer.example.org"
    assert c.Spawner.environment["TWINHUB_PUBLISH_DIR"] == "/home/jovyan/shared/published"


def test_server_environment_does_not_depend_on_module_order(base, tmp_path):
    from hubconfig import schema as platform_schema
    from hubconfig import services, spawner, storage

    base["spawner"]["environment"] = {"OMP_NUM_THREADS": "1"}
    base["services"] = {"nbviewer": {"enabled": True, "url": "https://nbviewer.example.org"}}
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    cfg = platform_schema.load(path)
    environments = []
    for order in ((spawner, storage, services), (services, storage, spawner)):
        c = Config()
        for module in order:
            module.apply(c, cfg)
        environments.append(c.Spawner.environment)
    assert environments[0] == environments[1]
    assert {"OMP_NUM_THREADS", "TWINHUB_NBVIEWER_URL", "TWINHUB_IPYTHON_HIST_FILE"} <= set(environments[0])


def test_server_environment_refuses_a_variable_twinhub_sets(base, tmp_path, capsys):
    base["services"] = {"nbviewer": {"enabled": True, "url": "https://nbviewer.example.org"}}
    base["spawner"]["environment"] = {"TWINHUB_NBVIEWER_URL": "https://elsewhere.example.org"}
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    with pytest.raises(SystemExit):
        hubconfig.configure(Config(), path)
    assert "TWINHUB_NBVIEWER_URL set twice with different values" in capsys.readouterr().err


# ------------------------------------------------ every key has an effect ---
def leaf_keys(node: dict[str, Any], prefix: tuple[str, ...] = ()):
    for key, sub in node.get("properties", {}).items():
        if sub.get("type") == "object" and "properties" in sub:
            yield from leaf_keys(sub, (*prefix, key))
        else:
            yield ((*prefix, key), sub)


# Where a key only matters in some setting, the context that makes it matter.
CONTEXT = {
    "environment": {"environment": "lab", "auth": {"type": "dummy"}},
    "auth.type": {"environment": "lab"},
    "auth.dummy": {"environment": "lab", "auth": {"type": "dummy"}},
    "auth.ldap": {
        "auth": {
            "type": "ldap",
            "ldap": {
                "server_address": "ldap.example.org",
                "bind_dn_template": ["uid={username},ou=people,dc=example,dc=org"],
                "user_search_base": "ou=people,dc=example,dc=org",
                "group_dn_template": "cn={group},ou=groups,dc=example,dc=org",
            },
        }
    },
    "auth.oidc": {"auth": {"type": "oidc"}},
    "auth.kerberos": {
        "auth": {"type": "kerberos", "kerberos": {"realm": "EXAMPLE.ORG", "service_principal": "host/hub.example.org"}}
    },
    "sharing": {"sharing": {"enabled": True}},
    "services.nbviewer": {"services": {"nbviewer": {"enabled": True, "url": "https://nbviewer.example.org"}}},
    "spawner.placement_constraints": {"spawner": {"type": "swarm"}},
    "spawner.pull_policy": {"spawner": {"type": "docker"}},
    # Slurm's settings matter once a profile is a Slurm job.
    "spawner.slurm": {
        "spawner": {
            "profiles": {"hpc": {"display_name": "HPC", "kind": "slurm", "cluster": "a", "partition": "p"}},
            "slurm": {
                "clusters": {
                    "a": {
                        "url": "http://ctl.example.org:6820",
                        "key_file": "/etc/twinhub/secrets/slurm_jwt_key_a",
                        "partitions": {"p": {"max_cpus": 4, "max_memory_mb": 8192, "max_time": "08:00:00"}},
                    }
                }
            },
        }
    },
}


def other_value(key: tuple[str, ...], spec: dict[str, Any], current: Any, tmp_path: Path) -> Any:
    name = key[-1]
    if name.endswith("_file"):
        return str(write_secret(tmp_path / f"alt-{name}"))
    if name == "secrets_dir":
        import shutil

        return shutil.copytree(current, tmp_path / "alt-secrets", dirs_exist_ok=True).as_posix()
    if "enum" in spec:
        return next(v for v in spec["enum"] if v != current)
    if name == "clusters":  # the same cluster at another address
        return {n: {**v, "url": "http://ctl2.example.org:6820"} for n, v in current.items()}
    kind = spec.get("type")
    if kind == "boolean":
        return not current
    if kind in ("integer", "number"):
        # Another value within the bounds (below a default that is the maximum).
        value = min(current + 7, spec.get("maximum", current + 7))
        return value if value != current else max(current - 7, spec.get("minimum", current - 7))
    if name == "bind_dn_template":
        return ["cn={username},dc=alt"]
    if name == "proxy_peer_api_urls":
        return ["http://hub-b.example.org:8001"]
    if kind == "array":
        return ["alt-value"]
    if kind == "object":
        return {"ALT": "1"} if name in ("environment",) else current
    if spec.get("pattern", "").startswith("^/") or spec.get("pattern", "").startswith("^(/"):
        return "/srv/alt/{username}" if "home_host" in name else "/srv/alt"
    if name == "subdomain_host":
        return "https://alt.example.org"
    if name == "callback_url":
        return "https://hub.example.org/hub/alt_callback"
    if "https?" in spec.get("pattern", ""):
        return "http://alt.example.org:9000"
    if name == "db_url":
        return "postgresql://other@db2.example.org/hub"
    if name == "default_profile":
        return "large"
    if name == "realm":
        return "ALT.EXAMPLE.ORG"
    return "alt" + (current or "")


def effect(c: Config) -> str:
    import json
    import os

    def plain(v):
        if callable(v):
            return getattr(v, "__qualname__", repr(v)) + repr(sorted(getattr(v, "__dict__", {}).items()))
        return v

    snapshot = {k: {kk: plain(vv) for kk, vv in v.items()} for k, v in c.items()}
    return json.dumps(snapshot, sort_keys=True, default=str) + os.environ.get("JUPYTERHUB_CRYPT_KEY", "")


def merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = merge(out.get(k, {}), v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


# Keys whose effect is to accept or refuse a config, not to set a trait.
POLICY = {("environment",)}

SKIP = {
    # The allow-list and profile table are the spawner's data, covered above.
    ("spawner", "images"),
    ("spawner", "profiles"),
    # An acknowledgement: what it changes is what validation accepts
    # (test_one_origin_per_user, test_bad_config_names_the_key...).
    ("hub", "single_origin_acknowledged"),
    # What `python -m hubconfig provider` checks the endpoints against
    # (tests/hubconfig/test_provider.py), not a hub setting.
    ("auth", "oidc", "issuer"),
    # Likewise what `python -m hubconfig realm` gets a ticket for with the
    # hub's key (the lab's deploy runs it; pam_krb5 uses any key in the keytab).
    ("auth", "kerberos", "service_principal"),
}


def test_every_schema_key_has_an_effect(base, tmp_path):
    keys = [(k, s) for k, s in leaf_keys(SCHEMA) if k not in SKIP]
    assert len(keys) > 50
    no_effect = []
    for key, spec in keys:
        dotted = ".".join(key)
        ctx = next((v for p, v in CONTEXT.items() if dotted.startswith(p)), {})
        cfg = merge(base, ctx)
        if dotted.startswith("auth.oidc"):
            cfg["auth"]["oidc"] = {
                "issuer": "https://iam.example.org/",
                "client_id": "x",
                "client_secret_file": str(write_secret(tmp_path / "cs")),
                "authorize_url": "https://iam.example.org/a",
                "token_url": "https://iam.example.org/t",
                "userdata_url": "https://iam.example.org/u",
            }
        if dotted.startswith("auth.ldap.search"):
            cfg["auth"]["ldap"].update(
                search_user="cn=hub,dc=example,dc=org", search_password_file=str(write_secret(tmp_path / "ls"))
            )
        if dotted.startswith("storage.homedir"):
            cfg["storage"] = {
                "homedir_service_url": "http://storage.example.org:9780",
                "homedir_token_file": str(write_secret(tmp_path / "homedir-token")),
            }
        full = schema.validate(cfg)
        before = effect(configured(cfg, tmp_path))
        node = cfg
        current = full
        for part in key[:-1]:
            node = node.setdefault(part, {})
            current = current[part]
        node[key[-1]] = other_value(key, spec, current[key[-1]], tmp_path)
        try:
            after = effect(configured(cfg, tmp_path))
        except SystemExit:
            if key not in POLICY:
                no_effect.append(f"{dotted} (alternative value refused)")
            continue
        if before == after:
            no_effect.append(dotted)
    assert not no_effect, f"schema keys with no effect on the hub's config: {no_effect}"


def test_check_command(base, tmp_path):
    import subprocess
    import sys

    from support import ROOT

    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(base))
    ok = subprocess.run([sys.executable, "-m", "hubconfig", "check", str(good)], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "valid (swarm spawner, 2 profiles)" in ok.stdout
    base["spawner"]["pull_policy"] = "sometimes"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(base))
    no = subprocess.run([sys.executable, "-m", "hubconfig", "check", str(bad)], cwd=ROOT, capture_output=True, text=True)
    assert no.returncode == 78
    assert "spawner.pull_policy: 'sometimes' is not allowed" in no.stderr


def roles_by_name(c: Config) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in c.JupyterHub.load_roles}


def test_sharing_is_off_until_the_platform_config_turns_it_on(base, tmp_path):
    c = configured(base, tmp_path)
    assert not any("shares" in s for r in c.JupyterHub.load_roles for s in r["scopes"])
    assert c.JupyterHub.tornado_settings["twinhub_sharing"]["codes"] is False
    assert not any(a.startswith("--HubOAuth.cache_max_age") for a in c.Spawner.args)


def test_sharing_for_everyone_or_for_groups(base, tmp_path):
    c = configured(merge(base, {"sharing": {"enabled": True}}), tmp_path)
    assert {"shares!user", "read:users:name", "read:groups:name"} <= set(roles_by_name(c)["user"]["scopes"])
    assert c.JupyterHub.tornado_settings["twinhub_sharing"] == {"codes": True, "code_max_lifetime": 86400}
    # A revoked share ends within auth_cache_seconds (1 s), and the servers
    # keep the hub's last answer 300 s while no hub can be asked.
    assert "--HubOAuth.cache_max_age=1" in c.Spawner.args
    assert "--TwinhubHubAuth.outage_seconds=300" in c.Spawner.args
    assert "--NotebookNotary.db_file=:memory:" in c.Spawner.args  # storage's arguments kept
    only = {"enabled": True, "groups": ["sharers"], "with_users": False, "codes": False}
    c = configured(merge(base, {"sharing": only}), tmp_path)
    roles = roles_by_name(c)
    assert roles["twinhub-sharing"] == {
        "name": "twinhub-sharing",
        "scopes": ["shares!user", "read:groups:name"],
        "groups": ["sharers"],
    }
    assert not any("shares" in s for s in roles.get("user", {"scopes": []})["scopes"])
    assert c.JupyterHub.tornado_settings["twinhub_sharing"]["codes"] is False


def test_share_codes_replace_jupyterhubs_handler(base, tmp_path):
    from jupyterhub.apihandlers import default_handlers

    from hubconfig.sharing import ShareCodePolicy

    configured(merge(base, {"sharing": {"enabled": True}}), tmp_path)
    handlers = {path: handler for path, handler in default_handlers if path.startswith(r"/api/share-codes/")}
    assert len(handlers) == 2
    assert set(handlers.values()) == {ShareCodePolicy}
