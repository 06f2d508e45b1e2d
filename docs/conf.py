"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``."""
import os
import sys

# Document the checkout this file is in, whether or not (and whichever) semidbm is
# installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from semidbm._version import __version__  # noqa: E402

project = 'semidbm'
author = 'the semidbm developers'
copyright = 'the semidbm developers'
version = release = __version__

extensions = ['sphinx.ext.autodoc', 'sphinx.ext.intersphinx']
# References to the standard library resolve against its inventory: from docs.python.org
# when the build can reach it, else from Debian's python3-doc package (which .ci/run
# installs), so that an offline build still links every stdlib name.
intersphinx_mapping = {
    'python': ('https://docs.python.org/3',
               (None, '/usr/share/doc/python3/html/objects.inv')),
}
# Every cross-reference must resolve: `sphinx -n -W` fails on one that does not.
nitpicky = True
# The type variables and the protocol in SemiDBM's signatures are private: no page.
nitpick_ignore = [('py:class', 'semidbm.db._DB'), ('py:class', 'semidbm.db._K'),
                  ('py:class', 'semidbm.db._KeysAndGetItem')]
exclude_patterns = ['_build']
# Show defaults as written (``mode=0o666``, not ``mode=438``).
autodoc_preserve_defaults = True
autodoc_member_order = 'bysource'

html_theme = 'alabaster'
html_theme_options = {'description': 'an append-only dbm in pure Python'}
