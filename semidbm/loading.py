"""Rebuilding the index at open: a scan of the records, and the rules for the tail.

The index maps each key to its entry (:func:`semidbm.format.entry`, inlined here).
"""
# Inlined: the ``load`` benchmark is this loop.
from __future__ import annotations

import mmap
from typing import NamedTuple, Optional, Protocol, Tuple

from semidbm import format
from semidbm.exceptions import DBMLoadError

#: How much of the data file a scan reads before it lets the pages go.
WINDOW = 1 << 24
_DONTNEED = getattr(mmap, 'MADV_DONTNEED', None)  # not on Windows
#: A record as :func:`semidbm.format.scan` yields it: ``(offset, key, value_size)``.
_Record = Tuple[int, bytes, int]


class Sink(Protocol):
    """What a scan applies records to: the index, or a refresh's
    :class:`~semidbm.catchup.Delta`."""

    def __setitem__(self, key: bytes, index_entry: int, /) -> None: ...

    def pop(self, key: bytes, default: None, /) -> object: ...


def check_header(buf: format.ByteSource, data_path: object) -> Tuple[int, int]:
    """Return the format version, ``(major, minor)``, of the header at the start of *buf*.

    :raises DBMLoadError: naming *data_path*, if *buf* has not our header.
    """
    try:
        return format.check_header(buf, data_path)
    except ValueError as exc:
        raise DBMLoadError(str(exc)) from None


class Leftover(NamedTuple):
    """Records past the end of the recovered data that recovery could not apply.

    ``buf[cut:stop]`` is what follows the last applied record up to the pad, and a
    valid record starts at *first* in it: after a record lost or torn by a power cut,
    applying it would make a state the database never had.
    """

    cut: int
    stop: int
    first: int


def scan_into(index: format.Index, buf: format.ByteSource, start: int, size: int,
              durable_end: Optional[int], data_path: str, db_path: str,
              tail: Optional[bytes] = None, *,
              lost_blocks: bool = True) -> Tuple[int, Optional[Leftover]]:
    """Add the records of ``buf[start:size]`` to *index*; return the data's end and
    a :class:`Leftover` or None.

    With *durable_end* (what the sync mark says, :mod:`semidbm.syncmark`): the
    records up to it were durable and must chain to it exactly; after it, each
    record's checksum is verified and the first that fails, or that lost blocks
    make by themselves (:func:`_filler_alone`), ends the data.  Without it (a file
    with no mark that matches), only the last record may be a torn copy
    (:func:`_settle_last`), and damage with valid records after it is refused.

    Checksums of the durable records are left to reads: a damaged record in the
    middle stays indexed, and no neighbour is lost.

    :param lost_blocks: whether the bytes after *durable_end* may hold blocks that a
        power cut lost (not since the machine has run on: :mod:`semidbm.syncmark`);
        if not, a record of zeros is a record wherever it is.
    :param tail: the file's bytes from *durable_end* on, read with ``pread``: then
        *buf*, a map, is read only before *durable_end*, which a writer in another
        process never cuts (a map read past the end of a file it cut would kill
        this process with ``SIGBUS``).
    :raises DBMLoadError: if the chain of records breaks in the durable part (or,
        with no mark, before valid records).
    """
    if durable_end is None:
        pending, after = _scan(index, buf, start, size)
        end = _settle_last(buf, pending, index, after, size)
        _refuse_broken_chain(buf, _search_from(buf, pending, end), size, data_path, db_path)
        return end, None
    if start < durable_end:
        pending, after = _scan(index, buf, start, durable_end)
        end = _apply(index, pending, after)
        if end != durable_end:
            raise DBMLoadError(
                f'{data_path}: damaged record at offset {end}, in the part of the file '
                f'that was made durable (it ends at offset {durable_end}): not a crash '
                f'but damage to the file. Nothing was changed. Recover the good records '
                f'with: python -m semidbm repair {db_path}')
        start = durable_end
    if tail is not None:
        return scan_tail(index, tail, durable_end, lost_blocks=lost_blocks)
    end, _ = _scan_verified(index, buf, start, size, lost_blocks=lost_blocks)
    return end, _leftover(buf, end, size)


