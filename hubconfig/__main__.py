"""`python -m hubconfig check FILE`: validate a platform config, change nothing.

Ansible runs it on the controller before any host changes, and the hub role
runs it in the hub image before a (re)start. Exit 0 when valid, 78 (EX_CONFIG)
with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import sys

from hubconfig import EX_CONFIG
from hubconfig.schema import PlatformConfigError, load


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hubconfig")
    sub = ap.add_subparsers(dest="cmd", required=True)
    check = sub.add_parser("check", help="validate a platform config file")
    check.add_argument("path")
    args = ap.parse_args(argv)
    try:
        cfg = load(args.path)
    except PlatformConfigError as exc:
        print(f"twinhub: bad platform config: {exc}", file=sys.stderr)
        return EX_CONFIG
    print(f"{args.path}: valid ({cfg['spawner']['type']} spawner, {len(cfg['spawner']['profiles'])} profiles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
