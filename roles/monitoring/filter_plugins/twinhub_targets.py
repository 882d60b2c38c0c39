"""Prometheus static_configs from inventory hosts, for the scrape jobs in vars/main.yml.

    groups['all'] | twinhub_targets(twinhub_addresses, '{address}:9100', flags={'storage': groups['storage']})

gives one static_config per host: its target (the format filled in with the
host's platform address) and its labels, `instance` being the inventory
name; a label value may name the host as {host}; a flag label is "true" for
the hosts listed with it and "false" for the others. Jinja has no list
comprehension, so without this each job is a for loop in the template.
"""

from __future__ import annotations


def twinhub_targets(hosts, addresses, target, labels=None, flags=None):
    configs = []
    for host in hosts:
        address = addresses.get(host) if hasattr(addresses, "get") else None
        if not address:
            continue  # a host whose address is unknown is not scraped (the facts play records them all)
        config_labels = {"instance": host}
        config_labels.update({k: str(v).format(host=host) for k, v in (labels or {}).items()})
        config_labels.update({k: "true" if host in members else "false" for k, members in (flags or {}).items()})
        configs.append({"targets": [target.format(address=address)], "labels": config_labels})
    return configs


class FilterModule:
    def filters(self):
        return {"twinhub_targets": twinhub_targets}
