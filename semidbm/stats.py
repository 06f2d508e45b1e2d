"""What a database says of itself: the dict :meth:`semidbm.SemiDBM.stats` returns.

====================  ==========================================================
``path``              the database directory
``format``            the data file's format version, ``'1.1'``
``keys``              the number of keys
``file_size``         the data's bytes (without the preallocated tail)
``live_bytes``        what :meth:`~semidbm.SemiDBM.compact` would leave
``dead_bytes``        what it would reclaim: overwritten values and tombstones
``reclaimable``       ``dead_bytes`` as a fraction of ``file_size``
``snapshot``          the index snapshot: ``'none'``; ``'fresh'``; ``'partial'`` (it
                      covers ``snapshot_covers`` bytes, the rest is scanned at open);
                      ``'invalid'`` (ignored at open, rewritten at close)
``snapshot_covers``   the bytes of the data file it covers (0 if not used)
``unapplied``         bytes after a crash that this open found and could not apply
``kept``              the files that keep such bytes (``data.cut-TIMESTAMP``), until
                      ``python -m semidbm repair`` applies them
``writers``           the pids of the processes that have it open for writing (one at
                      the most; [] where the platform cannot tell)
``readers``           the pids of the processes that read its current data file
                      (this one among them, if it does)
====================  ==========================================================
"""
from __future__ import annotations

import os
from typing import List, Literal, Optional, Tuple, TypedDict

from semidbm import format, layout, lock
from semidbm.loading import Leftover


class _Snapshot(TypedDict):
    snapshot: Literal['none', 'fresh', 'partial', 'invalid']
    snapshot_covers: int


class _Holders(TypedDict):
    writers: List[int]
    readers: List[int]


class Stats(_Snapshot, _Holders):
    """The type of the dict :meth:`semidbm.SemiDBM.stats` returns (the table above)."""

    path: str
    format: str
    keys: int
    file_size: int
    live_bytes: int
    dead_bytes: int
    reclaimable: float
    unapplied: int
    kept: List[str]


def describe(files: layout.Layout, index: format.Index, end: int, version: Tuple[int, int],
             snapshot_end: Optional[int], leftover: Optional[Leftover]) -> Stats:
    """Return the stats of the database *files* whose *index* covers ``end`` bytes.

    Cost: one pass over the index; no read of the data file.
    """
    live = format.live_bytes(index)
    return {'path': files.directory, 'format': '%d.%d' % version, 'keys': len(index),
            'file_size': end, 'live_bytes': live, 'dead_bytes': end - live,
            'reclaimable': (end - live) / end, **_snapshot(files, snapshot_end, end),
            'unapplied': 0 if leftover is None else leftover.stop - leftover.cut,
            'kept': files.kept(layout.KEPT_CUT), **_holders(files)}


def _holders(files: layout.Layout) -> _Holders:
    writers, readers = lock.holders(files)
    return {'writers': [int(pid) for pid in writers],
            'readers': [int(pid) for pid in readers]}


def _snapshot(files: layout.Layout, covered: Optional[int], end: int) -> _Snapshot:
    if covered is None:
        found = os.path.exists(files.snapshot)
        return {'snapshot': 'invalid' if found else 'none', 'snapshot_covers': 0}
    return {'snapshot': 'fresh' if covered >= end else 'partial',
            'snapshot_covers': covered}
