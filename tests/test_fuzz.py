"""Promises about corrupt files: of thousands of generated mutations of valid databases,
each opens or is refused, and never lies.

Each case takes a valid database (its data file and, for one, its index snapshot),
damages it (bit flips, truncations, inserted and deleted bytes, huge or negative
sizes, a bad header, a pad tail, 0xFF runs, copied records, a snapshot that lies
with a good checksum), and checks the promises:

* ``open`` succeeds or raises ``DBMLoadError``; nothing else, read-only or writable;
* it never hangs (a time budget a case) and never allocates memory from a corrupt
  size (``tracemalloc``'s peak stays near the size of the files; measured on CPython
  only, as PyPy has no tracemalloc);
* with ``verify_checksums=True`` a read returns a value that was written for that
  key, or raises ``DBMChecksumError``: never another value.

The CI runs a fixed-seed sample; ``SEMIDBM_LONG=1`` runs the long version (see
docs/reliability.rst).  A case is named by its number; ``describe`` says what it did.
"""
import contextlib
import functools
import os
import pathlib
import random
import signal
import struct
import zlib

import pytest

import helpers
import semidbm
import stats
from semidbm import format, layout, snapshot
from semidbm.exceptions import DBMChecksumError, DBMLoadError

if not helpers.PYPY:  # PyPy's tracemalloc module cannot be imported: no _tracemalloc
    import tracemalloc

LONG = os.environ.get('SEMIDBM_LONG') == '1'
CASES = 12000 if LONG else 300
CHUNK = 100
#: Seconds a case may take (the slowest take a few milliseconds).
BUDGET = 20
#: tracemalloc's peak may reach this many times the size of the files, plus SLACK.
MEMORY_FACTOR = 8
SLACK = 2 << 20
#: Keys of the snapshot base; its snapshot threshold is lowered below it.
SNAPSHOT_KEYS = 1500
FILLER = b'.' * 80


record = functools.partial(stats.record, __name__)


# -- the valid databases to damage ----------------------------------------------------


class Base:
    """A valid database: its files' bytes and every value written for each key."""

    def __init__(self, name, data, history, index_bytes=None):
        self.name = name
        self.data = data
        self.history = history
        self.index_bytes = index_bytes


def write_ops(db, rng, count, keys):
    """Random puts, overwrites and deletes on *db*; return the history of values."""
    history = {}
    for _ in range(count):
        key = rng.choice(keys)
        if key in db and rng.random() < 0.2:
            del db[key]
            continue
        value = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 5, 40, 300])))
        db[key] = value
        history.setdefault(key, set()).add(value)
    return history


def build_bases(directory):
    rng = random.Random(20240601)
    keys = [b'k%d' % i for i in range(30)] + [b'', b'\x00\xff', bytes(range(40))]
    bases = []
    path = os.path.join(directory, 'plain')
    with semidbm.open(path, 'n') as db:
        history = write_ops(db, rng, 120, keys)
        if b'k1' in db:
            del db[b'k1']  # a tombstone last
    data = helpers.data_bytes(path)
    bases.append(Base('plain', data, history))
    # A writer killed with pad after its records, and killed in the middle of a copy.
    bases.append(Base('pad tail', data + format.PAD_BYTE * 300, history))
    torn = format.encode_put(b'k2', b'torn value')
    bases.append(Base('torn then pad', data + torn[:-3] + format.PAD_BYTE * 102,
                      history))
    # Big enough for an index snapshot, whose probes cover only the start and the end.
    path = os.path.join(directory, 'snapshot')
    snapshot_keys = [b'key-%05d' % i for i in range(SNAPSHOT_KEYS)]
    old_min, snapshot.MIN_KEYS = snapshot.MIN_KEYS, 100
    try:
        with semidbm.open(path, 'n') as db:
            # Values long enough for a file past the snapshot's two probes.
            db.update((key, b'first %s' % key + FILLER) for key in snapshot_keys)
            history = {key: {b'first %s' % key + FILLER} for key in snapshot_keys}
            for key in rng.sample(snapshot_keys, 300):
                db[key] = b'second %s' % key
                history[key].add(b'second %s' % key)
            for key in rng.sample(snapshot_keys, 100):
                del db[key]
    finally:
        snapshot.MIN_KEYS = old_min
    data = helpers.data_bytes(path)
    assert len(data) > 2 * format.PROBE  # damage in the middle goes unseen by it
    index_bytes = pathlib.Path(path, layout.SNAPSHOT).read_bytes()
    bases.append(Base('snapshot', data, history, index_bytes))
    return bases


@pytest.fixture(scope='module')
def bases(tmp_path_factory):
    return build_bases(str(tmp_path_factory.mktemp('bases')))


# -- mutations ------------------------------------------------------------------------


