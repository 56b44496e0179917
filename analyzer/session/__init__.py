"""The session model both inputs fill; see ``model``."""

from analyzer.session.model import (
    Anomaly,
    Capture,
    Close,
    CloseCode,
    Connection,
    Fact,
    Frame,
    Header,
    Headers,
    Location,
    Message,
    Opcode,
    Request,
    Response,
    TlsInfo,
)

__all__ = [
    "Anomaly",
    "Capture",
    "Close",
    "CloseCode",
    "Connection",
    "Fact",
    "Frame",
    "Header",
    "Headers",
    "Location",
    "Message",
    "Opcode",
    "Request",
    "Response",
    "TlsInfo",
]
