"""Check a data file record by record, and recover the good records of a damaged one.

Both walk the file with :mod:`semidbm.format`'s parser (``scan``, ``checksum_ok``,
``find_record``): every record's checksum is verified, and after damage the walk
resumes at the next record that verifies.  They are the library behind
``python -m semidbm check`` and ``repair``.

>>> import semidbm, semidbm.repair, os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), 'example.db')
>>> with semidbm.open(path, 'c') as db:
...     db[b'key'] = b'value'
>>> report = semidbm.repair.check(path)
>>> report.records, report.damage
(1, [])
"""
from __future__ import annotations

import mmap
import os
import shutil
from typing import Callable, Iterator, List, Optional, Tuple

from semidbm import format, layout, loading, lock, opening, snapshot, syncmark
from semidbm.db import SemiDBM
from semidbm.exceptions import error

#: Called as ``progress(offset, size)`` as a walk goes through the file.
Progress = Callable[[int, int], object]


class Damage:
    """A stretch ``[start, stop)`` of the file that is not a whole, verified record.

    :ivar key: the key of the record found at *start* whose checksum failed, or
        ``None`` when no record could even be parsed there.
    """

    def __init__(self, start: int, stop: int, key: Optional[bytes], reason: str) -> None:
        self.start, self.stop, self.key, self.reason = start, stop, key, reason

    def __repr__(self) -> str:
        return f'<Damage {self.start}-{self.stop} key={self.key!r}: {self.reason}>'


class Report:
    """What a walk over a data file found.

    :ivar records: the count of whole records (puts and tombstones) that verify.
    :ivar damage: a list of :class:`Damage`, in file order.
    :ivar pad: bytes of preallocated pad at the end (left by a writer that did not
        close the database; harmless, cut at the next writable open).
    :ivar durable_end: where the part of the file known to be durable ends (the sync
        mark), or None; damage is looked for only before it.
    :ivar unsynced: ``(start, stop)`` of the bytes after the durable end that the
        next open will cut: writes a crash tore before they were synced, recoverable
        (not damage); or None.
    :ivar leftover: in those, records after a lost one (a
        :class:`semidbm.loading.Leftover`) that the next writable open keeps aside;
        or None.
    :ivar kept: files of records a recovery kept aside (``data.cut-TIMESTAMP``),
        which :func:`repair` applies.
    :ivar applied: ``(file, records)`` for each kept file :func:`repair` applied.
    :ivar not_applied: the kept files it did not apply: the database was written to
        since they were kept.
    """

    def __init__(self, filename: str, size: int) -> None:
        self.filename = filename
        self.size = size
        self.version: Optional[Tuple[int, int]] = None
        self.records = 0
        self.damage: List[Damage] = []
        self.pad = 0
        self.durable_end: Optional[int] = None
        self.unsynced: Optional[Tuple[int, int]] = None
        self.leftover: Optional[loading.Leftover] = None
        self.kept: List[str] = []
        self.applied: List[Tuple[str, int]] = []
        self.not_applied: List[str] = []

    @property
    def ok(self) -> bool:
        return not self.damage


def walk(buf: format.ByteSource, size: int, report: Report,
         progress: Optional[Progress] = None) -> Iterator[Tuple[int, int]]:
    """Yield ``(offset, length)`` of each verified record in ``buf[:size]``.

    Damage and pad go into *report* as they are met.  Cost: one pass and one
    checksum a record; a damaged stretch is searched byte by byte.
    """
    try:
        report.version = format.check_header(buf, report.filename)
    except ValueError as exc:
        report.damage.append(Damage(0, min(size, format.HEADER.size), None, str(exc)))
    offset = format.HEADER.size
    while offset < size:
        key = value_size = None
        for start, key, value_size in format.scan(buf, offset, size):
            if (not format.checksum_ok(buf, start, len(key), value_size)
                    or format.torn_copy(buf, start, len(key), value_size, size)):
                break
            length = format.record_size(len(key), value_size)
            report.records += 1
            yield start, length
            offset = start + length
            key = None
            if progress is not None:
                progress(offset, size)
        if offset >= size:
            return
        if key is None and format.content_end(buf, offset, size) == offset:
            report.pad = size - offset
            return
        offset = _skip_damage(buf, offset, size, key, value_size, report)


