"""The per-node asyncio daemon: lifecycle, supervision, control socket, protocol role."""
