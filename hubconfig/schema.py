"""The platform config: its JSON Schema, defaults and validation.

One YAML file (rendered by Ansible from the inventory, or by Helm from
values.yaml) describes the platform; everything else reads it. Unknown keys
are errors, and an error names the key path, the bad value and what is
expected.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from hubconfig import names

# The unit is required: JupyterHub's ByteSpecification refuses a size string without one.
SIZE = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?[KMGT]$", "description": "a size like 512M or 2G"}
NAME = {"type": "string", "pattern": r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", "description": "a lowercase DNS label"}
PATH = {"type": "string", "pattern": r"^/", "description": "an absolute path"}
OPT_PATH = {"type": "string", "pattern": r"^(/.*)?$", "description": "an absolute path, or empty"}
URL = {"type": "string", "pattern": r"^https?://", "description": "an http(s):// URL"}
OPT_URL = {"type": "string", "pattern": r"^(https?://.*)?$", "description": "an http(s):// URL, or empty"}
USERS = {
    "type": "array",
    "items": {"type": "string", "pattern": f"^{names.PATTERN}$", "description": f"a user name ({names.RULE})"},
    "uniqueItems": True,
    "default": [],
}
GROUPS = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True, "default": []}


def obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """An object schema that refuses unknown keys."""
    schema = {"type": "object", "additionalProperties": False, "properties": properties, "default": {}}
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


# Slurm's time limit: minutes, or [days-]hours:minutes:seconds.
SLURM_TIME = {
    "type": "string",
    "pattern": r"^([0-9]+|([0-9]+-)?[0-9]{1,2}:[0-9]{2}:[0-9]{2})$",
    "description": "a Slurm time limit like 02:00:00, 1-00:00:00 or 90 (minutes)",
}
PROFILE = obj(
    {
        "display_name": {"type": "string", "minLength": 1},
        "description": {"type": "string", "default": ""},
        "kind": {
            "enum": ["container", "slurm"],
            "default": "container",
            "description": "container: a server of spawner.type (Swarm, Docker, Kubernetes); slurm: a batch job on"
            " spawner.slurm.clusters[cluster] (cpu_limit cores, mem_limit memory, time_limit)",
        },
        "image": {"type": "string", "default": "", "description": "a key of spawner.images (kind container)"},
        "cluster": {"type": "string", "default": "", "description": "kind slurm: a key of spawner.slurm.clusters"},
        "partition": {"type": "string", "default": "", "description": "kind slurm: a partition of the cluster"},
        "time_limit": {**SLURM_TIME, "default": "01:00:00"},
        "modules": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._+/-]*$", "description": "a module name"},
            "default": [],
            "description": "kind slurm: environment modules loaded before the server starts (module load)",
        },
        "cpu_limit": {"type": "number", "exclusiveMinimum": 0, "default": 1},
        "mem_limit": {**SIZE, "default": "2G"},
        "cpu_guarantee": {
            "type": "number",
            "minimum": 0,
            "default": 0,
            "description": "CPUs reserved for the server (Swarm and Kubernetes place it where they are free); 0: none",
        },
        "mem_guarantee": {
            "type": "string",
            "pattern": r"^([0-9]+(\.[0-9]+)?[KMGT])?$",
            "default": "",
            "description": "a size like 512M or 2G, or empty (memory reserved for the server; empty: none)",
        },
        "environment": {"type": "object", "additionalProperties": {"type": "string"}, "default": {}},
    },
    required=["display_name"],
)
# What the hub knows of a cluster: where its slurmrestd listens, the key
# its tokens are signed with, and its partitions' limits (profiles are
# checked against them). The hub role writes it from the inventory.
SLURM_CLUSTER = obj(
    {
        "url": URL,
        "key_file": PATH,
        "partitions": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": obj(
                {
                    "max_cpus": {"type": "integer", "minimum": 1},
                    "max_memory_mb": {"type": "integer", "minimum": 1},
                    "max_time": SLURM_TIME,
                },
                required=["max_cpus", "max_memory_mb", "max_time"],
            ),
        },
    },
    required=["url", "key_file", "partitions"],
)

# Keys a deployment tool sets itself, marked here once. The Helm chart
# (charts/twinhub/templates/hub-config.yaml) leaves them out of its values
# schema (tools/chart_schema.py); the hub role (roles/hub/vars/main.yml,
# hub_managed_config) refuses them in hub_platform_config
# (`python -m hubconfig managed ansible`). Tests check each tool sets exactly
# the keys marked for it.
MANAGED_BY = "x-twinhub-managed-by"


def managed_by(*managers: str) -> dict[str, Any]:
    return {MANAGED_BY: list(managers)}


CHART_SETS = managed_by("chart")
BOTH_SET = managed_by("chart", "ansible")


def managed_keys(manager: str, node: dict[str, Any] | None = None, prefix: str = "") -> list[str]:
    """Dotted paths of the keys `manager` ("chart" or "ansible") sets itself."""
    node = SCHEMA if node is None else node
    found = []
    for key, sub in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        if manager in sub.get(MANAGED_BY, []):
            found.append(path)
        elif sub.get("type") == "object":
            found += managed_keys(manager, sub, path + ".")
    return found


SCHEMA: dict[str, Any] = obj(
    {
        "environment": {"enum": ["production", "lab"], "default": "production"},
        "hub": obj(
            {
                "base_url": {"type": "string", "pattern": "^/", "default": "/"},
                "bind_url": {**URL, **BOTH_SET, "default": "http://0.0.0.0:8000"},
                "hub_bind_url": {**URL, **BOTH_SET, "default": "http://0.0.0.0:8081"},
                "hub_connect_url": {**OPT_URL, **BOTH_SET, "default": ""},
                "servers_connect_url": {
                    **OPT_URL,
                    **managed_by("ansible"),
                    "default": "",
                    "description": "where users' servers reach the hub API (an address that follows the active hub)",
                },
                "db_url": {"type": "string", "pattern": r"^(postgresql|sqlite)(\+\w+)?://", **BOTH_SET, "default": "sqlite://"},
                "db_password_file": {**OPT_PATH, **BOTH_SET, "default": ""},
                "secrets_dir": {**PATH, **BOTH_SET, "default": "/etc/twinhub/secrets"},
                "cleanup_servers": {"type": "boolean", "default": False},
                "log_format": {"enum": ["json", "text"], "default": "json"},
                "log_level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"], "default": "INFO"},
                "proxy_api_url": {**URL, **BOTH_SET, "default": "http://127.0.0.1:8001"},
                "proxy_external": {
                    "type": "boolean",
                    **BOTH_SET,
                    "default": False,
                    "description": "the proxy runs on its own (a hub host's twinhub-chp, the chart's pod) and outlives the hub",
                },
                "proxy_peer_api_urls": {
                    "type": "array",
                    "items": URL,
                    **managed_by("ansible"),
                    "default": [],
                    "description": "the other hub hosts' proxy APIs, given the same routes by the serving hub (hubconfig.proxy)",
                },
                "subdomain_host": {
                    **OPT_URL,
                    **BOTH_SET,
                    "default": "",
                    "description": "the hub's public https:// URL; each user's server is then on <name>.<its host>",
                },
                "single_origin_acknowledged": {
                    "type": "boolean",
                    "default": False,
                    "description": "accept, in production, users' servers on the hub's own origin (docs/security.md)",
                },
                "cookie_max_age_days": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "default": 7,
                    "description": "days a login lasts before the user logs in again (JupyterHub's default is 14)",
                },
                "token_max_age": {
                    "type": "integer",
                    "minimum": 0,
                    "default": 2592000,
                    "description": "longest lifetime (s) of an API token a user asks for (30 days; 0: tokens may never expire)",
                },
                "route_check_interval": {
                    "type": "integer",
                    **BOTH_SET,
                    "minimum": 10,
                    "default": 300,
                    "description": "seconds between route checks (they restore a restarted proxy's routes)",
                },
            }
        ),
        "auth": obj(
            {
                "type": {"enum": ["dummy", "pam", "kerberos", "ldap", "oidc"], "default": "pam"},
                "admin_users": USERS,
                "allowed_users": USERS,
                "allowed_groups": {**GROUPS, "description": "members of these groups may log in (ldap, oidc, pam, kerberos)"},
                "admin_groups": {**GROUPS, "description": "members of these groups are admins (ldap, oidc, pam, kerberos)"},
                "allow_existing_users": {
                    "type": "boolean",
                    "default": False,
                    "description": "let users in the hub's database log in though no longer allowed (JupyterHub's old default)",
                },
                "dummy": obj({"password_file": {**OPT_PATH, "default": ""}}),
                "kerberos": obj(
                    {
                        "realm": {
                            "type": "string",
                            "pattern": r"^([A-Z0-9]([A-Z0-9.-]*[A-Z0-9])?)?$",
                            "default": "",
                            "description": "the realm people's principals are in (uppercase, like TWINHUB.LAB)",
                        },
                        "service_principal": {
                            "type": "string",
                            "pattern": r"^(host/[A-Za-z0-9._-]+)?$",
                            "default": "",
                            "description": "the hub's own principal, host/<name> (like host/hub.example.org): pam_krb5"
                            " checks each ticket against a host key, so a forged KDC cannot log anyone in",
                        },
                        "keytab_file": {
                            **OPT_PATH,
                            "default": "/etc/twinhub/krb5.keytab",
                            "description": "that principal's keytab, readable by the hub's user only",
                        },
                        "job_renew_interval": {
                            "type": "integer",
                            "minimum": 5,
                            "maximum": 86400,
                            "default": 3600,
                            "description": "seconds between renewals of the ticket a user's Slurm job holds",
                        },
                        "timeout": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 60,
                            "default": 10,
                            "description": "seconds the hub waits for the KDC",
                        },
                    }
                ),
                "ldap": obj(
                    {
                        "server_address": {"type": "string", "default": ""},
                        "server_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 636},
                        "use_ssl": {
                            "type": "boolean",
                            "default": True,
                            "description": "LDAPS (true) or StartTLS before the bind (false); both verify the certificate",
                        },
                        "ca_file": {
                            **OPT_PATH,
                            "default": "",
                            "description": "CA bundle the directory's certificate is checked against (empty: the system's)",
                        },
                        "bind_dn_template": {"type": "array", "items": {"type": "string"}, "default": []},
                        "user_search_base": {"type": "string", "default": ""},
                        "user_attribute": {"type": "string", "default": "uid"},
                        "lookup_dn": {
                            "type": "boolean",
                            "default": False,
                            "description": "look the user up under user_search_base (instead of bind_dn_template)",
                        },
                        "search_user": {
                            "type": "string",
                            "default": "",
                            "description": "DN of the account that looks users up (empty: anonymous search)",
                        },
                        "search_password_file": {**OPT_PATH, "default": "", "description": "that account's password file"},
                        "group_dn_template": {
                            "type": "string",
                            "default": "",
                            "description": "a group's DN from its name, e.g. cn={group},ou=groups,dc=example,dc=org",
                        },
                        "timeout": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 60,
                            "default": 5,
                            "description": "seconds to reach the directory and for each answer",
                        },
                    }
                ),
                "oidc": obj(
                    {
                        "issuer": {
                            **OPT_URL,
                            "default": "",
                            "description": "the provider's issuer (its discovery document must name it and the endpoints below)",
                        },
                        "client_id": {"type": "string", "default": ""},
                        "client_secret_file": {**OPT_PATH, "default": ""},
                        "authorize_url": {**OPT_URL, "default": ""},
                        "token_url": {**OPT_URL, "default": ""},
                        "userdata_url": {**OPT_URL, "default": ""},
                        "callback_url": {**OPT_URL, "default": ""},
                        "ca_file": {
                            **OPT_PATH,
                            "default": "",
                            "description": "CA file the provider's certificate is checked against (empty: the system's)",
                        },
                        "identity_claim": {
                            "type": "string",
                            "minLength": 1,
                            "default": "sub",
                            "description": "the claim that identifies a person for good; each user name is bound to it",
                        },
                        "username_claim": {
                            "type": "string",
                            "minLength": 1,
                            "default": "preferred_username",
                            "description": "the claim the hub's user name comes from",
                        },
                        "groups_claim": {"type": "string", "default": "groups"},
                        "scope": {
                            "type": "array",
                            "items": {"type": "string"},
                            "default": ["openid", "profile", "email", "groups"],
                        },
                        "refresh_age": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 86400,
                            "default": 300,
                            "description": "seconds between checks of a user's tokens and groups with the provider (0: never)",
                        },
                        "token_min_lifetime": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 3600,
                            "default": 60,
                            "description": "seconds an access token must have left when a notebook gets it; fewer: refreshed",
                        },
                    }
                ),
            }
        ),
        "spawner": obj(
            {
                "type": {"enum": ["swarm", "docker", "kube", "local"], **CHART_SETS, "default": "swarm"},
                "images": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"type": "string", "minLength": 1},
                    "description": "the image allow-list: name -> image reference",
                    "default": {},
                },
                "profiles": {"type": "object", "minProperties": 1, "additionalProperties": PROFILE, "default": {}},
                "default_profile": {"type": "string", "default": ""},
                "notebook_uid": {"type": "integer", "minimum": 1, "default": 1000},
                "notebook_gid": {"type": "integer", "minimum": 0, "default": 100},
                "name_prefix": {**NAME, "default": "twinhub"},
                "network": {"type": "string", **managed_by("ansible"), "default": "twinhub-notebooks"},
                "placement_constraints": {"type": "array", "items": {"type": "string"}, "default": []},
                "environment": {"type": "object", "additionalProperties": {"type": "string"}, "default": {}},
                "start_timeout": {"type": "integer", "minimum": 5, "default": 120},
                "http_timeout": {"type": "integer", "minimum": 5, "default": 60},
                "poll_interval": {"type": "integer", "minimum": 1, "default": 10},
                "pids_limit": {
                    "type": "integer",
                    "minimum": 64,
                    "default": 1024,
                    "description": "processes and threads one server may have (a fork bomb stops there); docker and swarm",
                },
                "start_poll": {
                    "type": "number",
                    "minimum": 0.05,
                    "maximum": 5,
                    "default": 0.1,
                    "description": "seconds between looks at a starting Swarm task (first look; grows 1.5x to 1 s)",
                },
                "swarm_spawner": {
                    "enum": ["twinhub", "upstream"],
                    "default": "twinhub",
                    "description": "type swarm: twinhub's SwarmSpawner, or dockerspawner's as released"
                    " (slower starts; bench/spawn.py --upstream compares them)",
                },
                "pull_policy": {
                    "enum": ["ifnotpresent", "always", "never"],
                    "default": "ifnotpresent",
                    "description": "docker and kube spawners; Swarm nodes pull for themselves",
                },
                "slurm": obj(
                    {
                        # Written by the hub role from the inventory's clusters
                        # when there are any (not marked: a conditional section).
                        "clusters": {"type": "object", "additionalProperties": SLURM_CLUSTER, "default": {}},
                        "hub_url": {
                            **OPT_URL,
                            "default": "",
                            "description": "where jobs reach the hub API (the public URL through NGINX); empty: the hub's",
                        },
                        "jupyter_path": {
                            **PATH,
                            "default": "/opt/notebook/bin",
                            "description": "the directory of jupyterhub-singleuser on the compute nodes",
                        },
                        "start_timeout": {
                            "type": "integer",
                            "minimum": 10,
                            "default": 300,
                            "description": "seconds a job may wait in the queue and start before the spawn fails",
                        },
                        "ca_file": {
                            **PATH,
                            "default": "/etc/ssl/certs/ca-certificates.crt",
                            "description": "the CA bundle on the compute nodes that trusts the hub's public name",
                        },
                    }
                ),
            },
            required=["images", "profiles"],
        ),
        "storage": obj(
            {
                "home_host_path": {**PATH, "default": "/srv/twinhub/home/{username}"},
                "home_mount_path": {**PATH, "default": "/home/jovyan"},
                "shared_enabled": {"type": "boolean", "default": True},
                "shared_host_path": {**PATH, "default": "/srv/twinhub/shared"},
                "shared_mount_path": {**PATH, "default": "/home/jovyan/shared"},
                "shared_locks": obj(
                    {
                        "enabled": {
                            "type": "boolean",
                            "default": True,
                            "description": "a file under the shared area open in one user's server is read-only in"
                            " the others' (the notebook image's twinhub_locks)",
                        },
                        "lifetime_seconds": {
                            "type": "integer",
                            "minimum": 5,
                            "maximum": 3600,
                            "default": 120,
                            "description": "seconds a lock outlives its holder's last sign of life (a server that"
                            " went away without letting go); the holder lets go after half of it unused",
                        },
                    }
                ),
                "local_state_dir": {**PATH, "default": "/tmp/twinhub-state"},
                "homedir_service_url": {
                    **OPT_URL,
                    "default": "",
                    "description": "the storage host's home directory service; empty: the hub makes homes itself",
                },
                "homedir_token_file": {**OPT_PATH, "default": "", "description": "bearer token file for that service"},
            }
        ),
        "services": obj(
            {
                "idle_culler": obj(
                    {
                        "enabled": {"type": "boolean", "default": True},
                        "timeout": {"type": "integer", "minimum": 60, "default": 3600},
                        "every": {"type": "integer", "minimum": 10, "default": 300},
                    }
                ),
                "nbviewer": obj(
                    {
                        "enabled": {"type": "boolean", "default": False},
                        "url": {**OPT_URL, "default": ""},
                    }
                ),
                "metrics": obj({"authenticate": {"type": "boolean", "default": True}}),
                "ops": obj(
                    {
                        "enabled": {
                            "type": "boolean",
                            "default": False,
                            "description": "the operators' service (hub.secrets_dir/ops_token): playbooks/offboard.yml",
                        }
                    }
                ),
            }
        ),
        "sharing": obj(
            {
                "enabled": {
                    "type": "boolean",
                    "default": False,
                    "description": "users may share their servers (JupyterHub's shares; hubconfig.sharing)",
                },
                "groups": {**GROUPS, "description": "only members of these groups may share (empty: every user)"},
                "with_users": {
                    "type": "boolean",
                    "default": True,
                    "description": "share with a user by name (users may then look up other users' names)",
                },
                "with_groups": {"type": "boolean", "default": True, "description": "share with a group by name"},
                "codes": {
                    "type": "boolean",
                    "default": True,
                    "description": "share codes: a link any logged-in user may accept until it expires",
                },
                "code_max_lifetime": {
                    "type": "integer",
                    "minimum": 60,
                    "maximum": 31536000,
                    "default": 86400,
                    "description": "seconds a share code lives at most (a shorter one may be asked for)",
                },
                "auth_cache_seconds": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 300,
                    "default": 1,
                    "description": "seconds a user's server trusts the hub's word on who may use it before asking"
                    " again: a revoked share stops working within this (JupyterHub's own 0 means for ever, so 1 is"
                    " the least)",
                },
                "auth_outage_seconds": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 3600,
                    "default": 300,
                    "description": "while the hub cannot be asked (a failover, a failed switch), a user's server"
                    " keeps to the hub's last answer about a token for up to this long after it (0: never; requests"
                    " then fail until a hub answers); a refusal is never kept over",
                },
            }
        ),
    },
    required=["spawner"],
)


class PlatformConfigError(ValueError):
    """A platform config that twinhub refuses: names the key and what is expected."""


def with_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill in the schema's defaults, recursively, without touching the input."""
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    out = copy.deepcopy(value)
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = with_defaults(sub, out[key])
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(out) - set(schema.get("properties", {})):
            out[key] = with_defaults(extra, out[key])
    return out