def _skip_damage(buf: format.ByteSource, offset: int, size: int, key: Optional[bytes],
                 value_size: Optional[int], report: Report) -> int:
    """Record the damage at *offset*; return where the next good record starts."""
    content_end = format.content_end(buf, offset, size)
    following = -1
    if key is not None:
        # The size fields parsed: the damage may be inside this record's body alone.
        assert value_size is not None  # parsed with the key
        after = offset + format.record_size(len(key), value_size)
        if after >= content_end or format.valid_record_at(buf, after, size):
            following = after
        key = bytes(key)
    if following == -1:
        following = format.find_record(buf, offset + 1, content_end)
    if following == -1 or following >= content_end:
        torn = key is None or content_end < size
        reason = ('a torn tail (a write cut short by a crash)' if torn else
                  'a checksum mismatch in the last record')
        report.damage.append(Damage(offset, content_end, key, reason))
        report.pad = size - content_end
        return size
    reason = 'a checksum mismatch' if key is not None else 'bytes that are not a record'
    report.damage.append(Damage(offset, following, key, reason))
    return following


def check(path: layout.AnyPath, progress: Optional[Progress] = None,
          lock_timeout: Optional[float] = None) -> Report:
    """Verify every record of the database at *path*; return a :class:`Report`.

    Holds a shared lock while it reads (see :mod:`semidbm.lock`).

    :raises error: if there is no data file, or a writer holds the lock.
    """
    files = layout.Layout(path)
    with _locked(files, False, lock_timeout), mapped(files.data) as (buf, size):
        report = Report(files.data, size)
        marked = syncmark.durable_end(files, buf, size) if size else None
        for _ in walk(buf, size if marked is None else marked.end, report, progress):
            pass
        if marked is not None:
            _check_unsynced(buf, marked, size, report)
        report.kept = files.kept(layout.KEPT_CUT)
    return report


def _check_unsynced(buf: format.ByteSource, marked: syncmark.Durable, size: int,
                    report: Report) -> None:
    """What the next open makes of the bytes past the durable end, into *report*."""
    records, end, report.leftover = loading.unsynced(buf, marked.end, size,
                                                     not marked.same_boot)
    report.durable_end = marked.end
    report.records += records
    content_end = format.content_end(buf, end, size)
    report.pad = size - content_end
    if content_end > end:
        report.unsynced = (end, content_end)


def repair(path: layout.AnyPath, progress: Optional[Progress] = None,
           lock_timeout: Optional[float] = None,
           force: bool = False) -> Tuple[Report, Optional[str]]:
    """Rewrite the data file of *path* with every record that verifies, and apply the
    records that recoveries kept aside (``data.cut-*``, :attr:`Report.applied`).

    The original is kept as ``data.corrupt-<timestamp>`` (returned, with the
    :class:`Report`); a file with no damage is left alone (``None`` is returned for
    the name).  The new file has the original's permission bits.  Kept records are
    applied only while nothing was written to the database since they were kept
    (they would overwrite newer writes): otherwise they are left, named in
    :attr:`Report.not_applied`, unless *force*.  Holds the exclusive lock throughout.

    :raises error: if there is no data file, a lock is held elsewhere, or the file
        has no semidbm header and no record verifies (it is not ours: unchanged).
    """
    files = layout.Layout(path)
    with _locked(files, True, lock_timeout):
        report, kept = _repair_data(files, progress)
        for name in files.kept(layout.KEPT_CUT):
            if force or _unchanged_since(files, name):
                report.applied.append((name, _apply_kept(files, name)))
            else:
                report.not_applied.append(name)
    return report, kept


