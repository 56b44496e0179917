"""Limits on what one capture may make us hold.

Reaching a limit records an anomaly (``limit.*``) on the connection and analysis goes on;
it never raises. The defaults are sized so that memory stays bounded by the number of
open flows, not by the size of the capture file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    # An upgrade request or response larger than this is not a browser's or a proxy's:
    # nginx's default large_client_header_buffers is 4 x 8 KiB; we allow twice that.
    max_header_bytes: int = 64 * 1024
    # RFC 6455 sets no limit; common servers (nginx, ws) reject far fewer headers.
    max_header_count: int = 256
    # A single frame's payload we will buffer to look at (unmask, close code, preview).
    # Larger frames are still counted and skipped over, without their payload.
    max_frame_bytes: int = 16 * 1024 * 1024
    # A reassembled (possibly fragmented) data message.
    max_message_bytes: int = 16 * 1024 * 1024
    # Output of inflate for one message: a deflate bomb becomes an anomaly, not an OOM.
    max_decompressed_bytes: int = 16 * 1024 * 1024
    # Out-of-order TCP bytes held per direction, waiting for a hole to be filled.
    max_buffered_bytes_per_flow: int = 4 * 1024 * 1024
    # TCP flows tracked at once; the least recently seen is evicted past this.
    max_open_flows: int = 100_000
    # Bytes of each message payload kept for report previews and rules.
    max_preview_bytes: int = 4096
    # Data messages recorded per connection (counts go on past this; records stop).
    max_messages_per_connection: int = 100_000


DEFAULT_LIMITS = Limits()
