"""Promises about ``semidbm.shelf.open``: a ``shelve.Shelf`` on semidbm, as
``shelve.open`` is on dbm."""
import pickle
import shelve

import pytest

import helpers
import semidbm
import semidbm.shelf

OBJECTS = {
    'int': 2 ** 70,
    'text': 'ünïcödé',
    'bytes': bytes(range(256)),
    'nested': {'a': [1, 2.5, None, (3, 4)], 'b': {frozenset('xy')}},
    '': 'the empty key',
    'ключ': 'a non-ASCII key',
}


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
def test_objects_round_trip_with_every_protocol(path, protocol):
    with semidbm.shelf.open(path, protocol=protocol) as shelf:
        assert isinstance(shelf, shelve.Shelf)
        assert isinstance(shelf.dict, semidbm.SemiDBM)
        shelf.update(OBJECTS)
    stored = helpers.contents(path)
    assert set(stored) == {key.encode('utf-8') for key in OBJECTS}
    for value in stored.values():
        if protocol >= 2:  # the pickle says which protocol wrote it
            assert value[:2] == bytes([pickle.PROTO[0], protocol])
        else:
            assert value[:1] != pickle.PROTO
    with semidbm.shelf.open(path, 'r') as shelf:
        assert dict(shelf) == OBJECTS


def test_the_default_protocol_is_shelves(path):
    reference = {}
    shelve.Shelf(reference)['x'] = [1]  # 3 before Python 3.10, pickle's default after
    with semidbm.shelf.open(path) as shelf:
        shelf['x'] = [1]
    assert helpers.contents(path)[b'x'] == reference[b'x']


def test_writeback_keeps_changes_to_mutable_values(path):
    with semidbm.shelf.open(path, writeback=True) as shelf:
        shelf['list'] = [1]
        shelf['list'].append(2)
    with semidbm.shelf.open(path, writeback=True) as shelf:
        shelf['list'].append(3)
        shelf.sync()  # written back at sync, and the cache emptied
        assert raw_from(shelf)['list'] == [1, 2, 3]
        shelf['list'].append(4)
    with semidbm.shelf.open(path, 'r') as shelf:
        assert shelf['list'] == [1, 2, 3, 4]


def raw_from(shelf):
    return {key.decode(): pickle.loads(shelf.dict[key]) for key in shelf.dict.keys()}


def test_without_writeback_changes_to_a_value_read_are_lost(path):
    with semidbm.shelf.open(path) as shelf:
        shelf['list'] = [1]
        shelf['list'].append(2)  # a copy, unpickled and dropped
        assert shelf['list'] == [1]
    with semidbm.shelf.open(path, 'r') as shelf:
        assert shelf['list'] == [1]


def test_flags(path):
    with pytest.raises(semidbm.error):
        semidbm.shelf.open(path, 'r')
    with semidbm.shelf.open(path) as shelf:  # 'c' by default
        shelf['a'] = 1
    with semidbm.shelf.open(path, 'r') as shelf:
        with pytest.raises(semidbm.error, match='read-only'):
            shelf['b'] = 2
    with semidbm.shelf.open(path, 'w') as shelf:
        del shelf['a']
        shelf['b'] = 2
    with semidbm.shelf.open(path, 'n') as shelf:
        assert len(shelf) == 0
    with pytest.raises(ValueError):
        semidbm.shelf.open(path, 'x')


def test_deletes_last_after_reopening(path):
    with semidbm.shelf.open(path) as shelf:
        shelf.update(OBJECTS)
        del shelf['int']
    with semidbm.shelf.open(path, 'r') as shelf:
        assert 'int' not in shelf
        assert sorted(shelf) == sorted(set(OBJECTS) - {'int'})


def test_open_options_reach_semidbm(path):
    with semidbm.shelf.open(path) as writer:
        writer['a'] = 1
        with pytest.raises(semidbm.error, match=r'\(waited 0.05 s\)'):
            semidbm.shelf.open(path, 'w', lock_timeout=0.05)
        with semidbm.shelf.open(path, 'w', lock=False) as other:
            assert other['a'] == 1
