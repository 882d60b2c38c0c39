"""The private registry: TLS from the platform CA, images pushed once, nodes pull."""

import json
import os

import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
PROBE = os.environ["TWINHUB_IMAGE_PROBE"]
REGISTRY = testinfra.get_host(f"ansible://registry?ansible_inventory={INVENTORY}")
NODE = testinfra.get_host(f"ansible://node?ansible_inventory={INVENTORY}")


def test_catalog_over_tls_verified_by_the_platform_ca():
    # curl with the system store only: the node trusts the platform CA.
    out = NODE.check_output("curl -sf --max-time 5 https://registry:5000/v2/_catalog")
    assert PROBE.split(":")[0] in json.loads(out)["repositories"]


def test_plain_http_is_not_served():
    r = NODE.run("curl -s --max-time 5 -o /dev/null -w '%{http_code}' http://registry:5000/v2/")
    assert r.stdout.strip() == "400"  # "Client sent an HTTP request to an HTTPS server"


def test_tls_is_modern():
    r = NODE.run("curl -s --max-time 5 --tlsv1.1 --tls-max 1.1 https://registry:5000/v2/")
    assert r.rc != 0


def test_node_pulled_the_image_from_the_registry():
    images = NODE.check_output("docker image ls --format '{{.Repository}}:{{.Tag}}'").splitlines()
    assert f"registry:5000/{PROBE}" in images
    assert NODE.file("/etc/docker/certs.d/registry:5000/ca.crt").exists


def test_image_runs_from_the_registry_copy():
    out = NODE.check_output(f"docker run --rm registry:5000/{PROBE} echo pulled-and-ran")
    assert out == "pulled-and-ran"


def test_registry_host_keeps_no_local_copy():
    images = REGISTRY.check_output("docker image ls --format '{{.Repository}}:{{.Tag}}'").splitlines()
    assert PROBE not in images


def test_key_readable_by_the_registry_only():
    key = REGISTRY.file("/etc/docker/registry/tls/registry.key")
    assert (key.mode, key.group) == (0o640, "docker-registry")
    assert REGISTRY.service("docker-registry").is_running
