"""Promises about byte compatibility with semidbm 0.5.1, both ways.

0.5.1 to us: ``tests/fixtures/NAME/`` holds a data file 0.5.1 wrote and what it must
contain (``scripts/make_fixtures`` regenerates them).  We read each exactly, write
the same bytes from the same operations, and can write to it.

Us to 0.5.1: files we write are read by 0.5.1 itself, in a subprocess whose only path
entry is its own directory.  Those tests need 0.5.1, found in ``$SEMIDBM_PEER_PATH``,
``/tmp/peer/pkg``, or installed with pip into the pytest cache; without it (no
network) they skip, saying why.
"""
import base64
import collections.abc
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from importlib.machinery import SourceFileLoader

import pytest

import helpers
import semidbm
from semidbm import datafile, format, layout, snapshot

FIXTURES = os.path.join(helpers.ROOT, 'tests', 'fixtures')
#: What the fixtures must cover (more may be added).
REQUIRED = {'empty', 'puts', 'overwrites', 'deletes', 'cleared', 'compacted', 'str_keys',
            'large_value'}


def _load_make_fixtures():
    path = os.path.join(helpers.ROOT, 'scripts', 'make_fixtures')
    loader = SourceFileLoader('make_fixtures', path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(
        'make_fixtures', loader))
    loader.exec_module(module)
    return module


make_fixtures = _load_make_fixtures()
#: :data:`make_fixtures.PROGRAM`'s functions, run here on our semidbm.
PROGRAM = {'__name__': 'peer_program'}
exec(make_fixtures.PROGRAM, PROGRAM)
FIXTURE_NAMES = sorted(os.listdir(FIXTURES))


def load_fixture(name):
    with open(os.path.join(FIXTURES, name, 'expected.json'), encoding='utf-8') as f:
        return json.load(f)


def decode(contents):
    return {base64.b64decode(key): base64.b64decode(value)
            for key, value in contents.items()}


def encode(contents):
    return {make_fixtures.b64(key): make_fixtures.b64(value)
            for key, value in contents.items()}


def copy_fixture(name, tmp_path):
    """A copy of fixture *name* to open (the committed one is never written)."""
    path = str(tmp_path / name)
    shutil.copytree(os.path.join(FIXTURES, name), path)
    os.remove(os.path.join(path, 'expected.json'))
    return path


@pytest.fixture(scope='session')
def peer(request, tmp_path_factory):
    """The directory of an importable semidbm 0.5.1, or skip saying why there is none."""
    candidates = [os.environ.get('SEMIDBM_PEER_PATH'), '/tmp/peer/pkg']
    cache = getattr(request.config, 'cache', None)
    install_dir = str(cache.mkdir('semidbm-0.5.1') if cache is not None
                      else tmp_path_factory.mktemp('semidbm-0.5.1')) + os.sep + 'pkg'
    reasons = []
    for candidate in filter(None, candidates + [install_dir]):
        reason = make_fixtures.check_peer(candidate)
        if reason is None:
            return candidate
        reasons.append(reason)
    reason = make_fixtures.install_peer(install_dir)
    if reason is None:
        return install_dir
    pytest.skip(f'semidbm 0.5.1 is not available ({"; ".join(reasons + [reason])}); '
                f'set SEMIDBM_PEER_PATH to an unpacked copy to run this test')


def peer_read(peer, path):
    """What 0.5.1 reads from *path*: its reply, contents decoded."""
    reply = make_fixtures.run_peer(peer, {'path': path})
    assert reply['version'] == '0.5.1' and reply['file'].startswith(peer)
    if 'contents' in reply:
        reply['contents'] = decode(reply['contents'])
    return reply


def peer_contents(peer, path):
    reply = peer_read(peer, path)
    assert 'error' not in reply, reply
    return reply['contents']


def peer_apply(peer, path, ops, flag='c'):
    reply = make_fixtures.run_peer(peer, {'path': path, 'ops': ops, 'flag': flag})
    assert 'error' not in reply, reply
    return decode(reply['contents'])


# -- 0.5.1's files, read and written by us --------------------------------------------


