"""The bytes of a semidbm data file, format 1.1 (the only module that knows them).

A data file is a header followed by records, appended one after another::

    header:  +------+-------+-------+
             | SEMI | major | minor |      magic, then !HH (1, 1)
             +------+-------+-------+
    put:     +-------+-------+-----+-------+-------------------+
             | ksize | vsize | key | value | crc32(key+value)  |   !ii ... !I
             +-------+-------+-----+-------+-------------------+
    delete:  +-------+-------+-----+-------------+
             | ksize |  -1   | key | crc32(key)  |                 a tombstone
             +-------+-------+-----+-------------+

All integers are big-endian; sizes are signed 32-bit.  ``docs/fileformat.rst`` is the
specification; this module and that page change together.
"""
from __future__ import annotations

import mmap
import re
import struct
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union
from zlib import crc32

MAGIC = b'SEMI'
VERSION = (1, 1)
HEADER = struct.Struct('!4sHH')
RECORD_HEAD = struct.Struct('!ii')
CHECKSUM = struct.Struct('!I')

#: The value size of a tombstone (a delete record).
DELETED = -1
#: The largest key or value the signed 32-bit size fields can describe.
MAX_SIZE = 2 ** 31 - 1
#: Bytes a record adds around its key and value.
OVERHEAD = RECORD_HEAD.size + CHECKSUM.size
#: Appended past the logical end as room for new records (see docs/fileformat.rst,
#: "Preallocated tail").  A key size of -1 can start no record, so a reader stops there.
PAD_BYTE = b'\xff'

HEADER_BYTES = HEADER.pack(MAGIC, *VERSION)

#: What the parser reads: the data file's map, or bytes read from it.
ByteSource = Union[bytes, mmap.mmap]

#: An index entry is one int, ``value_offset << ENTRY_SHIFT | value_size``: one small
#: object a key instead of a tuple of two.  Hot paths (the scan, reads, puts,
#: compaction) do this arithmetic inline with these constants.
# One int, not a tuple: the ``peak_rss`` benchmark.
ENTRY_SHIFT = 32
ENTRY_SIZE_MASK = (1 << ENTRY_SHIFT) - 1
#: The index: each key's entry.
Index = Dict[bytes, int]


def entry(value_offset: int, value_size: int) -> int:
    """Return the index entry of a value of *value_size* bytes at *value_offset*."""
    return value_offset << ENTRY_SHIFT | value_size


def entry_parts(index_entry: int) -> Tuple[int, int]:
    """Return ``(value_offset, value_size)`` of an index entry."""
    return index_entry >> ENTRY_SHIFT, index_entry & ENTRY_SIZE_MASK



class RecordTooLarge(ValueError):
    """A key or value is longer than :data:`MAX_SIZE`."""

    def __init__(self, size: int) -> None:
        super().__init__(f'a key or value of {size} bytes is too large (the file '
                         f'format allows {MAX_SIZE})')



def live_bytes(index: Index) -> int:
    """The size of a data file holding only the records of *index*: what compaction
    would leave.  Cost: one pass over the index."""
    return HEADER.size + sum(OVERHEAD + len(key) + (entry & ENTRY_SIZE_MASK)
                             for key, entry in index.items())

def encode_put(key: bytes, value: bytes) -> bytes:
    """Return the bytes of a put record for *key* and *value* (both bytes).

    :raises RecordTooLarge: if either is longer than :data:`MAX_SIZE`.
    """
    key_size, value_size = len(key), len(value)
    if key_size > MAX_SIZE or value_size > MAX_SIZE:
        raise RecordTooLarge(max(key_size, value_size))
    return b''.join((RECORD_HEAD.pack(key_size, value_size), key, value,
                     CHECKSUM.pack(crc32(value, crc32(key)))))