def flip_bits(data, rng):
    data = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 3])):
        bit = rng.randrange(len(data) * 8)
        data[bit // 8] ^= 1 << bit % 8
    return bytes(data), f'flip bit {bit}'


def truncate(data, rng):
    at = rng.randrange(len(data))
    return data[:at], f'truncate at {at}'


def insert(data, rng):
    at = rng.randrange(len(data) + 1)
    junk = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 17)))
    return data[:at] + junk + data[at:], f'insert {junk!r} at {at}'


def delete(data, rng):
    at = rng.randrange(len(data))
    length = rng.randrange(1, 17)
    return data[:at] + data[at + length:], f'delete {length} bytes at {at}'


SIZES = [2 ** 31 - 1, -2 ** 31, -1, -2, 0, 1, 2 ** 30, 65535]


def bad_size(data, rng):
    offsets = helpers.record_offsets(data)
    if not offsets:
        return truncate(data, rng)
    at = rng.choice(offsets) + rng.choice([0, 4])
    size = rng.choice(SIZES + [rng.randrange(-2 ** 31, 2 ** 31), len(data),
                               len(data) - at, struct.unpack_from('!i', data, at)[0]
                               + rng.randrange(-8, 9)])
    return data[:at] + struct.pack('!i', size) + data[at + 4:], f'size {size} at {at}'


def bad_header(data, rng):
    at = rng.randrange(format.HEADER.size)
    byte = rng.randrange(256)
    return data[:at] + bytes([byte]) + data[at + 1:], f'header byte {at} = {byte}'


def pad_tail(data, rng):
    cut = rng.choice([len(data), rng.randrange(format.HEADER.size, len(data) + 1)])
    length = rng.choice([1, 4, 100, 70000])
    return data[:cut] + format.PAD_BYTE * length, f'cut at {cut}, pad {length}'


def pad_run(data, rng):
    at = rng.randrange(len(data))
    length = rng.randrange(1, 64)
    run = format.PAD_BYTE * length
    return data[:at] + run + data[at + length:], f'0xFF x {length} at {at}'


def copy_record(data, rng):
    """A whole record copied elsewhere: valid bytes in the wrong place."""
    offsets = helpers.record_offsets(data) + [len(data)]
    if len(offsets) < 2:
        return insert(data, rng)
    i = rng.randrange(len(offsets) - 1)
    record = data[offsets[i]:offsets[i + 1]]
    at = rng.choice([rng.choice(offsets), rng.randrange(len(data))])
    return data[:at] + record + data[at:], f'record at {offsets[i]} copied to {at}'


DATA_MUTATIONS = [flip_bits, truncate, insert, delete, bad_size, bad_header, pad_tail,
                  pad_run, copy_record]


def mutate_data(data, rng):
    steps = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if not data:
            break
        data, step = rng.choice(DATA_MUTATIONS)(data, rng)
        steps.append(step)
    return data, steps


def true_index(data):
    """The index a scan of the valid *data* gives, and every record's position."""
    index, positions = {}, {}
    head = format.RECORD_HEAD.size
    for offset, key, value_size in format.scan(data, format.HEADER.size, len(data)):
        if value_size == format.DELETED:
            index.pop(bytes(key), None)
            continue
        position = (offset + head + len(key)) << 32 | value_size
        index[bytes(key)] = position
        positions.setdefault(bytes(key), []).append(position)
    return index, positions


def lying_index(data, rng):
    """An index that lies about *data*, and what the lie is."""
    index, positions = true_index(data)
    if not index:  # nothing left to lie about: claim a key
        return {b'never written': format.HEADER.size << 32 | 4}, 'snapshot lies (a key)'
    keys = list(index)
    lie = rng.choice(['swap', 'shift', 'size', 'stale', 'foreign key', 'drop', 'huge size',
                      'past the end'])
    key = rng.choice(keys)
    if lie == 'swap':
        other = rng.choice(keys)
        index[key], index[other] = index[other], index[key]
    elif lie == 'shift':
        index[key] += rng.choice([-1, 1, -4, 4, 12]) << 32
    elif lie == 'size':
        index[key] += rng.choice([-1, 1, -4, 4, 12])
    elif lie == 'stale':
        index[key] = positions[key][0]
    elif lie == 'foreign key':
        index[b'never written'] = index[key]
    elif lie == 'drop':
        del index[key]
    elif lie == 'huge size':
        index[key] = index[key] >> 32 << 32 | 0xFFFFFFFF
    else:
        index[key] = (len(data) - rng.randrange(4)) << 32 | rng.randrange(100)
    return index, f'snapshot lies ({lie}) about {key!r}'


