"""The store: a mapping over an index in memory and an append-only data file.

The index maps each key to its entry (:func:`semidbm.format.entry`); the open sequence
that builds it is :mod:`semidbm.opening`'s, the record bytes :mod:`semidbm.format`'s,
the file's map :mod:`semidbm.datafile`'s, compaction :mod:`semidbm.compaction`'s.
"""
from __future__ import annotations

import collections.abc
import contextlib
import threading
import warnings
from typing import (TYPE_CHECKING, Any, Dict, ItemsView, Iterable, Iterator, List, Optional,
                    Protocol, Tuple, TypeVar, Union, ValuesView, cast, overload)

from semidbm import catchup, compaction, format, opening, readcache, snapshot, stats
from semidbm.exceptions import DBMChecksumError, error
from semidbm.datafile import DataFile
from semidbm.guards import Closed, Data, coerce, coerce_pair
from semidbm.layout import AnyPath

_NOTHING_WRITTEN = 'nothing was written'
#: Values longer than this are never kept by the read cache: their copy out of the
#: map costs more than the lookup a cache would save, and they would crowd it.
CACHED_VALUE_MAX = 1024
_HEAD = format.RECORD_HEAD.size
_SHIFT, _SIZE_MASK = format.ENTRY_SHIFT, format.ENTRY_SIZE_MASK
_DB = TypeVar('_DB', bound='SemiDBM')
_K = TypeVar('_K', bound=Data)
_V = TypeVar('_V', bound=Data)
_V_co = TypeVar('_V_co', bound=Data, covariant=True)
_T = TypeVar('_T')


class _KeysAndGetItem(Protocol[_K, _V_co]):
    """What :meth:`SemiDBM.update` takes as a mapping: ``keys()`` and ``[key]``."""

    def keys(self) -> Iterable[_K]: ...

    def __getitem__(self, key: _K, /) -> _V_co: ...


