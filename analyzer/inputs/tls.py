"""TLS decryption for wss:// captures: one ``TlsFlow`` per TCP flow, sans-I/O.

Theory of operation
-------------------
The capture path hands each direction's in-order TCP bytes to ``TlsFlow.data`` (and holes
to ``gap``). Per direction we frame TLS records (RFC 8446 5.1: type, version, 16-bit
length) across chunks, and read the cleartext handshake: the ClientHello (client random,
SNI, ALPN offered, versions) and the ServerHello (server random, cipher suite, the selected
version from ``supported_versions``). With the client random we look up the NSS key log:

- TLS 1.2 (RFC 5246 6.3): ``key_block = PRF(master_secret, "key expansion",
  server_random + client_random)`` split into client/server write keys and IVs. A
  direction is encrypted from the record after its ChangeCipherSpec. AES-GCM (RFC 5288)
  carries an 8-byte explicit nonce per record; ChaCha20-Poly1305 (RFC 7905) XORs the
  sequence number into a 12-byte IV. The AAD is seq_num + type + version + length.
- TLS 1.3 (RFC 8446 7.3): key and IV come from HKDF-Expand-Label over the
  ``*_HANDSHAKE_TRAFFIC_SECRET`` (for the encrypted handshake, right after ServerHello)
  and, once that side's Finished is decrypted, over ``*_TRAFFIC_SECRET_0``. A KeyUpdate
  moves that side to the next secret ("traffic upd"). The AAD is the record header; the
  inner plaintext ends with the real content type, then zero padding.

Every record consumes one sequence number, whether it authenticates or not, so a
corrupted record is reported (``tls.decrypt_failed``) and the next one still decrypts.
Application data comes back from ``data`` as ``(from_orig, plaintext, packet, time)``
with the packet that completed the record. A hole in the TCP bytes loses the record
framing: once that direction's keys have worked, decryption resumes at the next record that
authenticates (an application data header is searched for, and the sequence numbers the
lost bytes could have used are tried); the lost plaintext is never invented (``tls.gap``
says how many records were lost). Before the keys have worked, that direction stops.

The AEADs are ``cryptography``'s (OpenSSL): chosen over scapy's TLS layer on measurement,
see ``benchmarks/bench_tls.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from analyzer.inputs.keylog import KeyLog, gather_keylog
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.vocabulary import Anomaly, Location, Side, TlsInfo

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

__all__ = [
    "KEYLOG_ADVICE",
    "ByteSink",
    "DecryptingSink",
    "KeyLog",
    "TlsFlow",
    "describe_key_coverage",
    "gather_keylog",
    "looks_like_tls",
]

CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA, HEARTBEAT = 20, 21, 22, 23, 24
CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS, FINISHED, KEY_UPDATE = 1, 2, 8, 20, 24
_WANTED_HANDSHAKE = frozenset(
    {CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS, FINISHED, KEY_UPDATE}
)
EXT_SNI, EXT_ALPN, EXT_EARLY_DATA, EXT_SUPPORTED_VERSIONS = 0, 16, 42, 43

# RFC 8446 5.2: "The length MUST NOT exceed 2^14 + 256 bytes" (TLSCiphertext); RFC 5246
# 6.2.3 allows 2^14 + 2048 for TLS 1.2. Anything longer is not a TLS record.
MAX_RECORD = 2**14 + 2048
# A ClientHello with post-quantum key shares is a few KB; we buffer only the handshake
# messages we read (the rest, certificates included, is skipped without buffering).
MAX_HANDSHAKE_MESSAGE = 256 * 1024
# After this many records in a row fail to authenticate, a direction is given up.
MAX_CONSECUTIVE_FAILURES = 8
# TLS 1.3 with only the application secrets: encrypted handshake records passed over before
# the first application record authenticates (a server flight is a handful of records).
MAX_PROBED_RECORDS = 32
# After a gap: sequence numbers tried on a candidate record (each trial is one AEAD open),
# the smallest protected record (5-byte header + 16-byte tag + 1 content type byte in 1.3),
# and how far we search before giving up on that direction.
MAX_RESYNC_TRIALS = 4096
MIN_RECORD = 21
MAX_RESYNC_BYTES = 1024 * 1024
# RFC 8446 4.1.3: a HelloRetryRequest is a ServerHello with this random.
HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()

VERSIONS = {
    0x0300: "SSL 3.0",
    0x0301: "TLS 1.0",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
}

KEYLOG_ADVICE = (
    "record a key log with SSLKEYLOGFILE=keys.txt (browsers, curl), node --tls-keylog=keys.txt, "
    "or Python's SSLContext.keylog_filename, then pass --keylog keys.txt "
    "(or embed it: editcap --inject-secrets tls,keys.txt in.pcap out.pcapng)"
)


@dataclass(frozen=True, slots=True)
class Suite:
    code: int
    name: str
    aead: str  # "aes-gcm" or "chacha20-poly1305"
    key_length: int
    hash: str  # PRF (1.2) or HKDF (1.3) hash: "sha256" or "sha384"
    tls13: bool


SUITES: dict[int, Suite] = {
    s.code: s
    for s in (
        Suite(0x1301, "TLS_AES_128_GCM_SHA256", "aes-gcm", 16, "sha256", True),
        Suite(0x1302, "TLS_AES_256_GCM_SHA384", "aes-gcm", 32, "sha384", True),
        Suite(0x1303, "TLS_CHACHA20_POLY1305_SHA256", "chacha20-poly1305", 32, "sha256", True),
        Suite(0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256", "aes-gcm", 16, "sha256", False),
        Suite(0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384", "aes-gcm", 32, "sha384", False),
        Suite(0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "aes-gcm", 16, "sha256", False),
        Suite(0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "aes-gcm", 32, "sha384", False),
        Suite(0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "aes-gcm", 16, "sha256", False),
        Suite(0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "aes-gcm", 32, "sha384", False),
        Suite(0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "aes-gcm", 16, "sha256", False),
        Suite(0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "aes-gcm", 32, "sha384", False),
        Suite(
            0xCCA8,
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "chacha20-poly1305",
            32,
            "sha256",
            False,
        ),
        Suite(
            0xCCA9,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "chacha20-poly1305",
            32,
            "sha256",
            False,
        ),
        Suite(
            0xCCAA,
            "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "chacha20-poly1305",
            32,
            "sha256",
            False,
        ),
    )
}
# Names of common suites we cannot decrypt, so that the report can name them.
_OTHER_SUITE_NAMES = {
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
}
_ALERTS = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    116: "certificate_required",
    120: "no_application_protocol",
}


def suite_name(code: int) -> str:
    suite = SUITES.get(code)
    if suite is not None:
        return suite.name
    return _OTHER_SUITE_NAMES.get(code, f"0x{code:04X}")


def looks_like_tls(first_bytes: bytes) -> bool:
    """Whether a flow's first bytes (either direction) are a TLS record header.

    A handshake record (a flow seen from its start) or any record type when the capture
    starts mid-connection: content type 20..24, version 3.x, plausible length.
    """
    if len(first_bytes) < 3:
        return False
    if not (CHANGE_CIPHER_SPEC <= first_bytes[0] <= HEARTBEAT) or first_bytes[1] != 3:
        return False
    if first_bytes[2] > 4:
        return False
    if len(first_bytes) >= 5:
        length = (first_bytes[3] << 8) | first_bytes[4]
        if length == 0 or length > MAX_RECORD:
            return False
        if first_bytes[0] == HANDSHAKE and len(first_bytes) >= 6:
            return first_bytes[5] in (CLIENT_HELLO, SERVER_HELLO)
    return True


# Key derivation ----------------------------------------------------------------------------


def prf12(secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str) -> bytes:
    """RFC 5246 5: PRF(secret, label, seed) = P_<hash>(secret, label + seed)."""
    seed = label + seed
    out = b""
    a = seed
    while len(out) < length:
        a = hmac.digest(secret, a, hash_name)
        out += hmac.digest(secret, a + seed, hash_name)
    return out[:length]


def hkdf_expand_label(
    secret: bytes, label: bytes, context: bytes, length: int, hash_name: str
) -> bytes:
    """RFC 8446 7.1: HKDF-Expand(secret, HkdfLabel, length), label prefixed "tls13 "."""
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + bytes([len(context)]) + context
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(secret, block + info + bytes([counter]), hash_name)
        out += block
        counter += 1
    return out[:length]


_INVALID_TAG: tuple[type[Exception], ...] = ()  # (cryptography's InvalidTag,) once loaded


# One piece of a direction's output: plaintext, or the length of plaintext lost to a record
# that failed authentication; with the packet completing the record, and its time.
Piece = tuple[bool, bytes | int, int, float]


class _Cipher:
    """One direction's record protection: AEAD, IV, and the record sequence number."""

    __slots__ = ("aead", "iv", "seq", "tls13", "explicit_nonce", "secret", "suite")

    def __init__(self, suite: Suite, key: bytes, iv: bytes, secret: bytes | None = None) -> None:
        # Imported on first use: cryptography's OpenSSL bindings cost ~8 MB and ~80 ms to
        # load, which captures without keys (and the cleartext majority) never need.
        global _INVALID_TAG
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

        if not _INVALID_TAG:
            from cryptography.exceptions import InvalidTag

            _INVALID_TAG = (InvalidTag,)
        self.aead: AESGCM | ChaCha20Poly1305 = (
            AESGCM(key) if suite.aead == "aes-gcm" else ChaCha20Poly1305(key)
        )
        self.iv = iv
        self.seq = 0
        self.tls13 = suite.tls13
        # TLS 1.2 AES-GCM: 4-byte salt from the key block + 8-byte nonce in each record.
        self.explicit_nonce = not suite.tls13 and suite.aead == "aes-gcm"
        self.secret = secret  # TLS 1.3 traffic secret, for KeyUpdate
        self.suite = suite

    @classmethod
    def tls13_from_secret(cls, suite: Suite, secret: bytes) -> _Cipher:
        key = hkdf_expand_label(secret, b"key", b"", suite.key_length, suite.hash)
        iv = hkdf_expand_label(secret, b"iv", b"", 12, suite.hash)
        return cls(suite, key, iv, secret)

    def next_generation(self) -> _Cipher:
        """RFC 8446 7.2: application_traffic_secret_N+1 after a KeyUpdate."""
        assert self.secret is not None
        size = hashlib.new(self.suite.hash).digest_size
        secret = hkdf_expand_label(self.secret, b"traffic upd", b"", size, self.suite.hash)
        return _Cipher.tls13_from_secret(self.suite, secret)

    def open(self, header: bytes, body: bytes) -> tuple[int, bytes] | None:
        """(content type, plaintext), or None when the record does not authenticate."""
        seq = self.seq
        self.seq += 1
        return self.open_at(header, body, seq)

    def open_at(self, header: bytes, body: bytes, seq: int) -> tuple[int, bytes] | None:
        """``open`` with a given sequence number, leaving ``seq`` alone."""
        try:
            if self.tls13:
                nonce = (int.from_bytes(self.iv, "big") ^ seq).to_bytes(12, "big")
                inner = self.aead.decrypt(nonce, body, header)
                inner = inner.rstrip(b"\x00")
                if not inner:
                    return None
                return inner[-1], inner[:-1]
            if self.explicit_nonce:
                if len(body) < 24:
                    return None
                nonce = self.iv + body[:8]
                body = body[8:]
            else:
                nonce = (int.from_bytes(self.iv, "big") ^ seq).to_bytes(12, "big")
            if len(body) < 16:
                return None
            aad = (
                struct.pack("!QB", seq, header[0]) + header[1:3] + struct.pack("!H", len(body) - 16)
            )
            return header[0], self.aead.decrypt(nonce, body, aad)
        except _INVALID_TAG:
            return None


