"""semidbm's speed targets, and the docs runs that judge them, in one place.

``scripts/benchmark --docs`` runs DOCS_RUNS into DOCS_JSON; ``scripts/plot_benchmarks``
lists each target there, met or not (report.rst_include), from the ratios of tables.py.
A ratio is semidbm's ops/s ÷ the other's in the same run (above 1: semidbm is faster).
"""
import os

from . import interpreters, tables
from .durable import GROUP_OPS
from .workloads import DURABLE, WORKLOADS

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'docs')
DOCS_JSON = os.path.join(DOCS, 'benchmark-results.json')
DOCS_INC = os.path.join(DOCS, 'benchmark-results.inc')
DOCS_PNG = os.path.join(DOCS, '_static', 'benchmarks.png')
# The docs results from before the second round of speed work: every workload's ratio
# to 0.5.1 is judged against its ratio there (ratios, not ops/s: another day, another
# machine). Kept as it was; DOCS_JSON is regenerated.
BASELINE_JSON = os.path.join(DOCS, 'benchmark-baseline.json')

# Against semidbm 0.5.1 at PEER_KEYS keys: (workload, least ratio), 1.0 for "no
# slower"; peak RSS has a ceiling instead (at most PEER_RSS_GOAL of 0.5.1's).
PEER, PEER_KEYS = 'semidbm-0.5.1', 1_000_000
PEER_GOALS = (('fill_sequential', 1.2), ('fill_random', 1.2), ('load', 2.5),
              ('read_sequential', 1.0), ('read_random', 3), ('read_hot', 2),
              ('update_batch', 2), ('delete_sequential', 1.2), ('compact', 4))
PEER_RSS_GOAL = 0.7
# Against dbm.dumb: (workload, number of keys, least ratio). dbm.dumb rewrites its
# whole index on every delete, so its goals are set at fewer keys, fewest for deletes.
DUMB, DUMB_FILL_KEYS, DUMB_DELETE_KEYS = 'dbm.dumb', 20_000, 5_000
DUMB_GOALS = (('fill_sequential', DUMB_FILL_KEYS, 10), ('fill_random', DUMB_FILL_KEYS, 10),
              ('delete_sequential', DUMB_DELETE_KEYS, 100))
# The peers users choose between, each where it is at its best on this machine's
# Debian: dbm.gnu under the system Python (pyenv's have no _gdbm), dbm.sqlite3 under
# 3.13 (new there), semidbm under PyPy too.
GNU, GNU_SYNC = 'dbm.gnu@/usr/bin/python3', 'dbm.gnu-sync@/usr/bin/python3'
SQLITE, LMDB, PYPY = 'dbm.sqlite3@python3.13', 'lmdb', 'semidbm@pypy3'
# dbm.sqlite3 commits (and fsyncs) every write: like dbm.dumb, at fewer keys.
SQLITE_KEYS = DUMB_DELETE_KEYS
# Against the other stores, at the same number of keys: (rival, workload, least ratio).
# The durable ones against the stores' own ways of making each write durable.
RIVAL_GOALS = ((GNU, 'read_random', 1.0),
               (SQLITE, 'sync_each', 1.0), (SQLITE, 'sync_100', 1.0),
               (GNU_SYNC, 'sync_each', 1.0), (GNU_SYNC, 'sync_100', 1.0))
# The read floor: read_floor's ops/s ÷ read_random's, of one process, at most this.
FLOOR, FLOOR_OF, FLOOR_GOAL = 'read_floor', 'read_random', 1.10
# Best of three rounds: noise only ever slows a workload down.
ROUNDS = 3
# The first run judges the targets against 0.5.1, dbm.gnu and dbm.dumb's deletes
# (dbm.dumb and dbm.sqlite3 capped at their number of keys), the floor and the
# baseline; the second dbm.dumb's fills; the third the durable writes.
DOCS_RUNS = (
    ['--compare', 'semidbm', PEER, DUMB, GNU, SQLITE, LMDB, PYPY, 'dict',
     '-n', str(PEER_KEYS), '--max-keys', f'{DUMB}={DUMB_DELETE_KEYS},{SQLITE}={SQLITE_KEYS}',
     '-t', ','.join(w for w in WORKLOADS if w not in DURABLE), '--rounds', str(ROUNDS)],
    ['--compare', 'semidbm', DUMB, '-n', str(DUMB_FILL_KEYS),
     '-t', ','.join(workload for workload, keys, _ in DUMB_GOALS if keys == DUMB_FILL_KEYS),
     '--rounds', str(ROUNDS)],
    ['--compare', 'semidbm', PEER, DUMB, GNU, GNU_SYNC, SQLITE, LMDB, '-n', str(GROUP_OPS),
     '-t', ','.join(DURABLE), '--rounds', str(ROUNDS)],
)


