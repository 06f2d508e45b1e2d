"""Packages the benchmark installs for itself, each in a directory of its own.

A peer (semidbm 0.5.1) or a store with a C part (lmdb) is installed with pip
``--target`` under CACHE, never into the interpreter that runs it: nothing a contender
needs ends up beside our ``semidbm``, and a fresh machine's ``--docs`` run gets them.
The version of a store comes from the checkout's constraints.txt (its one file of
exact pins); a package with compiled parts gets a directory per interpreter.
"""
import builtins
import os
import subprocess
import sys

CONSTRAINTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'constraints.txt')


def cache_root():
    cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(cache, 'semidbm-bench')


def pinned(name):
    """The version constraints.txt pins *name* to (``name==VERSION``, no marker).

    :raises ImportError: if it pins none.
    """
    # builtins.open: an adapter's module-level open is its dbm entry point.
    with builtins.open(CONSTRAINTS, encoding='utf-8') as pins:
        for line in pins:
            package, sep, version = line.split('#')[0].strip().partition('==')
            if sep and package.lower() == name.lower() and ';' not in version:
                return version.strip()
    raise ImportError(f'{CONSTRAINTS} pins no version of {name}')


def has_dist(directory, name, version):
    """True if pip installed *name* *version* into *directory* (its dist-info is there)."""
    return os.path.isdir(os.path.join(directory, f'{name}-{version}.dist-info'))


def pip_install(python, requirement, directory):
    """Install *requirement* into *directory* with *python*'s pip; '' or what failed."""
    command = [python, '-m', 'pip', 'install', '--quiet', '--no-deps',
               '--disable-pip-version-check', '--target', directory, requirement]
    print(f'installing {requirement} into {directory} (once) ...', file=sys.stderr)
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError as exc:
        return str(exc)
    # pip's last line is its error; the rest is a traceback or index warnings.
    return (done.stderr.strip().splitlines() or ['pip failed'])[-1] if done.returncode else ''
