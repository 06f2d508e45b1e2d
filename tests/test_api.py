"""Promises about semidbm's own API, beyond the dbm interface: compaction, errors, stats().

Also the directory on disk, checksums, repr, large values and the index snapshot's
use.  What the stdlib's dbm modules share (flags, the types of keys and values, a
closed database) is promised once, for every backend, in ``test_parity.py``; bad
input in ``test_badinput.py``.
"""
import collections.abc
import dbm.dumb
import os
import re

import pytest

import helpers
import semidbm
from semidbm import datafile, format, layout, snapshot


def listing(path):
    """The files of the database in *path*, less the process lock file (``lock.py``).

    The lock file is made by the first writable open and stays, like ``data``.
    """
    return sorted(set(os.listdir(path)) - {'lock'})


def records_size(data):
    """The size of a data file holding exactly the records of the dict *data*."""
    return len(helpers.records(*data.items()))


def churn(db, rounds=5, keys=100):
    """Overwrite every key *rounds* times and delete a third; return what is live."""
    live = {}
    for round_ in range(rounds):
        for i in range(keys):
            key = b'key-%d' % i
            live[key] = db[key] = b'%d-' % round_ * 50
    for i in range(0, keys, 3):
        del db[b'key-%d' % i]
        del live[b'key-%d' % i]
    return live


# -- the on-disk layout ------------------------------------------------------------

def test_a_database_is_a_directory_holding_data(path):
    with semidbm.open(path, 'c') as db:
        db[b'a'] = b'1'
    assert os.path.isdir(path)
    assert listing(path) == ['data', layout.SYNCED]
    assert helpers.data_bytes(path).startswith(format.HEADER_BYTES)


def test_a_closed_file_is_exactly_its_records(path):
    data = {b'a': b'1', b'bb': b'', b'': b'empty key'}
    with semidbm.open(path, 'c') as db:
        db.update(data)
    assert os.path.getsize(helpers.data_path(path)) == records_size(data)


def held_open(path):
    """What this process holds of the files in *path*: descriptors, then mappings."""
    directory = os.path.realpath(path) + os.sep
    held = []
    for fd in os.listdir('/proc/self/fd'):
        try:
            target = os.readlink(f'/proc/self/fd/{fd}')
        except OSError:  # the descriptor listdir itself used, closed since
            continue
        if target.startswith(directory):
            held.append(f'fd {fd}: {target}')
    with open('/proc/self/maps') as maps:
        held += [line.strip() for line in maps if directory in line]
    return held


def replace_by_growth(writer, reader):
    writer[b'big'] = b'x' * datafile.MIN_GROWTH
    return writer


def replace_by_compaction(writer, reader):
    writer.compact()
    return writer


def replace_by_refresh(writer, reader):
    writer[b'big'] = b'x' * datafile.MIN_GROWTH  # past the reader's map
    reader.refresh()
    return reader


def replace_by_refresh_after_compaction(writer, reader):
    writer.compact()
    reader.refresh()
    return reader


@pytest.mark.parametrize('replace', [replace_by_growth, replace_by_compaction,
                                     replace_by_refresh,
                                     replace_by_refresh_after_compaction])
def test_close_leaves_no_descriptor_or_map_even_of_replaced_maps(path, replace):
    """A map that growth, compaction or a refresh replaced is dropped, not closed (a
    reader in another thread may still slice it), but close() unmaps it: it must not
    wait for the last reference to go, which on PyPy, without reference counting,
    is the garbage collector's next run (it kept the file's mapping and a
    descriptor, and a file system that held it could not be remounted)."""
    writer = semidbm.open(path, 'c')
    writer[b'a'] = b'1'
    writer.sync()
    reader = semidbm.open(path, 'r')
    held = [writer._file.map, reader._file.map]  # as a reader in another thread may
    replaced = replace(writer, reader)
    assert all(replaced._file.map is not old for old in held)
    assert replaced[b'a'] == b'1'
    reader.close()
    writer.close()
    assert held_open(path) == []
    assert all(old.closed for old in held)


