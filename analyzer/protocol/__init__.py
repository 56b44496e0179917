"""Everything above TCP: HTTP/1.1 upgrade, RFC 6455 frames and messages, permessage-deflate.

Sans-I/O: bytes in, records out. The capture path drives ``FlowParser`` per TCP flow.
"""

from __future__ import annotations

from analyzer.protocol.anomalies import CATALOGUE, describe
from analyzer.protocol.flow import FlowParser, FlowResult

__all__ = ["CATALOGUE", "FlowParser", "FlowResult", "describe"]
