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
import mmap
import os
import shutil
import time

from semidbm import format, lock, snapshot
from semidbm.compaction import SUFFIX, fsync_directory, write_all
from semidbm.db import DATA_NAME
from semidbm.exceptions import error


class Damage:
    """A stretch ``[start, stop)`` of the file that is not a whole, verified record.

    :ivar key: the key of the record found at *start* whose checksum failed, or
        ``None`` when no record could even be parsed there.
    """

    def __init__(self, start, stop, key, reason):
        self.start, self.stop, self.key, self.reason = start, stop, key, reason

    def __repr__(self):
        return f'<Damage {self.start}-{self.stop} key={self.key!r}: {self.reason}>'


class Report:
    """What a walk over a data file found.

    :ivar records: the count of whole records (puts and tombstones) that verify.
    :ivar damage: a list of :class:`Damage`, in file order.
    :ivar pad: bytes of preallocated pad at the end (left by a writer that did not
        close the database; harmless, cut at the next writable open).
    """

    def __init__(self, filename, size):
        self.filename = filename
        self.size = size
        self.version = None
        self.records = 0
        self.damage = []
        self.pad = 0

    @property
    def ok(self):
        return not self.damage


def walk(buf, size, report, progress=None):
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


def _skip_damage(buf, offset, size, key, value_size, report):
    """Record the damage at *offset*; return where the next good record starts."""
    content_end = format.content_end(buf, offset, size)
    following = -1
    if key is not None:
        # The size fields parsed: the damage may be inside this record's body alone.
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


def check(path, progress=None, lock_timeout=None):
    """Verify every record of the database at *path*; return a :class:`Report`.

    Holds a shared lock while it reads (see :mod:`semidbm.lock`).

    :raises error: if there is no data file, or a writer holds the lock.
    """
    filename = os.path.join(os.fsdecode(path), DATA_NAME)
    held = _lock(path, False, lock_timeout)
    try:
        with mapped(filename) as (buf, size):
            report = Report(filename, size)
            for _ in walk(buf, size, report, progress):
                pass
    finally:
        if held is not None:
            held.release()
    return report


def repair(path, progress=None, lock_timeout=None):
    """Rewrite the data file of *path* with every record that verifies.

    The original is kept as ``data.corrupt-<timestamp>`` (returned, with the
    :class:`Report`); a file with no damage is left alone (``None`` is returned for
    the name).  Holds the exclusive lock throughout.

    :raises error: if there is no data file, a lock is held elsewhere, or the file
        has no semidbm header and no record verifies (it is not ours: unchanged).
    """
    path = os.fsdecode(path)
    filename = os.path.join(path, DATA_NAME)
    held = _lock(path, True, lock_timeout)
    try:
        temp = os.path.join(path, DATA_NAME + SUFFIX)
        with mapped(filename) as (buf, size):
            report = Report(filename, size)
            records = list(walk(buf, size, report, progress))
            if report.ok:
                return report, None
            if report.version is None and not records:
                raise error(f'{filename}: not a semidbm data file and no record in it '
                            f'verifies; nothing was changed')
            _write_records(temp, buf, records, os.stat(filename).st_mode & 0o777)
        # A crash before the replace leaves the original whole (and the temp file,
        # removed by the next writable open); after it, the new file, fsynced.  The
        # original is linked (or copied) to its new name first, so no step leaves
        # ``data`` missing or its old bytes without a name.
        kept = _keep_original(path, filename)
        os.replace(temp, filename)
        fsync_directory(path)
        # It described the old file (another inode, so it would be ignored anyway).
        snapshot.remove(os.path.join(path, snapshot.NAME))
        return report, kept
    finally:
        if held is not None:
            held.release()


def _lock(path, exclusive, timeout):
    path = os.fsdecode(path)
    filename = os.path.join(path, DATA_NAME)
    if not os.path.isfile(filename):
        raise error(f'{path}: no semidbm database here (no file {filename!r})')
    return lock.acquire(path, exclusive, timeout=timeout)


class mapped:
    """``with mapped(filename) as (buf, size)``: the file read-only, mapped."""

    def __init__(self, filename):
        self.filename = filename

    def __enter__(self):
        try:
            self.fd = os.open(self.filename, os.O_RDONLY | getattr(os, 'O_BINARY', 0))
        except OSError as exc:
            raise error(exc.errno, f'cannot read the data file ({exc.strerror})',
                        self.filename) from exc
        size = os.fstat(self.fd).st_size
        # An empty file cannot be mapped; it is all damage anyway.
        self.map = mmap.mmap(self.fd, size, access=mmap.ACCESS_READ) if size else None
        return (self.map if size else b''), size

    def __exit__(self, *exc_info):
        if self.map is not None:
            self.map.close()
        os.close(self.fd)


def _write_records(temp, buf, records, mode):
    """Write a header and the *records* (``(offset, length)`` in *buf*); fsync."""
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, 'O_BINARY', 0),
                 mode)
    try:
        write_all(fd, format.HEADER_BYTES)
        for offset, length in records:
            write_all(fd, buf[offset:offset + length])
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.remove(temp)
        raise
    os.close(fd)
    os.chmod(temp, mode)


def _keep_original(path, filename):
    """Give the original data file a second name, ``data.corrupt-<timestamp>``."""
    stamp = time.strftime('%Y%m%dT%H%M%S')
    kept, n = f'{filename}.corrupt-{stamp}', 1
    while os.path.exists(kept):
        n += 1
        kept = f'{filename}.corrupt-{stamp}-{n}'
    try:
        os.link(filename, kept)
    except OSError:  # no hard links here (FAT, some network file systems)
        shutil.copyfile(filename, kept)
        fd = os.open(kept, os.O_RDONLY | getattr(os, 'O_BINARY', 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_directory(path)
    return kept