def _describe(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {}))) or "none"
        return f"{path}: {error.message}; expected one of: {allowed}"
    if error.validator == "enum":
        return f"{path}: {error.instance!r} is not allowed; expected one of {error.validator_value}"
    if error.validator == "pattern" and "description" in error.schema:
        return f"{path}: {error.instance!r} is not {error.schema['description']}"
    if error.validator == "type":
        return f"{path}: {error.instance!r} is not of type {error.validator_value}"
    return f"{path}: {error.message}"


def _check_references(cfg: dict[str, Any]) -> list[str]:
    """Rules JSON Schema cannot say: cross-references and environment rules."""
    problems = []
    sp = cfg["spawner"]
    from jupyterhub.traitlets import ByteSpecification  # how the hub reads mem_limit and mem_guarantee

    size_bytes = ByteSpecification().validate
    for slug, profile in sp["profiles"].items():
        if profile["kind"] == "slurm":
            if sp["type"] not in ("swarm", "docker"):
                problems.append(
                    f"spawner.profiles.{slug}.kind: 'slurm' with spawner.type {sp['type']!r};"
                    " expected spawner.type swarm or docker (the Kubernetes variant has no Slurm profiles)"
                )
            problems += _slurm_profile_problems(slug, profile, sp, size_bytes)
            continue
        if profile["image"] not in sp["images"]:
            problems.append(
                f"spawner.profiles.{slug}.image: {profile['image']!r} is not in the image allow-list; "
                f"expected one of {sorted(sp['images'])}"
            )
        if profile["cpu_guarantee"] > profile["cpu_limit"]:
            problems.append(
                f"spawner.profiles.{slug}.cpu_guarantee: {profile['cpu_guarantee']:g} is more than its cpu_limit"
                f" {profile['cpu_limit']:g}; expected at most the limit"
            )
        if profile["mem_guarantee"] and size_bytes(None, profile["mem_guarantee"]) > size_bytes(None, profile["mem_limit"]):
            problems.append(
                f"spawner.profiles.{slug}.mem_guarantee: {profile['mem_guarantee']!r} is more than its mem_limit"
                f" {profile['mem_limit']!r}; expected at most the limit"
            )
    if sp["default_profile"] and sp["default_profile"] not in sp["profiles"]:
        problems.append(
            f"spawner.default_profile: {sp['default_profile']!r} is not a profile; expected one of {sorted(sp['profiles'])}"
        )
    for key in ("admin_users", "allowed_users"):
        for name in cfg["auth"][key]:
            if why := names.problem(name):
                problems.append(f"auth.{key}: {why}")
    production = cfg["environment"] == "production"
    if production and cfg["auth"]["type"] == "dummy":
        problems.append(
            "auth.type: 'dummy' accepts a shared password; expected pam, kerberos, ldap or oidc when environment is production"
        )
    if production and cfg["hub"]["db_url"].startswith("sqlite"):
        problems.append("hub.db_url: SQLite is for the lab; expected a postgresql:// URL when environment is production")
    hub = cfg["hub"]
    if hub["subdomain_host"] and not re.fullmatch(r"https://[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?", hub["subdomain_host"]):
        problems.append(
            f"hub.subdomain_host: {hub['subdomain_host']!r} is not an https:// URL of a host name with a dot and no path;"
            " expected e.g. https://hub.example.org (users' servers at <name>.hub.example.org, a wildcard certificate)"
        )
    if production and not hub["subdomain_host"] and not hub["single_origin_acknowledged"]:
        problems.append(
            "hub.subdomain_host: empty in production, so every user's server would share the hub's origin (a page one"
            " user serves can act for whoever opens it); expected per-user origins (twinhub_user_subdomains with"
            " Ansible, ingress.userSubdomains with the chart: wildcard DNS and certificate), or"
            " hub.single_origin_acknowledged: true to accept that risk (docs/security.md)"
        )
    if production and sp["type"] == "local":
        problems.append("spawner.type: 'local' runs servers as hub processes; expected swarm, docker or kube in production")
    auth = cfg["auth"]
    if auth["type"] == "ldap":
        problems += _ldap_problems(auth)
    if auth["type"] == "kerberos":
        for key in ("realm", "service_principal"):
            if not auth["kerberos"][key]:
                problems.append(f"auth.kerberos.{key}: empty; expected a value when auth.type is kerberos")
    if auth["type"] == "oidc":
        for key in ("issuer", "client_id", "client_secret_file", "authorize_url", "token_url", "userdata_url"):
            if not auth["oidc"][key]:
                problems.append(f"auth.oidc.{key}: empty; expected a value when auth.type is oidc")
        callback, public = auth["oidc"]["callback_url"], hub["subdomain_host"]
        if callback and public and not callback.startswith(public.rstrip("/") + "/hub/"):
            problems.append(
                f"auth.oidc.callback_url: {callback!r} is not on the hub's public name ({public});"
                f" expected {public.rstrip('/')}/hub/oauth_callback (as registered at the provider)"
            )
    st = cfg["storage"]
    if st["homedir_service_url"] and not st["homedir_token_file"]:
        problems.append(
            "storage.homedir_token_file: empty; expected the token file of the home directory service "
            "when storage.homedir_service_url is set"
        )
    nbviewer = cfg["services"]["nbviewer"]
    if nbviewer["enabled"] and not nbviewer["url"]:
        problems.append("services.nbviewer.url: empty; expected nbviewer's public URL when nbviewer is enabled")
    return problems


