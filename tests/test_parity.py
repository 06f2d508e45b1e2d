"""Promises about the dbm interface: each behaviour stated once, run against every backend.

The home of flags, reading and writing, persistence, a closed database, and the types
of keys and values.

The ``backend`` fixture (``conftest.py``) is semidbm, ``dbm.dumb`` and, on 3.13+,
``dbm.sqlite3``.  Tests marked ``differs`` are deliberate differences: the marked
backends must keep failing them.
"""
import collections.abc
import os
import pathlib
import random
import sys

import pytest

import helpers
import semidbm.snapshot

WRITES = {
    'setitem': lambda db: db.__setitem__(b'new', b'value'),
    'delitem': lambda db: db.__delitem__(b'a'),
    'update': lambda db: db.update({b'new': b'value'}),
    'setdefault': lambda db: db.setdefault(b'new', b'value'),
    'pop': lambda db: db.pop(b'a'),
    'popitem': lambda db: db.popitem(),
    'clear': lambda db: db.clear(),
}

READS = {
    'getitem': lambda db: db[b'a'],
    'contains': lambda db: b'a' in db,
    'len': len,
    'iter': lambda db: list(iter(db)),
    'keys': lambda db: db.keys(),
    'get': lambda db: db.get(b'a'),
}

#: What only semidbm has: a test of it is a difference these backends must keep failing.
STDLIB = ('dbm.dumb', 'dbm.sqlite3')

SAMPLE = {b'a': b'1', b'b': b'22', b'c': b''}


def fill(backend, path, data=SAMPLE):
    """Create the database at *path* holding *data*, and close it."""
    with backend.open(path, 'c') as db:
        for key, value in data.items():
            db[key] = value


# -- flags ---------------------------------------------------------------------

@pytest.mark.parametrize('flag', ['r', 'w'])
def test_missing_database_raises_for_flags_r_and_w(backend, path, flag):
    with pytest.raises(OSError) as info:
        backend.open(path, flag)
    assert isinstance(info.value, backend.error)
    assert os.listdir(os.path.dirname(path)) == []


@pytest.mark.differs('dbm.sqlite3', reason="dbm.sqlite3 raises its own error, not FileNotFoundError")
@pytest.mark.parametrize('flag', ['r', 'w'])
def test_missing_database_is_a_file_not_found_error(backend, path, flag):
    with pytest.raises(FileNotFoundError):
        backend.open(path, flag)


@pytest.mark.parametrize('flag', ['c', 'n'])
def test_flags_c_and_n_create_a_missing_database(backend, path, flag):
    with backend.open(path, flag) as db:
        assert len(db) == 0
        db[b'k'] = b'v'
    assert backend.contents(path) == {b'k': b'v'}


def test_flag_c_keeps_existing_data(backend, path):
    fill(backend, path)
    with backend.open(path, 'c') as db:
        assert dict(db.items()) == SAMPLE


def test_flag_w_opens_existing_database_for_writing(backend, path):
    fill(backend, path)
    with backend.open(path, 'w') as db:
        assert db[b'a'] == b'1'
        db[b'a'] = b'changed'
        db[b'd'] = b'4'
    assert backend.contents(path) == {**SAMPLE, b'a': b'changed', b'd': b'4'}


def test_flag_n_empties_an_existing_database(backend, path):
    fill(backend, path)
    with backend.open(path, 'n') as db:
        assert len(db) == 0
        assert b'a' not in db
        db[b'z'] = b'26'
    assert backend.contents(path) == {b'z': b'26'}


@pytest.mark.parametrize('flag', ['c', 'n'])
@pytest.mark.differs('dbm.sqlite3', reason="dbm.sqlite3 touches what is in the way ('c') "
                                           "or raises IsADirectoryError ('n')")
def test_something_in_the_way_raises_error_and_is_left_alone(backend, path, flag):
    # Put a file where the backend wants a directory, or a directory where it wants a file.
    top = {name for name in backend.files if os.sep not in name}
    for name in top:
        blocked = os.path.join(os.path.dirname(path), name.format(name='db'))
        if any(other.startswith(name + os.sep) for other in backend.files):
            with open(blocked, 'wb') as f:
                f.write(b'not a database')
        else:
            os.mkdir(blocked)
    before = helpers.tree_state(os.path.dirname(path))
    with pytest.raises(backend.error):
        backend.open(path, flag)
    assert helpers.tree_state(os.path.dirname(path)) == before


