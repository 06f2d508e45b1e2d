"""semidbm: a pure-Python, append-only key/value store with the dbm interface.

>>> import semidbm, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), 'example.db')
>>> with semidbm.open(path, 'c') as db:
...     db[b'key'] = b'value'
...     db['text'] = 'stored as UTF-8'
>>> with semidbm.open(path, 'r') as db:
...     db[b'key'], db[b'text']
(b'value', b'stored as UTF-8')
"""
from __future__ import annotations

from typing import Optional

from semidbm import db, layout, opening
from semidbm._version import __version__
from semidbm.db import SemiDBM
from semidbm.exceptions import (DBMChecksumError, DBMError, DBMLoadError, DBMNotFoundError,
                                RecoveryWarning, error)

__all__ = ['open', 'SemiDBM', 'error', 'DBMError', 'DBMLoadError', 'DBMChecksumError',
           'DBMNotFoundError', 'RecoveryWarning',
           '__version__']


def open(filename: layout.AnyPath, flag: opening.Flag = 'r', mode: int = 0o666, *,
         verify_checksums: bool = False, lock: bool = True,
         lock_timeout: Optional[float] = None, cache_size: int = 16384,
         compact_at_close: Optional[float] = 0.5) -> SemiDBM:
    """Open the semidbm database in directory *filename* and return it.

    :param filename: the database directory (str, bytes or os.PathLike); the data
        lives in ``filename/data``.
    :param flag: 'r' read-only (default), 'w' read-write, 'c' read-write and create
        if missing, 'n' always a new, empty database.
    :param mode: permission bits (less the umask) of files created.
    :param verify_checksums: verify each value's checksum on every read.
    :param lock: lock the database against a second writer, in this process or
        another; readers open beside a writer and follow it with
        :meth:`SemiDBM.refresh` (see ``docs/sharing.rst``).  False takes no lock,
        for those who know.
    :param lock_timeout: seconds to wait for a lock held elsewhere (default: fail at
        once with :data:`error`, "locked by pid ...").
    :param cache_size: how many recently read values (of up to 1 KiB each) to keep in
        memory, so a key read again is a dict lookup; 0 keeps none.  The cache starts
        again empty whenever it is full, and sleeps while reads do not repeat (random
        reads over many more keys than it holds), so that it costs those nothing.
        Writes through this object keep it exact.
    :param compact_at_close: :meth:`SemiDBM.close` compacts the database first when
        at least this fraction of its file is dead bytes (overwritten values and
        deleted keys), once the file has grown by 16 MiB and by a quarter since it
        was opened or compacted, and a write since then replaced or deleted a key
        (then it costs the close a pass over the keys); None never does.  The default, 0.5, keeps the file
        under about twice its live size, at a cost of at most one more copy of each
        byte written.  A compaction that fails (a full disk) leaves the database as it
        was, with a :exc:`RuntimeWarning`, and the close goes on.
    :raises ValueError: for any other flag, a negative *cache_size*, or a
        *compact_at_close* that is not a fraction in (0, 1] or None.
    :raises error: if the database is missing ('r', 'w'), cannot be opened, or is
        locked by another process.
    :raises DBMLoadError: if the data file is not a semidbm file, or is damaged in a
        way that is not a torn tail.
    """
    return SemiDBM(filename, flag, mode, verify_checksums=verify_checksums, lock=lock,
                   lock_timeout=lock_timeout, cache_size=cache_size,
                   compact_at_close=compact_at_close)
