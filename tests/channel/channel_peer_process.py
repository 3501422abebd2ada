"""A channel end in its own process (for crash tests): echoes requests until killed.

Usage: python channel_peer_process.py '<ChannelConfig JSON>'
"""

from __future__ import annotations

import asyncio
import sys

from qkdnode.channel import Channel, ChannelConfig


async def main(config_json: str) -> None:
    channel = Channel.from_config(ChannelConfig.model_validate_json(config_json))

    async def echo(payload: bytes) -> bytes:
        return b"echo:" + payload

    channel.on_request("echo", echo)
    async with channel:
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
