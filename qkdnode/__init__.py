"""qkdnode: control software for quantum key distribution nodes."""

__version__ = "0.1.0"
