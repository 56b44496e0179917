"""A Node ws client offers subprotocol chat.v2; the Python websockets server supports only
chat.v1 and refuses the upgrade with 400 ("invalid subprotocol")."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.server import serve

from tests.scenarios import lab

PORT = 9320


async def session() -> None:
    async with serve(lab.echo, "127.0.0.1", PORT, subprotocols=["chat.v1"]):
        url = f"ws://127.0.0.1:{PORT}/chat"
        print(await asyncio.to_thread(lab.node, "ws_client.js", url, '{"protocols": ["chat.v2"]}'))


def record(out: Path) -> None:
    lab.node_env()
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
