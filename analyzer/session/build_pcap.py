"""Packet captures into the session model: reader -> TCP reassembly -> FlowParser -> Connection.

A ``FlowParser`` (``analyzer.protocol.flow``) puts a transport (``analyzer.transport``:
HTTP/1.1 upgrade, or a session already under way) and one ``WebSocketConnection`` per
connection it starts above each TCP flow; ``FlowParser.results`` gives 0..n connections per
flow, each turned into a model ``Connection`` here (ids: ``connection_id``).

``iter_connections`` streams: each connection is yielded when its TCP flow finishes (RST,
FIN both ways, eviction, or the end of the capture), so memory is bounded by the open
flows and the limits, never by the file size. ``read_packet_capture`` collects them into a
``Capture`` in ``tcp.stream`` order.

A flow's bytes go through ``make_sink``: its first bytes choose, once, between a plain
``FlowParser`` and, when they are a TLS record, a ``DecryptingSink`` (``analyzer.inputs.tls``)
in front of a ``FlowParser(scheme="wss")``; the chosen sink then replaces the chooser, so
cleartext flows pay one check per flow and nothing per packet. The key log (``--keylog``,
else ``$SSLKEYLOGFILE``, merged with the file's Decryption Secrets Blocks) is optional:
without keys a TLS connection is still listed, with what its handshake showed (SNI, ALPN,
version) and why it could not be read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from analyzer.errors import KeyLogError
from analyzer.inputs.keylog import KeyLog, gather_keylog
from analyzer.inputs.pcap import PacketReader, key_endpoints
from analyzer.inputs.tls import KEYLOG_ADVICE, DecryptingSink, TlsFlow, describe_key_coverage
from analyzer.inputs.tls import looks_like_tls as _looks_like_tls
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.protocol.anomalies import STREAM_UNPARSED
from analyzer.protocol.flow import FlowParser, FlowResult
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
# What an encrypted connection (no usable key) still shows: who talked, and how TCP ended.
ENCRYPTED_FACTS = frozenset({Fact.ENDPOINTS, Fact.TRANSPORT_END})
MAX_KEYLOG_PROBLEMS_NOTED = 3
# A connection's can_show, by (upgrade request seen, response seen): made once, not per
# connection.
_CAN_SHOW = {
    (req, resp): frozenset(
        CONNECTION_FACTS
        | ({Fact.HANDSHAKE_REQUEST} if req else set())
        | ({Fact.HANDSHAKE_RESPONSE} if resp else set())
    )
    for req in (False, True)
    for resp in (False, True)
}
_NONE_BLIND: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """What ``describe_key_coverage`` needs of a finished TLS flow (the flow itself is let go)."""

    stream: int
    key_found: bool | None


class _FirstBytes:
    """A flow's first sink: its first bytes choose the real one, which then replaces it in
    ``flow.sink`` (so the tracker feeds the parser directly from the next packet on)."""

    __slots__ = ("session", "flow", "chosen")

    def __init__(self, session: PcapSession, flow: TcpFlow) -> None:
        self.session = session
        self.flow = flow
        self.chosen: ByteSink | None = None

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None:
        sink = self.chosen
        if sink is None:
            sink = self.chosen = self.flow.sink = self.session.choose_sink(self.flow, chunk)
        sink.data(from_orig, chunk, packet, time)

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
        sink = self.chosen
        if sink is None:  # bytes lost before any arrived: nothing to tell TLS by
            sink = self.chosen = self.flow.sink = self.session.choose_sink(self.flow, b"")
        sink.gap(from_orig, length, packet, time)

    @property
    def interested(self) -> bool:
        return True if self.chosen is None else self.chosen.interested


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
        self.keylog = keylog  # --keylog; None: $SSLKEYLOGFILE when set (gather_keylog)
        self.reader = PacketReader(path, self.capture)
        self.tracker = TcpTracker(self.capture, limits, self.make_sink, self.keep)
        self.file_keys: KeyLog | None = None  # from --keylog / $SSLKEYLOGFILE
        self.keys: KeyLog | None = None  # file_keys merged with the DSBs read so far
        self._dsb_read = 0  # how many of reader.secrets are in self.keys
        self._dsb_problems: list[str] = []
        self.tls_lookups: list[KeyLookup] = []  # each TLS flow, once it is done with
        self.tls_encrypted = 0  # TLS connections listed undecrypted
        self.tls_unsupported = 0  # ... of which a key would not help (version, cipher suite)
        self.tls_http2 = 0  # TLS connections listed as HTTP/2 (ALPN h2)

    def make_sink(self, flow: TcpFlow) -> ByteSink:
        """What a flow's reassembled bytes are fed to: decided by its first bytes."""
        return _FirstBytes(self, flow)

    def choose_sink(self, flow: TcpFlow, first: bytes) -> ByteSink:
        """A ``FlowParser``, behind a ``DecryptingSink`` when ``first`` is a TLS record."""
        if not _looks_like_tls(first[:16]):
            return FlowParser(self.capture, flow.stream, self.limits)
        parser = FlowParser(self.capture, flow.stream, self.limits, scheme="wss")
        return DecryptingSink(parser, self.current_keys(), self.capture, flow.stream, self.limits)

    def current_keys(self) -> KeyLog | None:
        """The key log for flows starting now: the file's, merged with every Decryption
        Secrets Block read so far (a DSB precedes the packets it decrypts, pcapng 4.7)."""
        secrets = self.reader.secrets
        while self._dsb_read < len(secrets):
            payload = secrets[self._dsb_read]
            self._dsb_read += 1
            try:
                dsb = gather_keylog(None, (payload,), environ={})
            except KeyLogError as exc:
                self._dsb_problems.append(exc.message)
                continue
            if dsb is not None:
                self.keys = dsb if self.keys is None else self.keys.merged(dsb)
        return self.keys

    def keep(self, flow: TcpFlow) -> bool:
        """A parser lost interest: follow the flow to its FIN/RST if it has something to
        report (an upgrade answered 403, or a TLS connection that could not be read),
        else forget it at once."""
        sink = flow.sink
        if isinstance(sink, DecryptingSink):
            parser = sink.inner
            if (isinstance(parser, FlowParser) and parser.results()) or (
                sink.tls is not None and _unread(sink.tls)
            ):
                flow.owner = sink
                return True
            if sink.tls is not None:
                self.tls_lookups.append(KeyLookup(flow.stream, sink.tls.key_found))
            return False
        if isinstance(sink, FlowParser) and sink.results():
            flow.owner = sink
            return True
        return False

    def connections(self) -> Iterator[Connection]:
        # Raises KeyLogError for a --keylog that cannot be used at all.
        self.file_keys = self.keys = gather_keylog(self.keylog)
        for flow in self.tracker.run(self.reader):
            conns = self.flow_connections(flow)
            flow.release()
            yield from conns

    def flow_connections(self, flow: TcpFlow) -> list[Connection]:
        """The WebSocket connections of a finished flow (0..n: ``FlowParser.results``, ids
        by ``connection_id``), or the TLS connection it could not read."""
        sink = flow.owner if flow.owner is not None else flow.sink
        tls: TlsFlow | None = None
        if isinstance(sink, _FirstBytes):
            sink = sink.chosen
        if isinstance(sink, DecryptingSink):
            sink.finish()
            tls = sink.tls
            sink = sink.inner
            if tls is not None:
                self.tls_lookups.append(KeyLookup(flow.stream, tls.key_found))
        if not isinstance(sink, FlowParser):
            return []
        results = sink.results()
        if not results:
            if tls is not None and _unread(tls):
                if tls.http2:
                    self.tls_http2 += 1
                else:
                    self.tls_encrypted += 1
                    self.tls_unsupported += _unsupported(tls.problem)
                return [self.encrypted_connection(flow, tls)]
            return []
        return [
            self.connection(flow, result, tls, connection_id(self.stem, flow.stream, n))
            for n, result in enumerate(results, 1)
        ]

    def connection(
        self, flow: TcpFlow, result: FlowResult, tls: TlsFlow | None, conn_id: str
    ) -> Connection:
        """One of a flow's results as a model Connection."""
        orig, resp = key_endpoints(flow.key)
        client, server = (orig, resp) if result.client_is_orig else (resp, orig)
        transport_end = flow.end or "open"
        blind = (
            frozenset(
                str(a.location.direction)
                for a in result.anomalies
                if a.code == STREAM_UNPARSED and a.location is not None
            )
            if result.anomalies
            else _NONE_BLIND
        )
        close, end = summarize_close(result.closes, result.messages, transport_end, blind)
        can_show = _CAN_SHOW[result.request is not None, result.response is not None]
        anomalies: tuple[Anomaly, ...] | list[Anomaly] = result.anomalies
        if flow.anomalies or flow.anomaly_counts or tls is not None:
            anomalies = list(anomalies)
            anomalies += self.transport_anomalies(flow, result.client_is_orig)
            if tls is not None:
                anomalies += tls.anomalies
        end_time = flow.last_time
        if result.last_time is not None and result.last_time > end_time:
            end_time = result.last_time
        return Connection(
            id=conn_id,
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
            close_known=close is not None or not blind,
            end=end,
            can_show=can_show,
            anomalies=tuple(anomalies),
            location=Location(self.capture, packet=flow.first_packet, stream=flow.stream),
            http_version=result.http_version,
            handshake_seen=result.handshake_seen,
            stream=flow.stream,
            message_count=result.message_count,
            tls=tls.info if tls is not None else None,
        )

    def transport_anomalies(self, flow: TcpFlow, client_is_orig: bool) -> list[Anomaly]:
        out = []
        for a in flow.anomalies:
            side: Side = "client" if a.from_orig == client_is_orig else "server"
            loc = Location(self.capture, packet=a.packet, stream=flow.stream, direction=side)
            out.append(Anomaly(a.code, f"{a.detail} (from the {side})", loc))
        for code, n in flow.anomaly_counts.items():
            if n > len([a for a in flow.anomalies if a.code == code]):
                out.append(Anomaly(code, f"{n} in all on this connection"))
        return out

    def encrypted_connection(self, flow: TcpFlow, tls: TlsFlow) -> Connection:
        """A TLS connection whose contents could not be read: listed with what its
        handshake showed, able to show only its endpoints and how TCP ended."""
        orig, resp = key_endpoints(flow.key)
        client_is_orig = tls.client_is_orig is not False
        client, server = (orig, resp) if client_is_orig else (resp, orig)
        info = tls.info
        url = None
        if info.sni and server:
            url = f"wss://{info.sni}:{server.rsplit(':', 1)[1]}/"
        _, end = summarize_close((), (), flow.end or "open")
        anomalies = list(tls.anomalies) + self.transport_anomalies(flow, client_is_orig)
        return Connection(
            id=connection_id(self.stem, flow.stream, 1),
            capture=self.capture,
            url=url,
            client=client,
            server=server,
            start=flow.first_time,
            end_time=flow.last_time,
            request=None,
            response=None,
            messages=(),
            frames=None,
            close=None,
            close_known=False,
            end=end,
            can_show=ENCRYPTED_FACTS,
            anomalies=tuple(anomalies),
            location=Location(self.capture, packet=flow.first_packet, stream=flow.stream),
            http_version="2" if tls.http2 else None,
            handshake_seen=False,
            tls=info,
            stream=flow.stream,
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
        out += self.tls_notes()
        return tuple(out)

    def tls_notes(self) -> list[str]:
        out = [f"A Decryption Secrets Block could not be used: {p}." for p in self._dsb_problems]
        keys = self.keys
        if keys is not None and keys.problems:
            shown = "; ".join(
                (f"line {n}: {p}" if n else p) for n, p in keys.problems[:MAX_KEYLOG_PROBLEMS_NOTED]
            )
            more = len(keys.problems) - MAX_KEYLOG_PROBLEMS_NOTED
            out.append(
                f"{len(keys.problems)} TLS key log lines could not be used (the rest were): "
                f"{shown}" + (f"; and {more} more." if more > 0 else ".")
            )
        coverage = describe_key_coverage(keys, self.tls_lookups)
        if coverage is not None:
            end = "" if coverage.endswith(("?", ".")) else "."
            out.append(coverage[0].upper() + coverage[1:] + end)
        if self.tls_encrypted:
            n, unsupported = self.tls_encrypted, self.tls_unsupported
            what = "TLS connection was" if n == 1 else "TLS connections were"
            if keys is None and not unsupported:
                why = "no TLS key log was given"
            elif unsupported == n:
                why = "their TLS version or cipher suite is not supported for decryption"
            else:
                why = "each connection's TLS row says why"
            text = (
                f"{n} {what} not decrypted ({why}), so only endpoints and how TCP ended can "
                "be evaluated there"
            )
            if unsupported < n:
                text += f"; to decrypt, {KEYLOG_ADVICE}"
            out.append(text + ".")
        if self.tls_http2:
            n = self.tls_http2
            what = "TLS connection negotiated" if n == 1 else "TLS connections negotiated"
            out.append(
                f"{n} {what} HTTP/2 (ALPN h2): WebSocket over HTTP/2 (RFC 8441) is not "
                "analysed yet, so their contents are not parsed."
            )
        return out

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


def _unsupported(problem: str | None) -> bool:
    """Whether a TLS problem is one no key log can solve (TlsFlow's wording)."""
    return problem is not None and (
        "not supported for decryption" in problem or "cannot be used with" in problem
    )


def _unread(tls: TlsFlow) -> bool:
    """A TLS connection worth listing although nothing above TLS was parsed: HTTP/2, or one
    whose handshake we saw (or whose records we could not read) but did not decrypt."""
    if tls.http2:
        return True
    if tls.decrypted:
        return False
    return tls.client_random is not None or tls.server_random is not None or tls.problem is not None


def connection_id(stem: str, stream: int, n: int) -> str:
    """The id of the ``n``-th (from 1) connection of TCP stream ``stream``: ``<stem>#<stream>``
    for the first (a flow carries one WebSocket connection, except HTTP/2 with RFC 8441),
    ``<stem>#<stream>.<n>`` for the second and later, in the order ``FlowParser.results``
    gives them."""
    return f"{stem}#{stream}" if n == 1 else f"{stem}#{stream}.{n}"


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