# Handshake parsing -------------------------------------------------------------------------


class _Reader:
    """Bounds-checked reads over one handshake message; ValueError past the end."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise ValueError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack("!H", self.take(2))[0]
        return value

    def vector(self, length_bytes: int) -> _Reader:
        n = self.u8() if length_bytes == 1 else self.u16()
        sub = _Reader(self.data, self.pos, self.pos + n)
        if sub.end > self.end:
            raise ValueError("truncated")
        self.pos += n
        return sub

    def remaining(self) -> int:
        return self.end - self.pos

    def take_all(self) -> bytes:
        return self.take(self.remaining())


def _extensions(r: _Reader) -> dict[int, _Reader]:
    out: dict[int, _Reader] = {}
    if r.remaining() == 0:
        return out
    block = r.vector(2)
    while block.remaining():
        ext_type = block.u16()
        out.setdefault(ext_type, block.vector(2))
    return out


def _alpn_list(r: _Reader) -> tuple[str, ...]:
    names = r.vector(2)
    out = []
    while names.remaining():
        out.append(names.vector(1).take_all().decode("ascii", errors="replace"))
    return tuple(out)


class _HandshakeBuffer:
    """Handshake messages across records; only the types we read are buffered."""

    __slots__ = ("buf", "skip")

    def __init__(self) -> None:
        self.buf = b""
        self.skip = 0  # bytes of an unwanted message still to pass over

    def feed(self, data: bytes) -> tuple[list[tuple[int, bytes]], str | None]:
        """Complete wanted messages as (type, body), and a problem if one was too long."""
        out: list[tuple[int, bytes]] = []
        problem = None
        if self.skip:
            n = min(self.skip, len(data))
            self.skip -= n
            data = data[n:]
        buf = self.buf + data if self.buf else data
        pos = 0
        while len(buf) - pos >= 4:
            msg_type = buf[pos]
            length = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            if msg_type not in _WANTED_HANDSHAKE or length > MAX_HANDSHAKE_MESSAGE:
                if msg_type in _WANTED_HANDSHAKE:
                    problem = f"handshake message type {msg_type} of {length} bytes not read"
                available = len(buf) - pos - 4
                if available >= length:
                    pos += 4 + length
                    continue
                self.skip = length - available
                pos = len(buf)
                break
            if len(buf) - pos - 4 < length:
                break
            out.append((msg_type, buf[pos + 4 : pos + 4 + length]))
            pos += 4 + length
        self.buf = buf[pos:]
        return out, problem


# The flow ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Resync:
    """After a gap: where it was, and how many bytes may hide lost records."""

    gap_offset: int
    lost: int  # bytes before gap_offset that may have held lost records
    packet: int


class _Direction:
    __slots__ = (
        "from_orig",
        "pending",
        "pending_len",
        "need",
        "base",
        "cipher",
        "next_cipher",
        "handshake",
        "stopped",
        "ok",
        "failures",
        "records",
        "partial_packet",
        "encrypted",
        "probing",
        "resync",
    )

    def __init__(self, from_orig: bool) -> None:
        self.from_orig = from_orig
        self.pending: list[bytes] = []
        self.pending_len = 0
        self.need = 5  # bytes needed before the next record can be handled
        self.base = 0  # stream offset of the first pending byte
        self.cipher: _Cipher | None = None  # protection in force
        self.next_cipher: _Cipher | None = None  # 1.2: after CCS; 1.3: after Finished
        self.handshake = _HandshakeBuffer()
        self.stopped: str | None = None  # why records are no longer read
        self.ok = 0  # records that authenticated
        self.failures = 0  # consecutive failures
        self.records = 0
        self.partial_packet: int | None = None  # packet holding the pending record's start
        self.encrypted = False  # records are protected from here on (keys or not)
        self.probing = 0  # 1.3 without handshake secret: handshake records passed over
        self.resync: _Resync | None = None  # after a gap: looking for the next record


class TlsFlow:
    """TLS above one TCP flow: handshake facts, and application data when keys allow."""

    def __init__(
        self,
        keylog: KeyLog | None,
        capture: str,
        stream: int,
        limits: Limits = DEFAULT_LIMITS,
        *,
        pass_http2: bool = False,
    ) -> None:
        self.keylog = keylog
        self.capture = capture
        self.stream = stream
        self.limits = limits
        self.pass_http2 = pass_http2  # hand HTTP/2 plaintext on (False: withheld)
        self._dirs = {True: _Direction(True), False: _Direction(False)}
        self._anomalies: list[Anomaly] = []
        self._codes_seen: set[str] = set()
        self.client_is_orig: bool | None = None
        self.client_random: bytes | None = None
        self.server_random: bytes | None = None
        self.offered_versions: tuple[int, ...] = ()
        self.version: int | None = None
        self.suite: int | None = None
        self.sni: str | None = None
        self.alpn_offered: tuple[str, ...] = ()
        self.alpn_selected: str | None = None
        self.early_data_offered = False
        self.key_found: bool | None = None  # None: no handshake to look it up by
        self._problem: str | None = None
        self._sealed_records = 0  # encrypted records we could not even try to decrypt
        self._hrr = False
        self._early_cipher: _Cipher | None = None
        self._early_tried = False
        self.early_data_decrypted = False

    # Public surface ---------------------------------------------------------------------

    def data(
        self, from_orig: bool, chunk: bytes, packet: int, time: float
    ) -> list[tuple[bool, bytes, int, float]]:
        """Decrypted application data: (from_orig, plaintext, packet, time)."""
        return [
            (o, p, n, t)
            for o, p, n, t in self.pieces(from_orig, chunk, packet, time)
            if isinstance(p, bytes)
        ]

    def pieces(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> list[Piece]:
        """``data``, with the plaintext of records that failed authentication as its
        approximate length (an int), so that a parser is told of the hole."""
        d = self._dirs[from_orig]
        out: list[Piece] = []
        if d.stopped is not None:
            d.base += len(chunk)
            return out
        if d.pending:
            d.pending.append(chunk)
            d.pending_len += len(chunk)
            if d.pending_len < d.need:
                return out
            buf = b"".join(d.pending)
            d.pending = []
            d.pending_len = 0
            continued = True
        else:
            buf = bytes(chunk)
            continued = False
        pos = 0
        size = len(buf)
        if d.resync is not None:
            found = self._resync(d, buf, packet, time, out)
            if found is None:
                return out
            pos = found
        while size - pos >= 5:
            ctype = buf[pos]
            length = (buf[pos + 3] << 8) | buf[pos + 4]
            if (
                not (CHANGE_CIPHER_SPEC <= ctype <= HEARTBEAT)
                or buf[pos + 1] != 3
                or (length > MAX_RECORD)
            ):
                self._stop(
                    d,
                    "tls.bad_record",
                    f"not a TLS record header at offset {d.base + pos}: "
                    f"{buf[pos : pos + 5].hex()} (type {ctype}, length {length}); "
                    "this direction is not read further",
                    packet,
                    d.base + pos,
                )
                d.base += size - pos
                return out
            end = pos + 5 + length
            if end > size:
                d.need = end - pos
                break
            self._record(
                d, ctype, buf[pos : pos + 5], buf[pos + 5 : end], packet, time, d.base + pos, out
            )
            pos = end
            d.need = 5
            if d.stopped is not None:
                d.base += size - pos
                return out
        if pos < size:
            rest = buf[pos:]
            if pos > 0 or not continued:
                d.partial_packet = packet
            d.pending = [rest]
            d.pending_len = len(rest)
        d.base += pos
        return out

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
        d = self._dirs[from_orig]
        if d.stopped is None:
            if d.pending_len and d.resync is None:
                self._note(
                    "tls.truncated_record",
                    f"a TLS record of {d.need} bytes at offset {d.base} lost bytes to a "
                    f"capture gap ({d.pending_len} of them captured)",
                    d.partial_packet,
                    d,
                    d.base,
                )
            at = d.base + d.pending_len
            if d.cipher is not None and d.ok > 0:
                # Keys work: look for the next record and the sequence number it carries.
                old = d.resync
                lost = old.lost + at - old.gap_offset if old else d.pending_len
                d.resync = _Resync(at, lost, packet)
            else:
                self._stop(
                    d,
                    "tls.gap",
                    f"{length} bytes missing from the capture at offset {at}: TLS records "
                    "cannot be framed past a gap, so this direction is not decrypted further",
                    packet,
                    at,
                )
        d.base += d.pending_len + length
        d.pending = []
        d.pending_len = 0

    @property
    def finished(self) -> bool:
        """Nothing more can come of feeding this flow: both directions stopped, the keys are
        missing or unusable, or it is HTTP/2 (and its plaintext is withheld)."""
        if all(d.stopped is not None for d in self._dirs.values()):
            return True
        if self.http2 and not self.pass_http2:
            return True
        return self.server_random is not None and self._problem is not None and not self.decrypted

    @property
    def http2(self) -> bool:
        """ALPN selected h2: HTTP/2, where WebSocket (RFC 8441) is not analysed yet."""
        return self.alpn_selected == "h2"

    @property
    def decrypted(self) -> bool:
        return self.early_data_decrypted or any(d.ok for d in self._dirs.values())

    @property
    def info(self) -> TlsInfo:
        return TlsInfo(
            version=VERSIONS.get(self.version) if self.version is not None else None,
            sni=self.sni,
            alpn=self.alpn_offered,
            alpn_selected=self.alpn_selected,
            cipher_suite=suite_name(self.suite) if self.suite is not None else None,
            decrypted=self.decrypted,
            problem=self.problem,
        )

    @property
    def problem(self) -> str | None:
        """Why the connection was not decrypted (None when it was, or nothing was encrypted)."""
        if self.decrypted:
            return None
        if self._problem is not None:
            return self._problem
        if self.client_random is None and self.server_random is None:
            if self._sealed_records or any(d.records for d in self._dirs.values()):
                return (
                    "the TLS handshake is not in the capture (it started mid-connection): "
                    "without the client random the key cannot be looked up; capture from "
                    "before the connection opens"
                )
            return None
        if self.server_random is None:
            return "the TLS handshake is incomplete (no ServerHello in the capture)"
        return None

    @property
    def anomalies(self) -> tuple[Anomaly, ...]:
        """Anomalies so far; read after the last ``data``/``gap`` call, a record still
        incomplete then is reported as truncated by the end of the capture."""
        extra = []
        for d in self._dirs.values():
            if d.stopped is None and d.pending_len:
                extra.append(
                    Anomaly(
                        "tls.truncated_record",
                        f"the capture ends inside a TLS record: {d.pending_len} of its "
                        f"{d.need} bytes were captured",
                        self._location(d, d.partial_packet, d.base),
                    )
                )
        return tuple(self._anomalies) + tuple(extra)

    # Records ----------------------------------------------------------------------------

    def _resync(
        self,
        d: _Direction,
        buf: bytes,
        packet: int,
        time: float,
        out: list[Piece],
    ) -> int | None:
        """After a gap: find the next record that authenticates, and its sequence number.

        A candidate is an application data header (23, 3, 3, plausible length); records
        lost in the gap consumed sequence numbers, so the next few are tried, as many as
        the lost bytes could have held (at most ``MAX_RESYNC_TRIALS``). Returns where
        normal parsing resumes in ``buf``, or None while still searching (``buf`` kept).
        """
        cipher, r = d.cipher, d.resync
        assert cipher is not None and r is not None
        pos = 0
        size = len(buf)
        while True:
            i = buf.find(b"\x17\x03\x03", pos)
            if i < 0 or size - i < 5:
                keep = i if i >= 0 else max(size - 2, pos)
                d.need = 1  # search again as soon as more bytes come
                break
            length = (buf[i + 3] << 8) | buf[i + 4]
            if not 17 <= length <= MAX_RECORD:
                pos = i + 1
                continue
            if size - i < 5 + length:
                keep = i
                d.need = 5 + length
                break
            header, body = buf[i : i + 5], buf[i + 5 : i + 5 + length]
            skipped = r.lost + d.base + i - r.gap_offset
            trials = min(MAX_RESYNC_TRIALS, skipped // MIN_RECORD + 2)
            for seq in range(cipher.seq, cipher.seq + trials):
                opened = cipher.open_at(header, body, seq)
                if opened is None:
                    continue
                self._note(
                    "tls.gap",
                    f"bytes missing from the capture at offset {r.gap_offset}: "
                    f"{seq - cipher.seq} TLS records lost; decryption resumed at offset "
                    f"{d.base + i}",
                    r.packet,
                    d,
                    r.gap_offset,
                )
                lost = self._lost_plaintext(d, d.base + i, seq - cipher.seq)
                if lost and (self.pass_http2 or not self.http2):
                    out.append((d.from_orig, lost, r.packet, time))
                cipher.seq = seq + 1
                d.resync = None
                d.ok += 1
                self._deliver(d, opened, packet, time, d.base + i, out)
                d.need = 5
                return i + 5 + length
            pos = i + 1
        # Still searching: keep what may hold the next header, drop what cannot.
        d.base += keep
        rest = buf[keep:]
        if d.base - r.gap_offset > MAX_RESYNC_BYTES:
            self._stop(
                d,
                "tls.gap",
                f"bytes missing from the capture at offset {r.gap_offset}: no record "
                f"authenticated in the next {MAX_RESYNC_BYTES} bytes, so this direction is "
                "not decrypted further",
                r.packet,
                r.gap_offset,
            )
            d.base += len(rest)
            if self.pass_http2 or not self.http2:
                out.append((d.from_orig, max(1, self._lost_plaintext(d, d.base, 0)), packet, time))
            d.resync = None
            return None
        d.pending = [rest] if rest else []
        d.pending_len = len(rest)
        d.partial_packet = packet
        if not rest:
            d.need = 5
        return None

    def _lost_plaintext(self, d: _Direction, upto: int, records: int) -> int:
        """Application bytes lost between the end of the last record read before a gap and
        stream offset ``upto``, when ``records`` records were there: their length less each
        one's header and AEAD overhead (exact unless TLS 1.3 padding or non-data records)."""
        r, cipher = d.resync, d.cipher
        assert r is not None and cipher is not None
        per_record = 5 + 16 + (1 if cipher.tls13 else 8 if cipher.explicit_nonce else 0)
        return max(0, upto - (r.gap_offset - r.lost) - records * per_record)

    def resyncing(self, from_orig: bool) -> bool:
        """Whether that direction is looking for its next record after a gap: the plaintext
        lost is then reported by ``pieces`` once found (or ``unfinished_gaps``)."""
        return self._dirs[from_orig].resync is not None

    def unfinished_gaps(self) -> list[Piece]:
        """At the end of the flow: the plaintext lost by directions still looking for their
        next record after a gap (the capture ended first), as lengths."""
        out: list[Piece] = []
        for d in self._dirs.values():
            r = d.resync
            if r is not None and d.stopped is None:
                lost = max(1, self._lost_plaintext(d, d.base + d.pending_len, 0))
                out.append((d.from_orig, lost, r.packet, 0.0))
                d.resync = None
        return out

    def _record(
        self,
        d: _Direction,
        ctype: int,
        header: bytes,
        body: bytes,
        packet: int,
        time: float,
        offset: int,
        out: list[Piece],
    ) -> None:
        d.records += 1
        tls13 = self.version == 0x0304
        if ctype == CHANGE_CIPHER_SPEC and (tls13 or d.cipher is None):
            # RFC 8446 D.4: a TLS 1.3 CCS is a compatibility no-op; in 1.2 it switches keys.
            if not tls13 and self.server_random is not None:
                d.cipher, d.next_cipher = d.next_cipher, None
                d.encrypted = True
            return
        if d.cipher is None:
            if ctype == APPLICATION_DATA and self.early_data_offered:
                early = self._open_early(d, header, body, packet, offset)
                if early is not None:
                    self._deliver(d, early, packet, time, offset, out)
                    return
            if d.encrypted or ctype == APPLICATION_DATA:
                self._sealed_records += 1
            elif ctype == HANDSHAKE:
                self._handshake(d, body, packet, offset)
            elif ctype == ALERT:
                self._alert(d, body, packet, offset)
            return
        opened = d.cipher.open(header, body)
        if opened is None and d.ok == 0 and self.early_data_offered:
            early = self._open_early(d, header, body, packet, offset)
            if early is not None:
                d.cipher.seq -= 1  # the record was not under this key
                self._deliver(d, early, packet, time, offset, out)
                return
        if opened is None and tls13 and d.ok == 0:
            if d.probing and d.probing < MAX_PROBED_RECORDS:
                # No handshake secret: these are the encrypted handshake records, passed over
                # until the first one the application secret authenticates.
                d.probing += 1
                d.cipher.seq = 0
                self._sealed_records += 1
                return
            if d.next_cipher is not None:
                # A Finished we did not see: try the application secret before giving up.
                trial = d.next_cipher
                opened = trial.open(header, body)
                if opened is not None:
                    d.cipher, d.next_cipher = trial, None
                else:
                    trial.seq = 0
        if opened is None:
            self._failed(d, packet, offset, len(body))
            if d.ok and (self.pass_http2 or not self.http2):
                # The plaintext is lost: as long as the body less the AEAD tag, and the
                # explicit nonce (1.2 GCM) or the content type byte (1.3, padding unknown).
                cipher = d.cipher
                overhead = 16 + (1 if cipher.tls13 else 8 if cipher.explicit_nonce else 0)
                out.append((d.from_orig, max(1, len(body) - overhead), packet, time))
            return
        d.ok += 1
        d.failures = 0
        self._deliver(d, opened, packet, time, offset, out)

    def _deliver(
        self,
        d: _Direction,
        opened: tuple[int, bytes],
        packet: int,
        time: float,
        offset: int,
        out: list[Piece],
    ) -> None:
        inner_type, plaintext = opened
        if inner_type == APPLICATION_DATA:
            if plaintext and (self.pass_http2 or not self.http2):
                out.append((d.from_orig, plaintext, packet, time))
        elif inner_type == HANDSHAKE:
            self._handshake(d, plaintext, packet, offset)
        elif inner_type == ALERT:
            self._alert(d, plaintext, packet, offset)

    def _open_early(
        self, d: _Direction, header: bytes, body: bytes, packet: int, offset: int
    ) -> tuple[int, bytes] | None:
        """RFC 8446 2.3: 0-RTT data, under CLIENT_EARLY_TRAFFIC_SECRET, before the client's
        handshake records. Its suite is the resumed session's, not yet known: the ones whose
        hash fits the secret's length are tried on the first early record."""
        if self._side(d) != "client" or self.early_data_offered is False:
            return None
        if self._early_cipher is None:
            cr = self.client_random
            secrets = self.keylog.get(cr) if self.keylog and cr else None
            secret = secrets.get("CLIENT_EARLY_TRAFFIC_SECRET") if secrets else None
            if secret is not None and not self._early_tried:
                for suite in SUITES.values():
                    if suite.tls13 and hashlib.new(suite.hash).digest_size == len(secret):
                        trial = _Cipher.tls13_from_secret(suite, secret)
                        opened = trial.open(header, body)
                        if opened is not None:
                            self._early_cipher = trial
                            self.early_data_decrypted = True
                            return opened
            self._early_tried = True
            self._note(
                "tls.early_data",
                "the client sent 0-RTT early data that is not decrypted"
                + ("" if secret else " (no CLIENT_EARLY_TRAFFIC_SECRET in the key log)"),
                packet,
                d,
                offset,
                once=True,
            )
            return None
        opened = self._early_cipher.open(header, body)
        if opened is None:
            self._early_cipher.seq -= 1  # not an early record: the key is kept for none
        return opened

    def _failed(self, d: _Direction, packet: int, offset: int, length: int) -> None:
        side = self._side(d) or ("orig" if d.from_orig else "resp")
        if d.ok == 0:
            if self._side(d) == "client" and self.early_data_offered and not d.probing:
                # 0-RTT records the early secret did not open: skipped, not a mismatch.
                self._note(
                    "tls.early_data",
                    "the client sent 0-RTT early data that is not decrypted",
                    packet,
                    d,
                    offset,
                    once=True,
                )
                return
            cr = self.client_random.hex() if self.client_random else "?"
            self._problem = (
                f"key log does not match: the secrets logged for client random {cr} do not "
                f"authenticate this connection's records (first record from the {side})"
            )
            self._stop(d, "tls.key_mismatch", self._problem, packet, offset)
            return
        d.failures += 1
        self._note(
            "tls.decrypt_failed",
            f"a {length}-byte TLS record from the {side} failed authentication "
            "(corrupted or altered in the capture); its bytes are skipped",
            packet,
            d,
            offset,
        )
        if d.failures >= MAX_CONSECUTIVE_FAILURES:
            self._stop(
                d,
                "tls.decrypt_failed",
                f"{d.failures} records in a row failed authentication: this direction is "
                "not decrypted further",
                packet,
                offset,
            )

    def _alert(self, d: _Direction, body: bytes, packet: int, offset: int) -> None:
        if len(body) != 2:
            return
        level, desc = body[0], body[1]
        if desc == 0 or (level == 1 and desc == 90):
            return  # close_notify / user_canceled warning: an orderly end
        name = _ALERTS.get(desc, f"alert {desc}")
        kind = "fatal" if level == 2 else "warning"
        side = self._side(d) or "peer"
        self._note(
            "tls.alert", f"{kind} TLS alert {name} ({desc}) from the {side}", packet, d, offset
        )

    # Handshake --------------------------------------------------------------------------

    def _handshake(self, d: _Direction, data: bytes, packet: int, offset: int) -> None:
        messages, problem = d.handshake.feed(data)
        if problem:
            self._note("tls.bad_handshake", problem, packet, d, offset)
        for msg_type, body in messages:
            try:
                if msg_type == CLIENT_HELLO:
                    self._client_hello(d, body)
                elif msg_type == SERVER_HELLO:
                    self._server_hello(d, body, packet, offset)
                elif msg_type == ENCRYPTED_EXTENSIONS:
                    self._encrypted_extensions(body, packet, d, offset)
                elif msg_type == FINISHED and self.version == 0x0304:
                    # RFC 8446 7.2: after Finished the sender uses its application secret.
                    if d.next_cipher is not None:
                        d.cipher, d.next_cipher = d.next_cipher, None
                elif msg_type == KEY_UPDATE and d.cipher is not None and d.cipher.secret:
                    d.cipher = d.cipher.next_generation()
            except (ValueError, IndexError, struct.error) as exc:
                self._note(
                    "tls.bad_handshake",
                    f"handshake message type {msg_type} ({len(body)} bytes) is malformed: {exc}",
                    packet,
                    d,
                    offset,
                )

    def _client_hello(self, d: _Direction, body: bytes) -> None:
        r = _Reader(body)
        r.take(2)
        client_random = r.take(32)
        # After a HelloRetryRequest the second ClientHello carries the same random.
        self.client_random = client_random
        self.client_is_orig = d.from_orig
        r.vector(1)  # session id
        r.vector(2)  # cipher suites
        r.vector(1)  # compression methods
        exts = _extensions(r)
        if EXT_SNI in exts:
            names = exts[EXT_SNI].vector(2)
            while names.remaining():
                kind = names.u8()
                name = names.vector(2).take_all()
                if kind == 0:
                    self.sni = name.decode("ascii", errors="replace")
                    break
        if EXT_ALPN in exts:
            self.alpn_offered = _alpn_list(exts[EXT_ALPN])
        if EXT_SUPPORTED_VERSIONS in exts:
            vs = exts[EXT_SUPPORTED_VERSIONS].vector(1)
            versions = []
            while vs.remaining() >= 2:
                versions.append(vs.u16())
            self.offered_versions = tuple(versions)
        self.early_data_offered = EXT_EARLY_DATA in exts

    def _server_hello(self, d: _Direction, body: bytes, packet: int, offset: int) -> None:
        r = _Reader(body)
        legacy_version = r.u16()
        server_random = r.take(32)
        r.vector(1)
        suite = r.u16()
        r.u8()
        exts = _extensions(r)
        version = legacy_version
        if EXT_SUPPORTED_VERSIONS in exts:
            version = exts[EXT_SUPPORTED_VERSIONS].u16()
        if self.client_is_orig is None:
            self.client_is_orig = not d.from_orig
        self.version = version
        self.suite = suite
        if server_random == HRR_RANDOM:
            self._hrr = True  # a second ClientHello and the real ServerHello follow
            return
        self.server_random = server_random
        if EXT_ALPN in exts:
            names = _alpn_list(exts[EXT_ALPN])
            self._select_alpn(names[0] if names else None, packet, d, offset)
        self._install_keys(packet, d, offset)

    def _encrypted_extensions(self, body: bytes, packet: int, d: _Direction, offset: int) -> None:
        exts = _extensions(_Reader(body))
        if EXT_ALPN in exts:
            names = _alpn_list(exts[EXT_ALPN])
            self._select_alpn(names[0] if names else None, packet, d, offset)

    def _select_alpn(self, name: str | None, packet: int, d: _Direction, offset: int) -> None:
        self.alpn_selected = name
        if name == "h2":
            self._note(
                "tls.http2",
                "ALPN selected h2: this connection is HTTP/2; WebSocket over HTTP/2 "
                "(RFC 8441) is not analysed yet, so its data is not parsed as HTTP/1.1",
                packet,
                d,
                offset,
                once=True,
            )

    def _install_keys(self, packet: int, d: _Direction, offset: int) -> None:
        assert self.version is not None and self.suite is not None
        if self.version not in (0x0303, 0x0304):
            name = VERSIONS.get(self.version, f"0x{self.version:04X}")
            self._problem = f"{name} is not supported for decryption (TLS 1.2 and 1.3 are)"
            self._note("tls.unsupported_version", self._problem, packet, d, offset)
            return
        suite = SUITES.get(self.suite)
        if suite is not None and suite.tls13 != (self.version == 0x0304):
            self._problem = (
                f"cipher suite {suite.name} cannot be used with "
                f"{VERSIONS.get(self.version)}: the ServerHello is inconsistent"
            )
            self._note("tls.unsupported_cipher", self._problem, packet, d, offset)
            return
        if suite is None:
            self._problem = (
                f"cipher suite {suite_name(self.suite)} is not supported for decryption "
                "(AES-GCM and ChaCha20-Poly1305 suites are)"
            )
            self._note("tls.unsupported_cipher", self._problem, packet, d, offset)
            return
        if self.keylog is None:
            self._problem = f"encrypted and no TLS key log was given: {KEYLOG_ADVICE}"
            return
        if self.client_random is None:
            self._problem = (
                "the ClientHello is not in the capture: without the client random the key "
                "cannot be looked up in the key log"
            )
            self._note("tls.no_key", self._problem, packet, d, offset)
            return
        secrets = self.keylog.get(self.client_random)
        cr = self.client_random.hex()
        if secrets is None:
            self.key_found = False
            self._problem = (
                f"no key for client random {cr} in the key log "
                f"({len(self.keylog)} other TLS sessions in it)"
            )
            self._note("tls.no_key", self._problem, packet, d, offset)
            return
        client = self._dirs[bool(self.client_is_orig)]
        server = self._dirs[not self.client_is_orig]
        if not suite.tls13:
            master = secrets.get("CLIENT_RANDOM")
            if master is None:
                self.key_found = False
                self._problem = f"no CLIENT_RANDOM line (TLS 1.2 master secret) for {cr}"
                self._note("tls.no_key", self._problem, packet, d, offset)
                return
            self.key_found = True
            iv_len = 4 if suite.aead == "aes-gcm" else 12
            k = suite.key_length
            block = prf12(
                master,
                b"key expansion",
                self.server_random + self.client_random,  # type: ignore[operator]
                2 * k + 2 * iv_len,
                suite.hash,
            )
            client.next_cipher = _Cipher(suite, block[:k], block[2 * k : 2 * k + iv_len])
            server.next_cipher = _Cipher(suite, block[k : 2 * k], block[2 * k + iv_len :])
            return
        missing = [
            label
            for label in ("CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0")
            if label not in secrets
        ]
        if missing:
            self.key_found = False
            self._problem = f"the key log has no {' or '.join(missing)} for client random {cr}"
            self._note("tls.no_key", self._problem, packet, d, offset)
            return
        self.key_found = True
        for direction, prefix in ((client, "CLIENT"), (server, "SERVER")):
            direction.next_cipher = _Cipher.tls13_from_secret(
                suite, secrets[f"{prefix}_TRAFFIC_SECRET_0"]
            )
            direction.encrypted = True
            hs_secret = secrets.get(f"{prefix}_HANDSHAKE_TRAFFIC_SECRET")
            if hs_secret is not None:
                direction.cipher = _Cipher.tls13_from_secret(suite, hs_secret)
            else:
                # Without the handshake secret the encrypted handshake is unreadable; the
                # application secret is tried on each record until one authenticates.
                direction.cipher, direction.next_cipher = direction.next_cipher, None
                direction.probing = 1

    # Bookkeeping ------------------------------------------------------------------------

    def _side(self, d: _Direction) -> Side | None:
        if self.client_is_orig is None:
            return None
        return "client" if d.from_orig == self.client_is_orig else "server"

    def _location(self, d: _Direction, packet: int | None, offset: int | None) -> Location:
        return Location(self.capture, packet, self.stream, self._side(d), offset)

    def _note(
        self,
        code: str,
        detail: str,
        packet: int | None,
        d: _Direction,
        offset: int | None,
        *,
        once: bool = False,
    ) -> None:
        if once and code in self._codes_seen:
            return
        self._codes_seen.add(code)
        self._anomalies.append(Anomaly(code, detail, self._location(d, packet, offset)))

    def _stop(self, d: _Direction, code: str, detail: str, packet: int, offset: int) -> None:
        d.stopped = code
        d.pending = []
        d.pending_len = 0
        self._note(code, detail, packet, d, offset)