def make_case(case, bases, directory):
    """Write damaged database number *case* under *directory*; return its path, its
    base, a description, and whether its snapshot is forged (a good checksum over an
    index that lies)."""
    rng = random.Random(case)
    base = rng.choice(bases)
    path = os.path.join(directory, f'case{case}')
    steps = [base.name]
    data = base.data
    forged = False
    damage_data = base.index_bytes is None or rng.random() < 0.5
    if damage_data:
        data, more = mutate_data(data, rng)
        steps += more
    helpers.write_data(path, data)
    if base.index_bytes is not None:
        index_path = os.path.join(path, layout.SNAPSHOT)
        ino = os.stat(helpers.data_path(path)).st_ino
        roll = rng.random()
        if roll < 0.45:
            # Taken before the damage, of this very file: trusted where the damage
            # misses the stretches it checksums (the first and last 64 KiB).
            snapshot.write(layout.Layout(path), true_index(base.data)[0], base.data,
                           len(base.data), ino, 0o644)
            steps.append('snapshot of the undamaged file')
        elif roll < 0.6:
            damaged, step = rng.choice([flip_bits, truncate, insert, delete])(
                base.index_bytes, rng)
            with open(index_path, 'wb') as f:
                f.write(damaged)
            steps.append(f'snapshot damaged: {step}')
        else:
            index, lie = lying_index(data, rng)
            covered = len(data) if rng.random() < 0.8 else rng.randrange(len(data) + 1)
            snapshot.write(layout.Layout(path), index, data, covered, ino, 0o644)
            steps.append(f'{lie}, covering {covered}')
            forged = True
    return path, base, '; '.join(steps), forged


# -- the checks ---------------------------------------------------------------------


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f'a case took more than {BUDGET} s')


def check_reads(db, history):
    """Every read of *db* returns a value written for its key, or raises
    DBMChecksumError; return how many did which."""
    good = bad = 0
    assert len(db) == len(db.keys())
    for key in db.keys():
        assert key in db
        try:
            value = db[key]
        except DBMChecksumError:
            bad += 1
            continue
        assert value in history.get(key, ()), f'{key!r}: {value[:40]!r} never written'
        good += 1
    return good, bad


@contextlib.contextmanager
def memory_near(size):
    """Check that tracemalloc's peak in the block stays near *size* bytes of files
    (nothing is measured on PyPy, which has no tracemalloc)."""
    if helpers.PYPY:
        yield
        return
    tracemalloc.reset_peak()
    yield
    peak = tracemalloc.get_traced_memory()[1]
    assert peak < MEMORY_FACTOR * size + SLACK, f'{peak} bytes for {size} bytes of files'


def check_case(path, base, forged, writable):
    """Open the damaged database and read everything; return what happened.

    With *writable*, then write to it and read it back: the write must be there,
    unless a snapshot hid the damage from the first open.  Then the next open, which
    scans, may refuse the file, or read the write as part of a damaged record: a size
    field that ran past the end of the file may reach into it (case 2324), or a
    *forged* snapshot's ``covered`` may end in the middle of a record (see "Known
    limits" in docs/reliability.rst).
    """
    size = sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))
    with memory_near(size):
        try:
            db = semidbm.open(path, 'r', verify_checksums=True)
        except DBMLoadError:
            outcome = 'refused'
        else:
            with db:
                good, bad = check_reads(db, base.history)
            outcome = 'opened, checksum errors' if bad else 'opened'
    if writable and outcome != 'refused':
        with semidbm.open(path, 'w', verify_checksums=True) as db:
            check_reads(db, base.history)
            db[b'after'] = b'written after the damage'
        history = {**base.history, b'after': {b'written after the damage'}}
        try:
            db = semidbm.open(path, 'r', verify_checksums=True)
        except DBMLoadError:
            assert base.index_bytes is not None, 'a write made the file unreadable'
            return outcome
        with db:
            check_reads(db, history)
            if base.index_bytes is None:
                assert db[b'after'] == b'written after the damage'
            elif b'after' not in db:
                record('a write after damage hidden by a snapshot, unseen by a scan')
    return outcome