@pytest.mark.parametrize('flag', ['', 'x', 'rw', 'R', 'C', 'cr', 'cf', None, 1, b'r'], ids=repr)
def test_a_bad_flag_raises_value_error_and_touches_nothing(backend, path, flag):
    directory = os.path.dirname(path)
    with pytest.raises(ValueError, match='(?i)flag'):
        backend.open(path, flag)
    assert os.listdir(directory) == []
    fill(backend, path)
    before = helpers.tree_state(directory)
    with pytest.raises(ValueError, match='(?i)flag'):
        backend.open(path, flag)
    assert helpers.tree_state(directory) == before


@pytest.mark.differs('dbm.dumb', reason="dbm.dumb.open's flag defaults to 'c'")
def test_default_flag_is_read_only(backend, path):
    with pytest.raises(backend.error):
        backend.module.open(path)
    fill(backend, path)
    db = backend.module.open(path)
    try:
        with pytest.raises(backend.error):
            db[b'x'] = b'y'
    finally:
        db.close()


# -- reading and writing -------------------------------------------------------

def test_setitem_and_getitem(db):
    db[b'key'] = b'value'
    assert db[b'key'] == b'value'
    assert type(db[b'key']) is bytes


def test_overwrite_keeps_the_last_value(backend, path, db):
    db[b'key'] = b'first'
    db[b'key'] = b'second, longer'
    db[b'key'] = b'3'
    assert db[b'key'] == b'3'
    assert len(db) == 1
    db.close()
    assert backend.contents(path) == {b'key': b'3'}


def test_missing_key_raises_key_error(db):
    db[b'present'] = b'1'
    with pytest.raises(KeyError):
        db[b'absent']


def test_contains_with_bytes_and_str_keys(db):
    db[b'bytes'] = b'1'
    db['text'] = b'2'
    assert b'bytes' in db
    assert 'bytes' in db
    assert b'text' in db
    assert 'text' in db
    assert b'other' not in db
    assert 'other' not in db


def test_str_keys_and_values_are_stored_as_utf8(backend, path, db):
    db['ключ'] = 'значение'
    db['a'] = 'b'
    assert db['ключ'.encode('utf-8')] == 'значение'.encode('utf-8')
    assert db['ключ'] == 'значение'.encode('utf-8')
    assert 'a' in db
    db.close()
    assert backend.contents(path) == {'ключ'.encode('utf-8'): 'значение'.encode('utf-8'),
                                      b'a': b'b'}


def test_len(db):
    assert len(db) == 0
    for i in range(10):
        db[b'%d' % i] = b'x'
    assert len(db) == 10
    db[b'0'] = b'overwritten'
    assert len(db) == 10
    del db[b'1']
    assert len(db) == 9


def test_iteration_yields_every_key_once(db):
    expected = {b'%d' % i for i in range(50)}
    for key in expected:
        db[key] = key * 2
    keys = list(db)
    assert len(keys) == len(expected)
    assert set(keys) == expected
    assert all(type(key) is bytes for key in keys)


def test_keys_is_a_list(db):
    assert db.keys() == []
    db.update(SAMPLE)
    keys = db.keys()
    assert isinstance(keys, list)
    assert sorted(keys) == sorted(SAMPLE)


def test_values_and_items(db):
    db.update(SAMPLE)
    assert sorted(db.values()) == sorted(SAMPLE.values())
    assert sorted(db.items()) == sorted(SAMPLE.items())


def test_get(db):
    db[b'a'] = b'1'
    assert db.get(b'a') == b'1'
    assert db.get('a') == b'1'
    assert db.get(b'missing') is None
    assert db.get(b'missing', b'default') == b'default'


def test_setdefault(backend, path, db):
    assert db.setdefault(b'a', b'first') == b'first'
    assert db.setdefault(b'a', b'second') == b'first'
    db.close()
    assert backend.contents(path) == {b'a': b'first'}


