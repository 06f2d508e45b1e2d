"""Promises about the read cache (semidbm/db.py, semidbm/readcache.py): a value read
again comes from memory, no write through the same object, racing or not, ever leaves a
stale value in it, and while reads do not repeat the cache keeps only one value in
readcache.SAMPLE."""
import threading

import pytest

import semidbm
from semidbm import readcache
from semidbm.db import CACHED_VALUE_MAX


@pytest.fixture
def store(path):
    """A semidbm database holding ``k: old`` and ``other: value``, open for writing."""
    with semidbm.open(path, 'c') as opened:
        opened.update({b'k': b'old', b'other': b'value'})
        yield opened


def cached(db):
    return dict(db._cache)


def warm(db):
    """Whether every value read from the file goes in the cache."""
    return db._cache_policy.warm


def test_a_value_read_is_kept_and_served_again(store):
    assert store[b'k'] == b'old'
    assert cached(store) == {b'k': b'old'}
    datafile = store._state[1]
    datafile.map, mapped = None, datafile.map  # were it read again, this would fail
    assert store[b'k'] == b'old'
    datafile.map = mapped


@pytest.mark.parametrize('write, expected', [
    pytest.param(lambda db: db.__setitem__(b'k', b'new'), b'new', id='setitem'),
    pytest.param(lambda db: db.update({b'k': b'new'}), b'new', id='update'),
    pytest.param(lambda db: db.setdefault(b'k', b'unused'), b'old', id='setdefault'),
    pytest.param(lambda db: db.compact(), b'old', id='compact'),
])
def test_a_write_after_a_read_is_what_the_next_read_sees(store, write, expected):
    assert store[b'k'] == b'old'
    write(store)
    assert store[b'k'] == expected
    assert store.get(b'k') == expected


@pytest.mark.parametrize('delete', [
    pytest.param(lambda db: db.__delitem__(b'k'), id='del'),
    pytest.param(lambda db: db.pop(b'k'), id='pop'),
    pytest.param(lambda db: db.clear(), id='clear'),
])
def test_a_delete_after_a_read_is_a_key_error(store, delete):
    assert store[b'k'] == b'old'
    delete(store)
    with pytest.raises(KeyError):
        store[b'k']
    assert b'k' not in store


def test_a_closed_database_says_closed_even_for_a_cached_key(store):
    assert store[b'k'] == b'old'
    store.close()
    with pytest.raises(semidbm.error, match='closed'):
        store[b'k']


def test_cache_size_zero_keeps_nothing(path):
    with semidbm.open(path, 'c', cache_size=0) as db:
        db[b'k'] = b'v'
        assert db[b'k'] == b'v' and db[b'k'] == b'v'
        assert cached(db) == {}


def read_all(db, numbers):
    for n in numbers:
        assert db[b'%d' % n] == b'v%d' % n
        assert len(cached(db)) <= db._cache_size


@pytest.fixture
def numbered(path):
    """A database of 1000 keys b'0'... with values b'v0'..., its cache of 4 values."""
    with semidbm.open(path, 'c', cache_size=4) as db:
        db.update((b'%d' % n, b'v%d' % n) for n in range(1000))
        yield db


def test_a_working_set_that_fits_never_fills_the_cache(numbered):
    read_all(numbered, [0, 1, 2, 3] * 1000)
    assert warm(numbered) and set(cached(numbered)) == {b'0', b'1', b'2', b'3'}


def test_reads_that_repeat_keep_the_cache_warm_past_full(numbered):
    read_all(numbered, list(range(6)) * 100)  # six keys: the cache fills every few reads
    assert warm(numbered)


def test_reads_that_never_repeat_turn_the_cache_cold_after_two_generations(numbered):
    read_all(numbered, range(8))  # the first generation (not judged), then the second
    assert warm(numbered)
    read_all(numbered, [8])  # the cache full again, no reuse of the first: cold
    assert not warm(numbered)
    read_all(numbered, list(range(9, 1000)) * 30)  # 991 keys: a cache of 4 serves few
    assert not warm(numbered)


