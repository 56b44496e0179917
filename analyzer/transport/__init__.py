"""How a WebSocket connection starts inside a TCP flow's byte stream.

Sans-I/O, below ``analyzer.protocol``: bytes in, records out (``analyzer.vocabulary``), and
nothing of the session model. ``http11`` parses HTTP/1.1 heads.
"""

from __future__ import annotations
