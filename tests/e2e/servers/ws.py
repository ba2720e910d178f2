# SPDX-License-Identifier: GPL-2.0
"""A WebSocket echo server (python3-websockets); the message "bye" makes it close."""
import asyncio
import sys

import websockets


async def handler(ws, path=None):
    async for message in ws:
        if message == "bye":
            await ws.close()
            return
        await ws.send(message)


async def main(port):
    async with websockets.serve(handler, "127.0.0.1", port, ping_interval=None):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
