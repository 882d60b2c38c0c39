"""Jinja filters from the platform's own code.

    {{ 'john.doe' | twinhub_user_dir }}  ->  john-2edoe
    {{ owncloud_users | map('twinhub_user_dir', 'owncloud_users') }}  (a bad name names the setting)
    {{ 'John Doe' | twinhub_user_name_problem }}  ->  why the name is refused ('' if it is not)
    {{ password | twinhub_bcrypt('monitoring proxy ops') }}  ->  $2b$10$... (the same for the same seed)
    {{ '10.1.2.3/24' | twinhub_network_problem }}  ->  why it is not an address or network ('' if it is)
    {{ '10.1.2.3' | twinhub_address_in(['10.1.0.0/16']) }}  ->  True
    {{ 'HTTP/hub.example.org' | twinhub_keytab_name }}  ->  HTTP_hub.example.org.keytab

The spelling of a user's name for homes and services is hubconfig.names'
(DockerSpawner's escaping): written once, so Ansible imports it rather than
escaping a second way in Jinja.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))


def twinhub_user_dir(name: str, setting: str = "twinhub_user_dir") -> str:
    """`setting`: the variable the name came from, for the refusal message."""
    from ansible.errors import AnsibleFilterError

    from hubconfig import names

    if why := names.problem(str(name)):
        raise AnsibleFilterError(f"{setting}: {why}")
    return names.escape(str(name))


def twinhub_user_name_problem(name: object) -> str:
    """Why the platform refuses `name` as a user's name, or '' (for assert's fail_msg)."""
    from hubconfig import names

    return (names.problem(name) or "") if isinstance(name, str) else f"{name!r} is not a string"


def twinhub_bcrypt(password: str, seed: str, rounds: int = 10) -> str:
    """bcrypt hash of password with a salt derived from seed (where the hash is used and for whom).

    Ansible's password_hash draws a random salt, so every run would write a
    new file and restart what reads it; a salt from the seed keeps reruns
    unchanged. A salt need not be secret, only not shared: the seed names
    the host, the service and the user. The hashing is passlib's (via
    password_hash).
    """
    import hashlib

    from ansible.plugins.filter.core import get_encrypted_password

    # bcrypt salts are 22 characters of ./A-Za-z0-9 whose last one carries
    # only 2 bits: 21 hex characters (all in that alphabet) and '.'.
    salt = hashlib.sha256(f"twinhub {seed}".encode()).hexdigest()[:21] + "."
    return get_encrypted_password(str(password), "bcrypt", salt=salt, rounds=int(rounds))


# Addresses and networks with the standard library's ipaddress: the
# ansible.utils filters would need netaddr in the toolchain for two calls.
def twinhub_network_problem(value: object) -> str:
    """Why `value` is not an IPv4/IPv6 address or network (CIDR), or ''."""
    import ipaddress

    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return f"{value!r} is not an IPv4 or IPv6 address or network (such as 192.0.2.10 or 192.0.2.0/24)"
    return "" if isinstance(value, str) else f"{value!r} is not a string"


def twinhub_address_in(address: str, networks: list) -> bool:
    """Whether `address` is in one of `networks` (addresses or CIDRs)."""
    import ipaddress

    addr = ipaddress.ip_address(str(address))
    return any(addr in ipaddress.ip_network(str(n), strict=False) for n in networks)


def twinhub_slurm_clusters(controllers: list, hostvars, addresses: dict, key_dir: str) -> dict:
    """The hub's view of the Slurm clusters (platform config spawner.slurm.clusters).

    From each controller's settings (slurm role): its slurmrestd's URL at the
    controller's platform address, the file the hub keeps the cluster's
    token key in (<key_dir>/slurm_jwt_key_<cluster>), and each partition's
    limits with the role's defaults (the node's CPUs and memory).
    """
    out = {}
    for host in controllers:
        v = hostvars[host]
        name = str(v["slurm_cluster"])
        cluster = v["slurm_clusters"][name]
        out[name] = {
            "url": f"http://{addresses[host]}:{int(v.get('slurm_rest_port', 6820))}",
            "key_file": f"{key_dir}/slurm_jwt_key_{name}",
            "partitions": {
                str(p["name"]): {
                    "max_cpus": int(p.get("max_cpus", cluster["node_cpus"])),
                    "max_memory_mb": int(p.get("max_memory_mb", cluster["node_memory_mb"])),
                    "max_time": str(p["max_time"]),
                }
                for p in cluster["partitions"]
            },
        }
    return out


def twinhub_keytab_name(principal: str) -> str:
    """The file a service principal's keytab is kept in: HTTP/hub.example.org -> HTTP_hub.example.org.keytab."""
    return str(principal).replace("/", "_") + ".keytab"


def twinhub_ssh_host_principals(clients: list, hostvars) -> list:
    """host/<kdc_client_host_name> of each Kerberos client whose sshd accepts tickets (kdc_client_ssh)."""
    out = []
    for host in clients:
        hv = hostvars[host]
        if str(hv.get("kdc_client_ssh", False)).lower() in ("true", "yes", "1"):
            out.append(f"host/{hv.get('kdc_client_host_name', host)}")
    return out


class FilterModule:
    def filters(self):
        return {
            "twinhub_user_dir": twinhub_user_dir,
            "twinhub_user_name_problem": twinhub_user_name_problem,
            "twinhub_bcrypt": twinhub_bcrypt,
            "twinhub_network_problem": twinhub_network_problem,
            "twinhub_address_in": twinhub_address_in,
            "twinhub_slurm_clusters": twinhub_slurm_clusters,
            "twinhub_keytab_name": twinhub_keytab_name,
            "twinhub_ssh_host_principals": twinhub_ssh_host_principals,
        }