def scan_tail(index: format.Index, tail: bytes, base: int,
              lost_blocks: bool = False) -> Tuple[int, Optional[Leftover]]:
    """Apply the records of *tail*, a copy of the data file's bytes from offset *base*
    on, as those after the durable end (:func:`scan_into`); return the data's end and
    a :class:`Leftover` or None, in offsets of the file."""
    end = apply_tail(index, tail, base, lost_blocks)
    return end, _leftover(tail, end - base, len(tail), base)


def apply_tail(index: Sink, tail: bytes, base: int, lost_blocks: bool) -> int:
    """:func:`scan_tail` without the search for leftovers: return the data's end."""
    return _scan_verified(index, tail, 0, len(tail), base, lost_blocks)[0]


def unsynced(buf: format.ByteSource, start: int, size: int,
             lost_blocks: bool = True) -> Tuple[int, int, Optional[Leftover]]:
    """Return what recovery makes of ``buf[start:size]``, the bytes past the durable
    end: ``(records, end, leftover)``, the count of records it applies, where they
    end, and the :class:`Leftover` (or None)."""
    end, records = _scan_verified({}, buf, start, size, lost_blocks=lost_blocks)
    return records, end, _leftover(buf, end, size)


def _scan(index: format.Index, buf: format.ByteSource, start: int,
          size: int) -> Tuple[Optional[_Record], int]:
    """Apply the whole records of ``buf[start:size]`` but the last, one step late;
    return the last (``(offset, key, value_size)`` or None) and where it starts.

    The scan goes a window of :data:`WINDOW` bytes at a time and gives each window's
    pages back to the page cache once it is scanned.  Without that, an open leaves
    the whole file counted in the process's memory (RSS).
    """
    # The ``peak_rss`` benchmark, whose checks open a 160 MB database by scanning,
    # measured that as its peak: 611 MiB against 465 for the rest of the run.
    deleted = format.DELETED
    head = format.RECORD_HEAD.size
    shift = format.ENTRY_SHIFT
    pending: Optional[_Record] = None
    released = 0
    whole = False
    while True:
        stop = size if whole or size - start <= WINDOW else start + WINDOW
        before = pending
        for record in format.scan(buf, start, stop):
            if pending is not None:
                offset, key, value_size = pending
                if value_size == deleted:
                    index.pop(key, None)
                else:
                    index[key] = (offset + head + len(key)) << shift | value_size
            pending = record
        if stop == size:
            return pending, start
        if pending is before:  # a record longer than the window, or damage
            whole = True
            continue
        assert pending is not None  # it moved: this window had a record
        offset, key, value_size = pending
        start = offset + format.record_size(len(key), value_size)
        released = _release(buf, released, start)


def _apply(index: Sink, record: Optional[_Record], start: int, base: int = 0) -> int:
    """Apply *record* (or nothing, if None, at *start*); return where the data ends.
    Its offset is in a buffer that starts at offset *base* of the file."""
    if record is None:
        return start
    offset, key, value_size = record
    offset += base
    if value_size == format.DELETED:
        index.pop(key, None)
    else:
        index[key] = format.entry(offset + format.RECORD_HEAD.size + len(key), value_size)
    return offset + format.record_size(len(key), value_size)


def _scan_verified(index: Sink, buf: format.ByteSource, start: int, size: int,
                   base: int = 0, lost_blocks: bool = True) -> Tuple[int, int]:
    """Apply the records of ``buf[start:size]`` up to the first that does not verify
    or is :func:`_filler_alone`; return where the applied ones end (*buf* starting at
    offset *base* of the file), and their count."""
    end, count = base + start, 0
    for record in format.scan(buf, start, size):
        offset, key, value_size = record
        if (not format.checksum_ok(buf, offset, len(key), value_size)
                or _filler_alone(buf, offset, len(key), value_size, size, lost_blocks)):
            break
        end = _apply(index, record, end, base)
        count += 1
    return end, count


