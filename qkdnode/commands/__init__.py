"""Subcommands of `qkdnode`; each module defines `register(subparsers)`."""
