"""Promises about process locks (semidbm/lock.py): one writer at a time, and readers beside it, across processes.

The other process is a real one: a child that opens the database, says ``ready`` and
holds it until told to close (or is killed).  The Windows code runs here against an
emulation of ``msvcrt.locking`` (the last section).
"""
import errno
import gc
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import helpers
import semidbm
import semidbm.repair
from semidbm import layout, lock

fcntl = pytest.importorskip('fcntl', reason='flock is POSIX')

HOLDER = textwrap.dedent('''
    import sys
    import semidbm
    db = semidbm.open(sys.argv[1], sys.argv[2])
    if sys.argv[2] != 'r':
        db[b'holder'] = b'was here'
    print('ready', flush=True)
    sys.stdin.readline()
    db.close()
''')


class Holder:
    """A child process holding the database *path* open with *flag*."""

    def __init__(self, path, flag, code=HOLDER, python_path=helpers.ROOT):
        env = dict(os.environ, PYTHONPATH=python_path)
        self.process = subprocess.Popen(
            [sys.executable, '-c', code, path, flag], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            cwd=os.path.dirname(path))  # not this checkout's directory: it is on sys.path
        line = self.process.stdout.readline()
        assert line == 'ready\n', line + self.process.stderr.read()
        self.pid = self.process.pid

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write('close\n')
            self.process.stdin.flush()
        assert self.process.wait(timeout=30) == 0, self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        self.process.stdin.close()

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()


@pytest.fixture
def holders():
    started = []

    def start(*args, **kwargs):
        holder = Holder(*args, **kwargs)
        started.append(holder)
        return holder

    yield start
    for holder in started:
        if holder.process.poll() is None:
            holder.kill()


@pytest.fixture
def existing(path):
    """A closed database holding ``a: 1``."""
    with semidbm.open(path, 'c') as db:
        db[b'a'] = b'1'
    return path


# -- two processes ---------------------------------------------------------------

@pytest.mark.parametrize('flag', ['w', 'c', 'n'])
def test_a_second_writer_is_refused_at_once_while_a_writer_holds_it(existing, holders, flag):
    holder = holders(existing, 'w')
    started = time.monotonic()
    with pytest.raises(semidbm.error) as info:
        semidbm.open(existing, flag)
    assert time.monotonic() - started < 1
    assert f'locked by pid {holder.pid}, which has it open for writing' in str(info.value)
    assert existing in str(info.value)
    holder.close()
    # And 'n' truncated nothing:
    assert helpers.contents(existing) == {b'a': b'1', b'holder': b'was here'}


def test_a_reader_opens_at_once_while_a_writer_holds_it(existing, holders):
    holder = holders(existing, 'w')
    started = time.monotonic()
    with semidbm.open(existing, 'r') as db:
        assert time.monotonic() - started < 1
        assert helpers.contents(existing) == {b'a': b'1', b'holder': b'was here'}
        assert db.stats()['writers'] == [holder.pid]
    holder.close()


def test_readers_let_a_writer_in_and_are_counted(existing, holders):
    first, second = holders(existing, 'r'), holders(existing, 'r')
    with semidbm.open(existing, 'w') as db:
        db[b'b'] = b'2'
        assert set(db.stats()['readers']) == {first.pid, second.pid}
    first.close()
    second.close()
    assert helpers.contents(existing) == {b'a': b'1', b'b': b'2'}


def test_the_lock_of_a_killed_writer_is_released_by_the_kernel(existing, holders):
    holder = holders(existing, 'w')
    holder.kill()
    with semidbm.open(existing, 'w') as db:
        assert db[b'holder'] == b'was here'


def test_lock_timeout_waits_then_raises_when_the_holder_stays(existing, holders):
    holders(existing, 'w')
    started = time.monotonic()
    with pytest.raises(semidbm.error) as info:
        semidbm.open(existing, 'w', lock_timeout=0.3)
    assert time.monotonic() - started >= 0.3
    assert '(waited 0.3 s)' in str(info.value)


