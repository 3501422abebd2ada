"""`qkdnode check-config FILE...`: validate node configs, reporting every problem of every file."""

from __future__ import annotations

import argparse
import sys

from qkdnode.config import ConfigError, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check-config", help="validate node config files")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    failed = False
    for path in args.files:
        try:
            config = load_config(path)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            failed = True
            continue
        devices = ", ".join(f"{name} ({device.driver})" for name, device in config.devices.items()) or "no devices"
        print(f"{path}: ok: node {config.node.name} ({config.node.role}) on link {config.node.link_id}; {devices}")
    return 2 if failed else 0