def test_the_fixtures_cover_what_they_must():
    assert REQUIRED <= set(FIXTURE_NAMES)
    for name in FIXTURE_NAMES:
        fixture = load_fixture(name)
        assert fixture['written_by'] == 'semidbm 0.5.1'
        assert helpers.data_bytes(os.path.join(FIXTURES, name)).startswith(format.HEADER_BYTES)
    large = decode(load_fixture('large_value')['contents'])
    assert max(map(len, large.values())) > datafile.MIN_GROWTH
    assert any(op[0] == 'compact' for op in load_fixture('compacted')['ops'])
    assert any(op[0] == 'put_text' for op in load_fixture('str_keys')['ops'])
    assert load_fixture('empty')['contents'] == {}


@pytest.mark.parametrize('name', FIXTURE_NAMES)
def test_we_read_a_file_written_by_0_5_1(name, tmp_path):
    path = copy_fixture(name, tmp_path)
    before = helpers.data_bytes(path)
    expected = decode(load_fixture(name)['contents'])
    assert helpers.contents(path) == expected
    assert helpers.contents(path, verify_checksums=True) == expected
    with semidbm.open(path, 'r') as db:
        assert len(db) == len(expected)
        assert sorted(db) == sorted(expected)
    assert helpers.data_bytes(path) == before
    assert layout.SNAPSHOT not in os.listdir(path)     # a read-only open writes nothing


@pytest.mark.parametrize('name', FIXTURE_NAMES)
def test_the_same_operations_write_the_same_bytes(name, tmp_path):
    """Replayed by our package, the fixture's operations (compaction included) give
    the file 0.5.1 wrote, byte for byte."""
    fixture = load_fixture(name)
    path = str(tmp_path / 'ours')
    PROGRAM['apply'](semidbm, path, fixture['ops'])
    assert helpers.data_bytes(path) == helpers.data_bytes(os.path.join(FIXTURES, name))
    assert PROGRAM['dump'](semidbm, path) == fixture['contents']


MORE_OPS = [make_fixtures.put(b'new key', b'new value'),
            make_fixtures.put(b'key005', b'overwritten by us'),
            make_fixtures.put(b'\xff' * 3, b'\xff' * 5), ['reopen', 'c'],
            make_fixtures.delete(b'new key'), ['put_text', 'ключ', 'ours']]


def after_more_ops(contents):
    result = dict(contents)
    result.update({b'key005': b'overwritten by us', b'\xff' * 3: b'\xff' * 5,
                   'ключ'.encode(): b'ours'})
    return result


@pytest.mark.parametrize('name', FIXTURE_NAMES)
def test_we_write_to_a_file_written_by_0_5_1(name, tmp_path):
    path = copy_fixture(name, tmp_path)
    original = helpers.data_bytes(path)
    PROGRAM['apply'](semidbm, path, MORE_OPS, 'w')
    expected = after_more_ops(decode(load_fixture(name)['contents']))
    assert helpers.contents(path, verify_checksums=True) == expected
    # Appended, and nothing else: 0.5.1's records stay as they were.
    assert helpers.data_bytes(path).startswith(original)
    with semidbm.open(path, 'w') as db:
        db.compact()
    assert helpers.contents(path, verify_checksums=True) == expected


@pytest.mark.parametrize('name', FIXTURE_NAMES)
def test_0_5_1_reads_a_file_of_its_own_that_we_wrote_to(name, tmp_path, peer):
    path = copy_fixture(name, tmp_path)
    PROGRAM['apply'](semidbm, path, MORE_OPS, 'w')
    expected = after_more_ops(decode(load_fixture(name)['contents']))
    assert peer_contents(peer, path) == expected
    with semidbm.open(path, 'w') as db:
        db.compact()
    assert peer_contents(peer, path) == expected
    assert peer_apply(peer, path, [make_fixtures.delete(b'key005')]) == {
        key: value for key, value in expected.items() if key != b'key005'}


