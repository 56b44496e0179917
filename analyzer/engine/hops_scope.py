"""The ``session`` rule scope: rules over hop chains (``analyzer.session.hops``).

A rule with ``scope: session`` is evaluated once per ``HopChain`` that
``link_sessions(captures)`` finds, with one CEL variable, ``session``: the chain's
``view()`` (names documented in ``HopChain.view``), where each leg also carries
``connection``, the light connection view other rules see (``analyzer.engine.view``), so
``session.legs[0].connection.origin`` means what ``connection.origin`` means elsewhere.

``register_session_scope()`` adds the scope to the engine's registry
(``analyzer.engine.scopes.register``). A session is able to show a fact when every one of
its legs can (a close code cannot be compared with a HAR leg that records none).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import Any

from analyzer.engine.evidence import build as build_evidence
from analyzer.engine.findings import Evidence
from analyzer.engine.scopes import SCOPES, Item, Scope, register
from analyzer.engine.view import CONNECTION, Field, connection_view
from analyzer.session.hops import HopChain, Leg, chain_of, link_sessions
from analyzer.session.model import Capture, Connection, Headers, Request


def _f(kind: str, doc: str = "", nullable: bool = False, **kw: Any) -> Field:
    return Field(kind, nullable, doc=doc, **kw)


_STR = _f("string")
_NAMES = _f("list", "lower-case header names", item=_STR)
_HEADERS = _f("map", "lower-case name -> raw values, in order", item=_f("list", item=_STR))

LEG = _f(
    "struct",
    "one TCP connection of the session, between two adjacent points",
    fields={
        "index": _f("int", "0 for the client-most leg"),
        "capture": _f("string", "the capture's path"),
        "connection_id": _f("string", "Connection.id"),
        "connection": replace(CONNECTION, doc="the connection's view, as connection rules see"),
        "client": _f("string", "ip:port; null for a HAR (the browser)", True),
        "server": _f("string", "ip:port, or the URL's host:port for a HAR", True),
        "label": _f("string", "between 127.0.0.1:51234 and 127.0.0.1:3000"),
        "url": _f("string", "ws://host[:port]/target", True),
        "method": _f("string", "", True),
        "target": _f("string", "request-target as sent", True),
        "status": _f("int", "the answer to the upgrade; null when not seen", True),
        "upgrade_requested": _f("bool", "the request asks for a WebSocket upgrade"),
        "request_headers": _HEADERS,
        "response_headers": _HEADERS,
        "close_known": _f("bool", "false when this leg's source records no closes"),
        "close": _f(
            "struct",
            "the first close on this leg; null when none (or not recordable)",
            True,
            fields={
                "from": _f("string", "client or server"),
                "code": _f("int", "null: empty close body", True),
                "reason": _f("string", "", True),
            },
        ),
        "close_text": _f("string", "server closed 1008 (origin not allowed); no close frame..."),
        "end": _f("string", "close-handshake, close-unanswered, fin, rst, capture-ended, unknown"),
        "client_messages": _f("int"),
        "server_messages": _f("int"),
        "start": _f("double", "the upgrade request's time on the first leg's clock", True),
        "clock_offset": _f("double", "seconds added to this leg's capture clock"),
        "also_seen": _f("list", "other captures that recorded this same leg", item=_STR),
    },
)
HOP = _f(
    "struct",
    "a proxy between two legs",
    fields={
        "index": _f("int", "0 for the hop nearest the client"),
        "proxy": _f("string", "where the proxy listened (client-side leg's server)", True),
        "label": _f("string", "the proxy at 127.0.0.1:3000"),
        "matched_on": _f("string", "key or request+timing"),
        "client_side": LEG,
        "server_side": LEG,
        "request_removed": _NAMES,
        "request_added": _NAMES,
        "request_changed": _NAMES,
        "response_removed": _NAMES,
        "response_added": _NAMES,
        "response_changed": _NAMES,
        "close_changed": _f("bool", "null when either leg cannot show closes", True),
    },
)
SESSION = _f(
    "struct",
    "one WebSocket session seen at several points (a hop chain)",
    fields={
        "id": _f("string", "session-<n>"),
        "leg_count": _f("int"),
        "hop_count": _f("int"),
        "gateway_answered": _f("bool", "one leg, refused by a gateway itself (502/504)"),
        "notes": _f("list", "clock offsets and other remarks", item=_STR),
        "captures": _f("list", "captures the legs come from", item=_STR),
        "legs": _f("list", "client-most first", item=LEG),
        "hops": _f("list", "one per proxy, client-most first", item=HOP),
    },
)


def session_view(chain: HopChain, captures: dict[str, Capture] | None = None) -> dict[str, Any]:
    """``chain.view()`` with each leg's ``connection`` view filled in."""
    view = chain.view()
    for leg, leg_view in zip(chain.legs, view["legs"], strict=True):
        cap = (captures or {}).get(leg.capture)
        leg_view["connection"] = connection_view(leg.connection, cap)
    return view


def _can_show(chain: HopChain) -> frozenset[str]:
    shows = [leg.connection.can_show for leg in chain.legs]
    return frozenset.intersection(*shows) if shows else frozenset()


