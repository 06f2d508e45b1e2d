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
import mmap
import os

from semidbm import loading


class Delta(dict):
    """Collects the records of a tail: a put as its index entry, a delete as None."""

    def pop(self, key, default=None):
        self[key] = None


def new_records(files, datafile):
    """Return ``(delta, end)`` for what was appended to *datafile* since its end, or
    None when the data file is another one now (to be opened anew)."""
    st = os.stat(files.data)
    if st.st_ino != datafile.inode() or st.st_size < datafile.end:
        return None
    delta = Delta()
    if st.st_size == datafile.end:
        return delta, datafile.end
    tail = os.pread(datafile.fd, st.st_size - datafile.end, datafile.end)
    end, _ = loading.scan_tail(delta, tail, datafile.end)
    return delta, end


def extend(datafile, end):
    """Map *datafile* as far as *end* (which no writer cuts: it ends whole records)."""
    if end > len(datafile.map):
        datafile.map = mmap.mmap(datafile.fd, end, access=mmap.ACCESS_READ)
        datafile.size = end
    datafile.end = end


def apply(index, delta):
    for key, entry in delta.items():
        if entry is None:
            index.pop(key, None)
        else:
            index[key] = entry
