"""``dbm.gnu`` opened with its sync flag (``'s'``, as ``'cs'`` or ``'ns'``), for the
durable workloads: GDBM's own answer to "make every write durable".

What the flag does is GDBM's to decide, and it differs by release: with gdbm 1.23
(Debian 12), strace shows an ``msync`` where a write changes the buckets (52 in 2,000
random writes into a new database, 1 without the flag) and no ``fsync`` per write;
``sync()`` and ``close()`` are what call ``fsync``. docs/benchmarks.rst says what each
contender's durable write means.
"""
import dbm.gnu

FLAG = 's'


def open(path, flag='r'):
    return dbm.gnu.open(path, flag if flag == 'r' else flag + FLAG)


def describe():
    return f'dbm.gnu with flag {FLAG!r} ({dbm.gnu.__file__})'