class ByteSink(Protocol):
    """What the capture path feeds one flow's bytes to (``analyzer.protocol.flow.FlowParser``)."""

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None: ...

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None: ...

    @property
    def interested(self) -> bool: ...


class DecryptingSink:
    """A ByteSink in front of another: TLS flows are decrypted into ``inner``, others pass.

    The flow's first bytes decide (``looks_like_tls``). For a TLS flow ``tls`` is its
    ``TlsFlow`` (``tls.info``, ``tls.anomalies`` for the Connection); ``inner`` sees only
    application plaintext, located by the packet that completed each record. Plaintext the
    parser will never see is passed on as a gap of its own length: a record that failed
    authentication, or the records lost to a TCP gap once decryption resumes at the next
    whole record (``finish`` reports a gap still open when the flow ends). A TCP gap that
    stops decryption of that direction is passed on as it is.
    """

    __slots__ = ("inner", "keylog", "capture", "stream", "limits", "tls", "_mode", "_gap_time")

    def __init__(
        self,
        inner: ByteSink,
        keylog: KeyLog | None,
        capture: str,
        stream: int,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.inner = inner
        self.keylog = keylog
        self.capture = capture
        self.stream = stream
        self.limits = limits
        self.tls: TlsFlow | None = None
        self._mode: str | None = None  # None until the first bytes, then "tls" or "plain"
        self._gap_time = 0.0

    def data(self, from_orig: bool, chunk: bytes, packet: int, time: float) -> None:
        if self._mode is None:
            if looks_like_tls(chunk[:16]):
                self._mode = "tls"
                self.tls = TlsFlow(self.keylog, self.capture, self.stream, self.limits)
            else:
                self._mode = "plain"
        if self.tls is None:
            self.inner.data(from_orig, chunk, packet, time)
            return
        for orig, piece, pkt, t in self.tls.pieces(from_orig, chunk, packet, time):
            if isinstance(piece, bytes):
                self.inner.data(orig, piece, pkt, t)
            else:  # a record that failed authentication: its plaintext is missing
                self.inner.gap(orig, piece, pkt, t)

    def gap(self, from_orig: bool, length: int, packet: int, time: float) -> None:
        tls = self.tls
        if tls is not None:
            tls.gap(from_orig, length, packet, time)
            if tls.resyncing(from_orig):
                # Decryption resumes at the next record: the plaintext lost (not the same
                # length as the ciphertext) comes from ``pieces`` then, so the parser's
                # frame boundaries stay right.
                self._gap_time = time
                return
        if self._mode is not None:
            self.inner.gap(from_orig, length, packet, time)

    def finish(self) -> None:
        """The flow is over: plaintext still owed to the parser as lost is reported."""
        if self.tls is not None:
            for orig, lost, pkt, _ in self.tls.unfinished_gaps():
                self.inner.gap(orig, int(lost), pkt, self._gap_time)

    @property
    def interested(self) -> bool:
        if self._mode is None:
            return True
        if self.tls is None:
            return self.inner.interested
        if self.tls.finished:
            return False
        # Before any plaintext the parser cannot know yet; after, it decides.
        return not self.tls.decrypted or self.inner.interested


class KeyLookupLike(Protocol):
    """What ``describe_key_coverage`` reads of a flow (a ``TlsFlow``, or a record of one)."""

    @property
    def stream(self) -> int: ...

    @property
    def key_found(self) -> bool | None: ...


def describe_key_coverage(keylog: KeyLog | None, flows: Iterable[KeyLookupLike]) -> str | None:
    """A capture-level sentence on how the key log matched the capture's TLS connections.

    None when every TLS connection with a handshake found its key (or there were none).
    """
    looked_up = [f for f in flows if f.key_found is not None]
    if keylog is None or not looked_up:
        return None
    missing = [f for f in looked_up if not f.key_found]
    if not missing:
        return None
    if len(missing) == len(looked_up):
        return (
            f"the key log matches none of the {len(looked_up)} TLS connections in this capture "
            f"(no matching client random among its {len(keylog)}): was it recorded during "
            "another session?"
        )
    streams = ", ".join(f"tcp.stream {f.stream}" for f in missing[:10])
    more = "" if len(missing) <= 10 else f" and {len(missing) - 10} more"
    return (
        f"the key log has no key for {len(missing)} of the {len(looked_up)} TLS connections "
        f"({streams}{more})"
    )
