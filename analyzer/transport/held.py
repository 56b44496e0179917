"""Bytes of one direction a transport holds before it knows what they are."""

from __future__ import annotations


class HeldBytes:
    """Bytes of one direction held, with the packet and time each piece came with.

    ``base`` is the stream offset of ``data[0]``: it moves on as bytes are consumed (or
    skipped, or lost to a gap before anything was held).
    """

    __slots__ = ("data", "pieces", "base")

    def __init__(self, base: int = 0) -> None:
        self.data = bytearray()
        self.pieces: list[tuple[bytes, int, float]] = []
        self.base = base

    def add(self, chunk: bytes, packet: int, time: float) -> None:
        self.data += chunk
        self.pieces.append((chunk, packet, time))

    def consume(self, n: int) -> None:
        if n <= 0:
            return
        del self.data[:n]
        self.base += n
        pieces = self.pieces
        while n and pieces:
            chunk, packet, time = pieces[0]
            if len(chunk) <= n:
                n -= len(chunk)
                pieces.pop(0)
            else:
                pieces[0] = (chunk[n:], packet, time)
                n = 0

    def packet_at(self, pos: int) -> tuple[int, float]:
        for chunk, packet, time in self.pieces:
            if pos < len(chunk):
                return packet, time
            pos -= len(chunk)
        return (self.pieces[-1][1], self.pieces[-1][2]) if self.pieces else (0, 0.0)

    def take(self) -> list[tuple[bytes, int, float]]:
        """The held pieces, in order; nothing is held afterwards, and ``base`` is left
        where it was: the caller skips the pieces or adds back what it keeps."""
        pieces = self.pieces
        self.data = bytearray()
        self.pieces = []
        return pieces
