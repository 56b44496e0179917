"""Helpers for the protocol tests: real websockets traffic through a recording TCP relay.

``run_session`` starts a ``websockets`` server on 127.0.0.1, a TCP relay in front of it
that records every chunk it forwards (direction, bytes), and a ``websockets`` client that
connects through the relay. What each endpoint really sent and received is returned with
the recorded bytes, so a test can feed the bytes to ``FlowParser`` and compare. Everything
started is stopped before ``run_session`` returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.protocol.flow import FlowParser, FlowResult


@dataclass
class Recording:
    chunks: list[tuple[bool, bytes]] = field(default_factory=list)  # (from client, bytes)
    server_received: list[str | bytes] = field(default_factory=list)
    client_received: list[str | bytes] = field(default_factory=list)
    server_close: tuple[int | None, str | None] = (None, None)  # code, reason it received
    client_close: tuple[int | None, str | None] = (None, None)
    extra: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Any, Recording], Awaitable[None]]


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    from_client: bool,
    rec: Recording,
) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            rec.chunks.append((from_client, data))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # pragma: no cover - already closed
            pass


async def _session(
    server_handler: Handler,
    client_handler: Handler,
    server_kwargs: dict[str, Any],
    client_kwargs: dict[str, Any],
) -> Recording:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    rec = Recording()

    async def handler(ws: Any) -> None:
        try:
            await server_handler(ws, rec)
        finally:
            rec.server_close = (ws.close_code, ws.close_reason)

    tasks: list[asyncio.Task[None]] = []

    async def relay(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection("127.0.0.1", port)
        t1 = asyncio.ensure_future(_pipe(cr, sw, True, rec))
        t2 = asyncio.ensure_future(_pipe(sr, cw, False, rec))
        tasks.extend((t1, t2))
        await asyncio.gather(t1, t2)

    async with serve(handler, "127.0.0.1", 0, **server_kwargs) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        relay_server = await asyncio.start_server(relay, "127.0.0.1", 0)
        rport = relay_server.sockets[0].getsockname()[1]
        try:
            try:
                async with connect(f"ws://127.0.0.1:{rport}/chat?room=1", **client_kwargs) as ws:
                    await client_handler(ws, rec)
                rec.client_close = (ws.close_code, ws.close_reason)
            except Exception as exc:  # a rejected handshake, a close the client did not expect
                rec.extra["client_error"] = exc
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        finally:
            relay_server.close()
            await relay_server.wait_closed()
    return rec


def run_session(
    server_handler: Handler,
    client_handler: Handler,
    server_kwargs: dict[str, Any] | None = None,
    client_kwargs: dict[str, Any] | None = None,
) -> Recording:
    return asyncio.run(
        asyncio.wait_for(
            _session(server_handler, client_handler, server_kwargs or {}, client_kwargs or {}),
            20,
        )
    )


def feed(
    chunks: Iterable[tuple[bool, bytes]],
    limits: Limits = DEFAULT_LIMITS,
    split: int | None = None,
) -> FlowResult:
    """Feed recorded chunks (client = orig) to a FlowParser; packet numbers count chunks
    from 1. ``split`` re-chunks every chunk into pieces of at most that many bytes."""
    parser = FlowParser("test.pcap", 0, limits)
    packet = 0
    for from_client, data in chunks:
        pieces = (
            [data] if split is None else [data[i : i + split] for i in range(0, len(data), split)]
        )
        for piece in pieces:
            packet += 1
            parser.data(from_client, piece, packet, float(packet))
    result = parser.result()
    assert result is not None
    return result


def payloads(result: FlowResult, side: str) -> list[str | bytes]:
    """Messages of ``side`` as the endpoint saw them (text decoded), from previews."""
    out: list[str | bytes] = []
    for m in result.messages:
        if m.side != side:
            continue
        assert m.preview is not None
        out.append(m.preview.decode() if m.opcode == 1 else m.preview)
    return out
