"""LMDB (the ``lmdb`` package from PyPI, if installed) behind the dbm interface.

Writes use one write transaction per operation, as a dbm user gets, with ``sync=False``:
like semidbm, a write reaches the operating system before the call returns and ``sync()``
makes it durable. A database opened with 'r' reads from one snapshot transaction, the
cheapest way LMDB offers; ``update()`` is one transaction for all its pairs.

The ``lmdb`` package is the version constraints.txt pins, installed by the parent with
pip into a directory of its own per interpreter (``prepare``; it has a C part) and put
first on the child's ``sys.path`` (``configure``): a fresh machine's ``--docs`` gets it.
"""
import os
import shutil
import sys

from adapters import pipcache

NAME = 'lmdb'
lmdb = None  # the package, once configure() imported it


def directory(cache_tag):
    """Where the pinned lmdb is installed for the interpreter of *cache_tag*."""
    return os.path.join(pipcache.cache_root(), f'{NAME}-{pipcache.pinned(NAME)}-{cache_tag}')


def prepare(peer_dir, interpreter):
    """Install the pinned lmdb for *interpreter* unless it is there already.

    :raises ImportError: saying how to install it by hand, if pip cannot (the store is
        then not run, like a module that is not installed).
    """
    version = pipcache.pinned(NAME)
    target = directory(interpreter['cache_tag'])
    if pipcache.has_dist(target, NAME, version):
        return
    problem = pipcache.pip_install(interpreter['executable'], f'{NAME}=={version}', target)
    if problem or not pipcache.has_dist(target, NAME, version):
        raise ImportError(f'could not install {NAME}=={version} into {target}: '
                          f'{problem or "not there after pip ran"}; by hand: '
                          f"{interpreter['executable']} -m pip install --target {target} "
                          f'{NAME}=={version}')


def configure(peer_dir):
    """Import the pinned lmdb from this interpreter's directory, and no other."""
    global lmdb
    version = pipcache.pinned(NAME)
    sys.path.insert(0, directory(sys.implementation.cache_tag))
    import lmdb as module
    if module.__version__ != version:
        raise ImportError(f'expected lmdb {version} from {sys.path[0]}, got '
                          f'{module.__version__} from {module.__file__}')
    lmdb = module

# Address space only: the file grows with the data, not to this size.
MAP_SIZE = 1 << 36


class LmdbDB:
    def __init__(self, path, flag):
        if flag not in ('r', 'w', 'c', 'n'):
            raise ValueError(f'flag must be one of r, w, c, n, not {flag!r}')
        if flag == 'n':
            shutil.rmtree(path, ignore_errors=True)
        elif flag in ('r', 'w') and not os.path.isdir(path):
            raise FileNotFoundError(f'no lmdb database at {path!r}')
        self._env = lmdb.open(path, map_size=MAP_SIZE, readonly=(flag == 'r'),
                              sync=False, metasync=False)
        self._reader = self._env.begin() if flag == 'r' else None

    def __getitem__(self, key):
        if self._reader is not None:
            value = self._reader.get(key)
        else:
            with self._env.begin() as txn:
                value = txn.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key):
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __setitem__(self, key, value):
        with self._env.begin(write=True) as txn:
            txn.put(key, value)

    def __delitem__(self, key):
        with self._env.begin(write=True) as txn:
            if not txn.delete(key):
                raise KeyError(key)

    def update(self, pairs):
        with self._env.begin(write=True) as txn:
            txn.cursor().putmulti(pairs)

    def sync(self):
        self._env.sync(True)

    def close(self):
        if self._reader is not None:
            self._reader.abort()
            self._reader = None
        self._env.close()


def open(path, flag='r'):
    return LmdbDB(path, flag)


def describe():
    return f'lmdb {lmdb.__version__} (LMDB {".".join(map(str, lmdb.version()))}, {lmdb.__file__})'
