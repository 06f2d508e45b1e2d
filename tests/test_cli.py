"""Promises about ``python -m semidbm``: output, exit status and stderr of every subcommand.

Each test that takes ``run`` runs twice: as a subprocess, ``python -m semidbm``, and in
this process through ``semidbm.cli.main`` (so that coverage sees it).  Progress on a
terminal, a closed pipe, and every console example in ``docs/cli.rst`` and
``docs/sharing.rst`` (run again and compared with the page) are subprocesses only.
"""
import argparse
import base64
import dbm.dumb
import doctest
import errno
import glob
import importlib
import io
import json
import os
import re
import runpy
import shutil
import subprocess
import sys

import pytest

import helpers
import semidbm
from semidbm import (cli, clibase, clicommands, climove, format, layout, lock, repair,
                     snapshot)
from semidbm.cli import ExitStatus

FRUIT = {b'apple': b'green', b'banana': b'yellow', b'cherry': b'red'}


def run_subprocess(*args, stdin=None, cwd=None, binary=False, check=None):
    """Run ``python -m semidbm ARGS``; return the CompletedProcess."""
    env = helpers.child_env(COLUMNS='80')
    result = subprocess.run(
        [sys.executable, '-m', 'semidbm', *args], input=stdin, capture_output=True,
        text=not binary, env=env, cwd=cwd, timeout=120)
    if check is not None:
        assert result.returncode == check, (result.stdout, result.stderr)
    return result


