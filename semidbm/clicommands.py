"""The subcommands of ``python -m semidbm`` that look after a database (``stat``,
``check``, ``repair``, ``compact``) and script it (``get``, ``set``, ``delete``,
``keys``).  Each takes the parsed arguments and returns the exit status.

What they print is what the library reports (:meth:`semidbm.SemiDBM.stats`,
:func:`semidbm.repair.check`), worded or as JSON; nothing is derived again here.
"""
import argparse
import base64
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

import semidbm
from semidbm import repair
from semidbm.clibase import (ExitStatus, Failure, Progress, UsageError, count, decode,
                             encode, open_database)
from semidbm.stats import Stats

_DAMAGE_SHOWN = 10


# -- stat ----------------------------------------------------------------------

def cmd_stat(args: argparse.Namespace) -> ExitStatus:
    """Print what :meth:`semidbm.SemiDBM.stats` says of the database."""
    with open_database(args, args.path, 'r') as db:
        stats = db.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return ExitStatus.OK
    for label, value in [
            ('path', args.path), ('format', stats['format']), ('keys', stats['keys']),
            ('file size', f'{stats["file_size"]} bytes'),
            ('live bytes', f'{stats["live_bytes"]} bytes'),
            ('dead bytes', f'{stats["dead_bytes"]} bytes'),
            ('reclaimable', f'{stats["reclaimable"]:.1%} (by compact)'),
            ('snapshot', _snapshot_state(stats))] + _recovery_lines(stats):
        print(f'{label + ":":<13}{value}')
    return ExitStatus.OK


def _recovery_lines(stats: Stats) -> List[Tuple[str, object]]:
    lines: List[Tuple[str, object]] = []
    if stats['unapplied']:
        lines.append(('unapplied', f'{stats["unapplied"]} bytes of records after a crash '
                      f'could not be applied (a writable open keeps them aside)'))
    lines += [('kept aside', f'{name} (apply it with: python -m semidbm repair PATH)')
              for name in stats['kept']]
    if stats['writers']:
        lines.append(('writer', ', '.join(f'pid {pid}' for pid in stats['writers'])))
    others = [pid for pid in stats['readers'] if pid != os.getpid()]
    if others:
        lines.append(('readers', f'{len(others)} other than this one (pids '
                      f'{", ".join(map(str, others))})'))
    return lines


def _snapshot_state(stats: Stats) -> str:
    state = stats['snapshot']
    if state == 'fresh':
        return f'fresh ({stats["keys"]} keys, covers the whole data file)'
    if state == 'partial':
        return (f'partial (covers {stats["snapshot_covers"]} of {stats["file_size"]} '
                f'bytes; the rest is scanned at open, and the snapshot rewritten at the '
                f'next writable close)')
    if state == 'invalid':
        return 'not valid for this data file (ignored at open; rewritten at close)'
    return str(state)


# -- check and repair -------------------------------------------------------------

def cmd_check(args: argparse.Namespace) -> ExitStatus:
    """Verify every record's checksum; the status says whether there is damage."""
    progress = Progress('check')
    try:
        report = repair.check(args.path, progress, args.lock_timeout)
    finally:
        progress.finish()
    status = ExitStatus.DAMAGED if report.damage else ExitStatus.OK
    if args.json:
        print(json.dumps(report_json(report), indent=2))
        return status
    print(f'{report.filename}: {count(report.records, "good record")} in '
          f'{report.size} bytes')
    _print_damage(report)
    _print_recovery(report)
    if report.pad:
        print(f'{report.pad} bytes of pad at the end (a writer did not close the '
              f'database; harmless, cut at the next writable open)')
    if report.damage:
        print(f'damaged; recover the good records with: python -m semidbm repair '
              f'{args.path}')
    else:
        print('ok')
    return status


def report_json(report: repair.Report) -> Dict[str, object]:
    """The attributes of a :class:`semidbm.repair.Report` of a check, as JSON values
    (a key as base64; a pair of offsets as an object)."""
    leftover = report.leftover
    return {
        'filename': report.filename, 'size': report.size,
        'format': None if report.version is None else '%d.%d' % report.version,
        'ok': report.ok, 'records': report.records,
        'damage': [{'start': damage.start, 'stop': damage.stop,
                    'key_base64': (None if damage.key is None else
                                   base64.b64encode(damage.key).decode('ascii')),
                    'reason': damage.reason} for damage in report.damage],
        'pad': report.pad, 'durable_end': report.durable_end,
        'unsynced': (None if report.unsynced is None else
                     dict(zip(('start', 'stop'), report.unsynced))),
        'leftover': None if leftover is None else leftover._asdict(),
        'kept': report.kept,
    }


def _print_recovery(report: repair.Report) -> None:
    """What the next open recovers by itself, and what recoveries kept aside."""
    if report.unsynced is not None:
        start, stop = report.unsynced
        print(f'recoverable: the {stop - start} bytes from offset {start} are writes '
              f'that a crash tore before they were synced (not damage); the next '
              f'writable open cuts them')
    if report.leftover is not None:
        print(f'  they hold records after a lost one (from offset '
              f'{report.leftover.first}): that open keeps them in PATH/data.cut-TIMESTAMP')
    for name in report.kept:
        print(f'kept aside by a recovery: {name} (apply it with: python -m semidbm '
              f'repair PATH)')


