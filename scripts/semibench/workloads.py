"""The data and the workloads: what one process times on one module.

``Data`` makes the keys and values from the seed, untimed; ``Bench`` runs the workloads
and keeps, for each, its time, the bytes on disk after it and its peak RSS. The
workloads are described for readers in docs/benchmarks.rst ("What is measured").
"""
import gc
import os
import random
import shutil
import time

from . import durable, memory

WORKLOADS = ('fill_sequential', 'fill_random', 'load', 'read_sequential', 'read_random',
             'read_floor', 'read_hot', 'overwrite', 'compact', 'update_batch',
             'delete_sequential', 'sync_each', 'sync_100', 'batch_sync', 'close_each',
             'refresh', 'read_beside_writer')
# The durable workloads (durable.py), each in a database of its own.
DURABLE = ('sync_each', 'sync_100', 'batch_sync', 'close_each')
# The workloads that make their own database; the others need a filled one first.
FILLING = ('fill_sequential', 'fill_random', 'update_batch') + DURABLE
# A workload that compares with another (read_floor: read_random's floor) takes its
# numbers, with --rounds, from the round the other's best came from: the two are
# then from one process.
PAIRED = {'read_floor': 'read_random'}
DISK_POINTS = ('after_fill', 'after_overwrite', 'after_compact')
BATCH = 1000
PROGRESS_STEPS = 20
MIB = 1 << 20