def test_pop(backend, path, db):
    db.update(SAMPLE)
    assert db.pop(b'a') == b'1'
    assert b'a' not in db
    assert db.pop(b'a', b'default') == b'default'
    with pytest.raises(KeyError):
        db.pop(b'a')
    db.close()
    assert backend.contents(path) == {b'b': b'22', b'c': b''}


def test_popitem(backend, path, db):
    db.update(SAMPLE)
    key, value = db.popitem()
    assert SAMPLE[key] == value
    assert key not in db
    assert len(db) == len(SAMPLE) - 1
    db.close()
    remaining = backend.contents(path)
    assert key not in remaining
    assert len(remaining) == len(SAMPLE) - 1


def test_popitem_on_empty_database_raises_key_error(db):
    with pytest.raises(KeyError):
        db.popitem()


def test_update_from_mapping_pairs_and_keywords(backend, path, db):
    db.update({b'a': b'1'})
    db.update([(b'b', b'2'), ('c', '3')])
    db.update(d=b'4', e='5')
    db.update({b'a': b'one'}, f=b'6')
    expected = {b'a': b'one', b'b': b'2', b'c': b'3', b'd': b'4', b'e': b'5', b'f': b'6'}
    assert dict(db.items()) == expected
    db.close()
    assert backend.contents(path) == expected


def test_update_from_an_object_with_keys_and_getitem(backend, path, db):
    """Not a Mapping: anything with keys() and [], as dict.update takes."""
    class Pairs:
        def keys(self):
            return [b'a', b'b']

        def __getitem__(self, key):
            return key * 2
    db.update(Pairs())
    db.close()
    assert backend.contents(path) == {b'a': b'aa', b'b': b'bb'}


def test_clear(backend, path, db):
    db.update(SAMPLE)
    db.clear()
    assert len(db) == 0
    assert db.keys() == []
    db[b'after'] = b'clear'
    db.close()
    assert backend.contents(path) == {b'after': b'clear'}


def test_delete_is_gone_after_reopening(backend, path):
    fill(backend, path)
    with backend.open(path, 'w') as db:
        del db[b'a']
        assert b'a' not in db
        with pytest.raises(KeyError):
            db[b'a']
    with backend.open(path, 'r') as db:
        assert b'a' not in db
        assert b'a' not in db.keys()
        with pytest.raises(KeyError):
            db[b'a']
        assert len(db) == len(SAMPLE) - 1


def test_delete_missing_key_raises_key_error_and_writes_nothing(backend, path, db):
    db[b'a'] = b'1'
    with pytest.raises(KeyError):
        del db[b'missing']
    db.close()
    assert backend.contents(path) == {b'a': b'1'}


def test_delete_then_store_again(backend, path, db):
    db[b'a'] = b'1'
    del db[b'a']
    db[b'a'] = b'2'
    db.close()
    assert backend.contents(path) == {b'a': b'2'}


@pytest.mark.differs('dbm.dumb', reason='dbm.dumb iterates over its live index: a write '
                                        'that adds a key stops the loop with RuntimeError')
def test_adding_keys_while_iterating(backend, path, db):
    db.update(SAMPLE)
    for key in db:
        db[key + b'-copy'] = db[key]
    expected = {**SAMPLE, **{key + b'-copy': value for key, value in SAMPLE.items()}}
    assert dict(db.items()) == expected
    db.close()
    assert backend.contents(path) == expected


def test_equals_a_dict(db):
    assert db == {}
    db.update(SAMPLE)
    assert db == SAMPLE
    assert db != {b'a': b'1'}
    assert db != {**SAMPLE, b'a': b'other'}


# -- persistence and lifetime ----------------------------------------------------

def test_reopen_keeps_everything(backend, path):
    rng = random.Random(1)
    data = {b'key-%d' % i: rng.randbytes(rng.randrange(0, 300)) for i in range(500)}
    with backend.open(path, 'c') as db:
        db.update(data)
    assert backend.contents(path) == data
    with backend.open(path, 'w') as db:
        for key in list(data)[::3]:
            db[key] = b'rewritten ' + key
            data[key] = b'rewritten ' + key
    assert backend.contents(path) == data


def test_context_manager_closes(backend, path):
    with backend.open(path, 'c') as db:
        db[b'a'] = b'1'
    with pytest.raises(backend.error, match='closed'):
        db[b'a']
    assert backend.contents(path) == {b'a': b'1'}


