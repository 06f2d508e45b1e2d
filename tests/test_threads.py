"""Promises about threads: one database object shared by many, checked against a model
at the end.

Writers each own a range of keys (so each keeps an exact model of its range) and
also overwrite a few shared keys; readers read every range and the shared keys while
a compactor compacts and syncs.  Every value says which key, writer and write it
belongs to and carries a digest of itself, so a read that returns half of one write
and half of another, or another key's bytes, is caught.  At the end the database
must equal the union of the models, before and after reopening.
"""
import hashlib
import random
import threading

import pytest

import helpers
import semidbm

WRITERS = 6
READERS = 3
OPS_PER_WRITER = 1500
SHARED = [b'shared-%d' % n for n in range(8)]


def make_value(key, writer, seq, rng):
    """A value naming its key, writer and write, with a digest over all of it."""
    body = b'%s|%d|%d|' % (key, writer, seq) + bytes([seq % 251]) * rng.choice(
        [0, 10, 300, 5000, 70000])
    return body + hashlib.sha256(body).digest()


def check_value(key, value):
    """Raise AssertionError unless *value* is a whole value written for *key*."""
    body, digest = value[:-32], value[-32:]
    assert hashlib.sha256(body).digest() == digest, f'torn or mixed value for {key!r}'
    assert body.split(b'|', 1)[0] == key, f'{key!r} returned a value of another key'


class Run:
    """The shared state of one stress run: the db, the models and the failures."""

    def __init__(self, db):
        self.db = db
        self.models = [dict() for _ in range(WRITERS)]
        self.intended = {key: set() for key in SHARED}  # every value ever meant
        self.failures = []
        self.writers_done = threading.Event()

    def thread(self, target, *args):
        def run():
            try:
                target(*args)
            except BaseException as exc:  # reported by the main thread
                self.failures.append(exc)
        return threading.Thread(target=run)


def writer(run, number):
    rng = random.Random(number)
    db, model = run.db, run.models[number]
    for seq in range(OPS_PER_WRITER):
        key = b'w%d-%d' % (number, rng.randrange(60))
        op = rng.random()
        if op < 0.45:
            model[key] = db[key] = make_value(key, number, seq, rng)
        elif op < 0.6:
            if key in model:
                del db[key]
                del model[key]
            else:
                with pytest.raises(KeyError):
                    del db[key]
        elif op < 0.7:
            batch = {b'w%d-%d' % (number, rng.randrange(60)): None for _ in range(5)}
            batch = {k: make_value(k, number, seq, rng) for k in batch}
            db.update(batch)
            model.update(batch)
        elif op < 0.8:
            shared = rng.choice(SHARED)
            value = make_value(shared, number, seq, rng)
            run.intended[shared].add(value)
            db[shared] = value
        else:
            assert db.get(key) == model.get(key)
            assert (key in db) == (key in model)


def reader(run, number):
    rng = random.Random(1000 + number)
    db = run.db
    while not run.writers_done.is_set():
        if rng.random() < 0.5:
            key = rng.choice(SHARED)
            value = db[key]
            check_value(key, value)
            assert value in run.intended[key]
        else:
            key = b'w%d-%d' % (rng.randrange(WRITERS), rng.randrange(60))
            value = db.get(key)
            if value is not None:
                check_value(key, value)
        if rng.random() < 0.01:
            assert len(db.keys()) >= len(SHARED)


def compactor(run):
    rng = random.Random(-1)
    compactions = 0
    while not run.writers_done.is_set() or compactions < 3:
        if rng.random() < 0.8:
            run.db.compact()
            compactions += 1
        else:
            run.db.sync()
        run.writers_done.wait(0.005)


def expected(run):
    want = {}
    for model in run.models:
        want.update(model)
    return want


@pytest.mark.parametrize('verify_checksums', [False, True])
def test_many_threads_on_one_db_match_the_model(path, verify_checksums):
    db = semidbm.open(path, 'c', verify_checksums=verify_checksums)
    run = Run(db)
    rng = random.Random(0)
    for key in SHARED:
        value = make_value(key, -1, 0, rng)
        run.intended[key].add(value)
        db[key] = value
    writers = [run.thread(writer, run, n) for n in range(WRITERS)]
    others = [run.thread(reader, run, n) for n in range(READERS)] + [
        run.thread(compactor, run)]
    for thread in writers + others:
        thread.start()
    for thread in writers:
        thread.join()
    run.writers_done.set()
    for thread in others:
        thread.join()
    assert not run.failures, run.failures[:3]

    contents = {key: db[key] for key in db.keys()}
    shared = {key: contents.pop(key) for key in SHARED}
    assert contents == expected(run)
    for key, value in shared.items():
        assert value in run.intended[key]
    db.close()
    assert helpers.contents(path, verify_checksums=True) == {**contents, **shared}


def test_readers_during_close_get_values_or_the_closed_error(path):
    """A read racing close() returns the value or raises ``error``, nothing else."""
    db = semidbm.open(path, 'c')
    rng = random.Random(0)
    values = {b'k%d' % n: make_value(b'k%d' % n, 0, n, rng) for n in range(50)}
    db.update(values)
    failures, closed_seen = [], []
    started = threading.Barrier(READERS + 1)

    def read():
        started.wait()
        local = random.Random()
        while True:
            key = b'k%d' % local.randrange(50)
            try:
                value = db[key]
            except semidbm.error:
                closed_seen.append(True)
                return
            except BaseException as exc:
                failures.append(exc)
                return
            if value != values[key]:
                failures.append(AssertionError(f'wrong value for {key!r}'))
                return

    threads = [threading.Thread(target=read) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    started.wait()
    for n in range(200):  # appends that grow the map while the readers read
        db[b'filler%d' % n] = b'x' * 5000
    db.close()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert len(closed_seen) == READERS
