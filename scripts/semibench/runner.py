"""The child processes: one per module and round, then each module's best round.

Each module runs in a child process of its own (``scripts/benchmark --child``): it
generates the data from the seed, runs the workloads and writes its result as JSON,
so memory and caches never leak from one contender to the next. The parent runs the
rounds and keeps each module's best; it prints nothing on stdout (cli.py does). A
contender ``MODULE@PYTHON`` runs its child under that interpreter (interpreters.py).
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

from . import interpreters, memory, report
from .progress import Progress
from .workloads import PAIRED, WORKLOADS, Bench, Data

# The command the children run: the same one the user ran, with --child.
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmark')
# The checkout: where a child under another interpreter imports our semidbm from.
CHECKOUT = os.path.dirname(os.path.dirname(SCRIPT))
ADAPTERS = {'dict': 'adapters.dict', 'lmdb': 'adapters.lmdb',
            'semidbm-0.5.1': 'adapters.semidbm051', 'dbm.gnu-sync': 'adapters.gnu_sync'}
OURS = 'semidbm'
# Options that change where the output or the databases go, not the numbers.
UNSHAPING = ('--json', '--progress', '--peer-dir', '--dir')


# -- the child: one module, all its workloads ------------------------------------------


def load_module(name, peer_dir, checkout=False):
    if checkout:
        import_from_checkout(name)
    module = importlib.import_module(ADAPTERS.get(name, name))
    if hasattr(module, 'configure'):
        module.configure(peer_dir)
    if not callable(getattr(module, 'open', None)):
        raise ImportError(f'{name} has no open(path, flag)')
    return module


def import_from_checkout(name):
    """Import our semidbm from this checkout, in a child whose interpreter has not
    installed it: the checkout goes first on ``sys.path`` (rather than on PYTHONPATH,
    which would reach every process the child starts), and any other is refused."""
    if name != OURS:
        raise RuntimeError(f'--checkout is for {OURS}, not {name}')
    sys.path.insert(0, CHECKOUT)
    module = importlib.import_module(OURS)
    where = os.path.dirname(os.path.abspath(module.__file__))
    if where != os.path.join(CHECKOUT, OURS):
        raise RuntimeError(f'expected {OURS} from {CHECKOUT}, got {where}')


def describe(module):
    if hasattr(module, 'describe'):
        return module.describe()
    version = getattr(module, '__version__', None)
    if version is None and module.__name__.startswith('dbm'):
        version = f'stdlib, Python {platform.python_version()}'
    return f'{module.__name__} {version} ({getattr(module, "__file__", "built-in")})'


def child_main(args):
    result = {'name': args.child, 'num_keys': args.num_keys,
              'interpreter': interpreters.current()}
    try:
        module = load_module(args.child, args.peer_dir, args.checkout)
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


def run_child(name, num_keys, args, workdir, found):
    """Run *name*'s child (under its own interpreter, *found*'s answer for it); its
    result, or why it did not run."""
    module, python = interpreters.split(name)
    try:
        interpreter = found[python] if python else interpreters.current()
        if isinstance(interpreter, LookupError):
            raise interpreter
        adapter = parent_side(module)
        if hasattr(adapter, 'prepare'):
            adapter.prepare(args.peer_dir, interpreter)
    except (LookupError, ImportError) as exc:
        return {'name': name, 'num_keys': num_keys, 'skipped': str(exc)}
    out = os.path.join(workdir, f'{len(os.listdir(workdir))}.json')
    isolated = getattr(adapter, 'ISOLATED', False)
    command = [interpreter['executable']] + (['-E', '-S', '-s'] if isolated else []) + [
        SCRIPT, '--child', module, '--child-out', out, '-n', str(num_keys),
        '-k', str(args.key_size), '-s', str(args.value_size), '--seed', str(args.seed),
        '-t', ','.join(args.tests), '--progress', args.progress, '--peer-dir', args.peer_dir]
    if python and module == OURS:
        command.append('--checkout')
    if args.dir:
        command += ['--dir', args.dir]
    done = subprocess.run(command)
    if done.returncode:
        return {'name': name, 'num_keys': num_keys,
                'error': f'child exited with status {done.returncode} (see stderr above)'}
    with open(out, encoding='utf-8') as result:
        return dict(json.load(result), name=name)


def parent_side(module):
    """The adapter of *module*, for its ISOLATED and prepare(), or None.

    One that does not import here (dbm.gnu-sync where this Python has no _gdbm) may
    under the child's interpreter: the child then says why not, if not."""
    if module not in ADAPTERS:
        return None
    try:
        return importlib.import_module(ADAPTERS[module])
    except ImportError:
        return None


def find_interpreters(modules):
    """The probe's answer (or the LookupError) for each interpreter named in *modules*."""
    found = {}
    for name in modules:
        python = interpreters.split(name)[1]
        if python and python not in found:
            try:
                found[python] = interpreters.resolve(python)
            except LookupError as exc:
                found[python] = exc
    return found


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
    found = find_interpreters(modules)
    with tempfile.TemporaryDirectory(prefix='semidbm-bench-out-') as workdir:
        # Round after round of every module, so that a noisy minute of a shared
        # machine falls on all of them alike; each workload keeps its best round.
        for number in range(1, args.rounds + 1):
            for step, (name, size) in enumerate(planned, 1):
                if args.progress != 'none':
                    where = f' round {number}/{args.rounds},' if args.rounds > 1 else ''
                    print(f'[{step}/{len(planned)}]{where} {name} ...', file=sys.stderr,
                          flush=True)
                rounds[name, size].append(run_child(name, size, args, workdir, found))
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
    best['workloads'] = {}
    for name in results[0]['workloads']:
        # A workload PAIRED with another comes from the round the other's best was in.
        judge = PAIRED.get(name, name)
        judge = judge if judge in results[0]['workloads'] else name
        fastest = max((r for r in results if judge in r['workloads']),
                      key=lambda r: r['workloads'][judge]['ops_per_sec'])
        if name in fastest['workloads']:
            best['workloads'][name] = fastest['workloads'][name]
    if all(r.get('peak_rss_bytes') for r in results):
        top = max(results, key=lambda r: r['peak_rss_bytes'])
        best.update(peak_rss_bytes=top['peak_rss_bytes'],
                    rss_after_data_bytes=top['rss_after_data_bytes'],
                    peak_rss_by_workload=top.get('peak_rss_by_workload', {}))
    return best
