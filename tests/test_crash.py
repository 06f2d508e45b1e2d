"""Promises about process crashes: a writer killed with SIGKILL, at random moments and at
every step, loses nothing acknowledged.

A child process (``crashchild.py``) writes and reports each acknowledged operation;
the parent kills it, reopens the database read-only and read-write, and checks that
every acknowledged operation is there and nothing else is (the one in flight may be
either; of an ``update`` batch or a ``clear`` in flight, any first part).  Then the
same at each system call of a compaction and of the close that writes the index
snapshot, by a kill and by an injected ``OSError``.

``SEMIDBM_LONG=1`` runs the long version (see docs/reliability.rst).
"""
import errno
import functools
import json
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
import stats
from semidbm import layout, snapshot

import crashchild
from crashchild import AFTER_COMPACT, Steps, key, step_contents, value

LONG = os.environ.get('SEMIDBM_LONG') == '1'
CHILD = os.path.abspath(crashchild.__file__)
TRIALS = 300 if LONG else 24
STEP_SEEDS = range(8) if LONG else range(2)
BATCH_TRIALS = 150 if LONG else 12
#: A child that neither dies nor reports for this long is hung: a failure.
WATCHDOG_SECONDS = 60


record = functools.partial(stats.record, __name__)


# -- the model: what the acknowledged operations leave --------------------------------


def apply(model, op, prefix=None):
    """Return *model* after *op*; of a batch, only its first *prefix* records."""
    model = dict(model)
    kind = op['op']
    if kind == 'put':
        model[key(op['key'])] = value(op['tag'], op['size'])
    elif kind == 'delete':
        del model[key(op['key'])]
    elif kind == 'update':
        pairs = op['pairs'] if prefix is None else op['pairs'][:prefix]
        for i, (number, size) in enumerate(pairs):
            model[key(number)] = value(op['tag'] * 1000 + i, size)
    elif kind == 'clear':
        for number in (op['keys'] if prefix is None else op['keys'][:prefix]):
            del model[key(number)]
    return model


def outcomes(model, op):
    """Every state the database may be in with *op* in flight."""
    kind = op['op']
    if kind in ('update', 'clear'):
        # One copy of many records: a kill may leave any first part of them whole.
        length = len(op['pairs' if kind == 'update' else 'keys'])
        return [apply(model, op, prefix) for prefix in range(length + 1)]
    if kind in ('put', 'delete'):
        return [model, apply(model, op)]
    return [model]  # compact, sync, reopen: the contents stay


def parse(lines):
    """Return the model of the acknowledged operations and the one in flight (or None)."""
    model, in_flight = {}, None
    for line in lines:
        if line.startswith('B '):
            assert in_flight is None, 'two operations began without an ack between'
            in_flight = json.loads(line[2:])
        elif line == 'A':
            model = apply(model, in_flight)
            in_flight = None
        else:
            assert line == 'R', f'unexpected line from the child: {line!r}'
    return model, in_flight


def describe(state, model):
    """A short account of how *state* differs from *model*, for failure messages."""
    missing = sorted(set(model) - set(state))[:5]
    extra = sorted(set(state) - set(model))[:5]
    changed = sorted(k for k in set(state) & set(model) if state[k] != model[k])[:5]
    return f'missing {missing}, unexpected {extra}, other values for {changed}'


# -- killed at a random moment ----------------------------------------------------------


def run_and_kill(path, seed):
    """Start a writer on *path*, kill it at a random moment; return its report lines."""
    rng = random.Random(seed)
    target = rng.choice([0, rng.randrange(20), rng.randrange(400), rng.randrange(2000)])
    with open(path + '.stderr', 'wb') as stderr:
        child = subprocess.Popen([sys.executable, CHILD, path, str(seed), 'ops'],
                                 stdout=subprocess.PIPE, stderr=stderr,
                                 env=helpers.child_env())
    watchdog = threading.Timer(WATCHDOG_SECONDS, child.kill)
    watchdog.start()
    try:
        lines, acks = [], 0
        while acks < target or not lines:  # the first line, R: the database is made
            line = child.stdout.readline()
            if not line:
                break
            lines.append(line.decode('ascii').rstrip('\n'))
            acks += lines[-1] == 'A'
        time.sleep(rng.choice([0, rng.uniform(0, 0.002)]))
        child.send_signal(signal.SIGKILL)
        lines += child.stdout.read().decode('ascii').splitlines()
        child.wait()
    finally:
        watchdog.cancel()
        child.stdout.close()
    with open(path + '.stderr', 'rb') as stderr:
        assert child.returncode == -signal.SIGKILL, stderr.read().decode()
    return lines


