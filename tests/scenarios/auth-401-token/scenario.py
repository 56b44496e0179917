"""A Python websockets server that checks a bearer token in process_request and answers
401 with WWW-Authenticate; the client (websockets) sends an expired one."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from tests.scenarios import lab

PORT = 9318


def check(connection: ServerConnection, request: object) -> object:
    if request.headers.get("Authorization") != "Bearer good-token":  # type: ignore[attr-defined]
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "token expired\n")
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    return None


async def session() -> None:
    async with serve(lab.echo, "127.0.0.1", PORT, process_request=check):
        headers = {"User-Agent": lab.CHROME_UA, "Authorization": "Bearer expired-token"}
        await lab.chat_client(f"ws://127.0.0.1:{PORT}/chat", 1, additional_headers=headers)


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