def _unchanged_since(files: layout.Layout, name: str) -> bool:
    """Tell whether the data file is as it was when *name* was kept (its name says)."""
    with mapped(files.data) as (buf, size):
        return name.endswith(opening.cut_detail(buf, size))


def _repair_data(files: layout.Layout,
                 progress: Optional[Progress]) -> Tuple[Report, Optional[str]]:
    with mapped(files.data) as (buf, size):
        report = Report(files.data, size)
        records = list(walk(buf, size, report, progress))
        if report.ok:
            return report, None
        if report.version is None and not records:
            raise error(f'{files.data}: not a semidbm data file and no record in it '
                        f'verifies; nothing was changed')
        # The original gets its second name first, so that no step leaves ``data``
        # missing or its old bytes without a name.
        kept = _keep_original(files)
        try:
            layout.replace(files, files.data, os.stat(files.data).st_mode
                           & layout.PERMISSIONS, lambda fd: _write_records(fd, buf, records))
        except BaseException:
            layout.remove(kept)  # the original is still ``data``
            raise
    # It described the old file (another inode, so it would be ignored anyway).
    snapshot.discard(files)
    return report, kept


def _apply_kept(files: layout.Layout, name: str) -> int:
    """Apply the verified records of the kept file *name* to the database, in order,
    then rename the file ``...applied``; return how many it held."""
    with mapped(name) as (buf, size):
        records = list(walk(buf, size, Report(name, size)))
        with SemiDBM(files.directory, 'w', lock=False) as db:  # the lock is held here
            for offset, length in records:
                key_size, value_size = format.RECORD_HEAD.unpack_from(buf, offset)
                start = offset + format.RECORD_HEAD.size
                key = bytes(buf[start:start + key_size])
                if value_size == format.DELETED:
                    db.pop(key, None)
                else:
                    db[key] = bytes(buf[start + key_size:start + key_size + value_size])
    os.replace(name, name + layout.APPLIED)
    layout.fsync_directory(files.directory)
    return len(records)


class _locked:
    """``with _locked(files, exclusive, timeout)``: the database's lock held."""

    def __init__(self, files: layout.Layout, exclusive: bool,
                 timeout: Optional[float]) -> None:
        files.require('there is nothing to check or repair')
        self.held = lock.acquire(files, exclusive, timeout=timeout)

    def __enter__(self) -> _locked:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.held is not None:
            self.held.release()


class mapped:
    """``with mapped(filename) as (buf, size)``: the file read-only, mapped."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def __enter__(self) -> Tuple[format.ByteSource, int]:
        try:
            self.fd = layout.open_file(self.filename, os.O_RDONLY)
        except OSError as exc:
            raise error(exc.errno, f'cannot read the data file ({exc.strerror})',
                        self.filename) from exc
        size = os.fstat(self.fd).st_size
        # An empty file cannot be mapped; it is all damage anyway.
        self.map = mmap.mmap(self.fd, size, access=mmap.ACCESS_READ) if size else None
        return (self.map if self.map is not None else b''), size

    def __exit__(self, *exc_info: object) -> None:
        if self.map is not None:
            self.map.close()
        os.close(self.fd)


def _write_records(fd: int, buf: format.ByteSource, records: List[Tuple[int, int]]) -> None:
    """Write a header and the *records* (``(offset, length)`` in *buf*) to *fd*."""
    layout.write_all(fd, format.HEADER_BYTES)
    for offset, length in records:
        layout.write_all(fd, buf[offset:offset + length])


def _keep_original(files: layout.Layout) -> str:
    """Give the original data file a second name, ``data.corrupt-<timestamp>``."""
    kept = files.kept_name(layout.KEPT_CORRUPT)
    try:
        os.link(files.data, kept)
    except OSError:  # no hard links here (FAT, some network file systems)
        shutil.copyfile(files.data, kept)
        fd = layout.open_file(kept, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    layout.fsync_directory(files.directory)
    return kept
