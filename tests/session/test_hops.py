"""Hop chains from real proxies on loopback (tests/data/hops, see its README section).

Each test runs twice: on connections read by tshark (test_hops_tshark.py) and on those read
by the project's own readers (``analyzer.pipeline.load_capture``), skipped while those are
not built.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from test_hops_tshark import HOPS, needs_tshark, read_har_json, read_with_tshark

from analyzer.session.hops import HeaderDiff, HopChain, link_sessions
from analyzer.session.model import Capture, Headers

# The public corpus, as copied into tests/data by the readers' helpers (see MANIFEST.md).
DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS_PCAPS = DATA / "pcap"
CORPUS_HARS = DATA / "har" / "corpus"
Reader = Callable[[Path], Capture]

pytestmark = needs_tshark


def _analyzer_reader(path: Path) -> Capture:
    from analyzer.pipeline import load_capture

    try:
        return load_capture(path)
    except (ImportError, NotImplementedError) as exc:
        pytest.skip(f"the project's reader for {path.suffix} is not built yet ({exc})")


def _tshark_reader(path: Path) -> Capture:
    return read_har_json(path) if path.suffix == ".har" else read_with_tshark(path)


@pytest.fixture(params=["tshark", "analyzer"])
def read(request: pytest.FixtureRequest) -> Reader:
    return _tshark_reader if request.param == "tshark" else _analyzer_reader


def _link(read: Reader, *paths: Path) -> tuple[HopChain, ...]:
    return link_sessions(tuple(read(p) for p in paths))


def _ports(chain: HopChain) -> list[str]:
    return [(leg.server or "").rsplit(":", 1)[-1] for leg in chain.legs]


def _closes(chain: HopChain) -> list[int | None]:
    return [leg.close.code if leg.close else None for leg in chain.legs]


# scenario: (servers in order, matched_on, request headers removed / added / changed at
# the first hop, close code per leg, status per leg)
SCENARIOS = {
    "httpproxy-strip": (
        ["3000", "8080"],
        "key",
        {"origin"},
        {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"},
        set(),
        [1008, 1008],
    ),
    "httpproxy-pass": (
        ["3000", "8080"],
        "key",
        set(),
        {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"},
        set(),
        [1000, 1000],
    ),
    "nginx-strip": (["3000", "8080"], "key", {"origin"}, {"x-forwarded-for"}, {"host"}, [1008] * 2),
    "nginx-pass": (["3000", "8080"], "key", set(), {"x-forwarded-for"}, {"host"}, [1000, 1000]),
    # nginx without the WebSocket directives: HTTP/1.0, Connection: close, no Upgrade.
    "nginx-no-upgrade": (
        ["3000", "8080"],
        "key",
        {"upgrade"},
        {"x-forwarded-for"},
        {"host", "connection"},
        [None, None],
    ),
    # The relay starts its own handshake: new key, its own User-Agent, no Origin or Cookie.
    "relay-1011": (
        ["3000", "8080"],
        "request+timing",
        {"origin", "cookie", "accept-language"},
        set(),
        {"host", "sec-websocket-key", "user-agent"},
        [1011, 1008],
    ),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_one_capture_holding_both_legs_is_one_chain(read: Reader, scenario: str) -> None:
    ports, matched_on, removed, added, changed, closes = SCENARIOS[scenario]
    path = HOPS / scenario / "both-legs.pcapng"
    (chain,) = _link(read, path)
    assert _ports(chain) == ports
    (hop,) = chain.hops
    assert hop.matched_on == matched_on
    assert set(hop.request.names("removed")) == removed
    assert set(hop.request.names("added")) == added
    assert set(hop.request.names("changed")) == changed
    assert _closes(chain) == closes
    assert hop.proxy == "127.0.0.1:3000"
    assert chain.legs[1].client is not None and chain.legs[1].client.startswith("127.0.0.1:")
    assert [leg.clock_offset for leg in chain.legs] == [0.0, 0.0]


def test_the_removed_value_is_kept_raw(read: Reader) -> None:
    (chain,) = _link(read, HOPS / "httpproxy-strip" / "both-legs.pcapng")
    (origin,) = chain.hops[0].request.removed
    assert (origin.name, origin.before, origin.after) == ("origin", ("http://127.0.0.1:3000",), ())
    assert chain.legs[0].describe().endswith("and 127.0.0.1:3000")
    assert chain.legs[1].describe().endswith("and 127.0.0.1:8080")


def test_close_rewritten_by_the_relay_is_a_changed_close(read: Reader) -> None:
    (relay,) = _link(read, HOPS / "relay-1011" / "both-legs.pcapng")
    (passed,) = _link(read, HOPS / "nginx-strip" / "both-legs.pcapng")
    assert relay.hops[0].close_changed is True
    assert passed.hops[0].close_changed is False


def test_three_legs_through_two_proxies(read: Reader) -> None:
    (chain,) = _link(read, HOPS / "chain" / "both-legs.pcapng")
    assert _ports(chain) == ["3000", "3001", "8080"]
    first, second = chain.hops
    assert "origin" not in first.request.names("removed")  # nginx passed it on
    assert second.request.names("removed") == ("origin",)  # http-proxy dropped it
    assert second.proxy == "127.0.0.1:3001"
    assert "x-forwarded-for" in second.request.names("changed")  # the chain grew


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["client-leg", "mid-leg", "server-leg"]))
)
def test_one_capture_per_leg_links_in_any_order(read: Reader, order: tuple[str, ...]) -> None:
    (chain,) = _link(read, *(HOPS / "chain" / f"{name}.pcapng" for name in order))
    assert [Path(leg.capture).stem for leg in chain.legs] == [
        "client-leg",
        "mid-leg",
        "server-leg",
    ]
    # One machine's clock: the offsets estimated are the proxies' latency, not clock skew.
    assert all(abs(leg.clock_offset) < 0.05 for leg in chain.legs)
    assert chain.hops[1].request.names("removed") == ("origin",)


def test_a_leg_recorded_twice_is_one_leg_not_a_hop(read: Reader) -> None:
    (chain,) = _link(
        read, HOPS / "nginx-strip" / "both-legs.pcapng", HOPS / "nginx-strip" / "server-leg.pcapng"
    )
    assert _ports(chain) == ["3000", "8080"]
    assert [Path(c.capture).stem for c in chain.legs[1].also_seen] == ["server-leg"]


def test_browser_har_and_server_pcap(read: Reader) -> None:
    (chain,) = _link(read, HOPS / "browser" / "browser.har", HOPS / "browser" / "server-leg.pcapng")
    browser, server = chain.legs
    assert browser.capture.endswith("browser.har")
    assert browser.describe() == "between the browser and 127.0.0.1:3000"
    assert server.server == "127.0.0.1:8080"
    assert chain.hops[0].request.names("removed") == ("origin",)
    assert chain.hops[0].close_changed is None  # a HAR records no close frames


def test_browser_har_beside_the_pcap_of_its_own_leg_is_folded_in(read: Reader) -> None:
    (chain,) = _link(read, HOPS / "browser" / "browser.har", HOPS / "browser" / "both-legs.pcapng")
    assert _ports(chain) == ["3000", "8080"]
    assert [Path(c.capture).name for c in chain.legs[0].also_seen] == ["browser.har"]
    assert chain.legs[0].connection.close_known  # the pcap's observation is kept


def _shifted(src: Path, seconds: float, tmp_path: Path) -> Path:
    editcap = shutil.which("editcap")
    if editcap is None:
        pytest.skip("editcap not installed")
    out = tmp_path / f"{src.parent.name}-{src.stem}{seconds:+}.pcapng"
    subprocess.run([editcap, "-t", str(seconds), str(src), str(out)], check=True)
    return out


@pytest.mark.parametrize("seconds", [37.25, -250.0])
def test_clock_offset_between_capture_machines(
    read: Reader, seconds: float, tmp_path: Path
) -> None:
    server = _shifted(HOPS / "httpproxy-strip" / "server-leg.pcapng", seconds, tmp_path)
    (chain,) = _link(read, server, HOPS / "httpproxy-strip" / "client-leg.pcapng")
    assert _ports(chain) == ["3000", "8080"]  # ordered by causality, not by raw times
    assert chain.legs[1].clock_offset == pytest.approx(-seconds, abs=0.05)
    assert any("differs" in note for note in chain.notes)


def test_clocks_further_apart_than_tolerated_are_not_linked(read: Reader, tmp_path: Path) -> None:
    server = _shifted(HOPS / "httpproxy-strip" / "server-leg.pcapng", 3600.0, tmp_path)
    assert _link(read, server, HOPS / "httpproxy-strip" / "client-leg.pcapng") == ()


def test_relay_legs_in_two_captures_of_one_clock(read: Reader) -> None:
    (chain,) = _link(
        read, HOPS / "relay-1011" / "server-leg.pcapng", HOPS / "relay-1011" / "client-leg.pcapng"
    )
    assert _ports(chain) == ["3000", "8080"]
    assert chain.hops[0].matched_on == "request+timing"


def test_two_runs_of_the_same_script_are_not_linked(read: Reader) -> None:
    # Same path, same messages, proxies on 3000 and 8080: only causality tells them apart.
    chains = _link(
        read,
        HOPS / "httpproxy-pass" / "server-leg.pcapng",
        HOPS / "nginx-pass" / "client-leg.pcapng",
    )
    assert chains == ()


def test_a_gateway_that_answered_itself(read: Reader) -> None:
    (chain,) = _link(read, HOPS / "nginx-dead-upstream" / "both-legs.pcapng")
    assert chain.gateway_answered and len(chain.legs) == 1 and chain.hops == ()
    assert chain.legs[0].connection.status == 502


def _corpus_files() -> list[Path]:
    files = sorted(p for d in (CORPUS_PCAPS, CORPUS_HARS) for p in d.rglob("*") if p.is_file())
    assert len(files) >= 33, "the corpus copies in tests/data are missing"
    return files


def test_no_false_hops_across_the_corpus_and_every_hop_capture(read: Reader) -> None:
    both = sorted(HOPS.glob("*/both-legs.pcapng"))
    captures = [read(p) for p in [*_corpus_files(), *both]]
    chains = link_sessions(captures)
    by_capture = {}
    for chain in chains:
        files = {leg.capture for leg in chain.legs}
        assert len(files) == 1, f"{chain.id} links legs of unrelated captures: {files}"
        by_capture[Path(files.pop()).parent.name] = chain
    # Every scenario's session, and the one real hop in the corpus: Docker's userland proxy
    # (127.0.0.1:8180 on the host -> 172.18.0.3:8180 in the container) in evsetool/cap.pcapng.
    # (Each scenario is expected when the reader links it on its own: see the xfail above.)
    alone = [p.parent.name for p in both if link_sessions((read(p),))]
    assert len(alone) >= len(both) - 1
    assert sorted(by_capture) == sorted([*alone, "evsetool"])
    docker = by_capture["evsetool"]
    assert [leg.server for leg in docker.legs] == ["127.0.0.1:8180", "172.18.0.3:8180"]
    assert docker.hops[0].request == HeaderDiff()  # a TCP proxy changes nothing


def test_header_diff_is_case_insensitive_and_keeps_raw_values() -> None:
    before = Headers.of([("Origin", "https://a"), ("Connection", "Upgrade"), ("X-A", "1")])
    after = Headers.of([("origin", "https://a"), ("connection", "upgrade"), ("x-a", "2")])
    diff = HeaderDiff.between(before, after)
    assert diff.removed == () and diff.added == ()
    assert [(c.name, c.before, c.after) for c in diff.changed] == [("x-a", ("1",), ("2",))]
    assert HeaderDiff.between(before, None) == HeaderDiff()


def test_view_for_rules(read: Reader) -> None:
    (chain,) = _link(read, HOPS / "nginx-strip" / "both-legs.pcapng")
    view = chain.view()
    assert view["leg_count"] == 2 and view["hop_count"] == 1
    assert view["gateway_answered"] is False
    hops = view["hops"]
    assert isinstance(hops, list)
    hop = hops[0]
    assert hop["request_removed"] == ["origin"]
    assert hop["proxy"] == "127.0.0.1:3000"
    assert hop["client_side"]["request_headers"]["origin"] == ["http://127.0.0.1:3000"]
    assert "origin" not in hop["server_side"]["request_headers"]
    assert hop["server_side"]["close"] == {
        "from": "server",
        "code": 1008,
        "reason": "origin not allowed",
    }
    assert hop["close_changed"] is False
    assert hop["label"] == "the proxy at 127.0.0.1:3000"
    assert hop["server_side"]["label"].endswith("and 127.0.0.1:8080")


def test_a_har_made_from_a_pcap_is_the_same_leg(read: Reader) -> None:
    # pcap2har turned this capture into that HAR: one browser connection, recorded twice.
    pcap = CORPUS_PCAPS / "mikekap-pcap2har" / "ipv4-websocket-segmented.pcap"
    har = CORPUS_HARS / "test_websocket.py-test_websocket_segmented.har"
    keys = [{c.key for c in read(p).connections if c.key} for p in (pcap, har)]
    assert keys[0] & keys[1], "the two files should share the connection's key"
    assert link_sessions((read(pcap), read(har))) == ()


def test_browser_har_and_a_server_pcap_from_a_machine_with_another_clock(
    read: Reader, tmp_path: Path
) -> None:
    server = _shifted(HOPS / "browser" / "server-leg.pcapng", -93.5, tmp_path)
    (chain,) = _link(read, server, HOPS / "browser" / "browser.har")
    assert chain.legs[0].capture.endswith("browser.har")
    assert chain.legs[1].clock_offset == pytest.approx(93.5, abs=0.05)
    assert chain.hops[0].request.names("removed") == ("origin",)


def test_to_json_for_reports_keeps_raw_values_and_locations(read: Reader) -> None:
    (chain,) = _link(read, HOPS / "relay-1011" / "both-legs.pcapng")
    out = json.loads(json.dumps(chain.to_json()))  # plain JSON types only
    diff = out["hops"][0]["request_diff"]
    assert {"name": "cookie", "before": ["sid=c0ffee"], "after": []} in diff["removed"]
    assert out["legs"][1]["close"]["code"] == 1008
    assert out["legs"][0]["request_location"]["packet"] > 0
    assert out["legs"][1]["close_location"]["direction"] == "server"
