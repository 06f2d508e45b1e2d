"""The files of a database directory: their names, how they are made, how one is replaced.

A database ``NAME`` is a directory holding:

- ``NAME/data`` -- the data file, the records (:mod:`semidbm.format`); the database;
- ``NAME/index`` -- the index snapshot (:mod:`semidbm.snapshot`), only an optimisation;
- ``NAME/synced`` -- the sync mark, how much of the data is durable (:mod:`semidbm.syncmark`);
- ``NAME/data.cut-TIMESTAMP`` -- records that recovery after a crash could not apply
  (:mod:`semidbm.loading`), kept for ``semidbm repair``;
- ``NAME/lock`` -- on Windows only, the writer's lock file (:mod:`semidbm.lock`);
- ``NAME/data.corrupt-TIMESTAMP`` -- an original kept by a repair (:mod:`semidbm.repair`).

A file made anew and swapped in is first written under a temporary name (``data.compact``,
``index.tmp``, ``synced.tmp``); a writable open removes what a crash left of those.

Permission bits: a new database's files get the *mode* given to :func:`semidbm.open`
(less the umask); every file made later for an existing database (a compacted or repaired
data file, the snapshot) gets those of its data file, so a private database stays private
whatever mode a later open passes.  (As in the stdlib's dbm modules, *mode* is used only
when the database is created.)
"""
from __future__ import annotations

import os
import time
import warnings
from typing import Callable, List, Optional, TypeVar, Union

from semidbm.exceptions import DBMNotFoundError, error

#: A path as ``os`` functions take it: what :func:`semidbm.open` accepts.
AnyPath = Union[str, bytes, os.PathLike[str], os.PathLike[bytes]]
_T = TypeVar('_T')

DATA = 'data'
SNAPSHOT = 'index'
SYNCED = 'synced'
LOCK = 'lock'
#: The name each swapped-in file is written under before the swap.
_TEMP_NAMES = {DATA: DATA + '.compact', SNAPSHOT: SNAPSHOT + '.tmp',
               SYNCED: SYNCED + '.tmp'}
#: The prefixes of the names of what a repair or a recovery keeps: never removed.
KEPT_CORRUPT, KEPT_CUT = 'corrupt', 'cut'
#: Added to the name of a kept file whose records a repair has applied, and of one
#: being written.
APPLIED, PARTIAL = '.applied', '.partial'
_BINARY = getattr(os, 'O_BINARY', 0)  # Windows: no newline translation
#: The bits of ``st_mode`` that are permissions.
PERMISSIONS = 0o777


class Layout:
    """The paths of the files of the database in *directory*.

    :ivar directory: the database directory, a str.
    :ivar data: the data file.
    :ivar snapshot: the index snapshot.
    :ivar synced: the sync mark.
    :ivar lock: the lock file (Windows).
    """

    def __init__(self, directory: AnyPath) -> None:
        self.directory = os.fsdecode(os.fspath(directory))
        self.data = os.path.join(self.directory, DATA)
        self.snapshot = os.path.join(self.directory, SNAPSHOT)
        self.synced = os.path.join(self.directory, SYNCED)
        self.lock = os.path.join(self.directory, LOCK)

    def temp(self, filename: str) -> str:
        """The temporary name under which the file *filename* is made anew."""
        return os.path.join(self.directory, _TEMP_NAMES[os.path.basename(filename)])

    def kept_name(self, kind: str, detail: str = '') -> str:
        """A new name for bytes kept aside: ``data.KIND-TIMESTAMP`` then *detail* (*kind*
        is :data:`KEPT_CORRUPT`, an original a repair replaced, or :data:`KEPT_CUT`,
        records a recovery could not apply)."""
        stamp = time.strftime('%Y%m%dT%H%M%S')
        kept, n = f'{self.data}.{kind}-{stamp}{detail}', 1
        while os.path.exists(kept):
            n += 1
            kept = f'{self.data}.{kind}-{stamp}-{n}{detail}'
        return kept

    def kept(self, kind: str) -> List[str]:
        """The names of what was kept aside as *kind*, oldest first."""
        prefix = f'{DATA}.{kind}-'
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        return sorted(os.path.join(self.directory, name) for name in names
                      if name.startswith(prefix)
                      and not name.endswith((APPLIED, PARTIAL)))

    def remove_leftovers(self) -> None:
        """Remove the temporary files that a crash in a swap left behind, and kept
        files a crash left half written (their bytes are still in the data file)."""
        for name in _TEMP_NAMES.values():
            remove(os.path.join(self.directory, name))
        for name in os.listdir(self.directory):
            if name.startswith(f'{DATA}.{KEPT_CUT}-') and name.endswith(PARTIAL):
                remove(os.path.join(self.directory, name))

    def require(self, hint: str) -> None:
        """Check that there is a database here.

        :param hint: what to do about a missing one, for the interface in use.
        :raises DBMNotFoundError: if there is no data file (also a FileNotFoundError).
        :raises error: if the data file cannot even be looked at (no permission).
        """
        if os.path.isfile(self.data):
            return
        try:  # isfile is False for a directory we may not enter, too: say which
            os.stat(self.data)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:
            raise error(exc.errno, f'cannot open the database: {exc.strerror}',
                        self.data) from exc
        foreign = foreign_database(self.directory)
        if foreign is not None:
            hint = (f'it looks like a {foreign} database; copy it into semidbm with: '
                    f'python -m semidbm migrate --from {foreign} {self.directory} '
                    f'NEW_PATH')
        missing = DBMNotFoundError(
            f'{self.directory}: no semidbm database here (no file {self.data!r}); {hint}')
        missing.hint = hint
        raise missing