def _print_damage(report: repair.Report) -> None:
    for damage in report.damage[:_DAMAGE_SHOWN]:
        key = '' if damage.key is None else f', key {damage.key!r}'
        print(f'damage at offset {damage.start}{key}: {damage.reason} '
              f'({damage.stop - damage.start} bytes)')
    if len(report.damage) > _DAMAGE_SHOWN:
        print(f'... and {len(report.damage) - _DAMAGE_SHOWN} more damaged stretches')


def cmd_repair(args: argparse.Namespace) -> ExitStatus:
    """Rewrite the data file with every record that verifies, keeping the original."""
    progress = Progress('repair')
    try:
        report, kept = repair.repair(args.path, progress, args.lock_timeout, args.force)
    finally:
        progress.finish()
    for name, records in report.applied:
        print(f'applied {count(records, "record")} kept aside in {name}; it is now '
              f'{name}.applied')
    for name in report.not_applied:
        print(f'not applied: {name}: the database was written to since it was kept, '
              f'and its records would overwrite newer ones; to apply them anyway: '
              f'python -m semidbm repair --force {args.path}')
    if kept is None:
        print(f'{report.filename}: {count(report.records, "good record")}, no damage'
              + ('' if report.applied else '; nothing to repair'))
        return ExitStatus.OK
    _print_damage(report)
    lost = sum(damage.stop - damage.start for damage in report.damage)
    print(f'recovered {count(report.records, "record")}; {lost} damaged bytes left out')
    print(f'the original is kept as {kept}')
    return ExitStatus.OK


def cmd_compact(args: argparse.Namespace) -> ExitStatus:
    """Rewrite the data file with only the live records."""
    with open_database(args, args.path, 'w') as db:
        before = db.stats()['file_size']
        progress = Progress('compact')
        progress(0, 1)
        try:
            db.compact()
        finally:
            progress.finish()
        after = db.stats()
    print(f'compacted {count(after["keys"], "key")}: {before} -> {after["file_size"]} '
          f'bytes')
    return ExitStatus.OK


# -- get, set, delete, keys ----------------------------------------------------------

def cmd_get(args: argparse.Namespace) -> ExitStatus:
    """Write the value of each KEY: one KEY's bytes as they are (a newline follows on
    a terminal); else one line each, in the order given (empty for a missing key)."""
    keys = [decode(key, args.encoding, 'key') for key in args.key]
    values, status = _look_up(args, keys)
    if len(keys) == 1 and args.encoding == 'text':
        _write_bytes(values[0] or b'')
        return status
    # All encoded before any is printed: a value that cannot be a line prints none.
    lines = [encode(value, args.encoding, f'value of {key[:40]!r}') if value is not None
             else '' for key, value in zip(keys, values)]
    if len(keys) > 1 or values[0] is not None:
        print('\n'.join(lines))
    return status


def _look_up(args: argparse.Namespace,
             keys: List[bytes]) -> Tuple[List[Optional[bytes]], ExitStatus]:
    """The value of each key, or None, each missing or damaged one named on stderr;
    and the exit status (damage outranks a missing key)."""
    values: List[Optional[bytes]] = []
    status = ExitStatus.OK
    with open_database(args, args.path, 'r') as db:
        for key in keys:
            try:
                values.append(db[key])
                continue
            except KeyError:
                problem, found = f'{args.path}: no key {key!r}', ExitStatus.MISSING_KEY
            except semidbm.DBMChecksumError as exc:
                problem, found = str(exc), ExitStatus.DAMAGED
            print(f'semidbm get: error: {problem}', file=sys.stderr)
            values.append(None)
            status = max(status, found)
    return values, status


def _write_bytes(value: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(value)
    if value and sys.stdout.isatty() and not value.endswith(b'\n'):
        sys.stdout.buffer.write(b'\n')  # keep the prompt off the value's line
    sys.stdout.buffer.flush()


def cmd_set(args: argparse.Namespace) -> ExitStatus:
    """Store a value under KEY (creating the database if needed)."""
    key = decode(args.key, args.encoding, 'key')
    value = _value(args)
    with open_database(args, args.path, 'c') as db:
        db[key] = value
    return ExitStatus.OK


def _value(args: argparse.Namespace) -> bytes:
    """The value to set: VALUE; or the bytes of standard input ('-') or of --file."""
    if args.file is not None:
        if args.value is not None:
            raise UsageError('give VALUE or --file FILE, not both')
        with open(args.file, 'rb') as f:
            return f.read()
    if args.value is None:
        raise UsageError("give VALUE, '-' for standard input, or --file FILE")
    if args.value == '-':
        data: bytes = sys.stdin.buffer.read()
        return data
    return decode(args.value, args.encoding, 'value')


def cmd_delete(args: argparse.Namespace) -> ExitStatus:
    """Delete KEY; a missing key is its own exit status."""
    key = decode(args.key, args.encoding, 'key')
    with open_database(args, args.path, 'w') as db:
        try:
            del db[key]
        except KeyError:
            raise Failure(f'{args.path}: no key {key!r}', ExitStatus.MISSING_KEY) from None
    return ExitStatus.OK


def cmd_keys(args: argparse.Namespace) -> ExitStatus:
    """List the keys, one a line: all of them, or (a key that is not a line of text
    without --hex or --base64) none."""
    with open_database(args, args.path, 'r') as db:
        lines = [encode(key, args.encoding, f'key {key[:40]!r}') for key in db.keys()]
    for line in lines:
        print(line)
    return ExitStatus.OK
