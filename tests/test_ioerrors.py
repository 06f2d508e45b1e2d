"""Promises about failed I/O: a full disk, EIO, short writes, failing fsync, msync and
mmap each raise a clear error and lose nothing.

The data file grows ahead of its records by ``os.pwrite`` of pad blocks (see
``semidbm/datafile.py``), so a full disk shows there, as an ``OSError``, never as a
``SIGBUS`` in a copy.  Each test makes a call fail and checks: the operation raises
``semidbm.error`` naming the file, what was written before is all there, the failed
write left nothing (the closed file is exactly the acknowledged records), and the next
write succeeds once the fault is gone.  Failures are injected by replacing ``os`` (and
``mmap``) as the semidbm modules see them, and, where the kernel lets us mount one, by
a real 1 MiB tmpfs.
"""
import errno
import mmap
import os
import subprocess
import sys
import threading
import types

import pytest

import helpers
import semidbm
import semidbm.repair
from semidbm import datafile, layout, opening, snapshot

BIG = b'x' * (3 * datafile.MIN_GROWTH)  # more than the pad left: the file must grow


class FaultyOs:
    """``os`` as semidbm sees it, with some calls replaced (``faults[name]``)."""

    def __init__(self):
        self.faults = {}

    def __getattr__(self, name):
        return self.faults.get(name) or getattr(os, name)


@pytest.fixture
def faults(monkeypatch):
    """A dict: put ``name: function`` in it to replace ``os.name`` inside semidbm."""
    proxy = FaultyOs()
    for name, module in list(sys.modules.items()):
        if name.split('.')[0] == 'semidbm' and getattr(module, 'os', None) is os:
            monkeypatch.setattr(module, 'os', proxy)
    return proxy.faults


def raising(code):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


