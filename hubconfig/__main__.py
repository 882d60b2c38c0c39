"""`python -m hubconfig check FILE`: validate a platform config, change nothing.

Ansible runs it on the controller before any host changes, and the hub role
runs it in the hub image before a (re)start. Exit 0 when valid, 78 (EX_CONFIG)
with one line per problem otherwise.

`python -m hubconfig name NAME`: print NAME as homes and services spell it
(hubconfig.names), or refuse a name the rules do not allow (exit 78).

`python -m hubconfig directory FILE`: reach the LDAP directory FILE names as
the hub would (TLS verified, the search account bound); the hub role runs it
in the hub image before a (re)start, so a wrong password or CA leaves the
running hub alone. Exit 0 (also when auth.type is not ldap), 78 otherwise.

`python -m hubconfig provider FILE`: reach the OpenID Connect provider FILE
names as the hub would (its discovery document must name auth.oidc.issuer
and the configured endpoints; the client and its secret must be known);
the hub role runs it before a (re)start. Exit 0 (also when auth.type is
not oidc), 78 otherwise.

`python -m hubconfig accounts FILE`: ask the hub host's sssd (its sockets
mounted in the hub container) for the allowed and admin groups, as logins
will (auth.type pam); the hub role runs it before a (re)start. Exit 0 (also
when auth.type is not pam), 78 otherwise.

`python -m hubconfig managed MANAGER FILE [--name NAME]`: refuse the keys a
deployment tool (`ansible`, `chart`) sets itself, as marked in the schema,
in a config an operator wrote (the hub role checks hub_platform_config so).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from hubconfig import EX_CONFIG
from hubconfig.schema import PlatformConfigError, load, managed_keys

# `directory`, `provider`, `accounts` and `realm`: the auth.type each reaches, the module whose
# check() does it, and what to call it in messages.
REACH = {
    "directory": ("ldap", "directory", "directory"),
    "provider": ("oidc", "provider", "identity provider"),
    "accounts": ("pam", "pam", "hub host's accounts (sssd)"),
    "realm": ("kerberos", "kerberos", "Kerberos realm and the hub host's accounts (sssd)"),
}

# What each tool derives the keys it manages from, for the refusal message.
MANAGERS = {
    "ansible": (
        "the hub role sets it itself (hub_managed_config in roles/hub/vars/main.yml:"
        " from hub_db_*, the platform facts and the inventory)"
    ),
    "chart": "the Helm chart sets it from its values and the release",
}


def refuse_managed(manager: str, path: str, name: str) -> int:
    import yaml

    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    problems = []
    for key in managed_keys(manager):
        node = raw
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            problems.append(f"{name}.{key} is {json.dumps(node)}: {MANAGERS[manager]}; expected it left out of {name}")
    for line in problems:
        print(f"twinhub: {line}", file=sys.stderr)
    return EX_CONFIG if problems else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hubconfig")
    sub = ap.add_subparsers(dest="cmd", required=True)
    check = sub.add_parser("check", help="validate a platform config file")
    check.add_argument("path")
    managed = sub.add_parser("managed", help="refuse keys a deployment tool sets itself")
    managed.add_argument("manager", choices=sorted(MANAGERS))
    managed.add_argument("path")
    managed.add_argument("--name", default="platform config", help="what to call the config in messages")
    directory = sub.add_parser("directory", help="reach the LDAP directory as the hub would")
    directory.add_argument("path")
    provider = sub.add_parser("provider", help="reach the OpenID Connect provider as the hub would")
    provider.add_argument("path")
    accounts = sub.add_parser("accounts", help="ask the hub host's sssd for the login groups as the hub would")
    accounts.add_argument("path")
    realm = sub.add_parser("realm", help="get a ticket with the hub's key and ask sssd for the groups as the hub would")
    realm.add_argument("path")
    name = sub.add_parser("name", help="a user name as homes and services spell it")
    name.add_argument("name")
    args = ap.parse_args(argv)
    if args.cmd == "name":
        from hubconfig import names

        if why := names.problem(args.name):
            print(f"twinhub: {why}", file=sys.stderr)
            return EX_CONFIG
        print(names.escape(args.name))
        return 0
    if args.cmd == "managed":
        return refuse_managed(args.manager, args.path, args.name)
    try:
        cfg = load(args.path)
    except PlatformConfigError as exc:
        print(f"twinhub: bad platform config: {exc}", file=sys.stderr)
        return EX_CONFIG
    if args.cmd in REACH:
        kind, module, what = REACH[args.cmd]
        if cfg["auth"]["type"] != kind:
            print(f"{args.path}: auth.type is {cfg['auth']['type']}, no {what} to reach")
            return 0
        try:
            print(importlib.import_module(f"hubconfig.{module}").check(cfg))
        except (RuntimeError, PlatformConfigError) as exc:
            print(f"twinhub: the {what}: {exc}", file=sys.stderr)
            return EX_CONFIG
        return 0
    print(f"{args.path}: valid ({cfg['spawner']['type']} spawner, {len(cfg['spawner']['profiles'])} profiles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
