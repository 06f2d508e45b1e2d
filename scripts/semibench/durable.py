"""The durable workloads' loops: writes that wait for the disk, in a database of their own.

Each loop opens the database, writes *pairs* and closes it, all timed: the open and
close are a small share beside the syncs. What reaches the disk when differs by store;
docs/benchmarks.rst ("What a durable write means") says it for each contender.
"""
# The durable workloads wait for the disk on every sync: a few hundred syncs measure
# its cost, whatever the number of keys.
DURABLE_OPS = 300
# sync_100 and batch_sync sync once per GROUP writes; ten times the writes, so that
# their tens of syncs are still measurable.
GROUP = 100
GROUP_OPS = 10 * DURABLE_OPS


def sync_of(db):
    """db.sync, or None for a store without one (dbm.sqlite3 commits every write)."""
    return getattr(db, 'sync', None)


def sync_each(module, path, pairs):
    db = module.open(path, 'w')
    sync = sync_of(db) or _nothing
    for key, value in pairs:
        db[key] = value
        sync()
    db.close()


def sync_every_group(module, path, pairs):
    db = module.open(path, 'w')
    sync = sync_of(db) or _nothing
    for start in range(0, len(pairs), GROUP):
        for key, value in pairs[start:start + GROUP]:
            db[key] = value
        sync()
    db.close()


def batch_sync(module, path, pairs):
    """GROUP writes in each ``with db.batch(sync=True):`` block: one fsync a block."""
    db = module.open(path, 'w')
    for start in range(0, len(pairs), GROUP):
        with db.batch(sync=True):
            for key, value in pairs[start:start + GROUP]:
                db[key] = value
    db.close()


def close_each(module, path, pairs):
    for key, value in pairs:
        db = module.open(path, 'w')
        db[key] = value
        db.close()


def _nothing():
    pass
