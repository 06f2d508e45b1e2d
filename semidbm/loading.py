"""Rebuilding the index at open: a scan of the records, and the rules for the tail.

The index maps each key to its entry (:func:`semidbm.format.entry`, inlined here:
the ``load`` benchmark is this loop).
"""
import mmap

from semidbm import format
from semidbm.exceptions import DBMLoadError

#: How much of the data file a scan reads before it lets the pages go.
WINDOW = 1 << 24
_DONTNEED = getattr(mmap, 'MADV_DONTNEED', None)  # not on Windows


def check_header(buf, data_path):
    """Return the format version, ``(major, minor)``, of the header at the start of *buf*.

    :raises DBMLoadError: naming *data_path*, if *buf* has not our header.
    """
    try:
        return format.check_header(buf, data_path)
    except ValueError as exc:
        raise DBMLoadError(str(exc)) from None


def scan_into(index, buf, start, size, data_path, db_path):
    """Add the records of ``buf[start:size]`` to *index*; return it and the data's end.

    Each record is applied one step late, so that the last one can be checked first
    (:func:`_settle_last`).  Checksums of the others are left to reads: a damaged
    record in the middle stays indexed, and no neighbour is lost.

    The scan goes a window of :data:`WINDOW` bytes at a time and gives each window's
    pages back to the page cache once it is scanned.  Without that, an open leaves
    the whole file counted in the process's memory (RSS): the ``peak_rss``
    benchmark, whose checks open a 160 MB database by scanning, measured it as the
    peak (611 MiB against 465 for the rest of the run).

    :raises DBMLoadError: if the chain of records breaks and valid records follow.
    """
    deleted = format.DELETED
    head = format.RECORD_HEAD.size
    shift = format.ENTRY_SHIFT
    pending = None
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
            break
        if pending is before:  # a record longer than the window, or damage
            whole = True
            continue
        offset, key, value_size = pending
        start = offset + format.record_size(len(key), value_size)
        released = _release(buf, released, start)
    end = _settle_last(buf, pending, index, start, size)
    _refuse_broken_chain(buf, end, size, data_path, db_path)
    return index, end


def _release(buf, released, upto):
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


def _settle_last(buf, record, index, start, size):
    """Apply the last whole *record*; return the logical end of the data.

    Its checksum decides only when pad follows it: then a writer was killed in the
    middle of copying it (a live writer always leaves pad after its last record),
    so it never was acknowledged and is dropped.  A bad last record of a cleanly
    closed file is damage like any other: kept, and reported by a verified read.
    A head followed by nothing but pad is such a copy too, whatever the checksum
    says (see :func:`semidbm.format.torn_copy`).
    """
    if record is None:
        return start
    offset, key, value_size = record
    if format.torn_copy(buf, offset, len(key), value_size, size):
        return offset
    end = offset + format.record_size(len(key), value_size)
    if value_size == format.DELETED:
        index.pop(key, None)
    else:
        index[key] = format.entry(offset + format.RECORD_HEAD.size + len(key), value_size)
    return end


def _refuse_broken_chain(buf, end, size, data_path, db_path):
    """A torn tail is cut by the next writable open; valid records after damage must
    never be: refuse to open instead, and say how to recover them."""
    content_end = format.content_end(buf, end, size)
    # Not find_record(..., content_end): a valid record whose checksum ends in 0xFF
    # bytes would be cut short and the chain taken for a torn tail.
    following = format.find_record(buf, end + 1, size, starts_before=content_end)
    while following != -1 and format.pad_made(buf, following):
        following = format.find_record(buf, following + 1, size,
                                       starts_before=content_end)
    if following != -1:
        raise DBMLoadError(
            f'{data_path}: damaged record at offset {end}; valid records follow at '
            f'offset {following}, so this is not a torn tail. Nothing was changed. '
            f'Recover them with: python -m semidbm repair {db_path}')
