"""MCAP integrity: walk every record, check the CRCs a file carries, and write them.

An MCAP file (https://mcap.dev/spec) is ``<magic><records...><footer><magic>``; each record is
an opcode byte, a little-endian uint64 length and that many bytes. Three CRC-32 fields protect
its content, each 0 when absent:

- a Chunk's ``uncompressed_crc``: its (uncompressed) records, i.e. every message;
- the Data End record's ``data_section_crc``: every byte of the file before that record;
- the Footer's ``summary_crc``: the summary section through the footer's offset fields.

``ros2 bag record`` (the mcap C++ writer) writes chunk and summary CRCs by default; ``rosbags``
writes none, so :func:`add_crcs` fills in all three after it (the bag writer calls it).
:func:`check_mcap` checks the record framing of the whole file (chunk contents included) and
every CRC that is not 0; a file without CRCs gets the framing checks only.
"""

from __future__ import annotations

import mmap
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lz4.frame import decompress as lz4_decompress

from seqace_ros.datasets.bag_error import BagError

if sys.version_info >= (3, 14):
    from compression.zstd import decompress as zstd_decompress
else:
    from backports.zstd import decompress as zstd_decompress

MAGIC = b"\x89MCAP0\r\n"
_FOOTER_LENGTH = 1 + 8 + 20  # opcode, length, summary_start, summary_offset_start, summary_crc
_HEADER, _FOOTER, _SCHEMA, _CHANNEL, _MESSAGE, _CHUNK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
_DATA_END = 0x0F
_KNOWN_OPCODES = frozenset(range(0x01, 0x10))
_CHUNK_OPCODES = frozenset({_SCHEMA, _CHANNEL, _MESSAGE})
_DECOMPRESSORS = {"": bytes, "lz4": lz4_decompress, "zstd": zstd_decompress}


@dataclass(frozen=True)
class _Record:
    """One record: where it starts, its opcode, and the byte range of its content."""

    offset: int
    opcode: int
    start: int
    end: int


@dataclass(frozen=True)
class _Chunk:
    """The fields of a Chunk record the checks need."""

    crc_offset: int
    crc: int
    uncompressed_size: int
    compression: str
    records_start: int
    records_end: int


def _records(data: bytes | mmap.mmap, start: int, stop: int, where: str,
             within: str = "") -> Iterator[_Record]:
    """The records in ``data[start:stop]``, which they must fill exactly; ``within`` says what
    the offsets in errors count in (e.g. " of the chunk's records")."""
    offset = start
    while offset < stop:
        if offset + 9 > stop:
            raise BagError(f"{where}: a record at byte offset {offset}{within} is cut off")
        opcode = data[offset]
        (length,) = struct.unpack_from("<Q", data, offset + 1)
        end = offset + 9 + length
        if opcode not in _KNOWN_OPCODES or end > stop:
            raise BagError(f"{where}: bad record at byte offset {offset}{within} (opcode "
                           f"{opcode:#04x}, length {length})")
        yield _Record(offset, opcode, offset + 9, end)
        offset = end


def _chunk(data: bytes | mmap.mmap, record: _Record, where: str) -> _Chunk:
    """The fields of the Chunk ``record``."""
    try:
        _, _, size, crc, name_length = struct.unpack_from("<QQQII", data, record.start)
        name_start = record.start + 32
        compression = bytes(data[name_start : name_start + name_length]).decode()
        (records_length,) = struct.unpack_from("<Q", data, name_start + name_length)
    except (struct.error, UnicodeDecodeError) as error:
        raise BagError(f"{where}: unreadable chunk at byte offset {record.offset} "
                       f"({error})") from None
    records_start = name_start + name_length + 8
    if records_start + records_length > record.end or compression not in _DECOMPRESSORS:
        raise BagError(f"{where}: bad chunk at byte offset {record.offset} (compression "
                       f"{compression!r}, {records_length} bytes of records)")
    return _Chunk(record.start + 24, crc, size, compression, records_start,
                  records_start + records_length)