def session_items(captures: tuple[Capture, ...]) -> Iterator[Item]:
    by_path = {cap.path: cap for cap in captures}
    for chain in link_sessions(captures):
        first = chain.legs[0]
        yield Item(
            variables={"session": session_view(chain, by_path)},
            can_show=_can_show(chain),
            connection=first.connection,
            capture=by_path[first.capture],
            time=first.start,
            payload=chain,
        )


def session_evidence(
    chain: HopChain, specs: list[tuple[str, str]], uses: AbstractSet[str]
) -> tuple[Evidence, ...]:
    """The rule's evidence on every leg, each labelled with the leg it was seen on
    (``leg 2 (between 127.0.0.1:37600 and 127.0.0.1:8080): no Origin header in the
    upgrade request``); locations stay those of the leg's own capture."""
    specs = _telling_headers(chain, specs)
    out: list[Evidence] = []
    for n, leg in enumerate(chain.legs, 1):
        for ev in build_evidence(leg.connection, specs, uses):
            out.append(replace(ev, label=f"leg {n} ({leg.describe()}): {ev.label}"))
    return tuple(out)


def _header_values(leg: Leg, kind: str, name: str) -> tuple[str, ...] | None:
    record = leg.connection.request if kind == "header" else leg.connection.response
    return None if record is None else tuple(record.headers.get_all(name))


def _telling_headers(chain: HopChain, specs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The rule's header entries that tell something about the hops: a header whose values
    differ between legs (dropped, added, rewritten), rather than one every leg carries
    unchanged or none carries (``no Cookie header`` on every leg is noise). When no entry
    differs, those present on some leg; when none is, all of them."""
    kinds = ("header", "response_header")
    headers = [(k, a) for k, a in specs if k in kinds]
    if len(chain.legs) < 2 or not headers:
        return specs
    seen = {spec: [_header_values(leg, *spec) for leg in chain.legs] for spec in headers}
    differ = {s for s, v in seen.items() if len({x for x in v if x is not None}) > 1}
    present = {s for s, v in seen.items() if any(v)}
    keep = differ or present or set(headers)
    return [spec for spec in specs if spec[0] not in kinds or spec in keep]


def _item_evidence(
    item: Item, specs: list[tuple[str, str]], uses: frozenset[str]
) -> tuple[Evidence, ...]:
    if isinstance(item.payload, HopChain):
        return session_evidence(item.payload, specs, uses)
    conn = item.connection  # an item made elsewhere, without its chain
    return build_evidence(conn, specs, uses) if conn is not None else ()


def _report_extra(payloads: list[Any]) -> dict[str, object]:
    """``Analysis.extra["hops"]``: the chains the items were made of (none: no entry)."""
    chains = tuple(p for p in payloads if isinstance(p, HopChain))
    return {"hops": chains} if chains else {}


def register_session_scope() -> None:
    """Make ``scope: session`` known to the rule loader (idempotent)."""
    if "session" not in SCOPES:
        register(SESSION_SCOPE)


# Rule examples ----------------------------------------------------------------------------


def _proxied(conn: Connection) -> Connection:
    """``conn`` as a proxy on 192.0.2.20:80 forwards it to 10.0.0.9:8080."""
    assert conn.request is not None
    headers = [(h.name, h.value) for h in conn.request.headers]
    headers.append(("X-Forwarded-For", "192.0.2.10"))
    request = Request(conn.request.method, conn.request.target, Headers.of(headers), "HTTP/1.1")
    return replace(
        conn,
        id="example#2",
        capture="example-server.pcapng",
        client="10.0.0.5:41000",
        server="10.0.0.9:8080",
        request=request,
    )


_EXAMPLE: dict[str, Any] | None = None


def session_example_defaults() -> dict[str, Any]:
    """Variable name -> the view of a clean two-leg session: a browser on 192.0.2.10 ->
    a proxy on 192.0.2.20:80 that passes every header on (adding X-Forwarded-For) ->
    the server on 10.0.0.9:8080; both legs close 1000. Rule examples merge over it
    (``session: {hops: [...]}`` replaces the list: give whole hop maps, start from
    ``example_hop()``)."""
    global _EXAMPLE
    if _EXAMPLE is None:
        from analyzer.engine.examples import clean_capture, clean_connection

        client_leg = clean_connection()
        server_leg = _proxied(client_leg)
        caps = (clean_capture(client_leg), clean_capture(server_leg))
        caps = (caps[0], replace(caps[1], path=server_leg.capture))
        chain = chain_of((client_leg, server_leg))
        by_path = {c.path: c for c in caps}
        _EXAMPLE = {"session": session_view(chain, by_path)}
    return copy.deepcopy(_EXAMPLE)


SESSION_SCOPE = Scope(
    "session",
    {"session": SESSION},
    session_items,
    doc="once per WebSocket session seen at several hops (analyzer.session.hops)",
    example_defaults=session_example_defaults,
    evidence=_item_evidence,
    extra=_report_extra,
)


def example_hop() -> dict[str, Any]:
    """The clean session's one hop, to edit into examples."""
    hops = session_example_defaults()["session"]["hops"]
    return dict(hops[0])
