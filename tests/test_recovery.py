"""Promises about damaged data files: torn tails, bit flips, broken chains, bad headers,
crashes.

Each test builds a data file byte by byte (from :mod:`semidbm.format`'s encoders),
damages it the way a crash or a bad disk would, and checks what opening it gives and
what is left on disk.  Two kinds of torn tail exist: a file cut in the middle of its
last record (a writer using ``write()``, like semidbm 0.5.1, killed), and the first
bytes of a record followed by pad (our mapped writer killed in the middle of a copy,
see ``semidbm/datafile.py``).
"""
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import zlib

import pytest

import helpers
import semidbm
from semidbm import datafile, format, layout, snapshot

if not helpers.PYPY:  # PyPy's tracemalloc module cannot be imported: no _tracemalloc
    import tracemalloc

#: The pad our writer keeps past the logical end; any length will do.
PAD = format.PAD_BYTE * 100

BASE = [(b'a', b'1'), (b'k', b'old value'), (b'b', b'2')]
BEFORE = {b'a': b'1', b'k': b'old value', b'b': b'2'}
#: The last record, torn, and the contents if it had been written whole.
LAST_RECORDS = {
    'overwrite': (format.encode_put(b'k', b'new value'), {**BEFORE, b'k': b'new value'}),
    'new key': (format.encode_put(b'c', b'3'), {**BEFORE, b'c': b'3'}),
    'tombstone': (format.encode_delete(b'k'), {b'a': b'1', b'b': b'2'}),
}


def offsets(pairs):
    """The offset of each record of *pairs* after the header."""
    result, at = [], format.HEADER.size
    for key, value in pairs:
        result.append(at)
        at += format.record_size(len(key), format.DELETED if value is None else len(value))
    return result


def state_of(path, names=None):
    """Each file in the database directory (or each of *names*) with its bytes and
    mtime.  Compare with ``state_of(path, before) == before``: files the store keeps
    beside its data (a lock) may come, the ones there before must stay as they were."""
    state = {}
    for name in sorted(os.listdir(path) if names is None else names):
        full = os.path.join(path, name)
        with open(full, 'rb') as f:
            state[name] = (f.read(), os.stat(full).st_mtime_ns)
    return state


def key_with_checksum_ending_in_pad(value):
    """A key whose put record with *value* ends in a 0xff byte."""
    return next(b'key%d' % i for i in range(10 ** 5)
                if zlib.crc32(b'key%d' % i + value) & 0xff == 0xff)


# -- torn tails ---------------------------------------------------------------------


@pytest.mark.parametrize('style', ['truncated', 'followed by pad'])
@pytest.mark.parametrize('last', sorted(LAST_RECORDS))
def test_torn_last_record_at_every_offset(tmp_path, last, style):
    """A last record torn anywhere is dropped: the state before it is served, on disk
    nothing changes for 'r', and a writable open cuts it before appending."""
    record, after = LAST_RECORDS[last]
    base = helpers.records(*BASE)
    for cut in range(len(record)):
        torn = record[:cut]
        data = base + torn + (PAD + format.PAD_BYTE * (len(record) - cut)
                              if style == 'followed by pad' else b'')
        # The missing bytes of the record may all be 0xff already: then the copy was
        # complete in all but name, and the record is whole.
        whole = style == 'followed by pad' and record.startswith(torn) and (
            record[cut:] == format.PAD_BYTE * (len(record) - cut))
        expected = after if whole else BEFORE
        path = helpers.write_data(str(tmp_path / f'db{cut}'), data)
        before = state_of(path)
        assert helpers.contents(path) == expected, cut
        assert state_of(path, before) == before, cut
        assert helpers.contents(path, 'w') == expected, cut
        with semidbm.open(path, 'c') as db:
            db[b'new'] = b'record'
            assert db[b'new'] == b'record'
        kept = record if whole else b''
        assert helpers.data_bytes(path) == base + kept + helpers.record(b'new', b'record'), cut
        assert helpers.contents(path) == {**expected, b'new': b'record'}, cut


def test_torn_record_identical_to_the_whole_record_is_applied(path):
    """Pad bytes that happen to equal the missing checksum bytes complete the record."""
    key = key_with_checksum_ending_in_pad(b'new value')
    record = format.encode_put(key, b'new value')
    data = helpers.records(*BASE) + record[:-1] + PAD
    helpers.write_data(path, data)
    assert helpers.contents(path) == {**BEFORE, key: b'new value'}


