"""Everything above TCP for one TCP flow (skeleton: the interface of iface.md 1(a)).

The full implementation follows; the signatures below are the contract with the capture
path (``analyzer.session.build_pcap``).
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.limits import Limits
from analyzer.session.build import CloseSeen
from analyzer.session.model import Anomaly, Frame, Message, Request, Response


@dataclass(frozen=True, slots=True)
class FlowResult:
    client_is_orig: bool
    request: Request | None
    response: Response | None
    url: str | None  # "ws://host[:port]/target" from Host + request-target
    http_version: str | None  # "1.1"
    handshake_seen: bool  # False: frames recognised by heuristic, no upgrade seen
    start: float | None  # time of the upgrade request (or first frame)
    frames: tuple[Frame, ...]
    messages: tuple[Message, ...]
    closes: tuple[CloseSeen, ...]  # every close frame, in order
    anomalies: tuple[Anomaly, ...]
    message_count: dict[str, int]  # per side, including messages past the record limit
    last_time: float | None


class FlowParser:
    """Everything above TCP for one TCP flow: HTTP/1.1 upgrade, then RFC 6455 frames,
    messages, permessage-deflate. Parsers observe; trouble becomes Anomaly records."""

    def __init__(self, capture: str, stream: int, limits: Limits) -> None:
        self.capture = capture
        self.stream = stream
        self.limits = limits
        self._interested = True

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None:
        """In-order contiguous bytes of one direction."""

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
        """``length`` bytes of that direction are missing from the capture."""

    @property
    def interested(self) -> bool:
        """False once the flow is known not to be WebSocket: the caller stops feeding it."""
        return self._interested

    def result(self) -> FlowResult | None:
        """None if the flow never was WebSocket."""
        return None