@pytest.mark.parametrize('seed', range(TRIALS))
def test_a_writer_killed_at_a_random_moment_loses_nothing_acknowledged(path, seed):
    lines = run_and_kill(path, seed)
    model, in_flight = parse(lines)
    allowed = outcomes(model, in_flight) if in_flight else [model]
    state = helpers.contents(path, 'r', verify_checksums=True)
    assert state in allowed, describe(state, model)
    if in_flight is None:
        record('killed between operations')
    else:
        got = allowed.index(state)
        how = ('none of it' if got == 0 else 'all of it' if got == len(allowed) - 1
               else 'a first part of it')
        record(f'killed in {in_flight["op"]}, {how} there'
               if len(allowed) > 1 else f'killed in {in_flight["op"]}')
    # A writable open cuts the torn tail and the pad, removes a stale compaction file,
    # and must give the same; then a write after it is kept.
    assert helpers.contents(path, 'c', verify_checksums=True) == state
    assert not os.path.exists(os.path.join(path, 'data.compact'))
    with semidbm.open(path, 'w') as db:
        db[b'after the crash'] = b'kept'
    assert helpers.contents(path, 'r', verify_checksums=True) == {
        **state, b'after the crash': b'kept'}


# -- killed in the middle of copying a long batch -------------------------------------


def tag_of(stored):
    """The operation number a value made by ``crashchild.value`` was made with."""
    return int(stored[:8], 16)


@pytest.mark.parametrize('trial', range(BATCH_TRIALS))
def test_a_writer_killed_while_copying_a_long_batch(path, trial):
    """An ``update`` is one append of many records.  Killed while it is copied, the
    file must hold the batch's first records whole and no later ones: a copy that
    stores the first bytes last (glibc's memcpy does, for long copies) would leave
    whole records after a hole, which the loader rightly refuses as damage.

    The child's first batch is timed; the second is killed late in its run, where
    the copy is (the records were encoded and the file grown before it).
    """
    rng = random.Random(trial)
    child = subprocess.Popen([sys.executable, CHILD, path, str(trial), 'batch'],
                             stdout=subprocess.PIPE, env=helpers.child_env())
    watchdog = threading.Timer(WATCHDOG_SECONDS, child.kill)
    watchdog.start()
    try:
        assert child.stdout.read(len(b'R\nB 0\n')) == b'R\nB 0\n'
        started = time.perf_counter()
        assert child.stdout.readline() == b'A\n'
        duration = time.perf_counter() - started
        assert child.stdout.readline() == b'B 1\n'
        time.sleep(duration * rng.uniform(0.8, 1.0))
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        child.wait()
    finally:
        watchdog.cancel()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    # Batch 1, or a later one if the child ran faster than timed, is in flight.
    acked, in_flight = 0, 1
    for line in rest.decode('ascii').splitlines():
        if line == 'A':
            acked = in_flight
        else:
            in_flight = int(line.split()[1])
    for flag in ('r', 'w'):
        state = helpers.contents(path, flag, verify_checksums=True)
        tags = [tag_of(state[key(i)]) for i in range(crashchild.BATCH_RECORDS)]
        done = tags.count(in_flight)
        assert tags == [in_flight] * done + [acked] * (len(tags) - done), tags
    record(f'killed with {done} of {len(tags)} records of the batch there'
           if acked != in_flight else 'killed between batches')


# -- killed at every step of compaction and of the close that saves the snapshot -----


def run_steps(path, seed, kill_after):
    result = subprocess.run([sys.executable, CHILD, path, str(seed), 'step',
                             str(kill_after)], env=helpers.child_env(),
                            capture_output=True, timeout=WATCHDOG_SECONDS)
    return result


def step_names(tmp_path, seed):
    """Run the step child without a kill; return how many calls it had made when its
    put after the compaction returned, and the name of each call."""
    result = run_steps(str(tmp_path / 'all steps'), seed, 10 ** 9)
    assert result.returncode == 0, result.stderr.decode()
    count, *names = result.stdout.decode('ascii').split()
    return int(count), names