def slurm_minutes(limit: str) -> int:
    """A Slurm time limit (SLURM_TIME) in minutes, rounded up."""
    if ":" not in limit:
        return int(limit)
    days, _, clock = limit.rpartition("-")
    h, m, sec = (int(x) for x in clock.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + (1 if sec else 0)


def _slurm_profile_problems(slug: str, profile: dict[str, Any], sp: dict[str, Any], size_bytes) -> list[str]:
    """A Slurm profile against its cluster's partitions (spawner.slurm.clusters)."""
    at = f"spawner.profiles.{slug}"
    clusters = sp["slurm"]["clusters"]
    if profile["image"]:
        return [f"{at}.image: {profile['image']!r} set on a slurm profile; expected it left out (jobs run the nodes' Jupyter)"]
    if profile["cluster"] not in clusters:
        return [
            f"{at}.cluster: {profile['cluster']!r} is not a Slurm cluster of the platform; expected one of {sorted(clusters)}"
        ]
    partitions = clusters[profile["cluster"]]["partitions"]
    if profile["partition"] not in partitions:
        return [
            f"{at}.partition: {profile['partition']!r} is not a partition of cluster {profile['cluster']};"
            f" expected one of {sorted(partitions)}"
        ]
    limits, problems = partitions[profile["partition"]], []
    where = f"partition {profile['partition']} of cluster {profile['cluster']}"
    cores = profile["cpu_limit"]
    if cores != int(cores) or cores > limits["max_cpus"]:
        problems.append(f"{at}.cpu_limit: {cores:g} cores; expected a whole number up to {limits['max_cpus']} ({where})")
    memory_mb = size_bytes(None, profile["mem_limit"]) // 2**20
    if memory_mb > limits["max_memory_mb"]:
        problems.append(
            f"{at}.mem_limit: {profile['mem_limit']!r} ({memory_mb} MB); expected at most {limits['max_memory_mb']} MB ({where})"
        )
    if slurm_minutes(profile["time_limit"]) > slurm_minutes(limits["max_time"]):
        problems.append(f"{at}.time_limit: {profile['time_limit']!r}; expected at most {limits['max_time']} ({where})")
    return problems


def _ldap_problems(auth: dict[str, Any]) -> list[str]:
    ldap = auth["ldap"]
    problems = []
    if not ldap["server_address"]:
        problems.append("auth.ldap.server_address: empty; expected the LDAP server's host name when auth.type is ldap")
    if not ldap["lookup_dn"] and not ldap["bind_dn_template"]:
        problems.append(
            "auth.ldap.bind_dn_template: empty and auth.ldap.lookup_dn is false; expected a template such as"
            " uid={username},ou=people,dc=example,dc=org, or lookup_dn: true with user_search_base"
        )
    for template in ldap["bind_dn_template"]:
        if "{username}" not in template:
            problems.append(f"auth.ldap.bind_dn_template: {template!r} has no {{username}}; expected one in each template")
    if ldap["lookup_dn"] and not ldap["user_search_base"]:
        problems.append("auth.ldap.user_search_base: empty; expected the DN users are looked up under when lookup_dn is true")
    if ldap["search_user"] and not ldap["search_password_file"]:
        problems.append(
            f"auth.ldap.search_password_file: empty; expected the password file of search_user {ldap['search_user']!r}"
        )
    if (auth["allowed_groups"] or auth["admin_groups"]) and "{group}" not in ldap["group_dn_template"]:
        problems.append(
            f"auth.ldap.group_dn_template: {ldap['group_dn_template']!r} has no {{group}}; expected a template such as"
            " cn={group},ou=groups,dc=example,dc=org when auth.allowed_groups or auth.admin_groups are set"
        )
    return problems


def validate(raw: Any, source: str = "platform config") -> dict[str, Any]:
    """Validate a parsed config; return it with defaults filled in."""
    if not isinstance(raw, dict):
        raise PlatformConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise PlatformConfigError(f"{source}:\n  " + "\n  ".join(_describe(e) for e in errors))
    cfg = with_defaults(SCHEMA, raw)
    problems = _check_references(cfg)
    if problems:
        raise PlatformConfigError(f"{source}:\n  " + "\n  ".join(problems))
    return cfg


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PlatformConfigError(f"{path}: no such file; expected the platform config rendered by Ansible or Helm") from None
    except yaml.YAMLError as exc:
        raise PlatformConfigError(f"{path}: not valid YAML: {exc}") from None
    return validate(raw, str(path))
