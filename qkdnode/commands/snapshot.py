"""`qkdnode snapshot --config FILE`: connect every device of a node at once and print their state."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from qkdnode.config import load_config
from qkdnode.devices import DeviceConnectError, DeviceSet


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("snapshot", help="connect all devices of a node and print a snapshot of each")
    parser.add_argument("--config", required=True, metavar="FILE", help="node config (TOML)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        snapshot = asyncio.run(_snapshot(DeviceSet(config)))
    except DeviceConnectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"node": config.node.name, "devices": snapshot}, indent=2, default=str))
    else:
        print(f"node {config.node.name} ({config.node.role}), link {config.node.link_id}")
        for name, values in snapshot.items():
            print(f"  {name}:")
            for key, value in _flatten(values):
                print(f"    {key:<28} {value}")
    return 0


async def _snapshot(devices: DeviceSet) -> dict[str, dict[str, Any]]:
    try:
        await devices.connect_all()
        return await devices.snapshot_all()
    finally:
        await devices.close_all()


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows
