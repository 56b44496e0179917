"""nginx limit_req (1 request a minute, burst 1, status 429) in front of a Python
websockets echo; a client opens four sockets one after another: two pass, two get 429."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.server import serve

from tests.scenarios import lab

FRONT, BACK = 9333, 9334
ZONE = "limit_req_zone $binary_remote_addr zone=ws:1m rate=1r/m;"
PROXY = lab.WS_LOCATION.format(
    back=BACK, extra="limit_req zone=ws burst=1 nodelay; limit_req_status 429;"
)


async def session() -> None:
    async with serve(lab.echo, "127.0.0.1", BACK):
        for _ in range(4):
            await lab.chat_client(f"ws://127.0.0.1:{FRONT}/chat", 1)
            await asyncio.sleep(0.1)


def record(out: Path) -> None:
    with lab.capture(out / "client-leg.pcapng", FRONT), lab.nginx(FRONT, PROXY, http=ZONE):
        lab.run(session())
