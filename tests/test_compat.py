"""Promises about the names semidbm 0.5.1 exported: kept, for code written against it.

``semidbm.loaders.mmapload.MMapLoader``, ``semidbm.loaders.simpleload.SimpleFileLoader``
and ``semidbm.db._SemiDBM``: the original test suite and old programs import them.
Both loaders feed the one parser, so they must agree with each other and with the store.
"""
import os

import pytest

import helpers
import semidbm
from semidbm import format
from semidbm.loaders import DBMLoader, FILE_FORMAT_VERSION, FILE_IDENTIFIER, _DELETED
from semidbm.loaders.mmapload import MMapLoader
from semidbm.loaders.simpleload import SimpleFileLoader

LOADERS = [MMapLoader, SimpleFileLoader]


@pytest.fixture
def written(path):
    """The data file of a database written with puts, an overwrite and a delete."""
    with semidbm.open(path, 'c') as db:
        db[b'a'] = b'1'
        db[b'b'] = b'22'
        db[b'a'] = b'333'
        del db[b'b']
    return helpers.data_path(path)


def test_the_format_constants_are_the_format_modules():
    assert FILE_IDENTIFIER == b'SEMI'
    assert FILE_FORMAT_VERSION == (1, 1)
    assert _DELETED == format.DELETED == -1


@pytest.mark.parametrize('loader', LOADERS)
def test_a_loader_yields_every_record_with_its_value_offset(loader, written):
    with open(written, 'rb') as f:
        data = f.read()
    records = list(loader().iter_keys(written))
    assert [(key, size) for key, _, size in records] == [
        (b'a', 1), (b'b', 2), (b'a', 3), (b'b', _DELETED)]
    for key, offset, size in records:
        if size != _DELETED:
            assert data[offset - len(key):offset] == key
    assert data[records[2][1]:records[2][1] + 3] == b'333'


@pytest.mark.parametrize('loader', LOADERS)
def test_a_loader_refuses_a_file_that_is_not_semidbm(loader, tmp_path):
    path = tmp_path / 'data'
    path.write_bytes(b'NOPE' + bytes(4))
    with pytest.raises(semidbm.DBMLoadError, match='not a semidbm data file'):
        list(loader().iter_keys(str(path)))


@pytest.mark.parametrize('loader', LOADERS)
def test_a_loader_stops_at_a_torn_tail(loader, written):
    with open(written, 'ab') as f:
        f.write(format.encode_put(b'torn', b'value')[:-3])
    assert [key for key, _, _ in loader().iter_keys(written)] == [b'a', b'b', b'a', b'b']


def test_the_base_loader_has_no_byte_source():
    with pytest.raises(NotImplementedError):
        DBMLoader().iter_keys('anything')


@pytest.mark.parametrize('loader', LOADERS + [None])
def test_the_0_5_1_class_creates_and_reopens_a_database(path, loader):
    data_loader = loader() if loader else None
    db = semidbm.db._SemiDBM(path, data_loader=data_loader)
    db[b'key'] = b'value'
    db.compact()
    assert db._data_filename == helpers.data_path(path)
    db.close()
    db = semidbm.db._SemiDBM(path, renamer=os.replace, verify_checksums=True)
    assert db[b'key'] == b'value'
    db.close()
