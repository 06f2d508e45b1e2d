"""Benchmark semidbm against other stores with the dbm interface.

    scripts/benchmark -d semidbm -n 100000
    scripts/benchmark --compare semidbm semidbm-0.5.1 dbm.dumb dbm.gnu dict \\
        -n 1000000 --max-keys dbm.dumb=20000 --json results.json
    scripts/benchmark --docs      # the runs behind docs/benchmarks.rst

A module is any importable module with ``open(path, flag)`` (``semidbm``, ``dbm.dumb``,
``dbm.gnu``, ``dbm.sqlite3``) or a name from ``scripts/adapters/`` (``dict``, ``lmdb``,
``semidbm-0.5.1``, ``dbm.gnu-sync``), each run in a child process of its own (runner.py);
``MODULE@PYTHON`` runs it under another interpreter (``semidbm@pypy3``,
``dbm.gnu@/usr/bin/python3``, ``dbm.sqlite3@python3.13``). Ratios are only meaningful
within one run; see docs/benchmarks.rst.
"""
import argparse
import sys

from adapters import semidbm051

from . import goals, report, runner
from .workloads import WORKLOADS


def main(argv=None):
    """scripts/benchmark; 0 if every module ran, 1 if one failed, 2 if one could not start."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child:
        return runner.child_main(args)
    if args.docs:
        return docs_main(args)
    return bench_main(args, argv)


def bench_main(args, argv):
    run = runner.new_run(args, argv)
    show(report.header_lines(run))
    try:
        runner.run_all(run, args)
    except RuntimeError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    for result in run['results'] + run['baselines']:
        show(report.result_lines(result))
    if args.compare:
        show(report.comparison_lines(run))
    if args.json:
        report.save_json(args.json, run, args.append)
    failed = [r for r in run['results'] + run['baselines']
              if 'error' in r or (args.d and 'skipped' in r)]
    return 1 if failed else 0


def docs_main(args):
    """Run goals.DOCS_RUNS into goals.DOCS_JSON (then run scripts/plot_benchmarks)."""
    status = 0
    passed = ['--peer-dir', args.peer_dir, '--progress', args.progress]
    for number, preset in enumerate(goals.DOCS_RUNS):
        status |= main(list(preset) + passed + ['--json', goals.DOCS_JSON]
                       + (['--append'] if number else []))
    return status


def show(lines):
    for line in lines:
        print(line)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='scripts/benchmark', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Workloads: ' + ', '.join(WORKLOADS) + '. Modules: any importable module '
               'with open(path, flag), or ' + ', '.join(runner.ADAPTERS) + '; MODULE@PYTHON '
               'runs it under the interpreter PYTHON (a path, or a name on PATH or in pyenv).')
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument('-d', '--dbm', dest='d', metavar='MODULE[@PYTHON]',
                       help='one module, in detail')
    which.add_argument('--compare', nargs='+', metavar='MODULE[@PYTHON]',
                       help='several modules, each in its own process; ratios against the first')
    which.add_argument('--docs', action='store_true',
                       help=f'the runs behind docs/benchmarks.rst, into {goals.DOCS_JSON}')
    which.add_argument('--child', metavar='MODULE', help=argparse.SUPPRESS)
    add_shaping_options(parser)
    add_output_options(parser)
    return finish(parser.parse_args(argv))


def add_shaping_options(parser):
    """The options that change the numbers (runner.shaping keeps them in the record)."""
    parser.add_argument('-n', '--num-keys', type=positive, default=100_000)
    parser.add_argument('-k', '--key-size', type=positive, default=16, help='bytes (16)')
    parser.add_argument('-s', '--value-size', type=positive, default=100, help='bytes (100)')
    parser.add_argument('-t', '--tests', type=tests, default=list(WORKLOADS),
                        help='comma-separated workloads (all)')
    parser.add_argument('--seed', type=int, default=0, help='random seed for the data (0)')
    parser.add_argument('--rounds', type=positive, default=1,
                        help='run every module this many times, round after round, and keep '
                             'each workload\'s best round (1)')
    parser.add_argument('--max-keys', type=caps, action='append', default=[],
                        metavar='MODULE=N', help='run MODULE with at most N keys; repeatable')


def add_output_options(parser):
    """Where the results, the databases and the progress go (runner.UNSHAPING)."""
    parser.add_argument('--json', metavar='FILE', help='write the results to FILE')
    parser.add_argument('--append', action='store_true',
                        help='add this run to the runs already in the --json FILE')
    parser.add_argument('--peer-dir', default=None,
                        help='where semidbm 0.5.1 is (or gets pip-installed)')
    parser.add_argument('--dir', help='where to put the databases (a temporary directory)')
    parser.add_argument('--progress', choices=('auto', 'tty', 'plain', 'none'),
                        default='auto', help='progress on stderr (auto: tty if a terminal)')
    parser.add_argument('--child-out', help=argparse.SUPPRESS)
    parser.add_argument('--checkout', action='store_true', help=argparse.SUPPRESS)


def finish(args):
    """The defaults that depend on other options or on the machine."""
    args.max_keys = dict(pair for group in args.max_keys for pair in group)
    if args.peer_dir is None:
        args.peer_dir = semidbm051.default_dir()
    if args.progress == 'auto':
        args.progress = 'tty' if sys.stderr.isatty() else 'plain'
    return args


def positive(text):
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, not {number}')
    return number


def tests(text):
    names = [name.strip() for name in text.split(',') if name.strip()]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(WORKLOADS)}")
    return [name for name in WORKLOADS if name in names]


def caps(text):
    pairs = []
    for item in text.split(','):
        name, sep, count = item.partition('=')
        if not sep or not name:
            raise argparse.ArgumentTypeError(f'expected MODULE=N, not {item!r}')
        pairs.append((name, positive(count)))
    return pairs
