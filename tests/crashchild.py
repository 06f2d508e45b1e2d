"""A writer to be killed: the child process of ``test_crash.py``, and its fault hooks.

Run as ``python crashchild.py PATH SEED ops`` it opens the database at PATH and does
random operations for ever (puts, overwrites, deletes, ``update`` batches, ``clear``,
``compact``, ``sync``, close and reopen), telling the parent about each one on stdout,
one line at a time, written unbuffered::

    B {"op": ...}     before the operation starts (it is now in flight)
    A                 after it returned (it is acknowledged)

so that when the parent kills it, every ``A`` is an acknowledged write and the last
``B`` without one is the write in flight.  Values are not sent: ``value(tag, size)``
makes them from the numbers in the line, on both sides.

Run as ``python crashchild.py PATH SEED step N`` it fills the database with
``step_contents(SEED)``, then compacts and closes it, killing itself with SIGKILL
just after the N-th system call those make (``Steps`` counts them); the parent tries
every N.  The same ``Steps`` hooks raise an ``OSError`` instead, in process, for the
failure-injection tests.

Run as ``python crashchild.py PATH SEED batch`` it updates the same keys for ever in
batches of long records (``B TAG`` before each, ``A`` after), for the parent to kill
in the middle of copying one.
"""
import builtins
import itertools
import json
import os
import random
import signal
import sys

import semidbm
from semidbm import snapshot

#: Calls of ``os`` that change something on disk or hand out a descriptor: a crash or
#: a failure can come after any of them.
STEP_CALLS = ('open', 'write', 'pwrite', 'fsync', 'replace', 'rename', 'remove', 'unlink',
              'ftruncate', 'close', 'makedirs')
#: The snapshot's threshold in children, so that small databases have snapshots too.
CHILD_SNAPSHOT_KEYS = 16


