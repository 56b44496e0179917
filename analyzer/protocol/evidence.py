"""RFC 6455 evidence for the transport's mid-session heuristic (``analyzer.transport.detect``).

The transport layer knows nothing of frames; it asks a ``FrameEvidence`` whether bytes
look like frames a WebSocket endpoint sends. The checks, each a guard against taking
other traffic for WebSocket:

- known opcodes only; RSV bits zero except RSV1 on text/binary/continuation frames;
- control frames with FIN set and at most 125 bytes; a close body empty or with an
  allowed code and a UTF-8 reason; minimal length encodings, 64-bit top bit clear;
- every frame of a direction masked alike; payload no larger than ``max_frame_bytes``;
- an uncompressed single-frame text message must be UTF-8;
- no empty non-final continuation frame (a run of zero bytes would parse as those).
"""

from __future__ import annotations

from analyzer.protocol.frames import KNOWN_OPCODES, parse_header, unmask
from analyzer.protocol.messages import close_code_problem
from analyzer.transport.base import FrameScan


class FrameEvidence:
    """``analyzer.transport.base.FrameEvidence`` for frames up to ``max_frame_bytes``."""

    __slots__ = ("max_frame_bytes",)

    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes

    def plausible_start(self, data: bytes) -> bool:
        return frame_start_plausible(data)

    def scan(self, data: bytes) -> FrameScan | None:
        return scan_frames(data, self.max_frame_bytes)


def frame_start_plausible(data: bytes) -> bool:
    """The first byte could start a frame a WebSocket endpoint sends."""
    b0 = data[0]
    rsv = (b0 >> 4) & 7
    opcode = b0 & 0x0F
    if opcode not in KNOWN_OPCODES or rsv not in (0, 4) or b0 == 0:
        return False
    if opcode >= 8 and (rsv or not b0 & 0x80):
        return False
    return True


def scan_frames(data: bytes, max_frame_bytes: int) -> FrameScan | None:
    """(complete frames, masked, ends exactly at the end of data) when ``data`` from its
    first byte parses as plausible frames; None as soon as something does not fit."""
    pos = 0
    count = 0
    masked: bool | None = None
    n = len(data)
    while pos < n:
        if not frame_start_plausible(data[pos : pos + 1]):
            return None
        h = parse_header(data, pos)
        if h is None:
            break
        if h.flags or h.length > max_frame_bytes:
            return None
        if masked is None:
            masked = h.masked
        elif masked != h.masked:
            return None
        if h.opcode >= 8 and h.length > 125:
            return None
        if h.opcode == 0 and not h.fin and h.length == 0:
            return None
        end = pos + h.size + h.length
        if end > n:
            break
        if h.opcode in (1, 8) and (h.opcode == 8 or (h.fin and not h.rsv)):
            payload = data[pos + h.size : end]
            if h.mask is not None:
                payload = unmask(payload, h.mask)
            if h.opcode == 8:
                if len(payload) == 1:
                    return None
                if payload:
                    if close_code_problem((payload[0] << 8) | payload[1]) is not None:
                        return None
                    payload = payload[2:]
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                return None
        count += 1
        pos = end
    return FrameScan(frames=count, masked=masked, exact=pos == n)