def verdict(met):
    return 'met' if met else 'NOT met'


def first_ratio(runs, name, workload, keys=None):
    """(run, result, ratio) of the first run in which *name* measured *workload* (at
    *keys* keys, if given) and the first module has a ratio to it; None if none has."""
    for run in runs:
        other = next((r for r in tables.ran(run) if r['name'] == name
                      and keys in (None, r['num_keys']) and workload in r['workloads']),
                     None)
        times = other and tables.ops_table(run).ratio(workload, other)
        if times:
            return run, other, times
    return None


def dumb_verdicts(runs):
    """A sentence per target against dbm.dumb, from the first run that measured it."""
    sentences = []
    for workload, keys, goal in DUMB_GOALS:
        found = first_ratio(runs, DUMB, workload, keys)
        if found:
            run, _, times = found
            sentences.append(
                f'{workload} at {keys:,} keys: {run["results"][0]["name"]} is '
                f'{times:,.1f}x {DUMB} (target: at least {goal}x, {verdict(times >= goal)})')
    return sentences


def peer_verdicts(runs):
    """(number of keys, a sentence per target) against semidbm 0.5.1, from the first run
    that has it and the first module at its size; None if no run has."""
    for run in runs:
        peer = next((r for r in tables.ran(run) if r['name'] == PEER), None)
        if peer is None or not tables.counterpart(run, peer):
            continue
        name, ops = run['results'][0]['name'], tables.ops_table(run)
        sentences = []
        for workload, goal in PEER_GOALS:
            times = ops.ratio(workload, peer)
            if times:
                sentences.append(f'{workload}: {name} is {times:,.2f}x {PEER} '
                                 f'(target: at least {goal}x, {verdict(times >= goal)})')
        share = tables.footprint_table(run).ratio('peak RSS', peer)
        if share:
            sentences.append(f'peak RSS: {name} needs {share:.2f}x what {PEER} needs '
                             f'(target: at most {PEER_RSS_GOAL}x, '
                             f'{verdict(share <= PEER_RSS_GOAL)})')
        return run['num_keys'], sentences
    return None



def peer_ratios(runs):
    """(number of keys, {workload: semidbm's ratio to 0.5.1}) of the first run that has
    0.5.1 and the first module at its size; None if none has."""
    for run in runs:
        peer = next((r for r in tables.ran(run) if r['name'] == PEER), None)
        if peer is not None and tables.counterpart(run, peer):
            ops = tables.ops_table(run)
            ratios = {workload: ops.ratio(workload, peer) for workload in ops.rows}
            return run['num_keys'], {w: ratio for w, ratio in ratios.items() if ratio}
    return None


def rival_verdicts(runs):
    """A sentence per target of RIVAL_GOALS, from the first run that measured it."""
    sentences = []
    for rival, workload, goal in RIVAL_GOALS:
        found = first_ratio(runs, rival, workload)
        if found:
            run, other, times = found
            sentences.append(
                f'{workload} at {other["num_keys"]:,} keys: {run["results"][0]["name"]} '
                f'is {times:,.2f}x {interpreters.name_label(other)} '
                f'(target: at least {goal}x, {verdict(times >= goal)})')
    return sentences


def floor_verdicts(runs):
    """A sentence per semidbm result (semidbm@pypy3 too) that has read_floor and
    read_random: how much longer a read takes than the floor, in the same process."""
    sentences = []
    for run in runs:
        for result in tables.ran(run):
            timings = result['workloads']
            if FLOOR in timings and FLOOR_OF in timings:
                times = timings[FLOOR]['ops_per_sec'] / timings[FLOOR_OF]['ops_per_sec']
                sentences.append(
                    f'{interpreters.name_label(result)} at {result["num_keys"]:,} keys: '
                    f'{FLOOR_OF} takes '
                    f'{times - 1:.0%} longer per read than the floor (target: at most '
                    f'{FLOOR_GOAL - 1:.0%}, {verdict(times <= FLOOR_GOAL)})')
    return sentences


def baseline_verdicts(runs, baseline):
    """A sentence per workload: its ratio to 0.5.1 in *runs* and in the *baseline*
    document's runs; the target is no lower. None if either has no such ratios."""
    now, then = peer_ratios(runs), peer_ratios(baseline['runs'])
    if not now or not then:
        return None
    sentences = []
    for workload, was in then[1].items():
        if workload in now[1]:
            sentences.append(f'{workload}: {now[1][workload]:,.2f}x {PEER}, was {was:,.2f}x '
                             f'(target: no lower, {verdict(now[1][workload] >= was)})')
    return sentences