def run_in_process(*args, stdin=None, cwd=None, binary=False, check=None):
    """Run ``semidbm.cli.main(ARGS)`` here, with its own standard streams and cwd."""
    data = stdin.encode('utf-8') if isinstance(stdin, str) else (stdin or b'')
    streams = [io.TextIOWrapper(io.BytesIO(data), encoding='utf-8')] + [
        io.TextIOWrapper(io.BytesIO(), encoding='utf-8', write_through=True)
        for _ in range(2)]
    saved, here = (sys.stdin, sys.stdout, sys.stderr), os.getcwd()
    try:
        os.chdir(cwd or here)
        sys.stdin, sys.stdout, sys.stderr = streams
        status = cli.main(list(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        os.chdir(here)
    out, err = (stream.buffer.getvalue() for stream in streams[1:])
    if not binary:
        out, err = out.decode('utf-8'), err.decode('utf-8')
    result = subprocess.CompletedProcess(args, status, out, err)
    if check is not None:
        assert result.returncode == check, (result.stdout, result.stderr)
    return result


@pytest.fixture(params=[run_subprocess, run_in_process], ids=['subprocess', 'in-process'])
def run(request):
    """Runs the command line: as ``python -m semidbm`` (what users run), and in this
    process (so that coverage sees it)."""
    return request.param


def assert_one_line_error(result, status, *fragments):
    """Exit *status*, nothing on stdout, one line on stderr holding each fragment."""
    assert result.returncode == status, result
    assert result.stdout in ('', b'')
    stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    lines = stderr.splitlines()
    assert 'Traceback' not in stderr
    error_lines = [line for line in lines if ': error: ' in line]
    assert len(error_lines) == 1, stderr
    for fragment in fragments:
        assert fragment in error_lines[0], (fragment, stderr)
    return error_lines[0]


@pytest.fixture
def fruit(tmp_path):
    """A database holding :data:`FRUIT` (and some dead records), closed."""
    path = str(tmp_path / 'fruit.db')
    with semidbm.open(path, 'c') as db:
        db[b'apple'] = b'red'
        db.update(FRUIT)
        db[b'durian'] = b'smelly'
        del db[b'durian']
    return path


def offsets_in(path):
    """The offset of each record in the data file of the database *path*."""
    return helpers.record_offsets(helpers.data_bytes(path))


# -- the parser ------------------------------------------------------------------

SUBCOMMANDS = ['stat', 'check', 'repair', 'compact', 'get', 'set', 'delete', 'keys',
               'dump', 'load', 'migrate']


def test_help_lists_every_subcommand(run):
    result = run('--help', check=0)
    for name in SUBCOMMANDS:
        assert f'    {name} ' in result.stdout
    statuses = result.stdout.split('exit status:\n', 1)[1].splitlines()
    assert statuses == [f'  {status.value:<4} {status.meaning}' for status in ExitStatus]


@pytest.mark.parametrize('name', SUBCOMMANDS)
def test_every_subcommand_has_help(run, name):
    result = run(name, '--help', check=0)
    assert result.stdout.startswith(f'usage: semidbm {name} ')
    assert '--lock-timeout SECONDS' in result.stdout


@pytest.mark.parametrize('args', [
    pytest.param([], id='no command'),
    pytest.param(['frobnicate', 'x'], id='unknown command'),
    pytest.param(['get', 'x'], id='missing argument'),
    pytest.param(['stat', 'x', 'y'], id='extra argument'),
    pytest.param(['keys', '--hex', '--base64', 'x'], id='exclusive options'),
    pytest.param(['migrate', 'a', 'b'], id='migrate without --from or --to'),
    pytest.param(['migrate', '--from', 'dbm.dumb', '--to', 'dbm.dumb', 'a', 'b'],
                 id='migrate with both'),
    pytest.param(['stat', '--lock-timeout', 'soon', 'x'], id='bad number'),
])
def test_usage_errors_exit_2_with_usage(run, args, tmp_path):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith('usage: semidbm')
    assert ': error: ' in result.stderr and 'Traceback' not in result.stderr
    assert os.listdir(tmp_path) == []


def test_version(run):
    result = run('--version', check=0)
    assert result.stdout == f'semidbm {semidbm.__version__}\n'
    assert result.stderr == ''


def subparsers():
    parser = cli._parser()
    [action] = [action for action in parser._actions
                if isinstance(action, argparse._SubParsersAction)]
    return action.choices


@pytest.mark.parametrize('name', SUBCOMMANDS)
def test_every_argument_has_help_text(run, name):
    sub = subparsers()[name]
    shown = ' '.join(run(name, '--help', check=0).stdout.split())
    for action in sub._actions:
        assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
        assert ' '.join(action.help.split()) in shown.replace('%%', '%'), (name, action.dest)


def statuses_in_the_docs():
    with open(os.path.join(helpers.ROOT, 'docs', 'cli.rst'), encoding='utf-8') as f:
        text = f.read()
    table = text.split('.. the exit statuses', 1)[1].split('\n\n', 2)[1]
    return [int(line.split()[0]) for line in table.splitlines() if line[2:3].isdigit()]


def test_the_exit_statuses_are_defined_once_and_documented():
    assert statuses_in_the_docs() == [status.value for status in ExitStatus]
    assert len(set(ExitStatus)) == len(ExitStatus.__members__)  # no aliases
    assert ExitStatus.USAGE == 2  # argparse's


@pytest.mark.parametrize('before, after', [
    (['--lock-timeout', '0.2'], []),
    ([], ['--lock-timeout', '0.2']),
    (['--lock-timeout', '30'], ['--lock-timeout', '0.2']),  # the one after counts
])
def test_lock_timeout_before_or_after_the_subcommand(run, fruit, before, after):
    with semidbm.open(fruit, 'w'):
        result = run(*before, 'set', *after, fruit, 'a', 'b')
    assert_one_line_error(result, ExitStatus.LOCKED, '(waited 0.2 s)')


@pytest.mark.parametrize('before, after, encoding', [
    (['--hex'], [], 'hex'), ([], ['--hex'], 'hex'), (['--base64'], [], 'base64'),
    (['--hex'], ['--base64'], 'base64'), ([], [], 'text'),
])
def test_hex_and_base64_before_or_after_the_subcommand(run, fruit, before, after,
                                                       encoding):
    encode = {'hex': bytes.hex, 'text': bytes.decode,
              'base64': lambda data: base64.b64encode(data).decode()}[encoding]
    run(*before, 'set', *after, fruit, encode(b'kiwi'), encode(b'brown'), check=0)
    assert helpers.contents(fruit)[b'kiwi'] == b'brown'
    assert run(*before, 'get', *after, fruit, encode(b'kiwi'), check=0).stdout.strip() == (
        encode(b'brown'))
    listed = run(*before, 'keys', *after, fruit, check=0).stdout.splitlines()
    assert listed == [encode(key) for key in [*FRUIT, b'kiwi']]
    run(*before, 'delete', *after, fruit, encode(b'kiwi'), check=0)
    assert b'kiwi' not in helpers.contents(fruit)


def test_main_returns_the_exit_status_in_process(capsys):
    assert cli.main(['--help']) == 0
    assert 'usage: semidbm' in capsys.readouterr().out
    assert cli.main([]) == 2


def test_python_m_semidbm_runs_main(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['semidbm', '--help'])
    with pytest.raises(SystemExit) as info:
        runpy.run_module('semidbm', run_name='__main__')
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith('usage: semidbm')


def test_a_closed_pipe_in_process_is_exit_0(fruit, monkeypatch, capsys):
    def reader_gone(args):
        raise BrokenPipeError(32, 'Broken pipe')
    monkeypatch.setattr(clicommands, 'cmd_keys', reader_gone)
    assert cli.main(['keys', fruit]) == ExitStatus.OK
    assert capsys.readouterr().err == ''


def test_an_interrupt_is_one_line_and_exit_130(fruit, monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(clicommands, 'cmd_keys', interrupted)
    assert cli.main(['keys', fruit]) == 130
    assert capsys.readouterr().err == 'semidbm keys: interrupted\n'


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_throttled_and_cleared(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(clibase.time, 'monotonic', lambda: clock[0])
    terminal = Terminal()
    progress = clibase.Progress('copy', terminal)
    progress(1, 3)
    progress(2, 3)  # within 0.1 s of the last: not shown
    clock[0] += 0.2
    progress(3, 0)  # no total known: a count
    progress.finish()
    assert terminal.getvalue() == '\rcopy: 33% (1 of 3)\rcopy: 3\r\x1b[K'


def test_progress_is_silent_off_a_terminal():
    stream = io.StringIO()
    progress = clibase.Progress('copy', stream)
    progress(1, 3)
    progress.finish()
    assert stream.getvalue() == ''


def test_get_adds_a_newline_on_a_terminal_only(fruit, monkeypatch):
    class TerminalBytes(io.TextIOWrapper):
        def isatty(self):
            return True
    stdout = TerminalBytes(io.BytesIO(), encoding='utf-8', write_through=True)
    monkeypatch.setattr(sys, 'stdout', stdout)
    assert cli.main(['get', fruit, 'apple']) == 0
    assert stdout.buffer.getvalue() == b'green\n'


# -- get, set, delete, keys ----------------------------------------------------------

def test_set_creates_the_database_and_get_reads_it(run, path):
    assert run('set', path, 'ключ', 'значение', check=0).stdout == ''
    assert helpers.contents(path) == {'ключ'.encode(): 'значение'.encode()}
    result = run('get', path, 'ключ', binary=True, check=0)
    assert result.stdout == 'значение'.encode()  # exactly, no newline in a pipe


def test_get_writes_binary_values_unchanged(run, fruit):
    value = bytes(range(256)) + b'\n\r\n'
    with semidbm.open(fruit, 'w') as db:
        db[b'blob'] = value
    assert run('get', fruit, 'blob', binary=True, check=0).stdout == value


def test_get_of_several_keys_one_line_each_in_order(run, fruit):
    assert run('get', fruit, 'cherry', 'apple', check=0).stdout == 'red\ngreen\n'
    hexed = run('get', '--hex', fruit, b'cherry'.hex(), b'apple'.hex(), check=0).stdout
    assert hexed == f'{b"red".hex()}\n{b"green".hex()}\n'


def test_get_of_several_keys_with_one_missing_prints_the_others(run, fruit):
    result = run('get', fruit, 'apple', 'durian', 'cherry')
    assert result.returncode == ExitStatus.MISSING_KEY
    assert result.stdout == 'green\n\nred\n'  # the missing key's line is empty
    assert result.stderr == f"semidbm get: error: {fruit}: no key b'durian'\n"


def test_get_of_several_keys_with_a_damaged_value_says_damage(run, fruit):
    damage_the_value_of(fruit, b'banana')
    result = run('get', fruit, 'apple', 'banana', 'durian')
    assert result.returncode == ExitStatus.DAMAGED  # outranks the missing key
    assert result.stdout == 'green\n\n\n'
    assert 'checksum mismatch' in result.stderr and "no key b'durian'" in result.stderr


def test_get_of_several_keys_prints_none_if_one_is_not_a_line(run, fruit):
    with semidbm.open(fruit, 'w') as db:
        db[b'poem'] = b'two\nlines'
    assert_one_line_error(run('get', fruit, 'apple', 'poem'), ExitStatus.FAILURE,
                          "the value of b'poem' is not one line of UTF-8 text; use --hex")
    assert run('get', '--base64', fruit, 'YXBwbGU=', 'cG9lbQ==', check=0).stdout == (
        'Z3JlZW4=\ndHdvCmxpbmVz\n')


def test_get_of_one_missing_key_in_hex_prints_nothing(run, fruit):
    assert_one_line_error(run('get', '--hex', fruit, '00'), ExitStatus.MISSING_KEY,
                          "no key b'\\x00'")


BIG = bytes(range(256)) * 800  # 200 KB: "Argument list too long" on the command line


def test_set_from_standard_input_is_binary_safe(run, path):
    run('set', path, 'blob', '-', stdin=BIG, binary=True, check=0)
    assert helpers.contents(path) == {b'blob': BIG}
    assert run('get', path, 'blob', binary=True, check=0).stdout == BIG


def test_set_from_a_file(run, path, tmp_path):
    value = tmp_path / 'value.bin'
    value.write_bytes(BIG)
    run('set', '--hex', path, '00ff', '--file', str(value), check=0)  # stored as it is
    assert helpers.contents(path) == {b'\x00\xff': BIG}


def test_set_of_the_value_dash_itself(run, path):
    run('set', '--hex', path, b'k'.hex(), b'-'.hex(), check=0)
    assert helpers.contents(path) == {b'k': b'-'}


@pytest.mark.parametrize('args, why', [
    (['k', 'v', '--file', 'f'], 'give VALUE or --file FILE, not both'),
    (['k'], "give VALUE, '-' for standard input, or --file FILE"),
])
def test_set_needs_one_value(run, tmp_path, args, why):
    result = run('set', 'db', *args, cwd=tmp_path)
    assert result.returncode == ExitStatus.USAGE
    assert result.stderr.startswith('usage: semidbm set ')
    assert f'semidbm set: error: {why}' in result.stderr
    assert os.listdir(tmp_path) == []


def test_set_from_a_missing_file(run, tmp_path):
    assert_one_line_error(run('set', 'db', 'k', '--file', 'nope', cwd=tmp_path),
                          ExitStatus.FAILURE, 'No such file or directory', 'nope')
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('encoding, encode', [
    ('--hex', bytes.hex),
    ('--base64', lambda data: base64.b64encode(data).decode()),
])
def test_hex_and_base64_for_binary_keys_and_values(run, fruit, encoding, encode):
    key, value = b'\x00\xffkey\n', b'\x01\x02'
    run('set', encoding, fruit, encode(key), encode(value), check=0)
    assert helpers.contents(fruit)[key] == value
    assert run('get', encoding, fruit, encode(key), check=0).stdout == encode(value) + '\n'
    listed = run('keys', encoding, fruit, check=0).stdout.splitlines()
    assert listed == [encode(k) for k in [b'apple', b'banana', b'cherry', key]]
    run('delete', encoding, fruit, encode(key), check=0)
    assert key not in helpers.contents(fruit)


@pytest.mark.parametrize('args, what', [
    (['get', '--hex', '{path}', 'zz'], "the key 'zz' is not valid hex"),
    (['set', '--base64', '{path}', 'YQ==', '!!'], "the value '!!' is not valid base64"),
])
def test_a_badly_encoded_argument_is_a_usage_error(run, fruit, args, what):
    before = helpers.data_bytes(fruit)
    result = run(*[arg.format(path=fruit) for arg in args])
    assert result.returncode == 2
    assert result.stderr.startswith(f'usage: semidbm {args[0]} ')
    assert f'semidbm {args[0]}: error: {what}' in result.stderr
    assert helpers.data_bytes(fruit) == before


def test_keys_lists_text_keys_one_a_line(run, fruit):
    assert run('keys', fruit, check=0).stdout == 'apple\nbanana\ncherry\n'


@pytest.mark.parametrize('key', [b'\xff\xfe', b'two\nlines'])
def test_keys_refuses_a_key_that_is_not_one_line_of_text_printing_none(run, fruit, key):
    """Not half a listing and then an error: a script would take it for all."""
    with semidbm.open(fruit, 'w') as db:
        db[key] = b'x'
        db.update((b'after%d' % n, b'x') for n in range(1000))
    assert_one_line_error(run('keys', fruit), ExitStatus.FAILURE,
                          f'the key {key!r} is not one line of UTF-8 text; use --hex '
                          'or --base64')


def test_get_of_a_missing_key_has_its_exit_status(run, fruit):
    assert_one_line_error(run('get', fruit, 'durian'), ExitStatus.MISSING_KEY,
                          f"semidbm get: error: {fruit}: no key b'durian'")


def test_delete_removes_the_key_for_good(run, fruit):
    run('delete', fruit, 'banana', check=0)
    assert helpers.contents(fruit) == {b'apple': b'green', b'cherry': b'red'}
    assert_one_line_error(run('delete', fruit, 'banana'), ExitStatus.MISSING_KEY,
                          "no key b'banana'")


@pytest.mark.parametrize('args', [['get', '{path}', 'k'], ['keys', '{path}'],
                                  ['delete', '{path}', 'k'], ['stat', '{path}'],
                                  ['check', '{path}'], ['repair', '{path}'],
                                  ['compact', '{path}'], ['dump', '{path}']])
def test_a_missing_database_is_one_line_and_exit_1(run, path, args):
    result = run(*[arg.format(path=path) for arg in args])
    assert_one_line_error(result, ExitStatus.FAILURE, path, 'no semidbm database here')
    assert not os.path.exists(path)


def test_a_damaged_database_is_one_line_and_its_exit_status(run, path):
    helpers.write_data(path, b'not a semidbm file at all')
    assert_one_line_error(run('keys', path), ExitStatus.DAMAGED, 'not a semidbm data file')


# -- stat ---------------------------------------------------------------------------------

def stat_lines(run, path):
    result = run('stat', path, check=0)
    return dict(line.split(':', 1) for line in result.stdout.splitlines())


def test_stat_counts_live_and_dead_bytes(run, fruit):
    size = len(helpers.data_bytes(fruit))
    live = len(helpers.records(*FRUIT.items()))
    stats = {key: value.strip() for key, value in stat_lines(run, fruit).items()}
    assert stats == {
        'path': fruit, 'format': '1.1', 'keys': '3', 'file size': f'{size} bytes',
        'live bytes': f'{live} bytes', 'dead bytes': f'{size - live} bytes',
        'reclaimable': f'{(size - live) / size:.1%} (by compact)', 'snapshot': 'none'}
    run('compact', fruit, check=0)
    assert len(helpers.data_bytes(fruit)) == live  # what stat said compact would leave


def json_keys_in_the_docs(command):
    """The keys the table after ``.. the keys of COMMAND --json`` in docs/cli.rst names."""
    with open(os.path.join(helpers.ROOT, 'docs', 'cli.rst'), encoding='utf-8') as f:
        text = f.read()
    table = text.split(f'.. the keys of {command} --json', 1)[1].split('\n\n', 2)[1]
    return re.findall(r'^``(\w+)``', table, re.MULTILINE)


def test_stat_json_is_what_stats_reports(run, fruit):
    with semidbm.open(fruit, 'r') as db:
        stats = db.stats()
    del stats['readers']  # this process, and then stat's own
    result = run('stat', '--json', fruit, check=0)
    printed = json.loads(result.stdout)
    assert list(printed) == json_keys_in_the_docs('stat')
    assert len(printed.pop('readers')) == 1
    assert printed == stats


def test_stat_json_of_a_database_with_a_writer(run, fruit):
    with semidbm.open(fruit, 'w') as db:
        db[b'kiwi'] = b'brown'
        printed = json.loads(run('stat', '--json', fruit, check=0).stdout)
    assert printed['writers'] == [os.getpid()] and printed['keys'] == 4


def test_check_json_is_what_the_check_reports(run, fruit):
    offsets = offsets_in(fruit)
    flip_a_byte(fruit, offsets[2] + format.RECORD_HEAD.size + 7)  # banana's value
    report = repair.check(fruit)
    result = run('check', '--json', fruit)
    assert result.returncode == ExitStatus.DAMAGED and result.stderr == ''
    printed = json.loads(result.stdout)
    assert list(printed) == json_keys_in_the_docs('check')
    [damage] = report.damage
    assert printed == {
        'filename': report.filename, 'size': report.size, 'format': '1.1', 'ok': False,
        'records': report.records, 'pad': 0, 'durable_end': report.durable_end,
        'unsynced': None, 'leftover': None, 'kept': [],
        'damage': [{'start': damage.start, 'stop': damage.stop, 'reason': damage.reason,
                    'key_base64': base64.b64encode(b'banana').decode()}]}


def test_check_json_of_a_good_database_and_of_a_torn_tail(run, fruit):
    printed = json.loads(run('check', '--json', fruit, check=0).stdout)
    assert printed['ok'] is True and printed['damage'] == []
    data = helpers.data_bytes(fruit)
    torn = format.encode_put(b'late', b'value')[:-3]
    helpers.write_data(fruit, data + torn)
    printed = json.loads(run('check', '--json', fruit, check=0).stdout)
    assert printed['unsynced'] == {'start': len(data), 'stop': len(data) + len(torn)}


def test_check_json_of_a_file_that_is_not_semidbm(run, path):
    helpers.write_data(path, b'GARBAGE!' + b'x' * 40)
    result = run('check', '--json', path)
    assert result.returncode == ExitStatus.DAMAGED
    printed = json.loads(result.stdout)
    assert printed['format'] is None and printed['damage'][0]['key_base64'] is None


def big_database(path):
    with semidbm.open(path, 'c') as db:
        db.update((b'key%d' % n, b'value') for n in range(snapshot.MIN_KEYS))
    assert os.path.exists(os.path.join(path, layout.SNAPSHOT))


def test_stat_tells_a_fresh_snapshot(run, path):
    big_database(path)
    assert stat_lines(run, path)['snapshot'].strip() == (
        f'fresh ({snapshot.MIN_KEYS} keys, covers the whole data file)')


def test_stat_tells_a_partial_snapshot(run, path):
    """Records appended after the snapshot was taken (by 0.5.1, say)."""
    big_database(path)
    covered = len(helpers.data_bytes(path))
    helpers.write_data(path, helpers.data_bytes(path) + format.encode_put(b'late', b'record'))
    assert stat_lines(run, path)['snapshot'].strip().startswith(
        f'partial (covers {covered} of {covered + format.record_size(4, 6)} bytes')


def test_stat_tells_a_snapshot_that_does_not_fit(run, path):
    big_database(path)
    with open(os.path.join(path, layout.SNAPSHOT), 'r+b') as f:
        f.write(b'garbage!')
    assert stat_lines(run, path)['snapshot'].strip().startswith('not valid for this data file')


# -- check ---------------------------------------------------------------------------------

def test_check_of_a_good_database(run, fruit):
    result = run('check', fruit, check=0)
    records = len(offsets_in(fruit))
    assert result.stdout == (f'{fruit}/data: {records} good records in '
                             f'{len(helpers.data_bytes(fruit))} bytes\nok\n')
    assert result.stderr == ''


def flip_a_byte(path, offset):
    data = bytearray(helpers.data_bytes(path))
    data[offset] ^= 0x40
    helpers.write_data(path, bytes(data))


def test_check_reports_the_first_bad_record_its_key_and_the_good_ones(run, fruit):
    offsets = offsets_in(fruit)
    flip_a_byte(fruit, offsets[2] + format.RECORD_HEAD.size + 7)  # in its value
    result = run('check', fruit)
    assert result.returncode == ExitStatus.DAMAGED
    lines = result.stdout.splitlines()
    assert lines[0] == (f'{fruit}/data: {len(offsets) - 1} good records in '
                        f'{len(helpers.data_bytes(fruit))} bytes')
    assert lines[1] == (f"damage at offset {offsets[2]}, key b'banana': a checksum "
                        f'mismatch ({offsets[3] - offsets[2]} bytes)')
    assert lines[-1] == f'damaged; recover the good records with: python -m semidbm ' \
                        f'repair {fruit}'


def test_check_reports_a_torn_tail_of_unsynced_writes_as_recoverable(run, fruit):
    data = helpers.data_bytes(fruit)
    torn = format.encode_put(b'late', b'value')[:-3]
    helpers.write_data(fruit, data + torn)
    result = run('check', fruit, check=0)
    assert f'recoverable: the {len(torn)} bytes from offset {len(data)} are writes' in (
        result.stdout)
    assert 'damage' not in result.stdout.replace('(not damage)', '')
    assert result.stdout.endswith('ok\n')


def test_check_reports_a_torn_tail_of_a_file_with_no_sync_mark_as_damage(run, fruit):
    """Written by semidbm 0.5.1, say: nothing tells what was durable."""
    os.remove(os.path.join(fruit, layout.SYNCED))
    data = helpers.data_bytes(fruit)
    helpers.write_data(fruit, data + format.encode_put(b'late', b'value')[:-3])
    result = run('check', fruit)
    assert result.returncode == ExitStatus.DAMAGED
    assert f'damage at offset {len(data)}: a torn tail' in result.stdout


@pytest.mark.parametrize('marked', [True, False], ids=['with its sync mark', 'by 0.5.1'])
def test_check_says_pad_is_no_damage(run, fruit, marked):
    if not marked:
        os.remove(os.path.join(fruit, layout.SYNCED))
    helpers.write_data(fruit, helpers.data_bytes(fruit) + format.PAD_BYTE * 1000)
    result = run('check', fruit, check=0)
    assert '1000 bytes of pad at the end' in result.stdout
    assert result.stdout.endswith('ok\n')


def test_check_of_a_file_that_is_not_semidbm(run, path):
    helpers.write_data(path, b'GARBAGE!' + b'x' * 40)
    result = run('check', path)
    assert result.returncode == ExitStatus.DAMAGED
    assert 'damage at offset 0: ' in result.stdout and 'not a semidbm data file' in (
        result.stdout)


def test_check_reports_at_most_ten_stretches(run, path):
    with semidbm.open(path, 'c') as db:
        db.update((b'k%02d' % n, b'v' * 20) for n in range(30))
    for offset in offsets_in(path)[::2]:
        flip_a_byte(path, offset + format.RECORD_HEAD.size + 5)
    result = run('check', path)
    assert result.returncode == ExitStatus.DAMAGED
    assert result.stdout.count('damage at offset') == 10
    assert '... and 5 more damaged stretches' in result.stdout


# -- repair -------------------------------------------------------------------------------

def kept_copies(path):
    return sorted(glob.glob(os.path.join(path, 'data.corrupt-*')))


def test_repair_of_a_good_database_changes_nothing(run, fruit):
    before = helpers.tree_state(fruit)
    result = run('repair', fruit, check=0)
    assert result.stdout.endswith('no damage; nothing to repair\n')
    assert helpers.tree_state(fruit) == before


def test_repair_skips_a_bad_record_in_the_middle_and_keeps_the_original(run, fruit):
    offsets = offsets_in(fruit)
    flip_a_byte(fruit, offsets[3] + format.RECORD_HEAD.size + 8)  # cherry's value
    damaged = helpers.data_bytes(fruit)
    result = run('repair', fruit, check=0)
    assert f"damage at offset {offsets[3]}, key b'cherry'" in result.stdout
    assert f'recovered {len(offsets) - 1} records' in result.stdout
    [kept] = kept_copies(fruit)
    assert f'the original is kept as {kept}' in result.stdout
    with open(kept, 'rb') as f:
        assert f.read() == damaged
    assert helpers.contents(fruit) == {b'apple': b'green', b'banana': b'yellow'}
    assert run('check', fruit, check=0).stdout.endswith('ok\n')


def test_repair_resyncs_after_garbage_inserted_in_the_middle(run, fruit):
    offsets = offsets_in(fruit)
    data = helpers.data_bytes(fruit)
    helpers.write_data(fruit, data[:offsets[2] + 5] + b'junk bytes' + data[offsets[2] + 5:])
    run('repair', fruit, check=0)
    # banana's put is lost: its older value... there is none, apple's overwrite stays
    assert helpers.contents(fruit) == {b'apple': b'green', b'cherry': b'red'}


def test_repair_cuts_a_torn_tail(run, fruit):
    data = helpers.data_bytes(fruit)
    helpers.write_data(fruit, data + format.encode_put(b'late', b'value')[:-2])
    run('repair', fruit, check=0)
    assert helpers.data_bytes(fruit) == data
    assert len(kept_copies(fruit)) == 1


def test_repair_twice_keeps_both_originals(run, fruit):
    for _ in range(2):
        flip_a_byte(fruit, offsets_in(fruit)[0] + format.RECORD_HEAD.size)
        run('repair', fruit, check=0)
    assert len(kept_copies(fruit)) == 2


def test_repair_refuses_a_file_with_nothing_of_semidbm(run, path):
    helpers.write_data(path, b'GARBAGE!' * 10)
    before = helpers.tree_state(path)
    assert_one_line_error(run('repair', path), 1, 'not a semidbm data file',
                          'nothing was changed')
    assert helpers.tree_state(path) == before


def test_repair_finds_the_next_record_after_a_damaged_size_field(run, path):
    with semidbm.open(path, 'c') as db:
        db.update({b'a': b'1' * 200, b'b': b'2' * 200, b'c': b'3' * 200})
    offsets = offsets_in(path)
    flip_a_byte(path, offsets[1] + format.RECORD_HEAD.size - 1)  # b's size: 200 -> 136
    result = run('repair', path, check=0)
    assert (f"damage at offset {offsets[1]}, key b'b': a checksum mismatch "
            f'({offsets[2] - offsets[1]} bytes)') in result.stdout
    assert helpers.contents(path) == {b'a': b'1' * 200, b'c': b'3' * 200}


def test_a_failed_repair_changes_nothing(fruit, monkeypatch):
    flip_a_byte(fruit, offsets_in(fruit)[3] + format.RECORD_HEAD.size)
    before = helpers.tree_state(fruit)

    def disk_full(fd, data, offset=None):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(layout, 'write_all', disk_full)
    assert_one_line_error(run_in_process('repair', fruit), 1, 'No space left on device')
    assert helpers.tree_state(fruit) == before


def test_repair_copies_the_original_where_there_are_no_hard_links(fruit, monkeypatch):
    flip_a_byte(fruit, offsets_in(fruit)[3] + format.RECORD_HEAD.size)
    damaged = helpers.data_bytes(fruit)

    def no_links(source, target):
        raise OSError(errno.EPERM, 'Operation not permitted')
    monkeypatch.setattr(repair.os, 'link', no_links)
    run_in_process('repair', fruit, check=0)
    [kept] = kept_copies(fruit)
    with open(kept, 'rb') as f:
        assert f.read() == damaged
    assert os.stat(kept).st_ino != os.stat(helpers.data_path(fruit)).st_ino


@pytest.mark.parametrize('data', [b'', b'SEMI'], ids=['empty', 'shorter than a header'])
def test_check_and_repair_of_a_file_too_short_for_a_header(run, path, data):
    helpers.write_data(path, data)
    result = run('check', path)
    assert result.returncode == ExitStatus.DAMAGED
    assert 'damage at offset 0: ' in result.stdout and 'too short' in result.stdout
    assert_one_line_error(run('repair', path), 1, 'nothing was changed')


def test_damage_says_what_it_is():
    damage = repair.Damage(8, 30, b'key', 'a checksum mismatch')
    assert repr(damage) == "<Damage 8-30 key=b'key': a checksum mismatch>"


def test_repair_keeps_records_after_a_damaged_header(run, fruit):
    flip_a_byte(fruit, 0)
    run('repair', fruit, check=0)
    assert helpers.contents(fruit) == FRUIT


# -- compact ------------------------------------------------------------------------------

def test_compact(run, fruit):
    before = len(helpers.data_bytes(fruit))
    result = run('compact', fruit, check=0)
    after = len(helpers.data_bytes(fruit))
    assert after < before
    assert result.stdout == f'compacted 3 keys: {before} -> {after} bytes\n'
    assert helpers.contents(fruit) == FRUIT


# -- dump and load ------------------------------------------------------------------------

def test_dump_is_base64_json_lines(run, fruit):
    result = run('dump', fruit, check=0)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {base64.b64decode(line['key_base64']): base64.b64decode(line['value_base64'])
            for line in lines} == FRUIT


def test_dump_text_leaves_what_is_not_utf8_in_base64(run, fruit):
    with semidbm.open(fruit, 'w') as db:
        db[b'\xff'] = 'ü'.encode()
    lines = run('dump', '--text', fruit, check=0).stdout.splitlines()
    assert lines[0] == '{"key": "apple", "value": "green"}'
    assert lines[-1] == '{"key_base64": "/w==", "value": "ü"}'


@pytest.mark.parametrize('text', [False, True], ids=['base64', 'text'])
def test_dump_then_load_round_trips_every_byte(run, tmp_path, text):
    source, copy = str(tmp_path / 'source.db'), str(tmp_path / 'copy.db')
    data = {bytes([n]) * (n % 5 + 1): bytes(range(n)) for n in range(256)}
    data[b''] = b''
    with semidbm.open(source, 'c') as db:
        db.update(data)
    dump = run('dump', *(['--text'] if text else []), source, check=0).stdout
    result = run('load', copy, stdin=dump, check=0)
    assert result.stderr == f'loaded {len(data)} records into {copy}\n'
    assert helpers.contents(copy) == data


def test_load_from_a_file_in_batches(run, tmp_path, path):
    dump = tmp_path / 'dump.jsonl'
    dump.write_text(''.join(json.dumps({'key': f'k{n}', 'value': 'v'}) + '\n'
                            for n in range(climove._BATCH + 5)) + '\n')
    run('load', path, str(dump), check=0)
    assert len(helpers.contents(path)) == climove._BATCH + 5


def assert_load_refused(result, name, bad):
    """Exit status 1, each of *bad* (``{line number: why}``) reported as
    ``NAME:LINE: why``, then one error line; no traceback."""
    assert result.returncode == ExitStatus.FAILURE, result
    assert result.stdout == ''
    *reported, last = result.stderr.splitlines()
    assert reported == [f'{name}:{number}: {why}' for number, why in bad.items()]
    assert last == (f'semidbm load: error: {len(bad)} bad line{"s" * (len(bad) > 1)} '
                    f'in {name}; nothing was loaded (a load stores every line or none)')


BAD_LINES = [
    # The message is the interpreter's json module's: PyPy's reads 'n' as the start of null.
    ('not json', 'not JSON: Error when decoding null at column 2' if helpers.PYPY
     else 'not JSON: Expecting value at column 1'),
    ('{"key": "k"}', 'no "value", "value_base64" or "value_hex"'),
    ('{"value": "v"}', 'no "key", "key_base64" or "key_hex"'),
    ('{"key_base64": "!!", "value": "v"}', '"key_base64" is not valid base64'),
    ('{"key": "k", "value_hex": "abc"}', '"value_hex" is not valid hex'),
    ('[1, 2]', 'not a JSON object but [1, 2]'),
    ('"text"', 'not a JSON object but "text"'),
    ('{"key": "b", "value": 2}', '"value" is not a string but 2'),
    ('{"key": null, "value": "v"}', '"key" is not a string but null'),
    ('{"key": "k", "value": ["a very long list", "that is cut short", "here"]}',
     '"value" is not a string but ["a very long list", "that is cut sho...'),
    ('{"key": "a", "key_hex": "61", "value": "v"}', 'both "key" and "key_hex"'),
    ('{"key": "a", "value": "v", "vaule": "w"}', "unknown field 'vaule' (a line has "
     '"key" and "value", as text, or with the suffix _base64 or _hex)'),
    ('{"key": "\\ud800", "value": "v"}', '"key" is not text that UTF-8 can encode'),
    ('[' * 100000, 'not JSON that can be read: nested too deep'),
    ('{"key": "\udcff", "value": "v"}', 'not UTF-8 text'),
]


@pytest.mark.parametrize('line, why', BAD_LINES, ids=[why[:30] for _, why in BAD_LINES])
def test_load_checks_every_line_first_and_loads_nothing_if_one_is_bad(
        run, tmp_path, path, line, why):
    dump = tmp_path / 'dump.jsonl'
    dump.write_bytes(b'{"key": "a", "value": "1"}\n' + line.encode('utf-8', 'surrogateescape')
                     + b'\n{"key": "b", "value": "2"}\n')
    assert_load_refused(run('load', path, str(dump)), str(dump), {2: why})
    assert not os.path.exists(path)  # not even an empty database


def test_a_refused_load_leaves_the_database_as_it_was(run, fruit, tmp_path):
    """The issue's case: the lines before a bad one were stored; none is now."""
    dump = tmp_path / 'dump.jsonl'
    dump.write_text('{"key": "a", "value": "1"}\n{"key": "b", "value": 2}\n')
    before = helpers.tree_state(fruit)
    assert_load_refused(run('load', fruit, str(dump)), str(dump),
                        {2: '"value" is not a string but 2'})
    assert helpers.tree_state(fruit) == before


def test_load_reports_every_bad_line_up_to_ten(run, tmp_path, path):
    lines = ['{"key": "k%d", "value": %d}' % (n, n) if n % 2 else
             '{"key": "k%d", "value": "%d"}' % (n, n) for n in range(30)]
    dump = tmp_path / 'dump.jsonl'
    dump.write_text('\n'.join(lines) + '\n')
    result = run('load', path, str(dump))
    assert result.returncode == ExitStatus.FAILURE
    *reported, last = result.stderr.splitlines()
    assert reported == [f'{dump}:{n + 1}: "value" is not a string but {n}'
                        for n in range(1, 21, 2)]
    assert last == (f'semidbm load: error: 15 bad lines in {dump} (the first 10 above); '
                    f'nothing was loaded (a load stores every line or none)')


def test_load_from_standard_input_is_all_or_nothing_too(run, path):
    bad = '{"key": "a", "value": "1"}\n\n{"key": "b"}\n'
    assert_load_refused(run('load', path, stdin=bad), '<stdin>',
                        {3: 'no "value", "value_base64" or "value_hex"'})
    assert not os.path.exists(path)
    good = ''.join(json.dumps({'key': f'k{n}', 'value': 'v'}) + '\n'
                   for n in range(climove._BATCH + 5))
    result = run('load', path, '-', stdin=good, check=0)
    assert result.stderr == f'loaded {climove._BATCH + 5} records into {path}\n'
    assert len(helpers.contents(path)) == climove._BATCH + 5


@pytest.mark.skipif(not hasattr(os, 'mkfifo'), reason='no named pipes')
def test_load_from_a_named_pipe_reads_it_once(tmp_path, path):
    """A FILE that cannot be read twice is copied as it is checked."""
    fifo = str(tmp_path / 'fifo')
    os.mkfifo(fifo)
    process = subprocess.Popen([sys.executable, '-m', 'semidbm', 'load', path, fifo],
                               stderr=subprocess.PIPE, text=True, env=helpers.child_env())
    with open(fifo, 'w') as f:
        f.write('{"key": "a", "value": "1"}\n{"key_hex": "00", "value_hex": "ff"}\n')
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == f'loaded 2 records into {path}\n'
    process.stderr.close()
    assert helpers.contents(path) == {b'a': b'1', b'\x00': b'\xff'}


def test_lines_appended_after_the_check_are_not_loaded(tmp_path, path, monkeypatch):
    dump = tmp_path / 'dump.jsonl'
    dump.write_text('{"key": "a", "value": "1"}\n')
    check_lines = climove._check_lines

    def check_then_append(lines, name, progress, known):
        size = check_lines(lines, name, progress, known)
        with open(dump, 'a') as f:
            f.write('{"key": "b", "value": 2}\n')
        return size
    monkeypatch.setattr(climove, '_check_lines', check_then_append)
    run_in_process('load', path, str(dump), check=0)
    assert helpers.contents(path) == {b'a': b'1'}


def test_a_dump_that_changes_between_the_passes_is_refused(tmp_path, path, monkeypatch):
    """Checked, then changed before it is read again (another process wrote it)."""
    dump = tmp_path / 'dump.jsonl'
    dump.write_text('{"key": "a", "value": "1"}\n{"key": "b", "value": "2"}\n')

    def check_then_spoil(lines, name, progress, known):
        size = sum(len(line) for line in lines)
        dump.write_text('{"key": "a", "value": "1"}\n{"key": "b", "value": 2}\n')
        return size
    monkeypatch.setattr(climove, '_check_lines', check_then_spoil)
    assert_one_line_error(run_in_process('load', path, str(dump)), ExitStatus.FAILURE,
                          f'{dump}:2: the dump changed while it was loaded')


@pytest.mark.parametrize('options', [['--hex'], ['--text', '--hex'], ['--base64']])
def test_dump_in_hex_loads_back(run, fruit, tmp_path, options):
    copy = str(tmp_path / 'copy.db')
    with semidbm.open(fruit, 'w') as db:
        db[b'\x00\xff'] = b'\xfe'
    dump = run('dump', *options, fruit, check=0).stdout
    fields = set().union(*(json.loads(line) for line in dump.splitlines()))
    binary = '_base64' if '--base64' in options else '_hex'
    assert fields == ({'key', 'value', 'key' + binary, 'value' + binary}
                      if '--text' in options else {'key' + binary, 'value' + binary})
    run('load', copy, stdin=dump, check=0)
    assert helpers.contents(copy) == helpers.contents(fruit)


def test_load_of_a_missing_file(run, tmp_path, path):
    assert_one_line_error(run('load', path, str(tmp_path / 'nope')), 1,
                          'No such file or directory')


# -- migrate ------------------------------------------------------------------------------

def foreign_modules():
    names = []
    for name in ['dbm.dumb', 'dbm.gnu', 'dbm.ndbm', 'dbm.sqlite3']:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        names.append(name)
    return names


@pytest.mark.parametrize('module', foreign_modules())
def test_migrate_into_semidbm_and_back_out(run, tmp_path, fruit, module):
    foreign = str(tmp_path / 'foreign')
    back = str(tmp_path / 'back.db')
    result = run('migrate', '--to', module, fruit, foreign, check=0)
    assert result.stderr == f'copied 3 keys from {fruit} to {foreign}\n'
    with importlib.import_module(module).open(foreign, 'r') as db:
        assert {key: db[key] for key in db.keys()} == FRUIT
    run('migrate', '--from', module, foreign, back, check=0)
    assert helpers.contents(back) == FRUIT


def test_migrate_with_the_generic_dbm_module_guesses_the_kind(run, tmp_path, fruit):
    foreign, back = str(tmp_path / 'foreign'), str(tmp_path / 'back.db')
    run('migrate', '--to', 'dbm.dumb', fruit, foreign, check=0)
    run('migrate', '--from', 'dbm', foreign, back, check=0)
    assert helpers.contents(back) == FRUIT


@pytest.mark.parametrize('module, why', [
    ('no.such.module', "cannot import the dbm module 'no.such.module'"),
    ('json', "'json' has no open() and no error: not a dbm module"),
])
def test_migrate_from_something_not_a_dbm_module_is_a_usage_error(run, tmp_path, module, why):
    result = run('migrate', '--from', module, 'a', 'b', cwd=tmp_path)
    assert result.returncode == 2
    assert f'semidbm migrate: error: {why}' in result.stderr
    assert os.listdir(tmp_path) == []


def write_module(directory, name, source):
    """A module *name* that ``python -m semidbm`` run in *directory* can import."""
    (directory / f'{name}.py').write_text(source)


@pytest.mark.parametrize('module, why', [
    ('shelve', "'shelve' has no error: not a dbm module"),
    ('os', "os.open('out', 'c') failed"),
    ('notdbm', "notdbm.open() gave int, not a mapping: not a dbm module"),
    ('closable', "closable.open() gave Handle, not a mapping: not a dbm module"),
    ('noerror', "'noerror' has no error: not a dbm module"),
])
@pytest.mark.parametrize('direction', ['--to', '--from'])
def test_migrate_refuses_a_module_that_is_not_like_dbm(run, tmp_path, fruit, module, why,
                                                        direction, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))  # in-process; a subprocess has its cwd
    write_module(tmp_path, 'notdbm', 'class error(Exception): pass\n'
                 'def open(path, flag="r"): return 42\n')
    write_module(tmp_path, 'closable', 'error = OSError\n'
                 'class Handle:\n    def close(self): pass\n'
                 'def open(path, flag="r"): return Handle()\n')
    write_module(tmp_path, 'noerror', 'error = "not an exception"\n'
                 'def open(path, flag="r"): return {}\n')
    src, dest = ('fruit.db', 'out') if direction == '--to' else ('out', 'fruit.db')
    why = why.replace("'out', 'c'", "'out', 'r'") if direction == '--from' else why
    before = set(os.listdir(tmp_path)), helpers.tree_state(fruit)
    result = run('migrate', direction, module, src, dest, cwd=tmp_path)
    assert result.returncode == ExitStatus.USAGE
    assert result.stderr.startswith('usage: semidbm migrate ')
    assert f'semidbm migrate: error: {why}' in result.stderr
    assert 'Traceback' not in result.stderr
    assert (set(os.listdir(tmp_path)), helpers.tree_state(fruit)) == before


@pytest.mark.parametrize('src, dest', [
    ('fruit.db', 'fruit.db'), ('fruit.db', './fruit.db'), ('fruit.db', '{abs}'),
    ('link.db', 'fruit.db'),
])
@pytest.mark.parametrize('direction', ['--to', '--from'])
def test_migrate_refuses_to_copy_a_database_onto_itself(run, tmp_path, fruit, src, dest,
                                                        direction):
    os.symlink(fruit, tmp_path / 'link.db')
    before = helpers.tree_state(fruit)
    result = run('migrate', direction, 'dbm', src, dest.format(abs=fruit), cwd=tmp_path)
    assert result.returncode == ExitStatus.USAGE
    assert (f'semidbm migrate: error: SRC and DEST are the same database ({src}); copy '
            f'it to another path') in result.stderr
    assert helpers.tree_state(fruit) == before
    assert sorted(os.listdir(tmp_path)) == ['fruit.db', 'link.db']


def test_migrate_refuses_two_names_of_one_file(run, tmp_path):
    """Hard links: two paths, one file (a dbm.gnu or dbm.sqlite3 database is one)."""
    (tmp_path / 'one').write_bytes(b'')
    os.link(tmp_path / 'one', tmp_path / 'two')
    result = run('migrate', '--to', 'dbm', 'one', 'two', cwd=tmp_path)
    assert result.returncode == ExitStatus.USAGE
    assert 'SRC and DEST are the same database (one)' in result.stderr


def test_migrate_from_a_missing_database(run, tmp_path):
    assert_one_line_error(run('migrate', '--from', 'dbm', 'nope', 'b', cwd=tmp_path), 1,
                          "dbm cannot open 'nope'")
    assert os.listdir(tmp_path) == []


def test_migrate_to_a_missing_semidbm_database(run, tmp_path, path):
    assert_one_line_error(
        run('migrate', '--to', 'dbm.dumb', path, 'out', cwd=tmp_path), 1,
        'no semidbm database here')
    assert os.listdir(tmp_path) == []


# -- locks ------------------------------------------------------------------------------

@pytest.mark.parametrize('args', [['set', '{path}', 'a', 'b'], ['check', '{path}'],
                                  ['repair', '{path}'], ['compact', '{path}']])
def test_a_locked_database_is_refused_naming_the_holder(run, fruit, args):
    before = helpers.data_bytes(fruit)
    with semidbm.open(fruit, 'w'):
        result = run(*[arg.format(path=fruit) for arg in args])
    assert_one_line_error(result, ExitStatus.LOCKED, f'locked by pid {os.getpid()}',
                          '--lock-timeout')
    assert helpers.data_bytes(fruit) == before


# -- each interface gives its own hint ------------------------------------------------

def test_the_library_says_what_to_do_in_its_own_words(fruit, path):
    with semidbm.open(fruit, 'w'):
        with pytest.raises(semidbm.error) as locked:
            semidbm.open(fruit, 'w')
    with pytest.raises(semidbm.error) as missing:
        semidbm.open(path, 'r')
    for info, words in [(locked, 'wait for it: lock_timeout=SECONDS'),
                        (missing, 'open it with flag "c" to create one')]:
        assert str(info.value).endswith(words) and words.endswith(info.value.hint)
        assert '--lock-timeout' not in str(info.value)
        assert 'semidbm set' not in str(info.value)


def test_the_command_line_says_what_to_do_in_its_own_words(run, fruit, path):
    with semidbm.open(fruit, 'w'):
        locked = assert_one_line_error(run('set', fruit, 'a', 'b'), ExitStatus.LOCKED)
    missing = assert_one_line_error(run('get', path, 'a'), 1)
    assert locked.endswith('; close it there, or wait for it: --lock-timeout SECONDS')
    assert missing.endswith('no semidbm database here (no file '
                            f"{os.path.join(path, 'data')!r}); create one with: "
                            'semidbm set PATH KEY VALUE, or semidbm load PATH FILE')
    for line in [locked, missing]:
        assert 'lock_timeout' not in line and 'flag' not in line


def test_where_no_lock_can_be_taken_each_interface_says_so(fruit, monkeypatch, capsys):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, 'No locks available')
    monkeypatch.setattr(lock.fcntl, 'flock', no_locks)
    with pytest.raises(semidbm.error, match='; pass lock=False to open it without a lock'):
        semidbm.open(fruit, 'w')
    assert cli.main(['set', fruit, 'a', 'b']) == ExitStatus.FAILURE
    line = capsys.readouterr().err
    assert '(No locks available; some network file systems cannot); the command line ' \
           'always locks: copy the database to a local file system' in line
    assert 'lock=False' not in line and line.count('\n') == 1


def test_a_hint_for_another_interface_is_left_as_it_is(run, tmp_path):
    """A path holding another dbm's database: the library's hint is a command."""
    foreign = str(tmp_path / 'foreign')
    with dbm.dumb.open(foreign, 'c') as db:
        db[b'a'] = b'b'
    line = assert_one_line_error(run('keys', foreign), 1)
    assert line.endswith(f'python -m semidbm migrate --from dbm.dumb {foreign} NEW_PATH')


def test_reading_commands_run_beside_a_writer(run, fruit):
    with semidbm.open(fruit, 'w') as db:
        db[b'kiwi'] = b'brown'  # not synced: the reader sees it all the same
        assert run('get', fruit, 'kiwi', check=0).stdout == 'brown'
        with semidbm.open(fruit, 'r'):  # a reader in this process too
            stat = stat_lines(run, fruit)
        assert stat['keys'].strip() == '4'
        assert stat['writer'].strip() == f'pid {os.getpid()}'
        if run is run_subprocess:  # stat's own process is not among the others
            assert stat['readers'].strip() == f'1 other than this one (pids {os.getpid()})'


def test_lock_timeout_waits_for_the_lock(run, fruit):
    code = ('import semidbm, sys, time\n'
            'db = semidbm.open(sys.argv[1], "w"); print("ready", flush=True)\n'
            'time.sleep(0.5); db.close()\n')
    holder = subprocess.Popen([sys.executable, '-c', code, fruit], stdout=subprocess.PIPE,
                              text=True, env=helpers.child_env())
    assert holder.stdout.readline() == 'ready\n'
    result = run('set', '--lock-timeout', '30', fruit, 'kiwi', 'brown', check=0)
    assert holder.wait() == 0
    holder.stdout.close()
    assert result.stderr == ''
    assert helpers.contents(fruit)[b'kiwi'] == b'brown'


# -- progress and pipes -----------------------------------------------------------------

def run_with_a_terminal_for_stderr(*args):
    """Run the command with stderr on a pseudo-terminal; return (status, stderr)."""
    pty = pytest.importorskip('pty')
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, '-m', 'semidbm', *args], stdout=subprocess.DEVNULL,
            stderr=terminal, env=helpers.child_env())
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        return process.wait(), b''.join(chunks).decode()
    finally:
        os.close(controller)


