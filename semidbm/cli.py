"""``python -m semidbm``: inspect, check, repair, script and migrate a database.

``python -m semidbm --help`` lists the subcommands; ``docs/cli.rst`` shows each one
with its output.  Exit status: 0 on success, 1 when a problem is found (damage, a
missing key or database, a lock held elsewhere), 2 on a usage error.  An expected
failure is one line on stderr, never a traceback.
"""
import argparse
import base64
import binascii
import contextlib
import importlib
import json
import os
import sys
import time
import warnings

import semidbm
from semidbm import lock, opening, repair

_BATCH = 10000
_DAMAGE_SHOWN = 10


class Failure(Exception):
    """An expected failure: reported as one line on stderr, exit status 1."""


class UsageError(Exception):
    """A bad argument found after parsing: reported as argparse does, exit status 2."""


def main(argv=None):
    """Run the command line *argv* (default ``sys.argv[1:]``); return the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error (argparse says which)
        return exc.code
    try:
        return args.run(args) or 0
    except UsageError as exc:
        args.subparser.print_usage(sys.stderr)
        print(f'{args.subparser.prog}: error: {exc}', file=sys.stderr)
        return 2
    except (Failure, OSError) as exc:
        if isinstance(exc, BrokenPipeError):  # a reader such as `head` went away
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        print(f'semidbm {args.command}: error: {_rephrased(exc)}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'semidbm {args.command}: interrupted', file=sys.stderr)
        return 130


def _one_line(exc):
    return ' '.join(str(exc).split())


def _rephrased(exc):
    """The message of *exc* in the command line's words: a library error that ends
    with what to do, in the library's words (its ``hint``), ends with ours instead."""
    message = _one_line(exc)
    hint = exc.hint if isinstance(exc, semidbm.error) else None
    ours = {
        lock.WAIT_HINT: '--lock-timeout SECONDS',
        opening.MISSING_HINT: 'create one with: semidbm set PATH KEY VALUE, or '
                              'semidbm load PATH FILE',
    }.get(hint)
    if ours is None or not message.endswith(hint):
        return message
    return message[:-len(hint)] + ours


# -- the parser ----------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(
        prog='semidbm', description='Inspect, check, repair, script and migrate a '
        'semidbm database (a directory holding PATH/data).',
        epilog='Exit status: 0 success, 1 a problem found, 2 a usage error.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--lock-timeout', type=float, default=None, metavar='SECONDS',
                        help='wait this long for a lock held by another process '
                        '(default: fail at once)')
    for name, run, help_text, add_arguments in _subcommands():
        sub = commands.add_parser(name, parents=[common], help=help_text,
                                  description=help_text[0].upper() + help_text[1:] + '.')
        sub.set_defaults(run=run, subparser=sub)
        add_arguments(sub)
    return parser


def _subcommands():
    """``(name, function, help, add_arguments)`` for each subcommand."""
    key, key_value = _key_arguments('KEY'), _key_arguments('KEY', 'VALUE')
    return [
        ('stat', cmd_stat, 'show keys, live and dead bytes, format version and '
         'snapshot', _path_only),
        ('check', cmd_check, "verify every record's checksum (exit status 1 on "
         'damage)', _path_only),
        ('repair', cmd_repair, 'recover every good record of a damaged database, '
         'keeping the original as PATH/data.corrupt-TIMESTAMP, and apply the records '
         'a recovery kept aside', _repair_arguments),
        ('compact', cmd_compact, 'rewrite the data file with only the live records',
         _path_only),
        ('get', cmd_get, 'write the value of KEY to standard output', key),
        ('set', cmd_set, 'store VALUE under KEY (the database is created if missing)',
         key_value),
        ('delete', cmd_delete, 'delete KEY (exit status 1 if missing)', key),
        ('keys', cmd_keys, 'list the keys, one a line', _keys_arguments),
        ('dump', cmd_dump, 'write every key and value as JSON lines to standard '
         'output', _dump_arguments),
        ('load', cmd_load, 'store the keys and values of a dump (JSON lines)',
         _load_arguments),
        ('migrate', cmd_migrate, 'copy a database of another dbm module into semidbm '
         '(--from) or out of it (--to)', _migrate_arguments),
    ]



def _path_only(sub):
    sub.add_argument('path', metavar='PATH', help='the database directory')


def _repair_arguments(sub):
    _path_only(sub)
    sub.add_argument('--force', action='store_true',
                     help='apply kept records even when the database was written to '
                     'since they were kept (they may overwrite newer values)')


