"""Compaction: the live records copied to a new data file that replaces the old one.

The new file is made and swapped in by :func:`semidbm.layout.replace` (which says what a
crash at each step leaves behind).  Records are copied as bytes, never decoded and
encoded again.
"""
# Copied as bytes: decoding and encoding each record again measured slower on the
# ``compact`` benchmark.
from __future__ import annotations

import os
from typing import Callable, List, Tuple

from semidbm import format, layout
from semidbm.datafile import DataFile

_WRITE_CHUNK = 1 << 20
#: ``compact_at_close`` looks at a file only once it has grown by this much, and by a
#: quarter, since it was opened or compacted.
# The pass over the index that counts the live bytes is then paid for by the writes:
# 0.1 s a million keys, against 0.15 s for the 130,000 writes of 128 bytes that 16 MiB
# takes at least (the fill benchmarks).
DUE_GROWTH = 16 << 20


def due(index: format.Index, end: int, grown: int, share: float) -> bool:
    """Whether a file of *end* bytes that grew by *grown* since it was opened or
    compacted is to be compacted at close: it grew by :data:`DUE_GROWTH` and by a
    quarter, and at least *share* of it is dead bytes."""
    if grown < max(DUE_GROWTH, (end - grown) // 4):
        return False
    return end - format.live_bytes(index) >= share * end


def compact(files: layout.Layout, source: DataFile, index: format.Index, mode: int,
            installed: Callable[[format.Index, DataFile], None]) -> None:
    """Write the live records of *source* (a DataFile) per *index* to a new data file
    and put it in place of ``files.data``.

    The new file is open and mapped before it replaces the old one, so nothing can fail
    between the replace and the caller switching to it: ``installed(index, datafile)``
    is called with the new index and file right after the replace.

    :raises OSError: on a failure before the replace; the old file is then in place.
    :raises error: if the directory cannot be synced after the replace.
    """
    def fill(fd: int) -> Tuple[format.Index, DataFile]:
        new_index, end = _copy_live(fd, source, index)
        return new_index, DataFile(files.data, fd, end, writable=True)

    def synced(made: Tuple[format.Index, DataFile]) -> None:
        # The sync mark says what of the new file is durable before the file takes
        # the data file's name: a reader that opens it then, or an open after a power
        # cut, judges it with its mark.  The old file's mark stays in the other slot.
        compacted = made[1]
        assert source.mark is not None, 'a writable file has its mark once opened'
        source.mark.record(compacted.map, compacted.end)

    layout.replace(files, files.data, mode, fill, lambda made: installed(*made), synced)


def _copy_live(fd: int, source: DataFile, index: format.Index) -> Tuple[format.Index, int]:
    """Copy the live records from *source* (a DataFile) to *fd*; return index and end.

    Records that lie next to each other are copied as one run, and a run keeps its
    layout, so each index entry moves by the run's shift.  The entry arithmetic is
    :func:`semidbm.format.entry`'s, inlined.
    """
    # Runs, not records: after a fill and an overwrite the live records are one run
    # (the ``compact`` benchmark).
    head = format.RECORD_HEAD.size
    tail = format.CHECKSUM.size
    shift_bits, size_mask = format.ENTRY_SHIFT, format.ENTRY_SIZE_MASK
    writer = _RunWriter(fd, source)
    writer.add(0, format.HEADER.size)
    entries: List[int] = []
    run_start = run_stop = shift = 0
    for key, entry in index.items():
        value_start = entry >> shift_bits
        record_start = value_start - head - len(key)
        if record_start != run_stop:
            writer.add(run_start, run_stop)
            run_start = record_start
            shift = (writer.offset - run_start) << shift_bits
        run_stop = value_start + (entry & size_mask) + tail
        entries.append(entry + shift)
    writer.add(run_start, run_stop)
    writer.flush()
    return dict(zip(index, entries)), writer.offset


class _RunWriter:
    """Copies byte runs of *source* to *fd*: short ones gathered into one write,
    long ones copied file to file by the kernel (``copy_file_range``), so they
    never pass through this process's memory.
    """
    # copy_file_range keeps a compaction's peak memory down (the ``peak_rss`` benchmark).

    def __init__(self, fd: int, source: DataFile) -> None:
        self.fd = fd
        self.source = source
        self.offset = 0
        self.chunks: List[bytes] = []
        self.pending = 0

    def add(self, start: int, stop: int) -> None:
        self.offset += stop - start
        if stop - start >= _WRITE_CHUNK:
            self.flush()
            _copy_range(self.source, self.fd, start, stop)
            return
        self.chunks.append(self.source.map[start:stop])
        self.pending += stop - start
        if self.pending >= _WRITE_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.chunks:
            layout.write_all(self.fd, b''.join(self.chunks))
        self.chunks, self.pending = [], 0


def _copy_range(source: DataFile, fd: int, start: int, stop: int) -> None:
    copy = getattr(os, 'copy_file_range', None)  # Linux only
    while start < stop:
        count = min(stop - start, _WRITE_CHUNK * 64)
        copied = 0
        if copy is not None:
            try:
                copied = copy(source.fd, fd, count, start)
            except OSError:  # another file system, an old kernel: copy it ourselves
                copy = None
        if not copied:
            copied = os.write(fd, source.map[start:start + min(count, _WRITE_CHUNK)])
        start += copied
