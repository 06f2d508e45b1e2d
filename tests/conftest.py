"""Shared fixtures: ``path``, the parity fixture ``backend`` and the ``differs`` marker.

``path`` names a database that does not exist yet.  The helpers that the test modules
share are in ``helpers.py``.

Every behaviour test in ``test_parity.py`` takes ``backend`` and so runs against
semidbm, the stdlib's ``dbm.dumb`` and, where the interpreter has it (3.13+),
``dbm.sqlite3``.  A deliberate difference is written as a test of the behaviour we
promise, marked for the backends that do otherwise::

    @pytest.mark.differs('dbm.dumb', reason='dbm.dumb looks int keys up as KeyError')

For those backends the test becomes a strict expected failure: it must keep failing,
so the difference stays written down and a change in it is noticed.
"""
import dbm.dumb
import importlib
import os

import pytest

import helpers
import semidbm


class Backend:
    """A module with the dbm interface, under test.

    :param name: the module's import name, also the test id.
    :param files: the names, relative to the database's directory, of the files a
        database called ``NAME`` is made of (``{name}`` stands for ``NAME``).
    :param extra: the names of files that may also be there (a backup, a lock, an
        index snapshot).
    """

    def __init__(self, name, module, files, extra=frozenset()):
        self.name = name
        self.module = module
        self.error = module.error
        self.files = files
        self.extra = extra
        self._opened = []

    def open(self, filename, flag='r', mode=0o666):
        """Open *filename* with this module's ``open``; closed at teardown if left open."""
        db = self.module.open(filename, flag, mode)
        self._opened.append(db)
        return db

    def contents(self, filename):
        """Everything in the database *filename*, read with this module."""
        return helpers.contents(filename, opener=self.open)

    def close_all(self):
        for db in self._opened:
            db.close()
        self._opened.clear()

    def __repr__(self):
        return f'<Backend {self.name}>'


def _backends():
    backends = [
        Backend('semidbm', semidbm, {'{name}', os.path.join('{name}', 'data'),
                                     os.path.join('{name}', 'synced')},
                {os.path.join('{name}', 'lock'), os.path.join('{name}', 'index')}),
        Backend('dbm.dumb', dbm.dumb, {'{name}.dat', '{name}.dir'}, {'{name}.bak'}),
    ]
    try:
        sqlite = importlib.import_module('dbm.sqlite3')
    except ImportError:  # before 3.13, or a Python built without sqlite3
        pass
    else:
        backends.append(Backend('dbm.sqlite3', sqlite, {'{name}'}))
    return backends


BACKENDS = _backends()
BACKEND_NAMES = [backend.name for backend in BACKENDS]
#: Every name ``differs`` accepts, including backends this interpreter lacks.
KNOWN_BACKENDS = {'semidbm', 'dbm.dumb', 'dbm.sqlite3'}


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'differs(*backends, reason, condition=True): a deliberate difference; '
        'a strict expected failure for the named backends (when condition holds)')
    # Python 3.9's dbm.dumb, whose __init__ failed, fails again in its __del__ (PyPy's
    # message has no "Exception ignored in").
    config.addinivalue_line(
        'filterwarnings', 'ignore:(Exception ignored in)?. <function _Database.close'
        ':pytest.PytestUnraisableExceptionWarning')


@pytest.fixture(params=BACKENDS, ids=BACKEND_NAMES)
def backend(request):
    """The module under test, one of :data:`BACKENDS`."""
    backend = request.param
    for mark in request.node.iter_markers('differs'):
        unknown = set(mark.args) - KNOWN_BACKENDS
        assert not unknown, f'differs() names unknown backends {unknown}'
        if backend.name in mark.args and mark.kwargs.get('condition', True):
            request.applymarker(pytest.mark.xfail(strict=True, reason=mark.kwargs['reason']))
    yield backend
    backend.close_all()


@pytest.fixture
def path(tmp_path):
    """The name (a str) of a database that does not exist yet, in an empty directory."""
    return str(tmp_path / 'db')


@pytest.fixture
def db(backend, path):
    """A new, empty database opened with flag 'c'."""
    return backend.open(path, 'c')


@pytest.fixture
def umask():
    """Set the process umask for the test; returns a setter, restores it after."""
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(value):
        os.umask(value)
        return value

    yield set_umask
    os.umask(old)
