"""Client -> nginx (proxy_read_timeout 3s) -> Python websockets echo. The client sends one
message and then stays silent without pings; nginx drops both legs after 3 s of silence.
(Real deployments: 60 s default, 12 s or 30 s seen; 3 s keeps the recording short.)"""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.server import serve

from tests.scenarios import lab

FRONT, BACK = 9307, 9308
PROXY = lab.WS_LOCATION.format(back=BACK, extra="proxy_read_timeout 3s;")


async def session_then_silence() -> None:
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async with serve(lab.echo, "127.0.0.1", BACK, ping_interval=None):
        url = f"ws://127.0.0.1:{FRONT}/chat"
        headers = {"User-Agent": lab.CHROME_UA}
        async with connect(
            url,
            origin=f"http://127.0.0.1:{FRONT}",
            ping_interval=None,  # type: ignore[arg-type]
            additional_headers=headers,
            user_agent_header=None,
        ) as ws:
            await ws.send("hello, then silence")
            await ws.recv()
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except ConnectionClosed as exc:
                print(f"  client: {exc}")


def record(out: Path) -> None:
    with lab.capture(out / "both-legs.pcapng", FRONT, BACK), lab.nginx(FRONT, PROXY):
        lab.run(session_then_silence())
