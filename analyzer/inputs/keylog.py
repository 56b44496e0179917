"""NSS key log files (SSLKEYLOGFILE): the secrets that let us decrypt TLS.

Format (one secret per line, as written by NSS, BoringSSL, OpenSSL's keylog callback,
Node's ``--tls-keylog`` and Python's ``SSLContext.keylog_filename``)::

    # comment
    CLIENT_RANDOM <64 hex: ClientHello.random> <96 hex: TLS 1.2 master secret>
    CLIENT_HANDSHAKE_TRAFFIC_SECRET <64 hex> <64 or 96 hex>      (TLS 1.3)
    SERVER_HANDSHAKE_TRAFFIC_SECRET <64 hex> <64 or 96 hex>
    CLIENT_TRAFFIC_SECRET_0 <64 hex> <64 or 96 hex>
    SERVER_TRAFFIC_SECRET_0 <64 hex> <64 or 96 hex>

The same text is what a pcapng Decryption Secrets Block of type TLSK carries
(``editcap --inject-secrets tls,keys.txt``). Lines we cannot use are kept as
``(line_no, problem)`` in ``KeyLog.problems`` and the rest is used; a file with no usable
line at all raises ``KeyLogError``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from analyzer.errors import KeyLogError

# Labels whose secrets we use, with the secret lengths (bytes) they may carry.
TLS12_LABEL = "CLIENT_RANDOM"
TLS13_LABELS = (
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
)
_SECRET_LENGTHS: dict[str, tuple[int, ...]] = {TLS12_LABEL: (48,)}
_SECRET_LENGTHS.update({label: (32, 48) for label in TLS13_LABELS})
_SECRET_LENGTHS["CLIENT_EARLY_TRAFFIC_SECRET"] = (32, 48)  # 0-RTT data (RFC 8446 2.3)
# Well-formed labels that decryption of application data does not need: not a problem.
_UNUSED_LABELS = frozenset({"RSA", "EXPORTER_SECRET", "EARLY_EXPORTER_SECRET"})
_HEX = frozenset("0123456789abcdefABCDEF")


def _hex(text: str) -> bytes | None:
    if len(text) % 2 or not text or not set(text) <= _HEX:
        return None
    return bytes.fromhex(text)


@dataclass(frozen=True, slots=True)
class KeyLog:
    """Secrets by client random (32 bytes) and label, plus the lines that could not be used."""

    secrets: Mapping[bytes, Mapping[str, bytes]]
    problems: tuple[tuple[int, str], ...] = ()
    sources: tuple[str, ...] = ()
    usable_lines: int = 0  # lines whose secret is kept

    def __len__(self) -> int:
        """How many client randoms (TLS sessions) the log holds secrets for."""
        return len(self.secrets)

    def __contains__(self, client_random: object) -> bool:
        return client_random in self.secrets

    def get(self, client_random: bytes) -> Mapping[str, bytes] | None:
        """The secrets logged for one ClientHello.random, by label; None when absent."""
        return self.secrets.get(client_random)

    @classmethod
    def from_file(cls, path: str | Path) -> KeyLog:
        """Read a key log file. Raises KeyLogError when unreadable or with no usable line."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise KeyLogError(f"cannot read the TLS key log: {exc.strerror or exc}", path) from exc
        return cls.from_bytes(data, source=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "pcapng Decryption Secrets Block") -> KeyLog:
        """Parse key log text (a file's bytes or a DSB TLSK payload).

        Raises KeyLogError, naming ``source``, when no line is usable.
        """
        secrets: dict[bytes, dict[str, bytes]] = {}
        problems: list[tuple[int, str]] = []
        usable = 0
        text = data.decode("utf-8", errors="replace")
        if text.startswith("\ufeff"):
            text = text[1:]
        for line_no, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip().rstrip("\x00")
            if not line or line.startswith("#"):
                continue
            problem = _parse_line(line, secrets)
            if problem is None:
                usable += 1
            elif problem:
                problems.append((line_no, problem))
        if usable == 0:
            if problems:
                line_no, first = problems[0]
                why = f"line {line_no}: {first}"
            else:
                why = "it is empty"
            raise KeyLogError(
                "no usable TLS key log line (expected NSS key log lines such as "
                f"'CLIENT_RANDOM <64 hex> <96 hex>'); {why}",
                source,
            )
        frozen = {cr: MappingProxyType(labels) for cr, labels in secrets.items()}
        return cls(MappingProxyType(frozen), tuple(problems), (source,), usable)

    def merged(self, other: KeyLog) -> KeyLog:
        """Both logs' secrets; on a conflict the secret from ``self`` is kept and reported."""
        secrets: dict[bytes, dict[str, bytes]] = {cr: dict(v) for cr, v in self.secrets.items()}
        problems = [(n, _named(self, p)) for n, p in self.problems]
        problems += [(n, _named(other, p)) for n, p in other.problems]
        for cr, labels in other.secrets.items():
            mine = secrets.setdefault(cr, {})
            for label, secret in labels.items():
                if label not in mine:
                    mine[label] = secret
                elif mine[label] != secret:
                    problems.append(
                        (
                            0,
                            f"{other.sources[0]}: {label} for client random {cr.hex()} differs "
                            f"from {self.sources[0]}'s; keeping the first",
                        )
                    )
        frozen = {cr: MappingProxyType(labels) for cr, labels in secrets.items()}
        return KeyLog(
            MappingProxyType(frozen),
            tuple(problems),
            self.sources + other.sources,
            self.usable_lines + other.usable_lines,
        )


