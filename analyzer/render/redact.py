"""Redaction: secrets in a capture never reach a report unless the user asks.

Applied on the way out: the session model stays intact, and every renderer draws from
one redacted document (``analyzer.render.document``), so all formats hide the same
things. A ``Redactor`` counts what it hid, per kind, and never remembers a value.

What is hidden:

- the values of ``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``
  (the scheme word and cookie names stay: they help debugging and are not secret), and of
  any header the user names;
- credential-like query parameters in URLs, request targets and any text
  (``token``, ``access_token``, ``api_key``, ``key``, ``secret``, ``password``...);
- passwords in URL user-info (``wss://user:pw@host``);
- JWT-shaped strings and ``Bearer``/``Basic`` credentials anywhere;
- secret-named JSON fields in message payloads (``"password": "..."``), also in a
  preview cut short in the middle of the value;
- bearer tokens carried in ``Sec-WebSocket-Protocol`` (``authorization.bearer.<jwt>``,
  ``base64url.bearer.authorization.k8s.io.<token>``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

MASK = "[REDACTED]"

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

# Query parameter names that are credentials by themselves (compared without - and _).
SECRET_PARAM_NAMES = frozenset(
    {
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "apikey",
        "key",
        "secret",
        "clientsecret",
        "password",
        "passwd",
        "pwd",
        "auth",
        "authorization",
        "jwt",
        "session",
        "sessionid",
        "sid",
        "sig",
        "signature",
        "code",
        "ticket",
        "credential",
        "credentials",
        "xamzsignature",
        "xamzsecuritytoken",
        "xamzcredential",
    }
)
# ... and words that make any parameter name a credential ("x_auth_token", "mysecret").
SECRET_PARAM_WORDS = ("token", "secret", "password", "passwd", "apikey", "jwt", "signature")

# JSON field names in payloads (compared without - and _, lower case).
SECRET_FIELD_NAMES = frozenset(
    {
        "auth",
        "key",
        "session",
        "sessionid",
        "sid",
        "sig",
        "pwd",
        "pin",
        "otp",
        "credential",
        "credentials",
        "cookie",
        "authorization",
    }
)
SECRET_FIELD_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "jwt",
    "privatekey",
    "signature",
    "sessionid",
)

JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*")
CRED_RE = re.compile(r"(?i)\b(bearer|basic|digest|token)(\s+)([A-Za-z0-9._~+/=:-]{8,})")
# name=value after ? & or ; (URLs, targets, text that quotes them).
PARAM_RE = re.compile(r"(?<=[?&;])([^=&;#\s\"'<>?]{1,100})=([^&;#\s\"'<>]*)")
USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s:]*):([^/@\s]*)@")
JSON_FIELD_RE = re.compile(
    r'"((?:[^"\\]|\\.){1,100})"(\s*:\s*)("(?:[^"\\]|\\.)*(?:"|$)|-?\d[\d.eE+-]*|true|false)'
)
SUBPROTOCOL_BEARER_RE = re.compile(r"(?i)((?:^|[.])bearer[.](?:[a-z0-9-]+[.])*?)([^\s,.]{8,}.*)")
SURROGATE_RE = re.compile("[\ud800-\udfff]")
_CRED_WORDS_RE = re.compile(r"(?i)bearer|basic|digest|token")  # what CRED_RE needs


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(".", "")


def is_secret_param(name: str, extra: Iterable[str] = ()) -> bool:
    n = _norm(name)
    if n in SECRET_PARAM_NAMES or any(n == _norm(e) for e in extra):
        return True
    return any(word in n for word in SECRET_PARAM_WORDS)


def is_secret_field(name: str) -> bool:
    n = _norm(name)
    return n in SECRET_FIELD_NAMES or any(word in n for word in SECRET_FIELD_WORDS)


def clean(text: str) -> str:
    """Lone surrogates (from invalid UTF-8 smuggled through JSON) become U+FFFD."""
    return SURROGATE_RE.sub("\ufffd", text)


class Redactor:
    """Hides secrets in strings and counts what it hid. ``enabled=False`` only cleans."""

    def __init__(
        self,
        enabled: bool = True,
        extra_headers: Sequence[str] = (),
        extra_params: Sequence[str] = (),
    ) -> None:
        self.enabled = enabled
        self.extra_headers = frozenset(h.lower() for h in extra_headers)
        self.extra_params = tuple(extra_params)
        self.counts: Counter[str] = Counter()
        names = sorted(SECRET_HEADERS | self.extra_headers, key=len, reverse=True)
        # "Cookie: a=b" quoted in free text (an evidence label, a finding's message).
        self._quoted_header = re.compile(
            r"(?i)(?<![\w-])(" + "|".join(re.escape(n) for n in names) + r")(\s*[:=]\s*)([^\n]+)"
        )

    # -- public entry points ---------------------------------------------------------

    def text(self, value: str | None) -> str | None:
        """Any captured text: JWTs, Bearer credentials, secret query parameters."""
        if value is None:
            return None
        value = clean(value)
        if not self.enabled:
            return value
        # Each pattern runs only where its required characters occur (a cheap test that
        # skips most captured strings; the result is the same).
        if ":" in value or "=" in value:
            value = self._quoted_header.sub(self._quoted, value)
        if "@" in value:
            value = USERINFO_RE.sub(self._userinfo, value)
        if "=" in value:
            value = PARAM_RE.sub(self._param, value)
        if _CRED_WORDS_RE.search(value) is not None:
            value = CRED_RE.sub(self._cred, value)
        if "eyJ" in value:
            value = JWT_RE.sub(self._jwt, value)
        return value

    def url(self, value: str | None) -> str | None:
        """A URL or request-target."""
        return self.text(value)

    def header(self, name: str, value: str) -> str:
        """One header value, by the header's name."""
        value = clean(value)
        if not self.enabled:
            return value
        lname = name.strip().lower()
        if lname in ("authorization", "proxy-authorization"):
            self.counts["header:" + lname] += 1
            scheme, sep, rest = value.strip().partition(" ")
            return f"{scheme} {MASK}" if sep and rest else MASK
        if lname == "cookie":
            self.counts["header:cookie"] += 1
            return "; ".join(self._cookie_pair(p) for p in value.split(";") if p.strip())
        if lname == "set-cookie":
            self.counts["header:set-cookie"] += 1
            first, sep, attrs = value.partition(";")
            return self._cookie_pair(first) + (";" + attrs if sep else "")
        if lname in self.extra_headers:
            self.counts["header:" + lname] += 1
            return MASK
        if lname == "sec-websocket-protocol":
            value = ", ".join(self._subprotocol(t) for t in value.split(","))
        return self.text(value) or ""

    def payload(self, value: str) -> str:
        """A message payload shown as text: secret-named JSON fields, then ``text``."""
        value = clean(value)
        if not self.enabled:
            return value
        value = JSON_FIELD_RE.sub(self._json_field, value)
        return self.text(value) or ""

    def summary(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    # -- helpers ---------------------------------------------------------------------

    def _quoted(self, m: re.Match[str]) -> str:
        if m.group(3).strip() in (MASK, ""):
            return m.group(0)
        masked = self.header(m.group(1), m.group(3))
        return f"{m.group(1)}{m.group(2)}{masked}"

    def _cookie_pair(self, pair: str) -> str:
        name, sep, _ = pair.strip().partition("=")
        return f"{name}={MASK}" if sep else MASK

    def _subprotocol(self, token: str) -> str:
        stripped = token.strip()
        m = SUBPROTOCOL_BEARER_RE.search(stripped)
        if m is None:
            return stripped
        self.counts["subprotocol-token"] += 1
        return stripped[: m.start(2)] + MASK

    def _userinfo(self, m: re.Match[str]) -> str:
        if m.group(3) == MASK:
            return m.group(0)
        self.counts["url-password"] += 1
        return f"{m.group(1)}{m.group(2)}:{MASK}@"

    def _param(self, m: re.Match[str]) -> str:
        name, value = m.group(1), m.group(2)
        if not value or value == MASK or not is_secret_param(name, self.extra_params):
            return m.group(0)
        self.counts["query-param"] += 1
        return f"{name}={MASK}"

    def _cred(self, m: re.Match[str]) -> str:
        if m.group(3).startswith(MASK) or m.group(3).startswith("[REDACTED"):
            return m.group(0)
        self.counts["credential"] += 1
        return f"{m.group(1)}{m.group(2)}{MASK}"

    def _jwt(self, m: re.Match[str]) -> str:
        self.counts["jwt"] += 1
        return MASK

    def _json_field(self, m: re.Match[str]) -> str:
        name, sep, value = m.group(1), m.group(2), m.group(3)
        if not is_secret_field(name) or value in ("true", "false", '""', f'"{MASK}"'):
            return m.group(0)
        self.counts["json-field"] += 1
        return f'"{name}"{sep}"{MASK}"'


# Module-level helpers for callers that have no report (the batch summary tables).


def redact_url(url: str, extra_params: Sequence[str] = ()) -> str:
    return Redactor(extra_params=extra_params).url(url) or ""


def redact_text(text: str) -> str:
    return Redactor().text(text) or ""
