"""The platform defaults: one address per host, chosen per host, the same for every play."""

import json
import os

import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
ONE, TWO = (testinfra.get_host(f"ansible://twinhub-{i}?ansible_inventory={INVENTORY}") for i in (1, 2))


def recorded(host):
    return json.loads(host.file("/etc/twinhub-platform.json").content_string)


def default_route_address(host):
    dev = host.check_output("ip -4 route show default").split(" dev ")[1].split()[0]
    return host.check_output(f"ip -4 -o addr show dev {dev}").split()[3].split("/")[0]


def addresses(host):
    return [line.split()[3].split("/")[0] for line in host.check_output("ip -4 -o addr show scope global").splitlines()]


def test_a_multi_homed_host_uses_the_address_it_was_given():
    one = recorded(TWO)["addresses"]["twinhub-1"]
    assert one in addresses(ONE)
    assert one != default_route_address(ONE)


def test_other_hosts_use_their_default_route_address():
    assert recorded(ONE)["addresses"]["twinhub-2"] == default_route_address(TWO)


def test_every_host_sees_the_same_platform():
    assert recorded(ONE) == recorded(TWO)
    assert recorded(ONE)["preferred_hub"] == "twinhub-1"
    assert recorded(ONE)["mode"] == "failover"