def test_a_cold_cache_keeps_nothing_more_and_still_serves_what_it_holds(numbered):
    read_all(numbered, range(9))
    assert not warm(numbered)
    kept = cached(numbered)
    read_all(numbered, range(100, 200))
    assert cached(numbered) == kept
    numbered._cache[b'0'] = b'v0'  # as if read while warm
    datafile = numbered._state[1]
    datafile.map, mapped = None, datafile.map  # were it read again, this would fail
    assert numbered[b'0'] == b'v0'
    datafile.map = mapped
    numbered[b'0'] = b'new'
    assert numbered[b'0'] == b'new' and b'0' not in cached(numbered)


def test_a_cold_cache_turns_warm_when_reads_come_back(numbered):
    read_all(numbered, range(9))
    assert not warm(numbered)
    read_all(numbered, [500, 501, 502] * readcache.SAMPLE * readcache.WINDOW)
    assert warm(numbered)
    assert set(cached(numbered)) == {b'500', b'501', b'502'}


def test_a_warm_generation_judges_by_its_reuses_against_the_cache_size():
    policy = readcache.Policy(64)
    first = {b'%d' % n: b'' for n in range(64)}
    policy.renewed(first)  # the first generation: not judged
    for n in range(64 // readcache.WORTH):  # exactly 1 in WORTH of the size reused
        policy.missed(b'%d' % n)
    policy.renewed({b'x%d' % n: b'' for n in range(64)})
    assert policy.warm
    for n in range(64 // readcache.WORTH - 1):  # one fewer
        policy.missed(b'x%d' % n)
    policy.renewed({})
    assert not policy.warm and policy.ticks == readcache.SAMPLE


def test_a_cold_window_turns_warm_at_its_reuses_and_not_before():
    policy = readcache.Policy(readcache.WINDOW * readcache.WINDOW)  # any 3 reuses do
    policy.ticks = readcache.SAMPLE  # cold
    window = [b'%d' % n for n in range(readcache.WINDOW)]
    for key in window:
        policy.watched(key)
    second = [window[n] if n < readcache.REUSES - 1 else b'new%d' % n
              for n in range(readcache.WINDOW)]  # one reuse fewer than it takes
    for key in second:
        policy.watched(key)
    assert not policy.warm
    for n in range(readcache.WINDOW):
        policy.watched(second[n] if n < readcache.REUSES else b'other%d' % n)
    assert policy.warm


def test_a_cache_of_size_zero_never_turns_warm():
    policy = readcache.Policy(0)
    for n in range(readcache.WINDOW * 3):
        policy.watched(b'k')
    assert not policy.warm and policy.ticks == readcache.SAMPLE


def test_long_values_are_not_cached(store):
    store[b'long'] = b'x' * (CACHED_VALUE_MAX + 1)
    store[b'edge'] = b'x' * CACHED_VALUE_MAX
    assert store[b'long'] and store[b'edge']
    assert set(cached(store)) == {b'edge'}


@pytest.mark.parametrize('size', [-1, 1.5, '10'])
def test_a_bad_cache_size_is_refused(path, size):
    with pytest.raises(ValueError, match='cache_size'):
        semidbm.open(path, 'c', cache_size=size)


class RacingIndex(dict):
    """An index whose lookup of *key* lets a write of it happen in the middle of the
    read: after the read took the old position, before it copied the value."""

    def arm(self, db, key, value):
        self.db, self.key, self.value = db, key, value

    def __getitem__(self, key):
        position = super().__getitem__(key)
        if key == getattr(self, 'key', None):
            del self.key
            self.db[key] = self.value
        return position


def test_a_read_racing_a_write_leaves_no_stale_value(store):
    index = RacingIndex(store._index)
    store._set_state(index, store._file)
    index.arm(store, b'k', b'new')
    assert store[b'k'] == b'old'  # the read began before the write: either value is right
    assert b'k' not in cached(store)
    assert store[b'k'] == b'new'


def test_reads_in_threads_racing_writes_end_with_the_last_value(path):
    with semidbm.open(path, 'c') as db:
        db[b'k'] = b'0'
        stop = threading.Event()

        def read():
            while not stop.is_set():
                db[b'k']

        readers = [threading.Thread(target=read) for _ in range(3)]
        for thread in readers:
            thread.start()
        try:
            for n in range(1, 3000):
                db[b'k'] = b'%d' % n
        finally:
            stop.set()
            for thread in readers:
                thread.join()
        assert db[b'k'] == b'2999'
