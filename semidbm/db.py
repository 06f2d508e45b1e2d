"""The store: an in-memory index over an append-only data file.

The index maps each key to one int, ``value_offset << 32 | value_size`` (built by
:mod:`semidbm.loading`); the record bytes are :mod:`semidbm.format`'s, the file's
map :mod:`semidbm.datafile`'s, compaction :mod:`semidbm.compaction`'s.
"""
import collections.abc
import contextlib
import os
import threading

from semidbm import compaction, format, loading, snapshot
from semidbm import lock as process_lock
from semidbm.datafile import DataFile
from semidbm.exceptions import DBMChecksumError, DBMNotFoundError, error

DATA_NAME = 'data'
_FLAGS = {'r': os.O_RDONLY, 'w': os.O_RDWR, 'c': os.O_RDWR | os.O_CREAT,
          'n': os.O_RDWR | os.O_CREAT | os.O_TRUNC}
_SIZE_MASK = (1 << 32) - 1
#: Values longer than this are never kept by the read cache: their copy out of the
#: map costs more than the lookup a cache would save, and they would crowd it.
CACHED_VALUE_MAX = 1024
_HEAD = format.RECORD_HEAD.size


class _ClosedIndex:
    """Stands in for the index once the db is closed: every use raises ``error``.

    The one place that checks "closed", at no cost to the open path (every
    operation goes through the index first).
    """

    def __init__(self, path):
        self.path = path

    def error(self):
        return error(f'{self.path}: the database is closed; open it again to use it')

    def _closed(self, *args):
        raise self.error()

    __getitem__ = __setitem__ = __delitem__ = __contains__ = __iter__ = _closed
    __len__ = get = pop = keys = items = _closed


def coerce(data, what='key'):
    """Return *data* as bytes: str is encoded as UTF-8, other buffers (and bytes
    subclasses) copied into bytes.

    :raises TypeError: for anything else (int, None, ...).
    """
    if isinstance(data, str):
        return data.encode('utf-8')
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f'{what}s must be bytes or str, not {type(data).__name__}')


def _coerce_pair(key, value):
    return coerce(key), coerce(value, 'value')


