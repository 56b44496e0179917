"""WebSocket messages and closes as HAR exporters record them.

Theory of operation
-------------------
Every exporter that records messages writes the same list, Chrome's ``_webSocketMessages``:
``{"type": "send"|"receive"|"error", "time": float, "opcode": int, "data": str}``.
``send`` is the client (the browser) sending, ``receive`` the server. ``data`` is text for
opcode 1 and base64 for every other opcode. ``time`` is Unix seconds (Chrome, mitmproxy,
HTTP Toolkit, pcap2har) or Unix milliseconds (Playwright): told apart per message by
magnitude (see ``MS_THRESHOLD``). Playwright with ``content: "attach"`` writes the same
objects one per line to a side ``.jsonl`` file (see ``read_side_file``).

What the list holds is sorted out here:

- opcode 1 and 2 (and any non-control opcode an exporter wrote) become data ``Message``s;
- opcode 8 is a close frame the exporter recorded: a ``CloseSeen`` with the code from the
  first two payload bytes (RFC 6455 5.5.1), not a data message;
- opcodes 9 and 10 (ping, pong) are control frames, not data messages: they are counted
  and otherwise skipped;
- ``type: "error"`` (Chrome's record of a WebSocket error) becomes an ``Anomaly``.

Nothing here raises on bad data: a message that cannot be read is an ``Anomaly`` with the
entry and message index, and the rest of the list is still read.
"""

from __future__ import annotations

import base64
import binascii
import json
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from analyzer.limits import Limits
from analyzer.session.model import Anomaly, Location, Message, Opcode, Side
from analyzer.vocabulary import CloseSeen

# A time above this is milliseconds: 1e11 seconds is the year 5138, 1e11 milliseconds is
# March 1973, before WebSocket existed. Playwright writes milliseconds, everyone else seconds.
MS_THRESHOLD = 1e11

# The last second a datetime holds (9999-12-31T23:59:59Z), in milliseconds: a later time
# cannot be shown in a report, so it is not taken as a time.
_MAX_MS = 253_402_300_799 * 1000.0
# Characters of a large payload turned into bytes at a time (see text_payload).
_CHUNK = 1 << 20
# Error and anomaly texts show at most this much of a captured value.
SHOWN_LIMIT = 200

_SIDES: dict[str, Side] = {"send": "client", "receive": "server"}
_NUMBER = (int, float)
_TEXT, _BINARY, _CLOSE = int(Opcode.TEXT), int(Opcode.BINARY), int(Opcode.CLOSE)
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN_LIMIT