def _uncompressed(data: bytes | mmap.mmap, chunk: _Chunk, record: _Record, where: str) -> bytes:
    """The records of ``chunk``, decompressed and of the size the chunk states."""
    stored = bytes(data[chunk.records_start : chunk.records_end])
    try:
        records = _DECOMPRESSORS[chunk.compression](stored)
    except Exception as error:  # a third-party decompressor on damaged bytes: any failure
        raise BagError(f"{where}: chunk at byte offset {record.offset} does not decompress "
                       f"({type(error).__name__}: {error})") from None
    if len(records) != chunk.uncompressed_size:
        raise BagError(f"{where}: chunk at byte offset {record.offset} holds {len(records)} "
                       f"bytes, its header says {chunk.uncompressed_size}")
    return records


def _footer(data: bytes | mmap.mmap, where: str) -> tuple[int, int, int, int]:
    """``(footer_offset, summary_start, summary_offset_start, summary_crc)``."""
    size = len(data)
    if size < 2 * len(MAGIC) + _FOOTER_LENGTH or data[:8] != MAGIC or data[-8:] != MAGIC:
        raise BagError(f"{where}: not a complete MCAP file (magic bytes missing)")
    footer = size - len(MAGIC) - _FOOTER_LENGTH
    if data[footer] != _FOOTER or struct.unpack_from("<Q", data, footer + 1)[0] != 20:
        raise BagError(f"{where}: no footer record at byte offset {footer}")
    summary_start, summary_offset_start, summary_crc = struct.unpack_from("<QQI", data,
                                                                          footer + 9)
    return footer, summary_start, summary_offset_start, summary_crc


def _check(stored: int, computed: int, what: str, where: str) -> None:
    if stored and stored != computed:
        raise BagError(f"{where}: {what} fails its CRC (stored {stored:#010x}, computed "
                       f"{computed:#010x})")


def _walk(data: bytes | mmap.mmap, where: str, fill: bool) -> None:
    """Check (``fill`` False) or write (``fill`` True) the framing and CRCs of ``data``."""
    footer, summary_start, _, summary_crc = _footer(data, where)
    data_end: int | None = None
    for record in _records(data, len(MAGIC), footer, where):
        if data_end is None and record.opcode == _CHUNK:
            chunk = _chunk(data, record, where)
            records = _uncompressed(data, chunk, record, where)
            for inner in _records(records, 0, len(records), f"{where}, chunk at byte offset "
                                  f"{record.offset}", " of the chunk's records"):
                if inner.opcode not in _CHUNK_OPCODES:
                    raise BagError(f"{where}: chunk at byte offset {record.offset} holds a "
                                   f"record of opcode {inner.opcode:#04x}")
            crc = zlib.crc32(records)
            if fill:
                struct.pack_into("<I", data, chunk.crc_offset, crc)
            else:
                _check(chunk.crc, crc, f"chunk at byte offset {record.offset}", where)
        elif record.opcode == _DATA_END and data_end is None:
            data_end = record.offset
            crc = zlib.crc32(data[:record.offset])
            if fill:
                struct.pack_into("<I", data, record.start, crc)
            else:
                _check(struct.unpack_from("<I", data, record.start)[0], crc,
                       f"the data section (before byte offset {record.offset})", where)
        elif (record.opcode == _HEADER) != (record.offset == len(MAGIC)) or record.opcode in (
                _FOOTER, _DATA_END):
            raise BagError(f"{where}: misplaced record of opcode {record.opcode:#04x} at byte "
                           f"offset {record.offset}")
    if data_end is None or (summary_start and summary_start != data_end + 13):
        raise BagError(f"{where}: no data end record where the summary starts "
                       f"(byte offset {summary_start})")
    if summary_start:
        crc = zlib.crc32(data[summary_start : footer + 25])
        if fill:
            struct.pack_into("<I", data, footer + 25, crc)
        else:
            _check(summary_crc, crc, f"the summary (from byte offset {summary_start})", where)


def check_mcap(data: bytes | mmap.mmap, where: str) -> None:
    """Check the record framing of an MCAP file's bytes and every CRC they carry.

    Args:
        data: the whole file (e.g. memory-mapped).
        where: names the file in error messages.

    Raises:
        BagError: a record that does not fit, a chunk that does not decompress, or a CRC that
            does not match, with its byte offset.
    """
    _walk(data, where, fill=False)


def add_crcs(path: Path) -> None:
    """Write the chunk, data-section and summary CRCs of an MCAP file in place.

    Raises:
        BagError: the file is not a well-formed MCAP file.
    """
    with open(path, "r+b") as stream, mmap.mmap(stream.fileno(), 0) as data:
        _walk(data, f"MCAP file {path}", fill=True)
        data.flush()
