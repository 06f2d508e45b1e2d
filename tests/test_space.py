"""Promises about space: ``compact_at_close`` keeps a file near its live size without a
manual ``compact()``, never costs a close that wrote little, and never fails a close.

A deliberate difference from the stdlib: neither ``dbm.dumb`` nor ``dbm.gnu`` reclaims
space by itself (dbm.dumb's file only grows; gdbm needs ``reorganize()``).
"""
import errno
import os
import warnings

import pytest

import helpers
import semidbm
from semidbm import compaction, format

VALUE = b'v' * 1000
KEYS = [b'%04d' % n for n in range(1000)]


def overwrite(db, rounds):
    """Store every key *rounds* times: the file grows by about 1 MiB a round, all but
    the last round's bytes dead."""
    for number in range(rounds):
        db.update((key, VALUE[:-4] + b'%04d' % number) for key in KEYS)


def file_size(path):
    return os.path.getsize(helpers.data_path(path))


def live_size(path):
    with semidbm.open(path, 'r') as db:
        return format.live_bytes(db._index)


def test_a_file_mostly_dead_is_compacted_at_close(path):
    with semidbm.open(path, 'c') as db:
        overwrite(db, rounds=20)  # 20 MiB written, 19 of them dead
        assert file_size(path) > compaction.DUE_GROWTH
    assert file_size(path) == live_size(path)
    assert helpers.contents(path) == {key: VALUE[:-4] + b'0019' for key in KEYS}


def test_none_never_compacts(path):
    with semidbm.open(path, 'c', compact_at_close=None) as db:
        overwrite(db, rounds=20)
    assert file_size(path) > 19 * live_size(path)


def test_a_file_that_grew_little_is_left_alone_however_dead(path):
    with semidbm.open(path, 'c') as db:
        overwrite(db, rounds=10)  # 10 MiB: under DUE_GROWTH
    assert file_size(path) > 9 * live_size(path)


def test_a_file_mostly_live_is_left_alone_however_grown(path):
    with semidbm.open(path, 'c') as db:
        db.update((b'%06d' % n, VALUE) for n in range(20000))  # 20 MiB, all live
        db.update((b'%06d' % n, VALUE) for n in range(5000))  # a fifth dead
    assert file_size(path) > 1.2 * live_size(path)


def test_the_growth_counts_from_the_open(path):
    with semidbm.open(path, 'c', compact_at_close=None) as db:
        overwrite(db, rounds=20)
    size = file_size(path)
    with semidbm.open(path, 'w') as db:  # reopened: nothing written since the open
        db[KEYS[0]] = VALUE
    assert file_size(path) > size


def count_passes(monkeypatch):
    """The passes close() makes over the index to count live bytes, as a list."""
    passes = []
    real = format.live_bytes

    def counted(index):
        passes.append(len(index))
        return real(index)
    monkeypatch.setattr(format, 'live_bytes', counted)
    return passes


def test_a_close_after_writes_that_replaced_no_key_never_counts_dead_bytes(
        path, monkeypatch):
    passes = count_passes(monkeypatch)
    with semidbm.open(path, 'c') as db:  # 20 MiB of new keys, put one by one and in batches
        for n in range(10000):
            db[b'%06d' % n] = VALUE
        db.update((b'%06d' % n, VALUE) for n in range(10000, 20000))
    assert passes == [] and file_size(path) > compaction.DUE_GROWTH


@pytest.mark.parametrize('replace', [
    pytest.param(lambda db: db.__setitem__(b'000000', b'new'), id='overwrite'),
    pytest.param(lambda db: db.__delitem__(b'000000'), id='delete'),
    pytest.param(lambda db: db.update([(b'new', b'1'), (b'new', b'2')]), id='batch'),
])
def test_a_close_after_one_replaced_key_counts_them(path, monkeypatch, replace):
    passes = count_passes(monkeypatch)
    with semidbm.open(path, 'c') as db:
        db.update((b'%06d' % n, VALUE) for n in range(20000))
        replace(db)
    assert len(passes) == 1


def test_the_share_is_the_callers(path):
    with semidbm.open(path, 'c', compact_at_close=0.99) as db:
        overwrite(db, rounds=20)  # 95% dead: under 0.99
    assert file_size(path) > 19 * live_size(path)


def test_a_read_only_open_never_compacts(path):
    with semidbm.open(path, 'c', compact_at_close=None) as db:
        overwrite(db, rounds=20)
    size = file_size(path)
    semidbm.open(path, 'r').close()
    assert file_size(path) == size


def test_a_compaction_that_fails_at_close_warns_and_the_close_goes_on(path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    db = semidbm.open(path, 'c')
    overwrite(db, rounds=20)
    monkeypatch.setattr(compaction, 'compact', full_disk)
    with pytest.warns(RuntimeWarning, match='not compacted at close.*No space left'):
        db.close()
    monkeypatch.undo()
    with pytest.raises(semidbm.error, match='closed'):
        db[KEYS[0]]
    assert file_size(path) > 19 * live_size(path)  # not compacted
    assert helpers.contents(path) == {key: VALUE[:-4] + b'0019' for key in KEYS}


@pytest.mark.parametrize('share', [0, -0.5, 1.5, True, '0.5', float('nan')])
def test_a_bad_share_is_refused_before_anything_is_opened(path, share):
    with pytest.raises(ValueError, match='compact_at_close'):
        semidbm.open(path, 'c', compact_at_close=share)
    assert not os.path.exists(path)


def test_a_good_share_opens(path):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        semidbm.open(path, 'c', compact_at_close=1).close()
