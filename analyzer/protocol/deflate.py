"""permessage-deflate (RFC 7692) and the older x-webkit-deflate-frame, read-only.

Theory of operation
-------------------
``negotiate`` reads the parameters from the server's *response* (what the server
accepted is what both sides use). Each direction gets an ``Inflater``:

- permessage-deflate: the payloads of a message's frames are one raw DEFLATE stream;
  the sender removed the trailing ``00 00 ff ff`` of its sync flush, so we append it at
  the end of the message (RFC 7692 7.2.2). With context takeover the sender keeps its
  LZ77 window from message to message, so we keep one ``zlib.decompressobj`` per
  direction; ``<side>_no_context_takeover`` means a fresh one per message.
- x-webkit-deflate-frame (and ``deflate-frame``): the same, but per *frame*: every frame
  with RSV1 set is a flushed DEFLATE block on its own.

Output is bounded: ``Inflater.feed`` never returns more than the budget it is given
(``max_length``), so a deflate bomb costs at most ``max_decompressed_bytes``.

A capture that starts in the middle of a session under context takeover: a back-reference
into data from before the capture makes zlib fail with "invalid distance too far back"
(zlib checks distances against the output it has produced), so such a message becomes an
anomaly, never garbage. After any failure the inflater restarts empty, and later messages
that still refer to the lost data fail the same way.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from analyzer.vocabulary import Headers

PERMESSAGE = "permessage-deflate"
DEFLATE_FRAME_NAMES = ("x-webkit-deflate-frame", "deflate-frame")

# RFC 7692 7.2.2: the sender removes these 4 octets at the end of a message; we add them.
TAIL = b"\x00\x00\xff\xff"

# zlib cannot inflate raw DEFLATE with a window of 8 bits (it asks for 9 at least); a
# 9-bit window accepts every stream made with 8.
_MIN_WBITS = 9


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """What the server's response negotiated."""

    name: str  # "permessage-deflate", "x-webkit-deflate-frame", "deflate-frame"
    per_frame: bool  # x-webkit-deflate-frame: each frame is compressed on its own
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15

    def no_context_takeover(self, side: str) -> bool:
        return (
            self.server_no_context_takeover if side == "server" else self.client_no_context_takeover
        )

    def window_bits(self, side: str) -> int:
        return self.server_max_window_bits if side == "server" else self.client_max_window_bits


def _params(item: str) -> tuple[str, dict[str, str | None]]:
    parts = [p.strip() for p in item.split(";")]
    name = parts[0].lower()
    out: dict[str, str | None] = {}
    for p in parts[1:]:
        if not p:
            continue
        if "=" in p:
            k, v = p.split("=", 1)
            out[k.strip().lower()] = v.strip().strip('"')
        else:
            out[p.lower()] = None
    return name, out


def _bits(value: str | None) -> int | None:
    if value is None:
        return 15
    try:
        n = int(value)
    except ValueError:
        return None
    return n if 8 <= n <= 15 else None


def negotiate(response: Headers) -> tuple[DeflateParams | None, list[str]]:
    """The deflate extension the response accepted (first one wins), and problems found.

    A problem is a sentence for a ``deflate.bad_parameters`` anomaly; an unusable window
    size falls back to 15 (inflating with a larger window is always safe).
    """
    return negotiate_tokens(response.tokens("Sec-WebSocket-Extensions"))


def negotiate_tokens(items: tuple[str, ...]) -> tuple[DeflateParams | None, list[str]]:
    """``negotiate`` on the response's Sec-WebSocket-Extensions list items."""
    problems: list[str] = []
    for item in items:
        name, params = _params(item)
        if name == PERMESSAGE:
            kw: dict[str, int] = {}
            for key in ("server_max_window_bits", "client_max_window_bits"):
                if key in params:
                    bits = _bits(params[key])
                    if bits is None:
                        problems.append(f"{key}={params[key]!r}: expected 8..15; using 15")
                    else:
                        kw[key] = bits
            known = {
                "server_no_context_takeover",
                "client_no_context_takeover",
                "server_max_window_bits",
                "client_max_window_bits",
            }
            for key in params:
                if key not in known:
                    problems.append(f"unknown parameter {key!r}")
            return (
                DeflateParams(
                    name=PERMESSAGE,
                    per_frame=False,
                    server_no_context_takeover="server_no_context_takeover" in params,
                    client_no_context_takeover="client_no_context_takeover" in params,
                    **kw,
                ),
                problems,
            )
        if name in DEFLATE_FRAME_NAMES:
            # draft-tyoshino-hybi-websocket-perframe-deflate: no_context_takeover and
            # max_window_bits, both about the server's compressor when in the response.
            bits = _bits(params.get("max_window_bits")) if "max_window_bits" in params else 15
            if bits is None:
                problems.append(f"max_window_bits={params['max_window_bits']!r}; using 15")
                bits = 15
            nct = "no_context_takeover" in params
            return (
                DeflateParams(
                    name=name,
                    per_frame=True,
                    server_no_context_takeover=nct,
                    server_max_window_bits=bits,
                ),
                problems,
            )
    return None, problems


class InflateError(Exception):
    """zlib refused the data (message text in ``args[0]``)."""


class Inflater:
    """Inflates one direction's compressed messages (or frames), with a bounded output."""

    __slots__ = ("wbits", "takeover", "_d", "broken")

    def __init__(self, window_bits: int = 15, context_takeover: bool = True) -> None:
        self.wbits = max(_MIN_WBITS, min(15, window_bits))
        self.takeover = context_takeover
        self._d: zlib._Decompress | None = None
        self.broken = False  # the last unit failed or was cut: the context is lost

    def start(self) -> None:
        """A new message (or frame, for deflate-frame) begins."""
        if self._d is None or not self.takeover or self.broken:
            self._d = zlib.decompressobj(-self.wbits)
            self.broken = False

    def feed(self, data: bytes, budget: int, final: bool) -> tuple[bytes, bool]:
        """Inflate the next compressed bytes of the unit; ``final`` appends the flush tail.

        Returns (output, over) where ``over`` is True when the output would exceed
        ``budget`` bytes (the output returned is cut at ``budget``). Raises InflateError.
        """
        d = self._d
        if d is None:
            self.start()
            d = self._d
            assert d is not None
        if final:
            data = data + TAIL
        try:
            out = d.decompress(data, budget + 1)
        except zlib.error as exc:
            self.broken = True
            raise InflateError(str(exc)) from None
        if len(out) > budget or d.unconsumed_tail:
            self.broken = True
            return out[:budget], True
        return out, False

    def cut(self) -> None:
        """The unit was abandoned (gap, limit): the window no longer matches the sender's."""
        self.broken = True