def test_lock_timeout_gets_a_lock_released_while_waiting(existing):
    """The waiting open polls: a lock released during the wait is taken."""
    code = textwrap.dedent('''
        import sys, time
        import semidbm
        db = semidbm.open(sys.argv[1], 'w')
        print('ready', flush=True)
        time.sleep(0.4)
        db.close()
    ''')
    env = helpers.child_env()
    child = subprocess.Popen([sys.executable, '-c', code, existing], stdout=subprocess.PIPE,
                             text=True, env=env)
    assert child.stdout.readline() == 'ready\n'
    started = time.monotonic()
    with semidbm.open(existing, 'w', lock_timeout=30) as db:
        waited = time.monotonic() - started
        db[b'b'] = b'2'
    child.wait()
    child.stdout.close()
    assert 0.1 < waited < 10


def test_lock_false_lets_a_second_writer_in(existing, holders):
    holders(existing, 'w')
    with semidbm.open(existing, 'w', lock=False) as db:
        assert db[b'a'] == b'1'


def test_compaction_keeps_the_lock(existing, holders):
    """The lock is on the directory, so replacing the data file does not drop it."""
    code = HOLDER.replace("print('ready'", "db.compact(); print('ready'")
    holder = holders(existing, 'w', code=code)
    with pytest.raises(semidbm.error, match=f'locked by pid {holder.pid}'):
        semidbm.open(existing, 'w')
    holder.close()


# -- one process -----------------------------------------------------------------

def test_two_writable_opens_in_one_process_exclude_each_other(existing):
    with semidbm.open(existing, 'w'):
        with pytest.raises(semidbm.error) as info:
            semidbm.open(existing, 'w')
        assert f'pid {os.getpid()} (this process)' in str(info.value)
    with semidbm.open(existing, 'w') as db:  # closing released it
        db[b'b'] = b'2'


def test_read_only_opens_and_a_writer_in_one_process_share(existing):
    with semidbm.open(existing, 'r') as first, semidbm.open(existing, 'r') as second:
        assert first[b'a'] == second[b'a'] == b'1'
        with semidbm.open(existing, 'c') as writer:
            writer[b'b'] = b'2'
        second.refresh()
        assert first.get(b'b') is None and second[b'b'] == b'2'


def test_a_failed_open_releases_the_lock(path):
    helpers.write_data(path, b'not a semidbm file')
    for _ in range(2):  # the second would be "locked" if the first had kept it
        with pytest.raises(semidbm.DBMLoadError):
            semidbm.open(path, 'w')


def test_locking_creates_no_file(existing):
    before = helpers.tree_state(existing)
    with semidbm.open(existing, 'r'):
        assert helpers.tree_state(existing) == before
    with semidbm.open(existing, 'w'):  # the sync mark, but no lock file
        assert sorted(os.listdir(existing)) == ['data', layout.SYNCED]


def test_a_lost_lock_is_released_when_the_object_is_collected(existing):
    db = semidbm.open(existing, 'w')
    del db
    if helpers.PYPY:  # no reference counting: collected at the collector's next run
        gc.collect()
    with semidbm.open(existing, 'w'):
        pass


# -- who holds it ------------------------------------------------------------------

def test_holders_are_read_from_proc_locks(tmp_path):
    st = os.stat(tmp_path)
    ident = f'{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}'
    table = tmp_path / 'locks'
    table.write_text(
        f'1: POSIX  ADVISORY  WRITE 11 {ident} 0 EOF\n'
        f'2: FLOCK  ADVISORY  WRITE 12 {ident} 0 EOF\n'
        f'3: FLOCK  ADVISORY  READ  13 {ident} 0 EOF\n'
        f'4: FLOCK  ADVISORY  READ  0 {ident} 0 EOF\n'
        f'5: FLOCK  ADVISORY  READ  14 {ident}9 0 EOF\n'
        f'6: -> FLOCK  ADVISORY  WRITE 15 {ident} 0 EOF\n')
    assert lock._flock_holders(st, str(table)) == (['12'], ['13'])
    assert lock._flock_holders(st, str(tmp_path / 'none')) == ([], [])


