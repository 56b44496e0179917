"""Frames into messages, closes and anomalies, for one WebSocket connection.

Theory of operation
-------------------
``WebSocketStream`` receives the ``RawFrame``s of both directions (from two
``FrameReader``s) in capture order and keeps, per side, the data message being assembled.
For every frame it records a ``Frame`` (capped at ``limits.max_messages_per_connection``
records), checks what RFC 6455 and RFC 7692 require of the sender, and when a data message
ends it records a ``Message``: ``size`` is the application payload (after unmasking and
inflating), ``preview`` its first ``limits.max_preview_bytes`` bytes.

Payload work is done only where it is needed, and streamed, so a message never has to be
held whole:

- binary, uncompressed: only the bytes that still fit in the preview are unmasked; the size
  is the sum of the wire lengths;
- text: every byte is unmasked and checked as UTF-8 (incrementally across fragments);
- compressed: every byte is unmasked and inflated, with the output bounded by
  ``limits.max_decompressed_bytes``;
- close: the payload (at most 125 bytes) gives the code and the reason.

A side's fragmented message is one of: none open, or open with its first frame's opcode;
control frames may arrive between fragments (RFC 6455 5.4) and do not touch it.
"""

from __future__ import annotations

import codecs
from typing import Final

from analyzer.limits import Limits
from analyzer.protocol import anomalies as A
from analyzer.protocol.deflate import PERMESSAGE, DeflateParams, InflateError, Inflater
from analyzer.protocol.frames import (
    GAP,
    KNOWN_OPCODES,
    LENGTH_TOP_BIT,
    NON_MINIMAL,
    SKIPPED,
    RawFrame,
    header_problems,
    unmask,
)
from analyzer.vocabulary import Anomaly, CloseSeen, Frame, Location, Message, Opcode, Side

# An anomaly code is recorded at most this many times per connection: a client that never
# masks would otherwise make one record per frame. One limit.anomalies record says so.
MAX_PER_CODE: Final = 100

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


def close_code_problem(code: int) -> str | None:
    """Why ``code`` may not appear in a close frame, or None when it may.

    RFC 6455 7.4.2: "Status codes in the range 0-999 are not used." 7.4.1: 1004 is
    reserved; 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close control
    frame by an endpoint". 1000-2999 are for the RFC and registered extensions (the IANA
    registry holds 1000-1003 and 1007-1014 today); 3000-4999 are for libraries and
    applications; nothing above 4999 is defined.
    """
    if code < 1000:
        return "codes 0-999 are not used"
    if code in (1004, 1005, 1006, 1015):
        return f"{code} is reserved and must not be sent in a close frame"
    if 1016 <= code <= 2999:
        return f"{code} is in the range 1016-2999, unassigned"
    if code >= 5000:
        return f"{code} is above 4999, undefined"
    return None


class SideState:
    """Per-direction state of the connection."""

    __slots__ = (
        "name",
        "is_client",
        "closed",
        "open",
        "m_opcode",
        "m_compressed",
        "m_frames",
        "m_packet",
        "m_frame_index",
        "m_size",
        "m_preview",
        "m_utf8",
        "m_known",
        "m_inflating",
        "m_wire",
        "m_bomb",
        "inflater",
        "lost",
        "deflate_reported",
    )

    def __init__(self, name: Side) -> None:
        self.name: Side = name
        self.is_client = name == "client"
        self.closed = False  # this side sent a close frame
        self.open = False  # a data message is being assembled
        self.m_opcode = 0
        self.m_compressed = False
        self.m_frames = 0
        self.m_packet = 0
        self.m_frame_index = 0
        self.m_size = 0
        self.m_preview = b""
        self.m_utf8: codecs.IncrementalDecoder | None = None
        self.m_known = True  # every payload byte so far was seen and used
        self.m_inflating = False  # the inflater is still producing this message
        self.m_wire = 0  # payload bytes on the wire
        self.m_bomb = False  # inflating stopped at limits.max_decompressed_bytes
        self.inflater: Inflater | None = None
        self.lost = False  # bytes of this direction went missing (gap, skipped frame)
        self.deflate_reported: set[str] = set()


