"""The child processes: one per module and round, then each module's best round.

Each module runs in a child process of its own (``scripts/benchmark --child``): it
generates the data from the seed, runs the workloads and writes its result as JSON,
so memory and caches never leak from one contender to the next. The parent runs the
rounds and keeps each module's best; it prints nothing on stdout (cli.py does).
"""
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time

from . import memory, report
from .progress import Progress
from .workloads import WORKLOADS, Bench, Data

# The command the children run: the same one the user ran, with --child.
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmark')
ADAPTERS = {'dict': 'adapters.dict', 'lmdb': 'adapters.lmdb',
            'semidbm-0.5.1': 'adapters.semidbm051'}
# Options that change where the output or the databases go, not the numbers.
UNSHAPING = ('--json', '--progress', '--peer-dir', '--dir')


# -- the child: one module, all its workloads ------------------------------------------


def load_module(name, peer_dir):
    module = importlib.import_module(ADAPTERS.get(name, name))
    if getattr(module, 'ISOLATED', False):
        module.configure(peer_dir)
    if not callable(getattr(module, 'open', None)):
        raise ImportError(f'{name} has no open(path, flag)')
    return module


def describe(module):
    if hasattr(module, 'describe'):
        return module.describe()
    version = getattr(module, '__version__', None)
    if version is None and module.__name__.startswith('dbm'):
        version = f'stdlib, Python {platform.python_version()}'
    return f'{module.__name__} {version} ({getattr(module, "__file__", "built-in")})'


def child_main(args):
    result = {'name': args.child, 'num_keys': args.num_keys}
    try:
        module = load_module(args.child, args.peer_dir)
    except (ImportError, RuntimeError) as exc:
        result['skipped'] = f'{type(exc).__name__}: {exc}'
        return report.write_json(args.child_out, result)
    progress = Progress(f'{args.child} [{args.num_keys:,} keys]', args.progress)
    progress.note('generating data (untimed)')
    data = Data(args.num_keys, args.key_size, args.value_size, args.seed)
    result.update(module=describe(module), rss_after_data_bytes=memory.peak_rss())
    with tempfile.TemporaryDirectory(prefix='semidbm-bench-', dir=args.dir) as workdir:
        bench = Bench(module, data, workdir, progress)
        for name in WORKLOADS:
            if name in args.tests:
                bench.run(name)
        bench.close_reader()
    peaks = [result['rss_after_data_bytes'], memory.peak_rss()] + list(bench.peaks.values())
    result.update(workloads=bench.workloads, skipped_workloads=bench.skipped,
                  notes=bench.notes, disk_bytes=bench.disk, peak_rss_by_workload=bench.peaks,
                  peak_rss_bytes=None if None in peaks else max(peaks))
    return report.write_json(args.child_out, result)


# -- the parent: one child per module and round ----------------------------------------


def run_child(name, num_keys, args, workdir):
    adapter = importlib.import_module(ADAPTERS[name]) if name in ADAPTERS else None
    isolated = getattr(adapter, 'ISOLATED', False)
    if isolated:
        adapter.prepare(args.peer_dir)
    out = os.path.join(workdir, f'{len(os.listdir(workdir))}.json')
    command = [sys.executable] + (['-E', '-S', '-s'] if isolated else []) + [
        SCRIPT, '--child', name, '--child-out', out, '-n', str(num_keys),
        '-k', str(args.key_size), '-s', str(args.value_size), '--seed', str(args.seed),
        '-t', ','.join(args.tests), '--progress', args.progress, '--peer-dir', args.peer_dir]
    if args.dir:
        command += ['--dir', args.dir]
    done = subprocess.run(command)
    if done.returncode:
        return {'name': name, 'num_keys': num_keys,
                'error': f'child exited with status {done.returncode} (see stderr above)'}
    with open(out, encoding='utf-8') as result:
        return json.load(result)


def shaping(argv):
    """*argv* less the options that do not change the numbers (output, progress, paths)."""
    kept, skip = [], False
    for arg in argv:
        name = arg.split('=', 1)[0]
        if skip or name == '--append':
            skip = False
        elif name in UNSHAPING:
            skip = '=' not in arg
        else:
            kept.append(arg)
    return kept


def machine():
    return {'python': sys.version.replace('\n', ' '),
            'implementation': platform.python_implementation(),
            'platform': platform.platform(), 'cpu_count': os.cpu_count(),
            'date': time.strftime('%Y-%m-%dT%H:%M:%S%z')}


def new_run(args, argv):
    """The record of a run, before any module ran: what report.header_lines prints."""
    return {'command': 'scripts/benchmark ' + shlex.join(shaping(argv)), 'machine': machine(),
            'num_keys': args.num_keys, 'key_size': args.key_size,
            'value_size': args.value_size, 'seed': args.seed, 'tests': args.tests,
            'results': [], 'baselines': [], 'rounds': args.rounds}


def jobs(modules, num_keys, max_keys):
    """(module, number of keys) for each module, then the first module's baselines.

    The first module runs again at each capped module's size, so its ratios compare
    equal work: per-op costs grow with the number of keys in most stores."""
    sizes = {name: min(num_keys, max_keys.get(name, num_keys)) for name in modules}
    first = modules[0]
    return [(name, sizes[name]) for name in modules] + [
        (first, size) for size in sorted({sizes[name] for name in modules[1:]} - {sizes[first]})]


def run_all(run, args):
    """Run every module of *args* into *run*: its 'results', then its 'baselines'.

    :raises RuntimeError: where an adapter cannot prepare (semidbm 0.5.1 not installed).
    """
    modules = [args.d] if args.d else args.compare
    planned = jobs(modules, args.num_keys, args.max_keys)
    rounds = {job: [] for job in planned}
    with tempfile.TemporaryDirectory(prefix='semidbm-bench-out-') as workdir:
        # Round after round of every module, so that a noisy minute of a shared
        # machine falls on all of them alike; each workload keeps its best round.
        for number in range(1, args.rounds + 1):
            for step, (name, size) in enumerate(planned, 1):
                if args.progress != 'none':
                    where = f' round {number}/{args.rounds},' if args.rounds > 1 else ''
                    print(f'[{step}/{len(planned)}]{where} {name} ...', file=sys.stderr,
                          flush=True)
                rounds[name, size].append(run_child(name, size, args, workdir))
    for number, job in enumerate(planned):
        (run['results'] if number < len(modules) else run['baselines']).append(
            best_of(rounds[job]))
    return run


def best_of(results):
    """One result from the rounds of one module: each workload's fastest round, the
    highest peak RSS seen (memory is not noisy; the highest is the safe claim)."""
    failed = [result for result in results if 'workloads' not in result]
    if failed or len(results) == 1:
        return (failed or results)[0]
    best = dict(results[0], rounds=len(results))
    best['workloads'] = {
        name: max((r['workloads'][name] for r in results if name in r['workloads']),
                  key=lambda timing: timing['ops_per_sec'])
        for name in results[0]['workloads']}
    if all(r.get('peak_rss_bytes') for r in results):
        top = max(results, key=lambda r: r['peak_rss_bytes'])
        best.update(peak_rss_bytes=top['peak_rss_bytes'],
                    rss_after_data_bytes=top['rss_after_data_bytes'],
                    peak_rss_by_workload=top.get('peak_rss_by_workload', {}))
    return best
