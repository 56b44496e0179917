"""Evidence: things a reader can check, built from a rule's ``evidence`` entries.

A rule says which evidence supports it (``- header: Origin``, ``- close: true``,
``- anomaly: frame.unmasked_client_frame``); this module turns each entry into
``Evidence`` records with locations (packet numbers, HAR entry and message indexes, frame
indexes) taken from the model. A rule that names none gets the close and the status when
its condition reads them.
"""

from __future__ import annotations

from collections.abc import Iterable

from analyzer.engine.findings import Evidence
from analyzer.session.model import Connection, Location

MAX_PER_KIND = 5  # anomalies can repeat thousands of times: show the first few


def _short(value: str, limit: int = 120) -> str:
    value = value.replace("\r", "\\r").replace("\n", "\\n")
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _when(t: float | None, start: float | None) -> str:
    if t is None or start is None:
        return ""
    return f" at +{t - start:.3f}s"


# header values by lower-case name, when the caller has them (the lazy view does)
Names = dict[str, list[str]]


def _header(c: Connection, name: str, response: bool, names: Names | None = None) -> Evidence:
    """A header of the upgrade request (or response), or its absence, as evidence."""
    head = c.response if response else c.request
    loc = head.location if head else None
    if head is None:
        missing = "the server's answer" if response else "the upgrade request"
        return Evidence(f"the capture does not show {missing}", loc, header=name)
    values = names.get(name.lower(), ()) if names is not None else head.headers.get_all(name)
    which = "response" if response else "request"
    if not values:
        return Evidence(f"no {name} header in the upgrade {which}", loc, header=name)
    shown = "; ".join(_short(v) for v in values)
    return Evidence(f"{which} header {name}: {shown}", loc, header=name)


def _proxy_headers(c: Connection) -> list[Evidence]:
    from analyzer.engine.view import PROXY_HEADERS

    if c.request is None:
        return []
    loc = c.request.location
    present = [h for h in c.request.headers if h.name.lower() in PROXY_HEADERS]
    if not present:
        return [Evidence("no proxy header (Via, Forwarded, X-Forwarded-*) in the request", loc)]
    return [
        Evidence(f"request header {h.name}: {_short(h.value)}", loc, header=h.name) for h in present
    ]


def _target(c: Connection) -> Evidence | None:
    """The request-target with query values elided: evidence must not copy a secret."""
    if c.request is None:
        return None
    from urllib.parse import parse_qsl

    path, _, query = c.request.target.partition("?")
    shown = path
    if query:
        names = [k for k, _ in parse_qsl(query, keep_blank_values=True)]
        shown += "?" + "&".join(f"{_short(k, 40)}=..." for k in names)
    return Evidence(f"request-target {_short(shown)} (query values not shown)", c.request.location)


def _status(c: Connection) -> Evidence | None:
    if c.response is None:
        return None
    reason = f" {c.response.reason}" if c.response.reason else ""
    return Evidence(
        f"the server answered the upgrade with {c.response.status}{reason}",
        c.response.location,
    )


def _close(c: Connection) -> list[Evidence]:
    cl = c.close
    if cl is None:
        return []
    who = cl.side if getattr(cl, "side_known", True) else "one side"
    code = cl.code if cl.code is not None else "no status code"
    reason = f" {_short(cl.reason)!r}" if cl.reason else ""
    label = (
        f"{who} sent close {code}{reason}{_when(cl.time, c.start)}, after "
        f"{cl.client_messages_before} client and {cl.server_messages_before} server messages"
    )
    out = [Evidence(label, cl.location, frame=cl.frame_index)]
    if cl.echoed:
        echo = cl.echo_code if cl.echo_code is not None else "no status code"
        out.append(Evidence(f"the other side answered with close {echo}", cl.echo_location))
    elif cl.echoed is False:
        out.append(Evidence("the other side never answered the close", cl.location))
    return out


_END_WORDS = {
    "close-handshake": "the close handshake completed",
    "close-unanswered": "a close was sent and never answered before the transport ended",
    "fin": "the TCP connection ended (FIN) without any close frame",
    "rst": "the TCP connection was reset (RST) without any close frame",
    "capture-ended": "the capture ended with the connection still open",
    "unknown": "the capture cannot show how the connection ended",
}


def _end(c: Connection) -> Evidence:
    loc = c.location
    if c.end_time is not None and c.stream is not None:
        loc = Location(c.capture, stream=c.stream)
    return Evidence(_END_WORDS.get(c.end, c.end) + _when(c.end_time, c.start), loc)


def _anomalies(c: Connection, pattern: str) -> list[Evidence]:
    prefix = pattern.endswith("*")
    stem = pattern.rstrip("*")
    hits = [a for a in c.anomalies if (a.code.startswith(stem) if prefix else a.code == stem)]
    out = [Evidence(f"{a.code}: {_short(a.detail, 200)}", a.location) for a in hits[:MAX_PER_KIND]]
    if len(hits) > MAX_PER_KIND:
        out.append(Evidence(f"... and {len(hits) - MAX_PER_KIND} more {stem} anomalies"))
    return out


def _message(c: Connection, side: str, last: bool) -> Evidence | None:
    candidates = [m for m in c.messages if side == "any" or m.side == side]
    if c.close is not None and c.close.time is not None and last:
        candidates = [m for m in candidates if m.time <= c.close.time]
    if not candidates:
        return None
    m = candidates[-1] if last else candidates[0]
    which = "last" if last else "first"
    kind = {1: "text", 2: "binary"}.get(m.opcode, f"opcode {m.opcode}")
    label = f"{which} {m.side} message: {kind}, {m.size} bytes{_when(m.time, c.start)}"
    return Evidence(label, m.location(c.capture, c.stream), message=m.index)


def build(
    c: Connection,
    specs: Iterable[tuple[str, str]],
    uses: Iterable[str],
    names: tuple[Names, Names] | None = None,
) -> tuple[Evidence, ...]:
    """Evidence for a finding on ``c``; ``uses`` are the view fields the rule reads;
    ``names``: the request's and the response's header values by lower-case name, when
    already at hand (saves scanning the headers for each header entry)."""
    req_names, resp_names = names if names is not None else (None, None)
    out: list[Evidence] = []
    specs = list(specs)
    if not specs:
        used = set(uses)
        if "status" in used or "response" in used or "upgraded" in used:
            specs.append(("status", ""))
        if "close" in used:
            specs.append(("close", ""))
    for kind, arg in specs:
        if kind == "header":
            out.append(_header(c, arg, False, req_names))
        elif kind == "response_header":
            out.append(_header(c, arg, True, resp_names))
        elif kind == "status":
            ev = _status(c)
            if ev is not None:
                out.append(ev)
        elif kind == "close":
            out.extend(_close(c))
        elif kind == "proxy_headers":
            out.extend(_proxy_headers(c))
        elif kind == "target":
            ev = _target(c)
            if ev is not None:
                out.append(ev)
        elif kind == "end":
            out.append(_end(c))
        elif kind == "anomaly":
            out.extend(_anomalies(c, arg))
        elif kind in ("first_message", "last_message"):
            ev = _message(c, arg or "any", kind == "last_message")
            if ev is not None:
                out.append(ev)
    return tuple(out)
