"""Promises about semidbm as a shelve backend: ``shelve.Shelf(semidbm.open(path, 'c'))``.

Each test runs on every backend of the parity fixture, so a difference between
semidbm and ``dbm.dumb`` under shelve shows up as one failing parameter.
"""
import collections
import datetime
import decimal
import pickle
import shelve

import pytest

Point = collections.namedtuple('Point', 'x y')

OBJECTS = {
    'int': 2 ** 70,
    'float': 1.5,
    'complex': 1 - 2j,
    'str': 'text, with ünïcödé',
    'bytes': bytes(range(256)),
    'none': None,
    'bool': True,
    'list': [1, 'two', b'three', [4.0]],
    'tuple': (1, (2, 3)),
    'dict': {'a': 1, 2: 'b', (3,): [4]},
    'set': {1, 2, 3},
    'frozenset': frozenset('abc'),
    'decimal': decimal.Decimal('3.14159'),
    'date': datetime.date(2024, 2, 29),
    'namedtuple': Point(1, 2),
    'large': ['x' * 1000] * 100,
    '': 'the empty key',
    'ключ': 'a non-ASCII key',
}

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def open_shelf(backend, path, flag, **options):
    return shelve.Shelf(backend.open(path, flag), **options)


@pytest.mark.parametrize('writeback', [False, True], ids=['plain', 'writeback'])
@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_objects_round_trip_through_a_reopen(backend, path, protocol, writeback):
    with open_shelf(backend, path, 'c', protocol=protocol, writeback=writeback) as shelf:
        for key, value in OBJECTS.items():
            shelf[key] = value
        assert shelf['dict'] == OBJECTS['dict']
    with open_shelf(backend, path, 'r') as shelf:
        assert len(shelf) == len(OBJECTS)
        assert sorted(shelf.keys()) == sorted(OBJECTS)
        for key, value in OBJECTS.items():
            assert shelf[key] == value
            assert type(shelf[key]) is type(value)


def test_the_protocol_is_the_one_asked_for(backend, path):
    with open_shelf(backend, path, 'c', protocol=0) as shelf:
        shelf['list'] = [1, 2]
    with backend.open(path, 'r') as db:
        raw = db[b'list']
    assert raw == pickle.dumps([1, 2], protocol=0)


def test_writeback_stores_objects_changed_in_place(backend, path):
    with open_shelf(backend, path, 'c', writeback=True) as shelf:
        shelf['list'] = [1]
        shelf['list'].append(2)
        shelf.sync()
        shelf['list'].append(3)
    with open_shelf(backend, path, 'r') as shelf:
        assert shelf['list'] == [1, 2, 3]


def test_without_writeback_objects_changed_in_place_are_not_stored(backend, path):
    with open_shelf(backend, path, 'c') as shelf:
        shelf['list'] = [1]
        shelf['list'].append(2)
        assert shelf['list'] == [1]
    with open_shelf(backend, path, 'r') as shelf:
        assert shelf['list'] == [1]


@pytest.mark.parametrize('writeback', [False, True], ids=['plain', 'writeback'])
def test_del_in_len_and_keys(backend, path, writeback):
    with open_shelf(backend, path, 'c', writeback=writeback) as shelf:
        shelf.update({'a': 1, 'b': [2], 'c': {'three': 3}})
        del shelf['b']
        assert 'b' not in shelf
        assert 'a' in shelf
        assert len(shelf) == 2
        assert sorted(shelf.keys()) == ['a', 'c']
        with pytest.raises(KeyError):
            del shelf['b']
    with open_shelf(backend, path, 'r') as shelf:
        assert 'b' not in shelf
        assert len(shelf) == 2
        assert sorted(shelf) == ['a', 'c']
        assert dict(shelf.items()) == {'a': 1, 'c': {'three': 3}}


def test_overwrite_and_delete_across_reopens(backend, path):
    with open_shelf(backend, path, 'c') as shelf:
        shelf['a'] = 'first'
        shelf['b'] = 'kept'
    with open_shelf(backend, path, 'w') as shelf:
        shelf['a'] = ['second']
        del shelf['b']
        shelf['c'] = 'new'
    with open_shelf(backend, path, 'r') as shelf:
        assert dict(shelf.items()) == {'a': ['second'], 'c': 'new'}


def test_closing_the_shelf_closes_the_database(backend, path):
    db = backend.open(path, 'c')
    shelf = shelve.Shelf(db)
    shelf['a'] = 1
    shelf.close()
    with pytest.raises(backend.error):
        db[b'a']
    with pytest.raises(ValueError):
        shelf['a']


def test_a_read_only_shelf_refuses_writes(backend, path):
    with open_shelf(backend, path, 'c') as shelf:
        shelf['a'] = 1
    with open_shelf(backend, path, 'r') as shelf:
        with pytest.raises(backend.error):
            shelf['a'] = 2
        with pytest.raises(backend.error):
            del shelf['a']
        assert shelf['a'] == 1
