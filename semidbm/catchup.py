"""How a reader catches up with the writer beside it: :meth:`semidbm.SemiDBM.refresh`.

The writer only appends, so what is new is the bytes after the end the reader last
saw: they are read with ``pread`` (never through a map, which would kill the reader
with ``SIGBUS`` where the writer cut its pad) and their records taken with the rules
for bytes after the durable end (:func:`semidbm.loading.scan_tail`), so a record still
being copied is not taken until it is whole.  The map is extended to the new end
first, then the index: a read in another thread never finds an entry its map does
not cover.  A data file with another inode (the writer compacted, or opened with
flag 'n') is opened anew, through its index snapshot when it has a fresh one.
"""
from __future__ import annotations

import mmap
import os
from typing import Optional, Tuple

from semidbm import format, layout, loading, syncmark
from semidbm.datafile import DataFile


class Delta(dict[bytes, Optional[int]]):
    """Collects the records of a tail: a put as its index entry, a delete as None."""

    def pop(self, key: bytes, default: object = None) -> None:
        self[key] = None


#: How much of what follows its end a refresh reads at a time: the writer's file has
#: its preallocated tail (up to 16 MiB of pad) after the records, and a refresh with
#: nothing new should read one block of it, not all of it.
CHUNK = 1 << 16
#: A record of zeros is judged by the record after it (loading._filler_alone).
_LOOKAHEAD = 2 * format.OVERHEAD


def new_records(files: layout.Layout, datafile: DataFile) -> Optional[Tuple[Delta, int]]:
    """Return ``(delta, end)`` for what was appended to *datafile* since its end, or
    None when the data file is another one now (to be opened anew)."""
    st = os.stat(files.data)
    if st.st_ino != datafile.inode() or st.st_size < datafile.end:
        return None
    if datafile.lost_blocks:  # opened after a power cut: until a writer syncs again
        datafile.lost_blocks = not syncmark.written_this_boot(files)
    delta, end, chunk = Delta(), datafile.end, CHUNK
    while end < st.st_size:
        tail = os.pread(datafile.fd, min(chunk, st.st_size - end), end)
        applied = loading.apply_tail(delta, tail, end, datafile.lost_blocks)
        if applied > end:
            end, chunk = applied, CHUNK
            continue
        # Nothing whole here: the end of what was written, or a record longer than
        # the chunk (then read it whole).
        needed = _record_length(tail) + _LOOKAHEAD
        if needed <= len(tail) or len(tail) < chunk:
            break
        chunk = needed
    return delta, end


def _record_length(tail: bytes) -> int:
    if len(tail) < format.RECORD_HEAD.size:
        return 0
    key_size, value_size = format.RECORD_HEAD.unpack_from(tail, 0)
    if key_size < 0 or value_size < format.DELETED:
        return 0
    return format.record_size(key_size, value_size)


def extend(datafile: DataFile, end: int) -> None:
    """Map *datafile* as far as *end* (which no writer cuts: it ends whole records)."""
    if end > len(datafile.map):
        datafile.replace_map(mmap.mmap(datafile.fd, end, access=mmap.ACCESS_READ))
        datafile.size = end
    datafile.end = end


def apply(index: format.Index, delta: Delta) -> None:
    for key, entry in delta.items():
        if entry is None:
            index.pop(key, None)
        else:
            index[key] = entry
