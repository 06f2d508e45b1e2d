"""A plain in-memory ``dict``: the ceiling no store can beat.

Databases live in this process only, keyed by path, so the benchmark can close and
reopen them between workloads; nothing is written to disk.
"""
import sys

PERSISTENT = False

_databases = {}


class DictDB(dict):
    """A dict with the dbm methods the benchmark calls; reads and writes are dict's own."""

    def sync(self):
        pass

    def close(self):
        pass


def open(path, flag='r'):
    if flag == 'n' or (flag == 'c' and path not in _databases):
        _databases[path] = DictDB()
    elif flag not in ('r', 'w', 'c'):
        raise ValueError(f'flag must be one of r, w, c, n, not {flag!r}')
    try:
        return _databases[path]
    except KeyError:
        raise FileNotFoundError(f'no dict database at {path!r} in this process') from None


def describe():
    return f'builtin dict (Python {sys.version.split()[0]})'
