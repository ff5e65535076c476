"""ROS 1 bag (format 2.0) integrity: every record's framing, and the index against the data.

A ROS 1 bag has no checksums. What it does have is redundancy: the bag header says where the
index starts and how many connections and chunks there are; each chunk's index records give
the time, connection and offset of every message in it; the chunk info records give each
chunk's time span and per-connection counts. :func:`check_ros1` walks the whole file, checks
that every record (and every record inside every chunk) is well framed and of a known kind,
and that all of that redundant information agrees. A damaged record header, a damaged index
or a damaged chunk size is found; damaged message *payload* bytes (pixels, pose numbers) are
not, as nothing in the format covers them.
"""

from __future__ import annotations

import bz2
import mmap
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from lz4.frame import decompress as lz4_decompress

from seqace_ros.datasets.bag_error import BagError

MAGIC = b"#ROSBAG V2.0\n"
_MESSAGE, _BAG_HEADER, _INDEX, _CHUNK, _CHUNK_INFO, _CONNECTION = 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
_DECOMPRESSORS = {"none": bytes, "bz2": bz2.decompress, "lz4": lz4_decompress}


@dataclass(frozen=True)
class _Record:
    """One record: where it starts and ends, its header fields and its data range."""

    offset: int
    fields: dict[str, bytes]
    data_start: int
    end: int

    def op(self) -> int:
        """The record's op code."""
        return self.fields["op"][0]


@dataclass
class _ChunkContent:
    """What a chunk holds: (connection, time ns) of each message by its offset in the chunk,
    the offsets the index records named, and the messages per connection."""

    offset: int
    messages: dict[int, tuple[int, int]] = field(default_factory=dict)
    indexed: set[int] = field(default_factory=set)
    counts: Counter[int] = field(default_factory=Counter)


class _Walker:
    """Reads records from a buffer, raising :class:`BagError` with the byte offset."""

    def __init__(self, data: bytes | mmap.mmap, where: str, within: str = "") -> None:
        self.data = data
        self.where = where
        self.within = within  # e.g. " of the chunk's data": what the offsets count in

    def fail(self, offset: int, what: str) -> BagError:
        """The error for ``what`` found at ``offset``."""
        return BagError(f"{self.where}: {what} at byte offset {offset}{self.within}")

    def uint32(self, offset: int, stop: int) -> int:
        if offset + 4 > stop:
            raise self.fail(offset, "record cut off")
        return int(struct.unpack_from("<I", self.data, offset)[0])

    def record(self, offset: int, stop: int) -> _Record:
        header_length = self.uint32(offset, stop)
        position, header_end = offset + 4, offset + 4 + header_length
        if header_end > stop:
            raise self.fail(offset, f"record header of {header_length} bytes runs past the end")
        fields: dict[str, bytes] = {}
        while position < header_end:
            field_length = self.uint32(position, header_end)
            name, equals, value = bytes(
                self.data[position + 4 : position + 4 + field_length]).partition(b"=")
            if position + 4 + field_length > header_end or not equals:
                raise self.fail(offset, "malformed record header field")
            fields[name.decode("ascii", errors="replace")] = value
            position += 4 + field_length
        data_length = self.uint32(header_end, stop)
        end = header_end + 4 + data_length
        if end > stop or len(fields.get("op", b"")) != 1:
            raise self.fail(offset, "record without an op code, or with data past the end")
        return _Record(offset, fields, header_end + 4, end)

    def records(self, start: int, stop: int) -> Iterator[_Record]:
        offset = start
        while offset < stop:
            record = self.record(offset, stop)
            yield record
            offset = record.end


def _number(record: _Record, name: str, size: int, walker: _Walker) -> int:
    value = record.fields.get(name)
    if value is None or len(value) != size:
        raise walker.fail(record.offset, f"record field {name!r} missing or not {size} bytes")
    return int.from_bytes(value, "little")


def _time_ns(raw: bytes) -> int:
    """Nanoseconds of a ROS 1 time (uint32 seconds, uint32 nanoseconds)."""
    seconds, nanoseconds = struct.unpack("<II", raw)
    return int(seconds) * 1_000_000_000 + int(nanoseconds)


def _time(record: _Record, name: str, walker: _Walker) -> int:
    """The time field ``name`` of ``record``, in nanoseconds."""
    _number(record, name, 8, walker)
    return _time_ns(record.fields[name])


def _chunk_content(record: _Record, walker: _Walker) -> _ChunkContent:
    """Decompress a chunk and index the message records inside it."""
    compression = record.fields.get("compression", b"").decode("ascii", errors="replace")
    size = _number(record, "size", 4, walker)
    if compression not in _DECOMPRESSORS:
        raise walker.fail(record.offset, f"chunk with unknown compression {compression!r}")
    try:
        data = _DECOMPRESSORS[compression](bytes(walker.data[record.data_start : record.end]))
    except Exception as error:  # a third-party decompressor on damaged bytes: any failure
        raise walker.fail(record.offset, f"chunk that does not decompress ({error})") from None
    if len(data) != size:
        raise walker.fail(record.offset, f"chunk of {len(data)} bytes, its header says {size}")
    content = _ChunkContent(record.offset)
    inner = _Walker(data, f"{walker.where}, chunk at byte offset {record.offset}",
                    " of the chunk's data")
    for message in inner.records(0, len(data)):
        if message.op() == _MESSAGE:
            connection = _number(message, "conn", 4, inner)
            content.messages[message.offset] = (connection, _time(message, "time", inner))
            content.counts[connection] += 1
        elif message.op() != _CONNECTION:
            raise inner.fail(message.offset, f"record of op {message.op()} inside a chunk")
    return content