def value(tag, size):
    """The value written by operation number *tag*, *size* bytes long."""
    unit = b'%08x' % tag
    return (unit * (size // len(unit) + 1))[:size]


def key(number):
    return b'k%d' % number if number else b''  # the empty key is a key too


class Steps:
    """Counts the system calls semidbm makes; calls *hook* after (or instead of) one.

    Installed over the ``os`` (and, for the snapshot's file, ``open``) that each
    semidbm module sees, so that only semidbm's calls count.  ``hook(self, name)``
    runs before the call when *before* is true (to make it fail), after it otherwise.
    """

    def __init__(self, hook=None, before=False, only=None):
        self.hook = hook
        self.before = before
        self.only = only
        self.count = 0
        self.names = []
        self.armed = True

    def step(self, name, call, *args, **kwargs):
        if not self.armed or (self.only is not None and name not in self.only):
            return call(*args, **kwargs)
        self.count += 1
        self.names.append(name)
        if self.before and self.hook:
            self.hook(self, name)
        try:
            return call(*args, **kwargs)
        finally:  # after a call that raised too (a remove of a missing file, say)
            if not self.before and self.hook:
                self.hook(self, name)

    def os_proxy(self):
        steps = self

        class OsProxy:
            def __getattr__(self, name):
                real = getattr(os, name)
                if name not in STEP_CALLS:
                    return real
                return lambda *args, **kwargs: steps.step(f'os.{name}', real, *args,
                                                          **kwargs)
        return OsProxy()

    def open_proxy(self):
        steps = self

        class FileProxy:
            def __init__(self, file):
                self._file = file

            def write(self, data):
                return steps.step('file.write', self._file.write, data)

            def __enter__(self):
                return self

            def __exit__(self, *exc_info):
                steps.step('file.close', self._file.close)

        def open_(*args, **kwargs):
            return FileProxy(steps.step('open', builtins.open, *args, **kwargs))
        return open_

    def install(self, monkeypatch=None):
        """Put the proxies in every semidbm module (undone by *monkeypatch*, if given)."""
        def put(module, name, proxy):
            if monkeypatch is None:
                setattr(module, name, proxy)
            else:
                monkeypatch.setattr(module, name, proxy, raising=False)
        proxy = self.os_proxy()
        for name, module in list(sys.modules.items()):
            if name.split('.')[0] == 'semidbm' and getattr(module, 'os', None) is os:
                put(module, 'os', proxy)
        put(snapshot, 'open', self.open_proxy())


def step_contents(seed):
    """The data the ``step`` mode writes, as the dict it must read back."""
    expected = {}
    fill_for_steps(expected, seed)
    return expected


def fill_for_steps(db, seed):
    """Write the same keys and values for the same *seed*, with overwrites and deletes
    (*db* is a database or a dict)."""
    rng = random.Random(seed)
    for number in range(rng.randrange(CHILD_SNAPSHOT_KEYS + 10, 200)):
        db[key(rng.randrange(1, 300))] = value(number, rng.randrange(0, 300))
    for dead in rng.sample(sorted(db.keys()), 5):
        del db[dead]


class Writer:
    """The ``ops`` mode: random operations, each reported before and after."""

    def __init__(self, path, seed):
        self.path = path
        self.rng = random.Random(seed)
        # Each run leans one way, so that kills land in every kind of operation.
        self.weights = self.rng.choice([
            {'put': 50, 'delete': 15, 'update': 10, 'tiny': 2, 'big': 2, 'compact': 1,
             'reopen': 1, 'clear': 0.2, 'sync': 2},
            {'put': 10, 'delete': 5, 'update': 60, 'tiny': 20, 'big': 1, 'compact': 1,
             'reopen': 1, 'clear': 1, 'sync': 1},
            {'put': 30, 'delete': 10, 'update': 10, 'tiny': 2, 'big': 2, 'compact': 8,
             'reopen': 8, 'clear': 0.5, 'sync': 2},
            {'put': 20, 'delete': 5, 'update': 5, 'tiny': 2, 'big': 20, 'compact': 1,
             'reopen': 1, 'clear': 0.2, 'sync': 2},
        ])
        self.db = semidbm.open(path, 'c')
        self.tag = 0

    def report(self, line):
        os.write(1, line.encode('ascii') + b'\n')

    def choose(self):
        """The next operation as the JSON-able dict the parent gets."""
        rng = self.rng
        self.tag += 1
        kind = rng.choices(list(self.weights), list(self.weights.values()))[0]
        if kind == 'put':
            return {'op': 'put', 'key': rng.randrange(300), 'tag': self.tag,
                    'size': rng.choice([0, 1, rng.randrange(200), rng.randrange(3000)])}
        if kind == 'big':
            return {'op': 'put', 'key': rng.randrange(300), 'tag': self.tag,
                    'size': rng.randrange(20000, 300000)}
        if kind == 'delete':
            keys = self.db.keys()
            if not keys:
                return self.choose()
            return {'op': 'delete', 'key': int(rng.choice(keys)[1:] or 0)}
        if kind == 'update':
            count = rng.choice([1, 2, rng.randrange(50), rng.randrange(500)])
            return {'op': 'update', 'tag': self.tag,
                    'pairs': [[rng.randrange(300), rng.randrange(600)]
                              for _ in range(count)]}
        if kind == 'tiny':
            # Records of four bytes of key and value: cut after a head (a batch is
            # written with pwrite, which stops at page boundaries), the pad reads as
            # a key and value with a good checksum (see loading._pad_made).
            numbers = [rng.randrange(300) for _ in range(rng.randrange(200, 2000))]
            return {'op': 'update', 'tag': self.tag,
                    'pairs': [[number, 4 - len(key(number))] for number in numbers]}
        if kind == 'clear':
            return {'op': 'clear', 'keys': [int(k[1:] or 0) for k in self.db.keys()]}
        return {'op': kind}

    def apply(self, op):
        db = self.db
        kind = op['op']
        if kind == 'put':
            db[key(op['key'])] = value(op['tag'], op['size'])
        elif kind == 'delete':
            del db[key(op['key'])]
        elif kind == 'update':
            db.update([(key(number), value(op['tag'] * 1000 + i, size))
                       for i, (number, size) in enumerate(op['pairs'])])
        elif kind == 'clear':
            db.clear()
        elif kind == 'compact':
            db.compact()
        elif kind == 'sync':
            db.sync()
        elif kind == 'reopen':
            db.close()
            self.db = semidbm.open(self.path, 'w')

    def run(self):
        self.report('R')
        while True:
            op = self.choose()
            self.report('B ' + json.dumps(op, separators=(',', ':')))
            self.apply(op)
            self.report('A')


#: What ``step`` mode appends between the compaction and the close.
AFTER_COMPACT = (key(1), value(10 ** 6, 10))


def run_steps(path, seed, kill_after):
    """The ``step`` mode: fill, compact, put, close, dying after call *kill_after*.

    Left alive (*kill_after* past the last call), it prints the number of calls
    made by the time the put returned, then the name of each call.
    """
    db = semidbm.open(path, 'c')
    fill_for_steps(db, seed)

    def die(steps, name):
        if steps.count == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    steps = Steps(die)
    steps.install()
    db.compact()
    db[AFTER_COMPACT[0]] = AFTER_COMPACT[1]  # its calls (growing the file) come first
    put_done = steps.count
    db.close()
    steps.armed = False
    os.write(1, ('%d %s\n' % (put_done, ' '.join(steps.names))).encode('ascii'))


#: The ``batch`` mode's updates: few records, long ones (a size chosen by the seed:
#: how glibc's memcpy orders a copy depends on its length), so that much of the time
#: of an update goes to copying it into the file.
BATCH_RECORDS = 16
BATCH_VALUE_SIZES = [512 << 10, 2 << 20, 4 << 20]


def run_big_batches(path, seed):
    """The ``batch`` mode: the same keys updated for ever, in batches of long records,
    each reported (``B TAG``) before it starts and (``A``) after it returned."""
    db = semidbm.open(path, 'c')
    os.write(1, b'R\n')
    size = BATCH_VALUE_SIZES[seed % len(BATCH_VALUE_SIZES)]
    for tag in itertools.count():
        batch = value(tag, size)
        os.write(1, b'B %d\n' % tag)
        db.update((key(i), batch) for i in range(BATCH_RECORDS))
        os.write(1, b'A\n')


def main(argv):
    path, seed, mode = argv[1], int(argv[2]), argv[3]
    snapshot.MIN_KEYS = CHILD_SNAPSHOT_KEYS
    if mode == 'ops':
        Writer(path, seed).run()
    elif mode == 'batch':
        run_big_batches(path, seed)
    elif mode == 'step':
        run_steps(path, seed, int(argv[4]))
    else:
        raise SystemExit(f'unknown mode {mode!r}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
