"""A persistent dictionary of pickled objects on semidbm: ``shelve.open`` for semidbm.

>>> import semidbm.shelf, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), 'objects.db')
>>> with semidbm.shelf.open(path) as shelf:
...     shelf['point'] = {'x': 1, 'y': [2, 3]}
>>> with semidbm.shelf.open(path, 'r') as shelf:
...     shelf['point']
{'x': 1, 'y': [2, 3]}
"""
from __future__ import annotations

import shelve
from typing import Any, Optional

import semidbm
from semidbm.layout import AnyPath
from semidbm.opening import Flag


def open(filename: AnyPath, flag: Flag = 'c', protocol: Optional[int] = None,
         writeback: bool = False, **options: Any) -> shelve.Shelf[Any]:
    """Open the semidbm database *filename* as a :class:`shelve.Shelf` and return it.

    As :func:`shelve.open`, with semidbm underneath: keys are str (stored as UTF-8),
    values any picklable object.

    :param flag: 'r', 'w', 'c' (default) or 'n', as in :func:`semidbm.open`.
    :param protocol: the pickle protocol (default: :mod:`shelve`'s default).
    :param writeback: cache the objects read and write them all back at ``sync()``
        and ``close()``, so that changes to mutable values are kept (costs memory,
        and time at close).
    :param options: keyword options of :func:`semidbm.open` (``lock_timeout``, ...).
    :raises semidbm.error: as :func:`semidbm.open`.
    """
    return shelve.Shelf(semidbm.open(filename, flag, **options), protocol, writeback)
