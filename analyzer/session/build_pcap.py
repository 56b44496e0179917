"""Packet captures into the session model: reader -> TCP reassembly -> FlowParser -> Connection.

``iter_connections`` streams: each connection is yielded when its TCP flow finishes (RST,
FIN both ways, eviction, or the end of the capture), so memory is bounded by the open
flows and the limits, never by the file size. ``read_packet_capture`` collects them into a
``Capture`` in ``tcp.stream`` order.

A flow's bytes go through ``make_sink``: today straight into a ``FlowParser``; a
decryption layer (``analyzer.inputs.tls.TlsFlow``) slots in there, in front of the parser.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from analyzer.inputs.pcap import PacketReader, key_endpoints
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.protocol.flow import FlowParser
from analyzer.session.build import summarize_close
from analyzer.session.model import Anomaly, Capture, Connection, Fact, Location, Side
from analyzer.streams.tcp import ByteSink, TcpFlow, TcpTracker

PACKET_FACTS = frozenset(
    {
        Fact.HANDSHAKE_REQUEST,
        Fact.HANDSHAKE_RESPONSE,
        Fact.FRAMES,
        Fact.MASKS,
        Fact.CLOSE_FRAMES,
        Fact.TRANSPORT_END,
        Fact.ENDPOINTS,
        Fact.MESSAGES,
        Fact.MESSAGE_PAYLOADS,
        Fact.CREDENTIALS,
    }
)
CONNECTION_FACTS = PACKET_FACTS - {Fact.HANDSHAKE_REQUEST, Fact.HANDSHAKE_RESPONSE}


class PcapSession:
    """One pass over one capture file: the reader, the flows, and what became of them.

    Iterate ``connections()`` once; afterwards the reader's counts, anomalies, creator and
    embedded secrets are complete.
    """

    def __init__(
        self, path: Path, *, limits: Limits = DEFAULT_LIMITS, keylog: Path | None = None
    ) -> None:
        self.path = path
        self.capture = str(path)
        self.stem = _stem(path)
        self.limits = limits
        self.keylog = keylog  # accepted; TLS decryption is integrated later
        self.reader = PacketReader(path, self.capture)
        self.tracker = TcpTracker(self.capture, limits, self.make_sink, self.keep)

    def make_sink(self, flow: TcpFlow) -> ByteSink:
        """What a flow's reassembled bytes are fed to."""
        return FlowParser(self.capture, flow.stream, self.limits)

    def keep(self, flow: TcpFlow) -> bool:
        """A parser lost interest: follow the flow to its FIN/RST if it has something to
        report (an upgrade answered 403, say), else forget it at once."""
        parser = flow.sink
        if isinstance(parser, FlowParser) and parser.result() is not None:
            flow.owner = parser
            return True
        return False

    def connections(self) -> Iterator[Connection]:
        for flow in self.tracker.run(self.reader):
            conn = self.connection(flow)
            flow.release()
            if conn is not None:
                yield conn

    def connection(self, flow: TcpFlow) -> Connection | None:
        sink = flow.owner if flow.owner is not None else flow.sink
        if not isinstance(sink, FlowParser):
            return None
        result = sink.result()
        if result is None:
            return None
        orig, resp = key_endpoints(flow.key)
        client, server = (orig, resp) if result.client_is_orig else (resp, orig)
        transport_end = flow.end or "open"
        close, end = summarize_close(result.closes, result.messages, transport_end)
        can_show = set(CONNECTION_FACTS)
        if result.request is not None:
            can_show.add(Fact.HANDSHAKE_REQUEST)
        if result.response is not None:
            can_show.add(Fact.HANDSHAKE_RESPONSE)
        anomalies = list(result.anomalies)
        for a in flow.anomalies:
            side: Side = "client" if a.from_orig == result.client_is_orig else "server"
            loc = Location(self.capture, packet=a.packet, stream=flow.stream, direction=side)
            anomalies.append(Anomaly(a.code, f"{a.detail} (from the {side})", loc))
        for code, n in flow.anomaly_counts.items():
            if n > len([a for a in flow.anomalies if a.code == code]):
                anomalies.append(Anomaly(code, f"{n} in all on this connection"))
        end_time = flow.last_time
        if result.last_time is not None and result.last_time > end_time:
            end_time = result.last_time
        return Connection(
            id=f"{self.stem}#{flow.stream}",
            capture=self.capture,
            url=result.url,
            client=client,
            server=server,
            start=result.start if result.start is not None else flow.first_time,
            end_time=end_time,
            request=result.request,
            response=result.response,
            messages=result.messages,
            frames=result.frames,
            close=close,
            close_known=True,
            end=end,
            can_show=frozenset(can_show),
            anomalies=tuple(anomalies),
            location=Location(self.capture, packet=flow.first_packet, stream=flow.stream),
            http_version=result.http_version,
            handshake_seen=result.handshake_seen,
            stream=flow.stream,
            message_count=result.message_count,
        )

    def notes(self) -> tuple[str, ...]:
        out: list[str] = []
        r, t = self.reader, self.tracker
        if r.truncated:
            out.append(f"The file is cut short: only its first {r.packets} packets were read.")
        if r.snapped:
            out.append(
                f"{r.snapped} TCP segments were cut by the capture's snapshot length: their "
                "missing bytes are gaps, so some frames or messages may be incomplete."
            )
        if r.anomaly_counts.get("ip.fragment"):
            out.append("IP fragments are not reassembled: traffic carried in fragments is missing.")
        if t.evicted:
            out.append(
                f"{t.evicted} TCP flows were closed early because more than "
                f"{self.limits.max_open_flows} were open at once (Limits.max_open_flows)."
            )
        if r.secrets and self.keylog is None:
            out.append(
                "The file embeds TLS secrets (Decryption Secrets Block); decryption of "
                "TLS flows is not done by this reader yet."
            )
        return tuple(out)

    def capture_record(self, connections: tuple[Connection, ...]) -> Capture:
        r = self.reader
        return Capture(
            path=self.capture,
            format=r.format,
            creator=r.creator,
            creator_version=None,
            can_show=PACKET_FACTS,
            connections=connections,
            anomalies=r.anomalies,
            packets=r.packets,
            secrets_embedded=bool(r.secrets),
            notes=self.notes(),
        )


def _stem(path: Path) -> str:
    name = path.name
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).stem or name


def iter_connections(
    path: Path, *, limits: Limits = DEFAULT_LIMITS, keylog: Path | None = None
) -> Iterator[Connection]:
    """Each WebSocket connection of a pcap/pcapng file, as soon as its TCP flow finishes.

    Raises ``InputError`` (on first iteration) when the file is not a readable capture.
    """
    return PcapSession(path, limits=limits, keylog=keylog).connections()


def read_packet_capture(
    path: Path, *, limits: Limits = DEFAULT_LIMITS, keylog: Path | None = None
) -> Capture:
    """A whole pcap/pcapng file as a ``Capture``, connections in ``tcp.stream`` order."""
    session = PcapSession(path, limits=limits, keylog=keylog)
    connections = sorted(session.connections(), key=lambda c: c.stream or 0)
    return session.capture_record(tuple(connections))