def _filler_alone(buf: format.ByteSource, offset: int, key_size: int, value_size: int,
                  size: int, lost_blocks: bool = True) -> bool:
    """Tell whether the record at *offset* is :func:`~semidbm.format.filler` with
    nothing after it that shows a writer wrote it.

    What shows it: a real record after it (valid, and not filler), or, for a record
    of zeros (an empty key and value), the pad, the end of the file or a copy that a
    kill cut short (:func:`semidbm.format.torn_copy`), which is what a live writer
    leaves after its last records.  A block of zeros has none of these after its
    first twelve bytes; a head and then only pad, followed by pad, is itself a copy
    torn after its head.  Without *lost_blocks* a record of zeros is always real.
    """
    if not format.filler(buf, offset, key_size, value_size):
        return False
    if not lost_blocks and not key_size and not value_size:
        return False
    after = offset + format.record_size(key_size, value_size)
    if format.valid_record_at(buf, after, size):
        return format.filler(buf, after, *format.RECORD_HEAD.unpack_from(buf, after))
    if key_size or value_size:
        return True
    return not (after == size or buf[after:after + 4] == format.PAD_BYTE * 4
                or _torn_copy_at(buf, after, size))


def _torn_copy_at(buf: format.ByteSource, offset: int, size: int) -> bool:
    if offset + format.RECORD_HEAD.size > size:
        return False
    key_size, value_size = format.RECORD_HEAD.unpack_from(buf, offset)
    return (key_size >= 0 and value_size >= format.DELETED
            and format.torn_copy(buf, offset, key_size, value_size, size))


def _leftover(buf: format.ByteSource, end: int, size: int,
              base: int = 0) -> Optional[Leftover]:
    """The :class:`Leftover` after the data's *end*, or None if no valid record is
    left there (a torn copy, pad, zeros); *buf* starts at offset *base* of the file."""
    stop = format.content_end(buf, end, size)
    # starts_before, not an end at *stop*: a valid record whose checksum ends in 0xFF
    # bytes would be cut short.
    first = format.find_record(buf, end + 1, size, starts_before=stop)
    return None if first == -1 else Leftover(base + end, base + stop, base + first)


def _release(buf: format.ByteSource, released: int, upto: int) -> int:
    """Drop the pages of ``buf[released:upto]`` from this process (not from the page
    cache: reading them again costs a minor fault); return the new *released*."""
    upto -= upto % mmap.PAGESIZE
    if upto > released and _DONTNEED is not None and hasattr(buf, 'madvise'):
        try:
            buf.madvise(_DONTNEED, released, upto - released)
        except OSError:  # only memory accounting: never a reason to fail an open
            return released
        return upto
    return released


def _settle_last(buf: format.ByteSource, record: Optional[_Record], index: format.Index,
                 start: int, size: int) -> int:
    """Apply the last whole *record*; return the logical end of the data.

    Its checksum decides only when pad follows it: then a writer was killed in the
    middle of copying it (a live writer always leaves pad after its last record),
    so it never was acknowledged and is dropped.  A bad last record of a cleanly
    closed file is damage like any other: kept, and reported by a verified read.
    A head followed by nothing but pad is such a copy too, whatever the checksum
    says (see :func:`semidbm.format.torn_copy`).
    """
    if record is not None and format.torn_copy(buf, record[0], len(record[1]), record[2],
                                               size):
        return record[0]
    return _apply(index, record, start)


def _search_from(buf: format.ByteSource, last: Optional[_Record], end: int) -> int:
    """Where valid records after damage are looked for: after the data's *end*, or,
    when the *last* record applied fails its checksum, inside it.  A record that
    lost a byte claims the first byte of the next one, which a search after it would
    never find (found by fuzzing: a lost tombstone brought its key back)."""
    if last is None or last[0] >= end:
        return end
    offset, key, value_size = last
    return end if format.checksum_ok(buf, offset, len(key), value_size) else offset


def _refuse_broken_chain(buf: format.ByteSource, search: int, size: int, data_path: str,
                         db_path: str) -> None:
    """A torn tail is cut by the next writable open; valid records after damage must
    never be: refuse to open instead, and say how to recover them."""
    leftover = _leftover(buf, search, size)
    if leftover is not None:
        raise DBMLoadError(
            f'{data_path}: damaged record at offset {leftover.cut}; valid records follow at '
            f'offset {leftover.first}, so this is not a torn tail. Nothing was changed. '
            f'Recover them with: python -m semidbm repair {db_path}')
