"""Promises about scripts/benchmark: it runs end to end on a few keys, reporting what it says.

Speed is never asserted here (see DEVELOPERS.md): only that every workload ran, on the
right number of keys, with the output the docs and scripts/plot_benchmarks read; that
the terminal and the docs show the same cells; that the docs runs measure every goal
and that the docs' tables are what the report renders from the docs' JSON.
"""
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'benchmark')
sys.path.insert(0, os.path.dirname(SCRIPT))
from adapters import pipcache  # noqa: E402
from semibench import cli, goals, interpreters, report, runner, workloads  # noqa: E402

ALL = ['fill_sequential', 'fill_random', 'load', 'read_sequential', 'read_random',
       'read_floor', 'read_hot', 'overwrite', 'compact', 'update_batch', 'delete_sequential',
       'sync_each', 'sync_100', 'batch_sync', 'close_each', 'refresh', 'read_beside_writer']
LINE = re.compile(r'^(\w+) +: time: +[\d.]+, +micros/ops: +[\d.]+, +ops/s: +[\d.]+, '
                  r'+MB/s: +[\d.]+$', re.M)
MIB = 1 << 20


def run_benchmark(*args, cwd):
    # Our semidbm the normal way: installed, or this checkout on PYTHONPATH.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def result(name, num_keys, rates, peak_mib=None):
    """A child's result with these ops/s and peak RSS (1 MiB of it the data's)."""
    return {'name': name, 'num_keys': num_keys, 'module': f'{name} 1.0',
            'workloads': {workload: {'ops_per_sec': rate} for workload, rate in rates.items()},
            'skipped_workloads': {}, 'notes': [], 'disk_bytes': {'after_fill': num_keys * 100},
            'peak_rss_bytes': peak_mib and peak_mib * MIB,
            'rss_after_data_bytes': peak_mib and MIB}


def a_run(tests, results, baselines=()):
    return {'command': 'scripts/benchmark --compare ...', 'num_keys': results[0]['num_keys'],
            'key_size': 16, 'value_size': 100, 'seed': 0, 'tests': tests, 'rounds': 1,
            'results': list(results), 'baselines': list(baselines)}


MACHINE = {'date': '2026-01-01T00:00:00+0000', 'python': '3.11', 'platform': 'Linux',
           'cpu_count': 2}


def cells(line):
    return re.split(r'\s{2,}', line.strip())


# -- end to end ------------------------------------------------------------------------


