"""RFC 6455 frames and messages, RFC 7692 permessage-deflate, and the anomaly catalogue.

Sans-I/O: bytes in, records out. The capture path drives ``FlowParser`` per TCP flow: a
transport (``analyzer.transport``) finds where connections start, and a
``WebSocketConnection`` per connection parses its frames (``analyzer.protocol.flow``).
"""

from __future__ import annotations

from analyzer.protocol.anomalies import CATALOGUE, describe
from analyzer.protocol.connection import WebSocketConnection
from analyzer.protocol.flow import FlowParser, FlowResult

__all__ = ["CATALOGUE", "FlowParser", "FlowResult", "WebSocketConnection", "describe"]