@dataclass(slots=True)
class MessageLog:
    """What one HAR entry's message list showed, gathered before the connection is built."""

    capture: str
    entry: int
    limits: Limits
    fallback_time: float | None = None  # the entry's start, for messages with no time
    messages: list[Message] = field(default_factory=list)
    closes: list[CloseSeen] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    count: dict[str, int] = field(default_factory=lambda: {"client": 0, "server": 0})
    control_frames: int = 0  # pings and pongs recorded
    _limit_noted: bool = False

    def location(self, index: int | None = None, side: Side | None = None) -> Location:
        return Location(self.capture, entry=self.entry, message=index, direction=side)

    def anomaly(self, code: str, detail: str, index: int | None = None) -> None:
        self.anomalies.append(Anomaly(code, detail, self.location(index)))

    def read(self, items: Iterable[object], first_index: int = 0) -> None:
        """Read message records; ``first_index`` numbers them (for side files)."""
        for i, item in enumerate(items, start=first_index):
            self._read_one(i, item)

    def _read_one(self, i: int, item: object) -> None:
        if not isinstance(item, dict):
            self.anomaly(
                "har.malformed_message",
                f"message {i} is {type(item).__name__}, not an object",
                i,
            )
            return
        kind = item.get("type")
        side = _SIDES.get(kind) if isinstance(kind, str) else None
        if side is None:
            self._not_a_message(i, kind, item.get("data"))
            return
        raw_time = item.get("time")
        time = seconds(raw_time)
        if time is None:
            self._time_unknown(i, raw_time)
        opcode = item.get("opcode")
        if isinstance(opcode, bool) or not isinstance(opcode, int) or not 0 <= opcode <= 15:
            self.anomaly(
                "har.malformed_message",
                f"message {i} has opcode {shown(opcode)}, not 0..15: read as text (opcode 1)",
                i,
            )
            opcode = _TEXT
        size, preview = self._payload(i, opcode, item.get("data"))
        if opcode >= _CLOSE:  # a control frame (RFC 6455 5.5: opcodes 0x8 to 0xF)
            if opcode == _CLOSE:
                self.closes.append(_close_seen(side, time, preview, self.location(i, side)))
            else:
                self.control_frames += 1  # ping, pong, or a reserved control opcode
            return
        if opcode != _TEXT and opcode != _BINARY:
            self.anomaly(
                "har.unexpected_opcode",
                f"message {i} has opcode {opcode}: neither text (1) nor binary (2); "
                "kept as a data message with that opcode",
                i,
            )
        self.count[side] += 1
        if len(self.messages) >= self.limits.max_messages_per_connection:
            if not self._limit_noted:
                self._limit_noted = True
                self.anomaly(
                    "limit.messages_per_connection",
                    f"more than {self.limits.max_messages_per_connection} data messages: "
                    "the rest are counted but not recorded",
                    i,
                )
            return
        self.messages.append(
            Message(
                index=len(self.messages),
                side=side,
                time=time if time is not None else self._unknown_time(),
                opcode=opcode,
                size=size,
                preview=preview,
                entry=self.entry,
                entry_message=i,
            )
        )

    def _not_a_message(self, i: int, kind: object, data: object) -> None:
        if kind == "error":
            self.anomaly(
                "har.websocket_error",
                f"the exporter recorded a WebSocket error: {shown(data)}"
                if data
                else "the exporter recorded a WebSocket error with no text",
                i,
            )
            return
        self.anomaly(
            "har.malformed_message",
            f'message {i} has type {shown(kind)}; expected "send", "receive" or "error"',
            i,
        )

    def _unknown_time(self) -> float:
        # Message.time is a float: the entry's start stands in, and the anomaly says so.
        return self.fallback_time if self.fallback_time is not None else 0.0

    def _time_unknown(self, i: int, value: object) -> None:
        # Playwright writes -1 with omitTiming; others may leave it out, and a hand-edited
        # file may hold NaN, Infinity or 1e999 (Python's json reads them) or 10**400.
        stand_in = (
            "the entry's start time is used in its place"
            if self.fallback_time is not None
            else "0 is used in its place"
        )
        detail = f"message {i} has time {shown(value)}"
        if isinstance(value, _NUMBER) and not isinstance(value, bool) and not value < 0:
            # NaN, infinite or past the year 9999 (a negative time is Playwright's "none")
            detail += ", not a time a report can show"
        self.anomaly("har.message_time_unknown", f"{detail}: {stand_in}", i)

    def _payload(self, i: int, opcode: int, data: object) -> tuple[int, bytes | None]:
        """The payload's size in bytes and its first ``max_preview_bytes`` bytes."""
        if data is None:
            self.anomaly("har.message_data_missing", f"message {i} has no data", i)
            return 0, None
        if not isinstance(data, str):
            self.anomaly(
                "har.malformed_message", f"message {i} has data of type {type(data).__name__}", i
            )
            return 0, None
        keep = self.limits.max_preview_bytes
        if opcode == _TEXT:
            return text_payload(data, keep)
        try:
            return base64_payload(data, keep)
        except (binascii.Error, ValueError):
            self.anomaly(
                "har.message_not_base64",
                f"message {i} (opcode {opcode}) is not base64 as exporters write non-text "
                "payloads: its text is taken as the payload",
                i,
            )
            return text_payload(data, keep)