def test_open_returns_a_semidbm_mutable_mapping(path):
    with semidbm.open(path, 'c') as db:
        assert isinstance(db, semidbm.SemiDBM)
        assert isinstance(db, collections.abc.MutableMapping)


@pytest.mark.parametrize('timeout', ['1', -1, float('nan'), True, [1]])
def test_a_lock_timeout_that_is_no_number_of_seconds_is_refused(path, timeout):
    with pytest.raises(ValueError, match=r'lock_timeout must be a number of seconds'):
        semidbm.open(path, 'c', lock_timeout=timeout)
    assert not os.path.exists(path)  # refused before anything was made


def test_options_beyond_the_dbm_signature_are_keyword_only(path):
    with pytest.raises(TypeError):
        semidbm.open(path, 'c', 0o666, True)
    assert not os.path.exists(path)


# -- compaction --------------------------------------------------------------------

def test_compact_keeps_the_live_data_and_shrinks_the_file(path):
    with semidbm.open(path, 'c') as db:
        live = churn(db)
    before = os.path.getsize(helpers.data_path(path))
    with semidbm.open(path, 'w') as db:
        db.compact()
        assert dict(db.items()) == live
    assert os.path.getsize(helpers.data_path(path)) == records_size(live) < before
    assert helpers.contents(path) == live


def test_the_database_is_usable_after_compact(path):
    with semidbm.open(path, 'c') as db:
        live = churn(db)
        db.compact()
        db[b'new'] = live[b'new'] = b'after compaction'
        db[b'key-1'] = live[b'key-1'] = b'overwritten after compaction'
        del db[b'key-2']
        del live[b'key-2']
        assert dict(db.items()) == live
        db.compact()
        assert dict(db.items()) == live
    assert helpers.contents(path) == live
    assert listing(path) == ['data', layout.SYNCED]


def test_compact_an_empty_database(path):
    with semidbm.open(path, 'c') as db:
        db.compact()
        assert len(db) == 0
        db[b'a'] = b'1'
    assert helpers.contents(path) == {b'a': b'1'}


def test_compact_a_read_only_database_raises_error(path):
    with semidbm.open(path, 'c') as db:
        churn(db)
    size = os.path.getsize(helpers.data_path(path))
    with semidbm.open(path, 'r') as db:
        with pytest.raises(semidbm.error, match='read-only'):
            db.compact()
    assert os.path.getsize(helpers.data_path(path)) == size
    assert listing(path) == ['data', layout.SYNCED]


def test_close_with_compact(path):
    db = semidbm.open(path, 'c')
    live = churn(db)
    db.close(compact=True)
    assert os.path.getsize(helpers.data_path(path)) == records_size(live)
    assert helpers.contents(path) == live


def test_close_with_compact_of_an_emptied_database_leaves_only_the_header(path):
    db = semidbm.open(path, 'c')
    churn(db)
    db.clear()
    db.close(compact=True)
    assert helpers.data_bytes(path) == format.HEADER_BYTES
    assert helpers.contents(path) == {}


def test_close_with_compact_of_a_new_database_leaves_only_the_header(path):
    semidbm.open(path, 'c').close(compact=True)
    assert helpers.data_bytes(path) == format.HEADER_BYTES


def test_close_with_compact_on_a_read_only_database_changes_nothing(path):
    with semidbm.open(path, 'c') as db:
        live = churn(db)
    before = helpers.data_bytes(path)
    db = semidbm.open(path, 'r')
    db.close(compact=True)
    assert helpers.data_bytes(path) == before
    assert helpers.contents(path) == live


# -- errors --------------------------------------------------------------------------

def test_error_hierarchy():
    assert issubclass(semidbm.error, OSError)
    assert semidbm.DBMError is semidbm.error
    assert issubclass(semidbm.DBMLoadError, semidbm.error)
    assert issubclass(semidbm.DBMChecksumError, semidbm.error)
    assert not issubclass(semidbm.DBMLoadError, semidbm.DBMChecksumError)


