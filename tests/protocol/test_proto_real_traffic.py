"""FlowParser against real websockets traffic recorded on loopback (see protocol_helpers)."""

from __future__ import annotations

from typing import Any

import pytest
from protocol_helpers import Recording, feed, payloads, run_session
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

from analyzer.limits import Limits

CHAT = [f"message {i}: " + "the same words again and again " * 4 for i in range(6)]


async def echo_server(ws: Any, rec: Recording) -> None:
    async for message in ws:
        rec.server_received.append(message)
        await ws.send(message)


async def chat_client(ws: Any, rec: Recording) -> None:
    for text in CHAT:
        await ws.send(text)
        rec.client_received.append(await ws.recv())
    await ws.send(b"\x00\x01\x02binary" * 10)
    rec.client_received.append(await ws.recv())
    await ws.close(1000, "done")


def _check_echo(rec: Recording, split: int | None = None) -> None:
    result = feed(rec.chunks, split=split)
    assert result.handshake_seen and result.client_is_orig
    assert result.request is not None and result.response is not None
    assert result.response.status == 101
    assert result.url is not None and result.url.endswith("/chat?room=1")
    assert payloads(result, "client") == rec.server_received
    assert payloads(result, "server") == rec.client_received
    assert result.message_count == {"client": 7, "server": 7}
    assert [(c.side, c.code, c.reason) for c in result.closes] == [
        ("client", 1000, "done"),
        ("server", 1000, "done"),
    ]
    assert rec.server_close == (1000, "done")
    assert not [a for a in result.anomalies], result.anomalies


def test_deflate_with_context_takeover() -> None:
    rec = run_session(echo_server, chat_client)
    result = feed(rec.chunks)
    assert "permessage-deflate" in result.response.headers.get("Sec-WebSocket-Extensions")  # type: ignore[union-attr, operator]
    # Repeated text under context takeover: later messages are much smaller on the wire.
    data_frames = [f for f in result.frames if f.opcode == 1 and f.side == "client"]
    assert all(f.rsv == 4 for f in data_frames)
    assert data_frames[-1].length < len(CHAT[-1]) // 3
    assert all(m.compressed for m in result.messages if m.opcode == 1)
    assert [m.size for m in result.messages if m.side == "client"] == [
        len(m) for m in rec.server_received
    ]
    _check_echo(rec)
    _check_echo(rec, split=1)
    _check_echo(rec, split=5)


def test_deflate_without_context_takeover() -> None:
    rec = run_session(
        echo_server,
        chat_client,
        server_kwargs={
            "compression": None,
            "extensions": [
                ServerPerMessageDeflateFactory(
                    server_no_context_takeover=True,
                    client_no_context_takeover=True,
                    server_max_window_bits=10,
                )
            ],
        },
        client_kwargs={
            "compression": None,
            "extensions": [
                ClientPerMessageDeflateFactory(
                    server_no_context_takeover=True, client_no_context_takeover=True
                )
            ],
        },
    )
    result = feed(rec.chunks)
    ext = result.response.headers.get("Sec-WebSocket-Extensions")  # type: ignore[union-attr]
    assert ext is not None and "client_no_context_takeover" in ext
    assert "server_max_window_bits=10" in ext
    _check_echo(rec)


def test_no_compression_fragments_pings_64bit_and_1008() -> None:
    big = bytes(range(256)) * 300  # 76800 bytes: a 64-bit length

    async def server(ws: Any, rec: Recording) -> None:
        first = await ws.recv()
        rec.server_received.append(first)
        big_in = await ws.recv()
        rec.server_received.append(big_in)
        await ws.send(big)

        async def fragments() -> Any:
            yield "part one, "
            await ws.ping(b"between")
            yield "part two, "
            await ws.ping(b"again")
            yield "end"

        await ws.send(fragments())
        await ws.close(1008, "origin not allowed")

    async def client(ws: Any, rec: Recording) -> None:
        await ws.send("hello")
        await ws.send(big)
        rec.client_received.append(await ws.recv())
        rec.client_received.append(await ws.recv())
        try:
            await ws.recv()
        except Exception:
            pass

    rec = run_session(server, client, {"compression": None}, {"compression": None})
    assert rec.client_close == (1008, "origin not allowed")
    for split in (None, 3, 1000):
        result = feed(rec.chunks, split=split)
        client_msgs = [m for m in result.messages if m.side == "client"]
        server_msgs = [m for m in result.messages if m.side == "server"]
        assert [m.size for m in client_msgs] == [5, len(big)]
        assert client_msgs[1].preview == big[:4096]
        assert server_msgs[0].size == len(big) and server_msgs[0].preview == big[:4096]
        assert server_msgs[1].preview == rec.client_received[1].encode()  # type: ignore[union-attr]
        assert server_msgs[1].frames == 4  # three fragments and the empty final one
        big_frames = [f for f in result.frames if f.length == len(big)]
        assert len(big_frames) == 2
        pings = [f for f in result.frames if f.opcode == 9 and f.side == "server"]
        pongs = [f for f in result.frames if f.opcode == 10 and f.side == "client"]
        assert len(pings) == 2 and len(pongs) == 2
        # The pings sit between the fragments of one message.
        frag = [f.index for f in result.frames if f.side == "server" and f.opcode in (0, 1)]
        assert frag[0] < pings[0].index < frag[1] < pings[1].index < frag[2] < frag[3]
        assert (result.closes[0].side, result.closes[0].code) == ("server", 1008)
        assert result.closes[0].reason == "origin not allowed"
        assert result.anomalies == ()