def _named(log: KeyLog, problem: str) -> str:
    if len(log.sources) == 1 and not problem.startswith(log.sources[0]):
        return f"{log.sources[0]}: {problem}"
    return problem


def _parse_line(line: str, secrets: dict[bytes, dict[str, bytes]]) -> str | None:
    """Store one line's secret. Returns None when used, "" when ignorable, else the problem."""
    fields = line.split()
    if len(fields) != 3:
        return f"expected 'LABEL CLIENT_RANDOM SECRET', found {len(fields)} fields"
    label, cr_hex, secret_hex = fields
    if label in _UNUSED_LABELS:
        return ""
    lengths = _SECRET_LENGTHS.get(label)
    if lengths is None:
        return f"unknown label {label[:40]!r}"
    client_random = _hex(cr_hex)
    if client_random is None or len(client_random) != 32:
        return f"client random must be 64 hex digits, found {cr_hex[:80]!r}"
    secret = _hex(secret_hex)
    if secret is None or len(secret) not in lengths:
        want = " or ".join(str(2 * n) for n in lengths)
        return f"{label} secret must be {want} hex digits, found {len(secret_hex)} characters"
    labels = secrets.setdefault(client_random, {})
    known = labels.get(label)
    if known is not None and known != secret:
        return f"a second, different {label} for client random {cr_hex}; keeping the first"
    labels[label] = secret
    return None


def gather_keylog(
    path: str | Path | None = None,
    dsb_payloads: Sequence[bytes] = (),
    environ: Mapping[str, str] | None = None,
) -> KeyLog | None:
    """The key log for one capture: ``--keylog PATH``, else ``$SSLKEYLOGFILE`` when set and
    the file exists, merged with the capture's own DSB TLSK payloads. None when none.

    Raises KeyLogError for a given path that cannot be used, or for unusable DSB text.
    A ``SSLKEYLOGFILE`` naming a file that does not exist is ignored (browsers leave it
    set in the environment long after the file is gone).
    """
    logs: list[KeyLog] = []
    if path is None:
        env = os.environ if environ is None else environ
        candidate = env.get("SSLKEYLOGFILE")
        if candidate and Path(candidate).is_file():
            path = candidate
    if path is not None:
        logs.append(KeyLog.from_file(path))
    for n, payload in enumerate(dsb_payloads, start=1):
        source = "pcapng Decryption Secrets Block"
        logs.append(
            KeyLog.from_bytes(payload, source if len(dsb_payloads) == 1 else f"{source} {n}")
        )
    if not logs:
        return None
    merged = logs[0]
    for log in logs[1:]:
        merged = merged.merged(log)
    return merged