def test_a_torn_tail_of_only_a_partial_header_field(tmp_path):
    base = helpers.records(*BASE)
    for extra in [b'\x00', b'\x00\x00\x00', b'\x00\x00\x00\x01\x00']:
        path = helpers.write_data(str(tmp_path / f'db{len(extra)}'), base + extra)
        assert helpers.contents(path) == BEFORE
        assert helpers.data_bytes(path) == base + extra
        semidbm.open(path, 'w').close()
        assert helpers.data_bytes(path) == base


def test_read_only_open_leaves_a_torn_tail_and_everything_else_alone(path):
    data = helpers.records(*BASE) + format.encode_put(b'c', b'33')[:-2]
    helpers.write_data(path, data)
    pathlib.Path(path, 'data.compact').write_bytes(b'left by a crash')
    before = state_of(path)
    with semidbm.open(path, 'r') as db:
        assert dict((key, db[key]) for key in db.keys()) == BEFORE
        with pytest.raises(semidbm.error):
            db[b'c'] = b'33'
    assert state_of(path, before) == before


sizes_past_the_end = pytest.mark.parametrize('field', [
    (format.MAX_SIZE, 0), (0, format.MAX_SIZE), (1, format.MAX_SIZE - 1)])
followed_by = pytest.mark.parametrize('following', [b'', b'key', b'\x07' * 40])


def write_size_past_the_end(path, field, following):
    """Write BASE and then a record head of sizes *field*; return both files' bytes."""
    base = helpers.records(*BASE)
    data = base + format.RECORD_HEAD.pack(*field) + following
    helpers.write_data(path, data)
    return base, data


@sizes_past_the_end
@followed_by
def test_a_size_past_the_end_of_the_file_is_a_torn_tail(path, field, following):
    base, data = write_size_past_the_end(path, field, following)
    assert helpers.contents(path) == BEFORE
    assert helpers.data_bytes(path) == data
    assert helpers.contents(path, 'w') == BEFORE
    assert helpers.data_bytes(path) == base


@pytest.mark.skipif(helpers.PYPY, reason='PyPy lacks tracemalloc (no _tracemalloc module): '
                    'what an open allocates is measured on CPython only')
@sizes_past_the_end
@followed_by
def test_a_size_past_the_end_of_the_file_allocates_nothing_of_that_size(path, field,
                                                                        following):
    """Sizes are checked against the file before anything is read or allocated."""
    write_size_past_the_end(path, field, following)
    tracemalloc.start()
    try:
        assert helpers.contents(path) == BEFORE
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


# -- bit flips ----------------------------------------------------------------------

PAIRS = [(b'first', b'one'), (b'middle', b'the middle value'), (b'last', b'three')]


def flipped(data, position, bit=0):
    damaged = bytearray(data)
    damaged[position] ^= 1 << bit
    return bytes(damaged)


@pytest.mark.parametrize('where', ['value start', 'value end', 'checksum'])
@pytest.mark.parametrize('bit', [0, 7])
def test_bit_flip_in_a_record_before_the_last(path, where, bit):
    """Open succeeds, neighbours read back, a verified read names the key and offset."""
    data = helpers.records(*PAIRS)
    at = offsets(PAIRS)[1]
    value_at = at + format.RECORD_HEAD.size + len(b'middle')
    position = {'value start': value_at, 'value end': value_at + len(PAIRS[1][1]) - 1,
                'checksum': value_at + len(PAIRS[1][1])}[where]
    helpers.write_data(path, flipped(data, position, bit))
    with semidbm.open(path, 'r') as db:
        assert db[b'first'] == b'one' and db[b'last'] == b'three'
        value = db[b'middle']
    expected = PAIRS[1][1]
    if where != 'checksum':
        expected = flipped(expected, position - value_at, bit)
    assert value == expected
    if where != 'checksum':
        assert value != PAIRS[1][1]
    with semidbm.open(path, 'r', verify_checksums=True) as db:
        assert db[b'first'] == b'one' and db[b'last'] == b'three'
        with pytest.raises(semidbm.DBMChecksumError) as info:
            db[b'middle']
    message = str(info.value)
    assert repr(b'middle') in message
    assert f'offset {at}' in message
    assert helpers.data_path(path) in message
    # Damage before the end is not a torn tail: a writable open cuts nothing.
    semidbm.open(path, 'w').close()
    assert helpers.data_bytes(path) == flipped(data, position, bit)


def test_bit_flip_in_a_key_before_the_last(path):
    data = helpers.records(*PAIRS)
    position = offsets(PAIRS)[1] + format.RECORD_HEAD.size
    helpers.write_data(path, flipped(data, position))
    with semidbm.open(path, 'r', verify_checksums=True) as db:
        assert sorted(db.keys()) == [b'first', b'last', b'liddle']
        with pytest.raises(semidbm.DBMChecksumError, match='liddle'):
            db[b'liddle']
        assert db[b'last'] == b'three'


