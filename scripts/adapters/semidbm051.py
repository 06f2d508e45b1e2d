"""semidbm 0.5.1 from PyPI, the release this project must beat, kept in its own directory.

0.5.1 imports itself as ``semidbm``, the name of our package, so it cannot share a process
with ours. The parent installs it once with pip into PEER_DIR (``prepare``); the child runs
with ``python -E -S`` (no site-packages, no PYTHONPATH), checks that no other ``semidbm``
is importable, and only then puts PEER_DIR first on ``sys.path`` (``configure``).
Loading it under another name with importlib was rejected: its own
``from semidbm.db import ...`` lines would still find whichever ``semidbm`` comes first.
"""
import builtins
import importlib.util
import os
import re
import sys

from adapters import pipcache

VERSION = '0.5.1'
PERSISTENT = True
ISOLATED = True
REQUIREMENT = f'semidbm=={VERSION}'

_module = None


def default_dir():
    # Pure Python: one directory serves every interpreter.
    return os.path.join(pipcache.cache_root(), f'semidbm-{VERSION}')


def installed_version(directory):
    """Return the ``__version__`` written in *directory*/semidbm, without importing it."""
    try:
        # builtins.open: the module-level open is the dbm entry point below.
        with builtins.open(os.path.join(directory, 'semidbm', '__init__.py'),
                           encoding='utf-8') as init:
            found = re.search(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", init.read(), re.M)
    except OSError:
        return None
    return found.group(1) if found else None


def prepare(directory, interpreter=None):
    """Install semidbm 0.5.1 into *directory* with pip unless it is there already; this
    interpreter's pip, whatever *interpreter* the child runs (0.5.1 is pure Python).

    :raises RuntimeError: with the command to run by hand, if it cannot.
    """
    if installed_version(directory) == VERSION:
        return
    problem = pipcache.pip_install(sys.executable, REQUIREMENT, directory)
    if problem or installed_version(directory) != VERSION:
        raise RuntimeError(
            f'could not install {REQUIREMENT} into {directory}: '
            f'{problem or "no semidbm 0.5.1 there after pip ran"}\n'
            f'Install it by hand with:\n    python -m pip install --target {directory} '
            f'{REQUIREMENT}\nor pass --peer-dir DIR naming a directory that holds it.')


def configure(directory):
    """Import 0.5.1 from *directory*, refusing if any other ``semidbm`` is importable."""
    global _module
    if 'semidbm' in sys.modules or importlib.util.find_spec('semidbm') is not None:
        raise RuntimeError('another semidbm is importable in the 0.5.1 child; refusing to '
                           'benchmark what might be the wrong package')
    sys.path.insert(0, os.path.abspath(directory))
    import semidbm
    where = os.path.dirname(os.path.abspath(semidbm.__file__))
    if semidbm.__version__ != VERSION or not where.startswith(os.path.abspath(directory)):
        raise RuntimeError(f'expected semidbm {VERSION} from {directory}, got '
                           f'{semidbm.__version__} from {where}')
    _module = semidbm


def open(path, flag='r'):
    return _module.open(path, flag)


def describe():
    return f'semidbm {_module.__version__} ({os.path.dirname(_module.__file__)})'
