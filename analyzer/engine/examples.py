"""Rule examples: partial views merged over a clean session (``evaluate.run_examples`` runs them).

A rule file's ``examples.match`` and ``examples.no_match`` hold partial views:
``connection: {origin: null, close: {code: 1008}}``. Each is merged (dicts recursively,
everything else replaced; ``null`` sets null) over the view of ``clean_connection()``: a
browser session that works (Origin equal to Host, 101 with the right accept, two messages
each way, a pong, client close 1000 echoed). ``rules test`` and the test suite evaluate
the rule's condition on each: match examples must give true (and, when the example has a
``message``, exactly that message), no_match examples must give false.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from analyzer.engine.view import capture_view, connection_view, heavy_field
from analyzer.session.model import (
    Capture,
    Close,
    Connection,
    Fact,
    Frame,
    Headers,
    Location,
    Message,
    Request,
    Response,
)

T0 = 1_700_000_000.0
CAPTURE_PATH = "example.pcapng"


def clean_connection() -> Connection:
    """A healthy browser session, as a packet capture shows it."""
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    request = Request(
        "GET",
        "/socket",
        Headers.of(
            [
                ("Host", "chat.example"),
                ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Origin", "https://chat.example"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", key),
                ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
            ]
        ),
        version="HTTP/1.1",
        location=Location(CAPTURE_PATH, packet=4, stream=0, direction="client", offset=0),
    )
    response = Response(
        101,
        Headers.of(
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            ]
        ),
        reason="Switching Protocols",
        version="HTTP/1.1",
        location=Location(CAPTURE_PATH, packet=6, stream=0, direction="server", offset=0),
    )
    sides = ("client", "server", "client", "server")
    messages = tuple(
        Message(i, side, T0 + 1 + i, 1, 20, packet=8 + 2 * i, frame_index=i)  # type: ignore[arg-type]
        for i, side in enumerate(sides)
    )
    frames = [
        Frame(i, m.side, m.time, True, 0, 1, m.side == "client", 20, m.packet, 100 * i)
        for i, m in enumerate(messages)
    ]
    frames.append(Frame(4, "server", T0 + 5, True, 0, 0x9, False, 0, 16, 500))
    frames.append(Frame(5, "client", T0 + 5.01, True, 0, 0xA, True, 0, 17, 600))
    close_loc = Location(CAPTURE_PATH, packet=18, stream=0, direction="client", offset=700)
    frames.append(Frame(6, "client", T0 + 6, True, 0, 0x8, True, 2, 18, 700, 1000, None))
    frames.append(Frame(7, "server", T0 + 6.01, True, 0, 0x8, False, 2, 19, 800, 1000, None))
    close = Close(
        side="client",
        code=1000,
        reason=None,
        time=T0 + 6,
        echoed=True,
        client_messages_before=2,
        server_messages_before=2,
        since_last_message=2.0,
        location=close_loc,
        frame_index=6,
        echo_code=1000,
    )
    return Connection(
        id="example#1",
        capture=CAPTURE_PATH,
        url="ws://chat.example/socket",
        client="192.0.2.10:50000",
        server="192.0.2.20:80",
        start=T0,
        end_time=T0 + 6.02,
        request=request,
        response=response,
        messages=messages,
        frames=tuple(frames),
        close=close,
        close_known=True,
        end="close-handshake",
        can_show=frozenset(f.value for f in Fact),
        http_version="1.1",
        stream=0,
    )


def clean_capture(conn: Connection | None = None) -> Capture:
    conn = conn or clean_connection()
    return Capture(
        path=CAPTURE_PATH,
        format="pcapng",
        creator="dumpcap",
        creator_version=None,
        can_show=conn.can_show,
        connections=(conn,),
        packets=20,
    )


_DEFAULTS: dict[str, Any] | None = None


def default_views() -> dict[str, Any]:
    """Variable name -> full view of the clean session (heavy fields included)."""
    global _DEFAULTS
    if _DEFAULTS is None:
        conn = clean_connection()
        cap = clean_capture(conn)
        view = connection_view(conn, cap)
        view["messages"] = heavy_field(conn, "messages")
        view["frames"] = heavy_field(conn, "frames")
        cap_view = capture_view(cap)
        _DEFAULTS = {"connection": view, "capture": cap_view}
    return copy.deepcopy(_DEFAULTS)


def merge(base: Any, over: Any) -> Any:
    """``over`` merged into ``base``: dicts recursively, anything else replaced."""
    if isinstance(base, dict) and isinstance(over, Mapping):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base.get(k), v) if k in base else v
        return out
    return copy.deepcopy(over)