def test_rejected_handshake_403() -> None:
    async def reject(connection: Any, request: Any) -> Any:
        return connection.respond(403, "Forbidden: bad origin\n")

    async def never(ws: Any, rec: Recording) -> None:  # pragma: no cover - not reached
        raise AssertionError

    rec = run_session(never, never, {"process_request": reject})
    assert "client_error" in rec.extra
    result = feed(rec.chunks)
    assert result.response is not None and result.response.status == 403
    assert result.response.reason == "Forbidden"
    assert result.request is not None and result.request.method == "GET"
    assert result.frames == () and result.messages == ()
    assert result.handshake_seen


def test_frame_limit_skips_payload_but_keeps_going() -> None:
    big = b"x" * 5000

    async def server(ws: Any, rec: Recording) -> None:
        rec.server_received.append(await ws.recv())
        rec.server_received.append(await ws.recv())
        await ws.close()

    async def client(ws: Any, rec: Recording) -> None:
        await ws.send(big)
        await ws.send("after")
        await ws.wait_closed()

    rec = run_session(server, client, {"compression": None}, {"compression": None})
    result = feed(rec.chunks, limits=Limits(max_frame_bytes=1000))
    codes = [a.code for a in result.anomalies]
    assert codes == ["limit.frame_bytes"]
    msgs = [m for m in result.messages if m.side == "client"]
    assert msgs[0].size == 5000 and msgs[0].preview == b""
    assert msgs[1].preview == b"after"


@pytest.mark.parametrize("limit", [1, 3])
def test_message_record_limit(limit: int) -> None:
    rec = run_session(echo_server, chat_client, {"compression": None}, {"compression": None})
    result = feed(rec.chunks, limits=Limits(max_messages_per_connection=limit))
    assert len(result.messages) == limit
    assert result.message_count == {"client": 7, "server": 7}
    assert [a.code for a in result.anomalies].count("limit.messages") == 1


def test_deflate_fragmented_messages_with_pings() -> None:
    parts = ["first fragment " * 20, "second fragment " * 20, "third " * 50]

    async def server(ws: Any, rec: Recording) -> None:
        rec.server_received.append(await ws.recv())

        async def fragments() -> Any:
            for i, p in enumerate(parts):
                if i:
                    await ws.ping(f"p{i}")
                yield p

        await ws.send(fragments())
        await ws.close(4000, "app done")

    async def client(ws: Any, rec: Recording) -> None:
        await ws.send([b"\x00" * 3000, b"\x01" * 3000])
        rec.client_received.append(await ws.recv())
        await ws.wait_closed()

    rec = run_session(server, client)
    result = feed(rec.chunks, split=7)
    assert result.anomalies == ()
    client_msg, server_msg = result.messages
    assert (client_msg.size, client_msg.compressed) == (6000, True)
    assert client_msg.preview == (b"\x00" * 3000 + b"\x01" * 3000)[:4096]
    assert server_msg.preview == "".join(parts).encode() == rec.client_received[0].encode()  # type: ignore[union-attr]
    assert server_msg.frames == 4 and server_msg.compressed
    server_data = [f for f in result.frames if f.side == "server" and f.opcode in (0, 1)]
    assert [f.rsv for f in server_data] == [4, 0, 0, 0]  # RSV1 on the first fragment only
    assert [(c.side, c.code, c.reason) for c in result.closes][0] == ("server", 4000, "app done")