def _encoding(sub):
    group = sub.add_mutually_exclusive_group()
    group.add_argument('--hex', dest='encoding', action='store_const', const='hex',
                       help='keys and values on the command line and in the output '
                       'are hexadecimal')
    group.add_argument('--base64', dest='encoding', action='store_const', const='base64',
                       help='... are base64')
    sub.set_defaults(encoding='text')


def _key_arguments(*names):
    def add(sub):
        _path_only(sub)
        for name in names:
            sub.add_argument(name.lower(), metavar=name)
        _encoding(sub)
    return add


def _keys_arguments(sub):
    _path_only(sub)
    _encoding(sub)


def _dump_arguments(sub):
    _path_only(sub)
    sub.add_argument('--text', action='store_true',
                     help='write keys and values that are UTF-8 as text (others stay '
                     'base64)')


def _load_arguments(sub):
    _path_only(sub)
    sub.add_argument('file', metavar='FILE', nargs='?', default='-',
                     help="a dump (JSON lines); default '-', standard input")


def _migrate_arguments(sub):
    direction = sub.add_mutually_exclusive_group(required=True)
    direction.add_argument('--from', dest='source_module', metavar='MODULE',
                           help='copy SRC, a MODULE database, into the semidbm DEST')
    direction.add_argument('--to', dest='dest_module', metavar='MODULE',
                           help='copy the semidbm SRC into DEST, a MODULE database')
    sub.add_argument('src', metavar='SRC')
    sub.add_argument('dest', metavar='DEST')


# -- helpers -------------------------------------------------------------------

