"""The issue's goals for semidbm, and the docs runs that judge them, in one place.

``scripts/benchmark --docs`` runs DOCS_RUNS into DOCS_JSON; ``scripts/plot_benchmarks``
lists each goal there, met or not (report.rst_include), from the ratios of tables.py.
"""
import os

from . import tables

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'docs')
DOCS_JSON = os.path.join(DOCS, 'benchmark-results.json')
DOCS_INC = os.path.join(DOCS, 'benchmark-results.inc')
DOCS_PNG = os.path.join(DOCS, '_static', 'benchmarks.png')

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
# Best of three rounds: noise only ever slows a workload down.
ROUNDS = 3
# The first run judges the goals against 0.5.1 and dbm.dumb's deletes (dbm.dumb capped
# at their number of keys), the second dbm.dumb's fills.
DOCS_RUNS = (
    ['--compare', 'semidbm', PEER, DUMB, 'dbm.gnu', 'dict', '-n', str(PEER_KEYS),
     '--max-keys', f'{DUMB}={DUMB_DELETE_KEYS}', '--rounds', str(ROUNDS)],
    ['--compare', 'semidbm', DUMB, '-n', str(DUMB_FILL_KEYS),
     '-t', ','.join(workload for workload, keys, _ in DUMB_GOALS if keys == DUMB_FILL_KEYS),
     '--rounds', str(ROUNDS)],
)


def verdict(met):
    return 'met' if met else 'NOT met'


def dumb_verdicts(runs):
    """A sentence per goal against dbm.dumb, from the first run that measured it."""
    sentences = []
    for workload, keys, goal in DUMB_GOALS:
        for run in runs:
            dumb = next((r for r in tables.ran(run) if r['name'] == DUMB
                         and r['num_keys'] == keys and workload in r['workloads']), None)
            times = dumb and tables.ops_table(run).ratio(workload, dumb)
            if times:
                sentences.append(
                    f'{workload} at {keys:,} keys: {run["results"][0]["name"]} is '
                    f'{times:,.1f}x {DUMB} (goal: at least {goal}x, {verdict(times >= goal)})')
                break
    return sentences


def peer_verdicts(runs):
    """(number of keys, a sentence per goal) against semidbm 0.5.1, from the first run
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
                                 f'(goal: at least {goal}x, {verdict(times >= goal)})')
        share = tables.footprint_table(run).ratio('peak RSS', peer)
        if share:
            sentences.append(f'peak RSS: {name} needs {share:.2f}x what {PEER} needs '
                             f'(goal: at most {PEER_RSS_GOAL}x, '
                             f'{verdict(share <= PEER_RSS_GOAL)})')
        return run['num_keys'], sentences
    return None

