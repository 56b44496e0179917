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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from analyzer.limits import Limits
from analyzer.session.model import Anomaly, Location, Message, Opcode, Side
from analyzer.vocabulary import CloseSeen

# A time above this is milliseconds: 1e11 seconds is the year 5138, 1e11 milliseconds is
# March 1973, before WebSocket existed. Playwright writes milliseconds, everyone else seconds.
MS_THRESHOLD = 1e11

_SIDES: dict[str, Side] = {"send": "client", "receive": "server"}


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
    time_in_ms: bool = False  # at least one time was in milliseconds
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
        if kind == "error":
            text = item.get("data")
            self.anomaly(
                "har.websocket_error",
                f"the exporter recorded a WebSocket error: {text!r}"
                if text
                else "the exporter recorded a WebSocket error with no text",
                i,
            )
            return
        side = _SIDES.get(kind) if isinstance(kind, str) else None
        if side is None:
            self.anomaly(
                "har.malformed_message",
                f'message {i} has type {kind!r}; expected "send", "receive" or "error"',
                i,
            )
            return
        time = self._time(i, item.get("time"))
        opcode = item.get("opcode")
        if isinstance(opcode, bool) or not isinstance(opcode, int) or not 0 <= opcode <= 15:
            self.anomaly(
                "har.malformed_message",
                f"message {i} has opcode {opcode!r}, not 0..15: read as text (opcode 1)",
                i,
            )
            opcode = Opcode.TEXT
        payload = self._payload(i, opcode, item.get("data"))
        if opcode == Opcode.CLOSE:
            self.closes.append(_close_seen(side, time, payload, self.location(i, side)))
            return
        if Opcode.is_control(opcode):
            self.control_frames += 1  # ping, pong, or a reserved control opcode
            return
        if not Opcode.is_data(opcode):
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
                size=len(payload) if payload is not None else 0,
                preview=payload[: self.limits.max_preview_bytes] if payload is not None else None,
                entry=self.entry,
                entry_message=i,
            )
        )

    def _unknown_time(self) -> float:
        # Message.time is a float: the entry's start stands in, and the anomaly says so.
        return self.fallback_time if self.fallback_time is not None else 0.0

    def _time(self, i: int, value: object) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            # Playwright writes -1 with omitTiming; others may leave it out.
            stand_in = (
                "the entry's start time is used in its place"
                if self.fallback_time is not None
                else "0 is used in its place"
            )
            self.anomaly(
                "har.message_time_unknown", f"message {i} has time {value!r}: {stand_in}", i
            )
            return None
        if value > MS_THRESHOLD:
            self.time_in_ms = True
            return float(value) / 1000.0
        return float(value)

    def _payload(self, i: int, opcode: int, data: object) -> bytes | None:
        if data is None:
            self.anomaly("har.message_data_missing", f"message {i} has no data", i)
            return None
        if not isinstance(data, str):
            self.anomaly(
                "har.malformed_message", f"message {i} has data of type {type(data).__name__}", i
            )
            return None
        if opcode == Opcode.TEXT:
            return data.encode("utf-8", "surrogatepass")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            self.anomaly(
                "har.message_not_base64",
                f"message {i} (opcode {opcode}) is not base64 as exporters write non-text "
                "payloads: its text is taken as the payload",
                i,
            )
            return data.encode("utf-8", "surrogatepass")


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
