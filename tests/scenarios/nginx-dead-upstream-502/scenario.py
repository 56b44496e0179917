"""nginx with the usual WebSocket config and nothing listening upstream: nginx answers the
upgrade 502 Bad Gateway itself. Client leg only (the upstream leg is a SYN and a RST)."""

from __future__ import annotations

from pathlib import Path

from tests.scenarios import lab

FRONT, BACK = 9331, 9339
PROXY = lab.WS_LOCATION.format(back=BACK, extra="")


def record(out: Path) -> None:
    with lab.capture(out / "client-leg.pcapng", FRONT), lab.nginx(FRONT, PROXY):
        lab.run(lab.chat_client(f"ws://127.0.0.1:{FRONT}/chat", 1))