class SemiDBM(collections.abc.MutableMapping[bytes, bytes]):
    """An open semidbm database; use :func:`semidbm.open` to get one.

    Constructing the class directly is the same as calling :func:`semidbm.open` with
    the same arguments, which it documents: *path* is its *filename*, and *flag*,
    *mode*, *verify_checksums*, *lock*, *lock_timeout*, *cache_size* and
    *compact_at_close* mean what they mean there.  A database is a context manager:
    ``with semidbm.open(...) as db:`` closes it at the end of the block, even when the
    block raises.
    """

    def __init__(self, path: AnyPath, flag: opening.Flag = 'r', mode: int = 0o666, *,
                 verify_checksums: bool = False, lock: bool = True,
                 lock_timeout: Optional[float] = None, cache_size: int = 16384,
                 compact_at_close: Optional[float] = 0.5) -> None:
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f'cache_size must be an int >= 0, not {cache_size!r}')
        if compact_at_close is not None and not (
                isinstance(compact_at_close, (int, float))
                and not isinstance(compact_at_close, bool) and 0 < compact_at_close <= 1):
            raise ValueError(f'compact_at_close must be a fraction in (0, 1] or None, not '
                             f'{compact_at_close!r}')
        opened = opening.open_database(path, flag, mode, lock=lock,
                                       lock_timeout=lock_timeout)
        # From here on nothing can fail: the object is whole, or was never made.
        self._files = opened.files
        self.path = opened.files.directory
        self.readonly = not opened.datafile.writable
        self.verify_checksums = verify_checksums
        self._process_lock = opened.process_lock
        self._shares = lock  # a reader that reopens takes its shared flock again
        self._file_mode = opened.mode
        self._version = opened.version
        self._snapshot_end = opened.snapshot_end  # close() need not rewrite a current one
        self._leftover = opened.leftover
        self._compact_at_close = compact_at_close
        # The end, the count of records written and of keys at open or at the last
        # compact: close() counts dead bytes only if a record since replaced a key.
        self._grown_from = opened.datafile.end
        self._keys_from, self._writes_from = len(opened.index), 0
        # The read cache: up to cache_size values of recent reads (the ``read_hot``
        # benchmark), every one of them or one in readcache.SAMPLE (readcache.py).
        # Writes count themselves in _writes before they drop a key from it, so a read
        # that raced a write sees the count move and keeps nothing.
        self._cache_size = cache_size
        self._cached_max = CACHED_VALUE_MAX if cache_size else -1
        self._cache_policy = readcache.Policy(cache_size)
        self._ticks = self._cache_policy.ticks  # reads from the file to one cached
        self._cache: Dict[bytes, bytes] = {}
        self._writes = 0
        # Writes, compaction and close hold it.  Reads don't (a lock costs them more
        # than the read itself, read_random benchmark): they take index and file from
        # ``_state``, which is swapped whole; a read whose map is closed under it (a
        # new map replaced it: DataFile.replace_map) reads again.
        self._lock = threading.RLock()
        self._set_state(opened.index, opened.datafile)

    def _set_state(self, index: format.Index, datafile: DataFile) -> None:
        # Readers take all three from _state at once.
        self._index, self._file = index, datafile
        self._state = (index, datafile, self._cache)

    @property
    def _data_filename(self) -> str:  # semidbm 0.5.1's name for it
        return self._files.data

    # -- reading ---------------------------------------------------------------

    def __getitem__(self, key: Data) -> bytes:
        """Return the value of *key*: one dict lookup and one slice of the map.

        :raises KeyError: if there is no such key.
        :raises DBMChecksumError: with ``verify_checksums``, if the record is damaged.
        """
        if key.__class__ is not bytes:
            key = coerce(key)
        # A type checker cannot narrow on __class__ (it can on type(key), which costs
        # a read 5 ns more on Python 3.11, 35 on 3.9); at run time this tests a constant.
        if TYPE_CHECKING:
            key = cast(bytes, key)
        index, datafile, cache = self._state
        # ``in`` then ``[]``, not get(): no method call on a miss, the cold reads' path.
        if key in cache:
            try:
                return cache[key]
            except KeyError:  # a write in another thread dropped it meanwhile
                pass
        writes = self._writes
        entry = index[key]
        start = entry >> _SHIFT
        size = entry & _SIZE_MASK
        buf = datafile.map  # once: another thread may close it, or close() drop it
        try:
            value = buf[start:start + size]
            damaged = self.verify_checksums and not format.value_ok(buf, key, value, start)
        except (ValueError, TypeError):  # closed by another thread meanwhile
            self._file.map  # noqa: B018 -- raises the closed error if so
            if not buf.closed:
                raise
            return self[key]  # replaced by growth, compaction or a refresh: read anew
        if damaged:
            if buf.closed:  # under the check, where len() of a closed map is 0 (PyPy)
                self._file.map  # noqa: B018 -- raises the closed error if so
                return self[key]
            raise DBMChecksumError(
                f'{self._files.data}: checksum mismatch for key {key!r} in the record '
                f'at offset {start - _HEAD - len(key)}; run: python -m semidbm check '
                f'{self.path}')
        ticks = self._ticks - 1
        if ticks:
            self._ticks = ticks
        else:
            self._admit(cache, key, value, writes)
        return value

    def _admit(self, cache: Dict[bytes, bytes], key: bytes, value: bytes,
               writes: int) -> None:
        """Show the read of *value* to the read cache's policy (readcache.py), and
        while it is warm put the value in the cache."""
        policy = self._cache_policy
        if policy.ticks != 1:  # cold (policy.warm, without a property's call)
            policy.watched(key)
        elif len(value) <= self._cached_max:
            policy.missed(key)
            if len(cache) >= self._cache_size:
                with self._lock:  # a new dict, not clear(): cheaper than an LRU's upkeep
                    if cache is self._cache:
                        self._cache = {}
                        self._set_state(self._index, self._file)
                        policy.renewed(cache)
                    cache = self._cache
            if policy.warm:
                cache[key] = value
                if self._writes != writes:  # a write of this key may have raced the read
                    cache.pop(key, None)
        self._ticks = policy.ticks

    def __contains__(self, key: object) -> bool:
        """True if *key* (bytes, or str as UTF-8) is in the database: a dict lookup,
        no I/O.  A key of any other type is simply not there."""
        if key.__class__ is not bytes:
            try:
                key = coerce(key)
            except TypeError:
                return False
        return key in self._state[0]

    def __len__(self) -> int:
        return len(self._state[0])

    def __iter__(self) -> Iterator[bytes]:
        # Over a copy of the keys, so that writes during the loop are allowed.
        return iter(self.keys())

    # A list, not the KeysView of a Mapping: what the stdlib's dbm modules return.
    def keys(self) -> List[bytes]:  # type: ignore[override]
        """Return a list of all keys, as the stdlib's dbm modules do."""
        with self._lock:
            return list(self._index)

    def items(self) -> ItemsView[bytes, bytes]:
        """A view of the (key, value) pairs; on a closed db, raises :data:`error` at
        once, as ``keys()`` does (not at the first use of the view)."""
        len(self._index)  # the closed stand-in raises here
        return super().items()

    def values(self) -> ValuesView[bytes]:
        """A view of the values; on a closed db, raises :data:`error` at once."""
        len(self._index)
        return super().values()

    if TYPE_CHECKING:
        # What the methods inherited from MutableMapping take and give here: they go
        # through [key], so they take a str key too (and setdefault returns *default*
        # itself when it stores it).
        @overload
        def get(self, key: Data) -> Optional[bytes]: ...
        @overload
        def get(self, key: Data, default: _T) -> Union[bytes, _T]: ...
        def get(self, key: Data, default: object = None) -> object: ...

        @overload
        def pop(self, key: Data) -> bytes: ...
        @overload
        def pop(self, key: Data, default: _T) -> Union[bytes, _T]: ...
        def pop(self, key: Data, default: object = None) -> object: ...

        def setdefault(self, key: Data, default: _V) -> Union[bytes, _V]: ...

    def stats(self) -> stats.Stats:
        """Describe the database: a dict of its keys, bytes, snapshot and recovery
        (:mod:`semidbm.stats` lists them).  Cost: one pass over the keys."""
        with self._lock:
            return stats.describe(self._files, self._index, self._file.end,
                                  self._version, self._snapshot_end, self._leftover)

    def refresh(self) -> None:
        """Bring a read-only view up to date: every write the writer beside it had
        made when this is called is seen after it.  Between calls the view stays.

        Cost: a ``stat`` and an ``fstat``, and ``pread`` of the bytes appended since the
        last refresh,
        64 KiB at a time; after the writer compacted (a new file), an open of the new
        file, through its index snapshot if it has a fresh one.  Harmless on a writable
        database, which always sees its own writes.
        """
        with self._io('refresh the view', 'it is as it was', write=False) as datafile:
            if datafile.writable:
                return
            found = catchup.new_records(self._files, datafile)
            if found is None:
                return self._reopen(datafile)
            delta, end = found
            if delta:
                catchup.extend(datafile, end)  # the map first: reads check no bounds
                catchup.apply(self._index, delta)
                self._writes += 1  # as a write does: a read that raced it caches nothing
                for key in delta:
                    self._cache.pop(key, None)

    def _reopen(self, old: DataFile) -> None:
        opened = opening.open_database(self.path, 'r', lock=self._shares,
                                       lock_timeout=None, mode=self._file_mode)
        self._version, self._leftover = opened.version, opened.leftover
        self._snapshot_end = opened.snapshot_end
        self._cache = {}  # a new file: none of the values read before may stand
        self._set_state(opened.index, opened.datafile)
        old.detach()  # a read racing this one reads again

    # -- writing ---------------------------------------------------------------

    def __setitem__(self, key: Data, value: Data) -> None:
        """Store *value* under *key*: one record copied into the map (no system call).

        The bytes are in the operating system's page cache when this returns.
        """
        if key.__class__ is not bytes:
            key = coerce(key)
        if value.__class__ is not bytes:
            value = coerce(value, 'value')
        if TYPE_CHECKING:
            key, value = cast(bytes, key), cast(bytes, value)
        if self.readonly:
            self._check_writable('store a value')
        try:
            record = format.encode_put(key, value)
        except format.RecordTooLarge as exc:
            raise error(f'{self.path}: {exc}') from None
        with self._lock:
            # DataFile.append inlined: one frame less on the ``fill_*`` benchmarks' path.
            datafile = self._file  # the closed stand-in raises at .end
            start = datafile.end
            stop = start + len(record)
            if stop >= datafile.size:  # at least one pad byte stays after the last record
                try:
                    datafile.grow_for(len(record))
                except OSError as exc:
                    raise self._error(exc, 'append to the database', _NOTHING_WRITTEN) from exc
            datafile.map[start:stop] = record
            datafile.end = stop
            self._index[key] = (start + _HEAD + len(key)) << _SHIFT | len(value)
            self._writes += 1
            if self._cache:
                self._cache.pop(key, None)

    def __delitem__(self, key: Data) -> None:
        """Delete *key* by appending a tombstone.

        :raises KeyError: if there is no such key (and nothing is written).
        """
        if key.__class__ is not bytes:
            key = coerce(key)
        if TYPE_CHECKING:
            key = cast(bytes, key)
        if self.readonly:
            self._check_writable('delete a key')
        with self._lock:
            # The append inlined, as in __setitem__ (the ``delete_sequential`` benchmark).
            index = self._index
            if key not in index:
                raise KeyError(key)
            try:
                self._file.append(format.encode_delete(key))
            except OSError as exc:
                raise self._error(exc, 'append to the database', _NOTHING_WRITTEN) from exc
            del index[key]
            self._writes += 1
            if self._cache:
                self._cache.pop(key, None)

    @overload
    def update(self, other: _KeysAndGetItem[_K, Data], /, **kwargs: Data) -> None: ...
    @overload
    def update(self, other: Iterable[Tuple[Data, Data]] = (), /, **kwargs: Data) -> None: ...

    def update(self, other: Any = (), /, **kwargs: Data) -> None:
        """Store many pairs with one system call.

        All pairs are checked and encoded before anything is written: a wrong type
        stores none of them.  A crash during the write keeps a prefix of the pairs.
        """
        # One write for the batch, not a copy per pair: the ``update_batch`` benchmark.
        pairs: Iterable[Tuple[Any, Any]]
        if isinstance(other, collections.abc.Mapping):
            pairs = other.items()
        elif hasattr(other, 'keys'):
            pairs = ((key, other[key]) for key in other.keys())
        else:
            pairs = other
        self._store_many(pairs)
        if kwargs:
            self._store_many(kwargs.items())

    def _store_many(self, pairs: Iterable[Tuple[Any, Any]]) -> None:
        self._check_writable('store values')
        if not isinstance(pairs, (list, tuple)):
            # All of them first: an iterator that reads or writes this db must
            # run before the records' offsets are fixed.
            pairs = list(pairs)
        if not pairs:
            return
        with self._io('append to the database', _NOTHING_WRITTEN) as datafile:
            try:
                blob, keys, entries = format.encode_puts(pairs, datafile.end, coerce_pair)
            except format.RecordTooLarge as exc:
                raise error(f'{self.path}: {exc}') from None
            datafile.append_many(blob)
            self._index.update(zip(keys, entries))
            self._writes += len(keys)  # one a record: close() compares it to the keys
            if self._cache:
                for key in keys:
                    self._cache.pop(key, None)

    @contextlib.contextmanager
    def batch(self: _DB, *, sync: bool = False) -> Iterator[_DB]:
        """Group writes: ``with db.batch(): ...`` holds the write lock for the block.

        Each assignment in the block still reaches the operating system when it
        returns, and no other thread's writes land between the block's records.
        With *sync*, one :meth:`sync` at the end of the block makes all of it durable
        on disk; without, durability on disk comes at :meth:`sync` or :meth:`close`.
        Not a transaction: a crash in the middle keeps the records written before it.
        """
        # Appends are copies into the shared map: there is no system call per record
        # for a batch to save (the ``fill_*`` benchmarks).
        with self._io('write a batch', 'the writes before it were kept'):
            yield self
            if sync:
                self.sync()

    def clear(self) -> None:
        """Delete every key: one tombstone each, appended together."""
        with self._io('clear the database', _NOTHING_WRITTEN) as datafile:
            keys = list(self._index)
            if keys:
                datafile.append_many(b''.join(map(format.encode_delete, keys)))
                self._index.clear()
                self._writes += 1
                self._cache = {}
                self._set_state(self._index, self._file)

    @contextlib.contextmanager
    def _io(self, action: str, outcome: str, write: bool = True) -> Iterator[DataFile]:
        """The one way in for the operations off the hot paths: holds the lock,
        refuses a closed db (and a read-only one, to *write*), yields the data file,
        and turns a failure of the system into :data:`error`."""
        with self._lock:
            if write:
                self._check_writable(action)
            try:
                yield self._file
            except error:
                raise
            except OSError as exc:
                raise self._error(exc, action, outcome) from exc

    def _check_writable(self, action: str) -> None:
        if not self._file.writable:  # on a closed db, Closed raises first
            raise error(f'{self.path}: cannot {action}: the database was opened '
                        f"read-only (flag 'r'); open it with flag 'w' or 'c' to write")

    def _error(self, exc: OSError, action: str, outcome: str) -> error:
        """*exc*, an OSError of *action*, as ours, saying what came of it."""
        return error(exc.errno, f'cannot {action} ({exc.strerror}); {outcome}',
                     exc.filename or self._files.data)

    # -- compaction, sync and close ---------------------------------------------

    def compact(self) -> None:
        """Rewrite the data file with only the live records.

        The records' bytes are copied, not re-encoded.  A crash at any step leaves
        the old file or the new one, both complete.  Cost: a write of the live
        bytes; a sync of the old file, of the new one and of the directory, and two
        of the sync mark.

        :raises error: if it fails; the database is then unchanged and usable.
        """
        with self._io('compact', 'the database is unchanged') as datafile:
            # The old file durable first: the new file's sync mark, written before the
            # rename, may match the old file too (its live records can be the old
            # file's first bytes), and must not vouch for bytes of it never synced.
            datafile.sync()
            # The snapshot describes the old file: it goes before the replace, as left
            # beside the new file by a crash it would be trusted again if the new file
            # ever got the old one's inode number.  It is written anew at close, not
            # here (the ``compact`` benchmark).
            snapshot.discard(self._files)
            self._snapshot_end = None
            compaction.compact(self._files, datafile, self._index, self._file_mode,
                               self._switch_to)

    def _switch_to(self, index: format.Index, datafile: DataFile) -> None:
        old = self._file
        datafile.mark, old.mark = old.mark, None
        self._grown_from = datafile.end
        self._keys_from, self._writes_from = len(index), self._writes
        self._set_state(index, datafile)  # the values did not change: the cache stays
        old.detach()

    def sync(self) -> None:
        """Make every write so far durable on disk: ``msync`` and ``fdatasync`` of the
        data file, then ``pwrite`` and ``fdatasync`` of the sync mark that says so.

        Harmless, and free, on a read-only db (shelve calls it) or when nothing was
        written since the last sync.
        """
        with self._io('sync the database', 'the writes since the last sync may not '
                      'be on disk', write=False) as datafile:
            datafile.sync()

    def close(self, compact: bool = False) -> None:
        """Close the db; with *compact*, compact it first.  Closing twice is harmless.

        Every write is made durable first, as by :meth:`sync`, and
        the pad past the logical end is cut, so the file is exactly its records.
        On a read-only db, *compact* is ignored (as in semidbm 0.5.1).  The db is
        closed even when a step fails (as a Python file is when its flush fails):
        the error is raised after.
        """
        with self._lock:
            if isinstance(self._file, Closed):
                return
            try:
                if compact and not self.readonly:
                    self.compact()
                elif self._compact_at_close is not None and not self.readonly:
                    self._compact_if_due(self._compact_at_close)
                if not self.readonly:
                    self.sync()
                    # After the sync: a snapshot is trusted to describe durable data.
                    snapshot.save(self._files, self._index, self._file,
                                  self._snapshot_end, self._file_mode)
            finally:
                self._release()

    def _compact_if_due(self, share: float) -> None:
        # Each record written since then added a key, unless it replaced or deleted one
        # (refresh() and clear() count too, but leave a db read-only or empty): with
        # none replaced, no byte died since, and the pass over the index is spared
        # (60-80 ms a million keys, on every close of the fill benchmarks).
        added = len(self._index) - self._keys_from
        if self._writes - self._writes_from == added:
            return
        end = self._file.end
        if compaction.due(self._index, end, end - self._grown_from, share):
            try:
                self.compact()
            except error as exc:  # a full disk, say: the close goes on without it
                warnings.warn(f'{self.path}: not compacted at close: {exc}', RuntimeWarning,
                              stacklevel=4)

    def _release(self) -> None:
        datafile = self._file
        closed = Closed(self.path)
        self._cache = {}  # so that every read asks the closed stand-in
        # The stand-in for both: to a type checker it is them (every use raises).
        self._set_state(cast(format.Index, closed), cast(DataFile, closed))
        try:
            datafile.close()
        except OSError as exc:
            # Closed all the same; a pad left behind is ignored by the next open.
            raise error(exc.errno, f'closing the database failed ({exc.strerror})',
                        self._files.data) from exc
        finally:
            if self._process_lock is not None:
                self._process_lock.release()

    def __enter__(self: _DB) -> _DB:
        """Return the database itself, for ``with semidbm.open(...) as db:``."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the database (see :meth:`close`) at the end of the ``with`` block."""
        self.close()

    def __del__(self) -> None:
        if '_state' not in self.__dict__:  # __init__ failed: nothing was opened
            return
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        closed = isinstance(self._file, Closed)
        state = 'closed' if closed else f'{len(self._index)} keys'
        mode = 'read-only' if self.readonly else 'read-write'
        return f'<{type(self).__name__} {self.path!r} {mode}, {state}>'


class _SemiDBM(SemiDBM):
    """The 0.5.1 class name and signature, for code that built the store directly.

    *renamer* and *data_loader* are accepted and not used: replacing is ``os.replace``
    everywhere and loading always goes through the data file's map.
    """

    def __init__(self, dbdir: AnyPath, renamer: object = None,
                 data_loader: object = None, verify_checksums: bool = False) -> None:
        super().__init__(dbdir, 'c', verify_checksums=verify_checksums)