def test_close_twice_is_harmless(backend, path, db):
    db[b'a'] = b'1'
    db.close()
    db.close()
    assert backend.contents(path) == {b'a': b'1'}


@pytest.mark.parametrize('operation', sorted(WRITES))
def test_writes_to_a_read_only_database_raise_error(backend, path, operation):
    fill(backend, path)
    with backend.open(path, 'r') as db:
        with pytest.raises(backend.error):
            WRITES[operation](db)
        assert dict(db.items()) == SAMPLE
    assert backend.contents(path) == SAMPLE


@pytest.mark.differs('dbm.sqlite3', reason='dbm.sqlite3 has no sync(); every write commits')
def test_sync_and_close_on_a_read_only_database_are_harmless(backend, path):
    fill(backend, path)
    before = helpers.tree_state(os.path.dirname(path))
    db = backend.open(path, 'r')
    db.sync()
    db.close()
    db.close()
    assert helpers.tree_state(os.path.dirname(path)) == before


@pytest.mark.differs('dbm.sqlite3', reason='dbm.sqlite3 has no sync(); every write commits')
def test_sync_keeps_the_database_usable(backend, path, db):
    db[b'a'] = b'1'
    db.sync()
    db[b'b'] = b'2'
    db.sync()
    assert dict(db.items()) == {b'a': b'1', b'b': b'2'}
    db.close()
    assert backend.contents(path) == {b'a': b'1', b'b': b'2'}


@pytest.mark.differs('dbm.sqlite3', reason='a read-only connection to a database in '
                                           'WAL mode makes db-shm and db-wal and leaves them')
def test_opening_read_only_changes_nothing_on_disk(backend, path):
    fill(backend, path)
    directory = os.path.dirname(path)
    before = helpers.tree_state(directory)
    with backend.open(path, 'r') as db:
        assert dict(db.items()) == SAMPLE
        assert helpers.tree_state(directory) == before
    assert helpers.tree_state(directory) == before


@pytest.mark.parametrize('mask, mode, expected', [
    (0o022, 0o666, 0o644),
    (0o027, 0o666, 0o640),
    (0o022, 0o600, 0o600),
    (0o000, 0o640, 0o640),
])
def test_mode_less_umask_applies_to_created_files(backend, path, umask, mask, mode, expected):
    umask(mask)
    with backend.open(path, 'c', mode) as db:
        db[b'a'] = b'1'
    modes = helpers.file_modes(os.path.dirname(path))
    assert modes
    assert set(modes.values()) == {expected}, modes


@pytest.mark.differs('dbm.dumb', reason="dbm.dumb rewrites its .dir file with the later "
                                        "open's mode: the keys of a private database "
                                        "become readable by all")
def test_a_private_database_stays_private_when_opened_again_with_another_mode(
        backend, path, umask):
    """Enough keys that semidbm writes its index snapshot (a file made at close)."""
    umask(0o022)
    many = {b'key%d' % n: b'value' for n in range(semidbm.snapshot.MIN_KEYS)}
    with backend.open(path, 'c', 0o600) as db:
        db.update(many)
    with backend.open(path, 'w', 0o666) as db:
        db.update(many)
        db[b'key0'] = b'overwritten'
    modes = helpers.file_modes(os.path.dirname(path))
    # semidbm: data and index (and more); dbm.dumb: .dat, .dir, .bak; dbm.sqlite3: db.
    assert len(modes) >= (1 if backend.name == 'dbm.sqlite3' else 2), modes
    assert set(modes.values()) == {0o600}, modes


def test_the_files_of_a_database(backend, path):
    """Each backend has its own layout on disk (semidbm's is a directory, NAME/data)."""
    fill(backend, path)
    with backend.open(path, 'w') as db:
        db[b'again'] = b'written'
    found = helpers.tree(os.path.dirname(path))
    assert {name.format(name='db') for name in backend.files} <= found
    assert found <= {name.format(name='db') for name in backend.files | backend.extra}


