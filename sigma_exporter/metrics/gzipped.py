"""A gzip body made of pieces compressed once: each piece as sync-flushed raw deflate blocks, joined between a
header and a trailer whose CRC-32 is kept part by part (`Checksums`), so that a body whose first parts did not
change is checked from the first that did. Pure but for `Checksums`' memory."""

from __future__ import annotations

import itertools
import operator
import struct
import zlib
from typing import Final

GZIP_LEVEL: Final = 5
#: The head of a gzip member: deflate, no flags, mtime 0, no extra flags, OS unknown.
GZIP_HEADER: Final = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: An empty final deflate block (fixed Huffman), which ends the stream after sync-flushed pieces.
DEFLATE_END: Final = b"\x03\x00"


def deflated(data: bytes) -> bytes:
    """`data` as raw deflate blocks that refer to nothing before them and end on a byte boundary (a sync
    flush), none of them final: any sequence of such pieces, then `DEFLATE_END`, is one deflate stream. b""
    for nothing."""
    if not data:
        return b""
    zipper = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15)
    return zipper.compress(data) + zipper.flush(zlib.Z_SYNC_FLUSH)


def gzip_trailer(crc: int, length: int) -> bytes:
    """What closes a gzip member: the end of the deflate stream, the CRC-32 and size of the data."""
    return DEFLATE_END + struct.pack("<II", crc & 0xFFFFFFFF, length & 0xFFFFFFFF)


class Checksums:
    """The CRC-32 of a body made of parts, kept after each part: a body whose first parts are the very
    objects of the last one is checked from the first part that differs. One caller at a time: scrapes, on
    the web server's event loop."""

    def __init__(self) -> None:
        self._parts: tuple[bytes, ...] = ()
        self._after: list[tuple[int, int]] = []  # (CRC-32, length) of the body up to and with each part

    def of(self, parts: tuple[bytes, ...]) -> tuple[int, int]:
        """The CRC-32 and length of the join of `parts`."""
        previous = self._parts
        same = min(len(parts), len(previous))
        first = next(itertools.compress(range(same), map(operator.is_not, parts, previous)), same)
        after = self._after[:first]
        crc, length = after[-1] if after else (0, 0)
        for part in parts[first:]:
            crc, length = zlib.crc32(part, crc), length + len(part)
            after.append((crc, length))
        self._parts, self._after = parts, after
        return crc, length