def short_then(code):
    """A pwrite that writes a third of what it is given once, then fails with *code*."""
    calls = []

    def pwrite(fd, data, offset):
        if calls:
            raise OSError(code, os.strerror(code))
        calls.append(offset)
        return os.pwrite(fd, data[:len(data) // 3], offset)
    return pwrite


def assert_clear_error(info, code, path):
    assert isinstance(info.value, semidbm.error)
    assert info.value.errno == code
    assert helpers.data_path(path) in str(info.value)


# -- the pad growth fails ------------------------------------------------------------


@pytest.mark.parametrize('fault', ['ENOSPC', 'EIO', 'short then ENOSPC', 'short then EIO'])
def test_a_failed_growth_raises_and_writes_nothing(path, faults, fault):
    code = getattr(errno, fault.split()[-1])
    db = semidbm.open(path, 'c')
    db[b'a'] = b'1'
    faults['pwrite'] = short_then(code) if fault.startswith('short') else raising(code)
    with pytest.raises(semidbm.error) as info:
        db[b'big'] = BIG
    assert_clear_error(info, code, path)
    with pytest.raises(semidbm.error):
        db.update({b'b': b'2', b'big': BIG})
    assert b'big' not in db and b'b' not in db
    assert db[b'a'] == b'1'
    db[b'small'] = b'fits in the pad there is'  # no growth needed: works on a full disk
    del faults['pwrite']  # room again
    db[b'big'] = BIG
    assert db[b'big'] == BIG
    db.close()
    assert helpers.data_bytes(path) == helpers.records(
        (b'a', b'1'), (b'small', b'fits in the pad there is'), (b'big', BIG))


def test_short_pwrites_that_make_progress_are_not_errors(path, faults):
    def short(fd, data, offset):
        return os.pwrite(fd, data[:max(1, len(data) // 7)], offset)
    faults['pwrite'] = short
    with semidbm.open(path, 'c') as db:
        for i in range(4):
            db[b'big%d' % i] = BIG
    assert helpers.data_bytes(path) == helpers.records(*[(b'big%d' % i, BIG) for i in range(4)])


@pytest.mark.parametrize('code', [errno.ENOSPC, errno.EIO])
def test_a_full_disk_does_not_stop_a_writable_open(path, faults, code):
    with semidbm.open(path, 'c') as db:
        db[b'a'] = b'1'
    faults['pwrite'] = raising(code)
    db = semidbm.open(path, 'w')
    assert db[b'a'] == b'1'
    with pytest.raises(semidbm.error) as info:
        db[b'b'] = b'2'
    assert_clear_error(info, code, path)
    del faults['pwrite']
    db[b'b'] = b'2'
    db.close()
    assert helpers.data_bytes(path) == helpers.records((b'a', b'1'), (b'b', b'2'))


def test_a_new_database_on_a_full_disk(path, faults):
    faults['write'] = raising(errno.ENOSPC)
    with pytest.raises(semidbm.error) as info:
        semidbm.open(path, 'c')
    assert_clear_error(info, errno.ENOSPC, path)
    del faults['write']
    with semidbm.open(path, 'c') as db:  # the empty file left is taken up again
        db[b'a'] = b'1'
    assert helpers.data_bytes(path) == helpers.records((b'a', b'1'))


def test_compaction_on_a_full_disk_changes_nothing(path, faults):
    with semidbm.open(path, 'c') as db:
        for i in range(50):
            db[b'k%d' % i] = b'%d' % i
            db[b'k%d' % i] = b'again %d' % i
    before = helpers.data_bytes(path)
    db = semidbm.open(path, 'w')
    faults['write'] = raising(errno.ENOSPC)
    with pytest.raises(semidbm.error) as info:
        db.compact()
    assert info.value.errno == errno.ENOSPC
    assert sorted(os.listdir(path)) == ['data', layout.SYNCED]
    del faults['write']
    assert db[b'k7'] == b'again 7'
    db[b'new'] = b'value'
    db.close()
    assert helpers.data_bytes(path) == before + helpers.record(b'new', b'value')


def long_run_db(path):
    """A database whose live records lie in one run longer than a write chunk, which
    compaction hands to ``copy_file_range``; return its contents."""
    data = {b'k%04d' % i: b'%04d' % i * 256 for i in range(1500)}
    with semidbm.open(path, 'c') as db:
        db.update(data)
        db[b'dead'] = b'overwritten'
        del db[b'dead']
    return data


@pytest.mark.parametrize('fault', ['EXDEV', 'ENOSYS', 'EOPNOTSUPP', 'copies nothing'])
def test_compaction_without_copy_file_range_writes_the_copy_itself(path, faults, fault):
    data = long_run_db(path)
    calls = []

    def copy_file_range(*args):
        calls.append(args)
        if fault == 'copies nothing':
            return 0
        raise raising(getattr(errno, fault))()
    faults['copy_file_range'] = copy_file_range
    with semidbm.open(path, 'w') as db:
        db.compact()
    assert calls
    assert helpers.data_bytes(path) == helpers.records(*data.items())


def test_compaction_on_a_disk_full_for_copy_file_range_too(path, faults):
    data = long_run_db(path)
    before = helpers.data_bytes(path)
    faults['copy_file_range'] = faults['write'] = raising(errno.ENOSPC)
    with semidbm.open(path, 'w') as db:
        with pytest.raises(semidbm.error) as info:
            db.compact()
        assert info.value.errno == errno.ENOSPC
        assert sorted(os.listdir(path)) == ['data', layout.SYNCED]
        assert {k: db[k] for k in db.keys()} == data
    assert helpers.data_bytes(path) == before


# -- fsync and msync fail ------------------------------------------------------------


# The call that makes the data file durable: fdatasync where there is one.
DATA_SYNC = 'fdatasync' if hasattr(os, 'fdatasync') else 'fsync'


def test_a_failed_fsync_in_sync_raises_and_sync_works_again(path, faults):
    db = semidbm.open(path, 'c')
    db[b'a'] = b'1'
    faults[DATA_SYNC] = raising(errno.EIO)
    with pytest.raises(semidbm.error) as info:
        db.sync()
    assert_clear_error(info, errno.EIO, path)
    del faults[DATA_SYNC]
    db[b'b'] = b'2'
    db.sync()
    db.close()
    assert helpers.contents(path, verify_checksums=True) == {b'a': b'1', b'b': b'2'}


class FlushFails(mmap.mmap):
    def flush(self, *args):
        raise OSError(errno.EIO, os.strerror(errno.EIO))


def mmap_module(factory):
    return types.SimpleNamespace(mmap=factory, ACCESS_READ=mmap.ACCESS_READ,
                                 ACCESS_WRITE=mmap.ACCESS_WRITE,
                                 ALLOCATIONGRANULARITY=mmap.ALLOCATIONGRANULARITY)


class FlushRecorded(mmap.mmap):
    flushed = []

    def flush(self, *args):
        self.flushed.append(args)
        return super().flush(*args)


def test_sync_msyncs_the_pages_written_since_the_last_sync_not_the_whole_map(
        path, monkeypatch):
    monkeypatch.setattr(datafile, 'mmap', mmap_module(FlushRecorded))
    page = mmap.ALLOCATIONGRANULARITY
    with semidbm.open(path, 'c') as db:
        db.update((b'%d' % n, b'x' * 1000) for n in range(3 * page // 1000))
        db.sync()
        first_end = db._file.end
        db[b'last'] = b'y'
        del FlushRecorded.flushed[:]
        db.sync()
        (start, length), = FlushRecorded.flushed
        assert start % page == 0 and start <= first_end < start + page
        assert start + length == db._file.end < len(db._file.map)
    assert helpers.contents(path)[b'last'] == b'y'


def test_a_failed_msync_in_sync_raises(path, monkeypatch):
    monkeypatch.setattr(datafile, 'mmap', mmap_module(FlushFails))
    db = semidbm.open(path, 'c')
    db[b'a'] = b'1'
    with pytest.raises(semidbm.error) as info:
        db.sync()
    assert_clear_error(info, errno.EIO, path)
    with pytest.raises(semidbm.error) as info:  # close() syncs: it fails the same way
        db.close()
    assert_clear_error(info, errno.EIO, path)
    with pytest.raises(semidbm.error, match='closed'):  # but the db is closed
        db[b'b'] = b'2'
    monkeypatch.undo()
    assert helpers.contents(path, verify_checksums=True) == {b'a': b'1'}


def test_a_failed_fsync_in_compaction_changes_nothing(path, faults):
    with semidbm.open(path, 'c') as db:
        db.update({b'a': b'1', b'b': b'2'})
        db[b'a'] = b'3'
    db = semidbm.open(path, 'w')
    faults['fsync'] = raising(errno.EIO)
    with pytest.raises(semidbm.error) as info:
        db.compact()
    assert info.value.errno == errno.EIO
    assert sorted(os.listdir(path)) == ['data', layout.SYNCED]
    del faults['fsync']
    db.compact()
    db.close()
    # In the index's order:
    assert helpers.data_bytes(path) == helpers.records((b'a', b'3'), (b'b', b'2'))


# -- the map cannot be made ----------------------------------------------------------


def no_memory(*args, **kwargs):
    raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))


@pytest.mark.parametrize('flag', ['r', 'w', 'c'])
def test_an_open_whose_map_fails_raises_a_clear_error(path, monkeypatch, flag):
    with semidbm.open(path, 'c') as db:
        db[b'a'] = b'1'
    monkeypatch.setattr(datafile, 'mmap', mmap_module(no_memory))
    monkeypatch.setattr(opening, 'mmap', mmap_module(no_memory))
    with pytest.raises(semidbm.error) as info:
        semidbm.open(path, flag)
    assert_clear_error(info, errno.ENOMEM, path)
    monkeypatch.undo()
    assert helpers.contents(path, verify_checksums=True) == {b'a': b'1'}


def test_a_growth_whose_new_map_fails_raises_and_the_db_goes_on(path, monkeypatch):
    db = semidbm.open(path, 'c')
    db[b'a'] = b'1'
    monkeypatch.setattr(datafile, 'mmap', mmap_module(no_memory))
    with pytest.raises(semidbm.error) as info:
        db[b'big'] = BIG
    assert_clear_error(info, errno.ENOMEM, path)
    assert db[b'a'] == b'1'
    db[b'small'] = b'2'
    assert db[b'small'] == b'2'
    monkeypatch.undo()
    db[b'big'] = BIG
    db.close()
    assert helpers.data_bytes(path) == helpers.records((b'a', b'1'), (b'small', b'2'),
                                                       (b'big', BIG))


def test_a_snapshot_that_cannot_be_read_means_a_scan(path, monkeypatch):
    monkeypatch.setattr(snapshot, 'MIN_KEYS', 4)
    data = {b'k%d' % i: b'v%d' % i for i in range(10)}
    with semidbm.open(path, 'c') as db:
        db.update(data)
    assert os.path.exists(os.path.join(path, layout.SNAPSHOT))

    def unreadable(name, *args, **kwargs):
        if name.endswith(layout.SNAPSHOT):
            raise OSError(errno.EIO, os.strerror(errno.EIO), name)
        return open(name, *args, **kwargs)
    monkeypatch.setattr(snapshot, 'open', unreadable, raising=False)
    assert helpers.contents(path, verify_checksums=True) == data


def test_a_snapshot_that_cannot_be_written_is_left_out(path, monkeypatch, faults):
    monkeypatch.setattr(snapshot, 'MIN_KEYS', 4)
    data = {b'k%d' % i: b'v%d' % i for i in range(10)}

    class Full:
        def __init__(self, fd, mode, closefd):
            self.file = os.fdopen(fd, mode, closefd=closefd)

        def write(self, data):
            self.file.write(data[:3])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self.file.close()
    faults['fdopen'] = Full
    with semidbm.open(path, 'c') as db:
        db.update(data)
    assert sorted(os.listdir(path)) == ['data', layout.SYNCED]
    monkeypatch.undo()
    assert helpers.contents(path, verify_checksums=True) == data


# -- the close fails -----------------------------------------------------------------


def test_a_failed_truncate_at_close_raises_and_loses_nothing(path, faults):
    db = semidbm.open(path, 'c')
    db[b'a'] = b'1'
    faults['ftruncate'] = raising(errno.EIO)
    with pytest.raises(semidbm.error) as info:
        db.close()
    assert_clear_error(info, errno.EIO, path)
    del faults['ftruncate']
    db.close()  # closed all the same: a second close does nothing
    with pytest.raises(semidbm.error):
        db[b'b'] = b'2'
    # The pad left behind is ignored:
    assert helpers.contents(path, verify_checksums=True) == {b'a': b'1'}
    assert helpers.contents(path, 'w', verify_checksums=True) == {b'a': b'1'}
    assert helpers.data_bytes(path) == helpers.records((b'a', b'1'))


# -- readers during a growth ---------------------------------------------------------


def test_a_reader_in_another_thread_while_the_file_grows(path):
    db = semidbm.open(path, 'c')
    db[b'a'] = b'1'
    errors, done = [], threading.Event()

    def read():
        while not done.is_set():
            try:
                assert db[b'a'] == b'1'
            except Exception as exc:  # anything at all is the failure
                errors.append(exc)
                return
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(60):
            db[b'big%d' % i] = BIG
    finally:
        done.set()
        reader.join()
    db.close()
    assert errors == []


# -- a real full disk and a real read-only filesystem --------------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MiB tmpfs mounted at a new directory; skips where mounting is not allowed."""
    mount_point = tmp_path / 'tmpfs'
    mount_point.mkdir()
    try:
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(mount_point)],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f'cannot mount a tmpfs here: {exc}')
    try:
        yield mount_point
    finally:
        subprocess.run(['umount', '-l', str(mount_point)], check=True)


def test_a_real_full_disk(tmpfs):
    path = str(tmpfs / 'db')
    ballast = tmpfs / 'ballast'
    ballast.write_bytes(b'\0' * (512 << 10))
    db = semidbm.open(path, 'c')
    written = {}
    with pytest.raises(semidbm.error) as info:
        for i in range(10 ** 6):
            db[b'k%d' % i] = value = b'%d' % i * 300
            written[b'k%d' % i] = value
    assert_clear_error(info, errno.ENOSPC, path)
    assert len(written) > 100
    assert {k: db[k] for k in db.keys()} == written
    with pytest.raises(semidbm.error) as info:
        db.compact()  # no room for the copy
    assert info.value.errno == errno.ENOSPC
    assert {k: db[k] for k in db.keys()} == written
    ballast.unlink()
    db[b'after'] = written[b'after'] = b'room again'
    db.compact()
    db.close()
    assert helpers.contents(path, verify_checksums=True) == written
    assert sorted(os.listdir(path)) == ['data', layout.SYNCED]


def test_a_read_only_filesystem(tmpfs):
    path = str(tmpfs / 'db')
    with semidbm.open(path, 'c') as db:
        db[b'a'] = b'1'
    subprocess.run(['mount', '-o', 'remount,ro', str(tmpfs)], check=True)
    for flag in ('w', 'c', 'n'):
        with pytest.raises(semidbm.error) as info:
            semidbm.open(path, flag)
        assert info.value.errno == errno.EROFS, flag
    assert helpers.contents(path, verify_checksums=True) == {b'a': b'1'}


def test_a_delete_that_cannot_be_written_raises_and_keeps_the_key(path, monkeypatch):
    with semidbm.open(path, 'c') as db:
        db[b'a'] = b'1'
        assert db[b'a'] == b'1'  # cached: the failed delete must not leave it so

        def full(self, blob):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(datafile.DataFile, 'append', full)
        with pytest.raises(semidbm.error) as info:
            del db[b'a']
        assert_clear_error(info, errno.ENOSPC, path)
        assert db[b'a'] == b'1' and b'a' in db
        monkeypatch.undo()
        del db[b'a']
        assert b'a' not in db
    assert helpers.contents(path, verify_checksums=True) == {}


# -- permissions and reads that fail ------------------------------------------------------

def test_a_compaction_whose_copy_cannot_be_given_its_mode_changes_nothing(path, faults):
    with semidbm.open(path, 'c') as db:
        db[b'a'] = b'1'
        db[b'a'] = b'2'
    before = helpers.data_bytes(path)
    with semidbm.open(path, 'w') as db:
        faults['fchmod'] = raising(errno.EPERM)
        with pytest.raises(semidbm.error) as info:
            db.compact()
        assert info.value.errno == errno.EPERM
        del faults['fchmod']
        assert sorted(os.listdir(path)) == ['data', layout.SYNCED]  # no copy left
    assert helpers.data_bytes(path) == before


def test_a_check_of_a_data_file_that_cannot_be_read_says_so(path, faults):
    semidbm.open(path, 'c').close()
    data = helpers.data_path(path)

    def refuse_data(name, flags, *args):
        if name == data:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), name)
        return os.open(name, flags, *args)
    faults['open'] = refuse_data
    with pytest.raises(semidbm.error, match='cannot read the data file') as info:
        semidbm.repair.check(path)
    assert info.value.errno == errno.EACCES


def test_an_open_whose_sync_mark_cannot_be_written_leaves_nothing_open(path, monkeypatch):
    from semidbm import syncmark
    with semidbm.open(path, 'c') as db:
        db[b'k'] = b'v'
    with open(os.path.join(path, layout.SYNCED), 'r+b') as f:
        f.write(bytes(1024))  # no slot matches: the open must write one
    monkeypatch.setattr(syncmark.SyncMark, 'record', raising(errno.EIO))
    before = set(os.listdir('/proc/self/fd'))
    for _ in range(3):
        with pytest.raises(semidbm.error):
            semidbm.open(path, 'w')
    assert set(os.listdir('/proc/self/fd')) <= before