def seconds(value: object) -> float | None:
    """Unix seconds from a recorded time in seconds or milliseconds (see ``MS_THRESHOLD``).

    None when it is not a time: not a number, negative, NaN or infinite, or past the year
    9999 (the last a ``datetime`` holds, so every report can show it).
    """
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        return None
    if not 0 <= value <= _MAX_MS:  # NaN fails every comparison, so it ends here too
        return None
    if value > MS_THRESHOLD:
        return value / 1000.0
    return float(value)


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """``repr(value)`` for a message or anomaly text, cut to ``limit`` characters.

    A captured value can be megabytes long: the text is bounded, and so is the work of
    making it (a long string is cut before ``repr``, a container is shown by ``reprlib``).
    """
    text = repr(value[: limit + 1]) if isinstance(value, str) else _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def text_payload(data: str, keep: int, chunk: int = _CHUNK) -> tuple[int, bytes]:
    """Size and first ``keep`` bytes of a text payload, as UTF-8.

    The payload is never encoded whole when it is large: a 300 MB message costs its
    preview, not another 300 MB. Lone surrogates (JSON allows ``\\ud800``) are kept as
    ``surrogatepass`` writes them; each code point encodes alone, so pieces add up.
    """
    if data.isascii():
        return len(data), data[:keep].encode("ascii")
    if len(data) <= chunk:
        payload = data.encode("utf-8", "surrogatepass")
        return len(payload), payload[:keep]
    size = 0
    for start in range(0, len(data), chunk):
        size += len(data[start : start + chunk].encode("utf-8", "surrogatepass"))
    return size, data[:keep].encode("utf-8", "surrogatepass")[:keep]


def base64_payload(data: str, keep: int, chunk: int = _CHUNK) -> tuple[int, bytes]:
    """Size and first ``keep`` bytes of a base64 payload; raises ``binascii.Error`` or
    ``ValueError`` where ``base64.b64decode(data, validate=True)`` does.

    A large payload is decoded a piece at a time (pieces of a multiple of 4 characters
    decode on their own; only the last may end in ``=`` padding), keeping the first
    ``keep`` bytes.
    """
    if len(data) <= chunk:
        payload = base64.b64decode(data, validate=True)
        return len(payload), payload[:keep]
    step = chunk - chunk % 4 or 4
    size = 0
    head: list[bytes] = []
    kept = 0
    for start in range(0, len(data), step):
        piece = data[start : start + step]
        if "=" in piece and start + step < len(data):
            raise binascii.Error("Non-base64 digit found")  # padding before the end
        decoded = base64.b64decode(piece, validate=True)
        size += len(decoded)
        if kept < keep:
            head.append(decoded[: keep - kept])
            kept += len(head[-1])
    return size, b"".join(head)


def _close_seen(
    side: Side, time: float | None, payload: bytes | None, where: Location
) -> CloseSeen:
    """A recorded close frame. RFC 6455 5.5.1: "If there is a body, the first two bytes of
    the body MUST be a 2-byte unsigned integer ... followed by a UTF-8-encoded reason"."""
    code: int | None = None
    reason: str | None = None
    if payload is not None and len(payload) >= 2:
        code = int.from_bytes(payload[:2], "big")
        reason = payload[2:].decode("utf-8", "replace")
    return CloseSeen(side=side, time=time, code=code, reason=reason, location=where)


def side_file(har_path: Path, name: str) -> Path | None:
    """The side file a Playwright entry names, if the name stays beside the HAR.

    Playwright writes a bare file name (a GUID plus ``.jsonl``) relative to the HAR's folder;
    a name that climbs out of that folder is not followed.
    """
    base = har_path.resolve().parent
    candidate = (base / name).resolve()
    if candidate.parent != base and base not in candidate.parents:
        return None
    return candidate


def read_side_file(path: Path, log: MessageLog) -> None:
    """Read a Playwright ``.jsonl`` side file: one message object per line."""
    with path.open("rb") as f:
        for n, raw in enumerate(f):
            line = raw.strip()
            if not line:
                continue
            try:
                item: object = json.loads(line.lstrip(b"\xef\xbb\xbf"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                log.anomaly(
                    "har.malformed_message",
                    f"line {n + 1} of side file {path.name} is not JSON ({exc})",
                )
                continue
            log.read([item], first_index=n)
