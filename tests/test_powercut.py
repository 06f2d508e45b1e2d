"""Promises about a power cut: the database reopens by itself, as a state it had, with
everything made durable; what recovery cuts is kept (docs/reliability.rst).

A simulated disk records, at each ``fsync`` semidbm makes, the bytes of the file (by
inode) and, for a directory, its names.  A crash image of the database is then built
as a disk may hold it after a power cut: each file its bytes of its last fsync, plus
any of the 4 KiB pages written since, each new, old (zeros past the synced size), or
torn at 512-byte sectors, at the synced or the current size; each name created,
replaced or removed since its directory's last fsync there or not.  The image is
opened 'r', then 'c', and checked against the workload's history: the state is that
after some operation at or after the last one made durable (``update()`` and
``clear()`` count as their pairs and keys, in order), every record past the cut is
kept in ``data.cut-*`` and warned of; then a write and a reopen.

``SEMIDBM_LONG=1`` runs the long version (>= 5,000 images); the default is a
fixed-seed sample of >= 300.
"""
import base64
import json
import os
import random
import shutil
import stat
import sys
import warnings

import pytest

import helpers
import semidbm
import stats
from semidbm import format, layout, repair, snapshot, syncmark

LONG = os.environ.get('SEMIDBM_LONG') == '1'
WORKLOADS = range(120) if LONG else range(8)
IMAGES_PER_CAPTURE = 3
PAGE, SECTOR = 4096, 512
FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')


class Disk:
    """What a power cut would leave: the durable bytes of each inode and the durable
    names of each directory, recorded at each fsync."""

    def __init__(self, root):
        self.files = {}      # inode -> bytes at its last fsync
        self.gone = {}       # inode -> bytes when its last name went (replace, remove)
        self.dirs = {}       # directory -> {name: inode} at its last fsync
        self.record_directory(root)

    def record_directory(self, path):
        path = os.path.realpath(path)
        self.dirs[path] = {name: os.lstat(os.path.join(path, name)).st_ino
                           for name in os.listdir(path)}

    def fsync(self, fd):
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            self.record_directory(os.readlink(f'/proc/self/fd/{fd}'))
        else:
            with open(f'/proc/self/fd/{fd}', 'rb') as f:
                self.files[st.st_ino] = f.read()

    def unlinking(self, path):
        """*path* loses its name: keep what its inode holds, for an image in which the
        name's change did not survive."""
        try:
            st = os.lstat(path)
            with open(path, 'rb') as f:
                self.gone[st.st_ino] = f.read()
        except (FileNotFoundError, IsADirectoryError):
            pass

    def created(self, fd):
        ino = os.fstat(fd).st_ino  # a new file (its inode may be an old one's, reused)
        self.files[ino] = b''
        self.gone.pop(ino, None)


class RecordingOs:
    """``os`` as semidbm sees it, telling the :class:`Disk` of fsyncs, names and new files."""

    def __init__(self, disk):
        self._disk = disk

    def __getattr__(self, name):
        return getattr(os, name)

    def fsync(self, fd):
        os.fsync(fd)
        self._disk.fsync(fd)

    fdatasync = fsync

    def open(self, path, flags, mode=0o777, **kwargs):
        existed = os.path.exists(path)
        fd = os.open(path, flags, mode, **kwargs)
        if flags & os.O_CREAT and not existed:
            self._disk.created(fd)
        return fd

    def replace(self, source, target):
        self._disk.unlinking(target)
        os.replace(source, target)

    def remove(self, path):
        self._disk.unlinking(path)
        os.remove(path)

    unlink = remove


@pytest.fixture
def disk(tmp_path, monkeypatch):
    root = tmp_path / 'live'
    root.mkdir()
    recorder = Disk(str(root))
    proxy = RecordingOs(recorder)
    for name, module in list(sys.modules.items()):
        if name.split('.')[0] == 'semidbm' and getattr(module, 'os', None) is os:
            monkeypatch.setattr(module, 'os', proxy)
    monkeypatch.setattr(snapshot, 'MIN_KEYS', 6)  # so that closes write snapshots
    return recorder


AFTER_A_REBOOT = b'another boot'.ljust(16, b'.')


@pytest.fixture
def reboot(monkeypatch):
    """Call it, and the opens after are in another boot of the machine than the
    writes before: as after a power cut (the sync mark names the boot that wrote it)."""
    return lambda: monkeypatch.setattr(syncmark, 'boot', lambda: AFTER_A_REBOOT)


