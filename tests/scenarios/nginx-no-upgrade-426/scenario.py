"""nginx proxying with proxy_http_version 1.1 but without the Upgrade/Connection headers:
the Python websockets upstream gets a plain GET and answers 426 Upgrade Required, which
nginx relays. Both legs captured; client-leg.pcapng is nginx's side alone."""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.server import serve

from tests.scenarios import lab

FRONT, BACK = 9311, 9312
PROXY = f"""
    location / {{
      proxy_pass http://127.0.0.1:{BACK};
      proxy_http_version 1.1;
    }}
"""


async def session() -> None:
    async with serve(lab.echo, "127.0.0.1", BACK):
        await lab.chat_client(f"ws://127.0.0.1:{FRONT}/chat", 1)


def record(out: Path) -> None:
    both = out / "both-legs.pcapng"
    with lab.capture(both, FRONT, BACK), lab.nginx(FRONT, PROXY):
        lab.run(session())
    lab.split(both, out / "client-leg.pcapng", FRONT)