class Progress:
    """A one-line progress report on stderr, shown only when stderr is a terminal."""

    def __init__(self, label, stream=None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.shown = self.stream.isatty()
        self._next = 0.0

    def __call__(self, done, total):
        if not self.shown or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + 0.1
        status = f'{100 * done // total}% ({done} of {total})' if total else str(done)
        self.stream.write(f'\r{self.label}: {status}')
        self.stream.flush()

    def finish(self):
        if self.shown and self._next:
            self.stream.write('\r\x1b[K')
            self.stream.flush()


def _open(args, path, flag):
    """Open *path*; what the open warns of (a recovery after a crash, another dbm's
    database beside a new one) is one line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        # Every value the command line prints is verified: it never shows damage.
        db = semidbm.open(path, flag, lock_timeout=args.lock_timeout,
                          verify_checksums=True)
    for warning in caught:
        print(f'semidbm {args.command}: warning: {_one_line(warning.message)}',
              file=sys.stderr)
    return db


def _decode(text, encoding, what):
    """The bytes a command-line argument stands for."""
    try:
        if encoding == 'hex':
            return bytes.fromhex(text)
        if encoding == 'base64':
            return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise UsageError(f'the {what} {text!r} is not valid {encoding}') from None
    return text.encode('utf-8', 'surrogateescape')


def _encode(data, encoding, what):
    """*data* as a line of output text."""
    if encoding == 'hex':
        return data.hex()
    if encoding == 'base64':
        return base64.b64encode(data).decode('ascii')
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        text = '\n'
    if '\n' in text or '\r' in text:
        raise Failure(f'the {what} {data[:40]!r} is not one line of UTF-8 text; '
                      f'use --hex or --base64')
    return text


def _count(number, noun):
    return f'{number} {noun}' + ('' if number == 1 else 's')


# -- the subcommands -----------------------------------------------------------

def cmd_stat(args):
    """Print what :meth:`semidbm.SemiDBM.stats` says of the database."""
    with _open(args, args.path, 'r') as db:
        stats = db.stats()
    for label, value in [
            ('path', args.path), ('format', stats['format']), ('keys', stats['keys']),
            ('file size', f'{stats["file_size"]} bytes'),
            ('live bytes', f'{stats["live_bytes"]} bytes'),
            ('dead bytes', f'{stats["dead_bytes"]} bytes'),
            ('reclaimable', f'{stats["reclaimable"]:.1%} (by compact)'),
            ('snapshot', _snapshot_state(stats))] + _recovery_lines(stats):
        print(f'{label + ":":<13}{value}')


def _recovery_lines(stats):
    lines = []
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


def _snapshot_state(stats):
    state = stats['snapshot']
    if state == 'fresh':
        return f'fresh ({stats["keys"]} keys, covers the whole data file)'
    if state == 'partial':
        return (f'partial (covers {stats["snapshot_covers"]} of {stats["file_size"]} '
                f'bytes; the rest is scanned at open, and the snapshot rewritten at the '
                f'next writable close)')
    if state == 'invalid':
        return 'not valid for this data file (ignored at open; rewritten at close)'
    return state


def cmd_check(args):
    """Verify every record's checksum; exit status 1 on any damage."""
    progress = Progress('check')
    try:
        report = repair.check(args.path, progress, args.lock_timeout)
    finally:
        progress.finish()
    print(f'{report.filename}: {_count(report.records, "good record")} in '
          f'{report.size} bytes')
    _print_damage(report)
    _print_recovery(report)
    if report.pad:
        print(f'{report.pad} bytes of pad at the end (a writer did not close the '
              f'database; harmless, cut at the next writable open)')
    if report.damage:
        print(f'damaged; recover the good records with: python -m semidbm repair '
              f'{args.path}')
        return 1
    print('ok')
    return 0


def _print_recovery(report):
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


def _print_damage(report):
    for damage in report.damage[:_DAMAGE_SHOWN]:
        key = '' if damage.key is None else f', key {damage.key!r}'
        print(f'damage at offset {damage.start}{key}: {damage.reason} '
              f'({damage.stop - damage.start} bytes)')
    if len(report.damage) > _DAMAGE_SHOWN:
        print(f'... and {len(report.damage) - _DAMAGE_SHOWN} more damaged stretches')


def cmd_repair(args):
    """Rewrite the data file with every record that verifies, keeping the original."""
    progress = Progress('repair')
    try:
        report, kept = repair.repair(args.path, progress, args.lock_timeout, args.force)
    finally:
        progress.finish()
    for name, records in report.applied:
        print(f'applied {_count(records, "record")} kept aside in {name}; it is now '
              f'{name}.applied')
    for name in report.not_applied:
        print(f'not applied: {name}: the database was written to since it was kept, '
              f'and its records would overwrite newer ones; to apply them anyway: '
              f'python -m semidbm repair --force {args.path}')
    if kept is None:
        print(f'{report.filename}: {_count(report.records, "good record")}, no damage'
              + ('' if report.applied else '; nothing to repair'))
        return 0
    _print_damage(report)
    lost = sum(damage.stop - damage.start for damage in report.damage)
    print(f'recovered {_count(report.records, "record")}; {lost} damaged bytes left out')
    print(f'the original is kept as {kept}')
    return 0


def cmd_compact(args):
    """Rewrite the data file with only the live records."""
    with _open(args, args.path, 'w') as db:
        before = db.stats()['file_size']
        progress = Progress('compact')
        progress(0, 1)
        try:
            db.compact()
        finally:
            progress.finish()
        after = db.stats()
    print(f'compacted {_count(after["keys"], "key")}: {before} -> {after["file_size"]} '
          f'bytes')


def cmd_get(args):
    """Write the value of KEY to standard output: its bytes as they are (a newline
    follows on a terminal), or a line of --hex or --base64."""
    key = _decode(args.key, args.encoding, 'key')
    with _open(args, args.path, 'r') as db:
        try:
            value = db[key]
        except KeyError:
            raise Failure(f'{args.path}: no key {key!r}') from None
        except semidbm.DBMChecksumError as exc:
            raise Failure(str(exc)) from None
    if args.encoding == 'text':
        sys.stdout.flush()
        sys.stdout.buffer.write(value)
        if sys.stdout.isatty() and not value.endswith(b'\n'):
            sys.stdout.buffer.write(b'\n')  # keep the prompt off the value's line
        sys.stdout.buffer.flush()
    else:
        print(_encode(value, args.encoding, 'value'))


def cmd_set(args):
    """Store VALUE under KEY (creating the database if needed)."""
    key = _decode(args.key, args.encoding, 'key')
    value = _decode(args.value, args.encoding, 'value')
    with _open(args, args.path, 'c') as db:
        db[key] = value


def cmd_delete(args):
    """Delete KEY; exit status 1 if there is no such key."""
    key = _decode(args.key, args.encoding, 'key')
    with _open(args, args.path, 'w') as db:
        try:
            del db[key]
        except KeyError:
            raise Failure(f'{args.path}: no key {key!r}') from None


def cmd_keys(args):
    """List the keys, one a line."""
    with _open(args, args.path, 'r') as db:
        for key in db.keys():
            print(_encode(key, args.encoding, 'key'))


def cmd_dump(args):
    """Write every key and value as JSON lines (base64, or text with --text); a value
    whose checksum fails is left out and named on stderr (exit status 1)."""
    skipped = 0
    with _open(args, args.path, 'r') as db:
        progress = Progress('dump')
        keys = db.keys()
        try:
            for done, key in enumerate(keys, 1):
                try:
                    value = db[key]
                except semidbm.DBMChecksumError as exc:
                    print(f'semidbm dump: skipped: {exc}', file=sys.stderr)
                    skipped += 1
                    continue
                record = {}
                _dump_field(record, 'key', key, args.text)
                _dump_field(record, 'value', value, args.text)
                print(json.dumps(record, ensure_ascii=False))
                progress(done, len(keys))
        finally:
            progress.finish()
    if skipped:
        raise Failure(f'{_count(skipped, "damaged value")} left out of the dump; see '
                      f'python -m semidbm check {args.path}')


def _dump_field(record, name, data, text):
    if text:
        try:
            record[name] = data.decode('utf-8')
            return
        except UnicodeDecodeError:
            pass
    record[name + '_base64'] = base64.b64encode(data).decode('ascii')


def cmd_load(args):
    """Store every key and value of a dump (JSON lines, as written by dump)."""
    stream = sys.stdin.buffer if args.file == '-' else open(args.file, 'rb')
    total = os.fstat(stream.fileno()).st_size if args.file != '-' else 0
    progress = Progress('load')
    try:
        with stream, _open(args, args.path, 'c') as db:
            stored = _load_lines(stream, args.file, db, progress, total)
    finally:
        progress.finish()
    print(f'loaded {_count(stored, "record")} into {args.path}', file=sys.stderr)


def _load_lines(stream, filename, db, progress, total):
    """Store the lines of *stream* in *db*, a batch at a time; return the count."""
    batch, stored, done = [], 0, 0
    try:
        for number, line in enumerate(stream, 1):
            done += len(line)
            if line.strip():
                batch.append(_load_line(line, filename, number))
            if len(batch) >= _BATCH:
                db.update(batch)
                stored, batch = stored + len(batch), []
            progress(done, total)
    except Failure:
        db.update(batch)  # what came before the bad line is stored, as the error says
        raise
    db.update(batch)
    return stored + len(batch)


def _load_line(line, filename, number):
    """Return ``(key, value)`` from one line of a dump."""
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError('not a JSON object')
        return _load_field(record, 'key'), _load_field(record, 'value')
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        where = 'standard input' if filename == '-' else filename
        raise Failure(f'{where}, line {number}: not a line of a semidbm dump '
                      f'({exc}); the lines before it were stored') from None


def _load_field(record, name):
    if name in record:
        return record[name].encode('utf-8')
    if name + '_base64' in record:
        return base64.b64decode(record[name + '_base64'], validate=True)
    raise KeyError(f'no "{name}" or "{name}_base64"')


def cmd_migrate(args):
    """Copy every key from another dbm module's database into semidbm, or back."""
    module = _dbm_module(args.source_module or args.dest_module)
    progress = Progress('migrate')
    with contextlib.ExitStack() as stack:
        if args.source_module:
            source = stack.enter_context(_open_foreign(module, args.src, 'r'))
            dest = stack.enter_context(_open(args, args.dest, 'c'))
        else:
            source = stack.enter_context(_open(args, args.src, 'r'))
            dest = stack.enter_context(_open_foreign(module, args.dest, 'c'))
        stack.callback(progress.finish)
        copied = _copy(source, dest, progress)
    print(f'copied {_count(copied, "key")} from {args.src} to {args.dest}',
          file=sys.stderr)


def _dbm_module(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise UsageError(f'cannot import the dbm module {name!r} ({exc})') from None
    if not callable(getattr(module, 'open', None)):
        raise UsageError(f'{name!r} has no open(): not a dbm module')
    return module


def _open_foreign(module, path, flag):
    """Open *path* with another dbm *module*; its errors become :class:`Failure`."""
    errors = getattr(module, 'error', OSError)
    try:
        return contextlib.closing(module.open(path, flag))
    except errors as exc:
        raise Failure(f'{module.__name__} cannot open {path!r}: {exc}') from None


def _copy(source, dest, progress):
    keys = source.keys()
    total = len(keys)
    for done, key in enumerate(keys, 1):
        dest[key] = source[key]
        progress(done, total)
    return total