@pytest.mark.parametrize('flag', ['r', 'w'])
def test_missing_database_raises_semidbm_error_with_a_hint(path, flag):
    with pytest.raises(semidbm.error) as info:
        semidbm.open(path, flag)
    message = str(info.value)
    assert path in message
    assert '"c"' in message or "'c'" in message
    assert not os.path.exists(path)


def test_an_empty_directory_is_no_database(path):
    os.mkdir(path)
    with pytest.raises(semidbm.error):
        semidbm.open(path, 'r')
    assert os.listdir(path) == []


def test_a_dbm_dumb_database_at_the_path_is_named_with_the_migrate_command(path):
    with dbm.dumb.open(path, 'c') as other:
        other[b'a'] = b'1'
    for flag in 'rw':
        with pytest.raises(semidbm.DBMNotFoundError) as info:
            semidbm.open(path, flag)
        assert 'looks like a dbm.dumb database' in str(info.value)
        assert f'python -m semidbm migrate --from dbm.dumb {path} NEW_PATH' in str(info.value)
    with pytest.warns(UserWarning, match='beside a dbm.dumb database of the same name'):
        semidbm.open(path, 'c').close()
    assert helpers.contents(path) == {}  # made, as asked, and said
    assert dbm.dumb.open(path, 'r')[b'a'] == b'1'


@pytest.mark.parametrize('magic, module', [(b'SQLite format 3\0', 'dbm.sqlite3'),
                                           (b'\xce\x9a\x57\x13', 'dbm.gnu')])
def test_another_dbms_file_at_the_path_is_named(path, magic, module):
    with open(path, 'wb') as f:
        f.write(magic + bytes(100))
    with pytest.raises(semidbm.DBMNotFoundError, match=f'looks like a {module} database'):
        semidbm.open(path, 'r')
    with pytest.raises(semidbm.error, match=rf'\(it is a {module} database\)'):
        semidbm.open(path, 'c')


def test_writing_to_a_read_only_database_says_so(path):
    semidbm.open(path, 'c').close()
    with semidbm.open(path, 'r') as db:
        with pytest.raises(semidbm.error, match="read-only") as info:
            db[b'a'] = b'1'
        assert path in str(info.value)


def test_verify_checksums_reports_a_damaged_value(path):
    with semidbm.open(path, 'c') as db:
        db[b'key'] = b'value'
        db[b'other'] = b'fine'
    data = helpers.data_bytes(path)
    helpers.write_data(path, data.replace(b'value', b'VALUE', 1))
    with semidbm.open(path, 'r') as db:
        assert db[b'key'] == b'VALUE'  # unchecked: a read costs no crc32
    with semidbm.open(path, 'r', verify_checksums=True) as db:
        assert db.verify_checksums
        assert db[b'other'] == b'fine'
        with pytest.raises(semidbm.DBMChecksumError, match='checksum') as info:
            db[b'key']
        assert helpers.data_path(path) in str(info.value)


# -- stats() ----------------------------------------------------------------------------

def test_stats_counts_live_and_dead_bytes_as_compact_finds_them(path):
    with semidbm.open(path, 'c') as db:
        db.update({b'a': b'1' * 10, b'b': b'2', b'gone': b'x'})
        db[b'a'] = b'short'
        del db[b'gone']
        written = (records_size({b'a': b'1' * 10, b'b': b'2', b'gone': b'x'})
                   + len(format.encode_put(b'a', b'short') + format.encode_delete(b'gone')))
        live = records_size({b'a': b'short', b'b': b'2'})
        assert db.stats() == {
            'path': path, 'format': '1.1', 'keys': 2, 'file_size': written,
            'live_bytes': live, 'dead_bytes': written - live,
            'reclaimable': (written - live) / written,
            'snapshot': 'none', 'snapshot_covers': 0, 'unapplied': 0, 'kept': [],
            'writers': [os.getpid()], 'readers': []}
        db.compact()
        after = db.stats()
    assert after['file_size'] == after['live_bytes'] == live
    assert os.path.getsize(helpers.data_path(path)) == live
    assert after['dead_bytes'] == 0 and after['reclaimable'] == 0


