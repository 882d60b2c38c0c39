"""The common role, checked on the converged host."""

import pytest


@pytest.mark.parametrize("pkg", ["ca-certificates", "curl", "acl", "rsync", "jq", "sudo", "chrony", "tzdata"])
def test_packages_installed(host, pkg):
    assert host.package(pkg).is_installed


def test_chrony_uses_site_servers_and_is_enabled(host):
    conf = host.file("/etc/chrony/conf.d/twinhub.conf")
    assert conf.contains("^server ntp1.example.org iburst$")
    assert conf.contains("^server ntp2.example.org iburst$")
    assert host.service("chrony").is_enabled


def test_sysctl_file_has_jupyter_settings(host):
    conf = host.file("/etc/sysctl.d/60-twinhub.conf")
    assert conf.mode == 0o644
    assert conf.contains("^fs.inotify.max_user_watches=524288$")
    assert conf.contains("^net.core.somaxconn=4096$")


def test_open_file_limits(host):
    assert host.file("/etc/security/limits.d/60-twinhub.conf").contains("^\\* *hard nofile 1048576$")
    assert host.file("/etc/systemd/system.conf.d/60-twinhub.conf").contains("^DefaultLimitNOFILE=1048576$")
    # The running systemd manager picked the limit up (daemon-reexec).
    out = host.check_output("systemctl show --property DefaultLimitNOFILE")
    assert out.strip() == "DefaultLimitNOFILE=1048576"


def test_deploy_user_key_login_and_sudo(host):
    user = host.user("twinhub")
    assert user.exists
    assert user.shell == "/bin/bash"
    keys = host.file("/home/twinhub/.ssh/authorized_keys")
    assert keys.user == "twinhub"
    assert keys.mode == 0o600
    assert keys.contains("ops@example.org")
    # Password login is impossible: the hash is locked.
    assert host.check_output("getent shadow twinhub").split(":")[1] in ("!", "*", "!*")
    with host.sudo("twinhub"):
        assert host.check_output("sudo -n id -u") == "0"


def test_timezone(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Etc/UTC"
