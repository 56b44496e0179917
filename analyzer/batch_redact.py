"""Redaction for the batch summary tables and index.

ADAPTER: the renderers own redaction (``analyzer.render.redact``). Until that module
exists, this file carries a small fallback with the same intent, so that the summary never
holds what the reports would hide. When ``analyzer.render.redact`` provides
``redact_url`` and ``redact_text``, those are used instead (see ``_upstream``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

MASK = "[REDACTED]"

# Query parameters whose value is a credential by name (lower case, substring match).
SECRET_PARAM_WORDS = (
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "auth",
    "session",
    "sig",
    "signature",
    "jwt",
    "credential",
    "code",
    "ticket",
)
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")

UrlRedactor = Callable[[str, Sequence[str]], str]
TextRedactor = Callable[[str], str]


def _secret_param(name: str, extra: Sequence[str]) -> bool:
    lname = name.lower()
    if lname in (e.lower() for e in extra):
        return True
    return any(word in lname for word in SECRET_PARAM_WORDS)


def _fallback_url(url: str, extra: Sequence[str] = ()) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return _fallback_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{quote(k, safe='')}={MASK if _secret_param(k, extra) else quote(v, safe='')}"
            for k, v in pairs
        )
    out = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return _fallback_text(out)


def _fallback_text(text: str) -> str:
    text = JWT_RE.sub(MASK, text)
    return BEARER_RE.sub(lambda m: f"{m.group(1)} {MASK}", text)


@functools.cache
def _upstream() -> tuple[UrlRedactor, TextRedactor] | None:
    try:
        from analyzer.render import redact as upstream
    except ImportError:
        return None
    url_fn = getattr(upstream, "redact_url", None)
    text_fn = getattr(upstream, "redact_text", None)
    if not callable(url_fn) or not callable(text_fn):
        return None
    return url_fn, text_fn


def redact_url(url: str, extra_params: Sequence[str] = ()) -> str:
    up = _upstream()
    if up is not None:
        return up[0](url, extra_params)
    return _fallback_url(url, extra_params)


def redact_text(text: str) -> str:
    up = _upstream()
    if up is not None:
        return up[1](text)
    return _fallback_text(text)