def test_stats_file_size_is_the_data_and_not_the_pad(path):
    with semidbm.open(path, 'c') as db:
        db[b'a'] = b'1'
        assert os.path.getsize(helpers.data_path(path)) > db.stats()['file_size']
        assert db.stats()['file_size'] == records_size({b'a': b'1'})


def test_stats_tells_the_state_of_the_snapshot(path):
    many = {b'%d' % i: b'v' for i in range(snapshot.MIN_KEYS)}
    with semidbm.open(path, 'c') as db:
        db.update(many)
        assert db.stats()['snapshot'] == 'none'
    with semidbm.open(path, 'r') as db:
        assert db.stats()['snapshot'] == 'fresh'
        covered = db.stats()['file_size']
        assert db.stats()['snapshot_covers'] == covered
    with semidbm.open(path, 'w') as db:
        db[b'more'] = b'v'
        assert (db.stats()['snapshot'], db.stats()['snapshot_covers']) == ('partial', covered)
    with open(os.path.join(path, layout.SNAPSHOT), 'r+b') as f:
        f.write(b'garbage!')
    with semidbm.open(path, 'r') as db:
        assert db.stats()['snapshot'] == 'invalid'


def test_stats_still_answers_when_the_directory_is_gone(path):
    """Renamed or removed under an open database: what the open knows is still told."""
    db = semidbm.open(path, 'c')
    db[b'a'] = b'1'
    os.rename(path, path + '.moved')
    stats = db.stats()
    assert (stats['keys'], stats['kept'], stats['writers'], stats['readers']) == (
        1, [], [], [])
    db.close()
    assert helpers.contents(path + '.moved') == {b'a': b'1'}


# -- the rest of the surface --------------------------------------------------------------

def test_a_batch_holds_its_writes_together_and_syncs_only_if_asked(path, monkeypatch):
    synced = []
    with semidbm.open(path, 'c') as db:
        monkeypatch.setattr(db, 'sync', lambda: synced.append(True))
        with db.batch() as same:
            assert same is db
            db[b'a'] = b'1'
        assert synced == []
        with db.batch(sync=True):
            db[b'b'] = b'2'
        assert synced == [True]
    assert helpers.contents(path) == {b'a': b'1', b'b': b'2'}


def test_a_read_racing_close_in_another_thread_says_closed(path):
    """The index lookup succeeds, then another thread closes the db before the map
    is sliced: the read raises the closed error, not TypeError."""
    db = semidbm.open(path, 'c')
    db[b'k'] = b'v'

    class ClosingIndex(dict):
        def __getitem__(self, key):
            entry = dict.__getitem__(self, key)
            db.close()
            return entry
    db._set_state(ClosingIndex(db._index), db._file)
    with pytest.raises(semidbm.error, match='closed'):
        db[b'k']


@pytest.mark.parametrize('replace', [replace_by_growth, replace_by_compaction])
def test_a_read_racing_a_new_map_in_another_thread_reads_again(path, replace):
    """The index lookup succeeds, then another thread replaces the map (which closes
    the one the read took) before it is sliced: the read returns the value."""
    db = semidbm.open(path, 'c')
    db[b'k'] = b'v'
    replaced = []

    class ReplacingIndex(dict):
        def __getitem__(self, key):
            entry = dict.__getitem__(self, key)
            if not replaced:
                replaced.append(db._file.map)
                replace(db, None)
            return entry
    db._set_state(ReplacingIndex(db._index), db._file)
    assert db[b'k'] == b'v'
    assert replaced and replaced[0].closed
    db.close()


@pytest.mark.parametrize('replace', [replace_by_growth, replace_by_compaction])
def test_a_verified_read_whose_map_is_replaced_under_its_check_reads_again(
        path, replace, monkeypatch):
    """Another thread replaces the map between a verified read's slice and its
    checksum check: the read returns the value, not a checksum error (on PyPy the
    check found the closed map empty: its len() is 0)."""
    db = semidbm.open(path, 'c', verify_checksums=True)
    db[b'k'] = b'v'
    real_value_ok = format.value_ok
    replaced = []

    def replacing(buf, *args):
        if not replaced:
            replaced.append(buf)
            replace(db, None)
        return real_value_ok(buf, *args)
    monkeypatch.setattr(format, 'value_ok', replacing)
    assert db[b'k'] == b'v'
    assert replaced and replaced[0].closed
    db.close()


