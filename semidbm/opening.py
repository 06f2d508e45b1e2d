"""Opening a database: the one sequence from a path and a flag to an index and a file.

1. The flag is parsed (here only).
2. The directory is created ('c', 'n') or must hold a database ('r', 'w').
3. The process lock is taken (:mod:`semidbm.lock`), before anything is changed:
   'n' empties the data file.
4. The data file is opened; a writable open removes what a crashed swap left
   (:meth:`semidbm.layout.Layout.remove_leftovers`) and gives a new, empty file
   its header.
5. The header is checked, and the file mapped.
6. The index: from a fresh snapshot (:mod:`semidbm.snapshot`) as far as it covers,
   then a scan of the records after it, with the rules for the tail
   (:mod:`semidbm.loading`).
7. The :class:`~semidbm.datafile.DataFile`: a read-only open keeps the map it
   scanned; a writable one cuts the torn tail, if any, and maps the file for writing.

Nothing is left open or locked when a step fails.
"""
import mmap
import os
from typing import NamedTuple, Optional, Tuple

from semidbm import format, layout, loading, snapshot
from semidbm import lock as process_lock
from semidbm.datafile import DataFile
from semidbm.exceptions import error

_FLAGS = {'r': os.O_RDONLY, 'w': os.O_RDWR, 'c': os.O_RDWR | os.O_CREAT,
          'n': os.O_RDWR | os.O_CREAT | os.O_TRUNC}
#: What to do about a missing database, as the library says it.
_MISSING_HINT = 'open it with flag "c" to create one'


class Opened(NamedTuple):
    """What an open gives the mapping."""

    files: layout.Layout
    index: dict
    datafile: DataFile
    #: The lock held for this open, or None (lock=False, or a reader on Windows).
    process_lock: Optional[process_lock.ProcessLock]
    #: The permission bits of the data file, for the files made for it later.
    mode: int
    #: The data file's format version, ``(major, minor)``.
    version: Tuple[int, int]
    #: How far the index snapshot on disk covers the data file, or None if it was
    #: not used (none, or not valid for this file).
    snapshot_end: Optional[int]


def check_flag(flag):
    """:raises ValueError: unless *flag* is one of 'r', 'w', 'c', 'n'."""
    if flag not in _FLAGS:
        raise ValueError(f"flag must be 'r', 'w', 'c' or 'n', not {flag!r}")


def open_database(path, flag, mode, *, lock, lock_timeout):
    """Open the database in directory *path* as :func:`semidbm.open` says.

    :raises ValueError: for a bad *flag*.
    :raises error: if the database is missing ('r', 'w'), locked elsewhere, or cannot
        be opened.
    :raises DBMLoadError: if the data file is not ours, or damaged (not a torn tail).
    """
    check_flag(flag)
    files = layout.Layout(path)
    if flag in 'cn':
        layout.make_directory(files.directory, mode)
    else:
        files.require(_MISSING_HINT)
    writable = flag != 'r'
    held = (process_lock.acquire(files, writable, mode, lock_timeout) if lock
            else None)
    try:
        return _open_data(files, flag, mode)._replace(process_lock=held)
    except BaseException:
        if held is not None:
            held.release()
        raise


def _open_data(files, flag, mode):
    try:
        if flag == 'n':
            snapshot.discard(files)
        fd = layout.open_file(files.data, _FLAGS[flag], mode)
    except OSError as exc:
        raise error(exc.errno, f'cannot open the database: {exc.strerror}',
                    exc.filename or files.data) from exc
    try:
        return _load(files, fd, writable=flag != 'r')
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError) and not isinstance(exc, error):
            # Writing the header of a new file, mapping it: a full disk, no memory.
            raise error(exc.errno, f'cannot load the database: {exc.strerror}',
                        files.data) from exc
        raise


def _load(files, fd, writable):
    """Steps 4 to 7 for the data file open at *fd*."""
    if writable:
        files.remove_leftovers()
    stat = os.fstat(fd)
    size = stat.st_size
    if size == 0 and writable:
        layout.write_all(fd, format.HEADER_BYTES)
        size = format.HEADER.size
    # An empty file cannot be mapped: its header is checked (and refused) unmapped.
    version = loading.check_header(os.pread(fd, format.HEADER.size, 0), files.data)
    scanned = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    try:
        loaded = snapshot.load(files.snapshot, scanned, size, stat.st_ino)
        index, snapshot_end = loaded or ({}, None)
        index, end = loading.scan_into(index, scanned, snapshot_end or format.HEADER.size,
                                       size, files.data, files.directory)
    except BaseException:
        scanned.close()
        raise
    if writable:
        scanned.close()
        datafile = DataFile(files.data, fd, end, writable=True)
    else:
        datafile = DataFile(files.data, fd, end, writable=False, scanned=scanned)
    return Opened(files, index, datafile, None, stat.st_mode & layout.PERMISSIONS, version, snapshot_end)