# -- crash images ---------------------------------------------------------------------

def crash_bytes(durable, current, rng):
    """The bytes a file may hold after a power cut, given those of its last fsync and
    those it holds now."""
    size = rng.choice([len(durable), len(current)])
    pages = []
    for start in range(0, size, PAGE):
        length = min(PAGE, size - start)
        old = durable[start:start + length].ljust(length, b'\0')
        new = current[start:start + length].ljust(length, b'\0')
        roll = rng.random()
        if old == new or roll < 0.4:
            pages.append(new)
        elif roll < 0.8:
            pages.append(old)
        else:  # torn: each sector new or old
            pages.append(b''.join(rng.choice([old, new])[at:at + SECTOR]
                                  for at in range(0, length, SECTOR)))
    return b''.join(pages)


def surviving_names(disk, directory, rng):
    """{name: inode} of *directory* after a power cut; None if it is not there."""
    now = {name: os.lstat(os.path.join(directory, name)).st_ino
           for name in os.listdir(directory)} if os.path.isdir(directory) else {}
    durable = disk.dirs.get(os.path.realpath(directory), {})
    names = {}
    for name in set(now) | set(durable):
        ino = now.get(name) if now.get(name) == durable.get(name) else rng.choice(
            [now.get(name), durable.get(name)])
        if ino is not None:
            names[name] = ino
    return names


def build_image(disk, live_db, image_db, rng):
    """Write a crash image of the database *live_db* at *image_db*; return whether its
    directory survived."""
    root = os.path.dirname(live_db)
    top = surviving_names(disk, root, rng)
    if os.path.basename(live_db) not in top:
        return False
    os.makedirs(image_db)
    now = {os.lstat(os.path.join(live_db, name)).st_ino: name
           for name in os.listdir(live_db)} if os.path.isdir(live_db) else {}
    for name, ino in surviving_names(disk, live_db, rng).items():
        if name == layout.LOCK:
            continue
        if ino in now:
            with open(os.path.join(live_db, now[ino]), 'rb') as f:
                current = f.read()
        else:
            current = disk.gone.get(ino, disk.files.get(ino, b''))
        blob = crash_bytes(disk.files.get(ino, b''), current, rng)
        with open(os.path.join(image_db, name), 'wb') as f:
            f.write(blob)
    return True


# -- the workload and its history ---------------------------------------------------------

class History:
    """Every state the database was in, and the first that must survive a power cut."""

    def __init__(self, state):
        self.states = [dict(state)]
        self.durable = None  # the index in states of the last state made durable

    @property
    def state(self):
        return self.states[-1]

    def put(self, key, value):
        self.states.append({**self.state, key: value})

    def delete(self, key):
        state = dict(self.state)
        del state[key]
        self.states.append(state)

    def made_durable(self):
        self.durable = len(self.states) - 1