def test_compare_semidbm_and_dict_writes_every_workload(tmp_path):
    out = tmp_path / 'results.json'
    done = run_benchmark('--compare', 'semidbm', 'dict', '-n', '200', '--json', str(out),
                         '--progress', 'plain', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run, = json.loads(out.read_text())['runs']
    semidbm, plain_dict = run['results']
    assert (semidbm['name'], plain_dict['name']) == ('semidbm', 'dict')
    assert list(semidbm['workloads']) == ALL
    # A dict has no file, no refresh(), no batch(); the floor is semidbm's.
    skipped = ('load', 'compact', 'refresh', 'batch_sync', 'read_floor')
    assert list(plain_dict['workloads']) == [w for w in ALL if w not in skipped]
    assert set(plain_dict['skipped_workloads']) == set(skipped)
    assert plain_dict['skipped_workloads']['read_floor'] == 'semidbm only'
    for one in (semidbm, plain_dict):
        for timing in one['workloads'].values():
            assert timing['ops'] == 200 and timing['seconds'] > 0
        assert one['peak_rss_bytes'] >= one['rss_after_data_bytes'] > 0
    assert semidbm['disk_bytes']['after_overwrite'] > semidbm['disk_bytes']['after_fill'] > 0
    assert semidbm['disk_bytes']['after_compact'] < semidbm['disk_bytes']['after_overwrite']
    assert run['command'] == 'scripts/benchmark --compare semidbm dict -n 200'
    assert re.search(r'^workload +semidbm +dict$', done.stdout, re.M)
    assert re.search(r'^load +[\d,]+ +-$', done.stdout, re.M)
    assert 'semidbm vs dict [200 keys]: fill_sequential ' in done.stdout
    assert 'semidbm [200 keys]: delete_sequential done in' in done.stderr


def test_one_module_prints_a_line_per_chosen_workload(tmp_path):
    done = run_benchmark('-d', 'semidbm', '-n', '200', '-k', '8', '-s', '50',
                         '-t', 'read_random,fill_sequential', '--progress', 'none',
                         cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert 'num_keys: 200, key_size: 8, value_size: 50' in done.stdout
    assert 'Python: ' in done.stdout and 'CPUs' in done.stdout
    assert LINE.findall(done.stdout) == ['fill_sequential', 'read_random']
    assert 'ops/s, higher is better' not in done.stdout
    assert done.stderr == ''


def test_rounds_run_every_module_again_and_keep_each_best(tmp_path):
    out = tmp_path / 'results.json'
    done = run_benchmark('--compare', 'semidbm', 'dict', '-n', '100', '-t',
                         'fill_random,read_hot', '--rounds', '2', '--json', str(out),
                         '--progress', 'plain', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run, = json.loads(out.read_text())['runs']
    assert run['rounds'] == 2 and [r['rounds'] for r in run['results']] == [2, 2]
    assert done.stderr.count('round 2/2,') == 2
    assert 'rounds: 2 (each workload: its fastest round' in done.stdout
    # Every workload reports per-workload peaks where the OS can reset the peak.
    if os.path.exists('/proc/self/clear_refs'):
        assert set(run['results'][0]['peak_rss_by_workload']) == {'fill_random', 'read_hot'}


def test_max_keys_runs_the_first_module_again_at_the_capped_size(tmp_path):
    out = tmp_path / 'results.json'
    done = run_benchmark('--compare', 'semidbm', 'dbm.dumb', '-n', '300', '-t',
                         'fill_random,delete_sequential', '--max-keys', 'dbm.dumb=100',
                         '--json', str(out), '--progress', 'none', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run, = json.loads(out.read_text())['runs']
    assert [r['num_keys'] for r in run['results']] == [300, 100]
    baseline, = run['baselines']
    assert (baseline['name'], baseline['num_keys']) == ('semidbm', 100)
    assert list(baseline['workloads']) == ['fill_random', 'delete_sequential']
    assert re.search(r'^workload +semidbm +dbm\.dumb \[100\]$', done.stdout, re.M)
    assert 'semidbm vs dbm.dumb [100 keys]: fill_random ' in done.stdout


def test_semidbm_051_runs_from_its_own_directory_only(tmp_path):
    # A stand-in for the PyPI package, so the test needs no network: if the child
    # could see our semidbm (on PYTHONPATH here), it would refuse or load the wrong one.
    peer = tmp_path / 'peer' / 'semidbm'
    peer.mkdir(parents=True)
    (peer / '__init__.py').write_text("__version__ = '0.5.1'\nfrom dbm.dumb import open\n")
    out = tmp_path / 'results.json'
    done = run_benchmark('-d', 'semidbm-0.5.1', '--peer-dir', str(peer.parent), '-n', '200',
                         '-t', 'fill_sequential', '--json', str(out), '--progress', 'none',
                         cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    one, = json.loads(out.read_text())['runs'][0]['results']
    assert one['module'] == f'semidbm 0.5.1 ({peer})'
    assert list(one['workloads']) == ['fill_sequential']


def test_a_contender_runs_under_the_interpreter_it_names(tmp_path):
    # This interpreter by its path: the child imports our semidbm from the checkout
    # (nothing on its PYTHONPATH here), records the interpreter and names the column.
    out = tmp_path / 'results.json'
    env = {name: value for name, value in os.environ.items() if name != 'PYTHONPATH'}
    done = subprocess.run(
        [sys.executable, SCRIPT, '--compare', 'dict', f'semidbm@{sys.executable}',
         'dict@/no/such/python', '-n', '100', '-t', 'read_random,read_floor', '--json',
         str(out), '--progress', 'none'], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _, ours, missing = json.loads(out.read_text())['runs'][0]['results']
    assert ours['name'] == f'semidbm@{sys.executable}'
    assert ours['module'].endswith(f"({os.path.join(REPO, 'semidbm', '__init__.py')})")
    assert ours['interpreter'] == interpreters.current()
    assert list(ours['workloads']) == ['read_random', 'read_floor']
    label = f'semidbm [{interpreters.label(interpreters.current())}]'
    assert re.search(rf'^workload +dict +{re.escape(label)}$', done.stdout, re.M)
    assert missing == {'name': 'dict@/no/such/python', 'num_keys': 100, 'skipped':
                       'no interpreter /no/such/python: /no/such/python: [Errno 2] No such '
                       "file or directory: '/no/such/python'"}
    assert 'dict vs dict@/no/such/python: not run: no interpreter' in done.stdout


def test_a_bare_interpreter_name_is_found_on_path_or_in_pyenv(tmp_path, monkeypatch):
    monkeypatch.setattr(interpreters, 'PYENV', str(tmp_path))
    (tmp_path / '3.99.1' / 'bin').mkdir(parents=True)
    os.symlink(sys.executable, tmp_path / '3.99.1' / 'bin' / 'python')
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))
    assert interpreters.resolve('python3.99')['version'] == interpreters.current()['version']
    with pytest.raises(LookupError, match=f'no interpreter python3.98: not on PATH, nor in'):
        interpreters.resolve('python3.98')


@pytest.mark.skipif(not os.path.exists('/usr/bin/python3'), reason='no system Python')
def test_dbm_gnu_sync_opens_with_the_sync_flag(tmp_path):
    out = tmp_path / 'results.json'
    done = run_benchmark('--compare', 'dict', 'dbm.gnu-sync@/usr/bin/python3', '-n', '150',
                         '-t', 'sync_each,sync_100,batch_sync', '--json', str(out),
                         '--progress', 'none', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    gnu = json.loads(out.read_text())['runs'][0]['results'][1]
    if 'skipped' in gnu:  # a system Python without _gdbm
        assert '_gdbm' in gnu['skipped']
        return
    assert gnu['module'].startswith("dbm.gnu with flag 's'")
    assert list(gnu['workloads']) == ['sync_each', 'sync_100']
    assert gnu['skipped_workloads'] == {'batch_sync': 'no batch(sync=True)'}


def test_lmdb_is_the_pinned_version_from_its_own_directory(tmp_path):
    # A stand-in where the adapter installs the pin (no network): the child imports it
    # from there, and refuses another version.
    version = pipcache.pinned('lmdb')
    assert re.fullmatch(r'[\d.]+', version)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    where = tmp_path / 'semidbm-bench' / f'lmdb-{version}-{sys.implementation.cache_tag}'
    (where / f'lmdb-{version}.dist-info').mkdir(parents=True)
    (where / 'lmdb').mkdir()
    code = ('import sys; sys.path.insert(0, sys.argv[1]); from adapters import lmdb; '
            'lmdb.prepare(None, {"cache_tag": sys.implementation.cache_tag, '
            '"executable": "/no/pip/needed"}); lmdb.configure(None); print(lmdb.lmdb.__file__)')
    for written, expected in ((version, 0), ('0.1', 1)):
        (where / 'lmdb' / '__init__.py').write_text(f'__version__ = {written!r}\n')
        done = subprocess.run([sys.executable, '-c', code, os.path.dirname(SCRIPT)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == expected, done.stderr
    assert f'expected lmdb {version} from {where}, got 0.1' in done.stderr


def test_unknown_module_fails_in_single_mode(tmp_path):
    done = run_benchmark('-d', 'no_such_dbm_module', '-n', '10', '--progress', 'none',
                         cwd=tmp_path)
    assert done.returncode == 1
    assert "not run: ModuleNotFoundError: No module named 'no_such_dbm_module'" in done.stdout


# -- the parts ---------------------------------------------------------------------------


def test_best_of_rounds_takes_each_workloads_fastest_and_the_highest_peak():
    def rounds(fill, read, peak):
        return {'name': 'x', 'num_keys': 1, 'peak_rss_bytes': peak, 'rss_after_data_bytes': 1,
                'workloads': {'fill': {'ops_per_sec': fill}, 'read': {'ops_per_sec': read}}}

    best = runner.best_of([rounds(10, 5, 100), rounds(7, 9, 300), rounds(8, 1, 200)])
    assert best['workloads'] == {'fill': {'ops_per_sec': 10}, 'read': {'ops_per_sec': 9}}
    assert (best['peak_rss_bytes'], best['rounds']) == (300, 3)
    failed = {'name': 'x', 'num_keys': 1, 'error': 'child exited with status 1'}
    assert runner.best_of([rounds(1, 1, 1), failed]) is failed


def test_the_floor_comes_from_the_round_of_the_best_read_random():
    def rounds(read, floor):
        return {'name': 'x', 'num_keys': 1, 'workloads': {
            'read_random': {'ops_per_sec': read}, 'read_floor': {'ops_per_sec': floor}}}

    best = runner.best_of([rounds(10, 11), rounds(5, 50)])
    assert best['workloads'] == rounds(10, 11)['workloads']


@pytest.mark.parametrize('key_size', [2, 16])
def test_data_is_unique_sized_and_fixed_by_the_seed(key_size):
    data = workloads.Data(300, key_size, 7, seed=3)
    assert len(set(data.keys)) == 300 and {len(k) for k in data.keys} == {key_size}
    assert {len(v) for v in data.values} == {7}
    assert sorted(data.random_keys) == data.keys != data.random_keys
    assert data.keys == workloads.Data(300, key_size, 7, seed=3).keys
    assert data.keys != workloads.Data(300, key_size, 7, seed=4).keys


def capped_run():
    """ours, a rival without read_hot, a module capped at 10 keys, one that failed."""
    return a_run(['fill_random', 'read_hot'], [
        result('ours', 1000, {'fill_random': 400, 'read_hot': 900}, peak_mib=4),
        result('rival', 1000, {'fill_random': 100}, peak_mib=8),
        result('small', 10, {'fill_random': 2, 'read_hot': 3}),
        {'name': 'gone', 'num_keys': 1000, 'error': 'child exited with status 1'},
    ], baselines=[result('ours', 10, {'fill_random': 50, 'read_hot': 30})])


def test_comparison_divides_by_the_first_module_at_the_same_number_of_keys():
    lines = report.comparison_lines(capped_run())
    start = lines.index(next(line for line in lines if line.startswith('workload')))
    assert [cells(line) for line in lines[start:start + 3]] == [
        ['workload', 'ours', 'rival', 'small [10]'],
        ['fill_random', '400', '100 (4.00x)', '2 (25.00x)'],
        ['read_hot', '900', '-', '3 (10.00x)']]
    assert ['peak RSS', '4.0', '8.0 (0.50x)', '-'] in [cells(line) for line in lines]
    assert lines[-3:] == ['ours vs rival [1,000 keys]: fill_random 4.00x',
                          'ours vs small [10 keys]: fill_random 25.00x, read_hot 10.00x',
                          'ours vs gone: not run: child exited with status 1']


def test_the_terminal_and_the_docs_show_the_same_cells():
    run = capped_run()
    text = [cells(line) for line in report.comparison_lines(run)]
    docs, row = [], None
    for line in report.rst_run(run):
        if line.startswith('   * - '):
            row = [line[len('   * - '):]]
            docs.append(row)
        elif line.startswith('     - '):
            row.append(line[len('     - '):])
    body = [row for row in docs if row[0] not in ('workload', 'measure')]
    assert body and all(row in text for row in body)
    assert ['workload', 'ours', 'rival', 'small (10 keys)'] in docs


def test_the_docs_runs_measure_every_target():
    measured = set()
    for preset in goals.DOCS_RUNS:
        args = cli.parse_args(list(preset))
        for name, keys in runner.jobs(args.compare, args.num_keys, args.max_keys):
            measured.update((name, keys, workload) for workload in args.tests)
    for workload, keys, _ in goals.DUMB_GOALS:
        assert {('semidbm', keys, workload), (goals.DUMB, keys, workload)} <= measured
    baseline = goals.peer_ratios(report.read_document(goals.BASELINE_JSON)['runs'])
    assert baseline[0] == goals.PEER_KEYS and len(baseline[1]) >= len(goals.PEER_GOALS)
    for workload in [w for w, _ in goals.PEER_GOALS] + list(baseline[1]):
        assert {('semidbm', goals.PEER_KEYS, workload),
                (goals.PEER, goals.PEER_KEYS, workload)} <= measured
    for rival, workload, _ in goals.RIVAL_GOALS:
        assert any(('semidbm', keys, workload) in measured
                   for name, keys, w in measured if (name, w) == (rival, workload))
    for ours in ('semidbm', goals.PYPY):
        assert {(ours, goals.PEER_KEYS, goals.FLOOR), (ours, goals.PEER_KEYS, goals.FLOOR_OF)} \
            <= measured


def test_targets_are_judged_met_or_not_from_the_ratios():
    keys = goals.DUMB_FILL_KEYS
    peer_run = a_run(['fill_sequential', 'read_random', 'read_floor'], [
        result('semidbm', 1000, {'fill_sequential': 130, 'read_random': 200,
                                 'read_floor': 210}, peak_mib=6),
        result(goals.PEER, 1000, {'fill_sequential': 100, 'read_random': 100}, peak_mib=10),
        dict(result(goals.GNU, 1000, {'read_random': 250}),
             interpreter={'implementation': 'CPython', 'version': '3.11.2'}),
        dict(result(goals.PYPY, 1000, {'read_random': 100, 'read_floor': 150}),
             interpreter={'implementation': 'PyPy', 'version': '3.9.16'})])
    dumb_run = a_run(['fill_sequential'], [
        result('semidbm', keys, {'fill_sequential': 1000}),
        result(goals.DUMB, keys, {'fill_sequential': 50})])
    assert goals.peer_verdicts([dumb_run, peer_run]) == (1000, [
        f'fill_sequential: semidbm is 1.30x {goals.PEER} (target: at least 1.2x, met)',
        f'read_random: semidbm is 2.00x {goals.PEER} (target: at least 3x, NOT met)',
        f'peak RSS: semidbm needs 0.60x what {goals.PEER} needs (target: at most 0.7x, met)'])
    assert goals.dumb_verdicts([peer_run, dumb_run]) == [
        f'fill_sequential at {keys:,} keys: semidbm is 20.0x dbm.dumb '
        f'(target: at least 10x, met)']
    assert goals.rival_verdicts([peer_run]) == [
        f'read_random at 1,000 keys: semidbm is 0.80x dbm.gnu [CPython 3.11] (target: at least '
        f'1.0x, NOT met)']
    assert goals.floor_verdicts([peer_run]) == [
        'semidbm at 1,000 keys: read_random takes 5% longer per read than the floor '
        '(target: at most 10%, met)',
        'semidbm [PyPy 3.9] at 1,000 keys: read_random takes 50% longer per read than the '
        'floor (target: at most 10%, NOT met)']
    before = {'runs': [a_run(['fill_sequential', 'read_random'], [
        result('semidbm', 10, {'fill_sequential': 120, 'read_random': 300}),
        result(goals.PEER, 10, {'fill_sequential': 100, 'read_random': 100})])]}
    assert goals.baseline_verdicts([peer_run], before) == [
        f'fill_sequential: 1.30x {goals.PEER}, was 1.20x (target: no lower, met)',
        f'read_random: 2.00x {goals.PEER}, was 3.00x (target: no lower, NOT met)']
    text = report.rst_include({'runs': [dict(peer_run, machine=MACHINE)]},
                              {'runs': [dict(before['runs'][0], machine=MACHINE)]})
    for sentence in goals.baseline_verdicts([peer_run], before) + goals.floor_verdicts(
            [peer_run]) + goals.rival_verdicts([peer_run]):
        assert f'- {sentence}' in text.splitlines()
    assert 'goal' not in text and 'issue' not in text


def test_the_docs_tables_are_rendered_from_the_docs_json():
    # Regenerate both with scripts/plot_benchmarks (docs/benchmarks.rst), never by hand.
    document = report.read_document(goals.DOCS_JSON)
    commands = ['scripts/benchmark ' + shlex.join(preset) for preset in goals.DOCS_RUNS]
    if [run['command'] for run in document['runs']] != commands:
        pytest.skip('docs/benchmark-results.json is not from goals.DOCS_RUNS yet: run '
                    'scripts/benchmark --docs, then scripts/plot_benchmarks')
    with open(goals.DOCS_INC, encoding='utf-8') as include:
        assert report.rst_include(document, report.read_document(goals.BASELINE_JSON)) \
            == include.read()


def test_plot_benchmarks_writes_the_figure_and_the_docs_tables(tmp_path):
    pytest.importorskip('matplotlib')
    from semibench import plot
    png, rst = tmp_path / 'plot.png', tmp_path / 'results.inc'
    assert plot.main([goals.DOCS_JSON, '--png', str(png), '--rst', str(rst)]) == 0
    assert png.read_bytes().startswith(b'\x89PNG')
    assert rst.read_text(encoding='utf-8') == report.rst_include(
        report.read_document(goals.DOCS_JSON), report.read_document(goals.BASELINE_JSON))
