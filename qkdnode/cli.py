"""The `qkdnode` command. Each module in `qkdnode.commands` registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from qkdnode import __version__, commands
from qkdnode.channel import ChannelError
from qkdnode.config import ConfigError
from qkdnode.logs import CurrentStream, configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qkdnode", description="Control software for quantum key distribution nodes.")
    parser.add_argument("--version", action="version", version=f"qkdnode {__version__}")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "console"], help="log format on stdout")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda info: info.name):
        importlib.import_module(f"{commands.__name__}.{module_info.name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    json_logs = {"auto": None, "json": True, "console": False}[args.log_format]
    configure_logging(args.log_level, stream=CurrentStream("stderr" if json_logs is None else "stdout"), json=json_logs)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ChannelError as exc:  # e.g. the endpoint is taken by another process
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
