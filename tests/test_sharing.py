"""Promises about sharing: readers in other processes (and threads) beside one writer
see its writes when they refresh, each view a state the database had, and never die
(docs/sharing.rst).

A writer process (tests/sharechild.py) runs a seeded history of puts, overwrites,
deletes, update() batches, a compaction every 250 operations and a close and reopen
now and then, and publishes the number of each operation once it returns; reader
processes started beside it loop: note the number S, refresh(), read every key, and
check the view is the state after some operation T >= S.  In some runs the writer is
killed.  ``SEMIDBM_LONG=1`` runs the long version.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

import helpers
import semidbm
import sharechild
import stats

LONG = os.environ.get('SEMIDBM_LONG') == '1'
RUNS = [(seed, seed % 3 == 2) for seed in range(12 if LONG else 3)]
OPS = 3000 if LONG else 800
READERS = 3 if LONG else 2
CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'sharechild.py')


def spawn(role, path, seed, counter):
    return subprocess.Popen([sys.executable, CHILD, role, path, str(seed), str(OPS), counter,
                             str(READERS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=helpers.child_env())


def view(db):
    return {key: db[key] for key in db.keys()}


@pytest.mark.parametrize('seed, killed', RUNS, ids=[f'{s}{"-killed" if k else ""}'
                                                     for s, k in RUNS])
def test_readers_beside_a_writer_see_only_states_it_had(tmp_path, seed, killed):
    path, counter = str(tmp_path / 'db'), str(tmp_path / 'counter')
    with open(counter, 'wb') as f:
        f.write(sharechild.COUNTER.pack(0))
    open(sharechild.ready(counter), 'wb').close()
    writer = spawn('writer', path, seed, counter)
    deadline = time.monotonic() + 60
    # The writer has the database open (it then waits for the readers to open).
    while (not os.path.exists(os.path.join(path, 'synced')) and writer.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.005)
    readers = [spawn('reader', path, seed, counter) for _ in range(READERS)]
    if killed:
        time.sleep(random.Random(seed).uniform(0.2, 1.0))
        writer.send_signal(signal.SIGKILL)
    out, err = writer.communicate(timeout=300)
    if killed:
        with open(counter, 'r+b') as f:
            f.write(sharechild.COUNTER.pack(sharechild.KILLED))
    else:
        assert writer.returncode == 0, err
    views = 0
    for reader in readers:
        out, err = reader.communicate(timeout=300)
        assert reader.returncode == 0, (out, err)  # no signal, no wrong view
        views += int(out.split()[-1])
    stats.record(__name__, {'views': views, 'killed': killed})
    assert views >= READERS * 20


def test_a_reader_opens_and_refreshes_beside_a_writer(path):
    with semidbm.open(path, 'c') as writer:
        writer[b'a'] = b'1'
        with semidbm.open(path, 'r') as reader:
            writer[b'b'] = b'2'
            del writer[b'a']
            assert view(reader) == {b'a': b'1'}  # until it refreshes
            reader.refresh()
            assert view(reader) == {b'b': b'2'}
            writer.compact()
            writer[b'c'] = b'3'
            reader.refresh()  # a new file
            assert view(reader) == {b'b': b'2', b'c': b'3'}
            assert reader.stats()['writers'] == [os.getpid()]


def test_two_writers_still_exclude_each_other(path):
    with semidbm.open(path, 'c'):
        with pytest.raises(semidbm.error, match=r'locked by pid \d+ \(this process\), '
                                                r'which has it open for writing'):
            semidbm.open(path, 'w')


def test_refresh_is_harmless_on_a_writable_database(path):
    with semidbm.open(path, 'c') as db:
        db[b'a'] = b'1'
        db.refresh()
        assert db[b'a'] == b'1'


def test_a_reader_refreshed_from_one_thread_while_others_read(path):
    """Every read in the reading threads returns a value the key had."""
    values = {b'k%d' % n: [b'k%d-0' % n] for n in range(20)}
    writer = semidbm.open(path, 'c')
    writer.update((key, versions[0]) for key, versions in values.items())
    reader = semidbm.open(path, 'r')
    stop, wrong = threading.Event(), []

    def read():
        while not stop.is_set():
            for key, versions in values.items():
                if reader[key] not in versions:
                    wrong.append(key)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for round_ in range(1, 200):
        for key, versions in values.items():
            versions.append(b'%s-%d' % (key, round_) * (round_ % 7 + 1))
            writer[key] = versions[-1]
        if round_ % 50 == 0:
            writer.compact()
        reader.refresh()
    stop.set()
    for thread in threads:
        thread.join()
    assert not wrong
    assert view(reader) == {key: versions[-1] for key, versions in values.items()}
    reader.close()
    writer.close()


def test_a_refresh_with_nothing_new_reads_one_block_of_the_pad(path, monkeypatch):
    """Not the writer's whole preallocated tail (up to 16 MiB) at every refresh."""
    from semidbm import catchup
    with semidbm.open(path, 'c') as writer:
        writer.update((b'%06d' % n, b'v' * 100) for n in range(50_000))
        reader = semidbm.open(path, 'r')
        read = []
        real = os.pread
        monkeypatch.setattr(catchup.os, 'pread',
                            lambda fd, n, at: read.append(n) or real(fd, n, at))
        reader.refresh()
        monkeypatch.undo()
        assert sum(read) <= catchup.CHUNK
        writer[b'more'] = b'v' * (3 * catchup.CHUNK)  # a record longer than a block
        reader.refresh()
        assert reader[b'more'] == b'v' * (3 * catchup.CHUNK)
        reader.close()


def test_a_reader_that_opens_as_the_writer_cuts_its_pad_opens(path, monkeypatch):
    """The writer's close cuts the file between the reader's fstat and its map."""
    from semidbm import opening
    writer = semidbm.open(path, 'c')
    writer[b'k'] = b'v'
    real = os.fstat

    def fstat(fd):
        st = real(fd)
        if not writer.readonly and writer._file.__class__.__name__ == 'DataFile':
            writer.close()
        return st
    monkeypatch.setattr(opening.os, 'fstat', fstat)
    with semidbm.open(path, 'r') as reader:
        assert reader[b'k'] == b'v'