#: The first bytes of the files of other dbm modules, for the hints of a failed open.
_FOREIGN_MAGIC = ((b'SQLite format 3\0', 'dbm.sqlite3'),
                  (b'\xce\x9a\x57\x13', 'dbm.gnu'), (b'\x13\x57\x9a\xce', 'dbm.gnu'),
                  (b'\xcd\x9a\x57\x13', 'dbm.gnu'), (b'\x13\x57\x9a\xcd', 'dbm.gnu'),
                  (b'\xcf\x9a\x57\x13', 'dbm.gnu'), (b'\x13\x57\x9a\xcf', 'dbm.gnu'))


def foreign_database(path: str) -> Optional[str]:
    """Name the dbm module whose database *path* looks like (``'dbm.dumb'`` for
    ``PATH.dat`` and ``PATH.dir`` beside it), or None."""
    if os.path.isfile(path + '.dat') and os.path.isfile(path + '.dir'):
        return 'dbm.dumb'
    try:
        with open(path, 'rb') as f:
            head = f.read(16)
    except OSError:
        return None
    return next((name for magic, name in _FOREIGN_MAGIC if head.startswith(magic)), None)


def make_directory(directory: str, mode: int) -> None:
    """Create the database *directory* if missing: *mode* plus search (x) bits where it
    gives read bits, so that its files can be reached by whom they are readable to.
    A new directory's name is made durable (its parent fsynced)."""
    if os.path.isdir(directory):
        return
    try:
        os.makedirs(directory, mode | (mode & 0o444) >> 2, exist_ok=True)
        fsync_directory(os.path.dirname(os.path.abspath(directory)))
    except OSError as exc:  # a file in the way, say
        foreign = foreign_database(directory)
        also = f' (it is a {foreign} database)' if foreign else ''
        raise error(exc.errno, f'cannot create the database directory{also}: '
                    f'{exc.strerror}', directory) from exc
    foreign = foreign_database(directory)
    if foreign is not None:
        warnings.warn(f'{directory}: a new, empty semidbm database is made beside a '
                      f'{foreign} database of the same name; to copy that one in: python '
                      f'-m semidbm migrate --from {foreign} {directory} NEW_PATH',
                      stacklevel=5)


def open_file(filename: str, flags: int, mode: int = 0o666) -> int:
    """``os.open`` in binary mode; a file it creates gets *mode* less the umask."""
    return os.open(filename, flags | _BINARY, mode)


def create(filename: str, mode: int) -> int:
    """Create (or empty) *filename* for writing with exactly the permission bits *mode*;
    return its descriptor."""
    fd = open_file(filename, os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)
    try:
        if hasattr(os, 'fchmod'):  # not on Windows, which has only the read-only bit
            os.fchmod(fd, mode)  # the umask was applied once already, to the original
    except BaseException:
        os.close(fd)
        remove(filename)  # made with other bits than it should have: not left behind
        raise
    return fd


def replace(layout: Layout, target: str, mode: int, fill: Callable[[int], _T],
            installed: Optional[Callable[[_T], object]] = None,
            synced: Optional[Callable[[_T], object]] = None) -> _T:
    """Make *target* anew: write it under its temporary name, fsync it, rename it over
    *target*, fsync the directory.  Return what ``fill(fd)`` returned.

    Each step, and what a crash right after it leaves: the temporary file written
    and synced -- the old *target*, whole (the temporary file is removed by the next
    writable open); renamed -- the new one, whole (it was synced first); the
    directory synced -- the same, and now the rename survives a power loss.

    :param fill: called with the new file's descriptor; writes it.  The descriptor
        is closed afterwards, unless *installed* is given.
    :param installed: called with fill's result right after the rename, before the
        directory is synced (so a failure there cannot leave the caller on the old,
        replaced file); it then owns the descriptor.  It must not fail.
    :param synced: called with fill's result once the new file is synced, before the
        rename (what must be durable before the file has its name).
    :raises OSError: on a failure up to the rename; *target* is then unchanged and
        the temporary file removed.
    :raises error: if the directory cannot be synced after the rename.
    """
    temp = layout.temp(target)
    fd = create(temp, mode)
    try:
        result = fill(fd)
        os.fsync(fd)
        if synced is not None:
            synced(result)
        os.replace(temp, target)
    except BaseException:
        os.close(fd)
        remove(temp)
        raise
    if installed is None:
        os.close(fd)
    else:
        installed(result)
    try:
        fsync_directory(layout.directory)
    except OSError as exc:
        raise error(exc.errno, f'{target} was replaced, but its directory could not be '
                    f'synced ({exc.strerror}): after a power loss the old file may come '
                    f'back', layout.directory) from exc
    return result


def fdatasync(fd: int) -> None:
    """Make the data of *fd* durable, and what is needed to read it back (its size),
    not its times: ``fdatasync``, or ``fsync`` where there is none (macOS, Windows)."""
    (os.fdatasync if hasattr(os, 'fdatasync') else os.fsync)(fd)


def fsync_directory(directory: str) -> None:
    """Make the names created or replaced in *directory* durable (POSIX; Windows
    cannot open a directory, and its file systems need no such step)."""
    if os.name == 'nt':
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(filename: str) -> None:
    """Remove *filename* if it is there."""
    try:
        os.remove(filename)
    except FileNotFoundError:
        pass


def write_all(fd: int, data: bytes, offset: Optional[int] = None) -> None:
    """Write all of *data* to *fd* -- at *offset* with ``pwrite``, else where the file
    position is -- front to back, however many calls it takes."""
    view = memoryview(data)
    while view:
        if offset is None:
            written = os.write(fd, view)
        else:
            written = os.pwrite(fd, view, offset)
            offset += written
        view = view[written:]
