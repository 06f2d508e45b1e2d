"""Compaction: the live records copied to a new file that replaces the data file.

Each step, and what a crash right after it leaves behind:

1. write the live records to ``data.compact`` -- the old file, whole; the partial
   new one is removed by the next writable open (:func:`remove_leftover`);
2. ``fsync`` it -- the same;
3. ``os.replace`` it over ``data`` -- the new file, whole (it was synced first);
4. ``fsync`` the directory -- the same, and now the rename survives a power loss.

Records are copied as bytes, never decoded and encoded again (the ``compact``
benchmark).
"""
import os

from semidbm import format
from semidbm.datafile import DataFile

SUFFIX = '.compact'
_SIZE_MASK = (1 << 32) - 1
_WRITE_CHUNK = 1 << 20
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, 'O_BINARY', 0)


def write_compacted(source, index, data_path, mode):
    """Write the live records of *source* (a DataFile) per *index* to a new file and
    put it in place of *data_path*; return the new index and the new file, open.

    The new file is open before it replaces the old one, so nothing can fail between
    the replace and the caller switching to it.  On any failure, the temporary file
    is removed and *data_path* is the old file.
    """
    temp = data_path + SUFFIX
    fd = os.open(temp, _OPEN_FLAGS, mode)
    try:
        new_index, end = _copy_live(fd, source, index)
        os.fsync(fd)
        compacted = DataFile(data_path, fd, end, writable=True)
    except BaseException:
        os.close(fd)
        os.remove(temp)
        raise
    try:
        os.replace(temp, data_path)
    except BaseException:
        compacted.detach()
        os.remove(temp)
        raise
    return new_index, compacted


def remove_leftover(data_path):
    """Remove what a compaction killed before its replace left beside *data_path*."""
    try:
        os.remove(data_path + SUFFIX)
    except FileNotFoundError:
        pass


def _copy_live(fd, source, index):
    """Copy the live records from *source* (a DataFile) to *fd*; return index and end.

    Records that lie next to each other are copied as one run, and a run keeps its
    layout, so each position moves by the run's shift (the ``compact`` benchmark:
    after a fill and an overwrite, the live records are one run).
    """
    head = format.RECORD_HEAD.size
    tail = format.CHECKSUM.size
    writer = _RunWriter(fd, source)
    writer.add(0, format.HEADER.size)
    positions = []
    run_start = run_stop = shift = 0
    for key, position in index.items():
        value_start = position >> 32
        record_start = value_start - head - len(key)
        if record_start != run_stop:
            writer.add(run_start, run_stop)
            run_start = record_start
            shift = (writer.offset - run_start) << 32
        run_stop = value_start + (position & _SIZE_MASK) + tail
        positions.append(position + shift)
    writer.add(run_start, run_stop)
    writer.flush()
    return dict(zip(index, positions)), writer.offset


class _RunWriter:
    """Copies byte runs of *source* to *fd*: short ones gathered into one write,
    long ones copied file to file by the kernel (``copy_file_range``), so they
    never pass through this process's memory (the ``peak_rss`` benchmark).
    """

    def __init__(self, fd, source):
        self.fd = fd
        self.source = source
        self.offset = 0
        self.chunks = []
        self.pending = 0

    def add(self, start, stop):
        self.offset += stop - start
        if stop - start >= _WRITE_CHUNK:
            self.flush()
            _copy_range(self.source, self.fd, start, stop)
            return
        self.chunks.append(self.source.map[start:stop])
        self.pending += stop - start
        if self.pending >= _WRITE_CHUNK:
            self.flush()

    def flush(self):
        if self.chunks:
            write_all(self.fd, b''.join(self.chunks))
        self.chunks, self.pending = [], 0


def _copy_range(source, fd, start, stop):
    copy = getattr(os, 'copy_file_range', None)
    while start < stop:
        count = min(stop - start, _WRITE_CHUNK * 64)
        copied = 0
        if copy is not None:
            try:
                copied = copy(source.fd, fd, count, start)
            except OSError:  # another file system, an old kernel: copy it ourselves
                copy = None
        if not copied:
            copied = os.write(fd, source.map[start:start + min(count, _WRITE_CHUNK)])
        start += copied


def write_all(fd, data):
    """Write all of *data* to *fd*, however many ``write`` calls it takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fsync_directory(path):
    """Make a rename in *path* durable (POSIX; Windows cannot open a directory)."""
    if os.name == 'nt':
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
