"""Process locks on a database: one writer at a time, and any number of readers
beside it.

On POSIX a writer holds an exclusive ``fcntl.flock`` on the database *directory*.
Not on the data file: compaction and repair put a new data file in place with
``os.replace``, and a lock on the old one would then guard nothing.  Not on a lock
file of its own: the directory is always there, so nothing is created for it and a
database stays one directory holding ``data``.  A flock belongs to one open file, so
two writable opens in the same process exclude each other too (``fcntl.lockf``
locks would not, and closing any descriptor of the file would drop them); the
kernel releases it when a process dies.  ``python -m semidbm check`` takes it shared,
to read the whole file while no writer changes it; repair takes it exclusive.

A reader takes no lock that a writer waits for: it holds a shared flock on the data
file it has open (:func:`share`), which excludes nothing and only lets
:func:`holders` count the readers.  Who holds what is read from ``/proc/locks``
where there is one (Linux).

Windows cannot open a directory, and ``msvcrt.locking`` has no shared mode: there a
writer creates ``PATH/lock`` and holds an exclusive lock on one byte of it, with its
pid at the start; a reader holds nothing.
"""
from __future__ import annotations

import os
import time
from typing import List, Optional, Tuple

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows; tests/test_lock.py emulates it)
    # mypy checks this module for the platform it runs on: on POSIX, where fcntl is
    # a module, the branches for None are unreachable and left unchecked.
    fcntl = None  # type: ignore[assignment]
    import msvcrt

from semidbm import layout
from semidbm.exceptions import error

#: The byte ``msvcrt.locking`` locks: past the pid, which stays readable (a
#: Windows lock also stops reads of the bytes it covers).
_WINDOWS_LOCK_OFFSET = 1 << 20
_POLL_SECONDS = (0.005, 0.2)
#: How to wait for a lock held elsewhere, as the library says it (``error.hint``).
WAIT_HINT = 'lock_timeout=SECONDS'
#: What to do where no lock can be taken, as the library says it (``error.hint``).
NO_LOCK_HINT = 'pass lock=False to open it without a lock'


class ProcessLock:
    """A held lock; :meth:`release` lets go of it (a second call does nothing)."""

    def __init__(self, fd: int) -> None:
        self.fd: Optional[int] = fd

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            if fcntl is None:
                os.ftruncate(fd, 0)  # a pid in the file always names a live holder
                os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        finally:
            os.close(fd)  # releases a flock


def acquire(files: layout.Layout, exclusive: bool, mode: int = 0o666,
            timeout: Optional[float] = None) -> Optional[ProcessLock]:
    """Lock the database of *files* (a :class:`~semidbm.layout.Layout`); return a
    :class:`ProcessLock`, or ``None``.

    ``None`` only on Windows, for a reader (see the module's docstring).

    :param exclusive: True for a writer (and repair), False for a check, which
        excludes writers only while it reads.
    :param mode: permission bits of a new lock file (Windows).
    :param timeout: seconds to wait for a lock held elsewhere; ``None`` or 0 fail
        at once.
    :raises error: when the lock is held elsewhere, naming the holder's pid if known.
    """
    directory = files.directory
    if fcntl is None:
        return _acquire_windows(files, exclusive, mode, timeout)
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    except OSError as exc:
        raise error(exc.errno, f'cannot open the database directory to lock it '
                    f'({exc.strerror})', directory) from exc
    try:
        _wait(fd, exclusive, directory, timeout)
    except BaseException:
        os.close(fd)
        raise
    return ProcessLock(fd)