@pytest.mark.parametrize('name', FIXTURE_NAMES)
def test_0_5_1_still_writes_the_committed_fixture(name, tmp_path, peer):
    """The fixtures are what 0.5.1 writes today from their operations."""
    fixture = load_fixture(name)
    path = str(tmp_path / 'theirs')
    assert peer_apply(peer, path, fixture['ops'], 'c') == decode(fixture['contents'])
    assert helpers.data_bytes(path) == helpers.data_bytes(os.path.join(FIXTURES, name))


# -- our files, read by 0.5.1 -------------------------------------------------------


def compact(db):
    if hasattr(db, 'compact'):
        db.compact()


def fill(db, count, prefix=b'key'):
    for i in range(count):
        db[prefix + b'%d' % i] = b'value %d' % i


def puts(db, reopen):
    fill(db, 20)
    db[b''] = b'the empty key'
    db[b'empty value'] = b''
    db[b'\x00\xff'] = bytes(range(256))


def overwrites(db, reopen):
    fill(db, 10)
    for size in [100, 0, 3, 1000]:
        db[b'key3'] = b'x' * size
    db = reopen(db)
    db[b'key3'] = b'after reopen'


def deletes(db, reopen):
    fill(db, 10)
    for i in range(0, 10, 2):
        del db[b'key%d' % i]
    db[b'key4'] = b'back again'
    db = reopen(db)
    del db[b'key1']


def update(db, reopen):
    db.update({b'a': b'1', b'b': b'2'})
    db.update([(b'c', b'3'), (b'a', b'overwritten')], d=b'4')
    db.update({})


def clear(db, reopen):
    fill(db, 10)
    db.clear()
    db[b'after'] = b'clear'


def clear_all(db, reopen):
    fill(db, 10)
    db.clear()


def compaction(db, reopen):
    fill(db, 100)
    for i in range(0, 100, 3):
        del db[b'key%d' % i]
    db[b'key1'] = b'overwritten before compaction'
    compact(db)
    db[b'key2'] = b'overwritten after compaction'
    del db[b'key4']
    db[b'new'] = b'after compaction'


def close_compact(db, reopen):
    fill(db, 30)
    fill(db, 30)
    del db[b'key7']
    if isinstance(db, semidbm.SemiDBM):
        db.close(compact=True)


def compacted_empty(db, reopen):
    fill(db, 5)
    db.clear()
    compact(db)


def str_keys(db, reopen):
    db['ключ'] = 'значение'
    db['naïve'] = b'bytes value'
    db[b'bytes key'] = '🔑'


