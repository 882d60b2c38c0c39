"""The docker role: engine installed, daemon.json honoured by the running engine."""

import json
import os


def test_engine_package_and_service(host):
    assert host.package("docker.io").is_installed
    svc = host.service("docker")
    assert svc.is_running
    assert svc.is_enabled


def test_daemon_json_is_what_the_role_wrote(host):
    f = host.file("/etc/docker/daemon.json")
    assert f.mode == 0o644
    cfg = json.loads(f.content_string)
    assert cfg["log-driver"] == "json-file"
    assert cfg["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert cfg["live-restore"] is False
    assert cfg["default-address-pools"] == [{"base": "10.231.0.0/16", "size": 24}]


def test_running_engine_rotates_container_logs(host):
    image = os.environ["TWINHUB_IMAGE_PROBE"]
    cid = host.check_output(f"docker create {image} true")
    try:
        log_config = json.loads(host.check_output(f"docker inspect -f '{{{{json .HostConfig.LogConfig}}}}' {cid}"))
    finally:
        host.run(f"docker rm {cid}")
    assert log_config == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}


def test_bridge_networks_come_from_the_pool(host):
    host.run("docker network rm twinhub-pool-check")
    host.check_output("docker network create twinhub-pool-check")
    try:
        subnet = host.check_output("docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' twinhub-pool-check")
    finally:
        host.run("docker network rm twinhub-pool-check")
    assert subnet.startswith("10.231."), subnet


def test_preloaded_image_runs(host):
    image = os.environ["TWINHUB_IMAGE_PROBE"]
    out = host.check_output(f"docker run --rm {image} sh -c 'echo probe-ok; id -u'")
    assert out.split() == ["probe-ok", "65534"]


def test_metrics_endpoint_answers(host):
    out = host.check_output("curl -sf http://127.0.0.1:9323/metrics")
    assert "engine_daemon_engine_info" in out


def test_only_listed_users_in_docker_group(host):
    line = host.check_output("getent group docker")
    assert line.split(":")[3].split(",") == ["jupyter-ops"], line
