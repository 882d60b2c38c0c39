"""The host firewall: peers reach their port, a stranger reaches nothing, Docker's rules stay."""

import os
import socket

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
FW = testinfra.get_host(f"ansible://firewall?ansible_inventory={INVENTORY}")
HUB = testinfra.get_host(f"ansible://firewall-hub?ansible_inventory={INVENTORY}")


def address():
    """The host's address on the scenario's network (docker0 is its engine's)."""
    return FW.check_output("ip -4 -o addr show dev eth0").split()[3].split("/")[0]


def fetch(client, port):
    """HTTP status of the stand-in on `port` seen from `client`, or 'timed out' (dropped) / 'refused'."""
    r = client.run(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 3 http://{address()}:{port}/")
    return {0: r.stdout.strip(), 7: "refused", 28: "timed out"}.get(r.rc, f"curl exit {r.rc}")


def test_the_stand_ins_listen_on_every_address():
    # The host reaches its own listeners on its address: a drop below is
    # the firewall's, not a dead listener.
    for port in (5432, 9090, 6000):
        assert fetch(FW, port) == "200"


def test_a_peer_reaches_its_port_only():
    assert fetch(HUB, 5432) == "200"  # PostgreSQL from the hubs
    assert fetch(HUB, 9090) == "timed out"  # Prometheus: monitoring and operators only
    assert fetch(HUB, 6000) == "timed out"  # no rule: nobody


@pytest.mark.parametrize("port", [5432, 9090, 6000])
def test_a_stranger_reaches_nothing(port):
    with pytest.raises(TimeoutError):
        socket.create_connection((address(), port), timeout=2).close()


def test_drops_are_counted():
    socket_errors = 0
    for _ in range(2):
        try:
            socket.create_connection((address(), 6000), timeout=1).close()
        except TimeoutError:
            socket_errors += 1
    assert socket_errors == 2
    chain = FW.check_output("nft list chain inet twinhub prerouting")
    dropped = [line for line in chain.splitlines() if line.strip().startswith("counter") and line.strip().endswith("drop")]
    assert dropped, chain
    assert int(dropped[0].split()[2]) >= 2, chain


def tables():
    return set(FW.check_output("nft list tables").splitlines())


def test_reload_and_stop_leave_dockers_rules_alone():
    before = tables()
    assert "table inet twinhub" in before
    assert "table ip nat" in before  # Docker's (iptables-nft)
    assert "table ip filter" in before
    assert FW.run("systemctl reload twinhub-firewall").rc == 0
    assert tables() == before
    assert FW.run("systemctl stop twinhub-firewall").rc == 0
    try:
        assert tables() == before - {"table inet twinhub"}
        assert fetch(HUB, 6000) == "200"  # the firewall was what dropped it
    finally:
        assert FW.run("systemctl start twinhub-firewall").rc == 0
    assert tables() == before
    assert fetch(HUB, 6000) == "timed out"


def test_the_rules_file_and_unit():
    conf = FW.file("/etc/twinhub-firewall.nft")
    assert conf.mode == 0o640
    assert conf.contains("PostgreSQL")
    assert FW.service("twinhub-firewall").is_enabled
    # Debian's own unit (whose file flushes every table, Docker's too) is not used.
    assert not FW.service("nftables").is_enabled
