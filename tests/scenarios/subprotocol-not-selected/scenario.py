"""A Node ws server accepts the upgrade without choosing a subprotocol; the Node ws client
offered chat.v2, fails the connection ("Server sent no subprotocol") and destroys the
socket without a close frame."""

from __future__ import annotations

from pathlib import Path

from tests.scenarios import lab

PORT = 9335


def record(out: Path) -> None:
    env = lab.node_env()
    server = ["node", str(lab.HERE / "ws_server.js"), str(PORT), '{"selectNoProtocol": true}']
    with lab.capture(out / "session.pcapng", PORT), lab.started(server, PORT, env=env):
        url = f"ws://127.0.0.1:{PORT}/chat"
        print(lab.node("ws_client.js", url, '{"protocols": ["chat.v2"]}'))
