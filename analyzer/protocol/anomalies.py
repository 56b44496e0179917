"""The catalogue of anomaly codes: those the protocol layer records, and (re-exported
from ``analyzer.transport.anomalies``) those of the transport layer below it.

An anomaly is an observation, never a judgement: rules turn them into findings. Codes are
stable, dotted and greppable (``frame.unmasked_client_frame``); renaming one breaks rules,
so a code is never renamed, only added. The one-line description beside each code is what
reports and rule documentation show; the anomaly's ``detail`` says expected vs found for the
one occurrence.
"""

from __future__ import annotations

from analyzer.transport import anomalies as transport

# -- the transport layer's codes (HTTP/1.1 heads, the handshake, gaps before frames) --------
HTTP_OBS_FOLD = transport.HTTP_OBS_FOLD
HTTP_BARE_LF = transport.HTTP_BARE_LF
HTTP_MALFORMED_HEADER = transport.HTTP_MALFORMED_HEADER
HANDSHAKE_WRONG_ACCEPT = transport.HANDSHAKE_WRONG_ACCEPT
HANDSHAKE_RESPONSE_WITHOUT_REQUEST = transport.HANDSHAKE_RESPONSE_WITHOUT_REQUEST
HANDSHAKE_NO_RESPONSE = transport.HANDSHAKE_NO_RESPONSE
HANDSHAKE_EARLY_CLIENT_DATA = transport.HANDSHAKE_EARLY_CLIENT_DATA
LIMIT_HEADER_BYTES = transport.LIMIT_HEADER_BYTES
LIMIT_HEADER_COUNT = transport.LIMIT_HEADER_COUNT
STREAM_GAP = transport.STREAM_GAP

# -- frames ---------------------------------------------------------------------------------
UNMASKED_CLIENT_FRAME = "frame.unmasked_client_frame"
MASKED_SERVER_FRAME = "frame.masked_server_frame"
RSV_WITHOUT_EXTENSION = "frame.rsv_without_extension"
RESERVED_OPCODE = "frame.reserved_opcode"
CONTROL_TOO_LONG = "frame.control_too_long"
FRAGMENTED_CONTROL = "frame.fragmented_control"
CONTINUATION_WITHOUT_START = "frame.continuation_without_start"
DATA_INSIDE_FRAGMENTED = "frame.data_inside_fragmented_message"
NON_MINIMAL_LENGTH = "frame.non_minimal_length"
LENGTH_TOP_BIT = "frame.length_top_bit_set"
DATA_AFTER_CLOSE = "frame.data_after_close"
FRAME_INCOMPLETE = "frame.incomplete"

# -- close frames ---------------------------------------------------------------------------
CLOSE_ONE_BYTE = "close.one_byte_payload"
CLOSE_INVALID_CODE = "close.invalid_code"
CLOSE_INVALID_UTF8 = "close.invalid_utf8_reason"

# -- messages -------------------------------------------------------------------------------
MESSAGE_INVALID_UTF8 = "message.invalid_utf8"
MESSAGE_INCOMPLETE = "message.incomplete"

# -- permessage-deflate / x-webkit-deflate-frame ---------------------------------------------
INFLATE_FAILED = "deflate.inflate_failed"
MID_STREAM_CONTEXT = "deflate.mid_stream_context"
RSV1_ON_CONTINUATION = "deflate.rsv1_on_continuation"
RSV1_ON_CONTROL = "deflate.rsv1_on_control"
BAD_PARAMETERS = "deflate.bad_parameters"

# -- limits ---------------------------------------------------------------------------------
LIMIT_FRAME_BYTES = "limit.frame_bytes"
LIMIT_DECOMPRESSED_BYTES = "limit.decompressed_bytes"
LIMIT_MESSAGES = "limit.messages"
LIMIT_FRAMES = "limit.frames"
LIMIT_ANOMALIES = "limit.anomalies"

# -- the byte stream ------------------------------------------------------------------------
STREAM_UNPARSED = "stream.unparsed_after_gap"

CATALOGUE: dict[str, str] = {
    **transport.CATALOGUE,
    UNMASKED_CLIENT_FRAME: "A frame from the client was not masked (RFC 6455 5.1).",
    MASKED_SERVER_FRAME: "A frame from the server was masked (RFC 6455 5.1).",
    RSV_WITHOUT_EXTENSION: "RSV bits set with no negotiated extension giving them a meaning.",
    RESERVED_OPCODE: "A frame used a reserved opcode (3-7, 0xB-0xF).",
    CONTROL_TOO_LONG: "A control frame carried more than 125 bytes of payload.",
    FRAGMENTED_CONTROL: "A control frame had FIN clear (control frames cannot be fragmented).",
    CONTINUATION_WITHOUT_START: "A continuation frame arrived with no fragmented message open.",
    DATA_INSIDE_FRAGMENTED: "A new text/binary frame arrived inside an unfinished fragmented "
    "message.",
    NON_MINIMAL_LENGTH: "A payload length was not encoded in the minimal number of bytes.",
    LENGTH_TOP_BIT: "A 64-bit payload length had its most significant bit set.",
    DATA_AFTER_CLOSE: "A side sent a data frame after its own close frame.",
    FRAME_INCOMPLETE: "The capture ended inside a frame: its header was seen, not all its payload.",
    CLOSE_ONE_BYTE: "A close frame carried a 1-byte payload (no room for a status code).",
    CLOSE_INVALID_CODE: "A close frame carried a status code not allowed on the wire.",
    CLOSE_INVALID_UTF8: "A close frame's reason is not valid UTF-8.",
    MESSAGE_INVALID_UTF8: "A text message is not valid UTF-8.",
    MESSAGE_INCOMPLETE: "A fragmented message was never finished (abandoned or cut by the "
    "capture).",
    INFLATE_FAILED: "A compressed message could not be inflated.",
    MID_STREAM_CONTEXT: "Compressed messages refer to data from before the capture started "
    "(context takeover); they cannot be inflated.",
    RSV1_ON_CONTINUATION: "RSV1 set on a continuation frame under permessage-deflate "
    "(RFC 7692 6.1).",
    RSV1_ON_CONTROL: "RSV1 set on a control frame under permessage-deflate (RFC 7692 6.1).",
    BAD_PARAMETERS: "The negotiated deflate extension has parameters we cannot use as sent.",
    LIMIT_FRAME_BYTES: "A frame payload is larger than limits.max_frame_bytes; it was skipped "
    "unread.",
    LIMIT_DECOMPRESSED_BYTES: "A message inflates past limits.max_decompressed_bytes (deflate "
    "bomb?); inflating stopped.",
    LIMIT_MESSAGES: "More data messages than limits.max_messages_per_connection; later ones "
    "are counted, not recorded.",
    LIMIT_FRAMES: "More frames than limits.max_messages_per_connection; later ones are "
    "not recorded.",
    LIMIT_ANOMALIES: "One anomaly code occurred too often; later occurrences are not recorded.",
    STREAM_UNPARSED: "After a gap the frame boundaries are lost: the rest of the direction was "
    "not parsed.",
}


def describe(code: str) -> str:
    """The one-line description of ``code`` (the code itself when it is not catalogued)."""
    return CATALOGUE.get(code, code)
