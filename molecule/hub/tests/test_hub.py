"""The hub role: JupyterHub from the image under systemd, its config, its secrets."""

import json
import re

import yaml

SECRETS = "/etc/twinhub/secrets"


def test_hub_is_healthy_behind_systemd(host):
    assert host.service("twinhub-hub").is_enabled
    assert host.service("twinhub-hub").is_running
    assert host.check_output("curl -sf -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/hub/health") == "200"


def test_login_works_and_nobody_else_gets_in(host):
    jar = "/tmp/hub-cookies"
    host.run(f"rm -f {jar}")
    host.check_output(f"curl -sf -c {jar} -o /dev/null http://127.0.0.1:8000/hub/login")
    xsrf = host.check_output(f"awk '$6 == \"_xsrf\" {{print $7}}' {jar}")

    def login(user, password):
        return host.check_output(
            f"curl -s -b {jar} -c {jar} -o /dev/null -w '%{{http_code}} %{{redirect_url}}' "
            f"--data-urlencode username={user} --data-urlencode password={password} --data-urlencode _xsrf={xsrf} "
            "http://127.0.0.1:8000/hub/login"
        )

    assert login("mallory", "molecule-login").startswith("403")
    assert login("alice", "wrong").startswith("403")
    code, location = login("alice", "molecule-login").split(" ", 1)
    assert code == "302"
    assert "/hub/" in location


def test_secrets_are_private_to_the_hub_uid(host):
    names = host.check_output(f"ls {SECRETS}").split()
    assert sorted(names) == ["cookie_secret", "crypt_key", "db_password", "dummy_password", "prometheus_token", "proxy_token"]
    for name in names:
        f = host.file(f"{SECRETS}/{name}")
        assert (f.mode, f.uid) == (0o600, 990), name
    assert host.file(SECRETS).mode == 0o700


def test_platform_config_is_rendered_with_managed_settings(host):
    cfg = yaml.safe_load(host.file("/etc/twinhub/platform.yaml").content_string)
    assert cfg["hub"]["db_url"].startswith("postgresql://jupyterhub@")
    assert cfg["hub"]["db_password_file"] == f"{SECRETS}/db_password"
    assert cfg["hub"]["hub_connect_url"] == "http://twinhub-hub-hub-1:8081"
    # Servers call the hub through the relay that follows the active hub.
    assert cfg["hub"]["servers_connect_url"] == "http://twinhub-hub-api:8081"
    assert cfg["auth"]["dummy"]["password_file"] == f"{SECRETS}/dummy_password"
    # No secret value is in the config itself.
    for name in ("db_password", "proxy_token", "cookie_secret"):
        value = host.file(f"{SECRETS}/{name}").content_string.strip()
        assert value not in host.file("/etc/twinhub/platform.yaml").content_string


def test_hub_uses_postgresql(host):
    out = host.check_output(
        "runuser -u postgres -- psql -Atq jupyterhub -c "
        "\"SELECT count(*) FROM pg_stat_activity WHERE datname = 'jupyterhub' AND usename = 'jupyterhub'\""
    )
    assert int(out) >= 1
    tables = host.check_output("runuser -u postgres -- psql -Atq jupyterhub -c '\\dt'")
    assert "|users|" in tables


def test_container_runs_unprivileged_with_limits(host):
    info = json.loads(host.check_output("docker inspect twinhub-hub"))[0]
    assert info["Config"]["User"] == "990:990"
    hc = info["HostConfig"]
    assert hc["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in hc["SecurityOpt"]
    assert hc["Memory"] == 2 * 1024**3
    assert hc["NanoCpus"] == 2 * 10**9
    assert sorted(info["NetworkSettings"]["Networks"]) == ["bridge", "twinhub-notebooks"]
    aliases = info["NetworkSettings"]["Networks"]["twinhub-notebooks"]["Aliases"]
    assert "twinhub-hub-hub-1" in aliases
    # The Docker socket is the hub's, through the docker group only.
    assert "/var/run/docker.sock:/var/run/docker.sock" in hc["Binds"]
    gid = host.check_output("getent group docker").split(":")[2]
    assert hc["GroupAdd"] == [gid]


def test_hub_sees_the_swarm(host):
    out = host.check_output(
        "docker exec twinhub-hub python -c \"import docker; print(docker.from_env().info()['Swarm']['ControlAvailable'])\""
    )
    assert out == "True"


def test_logs_are_json_without_secrets(host):
    logs = host.check_output("docker logs twinhub-hub 2>&1 | tail -n 200")
    lines = [line for line in logs.splitlines() if line.startswith("{")]
    assert lines, logs[-2000:]
    for line in lines:
        record = json.loads(line)
        assert {"@timestamp", "log.level", "message"} <= set(record)
    for name in ("db_password", "proxy_token", "cookie_secret", "crypt_key", "dummy_password"):
        value = host.file(f"{SECRETS}/{name}").content_string.strip()
        assert value not in logs, f"{name} appears in the hub's log"


def test_bad_config_never_reaches_the_running_hub(host):
    """The image's own check refuses a bad file; the running hub is untouched."""
    host.check_output(
        "install -m 0644 /etc/twinhub/platform.yaml /tmp/bad.yaml && sed -i 's/^  type: swarm/  type: warp/' /tmp/bad.yaml"
    )
    r = host.run(
        "docker run --rm --network none -v /tmp/bad.yaml:/tmp/bad.yaml:ro --entrypoint python "
        "$(docker inspect -f '{{.Config.Image}}' twinhub-hub) -m hubconfig check /tmp/bad.yaml"
    )
    assert r.rc == 78
    assert re.search(r"spawner\.type: 'warp' is not allowed", r.stderr)
    assert host.service("twinhub-hub").is_running