def _check_index(record: _Record, chunk: _ChunkContent | None, walker: _Walker) -> None:
    """An index record must list messages of its connection, at their times, in ``chunk``."""
    if chunk is None or _number(record, "ver", 4, walker) != 1:
        raise walker.fail(record.offset, "index record without a chunk before it, or not v1")
    connection, count = _number(record, "conn", 4, walker), _number(record, "count", 4, walker)
    if record.end - record.data_start != 12 * count:
        raise walker.fail(record.offset, f"index record of {count} entries with "
                          f"{record.end - record.data_start} bytes")
    for k in range(count):
        entry = record.data_start + 12 * k
        time_ns = _time_ns(bytes(walker.data[entry : entry + 8]))
        (offset,) = struct.unpack_from("<I", walker.data, entry + 8)
        message = chunk.messages.get(offset)
        if message is None or message[0] != connection or offset in chunk.indexed:
            raise walker.fail(record.offset, f"index entry {k} that names no message of "
                              f"connection {connection}")
        if message[1] != time_ns:
            raise walker.fail(record.offset, f"index entry {k} whose time differs from its "
                              "message's")
        chunk.indexed.add(offset)


def _check_chunk_info(record: _Record, chunks: dict[int, _ChunkContent],
                      walker: _Walker) -> int:
    """A chunk info record must match its chunk's counts and times; returns its chunk."""
    if _number(record, "ver", 4, walker) != 1:
        raise walker.fail(record.offset, "chunk info record not of version 1")
    chunk = chunks.get(_number(record, "chunk_pos", 8, walker))
    count = _number(record, "count", 4, walker)
    if chunk is None or record.end - record.data_start != 8 * count:
        raise walker.fail(record.offset, "chunk info record that names no chunk")
    counts = Counter({int(c): int(n) for c, n in struct.iter_unpack(
        "<II", walker.data[record.data_start : record.end])})
    times = [time_ns for _, time_ns in chunk.messages.values()]
    start, end = _time(record, "start_time", walker), _time(record, "end_time", walker)
    if counts != chunk.counts or (times and not start <= min(times) <= max(times) <= end):
        raise walker.fail(record.offset, "chunk info record that disagrees with its chunk")
    return chunk.offset


def check_ros1(data: bytes | mmap.mmap, where: str) -> None:
    """Check the framing of every record of a ROS 1 bag and that its index matches its data.

    Args:
        data: the whole file (e.g. memory-mapped).
        where: names the file in error messages.

    Raises:
        BagError: the first inconsistency, with its byte offset.
    """
    walker = _Walker(data, where)
    if data[: len(MAGIC)] != MAGIC:
        raise walker.fail(0, "no '#ROSBAG V2.0' magic line")
    header = walker.record(len(MAGIC), len(data))
    if header.op() != _BAG_HEADER:
        raise walker.fail(header.offset, "no bag header record")
    index_start = _number(header, "index_pos", 8, walker)
    connection_count = _number(header, "conn_count", 4, walker)
    chunk_count = _number(header, "chunk_count", 4, walker)
    if not header.end <= index_start <= len(data):
        raise walker.fail(header.offset, f"bag header with index position {index_start}")
    chunks: dict[int, _ChunkContent] = {}
    current: _ChunkContent | None = None
    for record in walker.records(header.end, index_start):
        if record.op() == _CHUNK:
            current = chunks[record.offset] = _chunk_content(record, walker)
        elif record.op() == _INDEX:
            _check_index(record, current, walker)
        else:
            raise walker.fail(record.offset, f"record of op {record.op()} between chunks")
    unindexed = [c.offset for c in chunks.values() if len(c.indexed) != len(c.messages)]
    if unindexed:
        raise walker.fail(unindexed[0], "chunk whose messages are not all indexed")
    described: list[int] = []
    kinds = [record.op() for record in walker.records(index_start, len(data))]
    expected = [_CONNECTION] * connection_count + [_CHUNK_INFO] * chunk_count
    if kinds != expected:
        raise walker.fail(index_start, f"index of {kinds.count(_CONNECTION)} connection and "
                          f"{kinds.count(_CHUNK_INFO)} chunk info records, the bag header "
                          f"says {connection_count} and {chunk_count}")
    for record in walker.records(index_start, len(data)):
        if record.op() == _CHUNK_INFO:
            described.append(_check_chunk_info(record, chunks, walker))
    if sorted(described) != sorted(chunks):
        raise walker.fail(index_start, "chunk info records that do not describe each "
                          "chunk once")