@pytest.mark.parametrize('kind', [
    pytest.param(os.fsencode, id='bytes'),
    pytest.param(pathlib.Path, id='PathLike'),
])
@pytest.mark.differs('dbm.dumb', condition=sys.version_info < (3, 11),
                     reason='dbm.dumb takes only str filenames before Python 3.11')
def test_filename_as_str_bytes_or_pathlike(backend, path, kind):
    with backend.open(kind(path), 'c') as db:
        db[b'a'] = b'1'
    assert backend.contents(path) == {b'a': b'1'}
    with backend.open(kind(path), 'r') as db:
        assert db[b'a'] == b'1'


# -- a closed database ----------------------------------------------------------

MORE_CALLS = {
    'sync': lambda db: db.sync(),
    'compact': lambda db: db.compact(),
    'stats': lambda db: db.stats(),
    'items': lambda db: db.items(),
    'values': lambda db: db.values(),
}


#: Calls that the stdlib does not refuse on a closed database, and why.
NOT_REFUSED_BY_THE_STDLIB = {
    'sync': "dbm.dumb's sync() of a closed database does nothing; dbm.sqlite3 has no sync()",
    'compact': 'only semidbm has compact()',
    'stats': 'only semidbm has stats()',
}


#: Where items() and values() of a closed database raise only when used: semidbm
#: raises at once, as dbm.dumb's items() does (its test_check_closed calls it).
VIEWS_RAISED_LATE = {
    'items': ('dbm.sqlite3',),
    'values': ('dbm.dumb', 'dbm.sqlite3'),
}


@pytest.mark.parametrize('operation', sorted({**READS, **WRITES}) + [
    pytest.param(name, marks=pytest.mark.differs(*STDLIB, reason=reason))
    for name, reason in NOT_REFUSED_BY_THE_STDLIB.items()] + [
    pytest.param(name, marks=pytest.mark.differs(
        *backends, reason='its view raises only when it is used'))
    for name, backends in VIEWS_RAISED_LATE.items()])
def test_operations_on_a_closed_database_raise_error(backend, path, operation):
    fill(backend, path)
    db = backend.open(path, 'c')
    db.close()
    with pytest.raises(backend.error, match='closed'):
        {**READS, **WRITES, **MORE_CALLS}[operation](db)
    assert backend.contents(path) == SAMPLE


@pytest.mark.differs(*STDLIB, reason="the stdlib's error does not say which database")
def test_the_error_of_a_closed_database_names_it(backend, path, db):
    db.close()
    with pytest.raises(backend.error, match='closed') as info:
        db[b'a']
    assert path in str(info.value)


@pytest.mark.parametrize('operation', [
    pytest.param(name, marks=pytest.mark.differs(
        'dbm.dumb', reason='dbm.dumb says that a closed read-only database is read-only'))
    if name in ('delitem', 'setitem', 'update') else name for name in sorted(WRITES)])
def test_a_closed_read_only_database_says_closed_first(backend, path, operation):
    fill(backend, path)
    db = backend.open(path, 'r')
    db.close()
    with pytest.raises(backend.error, match='closed'):
        WRITES[operation](db)


# -- contents ------------------------------------------------------------------

def test_empty_key_and_empty_value(backend, path, db):
    db[b''] = b''
    db[b'k'] = b''
    db[b''] = b'value of the empty key'
    assert db[b''] == b'value of the empty key'
    assert db[b'k'] == b''
    db.close()
    assert backend.contents(path) == {b'': b'value of the empty key', b'k': b''}


def test_binary_keys_with_every_byte_value(backend, path, db):
    data = {bytes([i]): bytes([255 - i]) * i for i in range(256)}
    data[bytes(range(256))] = bytes(range(256))
    data[b'\r\n\x00\n'] = b'\x00'
    db.update(data)
    db.close()
    assert backend.contents(path) == data


def test_large_values(backend, path, db):
    rng = random.Random(2)
    big = rng.randbytes(1 << 12) * (1 << 10)  # 4 MiB
    db[b'big'] = big
    db[b'bigger'] = big + big[:1 << 20]
    db[b'small'] = b'after'
    assert db[b'big'] == big
    db.close()
    assert backend.contents(path) == {b'big': big, b'bigger': big + big[:1 << 20],
                                      b'small': b'after'}


