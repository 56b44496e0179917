"""The anomaly codes the transport layer records: HTTP/1.1 heads, the opening handshake,
and holes in the byte stream before a WebSocket connection is under way.

``analyzer.protocol.anomalies`` re-exports every code here and merges ``CATALOGUE`` into
the one catalogue reports and rule documentation read. Codes are stable: never renamed,
only added.
"""

from __future__ import annotations

# -- HTTP/1.1 heads -------------------------------------------------------------------------
HTTP_OBS_FOLD = "http.obs_fold"
HTTP_BARE_LF = "http.bare_lf"
HTTP_MALFORMED_HEADER = "http.malformed_header_line"

# -- the opening handshake ------------------------------------------------------------------
HANDSHAKE_WRONG_ACCEPT = "handshake.wrong_accept"
HANDSHAKE_RESPONSE_WITHOUT_REQUEST = "handshake.response_without_request"
HANDSHAKE_NO_RESPONSE = "handshake.no_response"
HANDSHAKE_EARLY_CLIENT_DATA = "handshake.client_data_before_response"

# -- limits ---------------------------------------------------------------------------------
LIMIT_HEADER_BYTES = "limit.header_bytes"
LIMIT_HEADER_COUNT = "limit.header_count"

# -- the byte stream ------------------------------------------------------------------------
STREAM_GAP = "stream.gap"

CATALOGUE: dict[str, str] = {
    HTTP_OBS_FOLD: "A header value continued on the next line (obs-fold, RFC 9112 5.2).",
    HTTP_BARE_LF: "A head line ended with LF alone instead of CRLF.",
    HTTP_MALFORMED_HEADER: "A head line that is not 'name: value' was skipped.",
    HANDSHAKE_WRONG_ACCEPT: "Sec-WebSocket-Accept does not match the request's Sec-WebSocket-Key.",
    HANDSHAKE_RESPONSE_WITHOUT_REQUEST: "A 101 upgrade response was seen without its request.",
    HANDSHAKE_NO_RESPONSE: "The upgrade request got no response in the capture.",
    HANDSHAKE_EARLY_CLIENT_DATA: "The client sent bytes after the upgrade request before the "
    "server answered.",
    LIMIT_HEADER_BYTES: "An HTTP head is larger than limits.max_header_bytes; it was not parsed.",
    LIMIT_HEADER_COUNT: "An HTTP head has more fields than limits.max_header_count; the rest "
    "were dropped.",
    STREAM_GAP: "Bytes of this direction are missing from the capture (each gap; the detail "
    "says whether frames after it could be parsed).",
}
