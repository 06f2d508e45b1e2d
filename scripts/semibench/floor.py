"""The read floor: what semidbm's read_random would cost if ``db[key]`` were free.

``read_floor`` times, on the reader read_random used and on its keys, only what a read
cannot do without: the index lookup and the slice of the memory map, as
``SemiDBM.__getitem__`` does them (semidbm/db.py), with no method call, closed check,
read cache or checksum option around them. read_random's ops/s is then a known share
of the floor's, from one child process. This module is the one place in the
benchmark that reads semidbm's private attributes; when they change shape, read_floor
is skipped with the reason rather than timing something else.
"""
from semidbm import format
from semidbm.db import SemiDBM

# Module globals, as in db.py: the floor pays for them as __getitem__ does.
SHIFT, MASK = format.ENTRY_SHIFT, format.ENTRY_SIZE_MASK


def parts(db):
    """(index, map) of an open semidbm *db*, or None if it is not one or has neither."""
    if not isinstance(db, SemiDBM):
        return None
    try:
        index, datafile = db._state[0], db._state[1]
        buf = datafile.map
    except (AttributeError, IndexError, TypeError):
        return None
    if not isinstance(index, dict) or buf is None:
        return None
    return index, buf


def slice_all(store, keys):
    """The timed loop: read_all's shape, with __getitem__'s lookup and slice inlined
    (its own statements, so that the difference is what surrounds them)."""
    index, buf = store
    for key in keys:
        entry = index[key]
        start = entry >> SHIFT
        size = entry & MASK
        buf[start:start + size]