# -- types of keys and values ---------------------------------------------------
#
# What may be a key or a value, and every way in of one of the wrong type: what is
# refused is not stored.  (That a refused call writes not even a byte is
# test_badinput.py's promise.)

WRONG_TYPES = [1, None, 1.5, (b'a',), [b'a'], {b'a': b'b'}, object()]
HASHABLE_WRONG_TYPES = [wrong for wrong in WRONG_TYPES
                        if isinstance(wrong, collections.abc.Hashable)]


def type_name(value):
    return type(value).__name__


@pytest.mark.parametrize('key', WRONG_TYPES, ids=type_name)
@pytest.mark.differs('dbm.sqlite3', reason='dbm.sqlite3 casts any key to a BLOB')
def test_storing_under_a_key_of_the_wrong_type_raises_type_error(backend, path, db, key):
    db[b'1'] = b'one'
    stores = [lambda: db.__setitem__(key, b'value'), lambda: db.update([(key, b'value')])]
    if isinstance(key, collections.abc.Hashable):
        stores.append(lambda: db.update({key: b'value'}))
    for store in stores:
        with pytest.raises(TypeError, match='bytes or str'):
            store()
    db.close()
    assert backend.contents(path) == {b'1': b'one'}


@pytest.mark.parametrize('value', WRONG_TYPES, ids=type_name)
@pytest.mark.differs('dbm.sqlite3', reason='dbm.sqlite3 casts any value to a BLOB')
def test_storing_a_value_of_the_wrong_type_raises_type_error(backend, path, db, value):
    db[b'1'] = b'one'
    for store in (lambda: db.__setitem__(b'key', value), lambda: db.__setitem__(b'1', value),
                  lambda: db.update({b'key': value}), lambda: db.update([(b'key', value)])):
        with pytest.raises(TypeError, match='bytes or str'):
            store()
    db.close()
    assert backend.contents(path) == {b'1': b'one'}


@pytest.mark.parametrize('key', WRONG_TYPES, ids=type_name)
@pytest.mark.differs('dbm.dumb', 'dbm.sqlite3',
                     reason='the stdlib looks a key of the wrong type up as missing '
                            '(KeyError) or fails to hash it; semidbm says TypeError')
def test_looking_up_a_key_of_the_wrong_type_raises_type_error(backend, path, db, key):
    db[b'1'] = b'one'
    for look_up in (lambda: db[key], lambda: db.get(key), lambda: db.__delitem__(key)):
        with pytest.raises(TypeError, match='bytes or str'):
            look_up()
    db.close()
    assert backend.contents(path) == {b'1': b'one'}


@pytest.mark.differs('dbm.sqlite3', reason="dbm.sqlite3 casts 1 to b'1' and finds it")
def test_a_key_of_the_wrong_type_is_not_in_the_database(db):
    db[b'1'] = b'one'
    for key in HASHABLE_WRONG_TYPES:
        assert key not in db, key


class Blob(bytes):
    """A bytes subclass: a key or value like any other bytes."""


@pytest.mark.parametrize('store', [
    pytest.param(lambda db, key, value: db.__setitem__(key, value), id='setitem'),
    pytest.param(lambda db, key, value: db.update([(key, value)]), id='update'),
])
def test_bytes_subclasses_and_bytearray_values_are_stored_as_bytes(backend, path, db, store):
    store(db, Blob(b'sub'), Blob(b'class'))
    store(db, b'array', bytearray(b'value'))
    assert db[b'sub'] == b'class' and db[Blob(b'array')] == b'value'
    db.close()
    assert backend.contents(path) == {b'sub': b'class', b'array': b'value'}


@pytest.mark.differs('dbm.dumb', reason='dbm.dumb refuses a memoryview and cannot hash a '
                                        'bytearray key')
def test_bytearray_and_memoryview_are_stored_as_bytes(backend, path, db):
    db[bytearray(b'ba')] = bytearray(b'bytearray')
    db[memoryview(b'mv')] = memoryview(b'memoryview')
    assert db[b'ba'] == b'bytearray'
    assert bytearray(b'mv') in db
    assert type(db[memoryview(b'mv')]) is bytes
    db.close()
    assert backend.contents(path) == {b'ba': b'bytearray', b'mv': b'memoryview'}