@pytest.mark.parametrize('command', ['check', 'repair', 'compact', 'dump', 'load',
                                     'migrate'])
def test_progress_shows_on_a_terminal_and_is_cleared(fruit, tmp_path, command):
    args = {'load': ['load', fruit, str(tmp_path / 'dump')],
            'migrate': ['migrate', '--to', 'dbm.dumb', fruit, str(tmp_path / 'out')]}
    (tmp_path / 'dump').write_text('{"key": "a", "value": "b"}\n')
    status, stderr = run_with_a_terminal_for_stderr(*args.get(command, [command, fruit]))
    assert status == 0
    assert re.search(rf'\r{command}: \d+%', stderr), repr(stderr)
    assert '\r\x1b[K' in stderr  # cleared: what follows is the summary, if any
    assert '%' not in stderr.rsplit('\r\x1b[K', 1)[1]


def test_no_progress_into_a_pipe(fruit):
    for command in ['check', 'repair', 'compact', 'dump']:
        assert run_subprocess(command, fruit, check=0).stderr == ''


def test_a_reader_that_goes_away_ends_it_quietly(path):
    with semidbm.open(path, 'c') as db:
        db.update((b'key%d' % n, b'v') for n in range(50000))
    env = helpers.child_env()
    process = subprocess.Popen([sys.executable, '-m', 'semidbm', 'keys', path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout.readline() == b'key0\n'
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait() == ExitStatus.OK
    assert stderr == b''


@pytest.mark.parametrize('args', [['keys', '{path}'], ['get', '{path}', 'apple'],
                                  ['dump', '{path}'], ['stat', '--json', '{path}']])
def test_a_pipe_closed_before_anything_is_written_is_no_error(fruit, args):
    """Output smaller than a buffer is written at the end: the closed pipe is found
    there, and that is no error either (nor an 'Exception ignored' at exit)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, '-m', 'semidbm', *[arg.format(path=fruit) for arg in args]],
            stdout=write_end, stderr=subprocess.PIPE, env=helpers.child_env(), timeout=60)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (ExitStatus.OK, b'')


# -- the examples in the docs -------------------------------------------------------------

MARK = '@@@ next command @@@'


def console_blocks(filename):
    """Yield the ``[(command, expected output), ...]`` of each console block."""
    with open(os.path.join(helpers.ROOT, 'docs', filename), encoding='utf-8') as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines):
        if line.strip() != '.. code-block:: console':
            continue
        block = []
        for body in lines[number + 2:]:
            if body and not body.startswith('    '):
                break
            if body.startswith('    $ '):
                block.append([body[6:], []])
            elif block:
                block[-1][1].append(body[4:])
        yield [(command, '\n'.join(output).strip('\n')) for command, output in block]


def normalize(text):
    text = re.sub(r'pid \d+', 'pid N', text)
    text = re.sub(r'("readers": \[)[\d,\s]*\]', r'\1PIDS]', text)
    return re.sub(r'corrupt-\d{8}T\d{6}(-\d+)?', 'corrupt-TIMESTAMP', text)


@pytest.mark.skipif(shutil.which('bash') is None, reason='the examples are bash')
@pytest.mark.parametrize('page', ['cli.rst', 'sharing.rst'])
def test_the_console_examples_in_the_docs(page, tmp_path):
    """Each block runs in one bash, the blocks of a page one after another."""
    prelude = (f'semidbm() {{ "{sys.executable}" -m semidbm "$@"; }}\n'
               f'python() {{ "{sys.executable}" "$@"; }}\n')
    env = helpers.child_env(COLUMNS='80')
    checker = doctest.OutputChecker()
    blocks = list(console_blocks(page))
    assert blocks
    for block in blocks:
        script = prelude + ''.join(f'__s=$?; echo "{MARK}"; (exit $__s)\n{command}\n'
                                   for command, _ in block)
        result = subprocess.run(['bash', '-c', script], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, timeout=120)
        outputs = result.stdout.split(MARK + '\n')[1:]
        assert len(outputs) == len(block)
        for (command, want), got in zip(block, outputs):
            got = normalize(got.strip('\n'))
            # Whitespace: argparse wraps usage lines differently from version to version.
            assert checker.check_output(normalize(want) + '\n', got + '\n',
                                        doctest.NORMALIZE_WHITESPACE), (
                f'$ {command}\nwant:\n{want}\ngot:\n{got}')


# -- values whose checksum fails are never printed ----------------------------------------

def damage_the_value_of(path, key):
    data = helpers.data_bytes(path)
    with semidbm.open(path, 'r') as db:
        value = db[key]
    at = data.rindex(key + value) + len(key)  # the live record of the key
    flip_a_byte(path, at)


def test_get_of_a_damaged_value_fails_and_prints_nothing(run, fruit):
    damage_the_value_of(fruit, b'banana')
    assert_one_line_error(run('get', fruit, 'banana'), ExitStatus.DAMAGED, 'checksum mismatch',
                          "b'banana'", 'semidbm check')
    assert run('get', fruit, 'cherry', check=0).stdout == 'red'


def test_dump_leaves_a_damaged_value_out_and_says_so(run, fruit):
    damage_the_value_of(fruit, b'banana')
    result = run('dump', fruit, '--text')
    assert result.returncode == ExitStatus.DAMAGED
    dumped = [json.loads(line) for line in result.stdout.splitlines()]
    assert dumped == [{'key': k.decode(), 'value': v.decode()}
                      for k, v in FRUIT.items() if k != b'banana']
    assert "skipped" in result.stderr and "b'banana'" in result.stderr
    assert '1 damaged value left out of the dump' in result.stderr


# -- records a recovery kept aside ----------------------------------------------------------

def test_stat_and_check_show_kept_records_and_repair_applies_them(run, fruit):
    """A record lost after the last sync (a page a power cut did not write), and one
    after it: the writable open keeps the second aside; repair applies it."""
    db = semidbm.open(fruit, 'w')
    db[b'lost'] = b'x' * 50
    db[b'late'] = b'after the lost one'
    del db[b'apple']
    data = bytearray(helpers.data_bytes(fruit))
    with open(os.path.join(fruit, layout.SYNCED), 'rb') as f:
        mark = f.read()  # as a power cut leaves it: the close's sync never happened
    db.close()
    with open(os.path.join(fruit, layout.SYNCED), 'wb') as f:
        f.write(mark)
    data[data.index(b'x' * 50)] ^= 0x01
    helpers.write_data(fruit, bytes(data).rstrip(format.PAD_BYTE))
    result = run('stat', fruit, check=0)  # a read-only open: it warns, keeps nothing
    assert 'could not be applied' in result.stdout
    assert result.stderr.startswith('semidbm stat: warning: ') and (
        result.stderr.count('\n') == 1 and 'python -m semidbm repair' in result.stderr)
    assert 'they hold records after a lost one' in run('check', fruit, check=0).stdout
    with pytest.warns(semidbm.RecoveryWarning):
        semidbm.open(fruit, 'w').close()
    [kept] = layout.Layout(fruit).kept(layout.KEPT_CUT)
    assert stat_lines(run, fruit)['kept aside'].strip().startswith(kept)
    assert f'kept aside by a recovery: {kept}' in run('check', fruit, check=0).stdout
    result = run('repair', fruit, check=0)
    assert f'applied 2 records kept aside in {kept}' in result.stdout
    assert helpers.contents(fruit) == {**{k: v for k, v in FRUIT.items() if k != b'apple'},
                                       b'late': b'after the lost one'}
    assert 'kept aside' not in stat_lines(run, fruit)


def test_repair_does_not_apply_kept_records_over_newer_writes(run, fruit):
    """Found in review: a key written again after the recovery would get its kept,
    older value back.  Not applied then, unless --force."""
    db = semidbm.open(fruit, 'w')
    db[b'lost'] = b'x' * 50
    db[b'apple'] = b'kept aside'
    data = bytearray(helpers.data_bytes(fruit))
    with open(os.path.join(fruit, layout.SYNCED), 'rb') as f:
        mark = f.read()
    db.close()
    with open(os.path.join(fruit, layout.SYNCED), 'wb') as f:
        f.write(mark)
    data[data.index(b'x' * 50)] ^= 0x01
    helpers.write_data(fruit, bytes(data).rstrip(format.PAD_BYTE))
    with pytest.warns(semidbm.RecoveryWarning), semidbm.open(fruit, 'w') as db:
        db[b'apple'] = b'newest'  # acknowledged after the recovery
    [kept] = layout.Layout(fruit).kept(layout.KEPT_CUT)
    result = run('repair', fruit, check=0)
    assert f'not applied: {kept}' in result.stdout and '--force' in result.stdout
    assert helpers.contents(fruit)[b'apple'] == b'newest'
    result = run('repair', '--force', fruit, check=0)
    assert f'applied 1 record kept aside in {kept}' in result.stdout
    assert helpers.contents(fruit)[b'apple'] == b'kept aside'
