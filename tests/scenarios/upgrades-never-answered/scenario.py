"""A backend that accepts TCP connections and never answers: 40 clients (Python
websockets, open_timeout 1 s) send their upgrade request, wait, give up and close."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.scenarios import lab

PORT = 9324


async def session() -> None:
    url = f"ws://127.0.0.1:{PORT}/chat"
    await asyncio.gather(*(lab.chat_client(url, 1, open_timeout=1) for _ in range(40)))


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT), lab.silent_server(PORT):
        lab.run(session())