class WebSocketStream:
    """Frames of both sides of one connection into the session model's records."""

    __slots__ = (
        "capture",
        "stream",
        "limits",
        "deflate",
        "other_extension",
        "handshake_seen",
        "frames",
        "messages",
        "closes",
        "anomalies",
        "message_count",
        "frame_count",
        "message_total",
        "_per_code",
        "_client",
        "_server",
        "_preview",
        "_cap",
        "_rsv1_first",
    )

    def __init__(
        self,
        capture: str,
        stream: int | None,
        limits: Limits,
        *,
        deflate: DeflateParams | None = None,
        other_extension: bool = False,
        handshake_seen: bool = True,
    ) -> None:
        self.capture = capture
        self.stream = stream
        self.limits = limits
        self.deflate = deflate
        # An extension we do not know was negotiated: RSV bits may mean something to it.
        self.other_extension = other_extension
        self.handshake_seen = handshake_seen
        self.frames: list[Frame] = []
        self.messages: list[Message] = []
        self.closes: list[CloseSeen] = []
        self.anomalies: list[Anomaly] = []
        self.message_count: dict[str, int] = {"client": 0, "server": 0}
        self.frame_count = 0
        self.message_total = 0
        self._per_code: dict[str, int] = {}
        self._client = SideState("client")
        self._server = SideState("server")
        self._preview = limits.max_preview_bytes
        self._cap = limits.max_messages_per_connection
        # RSV1 alone on a data frame needs no check (permessage-deflate, or no handshake
        # seen); on a continuation it does (RFC 7692 6.1), which _check_rsv handles.
        self._rsv1_first = not handshake_seen or (
            deflate is not None and not deflate.per_frame and not other_extension
        )

    # -- anomalies ---------------------------------------------------------------------

    def anomaly(
        self,
        code: str,
        detail: str,
        side: Side | None = None,
        packet: int | None = None,
        offset: int | None = None,
    ) -> None:
        seen = self._per_code.get(code, 0) + 1
        self._per_code[code] = seen
        if seen > MAX_PER_CODE:
            if seen == MAX_PER_CODE + 1:
                self.anomalies.append(
                    Anomaly(
                        A.LIMIT_ANOMALIES,
                        f"{code} recorded {MAX_PER_CODE} times; later occurrences not recorded",
                        Location(self.capture, packet, self.stream, side, offset),
                    )
                )
            return
        self.anomalies.append(
            Anomaly(code, detail, Location(self.capture, packet, self.stream, side, offset))
        )

    # -- input -------------------------------------------------------------------------

    def side(self, name: Side) -> SideState:
        return self._client if name == "client" else self._server

    def on_frames(self, name: Side, raws: list[RawFrame]) -> None:
        s = self._client if name == "client" else self._server
        for rf in raws:
            self.frame(s, rf)

    def on_gap(self, name: Side, offset: int, length: int, packet: int, status: str) -> None:
        """``length`` bytes of ``name``'s stream are missing at ``offset``. ``status`` is
        the reader's: ``"payload"`` (inside one frame's payload), ``"lost"`` (frame
        boundaries lost here) or ``"stopped"`` (the direction was already not parsed)."""
        s = self.side(name)
        s.lost = True
        if status == "payload":
            consequence = "inside a frame's payload: that payload is unknown, the frames "
            consequence += "around it are intact"
        elif status == "lost":
            consequence = "frame boundaries are lost: the rest of this direction is not parsed"
        else:
            consequence = "this direction was already not parsed"
        self.anomaly(
            A.STREAM_GAP,
            f"{length} bytes missing at offset {offset} of the {name}'s stream; {consequence}",
            name,
            packet,
            offset,
        )
        if status == "lost":
            self.anomaly(
                A.STREAM_UNPARSED,
                f"after the gap at offset {offset} no frame of the {name} was parsed (no "
                "reliable way to find the next frame header in arbitrary payload bytes)",
                name,
                packet,
                offset,
            )

    def final_anomalies(self, unfinished: list[tuple[Side, RawFrame]]) -> list[Anomaly]:
        """What the end of the capture shows, without changing the state: frames cut by
        the end (``unfinished``, from the readers) and messages left without their final
        frame. The connection may still be fed afterwards."""
        if not unfinished and not self._client.open and not self._server.open:
            return []  # the usual end: nothing cut short
        saved, counts = self.anomalies, dict(self._per_code)
        self.anomalies = []
        try:
            for name, rf in unfinished:
                self._check_header(self.side(name), rf)
                self.anomaly(
                    A.FRAME_INCOMPLETE,
                    f"expected {rf.length} payload bytes after the header; the capture "
                    f"ended first (opcode {rf.opcode})",
                    name,
                    rf.packet,
                    rf.offset,
                )
            for s in (self._client, self._server):
                if s.open:
                    self.anomaly(
                        A.MESSAGE_INCOMPLETE,
                        f"a fragmented message from the {s.name} ({s.m_frames} frames, "
                        f"{s.m_wire} payload bytes) had no final frame when the capture ended",
                        s.name,
                        s.m_packet,
                    )
            return self.anomalies
        finally:
            self.anomalies, self._per_code = saved, counts

    # -- one frame ---------------------------------------------------------------------

    def frame(self, s: SideState, rf: RawFrame) -> None:
        """One frame from ``s``'s side (``side(name)``), in capture order."""
        fin, rsv, opcode, mask, length, payload, packet, offset, time, last_packet, flags = rf
        name = s.name
        index = self.frame_count
        self.frame_count = index + 1
        if (
            (
                rsv
                and (
                    rsv != 4
                    or opcode == Opcode.CONT
                    or opcode > Opcode.BINARY
                    or not self._rsv1_first
                )
            )
            or flags
            or (mask is None) is s.is_client
            or (opcode > 2 and (opcode > 10 or length > 125 or not fin))
            or Opcode.BINARY < opcode < Opcode.CLOSE
        ):
            self._check_header(s, rf)
        close_code: int | None = None
        close_reason: str | None = None
        if opcode == Opcode.TEXT or opcode == Opcode.BINARY:
            if s.closed or s.open:
                self._odd_data_start(s, opcode, packet, offset)
            if (
                fin
                and payload is not None
                and not (rsv & 4 and (self.deflate is not None or not self.handshake_seen))
            ):
                # The common case, inline: a whole uncompressed message in one frame.
                pv = self._preview
                if opcode == Opcode.TEXT:
                    data = unmask(payload, mask) if mask is not None else payload
                    try:
                        data.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        self._bad_utf8(name, packet, exc.start, data[exc.start :], offset)
                    preview = data[:pv] if length > pv else data
                else:
                    head = payload[:pv] if length > pv else payload
                    preview = unmask(head, mask) if mask is not None else head
                total = self.message_total
                self.message_total = total + 1
                self.message_count[name] += 1
                if total < self._cap:
                    self.messages.append(
                        Message(
                            index=total,
                            side=name,
                            time=time,
                            opcode=opcode,
                            size=length,
                            preview=preview,
                            compressed=False,
                            frames=1,
                            packet=packet,
                            frame_index=index,
                        )
                    )
                elif total == self._cap:
                    self._over_cap(name, packet)
            elif (
                fin
                and payload is not None
                and not (self.deflate is not None and self.deflate.per_frame)
            ):
                self._single_compressed(s, rf, index)
            else:
                self._start(s, rf, index)
                self._piece(s, rf)
                if fin:
                    self._end(s, time)
        elif opcode == Opcode.CONT:
            if s.closed:
                self._data_after_close(s, opcode, packet, offset)
            if not s.open:
                # RFC 6455 5.4: a fragmented message is "a single frame with the FIN bit
                # clear and an opcode other than 0, followed by zero or more frames with the
                # FIN bit clear and the opcode set to 0, and terminated by a single frame
                # with the FIN bit set and an opcode of 0."
                self.anomaly(
                    A.CONTINUATION_WITHOUT_START,
                    "expected a text or binary frame to start a message; found a "
                    "continuation frame with no message open",
                    name,
                    packet,
                    offset,
                )
            else:
                s.m_frames += 1
                self._piece(s, rf)
                if fin:
                    self._end(s, time)
        elif opcode == Opcode.CLOSE:
            close_code, close_reason = self._close(s, rf, index)
        if index < self._cap:
            self.frames.append(
                Frame(
                    index=index,
                    side=name,
                    time=time,
                    fin=fin,
                    rsv=rsv,
                    opcode=opcode,
                    masked=mask is not None,
                    length=length,
                    packet=packet,
                    offset=offset,
                    close_code=close_code,
                    close_reason=close_reason,
                    last_packet=last_packet if last_packet != packet else None,
                )
            )
        elif index == self._cap:
            self.anomaly(
                A.LIMIT_FRAMES,
                f"expected at most {self._cap} frames recorded per connection; later frames "
                "are parsed and checked but not recorded",
                name,
                packet,
                offset,
            )

    def _check_header(self, s: SideState, rf: RawFrame) -> None:
        """What the header alone shows about the sender."""
        fin, rsv, opcode, mask, length, _p, packet, offset, _t, _l, flags = rf
        name = s.name
        if name == "client":
            if mask is None:
                # RFC 6455 5.1: "a client MUST mask all frames that it sends to the server"
                self.anomaly(
                    A.UNMASKED_CLIENT_FRAME,
                    f"expected MASK set on client frames; found it clear (opcode {opcode})",
                    name,
                    packet,
                    offset,
                )
        elif mask is not None:
            # RFC 6455 5.1: "A server MUST NOT mask any frames that it sends to the client."
            self.anomaly(
                A.MASKED_SERVER_FRAME,
                f"expected MASK clear on server frames; found it set (opcode {opcode})",
                name,
                packet,
                offset,
            )
        if flags & (NON_MINIMAL | LENGTH_TOP_BIT) or (
            opcode > 2 and (opcode not in KNOWN_OPCODES or length > 125 or not fin)
        ):
            for code, detail in header_problems(fin, opcode, length, flags):
                self.anomaly(code, detail, name, packet, offset)
        if flags & SKIPPED:
            s.lost = True
            self.anomaly(
                A.LIMIT_FRAME_BYTES,
                f"expected at most {self.limits.max_frame_bytes} payload bytes per frame; "
                f"found {length}, skipped unread",
                name,
                packet,
                offset,
            )
        if rsv:
            self._check_rsv(s, rsv, opcode, packet, offset)

    def _data_after_close(self, s: SideState, opcode: int, packet: int, offset: int) -> None:
        # RFC 6455 5.5.1: "After sending a Close frame, the endpoint MUST NOT send any
        # further data frames."
        self.anomaly(
            A.DATA_AFTER_CLOSE,
            f"expected no data frame after the {s.name}'s close; found opcode {opcode}",
            s.name,
            packet,
            offset,
        )

    def _check_rsv(self, s: SideState, rsv: int, opcode: int, packet: int, offset: int) -> None:
        if self.other_extension:
            return
        d = self.deflate
        allowed = 0
        if d is not None or not self.handshake_seen:
            if Opcode.is_control(opcode):
                if rsv & 4:
                    # RFC 7692 6.1: "An endpoint MUST NOT set the "Per-Message Compressed"
                    # bit of control frames and non-first fragments of a data message."
                    self.anomaly(
                        A.RSV1_ON_CONTROL,
                        f"expected RSV1 clear on control frames; found it set (opcode {opcode})",
                        s.name,
                        packet,
                        offset,
                    )
                    allowed = 4
            elif opcode == Opcode.CONT and (d is None or not d.per_frame):
                if rsv & 4 and d is not None and self.handshake_seen:
                    self.anomaly(
                        A.RSV1_ON_CONTINUATION,
                        "expected RSV1 only on the first frame of a message; found it on a "
                        "continuation frame",
                        s.name,
                        packet,
                        offset,
                    )
                allowed = 4
            else:
                allowed = 4
        extra = rsv & ~allowed
        if extra:
            # RFC 6455 5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that
            # defines meanings for non-zero values."
            if not self.handshake_seen:
                what = "no handshake seen: RSV1 taken as permessage-deflate"
            elif d is not None:
                what = f"negotiated {d.name}"
            else:
                what = "no extension negotiated"
            self.anomaly(
                A.RSV_WITHOUT_EXTENSION,
                f"expected RSV bits {allowed:03b} at most ({what}); found {rsv:03b} "
                f"(opcode {opcode})",
                s.name,
                packet,
                offset,
            )

    # -- closes ------------------------------------------------------------------------

    def _close(self, s: SideState, rf: RawFrame, index: int) -> tuple[int | None, str | None]:
        payload = rf.payload
        name = s.name
        code: int | None = None
        reason: str | None = None
        if payload is not None:
            data = unmask(payload, rf.mask) if rf.mask is not None else payload
            if len(data) == 1:
                # RFC 6455 5.5.1: "If there is a body, the first two bytes of the body MUST
                # be a 2-byte unsigned integer (in network byte order) representing a
                # status code"
                self.anomaly(
                    A.CLOSE_ONE_BYTE,
                    f"expected an empty body or a 2-byte code; found 1 byte {data.hex()}",
                    name,
                    rf.packet,
                    rf.offset,
                )
            elif len(data) >= 2:
                code = (data[0] << 8) | data[1]
                why = close_code_problem(code)
                if why is not None:
                    self.anomaly(
                        A.CLOSE_INVALID_CODE,
                        f"expected 1000-1003, 1007-1014 or 3000-4999; found {code}: {why}",
                        name,
                        rf.packet,
                        rf.offset,
                    )
                raw = data[2:]
                try:
                    reason = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    # RFC 6455 8.1: "When an endpoint is to interpret a byte stream as UTF-8
                    # but finds that the byte stream is not, in fact, a valid UTF-8 stream,
                    # that endpoint MUST _Fail the WebSocket Connection_."
                    reason = raw.decode("utf-8", errors="replace")
                    self.anomaly(
                        A.CLOSE_INVALID_UTF8,
                        f"expected a UTF-8 reason; found invalid byte at {exc.start}: "
                        f"{raw[:40].hex()}",
                        name,
                        rf.packet,
                        rf.offset,
                    )
        before = None
        if (
            not self.closes
            and not self._client.open
            and not self._server.open
            and self.message_total <= self._cap
        ):
            # Every message so far is recorded and none is half-sent: the ones before this
            # close are exactly the first len(messages) (see CloseSeen.before).
            count = self.message_count
            before = (count["client"], count["server"], len(self.messages))
        self.closes.append(
            CloseSeen(
                name,
                rf.time,
                code,
                reason,
                Location(self.capture, rf.packet, self.stream, name, rf.offset),
                index,
                before,
            )
        )
        s.closed = True
        return code, reason

    # -- data messages -----------------------------------------------------------------

    def _inflater(self, s: SideState) -> Inflater:
        inf = s.inflater
        if inf is None:
            d = self.deflate
            if d is None:  # no handshake seen: assume permessage-deflate, context takeover
                d = self.deflate = DeflateParams(name=PERMESSAGE, per_frame=False)
            inf = s.inflater = Inflater(d.window_bits(s.name), not d.no_context_takeover(s.name))
        return inf

    def _single_compressed(self, s: SideState, rf: RawFrame, index: int) -> None:
        """A whole permessage-deflate message in one frame (RSV1 set, payload at hand)."""
        name = s.name
        inf = s.inflater if s.inflater is not None else self._inflater(s)
        inf.start()
        payload = rf.payload
        assert payload is not None
        raw = unmask(payload, rf.mask) if rf.mask is not None else payload
        budget = self.limits.max_decompressed_bytes
        preview: bytes | None
        try:
            data, over = inf.feed(raw, budget, True)
        except InflateError as exc:
            self._inflate_failed(s, rf, str(exc))
            size, preview = rf.length, None  # the wire size: no garbage
        else:
            if over:
                self._bomb(name, rf)
            elif rf.opcode == Opcode.TEXT:
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError as err:
                    self._bad_utf8(name, rf.packet, err.start, data[err.start :], rf.offset)
            size = len(data)
            pv = self._preview
            preview = data[:pv] if size > pv else data
        self._record(
            Message(
                index=self.message_total,
                side=name,
                time=rf.time,
                opcode=rf.opcode,
                size=size,
                preview=preview,
                compressed=True,
                frames=1,
                packet=rf.packet,
                frame_index=index,
            )
        )

    def _bomb(self, name: Side, rf: RawFrame) -> None:
        self.anomaly(
            A.LIMIT_DECOMPRESSED_BYTES,
            f"expected a message to inflate to at most {self.limits.max_decompressed_bytes} "
            "bytes; found more, inflating stopped (the message size shown is this limit)",
            name,
            rf.packet,
            rf.offset,
        )

    def _odd_data_start(self, s: SideState, opcode: int, packet: int, offset: int) -> None:
        """A text/binary frame after this side's close, or inside its fragmented message."""
        if s.closed:
            self._data_after_close(s, opcode, packet, offset)
        if s.open:
            # RFC 6455 5.4: "The fragments of one message MUST NOT be interleaved between
            # the fragments of another message unless an extension has been negotiated
            # that can interpret the interleaving."
            self.anomaly(
                A.DATA_INSIDE_FRAGMENTED,
                f"expected a continuation frame (opcode 0) after {s.m_frames} fragment(s) "
                f"of a message; found opcode {opcode}: the open message is abandoned",
                s.name,
                packet,
                offset,
            )
            s.open = False

    def _bad_utf8(self, name: Side, packet: int, where: int, data: bytes, offset: int) -> None:
        # RFC 6455 8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds
        # that the byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST
        # _Fail the WebSocket Connection_."
        self.anomaly(
            A.MESSAGE_INVALID_UTF8,
            f"expected UTF-8 text; found an invalid sequence at byte {where} of the message: "
            f"{data[:8].hex()}",
            name,
            packet,
            offset,
        )

    def _start(self, s: SideState, rf: RawFrame, index: int) -> None:
        s.open = True
        s.m_opcode = rf.opcode
        d = self.deflate
        if d is not None and d.per_frame:
            s.m_compressed = bool(rf.rsv & 4)
        else:
            s.m_compressed = bool(rf.rsv & 4) and (d is not None or not self.handshake_seen)
        s.m_frames = 1
        s.m_packet = rf.packet
        s.m_frame_index = index
        s.m_size = 0
        s.m_preview = b""
        s.m_utf8 = _Utf8Decoder() if rf.opcode == Opcode.TEXT else None
        s.m_known = True
        s.m_wire = 0
        s.m_bomb = False
        s.m_inflating = False
        if s.m_compressed and not (d is not None and d.per_frame):
            self._inflater(s).start()
            s.m_inflating = True

    def _piece(self, s: SideState, rf: RawFrame) -> None:
        """One frame's payload into the open message."""
        payload = rf.payload
        s.m_wire += rf.length
        d = self.deflate
        per_frame = d is not None and d.per_frame
        if per_frame and rf.rsv & 4:
            s.m_compressed = True
            inflate = True
        else:
            inflate = s.m_inflating
        if payload is None or not s.m_known:
            # Skipped (over the frame limit) or cut by a gap: what follows is unknown.
            if s.m_known:
                s.m_known = False
                s.m_utf8 = None
                if s.inflater is not None and (inflate or s.m_compressed):
                    s.inflater.cut()
            if not s.m_compressed:
                s.m_size += rf.length
            return
        if not inflate:
            if s.m_utf8 is None:
                # Binary: only the bytes that still fit in the preview are unmasked.
                s.m_size += rf.length
                room = self._preview - len(s.m_preview)
                if room > 0:
                    head = payload[:room]
                    s.m_preview += unmask(head, rf.mask) if rf.mask is not None else head
                return
            data = unmask(payload, rf.mask) if rf.mask is not None else payload
        else:
            raw = unmask(payload, rf.mask) if rf.mask is not None else payload
            inf = self._inflater(s)
            if per_frame:
                inf.start()
            budget = self.limits.max_decompressed_bytes - s.m_size
            try:
                data, over = inf.feed(raw, budget, rf.fin or per_frame)
            except InflateError as exc:
                self._inflate_failed(s, rf, str(exc))
                s.m_known = False
                s.m_utf8 = None
                s.m_inflating = False
                return
            if over:
                self._bomb(s.name, rf)
                s.m_known = False
                s.m_bomb = True
                s.m_inflating = False
        s.m_size += len(data)
        if len(s.m_preview) < self._preview:
            s.m_preview += data[: self._preview - len(s.m_preview)]
        dec = s.m_utf8
        if dec is not None:
            try:
                dec.decode(data, rf.fin and s.m_known)
            except UnicodeDecodeError as exc:
                self._bad_utf8(
                    s.name,
                    rf.packet,
                    s.m_size - len(data) + exc.start,
                    data[exc.start :],
                    rf.offset,
                )
                s.m_utf8 = None

    def _inflate_failed(self, s: SideState, rf: RawFrame, why: str) -> None:
        too_far = "too far back" in why
        if too_far and (not self.handshake_seen or s.lost):
            code = A.MID_STREAM_CONTEXT
            detail = (
                f"expected a message inflatable from what the capture holds; found a "
                f"reference to earlier data ({why}): the capture started (or lost bytes) "
                "mid-session under context takeover"
            )
        else:
            code = A.INFLATE_FAILED
            detail = f"expected a valid DEFLATE stream; zlib says: {why}"
            if too_far and self.deflate is not None and self.deflate.no_context_takeover(s.name):
                detail += (
                    f" (the {s.name} refers to an earlier message although "
                    f"{s.name}_no_context_takeover was negotiated)"
                )
        if code in s.deflate_reported:
            return
        s.deflate_reported.add(code)
        self.anomaly(
            code,
            detail + f"; later such failures from the {s.name} are not reported again",
            s.name,
            rf.packet,
            rf.offset,
        )

    def _end(self, s: SideState, time: float) -> None:
        s.open = False
        failed_inflate = s.m_compressed and not s.m_known and not s.m_bomb
        self._record(
            Message(
                index=self.message_total,
                side=s.name,
                time=time,
                opcode=s.m_opcode,
                size=s.m_wire if failed_inflate else s.m_size,
                preview=None if failed_inflate else s.m_preview,
                compressed=s.m_compressed,
                frames=s.m_frames,
                packet=s.m_packet,
                frame_index=s.m_frame_index,
            )
        )

    def _record(self, m: Message) -> None:
        self.message_count[m.side] += 1
        total = self.message_total
        self.message_total = total + 1
        if total < self._cap:
            self.messages.append(m)
        elif total == self._cap:
            self._over_cap(m.side, m.packet)

    def _over_cap(self, name: Side, packet: int | None) -> None:
        self.anomaly(
            A.LIMIT_MESSAGES,
            f"expected at most {self._cap} messages recorded per connection; later "
            "messages are counted but not recorded",
            name,
            packet,
        )


__all__ = ["GAP", "SideState", "WebSocketStream", "close_code_problem"]
