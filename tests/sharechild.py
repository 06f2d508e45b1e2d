"""The processes of tests/test_sharing.py: a writer that runs a seeded history, and
readers beside it that check every view they refresh to.

``python sharechild.py writer PATH SEED OPS COUNTER READERS`` waits for READERS readers
to open, runs the history on PATH and, once each operation has returned, writes its
number to COUNTER (8 bytes, pwrite).
``python sharechild.py reader PATH SEED OPS COUNTER READERS`` loops until the writer is
done:
note the published number S, ``refresh()``, read every key, and check the view is
the state after some operation T >= S; it prints ``views N`` and exits 0, or exits 1
naming the first wrong view.  Both derive the same history from SEED.
"""
import os
import random
import struct
import sys
import time

import semidbm

COUNTER = struct.Struct('<q')
#: Published instead of a number: the writer closed the database after its last
#: operation; the parent killed the writer (the view must then be at or after the
#: last number the reader saw).
DONE, KILLED = -1, -2
KEYS = [b'k%02d' % n for n in range(40)]


def history(seed, ops):
    """The operations of the seeded history, each a list of steps (``(key, value)``,
    value None for a delete) or a word: 'compact', 'reopen'."""
    rng = random.Random(seed)
    present, result = set(), []
    for number in range(ops):
        roll = rng.random()
        if number % 250 == 249:
            result.append('compact')
        elif roll < 0.02:
            result.append('reopen')
        elif roll < 0.6 or not present:
            key = rng.choice(KEYS)
            result.append([(key, b'%d:' % number + bytes(rng.randrange(0, 3000)))])
        elif roll < 0.85:
            key = rng.choice(sorted(present))
            result.append([(key, None)])
        else:
            result.append([(rng.choice(KEYS), b'%d.%d' % (number, n)) for n in range(5)])
        for step in result[-1] if isinstance(result[-1], list) else ():
            (present.add if step[1] is not None else present.discard)(step[0])
    return result


def states(operations):
    """``(first, states)``: the states after each step, and for each operation the
    index in them of the state after it."""
    state, after, first = {}, [{}], []
    for operation in operations:
        for key, value in operation if isinstance(operation, list) else ():
            state = dict(state)
            if value is None:
                del state[key]
            else:
                state[key] = value
            after.append(state)
        first.append(len(after) - 1)
    return first, after


def publish(fd, number):
    os.pwrite(fd, COUNTER.pack(number), 0)


def ready(counter):
    """The file where each reader, once open, adds a byte."""
    return counter + '.ready'


def writer(path, seed, ops, counter, readers):
    fd = os.open(counter, os.O_RDWR)
    db = semidbm.open(path, 'c')
    publish(fd, 0)
    deadline = time.monotonic() + 60  # the readers open beside it before it writes
    while os.path.getsize(ready(counter)) < readers and time.monotonic() < deadline:
        time.sleep(0.005)
    for number, operation in enumerate(history(seed, ops), 1):
        if operation == 'compact':
            db.compact()
        elif operation == 'reopen':
            db.close()
            db = semidbm.open(path, 'w')
        elif len(operation) > 1:
            db.update(operation)
        elif operation[0][1] is None:
            del db[operation[0][0]]
        else:
            db[operation[0][0]] = operation[0][1]
        publish(fd, number)
        if number % 4 == 0:
            time.sleep(0.001)  # let the readers see many states, not just the last
    db.close()
    publish(fd, DONE)


def reader(path, seed, ops, counter, readers):
    first, after = states(history(seed, ops))
    fd = os.open(counter, os.O_RDONLY)
    db = semidbm.open(path, 'r')
    with open(ready(counter), 'ab') as f:
        f.write(b'.')
    views, seen = 0, 0
    while True:
        published, = COUNTER.unpack(os.pread(fd, COUNTER.size, 0))
        db.refresh()
        view = {key: db[key] for key in db.keys()}
        if published >= 0:
            seen = published
        low = first[-1] if published == DONE else first[seen - 1] if seen else 0
        if view not in after[low:]:
            print(f'view after op {seen} ({published}): {sorted(view)} is no state at '
                  f'or after it')
            return 1
        views += 1
        if published in (DONE, KILLED):
            break
        time.sleep(0.001)
    db.close()
    print(f'views {views}')
    return 0


if __name__ == '__main__':
    role, path, seed, ops, counter, readers = sys.argv[1:]
    sys.exit({'writer': writer, 'reader': reader}[role](path, int(seed), int(ops), counter,
                                                        int(readers)) or 0)