def test_bit_flip_in_the_last_record_followed_by_pad_is_a_torn_tail(path):
    """What a writer killed in the middle of its copy leaves: the record is dropped
    and the value before it is served."""
    pairs = PAIRS + [(b'first', b'overwritten')]
    data = helpers.records(*pairs)
    helpers.write_data(path, flipped(data, len(data) - format.CHECKSUM.size - 1) + PAD)
    expected = dict(PAIRS)
    assert helpers.contents(path) == expected
    assert helpers.contents(path, 'r', verify_checksums=True) == expected
    semidbm.open(path, 'w').close()
    assert helpers.data_bytes(path) == helpers.records(*PAIRS)


def test_bit_flip_in_the_last_record_of_a_closed_file_is_damage_not_a_tear(path):
    """A cleanly closed file has no pad after its last record, so a bad checksum
    there is damage like any other (db.py, ``_settle_last``): kept and reported by a
    verified read, never cut."""
    data = helpers.records(*PAIRS)
    position = len(data) - format.CHECKSUM.size - 1
    damaged = flipped(data, position)
    helpers.write_data(path, damaged)
    assert helpers.contents(path)[b'last'] == b'thred'
    with semidbm.open(path, 'r', verify_checksums=True) as db:
        assert db[b'first'] == b'one'
        with pytest.raises(semidbm.DBMChecksumError) as info:
            db[b'last']
    assert f'offset {offsets(PAIRS)[2]}' in str(info.value)
    semidbm.open(path, 'w').close()
    assert helpers.data_bytes(path) == damaged


# -- broken chains ------------------------------------------------------------------

CHAIN = [(b'a', b'1'), (b'broken', b'value of the broken record'), (b'c', b'3'),
         (b'd', None), (b'e', b'5')]


def broken_chain(head, pairs=CHAIN, at=1):
    """The data of *pairs* with the size fields of record *at* replaced by *head*."""
    data = bytearray(helpers.records(*pairs))
    offset = offsets(pairs)[at]
    data[offset:offset + format.RECORD_HEAD.size] = format.RECORD_HEAD.pack(*head)
    return bytes(data), offset


BAD_HEADS = {
    'value size past the end': (6, format.MAX_SIZE),
    'key size past the end': (format.MAX_SIZE, 26),
    'impossible value size': (6, -5),
    'negative key size': (-6, 26),
    # These two still parse as a record (with a bad checksum), ending inside the
    # bytes of the next record or of its own value: the chain breaks after it.
    'value size into the next record': (6, 30),
    'value size short': (6, 20),
}


@pytest.mark.parametrize('pad', [b'', PAD], ids=['closed', 'followed by pad'])
@pytest.mark.parametrize('flag', ['r', 'w', 'c'])
@pytest.mark.parametrize('bad', sorted(BAD_HEADS))
def test_a_broken_chain_is_refused_and_never_cut(path, bad, flag, pad):
    data, offset = broken_chain(BAD_HEADS[bad])
    helpers.write_data(path, data + pad)
    before = state_of(path)
    with pytest.raises(semidbm.DBMLoadError) as info:
        semidbm.open(path, flag)
    message = str(info.value)
    assert helpers.data_path(path) in message
    assert f'python -m semidbm repair {path}' in message
    damaged, following = map(int, re.search(
        r'damaged record at offset (\d+); valid records follow at offset (\d+)',
        message).groups())
    assert damaged == offset  # a record that still parses is named by its checksum
    assert following in offsets(CHAIN)[2:]
    assert state_of(path, before) == before


def test_a_broken_chain_whose_one_valid_record_ends_in_pad_bytes(tmp_path):
    """The record after the damage ends in a 0xff byte, like the pad: still found."""
    key = key_with_checksum_ending_in_pad(b'v')
    data, offset = broken_chain((1, 2 ** 20), [(b'a', b'1'), (b'b', b'2'), (key, b'v')])
    for name, pad in [('closed', b''), ('followed by pad', PAD)]:
        path = helpers.write_data(str(tmp_path / name), data + pad)
        with pytest.raises(semidbm.DBMLoadError, match=f'offset {offset}'):
            semidbm.open(path, 'w')
        assert helpers.data_bytes(path) == data + pad


