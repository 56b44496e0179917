"""The motivating case without a proxy: a Node ws client (which sends no Origin unless
told to) to a Python websockets chat server whose origin allow-list closes 1008 on the
first message."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from tests.scenarios import lab

PORT = 9327


async def chat(ws: ServerConnection) -> None:
    origin = ws.request.headers.get("Origin") if ws.request else None
    async for message in ws:
        if origin != f"http://127.0.0.1:{PORT}":
            await ws.close(1008, "origin not allowed")
            return
        await ws.send(message)


async def session() -> None:
    async with serve(chat, "127.0.0.1", PORT):
        url = f"ws://127.0.0.1:{PORT}/chat"
        print(await asyncio.to_thread(lab.node, "ws_client.js", url, '{"messages": 2}'))


def record(out: Path) -> None:
    lab.node_env()
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
