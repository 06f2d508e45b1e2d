"""The sync mark: how much of the data file is known to be durable on disk.

After an ``fsync`` of the data file returns, its logical end is written to
``NAME/synced`` (specified in ``docs/fileformat.rst``), in one of two slots of one
disk sector each, taken in turn, so that a write torn by a power cut leaves the other
slot whole::

    slot:  +----------+-----+-----+----------+----------+------+-----+
           | SEMISYNC | seq | end | head crc | tail crc | boot | crc |   <8sQQII16sI
           +----------+-----+-----+----------+----------+------+-----+

``end`` is the durable end; the two probe checksums (:func:`semidbm.format.probes`)
tie the mark to the data file's contents, not to its inode: a copy of the directory
keeps its mark, a data file that another program replaced (semidbm 0.5.1's
compaction) does not match it and the mark is ignored.  ``boot`` names the boot of
the machine that wrote it (Linux's ``boot_id``; zeros where there is none): while the
machine has not restarted since, the bytes after the durable end are exactly what the
writer wrote (a killed process leaves the page cache whole), and no block of them can
be one a power cut lost.  ``crc`` covers the fields before it.

What the mark buys (``docs/reliability.rst``): the bytes before ``end`` were durable,
so damage there is refused as damage; the bytes after it may be what a power cut made
of unsynced writes, so the open keeps their longest valid prefix.

Writing a slot costs one ``pwrite`` and one ``fdatasync`` of the mark, after the data's
fsync: a slot that reaches the disk is true.  Without the mark's own sync, a slot lost
in a power cut would leave an older, smaller end, still true, but then the records
synced since would be judged by the rules for unsynced bytes, which may set aside a
real record of an empty key and value (found by tests/test_powercut.py's long run).
"""
from __future__ import annotations

import functools
import os
import struct
import uuid
from typing import Iterator, List, NamedTuple, Optional, Tuple
from zlib import crc32

from semidbm import format, layout

#: A slot's fields: ``(seq, end, probes, boot)``.
_Slot = Tuple[int, int, Tuple[int, int], bytes]

MAGIC = b'SEMISYNC'
SLOT = struct.Struct('<8sQQII16s')
#: Where the machine's boot is named (Linux).
BOOT_ID = '/proc/sys/kernel/random/boot_id'
CHECKSUM = struct.Struct('<I')
#: Each slot has a disk sector of its own.
SLOT_SPACING = 512
_SLOTS = 2


class Durable(NamedTuple):
    """What a mark that matches says: the durable *end*, and whether the machine has
    run on since it was written (*same_boot*: no block after it can be a lost one)."""

    end: int
    same_boot: bool


@functools.lru_cache(maxsize=1)
def boot() -> bytes:
    """The 16 bytes naming this boot of the machine, or zeros where it has no name."""
    try:
        with open(BOOT_ID, encoding='ascii') as f:
            return uuid.UUID(f.read().strip()).bytes
    except (OSError, ValueError):
        return bytes(16)


def _pack(seq: int, buf: format.ByteSource, end: int) -> bytes:
    body = SLOT.pack(MAGIC, seq, end, *format.probes(buf, end), boot())
    return body + CHECKSUM.pack(crc32(body))


def _unpack(blob: bytes) -> Optional[_Slot]:
    """Return ``(seq, end, probes, boot)`` of a slot's bytes, or None if it is not
    whole."""
    size = SLOT.size + CHECKSUM.size
    if len(blob) < size or crc32(blob[:SLOT.size]) != CHECKSUM.unpack_from(blob, SLOT.size)[0]:
        return None
    magic, seq, end, head, tail, booted = SLOT.unpack_from(blob)
    return (seq, end, (head, tail), booted) if magic == MAGIC else None


def written_this_boot(files: layout.Layout) -> bool:
    """Tell whether the newest slot of the mark of *files* was written in this boot of
    the machine: a writer has synced since any power cut, after its open cut what the
    cut left."""
    newest = max(_slots(files), default=None)
    return newest is not None and newest[3] != bytes(16) and newest[3] == boot()


def _slots(files: layout.Layout) -> List[_Slot]:
    try:
        with open(files.synced, 'rb') as f:
            blob = f.read(SLOT_SPACING * _SLOTS)
    except OSError:
        return []
    return list(filter(None, (_unpack(blob[at:at + SLOT_SPACING])
                              for at in range(0, len(blob), SLOT_SPACING))))


def durable_end(files: layout.Layout, buf: format.ByteSource, size: int) -> Optional[Durable]:
    """Return the :class:`Durable` end of the data in *buf* (*size* bytes) that the
    mark of *files* gives, or None: no mark, or none that matches these contents."""
    slots = _slots(files)
    if not slots:
        return None
    # The newest whole slot, and only it: the other one serves when a power cut tore
    # the newest.  A newest slot that does not match means another file, or damage
    # where it was durable: falling back to an older, shorter end would take that
    # damage for a crash's torn tail.
    seq, end, probes, booted = max(slots)
    if format.HEADER.size <= end <= size and format.probes(buf, end) == probes:
        return Durable(end, booted != bytes(16) and booted == boot())
    return None


class SyncMark:
    """The open mark of a writable database; :meth:`record` writes the next slot."""

    def __init__(self, fd: int, seq: int) -> None:
        self.fd = fd
        self.seq = seq

    @classmethod
    def create(cls, files: layout.Layout, buf: format.ByteSource, end: int,
               mode: int) -> SyncMark:
        """Make a new mark saying ``buf[:end]`` is durable (the caller fsynced it), and
        make the mark itself durable; return it, open."""
        # seq 1 in slot 1, where record() puts it: slot 0 is the next
        def fill(fd: int) -> SyncMark:
            layout.write_all(fd, bytes(SLOT_SPACING) + _pack(1, buf, end).ljust(
                SLOT_SPACING, b'\0'))
            return cls(fd, 1)
        return layout.replace(files, files.synced, mode, fill, installed=_keeps_its_fd)

    @classmethod
    def open(cls, files: layout.Layout, buf: format.ByteSource, end: int, mode: int,
             matched: bool) -> SyncMark:
        """Open the mark of a writable database.  Unless it *matched* the data file,
        it is made to say ``buf[:end]`` is durable (the caller fsynced it), durably:
        a new database, or one that semidbm 0.5.1 wrote or compacted."""
        try:
            fd = layout.open_file(files.synced, os.O_RDWR)
        except FileNotFoundError:
            return cls.create(files, buf, end, mode)
        mark = cls(fd, max(_seqs(fd), default=0))
        if not matched:
            try:
                mark.record(buf, end)
            except BaseException:
                mark.close()
                raise
        return mark

    def record(self, buf: format.ByteSource, end: int) -> None:
        """Write, durably, that ``buf[:end]`` is durable (the caller fsynced it)."""
        self.seq += 1
        layout.write_all(self.fd, _pack(self.seq, buf, end),
                         self.seq % _SLOTS * SLOT_SPACING)
        # Only the slot's bytes need to reach the disk, not the file's times.
        layout.fdatasync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def _keeps_its_fd(mark: SyncMark) -> None:
    """A new mark is installed: it keeps the descriptor it was written through."""


def _seqs(fd: int) -> Iterator[int]:
    blob = os.pread(fd, SLOT_SPACING * _SLOTS, 0)
    for at in range(0, len(blob), SLOT_SPACING):
        slot = _unpack(blob[at:at + SLOT_SPACING])
        if slot is not None:
            yield slot[0]
