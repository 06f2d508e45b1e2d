"""What the test modules share: each helper here is defined once, for every module.

Imported as ``import helpers`` (like ``stats`` and ``crashchild``): pytest puts
``tests/``, a directory without ``__init__.py``, at the front of ``sys.path`` when it
imports the test modules, with ``python -m pytest`` as with ``pytest``.  A helper
that only one module needs stays in that module.
"""
import os
import platform
import stat

import semidbm
from semidbm import format, layout

#: This checkout: the ``PYTHONPATH`` of child processes, and where docs/ and scripts/ are.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: PyPy frees an object at the garbage collector's next run, not with its last
#: reference, and has no tracemalloc.
PYPY = platform.python_implementation() == 'PyPy'


def child_env(**variables):
    """The environment of a child process that imports this checkout's semidbm."""
    return dict(os.environ, PYTHONPATH=ROOT, **variables)


# -- a database's contents and its data file -----------------------------------------


def contents(path, flag='r', *, opener=semidbm.open, **options):
    """Open *path* (read-only by default) and return everything in it as a dict.

    :param opener: the ``open`` of the module under test (``backend.open`` in the
        parity tests); the *options* go to it.
    """
    with opener(path, flag, **options) as db:
        return {key: db[key] for key in db.keys()}


def data_path(path):
    """The data file of the database *path*."""
    return os.path.join(path, layout.DATA)


def data_bytes(path):
    """The bytes of the data file of the database *path*."""
    with open(data_path(path), 'rb') as f:
        return f.read()


def write_data(path, blob):
    """Make *blob* the data file of the database *path*, making its directory if there
    is none; return *path*."""
    os.makedirs(path, exist_ok=True)
    with open(data_path(path), 'wb') as f:
        f.write(blob)
    return path


# -- the bytes of records ------------------------------------------------------------


def record(key, value):
    """The bytes of a put of *value* under *key*, or of a delete of *key* if *value*
    is None."""
    return format.encode_delete(key) if value is None else format.encode_put(key, value)


def records(*pairs, header=format.HEADER_BYTES):
    """A whole data file: *header*, then the record of each ``(key, value)`` of *pairs*
    (a value of None is a delete)."""
    return header + b''.join(record(key, value) for key, value in pairs)


def record_offsets(data):
    """The offset of each record of the undamaged data file *data*."""
    return [offset for offset, _, _ in format.scan(data, format.HEADER.size, len(data))]


# -- directory trees -------------------------------------------------------------------


def tree(directory):
    """The set of paths under *directory*, relative to it."""
    found = set()
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(root, name), directory))
    return found


def tree_state(directory):
    """Map each path under *directory* to its (mode, size, mtime_ns, content): compare
    before and after to see that nothing was touched."""
    state = {}
    for name in tree(directory):
        full = os.path.join(directory, name)
        st = os.lstat(full)
        content = None
        if os.path.isfile(full):
            with open(full, 'rb') as f:
                content = f.read()
        state[name] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return state


def file_modes(directory):
    """Map each regular file under *directory* to its permission bits."""
    return {name: stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode)
            for name in tree(directory) if os.path.isfile(os.path.join(directory, name))}
