"""Redaction: on by default in every format; planted secrets appear nowhere unless
``redact=False``; the report counts what it hid and never shows the value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from render_captures import ROOT, SECRETS, mitm_analysis, secrets_analysis

from analyzer.render import FORMATS, RenderOptions, render
from analyzer.render.redact import MASK, Redactor, redact_text, redact_url

EXTRA = RenderOptions(redact_headers=("X-Tenant-Key",), redact_params=("tenant",))


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("fmt", FORMATS)
def test_planted_secrets_appear_in_no_format(fmt: str, tmp_path: Path) -> None:
    analysis = secrets_analysis(tmp_path)
    text = render(analysis, fmt, EXTRA)
    leaked = [name for name, value in SECRETS.items() if value in text]
    assert leaked == []
    # pieces of the JWT are secret too (header.payload without the signature)
    assert SECRETS["jwt"].split(".")[1] not in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_redact_keeps_them(fmt: str, tmp_path: Path) -> None:
    analysis = secrets_analysis(tmp_path)
    text = render(analysis, fmt, RenderOptions(redact=False))
    assert SECRETS["authorization"] in text  # the test above can fail
    if fmt in ("html", "json"):  # the formats that show headers and payloads
        kept = [name for name, value in SECRETS.items() if value in text]
        assert sorted(kept) == sorted(SECRETS)


def test_default_hides_named_headers_only_when_asked(tmp_path: Path) -> None:
    text = render(secrets_analysis(tmp_path), "json")
    assert SECRETS["custom_header"] in text and SECRETS["custom_param"] in text
    assert SECRETS["authorization"] not in text


def test_report_counts_what_it_hid(tmp_path: Path) -> None:
    doc = json.loads(render(secrets_analysis(tmp_path), "json", EXTRA))
    red = doc["redaction"]
    assert red["enabled"] is True
    counts = red["counts"]
    assert counts["header:authorization"] == 1
    assert counts["header:proxy-authorization"] == 1
    assert counts["header:cookie"] == 2  # the header, and the evidence label quoting it
    assert counts["header:set-cookie"] == 1
    assert counts["header:x-tenant-key"] == 2
    assert counts["subprotocol-token"] >= 1 and counts["jwt"] >= 1
    assert counts["json-field"] >= 3 and counts["query-param"] >= 3
    conn = doc["connections"][0]
    headers = {h["name"]: h["value"] for h in conn["request"]["headers"]}
    assert headers["Authorization"] == f"Bearer {MASK}"
    assert headers["Cookie"] == f"session={MASK}; theme={MASK}"
    assert headers["Sec-WebSocket-Protocol"] == f"chat, authorization.bearer.{MASK}"
    assert conn["url"].endswith(f"&token={MASK}&api_key={MASK}&tenant={MASK}")
    html = render(secrets_analysis(tmp_path), "html", EXTRA)
    assert "header:authorization &times; 1" in html or "header:authorization × 1" in html
    off = json.loads(render(secrets_analysis(tmp_path), "json", RenderOptions(redact=False)))
    assert off["redaction"] == {
        "enabled": False,
        "counts": {},
        "extra_headers": [],
        "extra_params": [],
    }
    assert "redaction OFF" in render(secrets_analysis(tmp_path), "md", RenderOptions(redact=False))


def test_real_export_api_key_is_hidden() -> None:
    text = render(mitm_analysis(), "json")
    assert "VCXCEuvhGcBDP7XhiJJUDvR1e1D3eiVjgZ9VRiaV" not in text
    assert "GA1.1.636013294.1693303610" not in text  # the _ga cookie value
    assert "api_key=[REDACTED]" in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("wss://h/p?token=abc&room=1", f"wss://h/p?token={MASK}&room=1"),
        (
            "/ws?access_token=a&api-key=b&apikey=c&sig=d",
            f"/ws?access_token={MASK}&api-key={MASK}&apikey={MASK}&sig={MASK}",
        ),
        ("/ws?code=xyz&state=1&keyboard=en", f"/ws?code={MASK}&state=1&keyboard=en"),
        ("wss://user:pw@h/", f"wss://user:{MASK}@h/"),
        ("/ws?token=", "/ws?token="),  # nothing to hide
    ],
)
def test_urls(value: str, expected: str) -> None:
    assert redact_url(value) == expected


def test_text_and_payloads() -> None:
    jwt = SECRETS["jwt"]
    assert redact_text(f"closed: {jwt} expired") == f"closed: {MASK} expired"
    assert redact_text("Authorization: Bearer abcdefgh1234") == f"Authorization: Bearer {MASK}"
    r = Redactor()
    assert r.payload('{"password": "p4ss", "user": "bob", "pin": 1234, "ok": true}') == (
        f'{{"password": "{MASK}", "user": "bob", "pin": "{MASK}", "ok": true}}'
    )
    # a preview cut inside the value still hides it
    assert r.payload('{"secret": "abcdef') == f'{{"secret": "{MASK}"'
    assert r.summary() == {"json-field": 3}
    assert Redactor(enabled=False).payload('{"password": "p"}') == '{"password": "p"}'
    assert Redactor().text("bad \udcff surrogate") == "bad \ufffd surrogate"
