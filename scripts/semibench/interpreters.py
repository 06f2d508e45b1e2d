"""Contenders under another interpreter: ``MODULE@PYTHON`` (``semidbm@pypy3``).

PYTHON is a path (``/usr/bin/python3``) or a bare name, looked up on PATH and then as
``~/.pyenv/versions/X.Y*/bin/python`` for a name ``pythonX.Y``: a pyenv shim on PATH
fails for a version that is not the selected one, so every candidate is run once
(PROBE) and the first that answers is the one. What it answers is kept in the result
(``interpreter``) and names the column ("semidbm [PyPy 3.9]").
"""
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys

# What a child's interpreter says about itself; the benchmark needs 3.9 (randbytes).
PROBE = ('import json, platform, sys; print(json.dumps({'
         '"implementation": platform.python_implementation(), '
         '"version": platform.python_version(), "executable": sys.executable, '
         '"cache_tag": sys.implementation.cache_tag, "usable": sys.version_info >= (3, 9)}))')
PYENV = os.path.join(os.path.expanduser('~'), '.pyenv', 'versions')


def split(name):
    """(module, interpreter or None) of a contender's name."""
    module, sep, python = name.partition('@')
    return module, (python if sep else None)


def current():
    """This process's interpreter, in the form of a probe's answer."""
    return {'implementation': platform.python_implementation(),
            'version': platform.python_version(), 'executable': sys.executable,
            'cache_tag': sys.implementation.cache_tag}


def candidates(python):
    if os.sep in python:
        return [python]
    found = [shutil.which(python)]
    version = re.fullmatch(r'python(\d+\.\d+)', python)
    if version:
        found += sorted(glob.glob(os.path.join(PYENV, version.group(1) + '*', 'bin', 'python')),
                        reverse=True)
    return [path for path in found if path]


def resolve(python):
    """The probe's answer of the interpreter *python* names.

    :raises LookupError: saying where it looked, if no candidate answers.
    """
    tried = []
    for path in candidates(python):
        try:
            done = subprocess.run([path, '-c', PROBE], capture_output=True, text=True,
                                  timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f'{path}: {exc}')
            continue
        if done.returncode:
            tried.append(f"{path}: {(done.stderr.strip().splitlines() or ['failed'])[0]}")
            continue
        found = json.loads(done.stdout)
        if not found.pop('usable'):
            tried.append(f"{path}: Python {found['version']}, the benchmark needs 3.9 or later")
            continue
        return found
    where = '; '.join(tried) or ('no such file' if os.sep in python else
                                 f'not on PATH, nor in {PYENV}')
    raise LookupError(f'no interpreter {python}: {where}')


def label(interpreter):
    """``PyPy 3.9``: the implementation and the language version, for a column."""
    major_minor = '.'.join(interpreter['version'].split('.')[:2])
    return f"{interpreter['implementation']} {major_minor}"


def name_label(result):
    """A contender's name for a column or a sentence: ``semidbm [PyPy 3.9]`` for
    ``semidbm@pypy3`` (its result says which interpreter answered)."""
    module, python = split(result['name'])
    if python and 'interpreter' in result:
        return f"{module} [{label(result['interpreter'])}]"
    return result['name']
