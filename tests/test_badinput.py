"""Promises about bad input at the API: a clear error, nothing written, nothing lost.

Every call here is refused; the test then checks the data file is byte for byte what
it was (no record, not even a torn one, was appended), the database still works, and
a reopen gives what was stored before.  Which types a key or value may have, and what
a bad flag raises, are stated once for every backend in ``test_parity.py``; this file
runs every entry point through every kind of bad input (the size limit's too), and the
bad paths: a file in the way, a directory we may not write.
"""
import collections.abc
import contextlib
import errno
import os
import pathlib
import shutil
import tempfile

import pytest

import helpers
import semidbm
from semidbm import format

BEFORE = {b'a': b'1', b'': b'', b'empty value': b'', b'\xff\x00': b'binary'}

#: Keys and values refused, with the error each raises.
SURROGATES = ['\udc80', 'ok\ud800', '\udfff tail']
WRONG_TYPES = [0, -1, 2.5, None, True, (b'a',), [b'a'], {b'a': b'b'}, {b'a'}, object(),
               bytes, NotImplemented, 1j]
OVERSIZE = 16  # format.MAX_SIZE, patched so that nothing huge is allocated
#: What the message of each error says.
SAYS = {TypeError: 'bytes or str', UnicodeEncodeError: 'surrogates not allowed',
        semidbm.error: 'too large'}


def param_id(value):
    """The test id of *value*: its repr, but the same from run to run."""
    return 'object()' if type(value) is object else repr(value)  # no address in the id


def bad_keys():
    yield from ((wrong, TypeError) for wrong in WRONG_TYPES)
    yield from ((text, UnicodeEncodeError) for text in SURROGATES)
    yield b'k' * (OVERSIZE + 1), semidbm.error


def bad_values():
    yield from bad_keys()
    yield 'v' * (OVERSIZE + 1), semidbm.error
    yield bytearray(OVERSIZE + 1), semidbm.error
    yield memoryview(b'v' * (OVERSIZE + 1)), semidbm.error


def writes(key, value):
    """Every way of storing *value* under *key*."""
    calls = {
        'setitem': lambda db: db.__setitem__(key, value),
        'update pairs': lambda db: db.update([(b'good', b'pair'), (key, value),
                                              (b'after', b'pair')]),
        'setdefault': lambda db: db.setdefault(key, value),
    }
    if isinstance(key, collections.abc.Hashable):  # or the test's own dict would fail
        calls['update mapping'] = lambda db: db.update({b'good': b'pair', key: value})
    return calls


def key_calls(key):
    """Every call taking a key that a bad key must fail, without writing."""
    return {
        'getitem': lambda db: db[key],
        'get': lambda db: db.get(key),
        'delitem': lambda db: db.__delitem__(key),
        'pop': lambda db: db.pop(key),
        'pop default': lambda db: db.pop(key, None),
    }


@pytest.fixture
def filled(path, monkeypatch):
    """A closed database holding :data:`BEFORE`, with the size limit at OVERSIZE."""
    monkeypatch.setattr(format, 'MAX_SIZE', OVERSIZE)
    with semidbm.open(path, 'c') as db:
        db.update(BEFORE)
    return path


@contextlib.contextmanager
def nothing_written(path, flag='w'):
    """Open *path*; after the block, the file holds exactly what it held, and a write
    still works."""
    before = helpers.data_bytes(path)
    with semidbm.open(path, flag) as db:
        yield db
        assert {k: db[k] for k in db.keys()} == BEFORE
    assert helpers.data_bytes(path) == before
    assert helpers.contents(path, verify_checksums=True) == BEFORE


# -- keys and values -------------------------------------------------------------------


@pytest.mark.parametrize('key, error', list(bad_keys()), ids=param_id)
def test_a_bad_key_is_refused_everywhere_and_writes_nothing(filled, key, error):
    with nothing_written(filled) as db:
        for name, call in {**writes(key, b'value'), **key_calls(key)}.items():
            if error is semidbm.error and name in key_calls(key):
                # A long key is only a key that is not there.
                if name in ('get', 'pop default'):
                    assert call(db) is None
                else:
                    with pytest.raises(KeyError):
                        call(db)
                continue
            if name == 'pop default' and error is TypeError:
                with pytest.raises(TypeError, match='bytes or str'):
                    call(db)
                continue
            with pytest.raises(error, match=SAYS[error]):
                call(db)
        assert db.get(b'good') is None  # the good pair before the bad one: not stored


@pytest.mark.parametrize('value, error', list(bad_values()), ids=param_id)
def test_a_bad_value_is_refused_everywhere_and_writes_nothing(filled, value, error):
    with nothing_written(filled) as db:
        for name, call in writes(b'new key', value).items():
            with pytest.raises(error, match=SAYS[error]):
                call(db)
            assert b'new key' not in db, name
        for name, call in writes(b'a', value).items():  # an overwrite refused
            if name == 'setdefault':
                continue  # b'a' exists: setdefault writes nothing and returns it
            with pytest.raises(error, match=SAYS[error]):
                call(db)
            assert db[b'a'] == b'1', name


def test_a_surrogate_key_in_contains_raises_as_dbm_dumb_does(filled):
    with nothing_written(filled) as db:
        for text in SURROGATES:
            with pytest.raises(UnicodeEncodeError):
                text in db


