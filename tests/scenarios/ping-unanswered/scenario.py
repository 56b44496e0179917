"""A Node ws server with autoPong off (it never answers pings) and a Python websockets
client with ping_interval 0.5 s and ping_timeout 0.5 s: the client's ping goes unanswered
and websockets closes 1011 "keepalive ping timeout"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.scenarios import lab

PORT = 9306


async def session() -> None:
    url = f"ws://127.0.0.1:{PORT}/chat"
    async with connect(
        url, origin=f"http://127.0.0.1:{PORT}", ping_interval=0.5, ping_timeout=0.5
    ) as ws:  # type: ignore[arg-type]
        await ws.send("hello")
        await ws.recv()
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed as exc:
            print(f"  client: {exc}")


def record(out: Path) -> None:
    env = lab.node_env()
    server = ["node", str(lab.HERE / "ws_server.js"), str(PORT), '{"autoPong": false}']
    with lab.capture(out / "session.pcapng", PORT), lab.started(server, PORT, env=env):
        lab.run(session())