class SemiDBM(collections.abc.MutableMapping):
    """An open semidbm database; use :func:`semidbm.open` to get one.

    :param path: the database directory.
    :param flag: 'r', 'w', 'c' or 'n', as in :func:`semidbm.open`.
    """

    def __init__(self, path, flag='r', mode=0o666, *, verify_checksums=False, lock=True,
                 lock_timeout=None, cache_size=16384):
        if flag not in _FLAGS:
            raise ValueError(f"flag must be 'r', 'w', 'c' or 'n', not {flag!r}")
        self.path = os.fsdecode(os.fspath(path))
        self._data_filename = os.path.join(self.path, DATA_NAME)
        self._snapshot_filename = os.path.join(self.path, snapshot.NAME)
        self.readonly = flag == 'r'
        self.verify_checksums = verify_checksums
        self._mode = mode
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f'cache_size must be an int >= 0, not {cache_size!r}')
        # The read cache: up to cache_size values of recent reads (the ``read_hot``
        # benchmark).  Writes count themselves in _writes before they drop a key from
        # it, so a read that raced a write sees the count move and keeps nothing.
        self._cache_size = cache_size
        self._cached_max = CACHED_VALUE_MAX if cache_size else -1
        self._writes = 0
        # Writes, compaction and close hold it.  Reads don't (a lock costs them more
        # than the read itself, read_random benchmark): they take index and file from
        # ``_state``, which is swapped whole, and maps are never closed under a reader.
        self._lock = threading.RLock()
        self._set_state(_ClosedIndex(self.path), None)
        self._process_lock = None
        try:
            self._set_state(*self._open_file(flag, lock, lock_timeout))
        except BaseException:
            self._release_process_lock()
            raise

    # -- opening ---------------------------------------------------------------

    def _open_file(self, flag, lock, lock_timeout):
        if flag in 'cn':
            try:
                os.makedirs(self.path, exist_ok=True)
            except OSError as exc:  # a file in the way, say
                raise error(exc.errno, f'cannot create the database directory: '
                            f'{exc.strerror}', self.path) from exc
        elif not os.path.isfile(self._data_filename):
            try:  # isfile is False for a directory we may not enter, too: say which
                os.stat(self._data_filename)
            except (FileNotFoundError, NotADirectoryError):
                pass
            except OSError as exc:
                raise error(exc.errno, f'cannot open the database: {exc.strerror}',
                            self._data_filename) from exc
            raise DBMNotFoundError(
                f'{self.path}: no semidbm database here (no file '
                f'{self._data_filename!r}); open it with flag "c" to create one')
        if lock:  # before anything is changed ('n' truncates); see lock.py
            self._process_lock = process_lock.acquire(self.path, not self.readonly,
                                                      self._mode, lock_timeout)
        try:
            if flag == 'n':
                snapshot.remove(self._snapshot_filename)
            fd = os.open(self._data_filename, _FLAGS[flag] | getattr(os, 'O_BINARY', 0),
                         self._mode)
        except OSError as exc:
            raise error(exc.errno, f'cannot open the database: {exc.strerror}',
                        exc.filename or self._data_filename) from exc
        try:
            return self._load(fd)
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError) and not isinstance(exc, error):
                # Writing the header of a new file, mapping it: a full disk, no memory.
                raise error(exc.errno, f'cannot load the database: {exc.strerror}',
                            self._data_filename) from exc
            raise

    def _load(self, fd):
        """Build the index from the file open at *fd*; return it and the DataFile.

        A read-only open keeps the map it scanned; a writable one maps the file
        again for writing, once the torn tail (if any) is known.
        """
        if not self.readonly:
            compaction.remove_leftover(self._data_filename)
        stat = os.fstat(fd)
        if stat.st_size == 0:
            if self.readonly:
                self._build_index(b'', 0, 0)  # an empty file cannot be mapped: say why
            os.write(fd, format.HEADER_BYTES)
        scanned = DataFile(self._data_filename, fd, None, writable=False)
        try:
            index, end = self._build_index(scanned.map, scanned.size, stat.st_ino)
        except BaseException:
            scanned.map.close()
            raise
        if self.readonly:
            scanned.end = end
            return index, scanned
        scanned.map.close()
        return index, DataFile(self._data_filename, fd, end, writable=True)

    def _build_index(self, buf, size, ino):
        """Return the index of the data in *buf* and where the data ends.

        A fresh index snapshot gives the index up to where it was taken (the ``load``
        benchmark); only the records after that are scanned.
        """
        loading.check_header(buf, self._data_filename)
        snapshot_index = snapshot.load(self._snapshot_filename, buf, size, ino)
        index, start = snapshot_index or ({}, format.HEADER.size)
        self._snapshot_end = start  # close() need not write a snapshot that is current
        return loading.scan_into(index, buf, start, size, self._data_filename, self.path)

    def _set_state(self, index, datafile, cache=None):
        self._index, self._file = index, datafile
        self._cache = {} if cache is None else cache
        self._state = (index, datafile, self._cache)

    # -- reading ---------------------------------------------------------------

    def __getitem__(self, key):
        """Return the value of *key*: one dict lookup and one slice of the map.

        :raises KeyError: if there is no such key.
        :raises DBMChecksumError: with ``verify_checksums``, if the record is damaged.
        """
        if key.__class__ is not bytes:
            key = coerce(key)
        index, datafile, cache = self._state
        value = cache.get(key)
        if value is not None:
            return value
        writes = self._writes
        position = index[key]
        start = position >> 32
        size = position & _SIZE_MASK
        buf = datafile.map  # once: close() in another thread may unmap it, or drop it
        try:
            value = buf[start:start + size]
            if self.verify_checksums:
                self._verify(buf, key, value, start)
        except (ValueError, AttributeError, TypeError):  # closed by another thread meanwhile
            self._check_open()
            raise
        if size <= self._cached_max:
            if len(cache) >= self._cache_size:
                cache.clear()  # cheaper than an LRU's bookkeeping on every read
            cache[key] = value
            if self._writes != writes:  # a write of this key may have raced the read
                cache.pop(key, None)
        return value

    def _verify(self, buf, key, value, start):
        end = start + len(value)
        # A value cut short by the end of the file (an index snapshot that lies about
        # it) has no checksum to read: damage, like a checksum that does not match.
        if (end + format.CHECKSUM.size > len(buf)
                or format.crc32(value, format.crc32(key))
                != format.CHECKSUM.unpack_from(buf, end)[0]):
            record = start - format.RECORD_HEAD.size - len(key)
            raise DBMChecksumError(
                f'{self._data_filename}: checksum mismatch for key {key!r} in the record '
                f'at offset {record}; run: python -m semidbm check {self.path}')

    def __contains__(self, key):
        if key.__class__ is not bytes:
            try:
                key = coerce(key)
            except TypeError:
                return False
        return key in self._state[0]

    def __len__(self):
        return len(self._state[0])

    def __iter__(self):
        # Over a copy of the keys, so that writes during the loop are allowed.
        return iter(self.keys())

    def keys(self):
        """Return a list of all keys, as the stdlib's dbm modules do."""
        with self._lock:
            return list(self._index)

    # -- writing ---------------------------------------------------------------

    def __setitem__(self, key, value):
        """Store *value* under *key*: one record copied into the map (no system call).

        The bytes are in the operating system's page cache when this returns.
        """
        if key.__class__ is not bytes:
            key = coerce(key)
        if value.__class__ is not bytes:
            value = coerce(value, 'value')
        if self.readonly:
            self._check_writable('store a value')
        try:
            record = format.encode_put(key, value)
        except format.RecordTooLarge as exc:
            raise error(f'{self.path}: {exc}') from None
        with self._lock:
            # The append inlined: one frame less on the ``fill_*`` benchmarks' path.
            datafile = self._file
            if datafile is None:
                raise self._closed_error()
            try:
                start = datafile.append(record)
            except OSError as exc:
                raise self._append_error(exc) from exc
            self._index[key] = (start + _HEAD + len(key)) << 32 | len(value)
            self._writes += 1
            if self._cache:
                self._cache.pop(key, None)

    def __delitem__(self, key):
        """Delete *key* by appending a tombstone.

        :raises KeyError: if there is no such key (and nothing is written).
        """
        if key.__class__ is not bytes:
            key = coerce(key)
        if self.readonly:
            self._check_writable('delete a key')
        with self._lock:
            # The append inlined, as in __setitem__ (the ``delete_sequential`` benchmark).
            index, datafile = self._index, self._file
            if datafile is None:
                raise self._closed_error()
            if key not in index:
                raise KeyError(key)
            try:
                datafile.append(format.encode_delete(key))
            except OSError as exc:
                raise self._append_error(exc) from exc
            del index[key]
            self._writes += 1
            if self._cache:
                self._cache.pop(key, None)

    def update(self, other=(), /, **kwargs):
        """Store many pairs with one system call (the ``update_batch`` benchmark).

        All pairs are checked and encoded before anything is written: a wrong type
        stores none of them.  A process killed during the write keeps a prefix.
        """
        if isinstance(other, collections.abc.Mapping):
            pairs = other.items()
        elif hasattr(other, 'keys'):
            pairs = ((key, other[key]) for key in other.keys())
        else:
            pairs = other
        self._store_many(pairs)
        if kwargs:
            self._store_many(kwargs.items())

    def _store_many(self, pairs):
        self._check_writable('store values')
        if not isinstance(pairs, (list, tuple)):
            # All of them first: an iterator that reads or writes this db must
            # run before the records' offsets are fixed.
            pairs = list(pairs)
        if not pairs:
            return
        with self._lock:
            datafile = self._file
            if datafile is None:  # closed by another thread since the check
                raise self._closed_error()
            try:
                blob, keys, locations = format.encode_puts(pairs, datafile.end, _coerce_pair)
            except format.RecordTooLarge as exc:
                raise error(f'{self.path}: {exc}') from None
            self._append_many(blob)
            self._index.update(zip(keys, locations))
            self._writes += 1
            if self._cache:
                for key in keys:
                    self._cache.pop(key, None)

    @contextlib.contextmanager
    def batch(self, *, sync=False):
        """Group writes: ``with db.batch(): ...`` holds the write lock for the block.

        Each assignment in the block still reaches the operating system when it
        returns (appends are copies into the shared map: there is no system call per
        record to save, see the ``fill_*`` benchmarks), and no other thread's writes
        land between the block's records.  With *sync*, one ``fsync`` at the end of
        the block makes all of it durable on disk; without, durability on disk
        comes at :meth:`sync` (:meth:`close` does not fsync).  Not a transaction: a
        crash in the middle keeps the records written before it.
        """
        self._check_writable('write a batch')
        with self._lock:
            yield self
            if sync:
                self.sync()

    def clear(self):
        """Delete every key: one tombstone each, appended together."""
        self._check_writable('clear the database')
        with self._lock:
            keys = list(self._index)
            if keys:
                tombstones = list(map(format.encode_delete, keys))
                self._append_many(b''.join(tombstones))
                self._index.clear()
                self._writes += 1
                self._cache.clear()

    def _check_open(self):
        if self._file is None:
            raise self._closed_error()

    def _closed_error(self):
        return _ClosedIndex(self.path).error()

    def _check_writable(self, action):
        self._check_open()
        if self.readonly:
            raise error(f'{self.path}: cannot {action}: the database was opened '
                        f"read-only (flag 'r'); open it with flag 'w' or 'c' to write")

    def _append_many(self, blob):
        """Append *blob*, whole records, to the data file; return its offset.
        All writes but setitem's and delitem's (inlined) come here."""
        datafile = self._file
        if datafile is None:  # closed by another thread since the caller's check
            raise self._closed_error()
        try:
            return datafile.append_many(blob)
        except OSError as exc:
            raise self._append_error(exc) from exc

    def _append_error(self, exc):
        return error(exc.errno, f'cannot append to the database ({exc.strerror}); '
                     f'nothing was written', self._data_filename)

    # -- compaction, sync and close ---------------------------------------------

    def compact(self):
        """Rewrite the data file with only the live records.

        The records' bytes are copied, not re-encoded (the ``compact`` benchmark).
        A crash at any step leaves the old file or the new one, both complete.

        :raises error: if it fails; the database is then unchanged and usable.
        """
        self._check_writable('compact')
        with self._lock:
            self._check_open()
            try:
                # The snapshot describes the old file: it goes before the replace, as
                # left beside the new file by a crash it would be trusted again if
                # the new file ever got the old one's inode number.  It is written
                # anew at close, not here (the ``compact`` benchmark).
                snapshot.remove(self._snapshot_filename)
                self._snapshot_end = None
                index, compacted = compaction.write_compacted(
                    self._file, self._index, self._data_filename, self._mode)
            except OSError as exc:
                raise error(exc.errno, f'compaction failed, the database is unchanged '
                            f'({exc.strerror})', self._data_filename) from exc
            old = self._file
            self._set_state(index, compacted, self._cache)  # the values did not change
            old.detach()
            try:
                compaction.fsync_directory(self.path)
            except OSError as exc:
                raise error(exc.errno, f'compacted, but the directory could not be '
                            f'synced ({exc.strerror}): the old file may come back after '
                            f'a power loss', self.path) from exc

    def sync(self):
        """Make every write so far durable on disk (``msync`` and ``fsync``).

        Harmless on a read-only db (shelve calls it).
        """
        with self._lock:
            self._check_open()
            try:
                self._file.sync()
            except OSError as exc:
                raise error(exc.errno, f'cannot sync the database ({exc.strerror}); the '
                            f'writes since the last sync may not be on disk',
                            self._data_filename) from exc

    def close(self, compact=False):
        """Close the db; with *compact*, compact it first.  Closing twice is harmless.

        The pad past the logical end is cut, so the file is exactly its records.
        On a read-only db, *compact* is ignored (as in semidbm 0.5.1).
        """
        with self._lock:
            if self._file is None:
                return
            if compact and not self.readonly:
                self.compact()
            if not self.readonly:
                self._save_snapshot()
            datafile = self._file
            self._set_state(_ClosedIndex(self.path), None)
            try:
                datafile.close()
            except OSError as exc:
                # Closed all the same; a pad left behind is ignored by the next open.
                raise error(exc.errno, f'closing the database failed ({exc.strerror})',
                            self._data_filename) from exc
            finally:
                self._release_process_lock()

    def _release_process_lock(self):
        held, self._process_lock = self._process_lock, None
        if held is not None:
            held.release()

    def _save_snapshot(self):
        """Save the index for the next open (large databases only, see snapshot.py)."""
        datafile = self._file
        if datafile.end == self._snapshot_end:
            return
        if len(self._index) < snapshot.MIN_KEYS:
            snapshot.remove(self._snapshot_filename)
            return
        try:
            snapshot.write(self._snapshot_filename, self._index, datafile.map,
                           datafile.end, os.fstat(datafile.fd).st_ino)
        except OSError:
            # Only an optimisation: without it the next open scans.
            snapshot.remove(self._snapshot_filename)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        state = 'closed' if self._file is None else f'{len(self._index)} keys'
        mode = 'read-only' if self.readonly else 'read-write'
        return f'<{type(self).__name__} {self.path!r} {mode}, {state}>'


class _SemiDBM(SemiDBM):
    """The 0.5.1 class name and signature, for code that built the store directly.

    *renamer* and *data_loader* are accepted and not used: replacing is ``os.replace``
    everywhere and loading always goes through the data file's map.
    """

    def __init__(self, dbdir, renamer=None, data_loader=None, verify_checksums=False):
        super().__init__(dbdir, 'c', verify_checksums=verify_checksums)