def large_value(db, reopen):
    # Past 0.5.1's load window (300 pages) and several of our growth steps.
    db[b'before'] = b'b'
    db[b'large'] = bytes(range(256)) * (3 * 4096 * 300 // 256) + b'\xff' * 7
    db[b'after'] = b'a'


def empty(db, reopen):
    pass


def many_keys(db, reopen):
    # Enough keys for an index snapshot beside the data file: 0.5.1 ignores it.
    db.update((b'key%d' % i, b'v%d' % i) for i in range(snapshot.MIN_KEYS + 100))
    del db[b'key0']


SCENARIOS = [puts, overwrites, deletes, update, clear, clear_all, compaction,
             close_compact, compacted_empty, str_keys, large_value, empty, many_keys]


def write_with_us(scenario, path):
    """Run *scenario* on our db at *path* and on a model; return the model's contents."""
    opened = [semidbm.open(path, 'c')]

    def reopen(db):
        db.close()
        opened.append(semidbm.open(path, 'w'))
        return opened[-1]

    try:
        scenario(opened[0], reopen)
    finally:
        for db in opened:
            db.close()
    model = Model()
    scenario(model, lambda same: same)
    assert helpers.contents(path) == model.data
    return model.data


class Model(collections.abc.MutableMapping):
    """A dict that stores str as UTF-8, as semidbm does."""

    def __init__(self):
        self.data = {}

    @staticmethod
    def _bytes(data):
        return data.encode('utf-8') if isinstance(data, str) else data

    def __getitem__(self, key):
        return self.data[self._bytes(key)]

    def __setitem__(self, key, value):
        self.data[self._bytes(key)] = self._bytes(value)

    def __delitem__(self, key):
        del self.data[self._bytes(key)]

    def __iter__(self):
        return iter(list(self.data))

    def __len__(self):
        return len(self.data)


@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_0_5_1_reads_what_we_wrote(scenario, path, peer):
    expected = write_with_us(scenario, path)
    data = helpers.data_bytes(path)
    assert peer_contents(peer, path) == expected
    assert helpers.data_bytes(path) == data


@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_we_and_0_5_1_take_turns(scenario, path, peer):
    expected = write_with_us(scenario, path)
    theirs = [make_fixtures.put(b'theirs', b'1'), make_fixtures.put(b'key1', b'theirs too')]
    expected.update({b'theirs': b'1', b'key1': b'theirs too'})
    assert peer_apply(peer, path, theirs) == expected
    assert helpers.contents(path, verify_checksums=True) == expected
    with semidbm.open(path, 'w') as db:
        db[b'ours'] = b'2'
        del db[b'theirs']
    expected[b'ours'] = b'2'
    del expected[b'theirs']
    assert peer_apply(peer, path, [['compact']]) == expected
    assert helpers.contents(path, verify_checksums=True) == expected


def test_our_index_snapshot_survives_0_5_1_appending_and_compacting(path, peer):
    """0.5.1 knows nothing of the snapshot: what it appends is scanned, and after its
    compaction (a new file) the snapshot is not trusted."""
    expected = write_with_us(many_keys, path)
    assert os.path.exists(os.path.join(path, layout.SNAPSHOT))
    ops = [make_fixtures.put(b'key5', b'changed by 0.5.1'), make_fixtures.delete(b'key6')]
    expected[b'key5'] = b'changed by 0.5.1'
    del expected[b'key6']
    peer_apply(peer, path, ops)
    assert helpers.contents(path) == expected
    with semidbm.open(path, 'w') as db:     # writes a new snapshot at close
        db[b'key8'] = b'ours'
    expected[b'key8'] = b'ours'
    ops = [make_fixtures.delete(b'key9'), ['compact'], make_fixtures.put(b'key10', b'x')]
    del expected[b'key9']
    expected[b'key10'] = b'x'
    assert peer_apply(peer, path, ops) == expected
    assert helpers.contents(path, verify_checksums=True) == expected


# -- 0.5.1 and a database we have open ----------------------------------------------


def test_0_5_1_reading_a_database_our_writer_has_open(path, peer):
    """While our writer has the db open, pad follows its records (datafile.py): 0.5.1
    reads the pad's first word as a key size of -1 and raises its DBMLoadError.  It
    never returns wrong values; after our close it reads everything."""
    expected = {b'key%d' % i: b'value %d' % i for i in range(10)}
    with semidbm.open(path, 'c') as db:
        db.update(expected)
        db.sync()
        reply = peer_read(peer, path)
        assert 'contents' not in reply
        assert reply['error'] == 'DBMLoadError'
        assert helpers.data_bytes(path).startswith(format.HEADER_BYTES)
    assert peer_contents(peer, path) == expected


def test_0_5_1_and_the_file_left_by_our_killed_writer(path, peer):
    """The pad stays when our writer is killed: 0.5.1 refuses the file until we
    have opened it for writing and closed it once."""
    program = textwrap.dedent('''
        import os, sys
        import semidbm
        db = semidbm.open(sys.argv[1], 'c')
        db[b'a'] = b'1'
        db[b'b'] = b'2'
        del db[b'a']
        os._exit(17)
    ''')
    result = subprocess.run([sys.executable, '-c', program, path], capture_output=True,
                            env=helpers.child_env(), timeout=120)
    assert result.returncode == 17, result.stderr.decode()
    assert helpers.data_bytes(path).endswith(format.PAD_BYTE)
    assert peer_read(peer, path)['error'] == 'DBMLoadError'
    assert helpers.contents(path) == {b'b': b'2'}
    semidbm.open(path, 'w').close()
    assert peer_contents(peer, path) == {b'b': b'2'}