def value(rng):
    size = rng.choice([0, 1, 10, 100, 1000, 5000, 12000])
    return bytes(rng.getrandbits(8) for _ in range(min(size, 64))) * (size // 64 + 1)


class Workload:
    """A seeded random history of operations on a live database, with captures."""

    def __init__(self, disk, path, seed):
        self.disk, self.path, self.rng = disk, path, random.Random(seed)
        self.keys = [b'k%d' % n for n in range(12)] + [b'']
        start = self.rng.choice(['new', 'new', 'new', 'fixture'])
        if start == 'fixture':  # a file written by semidbm 0.5.1: no sync mark
            initial = copy_fixture(disk, path, self.rng)
            self.history = History(initial)
            self.history.made_durable()
        else:
            self.history = History({})
        self.db = semidbm.open(path, 'c')
        self.history.made_durable()

    def step(self):
        rng, history, db = self.rng, self.history, self.db
        if db is None:
            self.db = semidbm.open(self.path, rng.choice('wc'))
            return
        roll = rng.random()
        live = sorted(history.state)
        if roll < 0.45:
            key, val = rng.choice(self.keys), value(rng)
            db[key] = val
            history.put(key, val)
        elif roll < 0.6 and live:
            key = rng.choice(live)
            del db[key]
            history.delete(key)
        elif roll < 0.72:
            pairs = [(rng.choice(self.keys), value(rng)) for _ in range(rng.randrange(1, 8))]
            db.update(pairs)
            for key, val in pairs:
                history.put(key, val)
        elif roll < 0.75:
            order = db.keys()  # clear() writes a tombstone for each, in this order
            db.clear()
            for key in order:
                history.delete(key)
        elif roll < 0.85:
            db.sync()
            history.made_durable()
        elif roll < 0.92:
            db.compact()
            history.made_durable()
        else:
            db.close()
            self.db = None
            history.made_durable()


def copy_fixture(disk, path, rng):
    name = rng.choice(['puts', 'overwrites', 'deletes', 'str_keys', 'large_value'])
    with open(os.path.join(FIXTURES, name, 'expected.json')) as f:
        expected = json.load(f)
    os.makedirs(path)
    shutil.copyfile(os.path.join(FIXTURES, name, 'data'), os.path.join(path, 'data'))
    for fd_path in (os.path.join(path, 'data'), path, os.path.dirname(path)):
        fd = os.open(fd_path, os.O_RDONLY)
        os.fsync(fd)  # as 0.5.1 left it, closed: on disk
        disk.fsync(fd)
        os.close(fd)
    return {base64.b64decode(k): base64.b64decode(v)
            for k, v in expected['contents'].items()}


# -- the checks ------------------------------------------------------------------------

def read(path, flag):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with semidbm.open(path, flag) as db:
            state = {key: db[key] for key in db.keys()}
    return state, [w for w in caught if issubclass(w.category, semidbm.RecoveryWarning)]


def check_image(image_db, history, outcomes):
    """Open the crash image, after a reboot, as the promises say it must; count the
    outcome."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(syncmark, 'boot', lambda: AFTER_A_REBOOT)
        check_rebooted_image(image_db, history, outcomes)


def check_rebooted_image(image_db, history, outcomes):
    data = os.path.join(image_db, layout.DATA)
    with open(data, 'rb') as f:
        image = f.read()
    state, warned = read(image_db, 'r')
    later = history.states[history.durable:]
    assert state in later, 'not a state the database had after the last durable one'
    again, warned_again = read(image_db, 'c')
    assert again == state
    end = os.path.getsize(data)
    left = format.find_record(image, end + 1, len(image),
                              starts_before=format.content_end(image, end, len(image)))
    kept = layout.Layout(image_db).kept(layout.KEPT_CUT)
    if left == -1:
        assert not warned and not warned_again and not kept
    else:
        assert warned and warned_again and len(kept) == 1, (end, left)
        with open(kept[0], 'rb') as f:
            blob = f.read()
        assert blob[:format.HEADER.size] == format.HEADER_BYTES
        assert image[end:].startswith(blob[format.HEADER.size:])
        outcomes['kept'] += 1
    with semidbm.open(image_db, 'c') as db:
        db[b'after the crash'] = b'written'
    assert read(image_db, 'r')[0] == {**state, b'after the crash': b'written'}
    outcomes['latest' if state == history.state else 'earlier'] += 1


@pytest.mark.parametrize('seed', WORKLOADS)
def test_a_power_cut_at_any_moment(tmp_path, disk, seed):
    live = os.path.join(str(tmp_path / 'live'), 'db')
    workload = Workload(disk, live, seed)
    rng = random.Random(seed)
    outcomes = {'latest': 0, 'earlier': 0, 'kept': 0}
    images = 0
    for op in range(40):
        workload.step()
        for n in range(IMAGES_PER_CAPTURE):
            image = str(tmp_path / f'image-{op}-{n}' / 'db')
            if not build_image(disk, live, image, rng):
                assert workload.history.durable is None, 'a durable database vanished'
                continue
            check_image(image, workload.history, outcomes)
            images += 1
    if workload.db is not None:
        workload.db.close()
    stats.record(__name__, {'images': images, **outcomes})
    assert images >= 40 * IMAGES_PER_CAPTURE * 0.9


# -- each promise on its own -------------------------------------------------------------

DURABLE = {b'a': b'1', b'gone': b'value that is deleted', b'b': b'2' * 100}


def durable_then(path, unsynced=()):
    """A database of :data:`DURABLE` (synced), then the puts *unsynced* (not synced),
    left as a killed writer leaves it: the data file's bytes as they are."""
    db = semidbm.open(path, 'c')
    db.update(DURABLE)
    db.sync()
    db.update(unsynced)
    data = helpers.data_bytes(path)
    snapshot_of = {name: open(os.path.join(path, name), 'rb').read()
                   for name in os.listdir(path) if name != layout.LOCK}
    db.close()
    for name, blob in snapshot_of.items():
        with open(os.path.join(path, name), 'wb') as f:
            f.write(blob)
    return data


def opened(path, flag):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        state = helpers.contents(path, flag)
    return state, [str(w.message) for w in caught
                   if issubclass(w.category, semidbm.RecoveryWarning)]


LATE = [(b'c', b'3' * 300), (b'd', b'4' * 300), (b'e', b'5' * 300)]


def test_a_killed_writer_loses_nothing_it_wrote(path):
    durable_then(path, LATE)
    assert opened(path, 'r') == ({**DURABLE, **dict(LATE)}, [])


def test_a_lost_record_after_the_sync_cuts_there_and_keeps_the_rest(path):
    data = bytearray(durable_then(path, LATE))
    first_late = helpers.record_offsets(bytes(data))[len(DURABLE)]
    data[first_late + 20] ^= 0xFF  # c's value, as a page lost in a power cut
    helpers.write_data(path, bytes(data))
    before = helpers.tree_state(path)
    state, warned = opened(path, 'r')
    assert state == DURABLE  # a state it had: not d and e without c
    assert len(warned) == 1 and f'from offset {first_late}' in warned[0]
    assert helpers.tree_state(path) == before  # a read-only open writes nothing
    with pytest.warns(semidbm.RecoveryWarning), semidbm.open(path, 'r') as db:
        assert db.stats()['unapplied'] > 0 and db.stats()['kept'] == []
    state, warned = opened(path, 'w')
    [kept] = layout.Layout(path).kept(layout.KEPT_CUT)
    assert state == DURABLE and kept in warned[0]
    with open(kept, 'rb') as f:
        assert f.read() == format.HEADER_BYTES + bytes(data[first_late:]).rstrip(
            format.PAD_BYTE)
    assert opened(path, 'r') == (DURABLE, [])  # cut once, kept once
    with semidbm.open(path, 'r') as db:
        assert db.stats()['kept'] == [kept]
    report, _ = repair.repair(path)
    assert report.applied == [(kept, 2)]  # d and e: c's record is the damage
    assert helpers.contents(path) == {**DURABLE, b'd': LATE[1][1], b'e': LATE[2][1]}
    assert os.path.exists(kept + layout.APPLIED) and not os.path.exists(kept)


@pytest.mark.parametrize('zeros', [PAGE, 3 * PAGE + SECTOR])
def test_blocks_of_zeros_after_the_sync_are_never_records(path, zeros, reboot):
    data = durable_then(path)
    reboot()
    helpers.write_data(path, data.rstrip(format.PAD_BYTE) + bytes(zeros))
    assert opened(path, 'c') == (DURABLE, [])
    assert layout.Layout(path).kept(layout.KEPT_CUT) == []
    assert helpers.data_bytes(path) == data.rstrip(format.PAD_BYTE)


def test_zeros_then_records_after_the_sync_keep_the_records(path, reboot):
    data = durable_then(path).rstrip(format.PAD_BYTE)
    reboot()
    late = helpers.records(*LATE, header=b'')
    helpers.write_data(path, data + bytes(PAGE) + late)
    state, warned = opened(path, 'w')
    assert state == DURABLE and warned
    [kept] = layout.Layout(path).kept(layout.KEPT_CUT)
    with open(kept, 'rb') as f:
        assert f.read() == format.HEADER_BYTES + bytes(PAGE) + late


def test_a_single_record_of_an_empty_key_and_value_is_a_record(path):
    """Twelve zero bytes, which a lost block also is: one, with the pad after it, is
    the empty key's value; a run of them is zeros."""
    durable_then(path, [(b'', b'')])
    assert opened(path, 'r') == ({**DURABLE, b'': b''}, [])


@pytest.mark.parametrize('where', ['start', 'middle'])
def test_damage_inside_the_durable_part_is_refused_never_cut(path, where):
    """Near the start the mark no longer matches (it checksums the first and last
    64 KiB), and the rules for a file without one refuse it; in the middle of a big
    file the mark matches, and the durable part must chain to its end."""
    with semidbm.open(path, 'c') as db:  # closed: all of it durable
        db.update((b'%d' % n, b'x' * 100) for n in range(3000))
    data = bytearray(helpers.data_bytes(path))
    offsets = helpers.record_offsets(bytes(data))
    second = offsets[1] if where == 'start' else offsets[1500]
    data[second:second + format.RECORD_HEAD.size] = format.RECORD_HEAD.pack(4, 2 ** 20)
    helpers.write_data(path, bytes(data))
    before = helpers.tree_state(path)
    for flag in 'rwc':
        with pytest.raises(semidbm.DBMLoadError) as info:
            semidbm.open(path, flag)
        assert f'offset {second}' in str(info.value)
        assert f'python -m semidbm repair {path}' in str(info.value)
        assert ('made durable' in str(info.value)) == (where == 'middle')
    assert helpers.tree_state(path) == before


def test_a_byte_lost_inside_the_second_to_last_record_never_brings_a_key_back(path):
    """The fuzz case: the last record, a delete, then starts inside the damaged
    record's claimed span; a writable open took the rest for a torn tail and the
    deleted key came back.  Every byte of that record, in turn."""
    with semidbm.open(path, 'c') as db:
        db.update(DURABLE)
        db[b'next'] = b'the second-to-last record'
        del db[b'gone']
    data = helpers.data_bytes(path)
    start, stop = helpers.record_offsets(data)[-2:]
    for at in range(start, stop):
        helpers.write_data(path, data[:at] + data[at + 1:])
        for flag in 'rw':
            try:
                state = helpers.contents(path, flag)
            except semidbm.DBMLoadError:
                continue
            assert b'gone' not in state, (at, flag)


def test_a_copy_of_the_directory_keeps_its_sync_mark(path, tmp_path):
    data = bytearray(durable_then(path, LATE))
    first_late = helpers.record_offsets(bytes(data))[len(DURABLE)]
    data[first_late + 20] ^= 0xFF
    helpers.write_data(path, bytes(data))
    copy = str(tmp_path / 'copy')
    shutil.copytree(path, copy)  # new inodes
    state, warned = opened(copy, 'r')
    assert state == DURABLE and warned  # recovered by the mark, not refused


def test_a_data_file_another_program_replaced_is_judged_without_the_mark(path):
    """semidbm 0.5.1's compaction writes a new file: the mark no longer matches it,
    and the rules for a file without one apply (a torn last record is cut; damage
    before valid records is refused)."""
    durable_then(path)
    compacted = helpers.records(*DURABLE.items())
    helpers.write_data(path, compacted + format.encode_put(b'torn', b'x' * 50)[:-9])
    assert opened(path, 'w') == (DURABLE, [])
    helpers.write_data(path, compacted[:-1] + helpers.records((b'z', b'9'), header=b''))
    with pytest.raises(semidbm.DBMLoadError, match='valid records follow'):
        semidbm.open(path, 'r')


def fsynced(monkeypatch):
    """The paths semidbm fsyncs, as a list that fills as it does."""
    synced = []
    proxy = RecordingOs(Disk(os.getcwd()))

    def fsync(fd):
        os.fsync(fd)
        synced.append(os.path.basename(os.readlink(f'/proc/self/fd/{fd}')))
    proxy.fsync = proxy.fdatasync = fsync
    for name, module in list(sys.modules.items()):
        if name.split('.')[0] == 'semidbm' and getattr(module, 'os', None) is os:
            monkeypatch.setattr(module, 'os', proxy)
    return synced


def test_what_each_call_makes_durable(tmp_path, monkeypatch):
    synced = fsynced(monkeypatch)
    path = str(tmp_path / 'new.db')
    db = semidbm.open(path, 'c')
    # The directory's name, the data, the mark, the directory's names.
    assert synced[0] == tmp_path.name and {'data', 'new.db'} <= set(synced)
    assert 'synced.tmp' in synced
    del synced[:]
    db[b'k'] = b'v'
    db.sync()
    assert synced == ['data', 'synced']
    db.sync()  # nothing new: no second wait for the disk
    assert synced == ['data', 'synced']
    del synced[:]
    db[b'k'] = b'v2'
    db.compact()
    # The old file and its mark; the copy, its mark before it takes the name, the name.
    assert synced == ['data', 'synced', 'data.compact', 'synced', 'new.db']
    del synced[:]
    db[b'k2'] = b'v'
    db.close()
    assert synced == ['data', 'synced']


def test_a_copy_torn_after_its_head_is_no_record_after_the_sync(path):
    """Four bytes of key and value that are all pad carry a good checksum."""
    data = durable_then(path).rstrip(format.PAD_BYTE)
    helpers.write_data(path, data + format.RECORD_HEAD.pack(2, 2) + format.PAD_BYTE * 500)
    assert opened(path, 'c') == (DURABLE, [])


def test_an_empty_record_before_the_pad_and_records_after_it_is_a_record(path, reboot):
    """Found by the long run: the put of an empty key and value, then the pad, then
    pages of writes made after it (the page between them lost)."""
    data = durable_then(path).rstrip(format.PAD_BYTE) + format.encode_put(b'', b'')
    reboot()
    late = helpers.records(*LATE, header=b'')
    helpers.write_data(path, data + format.PAD_BYTE * PAGE + late)
    state, warned = opened(path, 'r')
    assert state == {**DURABLE, b'': b''} and warned  # the late records: kept aside


@pytest.mark.parametrize('boot', ['same boot', 'rebooted'])
def test_an_empty_record_before_a_copy_a_kill_cut_short_is_a_record(path, request, boot):
    """A killed writer: its last put (an empty key and value) whole, the next one
    torn in its copy, then the pad."""
    data = durable_then(path, [(b'', b'')])
    if boot == 'rebooted':
        request.getfixturevalue('reboot')()
    end = data.index(format.PAD_BYTE * 64)
    torn = format.encode_put(b'next', b'x' * 100)[:60]
    helpers.write_data(path, data[:end] + torn + data[end + len(torn):])
    assert opened(path, 'w') == ({**DURABLE, b'': b''}, [])


def test_zeros_from_the_synced_end_to_a_sector_are_never_records(path, reboot):
    """Past the synced size a power cut leaves zeros, from that size on, then
    whatever the next sector holds."""
    data = durable_then(path).rstrip(format.PAD_BYTE)
    reboot()
    boundary = (len(data) // 512 + 1) * 512
    helpers.write_data(path, data + bytes(boundary - len(data)) + b'\x07' * 40
                       + format.PAD_BYTE * 100)
    assert opened(path, 'c') == (DURABLE, [])


def test_a_killed_writers_run_of_empty_records_is_kept_until_a_reboot(path, request):
    """Found by test_model: two puts of an empty key and value, then a kill.  In the
    same boot no block can have been lost: they are records.  After a reboot they are
    what a block of zeros also is, and set aside (docs/reliability.rst, known limits)."""
    durable_then(path, [(b'', b''), (b'', b'')])
    assert opened(path, 'r') == ({**DURABLE, b'': b''}, [])
    request.getfixturevalue('reboot')()
    assert opened(path, 'r') == (DURABLE, [])


def test_zeros_then_a_few_bytes_at_the_end_are_no_record(path, reboot):
    """Twelve zero bytes, then fewer than a record head of other bytes, then the end
    of the file: a block of zeros cut short, not a put of an empty key."""
    data = durable_then(path).rstrip(format.PAD_BYTE)
    reboot()
    helpers.write_data(path, data + bytes(12) + b'\x01\x02\x03')
    assert opened(path, 'r') == (DURABLE, [])


# -- found in review -----------------------------------------------------------------------

def slots_of(path):
    with open(os.path.join(path, layout.SYNCED), 'rb') as f:
        blob = f.read()
    return [(lambda slot: slot and slot[:2])(syncmark._unpack(blob[at:at + 512]))
            for at in (0, 512)]


def test_each_sync_writes_the_other_slot(path):
    """The creation's slot was overwritten by the first sync, leaving one good slot."""
    db = semidbm.open(path, 'c')
    assert slots_of(path) == [None, (1, format.HEADER.size)]
    db[b'k'] = b'v'
    db.sync()
    end = db.stats()['file_size']
    assert slots_of(path) == [(2, end), (1, format.HEADER.size)]
    db.close()


def test_after_a_reboot_a_reader_refreshes_by_the_same_rules_as_its_open(path, reboot):
    """Zeros past the durable end are no records for refresh() either, and the reader
    follows the writer that then recovers the file."""
    with semidbm.open(path, 'c') as db:
        db[b'a'] = b'1'
    reboot()
    with open(helpers.data_path(path), 'ab') as f:
        f.write(bytes(3 * PAGE))
    reader = semidbm.open(path, 'r', verify_checksums=True)
    reader.refresh()
    assert reader.keys() == [b'a']
    with semidbm.open(path, 'w') as writer:  # cuts the zeros, writes on
        writer[b'x'] = b'y' * 100
        reader.refresh()
        assert helpers.contents(path) == {b'a': b'1', b'x': b'y' * 100}
        assert {key: reader[key] for key in reader.keys()} == {b'a': b'1', b'x': b'y' * 100}
    reader.close()
