"""The data file as a memory map that grows: reads are slices, appends are copies.

Why a map for writes: one ``write()`` system call per record costs about half of a put
(the ``fill_*`` benchmarks).  Bytes copied into a shared file mapping are in the
operating system's page cache the moment the copy ends, so a killed process loses
nothing that was acknowledged, with no system call per record.  To have somewhere to
copy to, the file is grown ahead of the logical end by writing :data:`format.PAD_BYTE`
blocks with ``os.write`` (real blocks, so a full disk is an ``ENOSPC`` here and never a
``SIGBUS`` later); ``close()`` cuts the file back to its logical end.  A reader (ours or
semidbm 0.5.1) of a cleanly closed file never sees the pad.
"""
from __future__ import annotations

import errno
import mmap
import os
from typing import Optional

from semidbm import format, layout
from semidbm.syncmark import SyncMark

#: Smallest and largest step by which a writable file grows (a quarter of its size
#: in between): small databases stay small, big ones grow a few times per GiB.
MIN_GROWTH = 1 << 16
MAX_GROWTH = 1 << 24
#: A pad block of this size is kept around rather than made anew at each growth.
_PAD = format.PAD_BYTE * MIN_GROWTH


class DataFile:
    """An open data file: ``end`` is where the next record goes.

    :param fd: an open descriptor, owned from now on (closed by :meth:`close`).
    :param end: the logical end (everything after it is pad or a torn tail).
    :param scanned: a read-only map of the whole file, made to scan it: a read-only
        DataFile keeps it rather than map the file twice (required when read-only).
    :ivar mark: the :class:`~semidbm.syncmark.SyncMark` that :meth:`sync` moves on
        (writable only; owned, closed by :meth:`close`).
    """

    def __init__(self, path: str, fd: int, end: int, writable: bool,
                 scanned: Optional[mmap.mmap] = None) -> None:
        self.path = path
        self.fd = fd
        self.end = end
        self.writable = writable
        self.mark: Optional[SyncMark] = None
        # The end at the last sync: no second one for nothing.
        self._synced_end: Optional[int] = None
        #: For a reader: whether bytes after its end may hold blocks a power cut lost
        #: (semidbm.loading), until a writer syncs in this boot of the machine.
        self.lost_blocks = False
        if writable:
            # A torn tail left by a crash is cut before anything is appended after it.
            # Pad comes with the first append: an open that only reads writes nothing.
            os.ftruncate(fd, end)
            self.size = end
            self.map = self._map()
        elif scanned is None:
            raise TypeError('a read-only DataFile needs the map it was scanned with')
        elif len(scanned) > end:
            # Reads go no further than the end of whole records, which no writer
            # cuts: a map over its pad, which it cuts at close, could be read past
            # the end of the file (SIGBUS).
            scanned.close()
            self.size, self.map = end, mmap.mmap(fd, end, access=mmap.ACCESS_READ)
        else:
            self.size, self.map = len(scanned), scanned

    def _map(self) -> mmap.mmap:
        access = mmap.ACCESS_WRITE if self.writable else mmap.ACCESS_READ
        return mmap.mmap(self.fd, self.size, access=access)

    def _grow(self, needed: int) -> None:
        """Make the file at least ``end + needed`` bytes long, padding what is new."""
        growth = min(MAX_GROWTH, max(MIN_GROWTH, self.end // 4))
        target = self.end + needed + growth
        while self.size < target:
            chunk = min(len(_PAD), target - self.size)
            self.size += os.pwrite(self.fd, _PAD[:chunk], self.size)

    def append(self, blob: bytes) -> int:
        """Copy *blob*, one record, to the logical end; return the offset it starts at.

        Cost: one ``memcpy`` into the map; a ``write`` of pad and a new map when full.
        A copy torn by a kill is dropped at the next open, whatever part is missing.
        """
        # SemiDBM.__setitem__ has its own copy of these lines (one frame less a put).
        start = self.end
        stop = start + len(blob)
        if stop >= self.size:  # at least one pad byte stays after the last record
            self.grow_for(len(blob))
        self.map[start:stop] = blob
        self.end = stop
        return start

    def append_many(self, blob: bytes) -> int:
        """Write *blob*, whole records, at the logical end with as few system calls
        as the kernel allows; return the offset it starts at.

        ``pwrite`` fills the file from the front, so a kill in the middle leaves whole
        records and then a torn one.  One ``memcpy`` of them all makes no such promise
        (glibc's stores the first bytes of a long copy last), and whole records after a
        hole are damage to the loader (tests/test_crash.py).
        """
        # pwritev of the records unjoined measured no faster (update_batch benchmark).
        start = self.end
        length = len(blob)
        if start + length >= self.size:
            self.grow_for(length)
        layout.write_all(self.fd, blob, start)
        self.end = start + length
        return start

    def grow_for(self, needed: int) -> None:
        """Grow the file and its map so that *needed* more bytes fit before the pad's
        last byte.

        :raises OSError: if the disk is full (``ENOSPC``) or the map cannot grow; the
            file and the map stay readable, as they were.
        """
        # The old map stays until the new one replaces it (never None meanwhile:
        # tests/test_threads); then it is closed (see replace_map).
        try:
            self._grow(needed)
        finally:
            # Even after a failed growth (a full disk), map what there is: the
            # database stays readable and a later append may find space.
            try:
                self.replace_map(self._map())
            except OSError:  # no memory: the old map stays, and so must its size
                self.size = len(self.map)
                raise
        if self.end + needed >= self.size:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)

    def replace_map(self, new: mmap.mmap) -> None:
        """Read and write through *new* from now on, and close the map it replaces.

        A read in another thread that took the old map just before gets a
        ``ValueError`` from it and reads again (``SemiDBM.__getitem__``).  The old
        map was once dropped for such readers, to be unmapped when the last let go:
        on PyPy, with no reference counting, that was at the garbage collector's
        next run, after close(), and each such map held a descriptor of the file.
        """
        old, self.map = self.map, new
        old.close()

    def truncate_pad(self) -> None:
        """Cut everything past the logical end (the pad, or a torn tail) from the file."""
        os.ftruncate(self.fd, self.end)
        self.size = self.end

    def sync(self) -> None:
        """Make everything appended so far durable: ``msync`` and ``fdatasync``; then the
        sync mark (:attr:`mark`, which a writable file has once opened) says so."""
        if self.writable and self.end != self._synced_end:
            assert self.mark is not None, 'a writable file has its mark once opened'
            # msync of the pages written since the last sync only: of the whole map,
            # it walks every page of it, a cost that grows with the file (sync_each
            # benchmark).  fdatasync, not fsync: the file's times need not be durable,
            # and an append inside the pad changes nothing else (its size is set when
            # the pad is written, and fdatasync makes a new size durable too).
            start = (self._synced_end or 0) // mmap.ALLOCATIONGRANULARITY * \
                mmap.ALLOCATIONGRANULARITY
            self.map.flush(start, self.end - start)
            layout.fdatasync(self.fd)
            self.mark.record(self.map, self.end)
            self._synced_end = self.end

    def inode(self) -> int:
        """The file's inode number (which an index snapshot is tied to)."""
        return os.fstat(self.fd).st_ino

    def detach(self) -> None:
        """Close the map and the descriptor of a file that compaction (or a refresh)
        replaced; a read racing this reads again, as when a map is replaced
        (:meth:`replace_map`)."""
        self.map.close()
        os.close(self.fd)

    def close(self) -> None:
        """Unmap, cut the pad off (writable only), and close the descriptors."""
        try:
            if self.map is not None:
                self.map.close()
                # Typed as always there, for the reads: one racing this close gets
                # a TypeError from None, which it expects (SemiDBM.__getitem__).
                self.map = None  # type: ignore[assignment]
            if self.writable:
                self.truncate_pad()
        finally:
            os.close(self.fd)
            if self.mark is not None:
                self.mark.close()

