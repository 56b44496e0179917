"""A client that sends what a browser sends: Origin and a Chrome User-Agent, then a chat
session of up to three messages. Prints what happened; never raises on a refused upgrade.

Usage: python client.py URL ORIGIN
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
LINES = ["hello, is anyone there?", "my order has not arrived", "thanks, bye"]


async def main(url: str, origin: str) -> None:
    try:
        async with connect(
            url,
            origin=origin,  # type: ignore[arg-type]  # websockets types it Origin (NewType)
            user_agent_header=CHROME_UA,
            additional_headers={"Accept-Language": "en-GB,en;q=0.9", "Cookie": "sid=c0ffee"},
            compression=None,
        ) as ws:
            try:
                for text in LINES:
                    await ws.send(json.dumps({"type": "message", "text": text}))
                    print("client got", await ws.recv(), flush=True)
                    await asyncio.sleep(0.05)
                await ws.close(1000, "bye")
            except ConnectionClosed as exc:
                print("client closed by peer", exc.rcvd, flush=True)
    except InvalidStatus as exc:
        print("client upgrade refused", exc.response.status_code, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