@pytest.mark.parametrize('seed', STEP_SEEDS)
def test_killed_after_each_call_of_compact_and_close(tmp_path, seed):
    put_done, names = step_names(tmp_path, seed)
    # The calls this test is about: without them it would prove nothing.
    assert {'os.write', 'os.fsync', 'os.replace', 'os.ftruncate'} <= set(names)
    assert names.count('os.replace') == 2  # compaction's, and the snapshot's
    expected = step_contents(seed)
    after = {**expected, AFTER_COMPACT[0]: AFTER_COMPACT[1]}
    for step, name in enumerate(names, 1):
        path = str(tmp_path / f'killed after {step}')
        result = run_steps(path, seed, step)
        assert result.returncode == -signal.SIGKILL, (step, result.stderr.decode())
        want = after if step > put_done else expected
        for flag in ('r', 'w', 'r'):
            state = helpers.contents(path, flag, verify_checksums=True)
            assert state == want, (step, name, flag, describe(state, want))
        assert sorted(os.listdir(path)) in (['data', layout.SYNCED],
                                           ['data', layout.SNAPSHOT, layout.SYNCED])


# -- an OSError at every step of compaction and close, in process ----------------------


class Injected(OSError):
    pass


#: The calls made to fail in process: all but ``os.close``, whose failure (EIO on
#: some network filesystems) still closes the descriptor and says nothing of the data.
FAILING_CALLS = [f'os.{name}' for name in crashchild.STEP_CALLS if name != 'close'] + [
    'open', 'file.write', 'file.close']


def fail_at(target):
    def hook(steps, name):
        if steps.count == target:
            raise Injected(errno.EIO, f'injected failure of {name}')
    return hook


def count_steps(tmp_path, monkeypatch):
    path = str(tmp_path / 'count')
    db = semidbm.open(path, 'c')
    crashchild.fill_for_steps(db, 0)
    steps = Steps(only=FAILING_CALLS)
    with monkeypatch.context() as patch:
        steps.install(patch)
        db.compact()
        db[AFTER_COMPACT[0]] = AFTER_COMPACT[1]
        db.close()
    return steps.names


def test_an_oserror_at_each_call_of_compact_and_close(tmp_path, monkeypatch):
    """Each call fails in turn: the failing operation raises ``semidbm.error`` (or, for
    the snapshot, an optimisation, nothing), nothing is lost or stale, and the db goes
    on working."""
    monkeypatch.setattr(snapshot, 'MIN_KEYS', crashchild.CHILD_SNAPSHOT_KEYS)
    names = count_steps(tmp_path, monkeypatch)
    expected = step_contents(0)
    after = {**expected, AFTER_COMPACT[0]: AFTER_COMPACT[1]}
    for step, name in enumerate(names, 1):
        path = str(tmp_path / f'failed at {step}')
        db = semidbm.open(path, 'c')
        crashchild.fill_for_steps(db, 0)
        steps = Steps(fail_at(step), before=True, only=FAILING_CALLS)
        with monkeypatch.context() as patch:
            steps.install(patch)
            try:
                db.compact()
            except semidbm.error as exc:
                assert isinstance(exc.__cause__, Injected), (step, name)
            assert {k: db[k] for k in db.keys()} == expected, (step, name)
            try:
                db[AFTER_COMPACT[0]] = AFTER_COMPACT[1]  # growing the file
            except semidbm.error as exc:
                assert isinstance(exc.__cause__, Injected), (step, name)
                assert {k: db[k] for k in db.keys()} == expected, (step, name)
                steps.armed = False
                db[AFTER_COMPACT[0]] = AFTER_COMPACT[1]  # works once the fault is gone
                steps.armed = True
            try:
                db.close()
            except semidbm.error as exc:
                assert isinstance(exc.__cause__, Injected), (step, name)
        db.close()
        assert steps.count >= step
        for flag in ('r', 'w', 'r'):
            state = helpers.contents(path, flag, verify_checksums=True)
            assert state == after, (step, name, flag, describe(state, after))
        with semidbm.open(path, 'w') as db:
            db.compact()
            db[b'then'] = b'again'
        assert helpers.contents(path, 'r', verify_checksums=True) == {
            **after, b'then': b'again'}
