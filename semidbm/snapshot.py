"""The index snapshot: the index saved beside the data file, so an open need not scan.

Like Bitcask's hint file, but in one file, written whole at close (for databases of at least :data:`MIN_KEYS` keys) and replaced atomically.  Its
layout, all integers little-endian (specified in ``docs/fileformat.rst``)::

    +----------+------+---------+-------+----------+----------+-------+
    | SEMIIDX1 | ino  | covered | count | head crc | tail crc | klen  |  !8sQQQII + I
    +----------+------+---------+-------+----------+----------+-------+
    | key sizes: count x uint32 | positions: count x uint64 | keys    |
    +---------------------------+---------------------------+---------+
    | crc32 of everything before                                      |
    +-----------------------------------------------------------------+

``covered`` is how much of the data file it describes; a position is the index entry,
``value_offset << 32 | value_size``.  It is plain numbers and bytes (never pickle or
marshal), so a corrupt or hostile file can at worst be refused.  It is trusted only
while the data file is the same file (inode) and its first and last
:data:`_PROBE` bytes up to ``covered`` still checksum the same; bytes appended
after ``covered`` (by us or by semidbm 0.5.1, which knows nothing of snapshots) are
then scanned as usual.  A replaced data file (compaction by 0.5.1) has a new inode.
"""
import itertools
import os
import struct
import sys
from array import array
from zlib import crc32

NAME = 'index'
MAGIC = b'SEMIIDX1'
HEAD = struct.Struct('<8sQQQIII')
TRAILER = struct.Struct('<I')
#: Below this many keys a scan is as fast as reading a snapshot: none is written.
MIN_KEYS = 4096
_PROBE = 1 << 16


def _probes(buf, covered):
    head = crc32(buf[:min(_PROBE, covered)])
    tail = crc32(buf[max(0, covered - _PROBE):covered])
    return head, tail


def _little(items):
    if sys.byteorder != 'little':
        items.byteswap()
    return items


def write(path, index, buf, covered, ino):
    """Write the snapshot of *index* (over ``buf[:covered]``) to *path*, atomically."""
    keys = list(index)
    sizes = _little(array('I', map(len, keys)))
    positions = _little(array('Q', index.values()))
    head_crc, tail_crc = _probes(buf, covered)
    blob = b''.join([HEAD.pack(MAGIC, ino, covered, len(keys), head_crc, tail_crc,
                               sizes.itemsize), sizes.tobytes(), positions.tobytes()]
                    + keys)
    temp = path + '.tmp'
    with open(temp, 'wb') as f:
        f.write(blob)
        f.write(TRAILER.pack(crc32(blob)))
    os.replace(temp, path)


def load(path, buf, size, ino):
    """Return ``(index, covered)`` from the snapshot at *path*, or None.

    None when there is no snapshot, it is damaged, or it does not describe this
    data file (*buf*, *size* bytes long, inode *ino*): the caller then scans.
    """
    try:
        with open(path, 'rb') as f:
            blob = f.read()
    except OSError:
        return None
    if len(blob) < HEAD.size + TRAILER.size:
        return None
    stored, = TRAILER.unpack_from(blob, len(blob) - TRAILER.size)
    body = memoryview(blob)[:-TRAILER.size]
    if crc32(body) != stored:
        return None
    magic, snap_ino, covered, count, head_crc, tail_crc, _ = HEAD.unpack_from(blob)
    if (magic != MAGIC or snap_ino != ino or covered > size
            or _probes(buf, covered) != (head_crc, tail_crc)):
        return None
    return _parse(body, count, covered)


def _parse(body, count, covered):
    sizes_end = HEAD.size + 4 * count
    positions_end = sizes_end + 8 * count
    if positions_end > len(body):
        return None
    sizes, positions = array('I'), array('Q')
    sizes.frombytes(body[HEAD.size:sizes_end])
    positions.frombytes(body[sizes_end:positions_end])
    _little(sizes)
    _little(positions)
    ends = list(itertools.accumulate(sizes, initial=positions_end))
    if ends[-1] != len(body) or (count and max(positions) >> 32 > covered):
        return None
    blob = body.obj
    if count and sizes[0] and sizes.count(sizes[0]) == count:  # the usual case: one size
        keys = [blob[i:i + sizes[0]] for i in range(positions_end, ends[-1], sizes[0])]
    else:
        keys = map(blob.__getitem__, map(slice, ends, ends[1:]))
    index = dict(zip(keys, positions.tolist()))
    if len(index) != count:
        return None
    return index, covered


def remove(path):
    """Delete the snapshot at *path*, if there is one, and the temporary file that a
    write killed or failed part-way left (never read, but it takes room)."""
    for name in (path, path + '.tmp'):
        try:
            os.remove(name)
        except FileNotFoundError:
            pass
