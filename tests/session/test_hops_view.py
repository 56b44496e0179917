"""``can_show`` in the views rules see is a list of plain strings (not ``Fact`` members,
which the CEL runtime refuses): the connection view, the capture view and each leg's
connection view in the ``session`` scope, checked by evaluating CEL over real captures."""

from __future__ import annotations

from pathlib import Path

from analyzer.engine.cel import compile_expression, environment
from analyzer.engine.hops_scope import SESSION, session_view
from analyzer.engine.view import capture_view, connection_view
from analyzer.pipeline import load_capture
from analyzer.session.hops import link_sessions

HOPS = Path(__file__).resolve().parents[2] / "tests/data/hops"


def test_views_hold_plain_strings_and_cel_reads_them() -> None:
    har = load_capture(HOPS / "browser/browser.har")
    pcap = load_capture(HOPS / "browser/server-leg.pcapng")
    for cap in (har, pcap):
        views = [capture_view(cap)] + [connection_view(c, cap) for c in cap.connections]
        for view in views:
            assert view["can_show"], view
            assert {type(f) for f in view["can_show"]} == {str}
    (chain,) = link_sessions((har, pcap))
    view = session_view(chain, {har.path: har, pcap.path: pcap})
    for leg in view["legs"]:
        assert {type(f) for f in leg["connection"]["can_show"]} == {str}
    variables = {"session": SESSION}
    expr = compile_expression(
        '"close_frames" in session.legs[1].connection.can_show && '
        '!("close_frames" in session.legs[0].connection.can_show)',
        variables,
        want_bool=True,
    )
    result = expr.program.eval(environment(variables).Activation({"session": view}))
    assert result.value() is True


def test_one_direction_events_on_one_clock_keep_offset_zero() -> None:
    # The browser HAR holds only client -> server events (no closes, no server messages):
    # latency and skew cannot be told apart, and one clock explains every event, so the
    # legs keep offset 0 and every client event reaches the server leg after the browser's.
    har = load_capture(HOPS / "browser/browser.har")
    pcap = load_capture(HOPS / "browser/server-leg.pcapng")
    (chain,) = link_sessions((har, pcap))
    assert [leg.clock_offset for leg in chain.legs] == [0.0, 0.0]
    up, down = (leg.connection for leg in chain.legs)
    assert up.start is not None and down.start is not None and up.start < down.start
    for a, b in zip(up.messages, down.messages, strict=True):
        assert a.side == b.side == "client" and a.time <= b.time
