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


def test_nobody_pushes_through_the_registry_address():
    # The node has the probe image; it tries to push a changed copy in its place.
    NODE.check_output(f"docker tag registry:5000/{PROBE} registry:5000/{PROBE.split(':')[0]}:evil")
    r = NODE.run(f"docker push registry:5000/{PROBE.split(':')[0]}:evil")
    assert r.rc != 0
    assert "evil" not in NODE.check_output(f"curl -sf https://registry:5000/v2/{PROBE.split(':')[0]}/tags/list")
    # The push side listens on the registry host's loopback only...
    assert NODE.run("curl -s --max-time 5 http://registry:5001/v2/").rc != 0
    # ...and wants the login there too.
    code = REGISTRY.check_output("curl -s -o /dev/null -w '%{http_code}' http://localhost:5001/v2/")
    assert code == "401"
    htpasswd = REGISTRY.file("/etc/docker/registry/push.htpasswd")
    assert htpasswd.content_string.startswith("twinhub-push:$2b$")
    assert "molecule-registry-push-password" not in htpasswd.content_string
    assert (htpasswd.mode, htpasswd.group) == (0o640, "docker-registry")
    # The role logged out after pushing: no login left in root's Docker config.
    assert "localhost:5001" not in REGISTRY.run("cat /root/.docker/config.json").stdout


def digest(tag: str) -> str:
    repo, _, tag = tag.partition(":")
    out = NODE.check_output(
        "curl -sfI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "
        f"https://registry:5000/v2/{repo}/manifests/{tag}"
    )
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.lower().startswith("docker-content-digest"))


def test_a_tag_pushed_again_does_not_change_what_a_digest_runs():
    """With the login, the tag can be moved; a reference by digest (twinhub_images_by_digest) still runs the original."""
    repo = PROBE.split(":")[0]
    before = digest(PROBE)
    push = f"localhost:5001/{PROBE}"
    REGISTRY.check_output("echo molecule-registry-push-password | docker login -u twinhub-push --password-stdin localhost:5001")
    try:
        REGISTRY.check_output(f"docker pull {push}")
        REGISTRY.check_output(f"printf 'FROM {push}\\nLABEL twinhub.test=changed\\n' | docker build -q -t {push} -")
        REGISTRY.check_output(f"docker push {push}")
    finally:
        REGISTRY.run("docker logout localhost:5001")
    after = digest(PROBE)
    assert after != before
    label = '{{ index .Config.Labels "twinhub.test" }}'
    NODE.check_output(f"docker pull registry:5000/{repo}@{before}")
    assert NODE.check_output(f"docker image inspect -f '{label}' registry:5000/{repo}@{before}") in ("", "<no value>")
    NODE.check_output(f"docker pull registry:5000/{PROBE}")
    assert NODE.check_output(f"docker image inspect -f '{label}' registry:5000/{PROBE}") == "changed"
