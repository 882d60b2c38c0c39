"""The firewall role's rule table, resolved for one host.

    {{ firewall_platform_rules | twinhub_firewall_rules(inventory_hostname, groups, twinhub_addresses) }}
    {{ ['10.1.0.9/16', 'fd00::1'] | twinhub_networks_by_family }}  ->  {'ip': ['10.1.0.0/16'], 'ip6': ['fd00::1']}

Each rule (vars/main.yml) names the groups whose hosts listen and the groups
or networks that may connect; this returns the rules for `host` with their
nftables matches and source addresses by family. In Python rather than
Jinja: the group arithmetic and the port checks read plainly here, and a bad
port raises with the rule's name.
"""

from __future__ import annotations

import ipaddress


def _hosts(groups: dict, names: list) -> list[str]:
    return [h for name in names or [] for h in groups.get(str(name), [])]


def _ports(rule: dict, proto: str) -> list[str]:
    """A rule's ports of one protocol: numbers, or ranges written low-high."""
    from ansible.errors import AnsibleFilterError

    out = set()
    for value in rule.get(proto) or []:
        low, _, high = str(value).partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            first = last = 0
        if not (1 <= first <= last <= 65535):
            raise AnsibleFilterError(
                f"firewall rule {rule.get('name')!r}: {proto} port {value!r} is not a port (1-65535) or a range low-high"
            )
        out.add((first, last))
    return [f"{a}" if a == b else f"{a}-{b}" for a, b in sorted(out)]


def twinhub_networks_by_family(values: list) -> dict[str, list[str]]:
    """Addresses and networks by nftables family (ip, ip6), deduplicated, host bits cleared."""
    out: dict[str, list[str]] = {"ip": [], "ip6": []}
    for value in values:
        if not value:
            continue
        net = ipaddress.ip_network(str(value), strict=False)
        text = str(net.network_address) if net.num_addresses == 1 else str(net)
        if text not in out[family := "ip" if net.version == 4 else "ip6"]:
            out[family].append(text)
    return out


def twinhub_firewall_rules(rules: list, host: str, groups: dict, addresses: dict) -> list[dict]:
    out = []
    for rule in rules:
        if host not in _hosts(groups, rule.get("hosts")):
            continue
        ports = {proto: _ports(rule, proto) for proto in ("tcp", "udp")}
        matches = [f"{proto} dport {{ {', '.join(map(str, p))} }}" for proto, p in ports.items() if p]
        if rule.get("protocols"):
            matches.append(f"meta l4proto {{ {', '.join(map(str, rule['protocols']))} }}")
        peers = _hosts(groups, rule.get("from"))
        sources = twinhub_networks_by_family([addresses.get(h) for h in peers] + list(rule.get("sources") or []))
        out.append(
            {
                "name": str(rule.get("name", "")),
                "any": str(rule.get("any", False)).lower() == "true",
                "matches": matches,
                "sources": sources,
                # Its own containers reach the host's address from their bridges.
                "local_containers": host in peers,
            }
        )
    return out


class FilterModule:
    def filters(self):
        return {"twinhub_firewall_rules": twinhub_firewall_rules, "twinhub_networks_by_family": twinhub_networks_by_family}