def test_broken_chain_error_is_a_semidbm_error_and_an_oserror(path):
    data, _ = broken_chain(BAD_HEADS['value size short'])
    helpers.write_data(path, data)
    with pytest.raises(semidbm.error):
        semidbm.open(path)
    assert issubclass(semidbm.DBMLoadError, OSError)


# -- not a data file ----------------------------------------------------------------

#: Data files that are not ours, and what the refusal says.
NOT_OURS = {
    'bad magic': (helpers.records(*BASE, header=b'SEMX\x00\x01\x00\x01'),
                  'not a semidbm data file'),
    'major version 2': (helpers.records(*BASE, header=format.HEADER.pack(b'SEMI', 2, 0)),
                        'file format 2.0 is not supported'),
    'major version 0': (format.HEADER.pack(b'SEMI', 0, 9), 'file format 0.9 is not supported'),
    'dbm.dumb data': (b'\x00' * 512, 'not a semidbm data file'),
    'gdbm data': (b'GDBM this is something else entirely', 'not a semidbm data file'),
    'short': (b'SEM', 'too short'),
    'header cut': (format.HEADER_BYTES[:-1], 'too short'),
}


@pytest.mark.parametrize('flag', ['r', 'w', 'c'])
@pytest.mark.parametrize('kind', sorted(NOT_OURS))
def test_a_file_that_is_not_ours_is_refused_by_name(path, kind, flag):
    data, says = NOT_OURS[kind]
    helpers.write_data(path, data)
    with pytest.raises(semidbm.DBMLoadError, match=says) as info:
        semidbm.open(path, flag)
    assert helpers.data_path(path) in str(info.value)
    assert helpers.data_bytes(path) == data


def test_a_newer_minor_version_opens(path):
    helpers.write_data(path, helpers.records(*BASE, header=format.HEADER.pack(b'SEMI', 1, 7)))
    assert helpers.contents(path) == BEFORE


def test_an_empty_data_file(path):
    """Left by a creator killed before its header was written: refused read-only,
    written anew by a writable open."""
    helpers.write_data(path, b'')
    with pytest.raises(semidbm.DBMLoadError, match='too short') as info:
        semidbm.open(path, 'r')
    assert helpers.data_path(path) in str(info.value)
    assert helpers.data_bytes(path) == b''
    assert helpers.contents(path, 'w') == {}
    assert helpers.data_bytes(path) == format.HEADER_BYTES


# -- an interrupted compaction ------------------------------------------------------


@pytest.mark.parametrize('leftover', [
    b'', b'garbage', helpers.records((b'a', b'stale'), (b'z', b'26'))])
def test_leftover_compaction_file(path, leftover):
    data = helpers.records(*BASE)
    helpers.write_data(path, data)
    compact = pathlib.Path(path, 'data.compact')
    compact.write_bytes(leftover)
    assert helpers.contents(path) == BEFORE
    assert compact.read_bytes() == leftover
    assert helpers.contents(path, 'w') == BEFORE
    assert not compact.exists()
    assert helpers.data_bytes(path) == data


def run_and_die(path, script):
    """Run *script* (which ends by killing its process) against the db at *path*."""
    program = textwrap.dedent(f'''
        import os, sys
        import semidbm
        path = sys.argv[1]
        db = semidbm.open(path, 'c')
        for i in range(50):
            db[b'key%d' % i] = b'value %d' % i
        del db[b'key7']
        db[b'key3'] = b'overwritten'
    ''') + textwrap.dedent(script)
    result = subprocess.run([sys.executable, '-c', program, path], env=helpers.child_env(),
                            capture_output=True, timeout=120)
    assert result.returncode == 17, result.stderr.decode()


def killed_writer_contents():
    expected = {b'key%d' % i: b'value %d' % i for i in range(50)}
    del expected[b'key7']
    expected[b'key3'] = b'overwritten'
    return expected


@pytest.mark.parametrize('step', ['writing the copy', 'before the replace',
                                  'after the replace'])
def test_a_compaction_killed_at_any_step_loses_nothing(path, step):
    target = {'writing the copy': 'semidbm.layout.write_all',
              'before the replace': 'os.replace',
              'after the replace': 'semidbm.layout.fsync_directory'}[step]
    module, name = target.rsplit('.', 1)
    run_and_die(path, f'''
        import {module}
        real = {target}
        def die(*args):
            if {step!r} == 'writing the copy':
                if not os.readlink(f'/proc/self/fd/{{args[0]}}').endswith('.compact'):
                    return real(*args)  # the old file's sync mark, first
                real(args[0], args[1][:len(args[1]) // 2])
            elif {step!r} == 'after the replace':
                real(*args)
            os._exit(17)
        {module}.{name} = die
        db.compact()
    ''')
    expected = killed_writer_contents()
    compact = os.path.join(path, 'data.compact')
    assert os.path.exists(compact) == (step != 'after the replace')
    assert helpers.contents(path, 'r', verify_checksums=True) == expected
    assert helpers.contents(path, 'w', verify_checksums=True) == expected
    assert not os.path.exists(compact)