def test_a_db_whose_close_fails_is_collected_quietly(path, monkeypatch):
    db = semidbm.open(path, 'c')

    def failing_close(self):
        raise OSError(5, 'Input/output error')
    monkeypatch.setattr(datafile.DataFile, 'close', failing_close)
    with pytest.raises(semidbm.error):
        db.close()
    del db  # __del__ closes again: closed already, nothing raised
    db = semidbm.open(path + '2', 'c')
    db.__del__()  # a close that fails inside __del__ is swallowed
    monkeypatch.undo()


def test_flag_n_over_an_empty_data_file(path):
    helpers.write_data(path, b'')
    with semidbm.open(path, 'n') as db:
        db[b'a'] = b'1'
    assert helpers.contents(path) == {b'a': b'1'}


def test_version():
    assert isinstance(semidbm.__version__, str)
    assert re.fullmatch(r'\d+\.\d+\.\d+([.-]?\w+)*', semidbm.__version__)


def test_repr_tells_path_mode_and_state(path):
    db = semidbm.open(path, 'c')
    db.update({b'a': b'1', b'b': b'2'})
    text = repr(db)
    assert path in text
    assert 'read-write' in text
    assert '2 keys' in text
    db.close()
    assert 'closed' in repr(db)
    with semidbm.open(path, 'r') as db:
        assert 'read-only' in repr(db)
        assert '2 keys' in repr(db)


def test_update_from_a_generator_that_writes_to_the_same_db(path):
    # The generator runs before the batch's offsets are fixed: its own writes land
    # first and every record is found where the index says.
    with semidbm.open(path, 'c') as db:
        def pairs():
            for n in range(3):
                db[b'side%d' % n] = b'written while iterating %d' % n
                yield b'batch%d' % n, b'from the batch %d' % n
        db.update(pairs())
        expected = {**{b'side%d' % n: b'written while iterating %d' % n for n in range(3)},
                    **{b'batch%d' % n: b'from the batch %d' % n for n in range(3)}}
        assert dict(db.items()) == expected
    assert helpers.contents(path) == expected


def test_a_value_larger_than_the_growth_step(path):
    big = bytes(range(256)) * (3 * datafile.MAX_GROWTH // 256 + 1)
    with semidbm.open(path, 'c') as db:
        db[b'small'] = b'before'
        db[b'big'] = big
        db[b'after'] = b'after'
        assert db[b'big'] == big
    with semidbm.open(path, 'r') as db:
        assert db[b'big'] == big
        assert db[b'small'] == b'before'
        assert db[b'after'] == b'after'


def test_a_large_database_saves_its_index_at_close_and_uses_it(path):
    data = {b'%d' % i: b'%d' % -i for i in range(snapshot.MIN_KEYS)}
    with semidbm.open(path, 'c') as db:
        db.update(data)
    assert listing(path) == ['data', layout.SNAPSHOT, layout.SYNCED]
    with semidbm.open(path, 'w') as db:
        del db[b'1']
        del data[b'1']
        db[b'2'] = data[b'2'] = b'changed'
    assert helpers.contents(path) == data
    assert listing(path) == ['data', layout.SYNCED]  # too few keys now for a snapshot
    assert helpers.contents(path) == data


def test_flag_n_refuses_a_data_file_that_is_not_ours_and_keeps_everything(path):
    helpers.write_data(path, b'name,value\nsome,csv\n')
    with open(os.path.join(path, layout.SNAPSHOT), 'wb') as f:
        f.write(b'an index of sorts')
    before = helpers.tree_state(path)
    with pytest.raises(semidbm.DBMLoadError, match='not a semidbm data file'):
        semidbm.open(path, 'n')
    assert helpers.tree_state(path) == before