def share(fd: int) -> None:
    """Mark the data file open at *fd* as read by this process: a shared flock, which
    no one waits for, released when *fd* is closed.  Where it cannot be taken (a
    network file system, Windows) the reader is only not counted."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        pass


def holders(files: layout.Layout) -> Tuple[List[str], List[str]]:
    """Return ``(writers, readers)``: the pids that have the database of *files* open
    for writing, and those that read its current data file ([] where the platform
    cannot tell)."""
    if fcntl is None:
        return [], []
    try:
        writers, _ = _flock_holders(os.stat(files.directory))
        _, readers = _flock_holders(os.stat(files.data))
    except OSError:
        return [], []
    return sorted(set(writers), key=int), sorted(set(readers), key=int)


def _wait(fd: int, exclusive: bool, directory: str, timeout: Optional[float]) -> None:
    """Take the lock on *fd*, polling until *timeout*; raise :data:`error` if held."""
    deadline = time.monotonic() + (timeout or 0)
    pause = _POLL_SECONDS[0]
    while not _try_lock(fd, exclusive, directory):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            waited = f' (waited {timeout:g} s)' if timeout else ''
            held = error(f'{directory}: {_holder(fd, exclusive)}{waited}; close it '
                         f'there, or wait for it: {WAIT_HINT}')
            held.hint = WAIT_HINT
            raise held
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _POLL_SECONDS[1])


def _try_lock(fd: int, exclusive: bool, directory: str) -> bool:
    try:
        if fcntl is None:
            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                        | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    except OSError as exc:
        if fcntl is None:  # msvcrt reports a held lock as EDEADLOCK
            return False
        refused = error(exc.errno, f'cannot lock the database ({exc.strerror}; some '
                        f'network file systems cannot); {NO_LOCK_HINT}', directory)
        refused.hint = NO_LOCK_HINT
        raise refused from exc
    return True


def _holder(fd: int, exclusive: bool) -> str:
    """Describe who holds the lock that *fd* could not get."""
    if fcntl is None:
        return _windows_holder(fd)
    writers, checkers = _flock_holders(os.fstat(fd))  # on the directory: see above
    if writers:
        return f'the database is locked by {_pids(writers)}, which has it open for writing'
    if checkers and exclusive:
        return f'the database is being checked by {_pids(checkers)}'
    if exclusive:
        return 'the database is open in another process'
    return 'the database is open for writing in another process'


def _pids(pids: List[str]) -> str:
    unique = sorted(set(pids), key=int)
    named = [pid + (' (this process)' if pid == str(os.getpid()) else '')
             for pid in unique]
    return ('pid ' if len(named) == 1 else 'pids ') + ', '.join(named)


def _flock_holders(st: os.stat_result,
                   table: str = '/proc/locks') -> Tuple[List[str], List[str]]:
    """Return the pids holding a write flock and a read flock on the file *st* is of.

    From Linux's ``/proc/locks`` (``1: FLOCK ADVISORY WRITE 1234 fe:00:5678 0 EOF``;
    a waiting lock has a ``->`` field); two empty lists where there is none.
    """
    ident = f'{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}'
    writers: List[str] = []
    readers: List[str] = []
    try:
        with open(table, encoding='ascii', errors='replace') as f:
            lines = f.read().splitlines()
    except OSError:
        return writers, readers
    for fields in map(str.split, lines):
        if len(fields) >= 6 and fields[1] == 'FLOCK' and fields[5] == ident:
            if fields[4] != '0':  # 0: a pid outside this pid namespace
                (writers if fields[3] == 'WRITE' else readers).append(fields[4])
    return writers, readers


def _acquire_windows(files: layout.Layout, exclusive: bool, mode: int,
                     timeout: Optional[float]) -> Optional[ProcessLock]:
    directory = files.directory
    flags = os.O_RDWR | os.O_CREAT if exclusive else os.O_RDONLY
    try:
        fd = layout.open_file(files.lock, flags, mode)
    except FileNotFoundError:
        if exclusive:
            raise error(f'{directory}: no such database directory') from None
        return None  # no writer ever locked it
    try:
        _wait(fd, True, directory, timeout)
        if not exclusive:  # check: no writer now
            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            # Windows-only names, which mypy on POSIX does not know (see the import).
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
            os.close(fd)
            return None
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()}\n'.encode('ascii'))
    except BaseException:
        os.close(fd)
        raise
    return ProcessLock(fd)


def _windows_holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    pid = os.read(fd, 32).strip().decode('ascii', 'replace')
    if pid.isdigit():
        return f'the database is locked by pid {pid}, which has it open for writing'
    return 'the database is open for writing in another process'