class Data:
    """Unique random keys (sorted: the sequential order) and random values, from *seed*.

    Generated in the child, untimed, so every contender pays the same memory for it.
    """

    def __init__(self, num_keys, key_size, value_size, seed):
        rng = random.Random(seed)
        self.keys = sorted(unique_keys(rng, num_keys, key_size))
        self.values = []
        for start in range(0, num_keys, 1 << 16):  # in pieces: no 100 MB blob in the peak RSS
            count = min(1 << 16, num_keys - start)
            self.values += split(rng.randbytes(count * value_size), value_size)
        self.key_size, self.pair_size = key_size, key_size + value_size
        order = list(range(num_keys))
        rng.shuffle(order)
        self.random_keys = [self.keys[i] for i in order]
        self.random_values = [self.values[i] for i in order]
        # read_random has an order of its own: reading back in fill_random's order
        # would walk the file (and the index, built in file order) front to back.
        rng.shuffle(order)
        self.lookup_keys = [self.keys[i] for i in order]
        # Overwrite gives each key its neighbour's value: same size, different bytes.
        self.new_values = self.random_values[1:] + self.random_values[:1]
        hot = rng.sample(self.keys, max(1, num_keys // 100))
        self.hot_keys = (hot * (num_keys // len(hot) + 1))[:num_keys]


def unique_keys(rng, count, size):
    if size < 1 or 256 ** size < 2 * count:
        raise SystemExit(f'error: {count} unique keys of {size} bytes are too many; '
                         f'use a larger --key-size')
    keys = set()
    while len(keys) < count:
        keys.update(split(rng.randbytes((count - len(keys)) * size), size))
    return keys


def split(blob, size):
    return [blob[i:i + size] for i in range(0, len(blob), size)]


def chunks(seq, parts=PROGRESS_STEPS):
    step = max(1, -(-len(seq) // parts))
    return [seq[i:i + step] for i in range(0, len(seq), step)]


# The timed loops, one part of the data at a time. The database comes in as an
# argument, not from a closure, so the inner loops read only fast locals.

def store_all(db, keys, values):
    for key, value in zip(keys, values):
        db[key] = value


def read_all(db, keys):
    for key in keys:
        db[key]


def delete_all(db, keys):
    for key in keys:
        del db[key]


def update_all(db, batches):
    for batch in batches:
        db.update(batch)


def store_batches(db, batches):
    """update_all for a store without update(): a pair at a time."""
    for batch in batches:
        for key, value in batch:
            db[key] = value


class Skip(Exception):
    """A workload the module cannot run (no compact(), nothing on disk to load)."""


class Bench:
    """Runs the workloads on one module; each returns (seconds, ops, bytes per op)."""

    def __init__(self, module, data, workdir, progress):
        self.module, self.data, self.progress = module, data, progress
        self.persistent = getattr(module, 'PERSISTENT', True)
        self.path = os.path.join(workdir, 'main', 'db')
        self.batch_path = os.path.join(workdir, 'batch', 'db')
        for path in (self.path, self.batch_path):
            os.makedirs(os.path.dirname(path))
        self.filled = False
        self.reader = None
        self.disk = {}
        self.workloads, self.skipped, self.notes = {}, {}, []
        # Peak RSS during each workload (its own setup included), where the OS can
        # reset the high-water mark: which workload sets a store's peak, and why.
        self.peaks = {}

    def run(self, name):
        if name == 'load' and not self.persistent:
            self.skipped[name] = 'not persistent'
            return
        if name not in FILLING and not self.filled:
            self.fill_untimed()
        gc.collect()
        memory.trim_heap()
        resettable = memory.reset_peak_rss()
        self.progress.start(name)
        try:
            seconds, ops, size = getattr(self, name)()
        except Skip as why:
            self.skipped[name] = str(why)
            self.progress.note(f'{name} skipped: {why}')
            return
        self.progress.end(seconds)
        self.workloads[name] = measure(seconds, ops, size)
        if resettable:
            self.peaks[name] = memory.peak_rss()

    def _timed(self, db, loop, *columns, close=True):
        """Seconds to run loop(db, *part) over the parts of *columns*, and db.close().

        The write workloads include the close, where some stores (dbm.dumb) write
        their index; the reads do not close the database they share."""
        parts = list(zip(*(chunks(column) for column in columns)))
        start = time.perf_counter()
        for done, part in enumerate(parts, 1):
            loop(db, *part)
            self.progress.step(done, len(parts))
        if close:
            db.close()
        return time.perf_counter() - start

    # The write workloads: open untimed, then the writes and the close.

    def fill_sequential(self):
        return self._fill(self.data.keys, self.data.values)

    def fill_random(self):
        return self._fill(self.data.random_keys, self.data.random_values)

    def _fill(self, keys, values):
        self.close_reader()
        seconds = self._timed(self.module.open(self.path, 'n'), store_all, keys, values)
        self.filled = True
        self.disk['after_fill'] = self.disk_bytes(self.path)
        self.check(self.data.keys[0], self.data.values[0])
        return seconds, len(keys), self.data.pair_size

    def fill_untimed(self):
        self.progress.note('filling (untimed) for the next workload')
        self._fill(self.data.keys, self.data.values)

    def overwrite(self):
        self.close_reader()
        data = self.data
        seconds = self._timed(self.module.open(self.path, 'w'), store_all,
                              data.random_keys, data.new_values)
        self.disk['after_overwrite'] = self.disk_bytes(self.path)
        self.check(data.random_keys[0], data.new_values[0])
        return seconds, len(data.keys), data.pair_size

    def update_batch(self):
        """db.update() of all pairs, BATCH at a time, into a new database of its own."""
        pairs = list(zip(self.data.keys, self.data.values))
        batches = [pairs[i:i + BATCH] for i in range(0, len(pairs), BATCH)]
        db = self.module.open(self.batch_path, 'n')
        loop = update_all
        if getattr(db, 'update', None) is None:
            self.notes.append('update_batch: no update(), stores each pair with db[key] = value')
            loop = store_batches
        seconds = self._timed(db, loop, batches)
        self.check(self.data.keys[-1], self.data.values[-1], self.batch_path)
        shutil.rmtree(os.path.dirname(self.batch_path))
        return seconds, len(pairs), self.data.pair_size

    def compact(self):
        self.close_reader()
        # 'c', not 'w': semidbm 0.5.1's compact() fails on a database opened with 'w'.
        db = self.module.open(self.path, 'c')
        # dbm.gnu's reorganize() is its compaction.
        method = getattr(db, 'compact', None) or getattr(db, 'reorganize', None)
        if method is None:
            db.close()
            raise Skip('no compact()')
        start = time.perf_counter()
        method()
        db.close()
        seconds = time.perf_counter() - start
        self.disk['after_compact'] = self.disk_bytes(self.path)
        return seconds, len(self.data.keys), self.data.pair_size

    def delete_sequential(self):
        self.close_reader()
        seconds = self._timed(self.module.open(self.path, 'w'), delete_all, self.data.keys)
        self.filled = False
        self.check_absent(self.data.keys[0])
        return seconds, len(self.data.keys), self.data.key_size

    # The durable workloads: what making writes durable costs, in a database of their own.

    def sync_each(self):
        """A put then db.sync() (an fsync), for each of DURABLE_OPS keys."""
        return self._durable('sync_each', durable.sync_each, durable.DURABLE_OPS)

    def sync_100(self):
        """GROUP_OPS puts, with a db.sync() after each GROUP of them."""
        return self._durable('sync_100', durable.sync_every_group, durable.GROUP_OPS)

    def batch_sync(self):
        """GROUP_OPS puts, GROUP in each ``with db.batch(sync=True):`` (group commit)."""
        return self._durable('batch_sync', durable.batch_sync, durable.GROUP_OPS)

    def close_each(self):
        """Open 'w', a put, close (which fsyncs where the store does), DURABLE_OPS times."""
        return self._durable('close_each', durable.close_each, durable.DURABLE_OPS)

    def _durable(self, name, loop, count):
        pairs = list(zip(self.data.keys, self.data.values))[:count]
        os.makedirs(os.path.dirname(self.batch_path), exist_ok=True)  # update_batch's
        db = self.module.open(self.batch_path, 'n')
        missing = [method for method in ('sync', 'batch') if getattr(db, method, None) is None]
        db.close()
        if name == 'batch_sync' and 'batch' in missing:
            raise Skip('no batch(sync=True)')
        if name in ('sync_each', 'sync_100') and 'sync' in missing:
            self.notes.append(f'{name}: no sync(), so only its writes are timed (what '
                              f'each write makes durable is the store\'s own)')
        start = time.perf_counter()
        loop(self.module, self.batch_path, pairs)
        seconds = time.perf_counter() - start
        self.check(pairs[-1][0], pairs[-1][1], self.batch_path)
        shutil.rmtree(os.path.dirname(self.batch_path))
        return seconds, len(pairs), self.data.pair_size

    # Readers beside a writer (stores with refresh(): a reader that follows a writer).

    def refresh(self):
        """A writer in this process stores every pair BATCH at a time; after each
        batch a reader opened beside it calls refresh(): records picked up a second."""
        self.close_reader()
        pairs = list(zip(self.data.keys, self.data.new_values))
        writer = self.module.open(self.path, 'w')
        try:
            reader = self.module.open(self.path, 'r')
        except Exception as exc:  # a store whose writer excludes readers (dbm.gnu)
            writer.close()
            raise Skip(f'no reader beside a writer ({type(exc).__name__})')
        if getattr(reader, 'refresh', None) is None:
            reader.close()
            writer.close()
            raise Skip('no refresh()')
        seconds = 0.0
        for start in range(0, len(pairs), BATCH):
            writer.update(pairs[start:start + BATCH])
            began = time.perf_counter()
            reader.refresh()
            seconds += time.perf_counter() - began
        if reader[pairs[-1][0]] != pairs[-1][1]:
            raise AssertionError('refresh() did not pick up the last batch')
        reader.close()
        writer.close()
        return seconds, len(pairs), self.data.pair_size

    def read_beside_writer(self):
        """read_random, by a reader opened while a writer has the database open."""
        self.close_reader()
        writer = self.module.open(self.path, 'w')
        try:
            reader = self.module.open(self.path, 'r')
        except Exception as exc:  # a store whose writer excludes readers
            writer.close()
            raise Skip(f'no reader beside a writer ({type(exc).__name__})')
        try:
            return (self._timed(reader, read_all, self.data.lookup_keys, close=False),
                    len(self.data.lookup_keys), self.data.pair_size)
        finally:
            reader.close()
            writer.close()

    # The read workloads: the database is already open (by load, or untimed).

    def load(self):
        self.close_reader()
        start = time.perf_counter()
        self.reader = self.module.open(self.path, 'r')
        seconds = time.perf_counter() - start
        return seconds, len(self.data.keys), self.data.pair_size

    def read_sequential(self):
        return self._read(self.data.keys)

    def read_random(self):
        return self._read(self.data.lookup_keys)

    def read_floor(self):
        """read_random's keys, on read_random's reader, by floor.slice_all (semidbm only)."""
        if self.module.__name__ != 'semidbm':
            raise Skip('semidbm only')
        from . import floor  # imports our semidbm: never in another module's child
        if self.reader is None:
            self.reader = self.module.open(self.path, 'r')
        store = floor.parts(self.reader)
        if store is None:
            raise Skip("semidbm's index and map are not where floor.py looks")
        seconds = self._timed(store, floor.slice_all, self.data.lookup_keys, close=False)
        return seconds, len(self.data.lookup_keys), self.data.pair_size

    def read_hot(self):
        return self._read(self.data.hot_keys)

    def _read(self, keys):
        if self.reader is None:
            self.reader = self.module.open(self.path, 'r')
        seconds = self._timed(self.reader, read_all, keys, close=False)
        return seconds, len(keys), self.data.pair_size

    # Untimed checks that the store kept what it was given.

    def close_reader(self):
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def check(self, key, value, path=None):
        db = self.module.open(path or self.path, 'r')
        try:
            got = db[key]
        finally:
            db.close()
        if got != value:
            raise AssertionError(f'{key!r} read back {got[:20]!r}..., not {value[:20]!r}...')

    def check_absent(self, key):
        db = self.module.open(self.path, 'r')
        try:
            db[key]
        except KeyError:
            return
        finally:
            db.close()
        raise AssertionError(f'{key!r} is still there after delete_sequential')

    def disk_bytes(self, path):
        if not self.persistent:
            return None
        total = 0
        for folder, _, files in os.walk(os.path.dirname(path)):
            total += sum(os.path.getsize(os.path.join(folder, name)) for name in files)
        return total


def measure(seconds, ops, size):
    seconds = max(seconds, 1e-9)
    return {'seconds': seconds, 'ops': ops, 'micros_per_op': seconds * 1e6 / ops,
            'ops_per_sec': ops / seconds, 'mb_per_sec': ops * size / seconds / MIB}