def encode_puts(pairs: Iterable[Tuple[Any, Any]], start: int,
                convert: Callable[[Any, Any], Tuple[bytes, bytes]]
                ) -> Tuple[bytes, List[bytes], List[int]]:
    """Encode *pairs* as put records to be written one after another at *start*.

    Return ``(blob, keys, entries)``: the records' bytes, the keys, and for each
    its index entry (:func:`entry`, inlined).  *convert(key, value)*
    is called for a pair that is not two bytes objects, and returns it as bytes.
    One pass and one join for the whole batch, with no call per record into
    Python code.

    :raises RecordTooLarge: if a key or value is longer than :data:`MAX_SIZE`.
    """
    # One join, no call per record: 0.5 us a pair against 0.63 for encode_put in a
    # loop (the ``update_batch`` benchmark).
    # The pairs are Any: what is not bytes is *convert*'s to check, at run time.
    parts: List[bytes] = []
    keys: List[bytes] = []
    locations: List[int] = []
    add_parts, add_key, add_location = parts.extend, keys.append, locations.append
    pack_head, pack_checksum = RECORD_HEAD.pack, CHECKSUM.pack
    offset, limit = start, MAX_SIZE
    head_size, tail_size = RECORD_HEAD.size, CHECKSUM.size
    for key, value in pairs:
        if key.__class__ is not bytes or value.__class__ is not bytes:
            key, value = convert(key, value)
        key_size, value_size = len(key), len(value)
        if key_size > limit or value_size > limit:
            raise RecordTooLarge(max(key_size, value_size))
        add_parts((pack_head(key_size, value_size), key, value,
                   pack_checksum(crc32(value, crc32(key)))))
        add_key(key)
        offset += head_size + key_size
        add_location(offset << ENTRY_SHIFT | value_size)
        offset += value_size + tail_size
    return b''.join(parts), keys, locations


def encode_delete(key: bytes) -> bytes:
    """Return the bytes of a tombstone for *key*."""
    return b''.join((RECORD_HEAD.pack(len(key), DELETED), key,
                     CHECKSUM.pack(crc32(key))))


def check_header(buf: ByteSource, path: object) -> Tuple[int, int]:
    """Check the file header at the start of *buf*; return its (major, minor).

    :raises ValueError: with a message naming *path* when the magic or major version
        is not ours.
    """
    if len(buf) < HEADER.size:
        raise ValueError(f'{path!s}: too short for a semidbm data file '
                         f'({len(buf)} bytes, the header alone is {HEADER.size})')
    magic, major, minor = HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise ValueError(f'{path!s}: not a semidbm data file (magic {magic!r}, '
                         f'expected {MAGIC!r})')
    if major != VERSION[0]:
        raise ValueError(f'{path!s}: file format {major}.{minor} is not supported '
                         f'(this semidbm reads {VERSION[0]}.x)')
    return major, minor


def record_size(key_size: int, value_size: int) -> int:
    """Return the length in bytes of a record with these size fields."""
    return OVERHEAD + key_size + (value_size if value_size != DELETED else 0)


def checksum_ok(buf: ByteSource, offset: int, key_size: int, value_size: int) -> bool:
    """Tell whether the record at *offset* with these sizes carries a good checksum."""
    start = offset + RECORD_HEAD.size
    body_end = start + key_size + (value_size if value_size != DELETED else 0)
    stored: int  # unpack_from gives Any
    stored, = CHECKSUM.unpack_from(buf, body_end)
    return crc32(buf[start:body_end]) == stored


def value_ok(buf: ByteSource, key: bytes, value: bytes, value_offset: int) -> bool:
    """Tell whether *value*, read from *value_offset* in *buf* for *key*, is followed
    by its record's checksum.  A value cut short by the end of *buf* is not."""
    end = value_offset + len(value)
    return (end + CHECKSUM.size <= len(buf)
            and crc32(value, crc32(key)) == CHECKSUM.unpack_from(buf, end)[0])


def scan(buf: ByteSource, offset: int, end: int) -> Iterator[Tuple[int, bytes, int]]:
    """Yield ``(offset, key, value_size)`` for each whole record in ``buf[offset:end]``.

    The checksum is not verified (that is a read's or a check's job).  Stops at the
    first record whose size fields are impossible or that runs past *end*; the caller
    learns where from :func:`scan_end`.  Cost: one unpack and one key slice a record.
    """
    unpack_from = RECORD_HEAD.unpack_from
    last_head = end - OVERHEAD
    while offset <= last_head:
        key_size, value_size = unpack_from(buf, offset)
        if key_size < 0 or value_size < DELETED:
            return
        start = offset + RECORD_HEAD.size
        body_end = start + key_size
        if value_size > 0:
            body_end += value_size
        if body_end + CHECKSUM.size > end:
            return
        yield offset, buf[start:start + key_size], value_size
        offset = body_end + CHECKSUM.size


def valid_record_at(buf: ByteSource, offset: int, end: int) -> bool:
    """Tell whether a whole record with a good checksum starts at *offset*."""
    if offset + OVERHEAD > end:
        return False
    key_size, value_size = RECORD_HEAD.unpack_from(buf, offset)
    if key_size < 0 or value_size < DELETED:
        return False
    if offset + record_size(key_size, value_size) > end:
        return False
    return checksum_ok(buf, offset, key_size, value_size)