def test_the_size_limit_is_inclusive(filled):
    before = helpers.data_bytes(filled)
    with semidbm.open(filled, 'w') as db:
        db[b'k' * OVERSIZE] = b'v' * OVERSIZE
        db.update([(b'u' * OVERSIZE, b'w' * OVERSIZE)])
    assert helpers.data_bytes(filled) == before + helpers.record(
        b'k' * OVERSIZE, b'v' * OVERSIZE) + helpers.record(b'u' * OVERSIZE, b'w' * OVERSIZE)
    assert helpers.contents(filled, verify_checksums=True) == {
        **BEFORE, b'k' * OVERSIZE: b'v' * OVERSIZE, b'u' * OVERSIZE: b'w' * OVERSIZE}


@pytest.mark.parametrize('argument', [
    5, None, [b'not a pair'], [(b'one',)], [(b'a', b'b', b'c')], 'ab', [b'ab'],
], ids=repr)
def test_update_with_something_that_is_not_pairs_writes_nothing(filled, argument):
    with nothing_written(filled) as db:
        with pytest.raises((TypeError, ValueError)):
            db.update(argument)


def test_update_whose_iterable_fails_part_way_writes_nothing(filled):
    def pairs():
        yield b'first', b'pair'
        raise RuntimeError('the source broke')
    with nothing_written(filled) as db:
        with pytest.raises(RuntimeError, match='the source broke'):
            db.update(pairs())
        assert b'first' not in db


def test_empty_keys_and_values_are_stored_and_kept(filled):
    with semidbm.open(filled, 'w') as db:
        db[''] = 'empty str value'
        db[b'x'] = ''
        db.update({b'y': b'', '': b''})
        del db[b'empty value']
    expected = {**BEFORE, b'x': b'', b'y': b''}
    del expected[b'empty value']
    assert helpers.contents(filled, verify_checksums=True) == expected
    with semidbm.open(filled, 'w') as db:
        db.compact()
    assert helpers.contents(filled, verify_checksums=True) == expected


# -- opening ----------------------------------------------------------------------------


@pytest.mark.parametrize('filename', [5, None, 2.5, ['db']], ids=repr)
def test_a_filename_of_the_wrong_type_is_a_type_error(filename):
    with pytest.raises(TypeError):
        semidbm.open(filename, 'c')


def test_a_filename_with_a_nul_byte(tmp_path):
    with pytest.raises(ValueError):
        semidbm.open(str(tmp_path / 'a\0b'), 'c')
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('flag', ['r', 'w', 'c', 'n'])
def test_a_file_where_the_database_should_be(path, flag):
    user_file = pathlib.Path(path)
    user_file.write_bytes(b'a file of the user, not a database')
    with pytest.raises(semidbm.error) as info:
        semidbm.open(path, flag)
    assert path in str(info.value)
    assert user_file.read_bytes() == b'a file of the user, not a database'


@pytest.mark.parametrize('flag', ['r', 'w', 'c', 'n'])
def test_a_directory_where_the_data_file_should_be(path, flag):
    keep = pathlib.Path(helpers.data_path(path), 'keep')
    keep.parent.mkdir(parents=True)
    keep.write_bytes(b'x')
    with pytest.raises(semidbm.error):
        semidbm.open(path, flag)
    assert keep.read_bytes() == b'x'


# -- permissions ------------------------------------------------------------------------


@contextlib.contextmanager
def unprivileged():
    """Run the block as a user whom permission bits bind (root ignores them)."""
    if os.geteuid() != 0:
        yield
        return
    try:
        os.seteuid(65534)  # nobody; back to root after the block
    except OSError as exc:
        pytest.skip(f'running as root and cannot drop privileges: {exc}')
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def shared_dir():
    """A directory any user may enter (pytest's tmp_path is root's alone when root)."""
    directory = tempfile.mkdtemp(prefix='semidbm-perm-')
    os.chmod(directory, 0o755)
    yield directory
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(directory)


def make_db(directory):
    path = os.path.join(directory, 'db')
    with semidbm.open(path, 'c', 0o644) as db:
        db.update(BEFORE)
    os.chmod(path, 0o755)
    return path


def test_a_directory_we_may_not_write_refuses_a_writer_and_serves_a_reader(shared_dir):
    path = make_db(shared_dir)
    before = helpers.data_bytes(path)
    os.chmod(path, 0o555)
    with unprivileged():
        for flag in ('w', 'c', 'n'):
            with pytest.raises(semidbm.error) as info:
                semidbm.open(path, flag)
            assert info.value.errno == errno.EACCES, flag
            assert 'Permission denied' in str(info.value)
        assert helpers.contents(path, verify_checksums=True) == BEFORE
    assert helpers.data_bytes(path) == before


def test_a_data_file_we_may_not_write(shared_dir):
    path = make_db(shared_dir)
    os.chmod(helpers.data_path(path), 0o444)
    with unprivileged():
        with pytest.raises(semidbm.error) as info:
            semidbm.open(path, 'w', lock=False)
        assert info.value.errno == errno.EACCES
        assert helpers.data_path(path) in str(info.value)
        assert helpers.contents(path, verify_checksums=True) == BEFORE


def test_a_directory_we_may_not_read_says_permission_denied(shared_dir):
    path = make_db(shared_dir)
    os.chmod(path, 0o000)
    with unprivileged():
        for flag in ('r', 'w', 'c'):
            with pytest.raises(semidbm.error) as info:
                semidbm.open(path, flag)
            assert info.value.errno == errno.EACCES, (flag, str(info.value))
    os.chmod(path, 0o755)
    assert helpers.contents(path, verify_checksums=True) == BEFORE


def test_a_parent_we_may_not_write_refuses_a_new_database(shared_dir):
    os.chmod(shared_dir, 0o555)
    with unprivileged():
        with pytest.raises(semidbm.error) as info:
            semidbm.open(os.path.join(shared_dir, 'db'), 'c')
        assert info.value.errno == errno.EACCES
    assert os.listdir(shared_dir) == []