@pytest.fixture
def budget():
    old = signal.signal(signal.SIGALRM, _alarm)
    if not helpers.PYPY:
        tracemalloc.start()
    yield
    if not helpers.PYPY:
        tracemalloc.stop()
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize('chunk', range(CASES // CHUNK))
def test_damaged_files_open_or_are_refused_and_never_lie(bases, tmp_path, budget, chunk):
    outcomes = {}
    for case in range(chunk * CHUNK, (chunk + 1) * CHUNK):
        path, base, description, forged = make_case(case, bases, str(tmp_path))
        signal.setitimer(signal.ITIMER_REAL, BUDGET)
        try:
            outcome = check_case(path, base, forged, writable=case % 4 == 0)
        except BaseException as exc:
            raise AssertionError(f'case {case} ({description}): {exc!r}') from exc
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        record(f'{"forged snapshot" if forged else base.name}: {outcome}')
    # The mutations reach every outcome: a fuzzer that only made refused files, or
    # only harmless ones, would prove little.
    assert set(outcomes) == {'refused', 'opened', 'opened, checksum errors'}, outcomes


@pytest.mark.skipif(helpers.PYPY, reason='PyPy lacks tracemalloc (no _tracemalloc module): '
                    'the fuzz cases\' memory is checked on CPython only')
def test_a_case_that_allocates_far_more_than_its_files_fails(bases, tmp_path, budget,
                                                             monkeypatch):
    """The memory check can fail: an open that allocates 64 MiB, as one that trusted
    a corrupt size would, for files of about 200 KiB (case 0)."""
    path, base, _, forged = make_case(0, bases, str(tmp_path))
    real_open = semidbm.open

    def greedy_open(*args, **kwargs):
        ballast = bytearray(64 << 20)
        del ballast
        return real_open(*args, **kwargs)
    monkeypatch.setattr(semidbm, 'open', greedy_open)
    with pytest.raises(AssertionError, match='bytes for'):
        check_case(path, base, forged, writable=False)


# -- failures the fuzzer found, pinned ------------------------------------------------


@pytest.mark.parametrize('position', ['huge size', 'past the end'])
def test_a_snapshot_whose_value_runs_past_the_end_is_a_checksum_error(path, position):
    """Found by case 0: a snapshot (good checksum, this file) giving a value that runs
    past the end of the file made a verified read raise ``struct.error``."""
    with semidbm.open(path, 'c') as db:
        db.update({b'a': b'1', b'b': b'2'})
    data = helpers.data_bytes(path)
    index, _ = true_index(data)
    index[b'a'] = (index[b'a'] >> 32 << 32 | 0xFFFFFFFF if position == 'huge size'
                   else (len(data) - 1) << 32 | 3)
    snapshot.write(layout.Layout(path), index, data, len(data),
                   os.stat(helpers.data_path(path)).st_ino, 0o644)
    for flag in ('r', 'w'):
        with semidbm.open(path, flag, verify_checksums=True) as db:
            assert db[b'b'] == b'2'
            with pytest.raises(DBMChecksumError):
                db[b'a']


@pytest.mark.parametrize('key, value', [(b'abc', b'd'), (b'', b'four'), (b'four', b''),
                                        (b'four', None)])
def test_a_record_of_four_bytes_cut_after_its_head_is_no_record(path, key, value):
    """Found by case 6892 (a cut, then pad): the head of a record whose key and value
    are four bytes in all, followed by pad, read as key ``b'\\xff' * len(key)`` with
    a good checksum: crc32 of four 0xFF bytes is 0xFFFFFFFF, which is what the pad
    gives for the checksum.  A writer killed after copying that head (``pwrite``
    stops at page boundaries) made a key that was never written."""
    assert zlib.crc32(format.PAD_BYTE * 4) == 0xFFFFFFFF
    before = helpers.records((b'kept', b'1'))
    helpers.write_data(path, before + helpers.record(key, value)[:format.RECORD_HEAD.size]
                       + format.PAD_BYTE * 100)
    for flag in ('r', 'w', 'r'):
        assert helpers.contents(path, flag, verify_checksums=True) == {b'kept': b'1'}, flag
    assert helpers.data_bytes(path) == before


def test_a_snapshot_damaged_anywhere_is_ignored(path, monkeypatch):
    """Every stretch of the snapshot (head, key sizes, positions, keys, checksum),
    damaged or cut short, beside an intact data file: the open scans instead."""
    monkeypatch.setattr(snapshot, 'MIN_KEYS', 10)
    data = {b'key%d' % i: b'value %d' % i for i in range(50)}
    with semidbm.open(path, 'c') as db:
        db.update(data)
    index_path = pathlib.Path(path, layout.SNAPSHOT)
    good = index_path.read_bytes()
    keys_start = len(good) - snapshot.TRAILER.size - sum(map(len, data))
    damages = [('cut', at) for at in (0, 10, snapshot.HEAD.size - 1, len(good) - 1)]
    damages += [('flip', at) for at in range(0, snapshot.HEAD.size, 4)]
    damages += [('flip', at) for at in (snapshot.HEAD.size + 1, keys_start - 3,
                                        keys_start + 5, len(good) - 1)]
    for kind, at in damages:
        damaged = good[:at] if kind == 'cut' else (
            good[:at] + bytes([good[at] ^ 0x10]) + good[at + 1:])
        index_path.write_bytes(damaged)
        assert helpers.contents(path, verify_checksums=True) == data, (kind, at)
