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

import semidbm
from semidbm import format, layout, snapshot

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
    """Open the crash image as the promises say it must; count the outcome."""
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
    assert images >= 40 * IMAGES_PER_CAPTURE * 0.9