def test_without_proc_locks_the_message_names_no_pid(existing, monkeypatch):
    monkeypatch.setattr(lock, '_flock_holders', lambda st: ([], []))
    with semidbm.open(existing, 'w'):
        with pytest.raises(semidbm.error, match='the database is open in another '
                           r'process; close it there'):
            semidbm.open(existing, 'w')


def test_a_file_system_without_flock_says_to_pass_lock_false(existing, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(37, 'No locks available')
    monkeypatch.setattr(lock.fcntl, 'flock', no_locks)
    with pytest.raises(semidbm.error, match='pass lock=False'):
        semidbm.open(existing, 'w')
    with semidbm.open(existing, 'w', lock=False) as db:
        db[b'b'] = b'2'


# -- semidbm 0.5.1, which takes no lock ----------------------------------------------

def peer_path():
    for candidate in (os.environ.get('SEMIDBM_PEER_PATH'), '/tmp/peer/pkg'):
        if candidate and os.path.isfile(os.path.join(candidate, 'semidbm', 'db.py')):
            return candidate
    pytest.skip('semidbm 0.5.1 not found: set SEMIDBM_PEER_PATH to an unpacked copy')


PEER = textwrap.dedent('''
    import sys
    import semidbm
    assert semidbm.__file__.startswith(sys.argv[3]), semidbm.__file__
    try:
        db = semidbm.open(sys.argv[1], sys.argv[2])
    except Exception as exc:
        print(type(exc).__name__, flush=True)
        raise SystemExit
    if sys.argv[2] != 'r':
        db[b'holder'] = b'0.5.1'
        db[b'large'] = b'x' * 1000
    print('ready', flush=True)
    sys.stdin.readline()
    db.close()
''')


@pytest.mark.parametrize('flag', ['r', 'w'])
def test_0_5_1_cannot_open_a_database_we_have_open_for_writing(existing, flag):
    """Our writer keeps pad past the end of the file; 0.5.1 refuses such a file."""
    peer = peer_path()
    with semidbm.open(existing, 'w') as db:
        db[b'b'] = b'2'
        reply = subprocess.run(
            [sys.executable, '-c', PEER, existing, flag, peer], capture_output=True,
            text=True, env=dict(os.environ, PYTHONPATH=peer), input='', timeout=60,
            cwd=os.path.dirname(existing))
        assert reply.stdout == 'DBMLoadError\n', reply.stderr
    assert helpers.contents(existing) == {b'a': b'1', b'b': b'2'}


def test_we_read_what_0_5_1_wrote_before_we_opened(existing, holders):
    peer = peer_path()
    code = PEER.replace('sys.argv[3]', repr(peer))
    holder = holders(existing, 'w', code=code, python_path=peer)
    with semidbm.open(existing, 'r') as db:  # 0.5.1 takes no lock: we get in
        assert dict(db.items()) == {b'a': b'1', b'holder': b'0.5.1', b'large': b'x' * 1000}
    holder.close()


# -- Windows, with msvcrt.locking emulated -------------------------------------------

class FakeMsvcrt:
    """``msvcrt.locking`` on one byte, emulated with an exclusive flock of the file."""

    LK_UNLCK, LK_NBLCK = 0, 2
    refusal = errno.EACCES  # what Windows says when the byte is locked elsewhere

    @classmethod
    def locking(cls, fd, mode, nbytes):
        assert nbytes == 1 and os.lseek(fd, 0, os.SEEK_CUR) == lock._WINDOWS_LOCK_OFFSET
        if mode == cls.LK_UNLCK:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OSError(cls.refusal, os.strerror(cls.refusal)) from None


@pytest.fixture
def windows(monkeypatch):
    monkeypatch.setattr(lock, 'fcntl', None)
    monkeypatch.setattr(lock, 'msvcrt', FakeMsvcrt, raising=False)
    return FakeMsvcrt


def read_lock_file(path):
    with open(os.path.join(path, layout.LOCK), 'rb') as f:
        return f.read()


@pytest.mark.parametrize('refusal', [errno.EACCES, errno.EDEADLK])
def test_windows_a_writer_holds_a_lock_file_with_its_pid(existing, windows, refusal):
    windows.refusal = refusal
    with semidbm.open(existing, 'w') as db:
        assert read_lock_file(existing) == b'%d\n' % os.getpid()
        for flag in 'wc':
            with pytest.raises(semidbm.error, match=f'locked by pid {os.getpid()}, which'):
                semidbm.open(existing, flag)
        with semidbm.open(existing, 'r') as reader:  # a reader beside the writer
            assert reader[b'a'] == b'1'
        db[b'b'] = b'2'
    assert read_lock_file(existing) == b''  # no pid: nobody holds it
    with semidbm.open(existing, 'w'):
        pass


def test_windows_a_reader_holds_nothing(existing, windows):
    before = os.listdir(existing)
    with semidbm.open(existing, 'r') as reader:  # no lock file yet: none is made
        assert os.listdir(existing) == before
        with semidbm.open(existing, 'w') as writer:  # readers hold nothing on Windows
            writer[b'b'] = b'2'
        with semidbm.open(existing, 'r') as second:
            assert second[b'b'] == b'2'
        assert reader[b'a'] == b'1'


def test_windows_a_holder_without_a_pid(existing, windows):
    with semidbm.open(existing, 'w'):
        with open(os.path.join(existing, layout.LOCK), 'wb'):
            pass  # as if the writer had not written its pid yet
        with pytest.raises(semidbm.error, match='open for writing in another process'):
            semidbm.open(existing, 'w', lock_timeout=0.05)


def test_windows_acquire_in_a_missing_directory(tmp_path, windows):
    with pytest.raises(semidbm.error, match='no such database directory'):
        lock.acquire(layout.Layout(tmp_path / 'missing'), True)
    assert lock.acquire(layout.Layout(tmp_path / 'missing'), False) is None


# -- checks, readers and holders ----------------------------------------------------

def test_a_writer_is_refused_while_a_check_reads_the_file(existing):
    held = lock.acquire(layout.Layout(existing), False)  # what semidbm check holds
    try:
        with pytest.raises(semidbm.error, match=r'being checked by pid \d+ \(this process\)'):
            semidbm.open(existing, 'w')
        with semidbm.open(existing, 'r') as reader:  # a reader is not refused
            assert reader[b'a'] == b'1'
    finally:
        held.release()
        held.release()  # a second release does nothing
    with semidbm.open(existing, 'w'):
        pass


def test_a_check_is_refused_while_a_writer_writes_even_unnamed(existing, monkeypatch):
    monkeypatch.setattr(lock, '_flock_holders', lambda st: ([], []))
    with semidbm.open(existing, 'w'):
        with pytest.raises(semidbm.error, match='open for writing in another process'):
            semidbm.repair.check(existing)


def test_a_reader_where_flock_fails_is_only_not_counted(existing, monkeypatch):
    real = lock.fcntl.flock

    def no_shared_locks(fd, operation):
        if operation & lock.fcntl.LOCK_SH:
            raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
        return real(fd, operation)
    monkeypatch.setattr(lock.fcntl, 'flock', no_shared_locks)
    with semidbm.open(existing, 'r') as reader:
        assert reader[b'a'] == b'1'
        assert reader.stats()['readers'] == []


def test_windows_a_check_looks_for_a_writer_and_readers_are_not_counted(existing, windows):
    assert semidbm.repair.check(existing).ok  # no writer: the check runs
    with semidbm.open(existing, 'w') as writer:
        with pytest.raises(semidbm.error, match=f'locked by pid {os.getpid()}'):
            semidbm.repair.check(existing)
        assert writer.stats()['writers'] == writer.stats()['readers'] == []
