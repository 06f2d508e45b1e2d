"""scripts/benchmark runs end to end on a few keys and reports what it promises.

Speed is never asserted here (see DEVELOPERS.md): only that every workload ran, on the
right number of keys, with the output the docs and scripts/plot_benchmarks read.
"""
import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'benchmark')
ALL = ['fill_sequential', 'fill_random', 'load', 'read_sequential', 'read_random',
       'read_hot', 'overwrite', 'compact', 'update_batch', 'delete_sequential']
LINE = re.compile(r'^(\w+) +: time: +[\d.]+, +micros/ops: +[\d.]+, +ops/s: +[\d.]+, '
                  r'+MB/s: +[\d.]+$', re.M)


def run_benchmark(*args, cwd):
    # Our semidbm the normal way: installed, or this checkout on PYTHONPATH.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def load_script():
    loader = importlib.machinery.SourceFileLoader('benchmark_script', SCRIPT)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def test_compare_semidbm_and_dict_writes_every_workload(tmp_path):
    out = tmp_path / 'results.json'
    done = run_benchmark('--compare', 'semidbm', 'dict', '-n', '200', '--json', str(out),
                         '--progress', 'plain', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run, = json.loads(out.read_text())['runs']
    semidbm, plain_dict = run['results']
    assert (semidbm['name'], plain_dict['name']) == ('semidbm', 'dict')
    assert list(semidbm['workloads']) == ALL
    assert list(plain_dict['workloads']) == [w for w in ALL if w not in ('load', 'compact')]
    assert set(plain_dict['skipped_workloads']) == {'load', 'compact'}
    for result in (semidbm, plain_dict):
        for timing in result['workloads'].values():
            assert timing['ops'] == 200 and timing['seconds'] > 0
        assert result['peak_rss_bytes'] >= result['rss_after_data_bytes'] > 0
    assert semidbm['disk_bytes']['after_overwrite'] > semidbm['disk_bytes']['after_fill'] > 0
    assert semidbm['disk_bytes']['after_compact'] < semidbm['disk_bytes']['after_overwrite']
    assert run['command'] == 'scripts/benchmark --compare semidbm dict -n 200'
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


def test_best_of_rounds_takes_each_workloads_fastest_and_the_highest_peak():
    script = load_script()

    def result(fill, read, peak):
        return {'name': 'x', 'num_keys': 1, 'peak_rss_bytes': peak, 'rss_after_data_bytes': 1,
                'workloads': {'fill': {'ops_per_sec': fill}, 'read': {'ops_per_sec': read}}}

    best = script.best_of([result(10, 5, 100), result(7, 9, 300), result(8, 1, 200)])
    assert best['workloads'] == {'fill': {'ops_per_sec': 10}, 'read': {'ops_per_sec': 9}}
    assert (best['peak_rss_bytes'], best['rounds']) == (300, 3)
    failed = {'name': 'x', 'num_keys': 1, 'error': 'child exited with status 1'}
    assert script.best_of([result(1, 1, 1), failed]) is failed


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
    result, = json.loads(out.read_text())['runs'][0]['results']
    assert result['module'] == f'semidbm 0.5.1 ({peer})'
    assert list(result['workloads']) == ['fill_sequential']


def test_unknown_module_fails_in_single_mode(tmp_path):
    done = run_benchmark('-d', 'no_such_dbm_module', '-n', '10', '--progress', 'none',
                         cwd=tmp_path)
    assert done.returncode == 1
    assert "not run: ModuleNotFoundError: No module named 'no_such_dbm_module'" in done.stdout


@pytest.mark.parametrize('key_size', [2, 16])
def test_data_is_unique_sized_and_fixed_by_the_seed(key_size):
    script = load_script()
    data = script.Data(300, key_size, 7, seed=3)
    assert len(set(data.keys)) == 300 and {len(k) for k in data.keys} == {key_size}
    assert {len(v) for v in data.values} == {7}
    assert sorted(data.random_keys) == data.keys != data.random_keys
    assert data.keys == script.Data(300, key_size, 7, seed=3).keys
    assert data.keys != script.Data(300, key_size, 7, seed=4).keys