# -- the pad of a killed writer -----------------------------------------------------


@pytest.mark.parametrize('pad', [1, 4, 100, 1 << 16, (1 << 16) + 3])
def test_pad_left_by_a_killed_writer(tmp_path, path, pad):
    data = helpers.records(*BASE)
    helpers.write_data(path, data + format.PAD_BYTE * pad)
    assert helpers.contents(path) == BEFORE
    assert helpers.data_bytes(path) == data + format.PAD_BYTE * pad
    with semidbm.open(path, 'w') as db:
        assert dict((key, db[key]) for key in db.keys()) == BEFORE
    assert helpers.data_bytes(path) == data
    path = helpers.write_data(str(tmp_path / 'again'), data + format.PAD_BYTE * pad)
    with semidbm.open(path, 'w') as db:
        db[b'z'] = b'26'
    assert helpers.data_bytes(path) == data + format.encode_put(b'z', b'26')


def test_a_real_killed_writer(path):
    run_and_die(path, '''
        os._exit(17)
    ''')
    data = helpers.data_bytes(path)
    expected = killed_writer_contents()
    logical = helpers.records(*[(b'key%d' % i, b'value %d' % i) for i in range(50)],
                              (b'key7', None), (b'key3', b'overwritten'))
    assert data.startswith(logical)
    assert len(data) > len(logical)
    assert data[len(logical):] == format.PAD_BYTE * (len(data) - len(logical))
    assert helpers.contents(path, 'r', verify_checksums=True) == expected
    assert helpers.data_bytes(path) == data
    assert helpers.contents(path, 'w') == expected
    assert helpers.data_bytes(path) == logical


def test_a_long_torn_tail_is_cut_before_anything_is_appended(path):
    """While the db is open too, only pad follows the records: the torn bytes are cut
    at open, not merely covered by pad (a tail longer than a growth step shows it)."""
    base = helpers.records(*BASE)
    torn = format.encode_put(b'big', b'\x07' * (3 * datafile.MIN_GROWTH))[:-1]
    helpers.write_data(path, base + torn)
    with semidbm.open(path, 'w') as db:
        db[b'new'] = b'record'
        logical = base + format.encode_put(b'new', b'record')
        data = helpers.data_bytes(path)
        assert data.startswith(logical)
        assert data[len(logical):] == format.PAD_BYTE * (len(data) - len(logical))
    assert helpers.data_bytes(path) == logical


def test_a_killed_writer_after_an_index_snapshot(path):
    """A database big enough for an index snapshot, reopened, written and killed: the
    snapshot covers the start, the scan the rest, the pad is ignored."""
    count = snapshot.MIN_KEYS + 10
    with semidbm.open(path, 'n') as db:
        db.update((b'key%d' % i, b'value %d' % i) for i in range(count))
    assert os.path.exists(os.path.join(path, layout.SNAPSHOT))
    run_and_die(path, '''
        os._exit(17)
    ''')
    expected = {b'key%d' % i: b'value %d' % i for i in range(count)}
    expected.update(killed_writer_contents())
    del expected[b'key7']
    assert helpers.contents(path, 'r', verify_checksums=True) == expected
    assert helpers.contents(path, 'w') == expected
    assert helpers.contents(path, 'r') == expected


def test_check_takes_a_head_then_pad_for_a_torn_copy_not_a_record():
    """A head of four bytes of key and value followed by nothing but pad checksums
    good (crc32 of four 0xFF bytes is 0xFFFFFFFF): the loader drops it as a torn copy,
    and check/repair must agree rather than count it as a record never written."""
    from semidbm import repair
    good = format.encode_put(b'kept', b'value')
    head = format.RECORD_HEAD.pack(2, 2)
    pad = format.PAD_BYTE * 64
    data = format.HEADER_BYTES + good + head + pad
    report = repair.Report('data', len(data))
    records = list(repair.walk(data, len(data), report))
    assert records == [(format.HEADER.size, len(good))]
    assert report.records == 1
    assert [damage.start for damage in report.damage] in ([], [format.HEADER.size + len(good)])
    assert format.torn_copy(data, format.HEADER.size + len(good), 2, 2, len(data))
    assert not format.torn_copy(data, format.HEADER.size, 4, 5, len(data))
