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
   (:mod:`semidbm.loading`) that the sync mark (:mod:`semidbm.syncmark`) decides.
   Records that recovery after a crash cannot apply are reported with a
   :class:`~semidbm.exceptions.RecoveryWarning`, and a writable open keeps them in
   ``data.cut-TIMESTAMP``.
7. The :class:`~semidbm.datafile.DataFile`: a read-only open keeps the map it
   scanned; a writable one cuts the torn tail, if any, maps the file for writing,
   and opens the sync mark, making one (durably) where none matches.

Nothing is left open or locked when a step fails.
"""
from __future__ import annotations

import mmap
import os
import warnings
from typing import Literal, NamedTuple, Optional, Tuple

from semidbm import format, layout, loading, snapshot, syncmark
from semidbm import lock as process_lock
from semidbm.datafile import DataFile
from semidbm.exceptions import RecoveryWarning, error

#: How :func:`semidbm.open` opens a database (one of these exactly; no modifier
#: characters as ``dbm.gnu`` takes).
Flag = Literal['r', 'w', 'c', 'n']
_FLAGS = {'r': os.O_RDONLY, 'w': os.O_RDWR, 'c': os.O_RDWR | os.O_CREAT,
          'n': os.O_RDWR | os.O_CREAT}
#: What to do about a missing database, as the library says it (``error.hint``).
MISSING_HINT = 'open it with flag "c" to create one'


class Opened(NamedTuple):
    """What an open gives the mapping."""

    files: layout.Layout
    # The store's word for it, over tuple's index() method, which no one calls here.
    index: format.Index  # type: ignore[assignment]
    datafile: DataFile
    #: The writer's lock held for this open, or None (lock=False, or a reader).
    process_lock: Optional[process_lock.ProcessLock]
    #: The permission bits of the data file, for the files made for it later.
    mode: int
    #: The data file's format version, ``(major, minor)``.
    version: Tuple[int, int]
    #: How far the index snapshot on disk covers the data file, or None if it was
    #: not used (none, or not valid for this file).
    snapshot_end: Optional[int]
    #: What recovery could not apply, or None (:class:`semidbm.loading.Leftover`).
    leftover: Optional[loading.Leftover]


def check_flag(flag: str) -> None:
    """:raises ValueError: unless *flag* is one of 'r', 'w', 'c', 'n'."""
    if flag not in _FLAGS:
        raise ValueError(f"flag must be 'r', 'w', 'c' or 'n', not {flag!r}")


def open_database(path: layout.AnyPath, flag: Flag, mode: int, *, lock: bool,
                  lock_timeout: Optional[float]) -> Opened:
    """Open the database in directory *path* as :func:`semidbm.open` says.

    :raises ValueError: for a bad *flag*.
    :raises error: if the database is missing ('r', 'w'), locked elsewhere, or cannot
        be opened.
    :raises DBMLoadError: if the data file is not ours, or damaged (not a torn tail).
    """
    check_flag(flag)
    if lock_timeout is not None and (isinstance(lock_timeout, bool) or not isinstance(
            lock_timeout, (int, float)) or not lock_timeout >= 0):
        raise ValueError(f'lock_timeout must be a number of seconds >= 0 or None, not '
                         f'{lock_timeout!r}')
    files = layout.Layout(path)
    if flag in 'cn':
        layout.make_directory(files.directory, mode)
    else:
        files.require(MISSING_HINT)
    writable = flag != 'r'
    # A writer excludes other writers; a reader excludes no one (lock.py).
    held = (process_lock.acquire(files, True, mode, lock_timeout) if lock and writable
            else None)
    try:
        opened = _open_data(files, flag, mode)
        if lock and not writable:
            process_lock.share(opened.datafile.fd)
        return opened._replace(process_lock=held)
    except BaseException:
        if held is not None:
            held.release()
        raise


def _open_data(files: layout.Layout, flag: Flag, mode: int) -> Opened:
    try:
        if flag == 'n':
            _empty(files, mode)
        fd = layout.open_file(files.data, _FLAGS[flag], mode)
    except error:  # ours already: the file is not a data file ('n')
        raise
    except OSError as exc:
        raise error(exc.errno, f'cannot open the database: {exc.strerror}',
                    exc.filename or files.data) from exc
    try:
        return _load(files, fd, flag != 'r')
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError) and not isinstance(exc, error):
            # Writing the header of a new file, mapping it: a full disk, no memory.
            raise error(exc.errno, f'cannot load the database: {exc.strerror}',
                        files.data) from exc
        raise


def _empty(files: layout.Layout, mode: int) -> None:
    """Flag 'n': put a new, empty data file in place of the old one, if any.

    A new file, not the old one truncated: a reader in another process may have the
    old one mapped, and reading a map past the end of its file kills the reader
    (``SIGBUS``).  A file that is not a semidbm data file is refused, not replaced.
    """
    try:
        with open(files.data, 'rb') as f:
            header = f.read(format.HEADER.size)
            mode = os.fstat(f.fileno()).st_mode & layout.PERMISSIONS
    except FileNotFoundError:
        header = None  # made by the open, with *mode* less the umask
    if header:
        loading.check_header(header, files.data)
    snapshot.discard(files)
    if header is None:
        return
    layout.replace(files, files.data, mode,
                   lambda fd: layout.write_all(fd, format.HEADER_BYTES))


def _load(files: layout.Layout, fd: int, writable: bool) -> Opened:
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
    mode = stat.st_mode & layout.PERMISSIONS  # from now on, for every file made
    scanned, size = _map(fd, size)
    try:
        marked = syncmark.durable_end(files, scanned, size)
        lost_blocks = not (marked and marked.same_boot)
        index, covered = snapshot.load(files.snapshot, scanned, size, stat.st_ino) or ({}, None)
        # The snapshot was written after an fsync of all it covers: durable too.
        durable = None if marked is None else max(marked.end, covered or 0)
        # A reader reads past the durable end with pread: a writer may cut its pad.
        tail = None if writable or durable is None else os.pread(fd, size - durable, durable)
        end, leftover = loading.scan_into(index, scanned, covered or format.HEADER.size,
                                          size, durable, files.data, files.directory, tail,
                                          lost_blocks=lost_blocks)
        if leftover is not None:
            _keep(files, scanned, leftover, writable, mode)
    except BaseException:
        scanned.close()
        raise
    if writable:
        scanned.close()
        datafile = DataFile(files.data, fd, end, writable=True)
        try:
            _open_mark(files, datafile, marked is not None, mode)
        except BaseException:
            datafile.map.close()
            if datafile.mark is not None:
                datafile.mark.close()
            raise
    else:
        datafile = DataFile(files.data, fd, end, writable=False, scanned=scanned)
        datafile.lost_blocks = lost_blocks  # refresh() judges new bytes alike
    return Opened(files, index, datafile, None, mode, version, covered, leftover)


def _map(fd: int, size: int) -> Tuple[mmap.mmap, int]:
    """Map the file read-only; return the map and its size."""
    try:
        return mmap.mmap(fd, size, access=mmap.ACCESS_READ), size
    except ValueError:  # cut since its fstat: a writer closing beside this reader
        size = os.fstat(fd).st_size
        return mmap.mmap(fd, size, access=mmap.ACCESS_READ), size


def _open_mark(files: layout.Layout, datafile: DataFile, matched: bool, mode: int) -> None:
    if not matched:  # a new data file, or another program's: its bytes made durable
        os.fsync(datafile.fd)
    datafile.mark = syncmark.SyncMark.open(files, datafile.map, datafile.end, mode,
                                           matched)
    if not matched:  # and its name, if it is new
        layout.fsync_directory(files.directory)


def cut_detail(buf: format.ByteSource, cut: int) -> str:
    """The end of a kept file's name: ``-at-CUT-CRC``, the length of the data file
    after the cut and a checksum of its last 64 KiB."""
    return f'-at-{cut}-{format.probes(buf, cut)[1]:08x}'


def _keep(files: layout.Layout, buf: format.ByteSource, leftover: loading.Leftover,
          writable: bool, mode: int) -> None:
    """Report the records recovery could not apply; a writable open keeps them first
    (as a data file of their own: a header, then the bytes), as the data file is
    about to be cut."""
    stretch = (f'the {leftover.stop - leftover.cut} bytes from offset {leftover.cut} hold '
               f'records (the first at offset {leftover.first}) after one that was lost '
               f'or torn, and are not applied')
    if writable:
        # The name says where the data was cut and what it held there, so that a
        # repair applies the kept records only while nothing was written since.
        kept = files.kept_name(layout.KEPT_CUT, cut_detail(buf, leftover.cut))
        fd = layout.create(kept + layout.PARTIAL, mode)
        try:
            layout.write_all(fd, format.HEADER_BYTES)
            layout.write_all(fd, buf[leftover.cut:leftover.stop])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(kept + layout.PARTIAL, kept)
        layout.fsync_directory(files.directory)
        where = f'they are kept in {kept}'
    else:
        where = 'a writable open will keep them beside the data file'
    warnings.warn(f'{files.data}: recovered after a crash: {stretch}; {where}. To apply '
                  f'them anyway: python -m semidbm repair {files.directory}',
                  RecoveryWarning, stacklevel=7)  # the caller of semidbm.open()
