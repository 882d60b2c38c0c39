"""ownCloud: everything around the server here; the server itself where its images exist."""

import os

import pytest

LIVE = bool(os.environ.get("TWINHUB_OWNCLOUD_IMAGES_ARCHIVE"))
NO_IMAGES = "ownCloud, MariaDB and Redis images are not obtainable here (no registry); set TWINHUB_OWNCLOUD_IMAGES_ARCHIVE"


def test_units_are_valid_systemd_units(host):
    for unit in ("twinhub-owncloud-db", "twinhub-owncloud-redis", "twinhub-owncloud"):
        path = f"/etc/systemd/system/{unit}.service"
        assert host.file(path).exists
        result = host.run(f"systemd-analyze verify {path}")
        assert result.rc == 0, result.stderr


def address(host) -> str:
    """The host's platform address (its default route's, as playbooks/facts.yml takes it), where NGINX reaches ownCloud."""
    return host.check_output("ip -4 -o route get 1.1.1.1").split(" src ")[1].split()[0]


def test_server_unit_mounts_the_twinhub_tree_and_listens_on_the_platform_address(host):
    unit = host.file("/etc/systemd/system/twinhub-owncloud.service").content_string
    assert "-v /srv/twinhub:/mnt/twinhub" in unit
    # Not every interface: the platform address, which the firewall opens to the proxy hosts only.
    assert f"-p {address(host)}:8080:8080" in unit
    assert "--user 1000:100" in unit
    assert "owncloud/server:10.15" in unit
    assert "no-new-privileges" in unit


def test_secrets_only_in_private_env_files(host):
    for name in ("owncloud", "db"):
        f = host.file(f"/etc/twinhub/owncloud/{name}.env")
        assert f.mode == 0o600
    env = host.file("/etc/twinhub/owncloud/owncloud.env").content_string
    assert "OWNCLOUD_TRUSTED_DOMAINS=cloud.lab.example.org" in env
    assert "OWNCLOUD_OVERWRITE_PROTOCOL=https" in env
    for unit in ("twinhub-owncloud-db", "twinhub-owncloud"):
        assert "molecule-db-password" not in host.file(f"/etc/systemd/system/{unit}.service").content_string


def test_occ_script_is_valid_and_maps_each_users_home(host):
    script = host.file("/etc/twinhub/owncloud/configure.sh")
    assert script.mode == 0o700
    assert host.run("bash -n /etc/twinhub/owncloud/configure.sh").rc == 0
    text = script.content_string
    # One mount per user, on the home as hubconfig.names spells it.
    assert "user_mount alice alice" in text
    assert "user_mount john.doe john-2edoe" in text
    # home/$user only where the old shared mount is removed.
    assert text.count("/mnt/twinhub/home/$user") == 1
    assert "add_mount Shared /mnt/twinhub/shared" in text
    assert "set_system trusted_domains cloud.lab.example.org" in text


@pytest.mark.skipif(not LIVE, reason=NO_IMAGES)
def test_live_owncloud_serves_users_their_home(host):
    status = host.check_output(f"curl -sf http://{address(host)}:8080/status.php")
    assert '"installed":true' in status
    listing = host.check_output(
        f"curl -sf -u admin:molecule-admin-pass -X PROPFIND -H 'Depth: 1' http://{address(host)}:8080/remote.php/dav/files/admin/"
    )
    assert "Jupyter" in listing
    assert "Shared" in listing


@pytest.mark.skipif(not LIVE, reason=NO_IMAGES)
def test_live_occ_configuration_is_idempotent(host):
    assert "CHANGED" not in host.check_output("/etc/twinhub/owncloud/configure.sh")
