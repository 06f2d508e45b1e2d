"""Examples in README.rst and docs/*.rst run in a fresh temporary directory.

So that they can use plain relative paths (``semidbm.open('example.db', 'c')``), as a
reader would, without leaving files in the working tree.
"""
import pytest


@pytest.fixture(autouse=True)
def _examples_run_in_a_temp_dir(request):
    if request.node.path.suffix == '.rst':
        request.getfixturevalue('monkeypatch').chdir(request.getfixturevalue('tmp_path'))