def filler(buf: ByteSource, offset: int, key_size: int, value_size: int) -> bool:
    """Tell whether the record at *offset* is one that lost or unwritten blocks make
    by themselves: all zeros (an empty key and value: the crc32 of nothing is 0), or
    nothing but pad after its head (see :func:`torn_copy`)."""
    return (key_size == 0 and value_size == 0) or pad_made(buf, offset)


def find_record(buf: ByteSource, offset: int, end: int,
                starts_before: Optional[int] = None) -> int:
    """Return the offset of the first valid record at or after *offset* that is not
    :func:`filler`, or -1.

    Used after damage, to tell a torn tail (nothing valid follows) from a broken
    chain of records (valid records follow), and by repair.  Only offsets whose size
    fields could fit before *end* are tried (found by :func:`_candidates` at C
    speed), so a torn 10 MB value costs milliseconds, not seconds.

    :param starts_before: try no offset at or past this one (the start of the pad:
        no record starts there, but one may end there with 0xFF bytes, so *end*
        stays the end of the file).
    """
    stop = end - OVERHEAD + 1
    if starts_before is not None:
        stop = min(stop, starts_before)
    for candidate in _candidates(buf, offset, stop, end):
        if valid_record_at(buf, candidate, end) and not pad_made(buf, candidate):
            return candidate
    return -1


def _candidates(buf: ByteSource, offset: int, stop: int, end: int) -> Iterator[int]:
    """Yield the offsets in [offset, stop) where both size fields could be real.

    A size is at most ``end - offset``, so its first (big-endian) byte is at most
    ``(end - offset) >> 24``; a value size may also be -1 (0xFF...).  Eight zero bytes
    start only a :func:`filler` record, so a run of zeros (a block lost to a power
    cut) yields none.  A regular expression finds such offsets without a Python step
    per byte.
    """
    if offset >= stop:
        return
    top = re.escape(bytes([min(0x7F, (end - offset) >> 24)]))
    first = b'[\x00-' + top + b']'
    pattern = re.compile(b'(?!\x00{8})(?=' + first + b'...(?:' + first + b'|\xff))',
                         re.DOTALL)
    # The look-ahead reads past a candidate: let it see up to the sizes of the last.
    for match in pattern.finditer(buf, offset, min(end, stop + RECORD_HEAD.size)):
        if match.start() >= stop:
            return
        yield match.start()


#: How many bytes at each end of a stretch of the data file :func:`probes` checksums.
PROBE = 1 << 16


def probes(buf: ByteSource, end: int) -> Tuple[int, int]:
    """Return checksums of the first and the last :data:`PROBE` bytes of ``buf[:end]``:
    what ties a file that describes the data file (a snapshot, a sync mark) to its
    contents rather than to its inode, so copies keep working and other files don't."""
    return crc32(buf[:min(PROBE, end)]), crc32(buf[max(0, end - PROBE):end])


def torn_copy(buf: ByteSource, offset: int, key_size: int, value_size: int,
              size: int) -> bool:
    """Tell whether the record at *offset* is a copy that a kill cut short.

    So it is when nothing but pad follows it to *size* (a live writer always leaves
    pad after its last record) and either its checksum fails or nothing but pad
    follows its head: a key and value of four pad bytes carry a good checksum (the
    crc32 of four 0xFF bytes is 0xFFFFFFFF, the pad's checksum field; found by
    tests/test_fuzz.py).  The price: a record of only 0xFF bytes, four of key and
    value, last before a kill, is taken for pad too.
    """
    body = offset + RECORD_HEAD.size
    end = offset + record_size(key_size, value_size)
    if end >= size or content_end(buf, end, size) != end:
        return False
    return (content_end(buf, body, end) == body
            or not checksum_ok(buf, offset, key_size, value_size))


def pad_made(buf: ByteSource, offset: int) -> bool:
    """Tell whether the record at *offset* is nothing but pad after its head."""
    body = offset + RECORD_HEAD.size
    end = offset + record_size(*RECORD_HEAD.unpack_from(buf, offset))
    return content_end(buf, body, end) == body


def content_end(buf: ByteSource, offset: int, end: int) -> int:
    """Return where the bytes of ``buf[offset:end]`` stop being :data:`PAD_BYTE`.

    Reading back from *end* a block at a time, so a preallocated tail costs one
    comparison per block rather than per byte.
    """
    block = 1 << 16
    while end > offset:
        start = max(offset, end - block)
        chunk = bytes(buf[start:end]).rstrip(PAD_BYTE)
        if chunk:
            return start + len(chunk)
        end = start
    return offset
