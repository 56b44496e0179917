"""Two independent sessions through one nginx at the same time: a browser-like Python
client (with Origin) and a Node ws client (no Origin, as Node's ws sends none). The
upstream (Python websockets) echoes and both close 1000. Both legs captured."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.server import serve

from tests.scenarios import lab

FRONT, BACK = 9329, 9330
PROXY = lab.WS_LOCATION.format(back=BACK, extra="")


async def session() -> None:
    url = f"ws://127.0.0.1:{FRONT}/chat"
    async with serve(lab.echo, "127.0.0.1", BACK):
        node = asyncio.to_thread(lab.node, "ws_client.js", url, '{"messages": 3, "holdMs": 300}')
        await asyncio.gather(lab.chat_client(url, 3), node)


def record(out: Path) -> None:
    lab.node_env()  # install before the capture starts
    with lab.capture(out / "both-legs.pcapng", FRONT, BACK), lab.nginx(FRONT, PROXY):
        lab.run(session())
