"""The subcommands of ``python -m semidbm`` that move data in and out: ``dump``,
``load`` and ``migrate``.  Each takes the parsed arguments and returns the exit status.

A dump is JSON lines, one object a line: ``key`` and ``value`` as text, or as
``key_base64``/``value_base64`` or ``key_hex``/``value_hex``.
"""
import argparse
import base64
import binascii
import contextlib
import importlib
import json
import os
import stat
import sys
import tempfile
from types import ModuleType
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Tuple

import semidbm
from semidbm.clibase import (ExitStatus, Failure, Progress, UsageError, count,
                             open_database)

_BATCH = 10000
_BAD_LINES_SHOWN = 10
_FIELDS = {name + suffix for name in ('key', 'value') for suffix in ('', '_base64', '_hex')}


class BadLine(ValueError):
    """A line of a dump that cannot be loaded; the message says why."""


# -- dump ----------------------------------------------------------------------------

def cmd_dump(args: argparse.Namespace) -> ExitStatus:
    """Write every key and value as JSON lines (base64 or hex, or text with --text
    where it is UTF-8); a value whose checksum fails is left out and named on stderr."""
    skipped = 0
    binary = 'base64' if args.encoding == 'text' else args.encoding
    with open_database(args, args.path, 'r') as db:
        progress = Progress('dump')
        keys = db.keys()
        try:
            for done, key in enumerate(keys, 1):
                line = _dump_line(db, key, binary, args.text)
                if line is None:
                    skipped += 1
                else:
                    print(line)
                progress(done, len(keys))
        finally:
            progress.finish()
    if skipped:
        raise Failure(f'{count(skipped, "damaged value")} left out of the dump; see '
                      f'python -m semidbm check {args.path}', ExitStatus.DAMAGED)
    return ExitStatus.OK


def _dump_line(db: semidbm.SemiDBM, key: bytes, binary: str, text: bool) -> Optional[str]:
    """The line of *key* in a dump, or None (named on stderr) if its value is damaged."""
    try:
        value = db[key]
    except semidbm.DBMChecksumError as exc:
        print(f'semidbm dump: skipped: {exc}', file=sys.stderr)
        return None
    record = {**_field('key', key, binary, text), **_field('value', value, binary, text)}
    return json.dumps(record, ensure_ascii=False)


def _field(name: str, data: bytes, binary: str, text: bool) -> Dict[str, str]:
    if text:
        try:
            return {name: data.decode('utf-8')}
        except UnicodeDecodeError:
            pass
    if binary == 'hex':
        return {f'{name}_hex': data.hex()}
    return {f'{name}_base64': base64.b64encode(data).decode('ascii')}


# -- load ------------------------------------------------------------------------------

def cmd_load(args: argparse.Namespace) -> ExitStatus:
    """Store every key and value of a dump, or, if any line is bad, none: every line
    is checked first, then the dump read again and stored a batch at a time."""
    progress = Progress('load')
    try:
        with _checked_dump(args.file, progress) as (dump, name, size):
            with open_database(args, args.path, 'c') as db:
                stored = _store(dump, name, size, db, progress)
    finally:
        progress.finish()
    print(f'loaded {count(stored, "record")} into {args.path}', file=sys.stderr)
    return ExitStatus.OK


@contextlib.contextmanager
def _checked_dump(filename: str, progress: Progress) -> Iterator[Tuple[IO[bytes], str, int]]:
    """Check every line of the dump *filename* ('-': standard input); yield it,
    rewound, with its name for messages and its size.

    What cannot be read twice (standard input, a pipe) is copied to a temporary file
    as it is checked, rather than kept in memory: a dump may be bigger than memory.
    """
    name = '<stdin>' if filename == '-' else filename
    with contextlib.ExitStack() as stack:
        source = sys.stdin.buffer if filename == '-' else stack.enter_context(
            open(filename, 'rb'))
        dump = source if _rereadable(source) else stack.enter_context(
            tempfile.TemporaryFile())
        start = source.tell() if dump is source else 0
        lines: Iterable[bytes] = source if dump is source else _copied(source, dump)
        known = os.fstat(source.fileno()).st_size - start if dump is source else 0
        size = _check_lines(lines, name, progress, known)
        dump.seek(start)
        yield dump, name, size


def _rereadable(stream: IO[bytes]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except OSError:  # io.UnsupportedOperation: no file descriptor at all
        return False


def _copied(source: IO[bytes], copy: IO[bytes]) -> Iterator[bytes]:
    for line in source:
        copy.write(line)
        yield line


def _check_lines(lines: Iterable[bytes], name: str, progress: Progress,
                 known: int) -> int:
    """Check every line (*known* bytes of them, if known: the first half of the
    progress); return their size in bytes.

    :raises Failure: naming each bad line (the first few) and how many there are.
    """
    bad, done = 0, 0
    for number, line in enumerate(lines, 1):
        done += len(line)
        try:
            parse_line(line)
        except BadLine as exc:
            bad += 1
            if bad <= _BAD_LINES_SHOWN:
                print(f'{name}:{number}: {exc}', file=sys.stderr)
        progress(done, 2 * known)
    if bad:
        shown = f' (the first {_BAD_LINES_SHOWN} above)' if bad > _BAD_LINES_SHOWN else ''
        raise Failure(f'{count(bad, "bad line")} in {name}{shown}; nothing was loaded (a '
                      f'load stores every line or none)')
    return done


def _store(dump: IO[bytes], name: str, size: int, db: semidbm.SemiDBM,
           progress: Progress) -> int:
    """Store the lines of *dump* (checked: *size* bytes) a batch at a time; return
    how many."""
    batch: List[Tuple[bytes, bytes]] = []
    stored = done = 0
    for number, line in enumerate(dump, 1):
        done += len(line)
        if done > size:  # appended since it was checked
            break
        try:
            pair = parse_line(line)
        except BadLine:  # it was good a moment ago
            raise Failure(f'{name}:{number}: the dump changed while it was loaded; the '
                          f'{count(stored, "record")} before its batch were stored') from None
        if pair is not None:
            batch.append(pair)
        if len(batch) >= _BATCH:
            db.update(batch)
            stored, batch = stored + len(batch), []
        progress(size + done, 2 * size)
    db.update(batch)
    return stored + len(batch)


def parse_line(line: bytes) -> Optional[Tuple[bytes, bytes]]:
    """Return ``(key, value)`` from one line of a dump, or None for a blank line.

    :raises BadLine: saying what is wrong with it.
    """
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except UnicodeDecodeError:
        raise BadLine('not UTF-8 text') from None
    except json.JSONDecodeError as exc:
        raise BadLine(f'not JSON: {exc.msg} at column {exc.colno}') from None
    except RecursionError:
        raise BadLine('not JSON that can be read: nested too deep') from None
    if not isinstance(record, dict):
        raise BadLine(f'not a JSON object but {_shown(record)}')
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        raise BadLine(f'unknown field {unknown[0]!r} (a line has "key" and "value", as '
                      f'text, or with the suffix _base64 or _hex)')
    return _load_field(record, 'key'), _load_field(record, 'value')


def _load_field(record: Dict[str, Any], name: str) -> bytes:
    """The bytes of the key or value *name* of a line of a dump."""
    given = [field for field in (name, name + '_base64', name + '_hex') if field in record]
    if not given:
        raise BadLine(f'no "{name}", "{name}_base64" or "{name}_hex"')
    if len(given) > 1:
        raise BadLine(f'both "{given[0]}" and "{given[1]}"')
    field, text = given[0], record[given[0]]
    if not isinstance(text, str):
        raise BadLine(f'"{field}" is not a string but {_shown(text)}')
    try:
        if field == name:
            return text.encode('utf-8')
        if field.endswith('_hex'):
            return bytes.fromhex(text)
        return base64.b64decode(text, validate=True)
    except UnicodeEncodeError:  # a lone surrogate, "\ud800"
        raise BadLine(f'"{field}" is not text that UTF-8 can encode') from None
    except (ValueError, binascii.Error):
        raise BadLine(f'"{field}" is not valid {field[len(name) + 1:]}') from None


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + '...'


# -- migrate ---------------------------------------------------------------------------

def cmd_migrate(args: argparse.Namespace) -> ExitStatus:
    """Copy every key from another dbm module's database into semidbm, or back."""
    module = dbm_module(args.source_module or args.dest_module)
    _refuse_same(args.src, args.dest)
    progress = Progress('migrate')
    with contextlib.ExitStack() as stack:
        if args.source_module:
            source = stack.enter_context(_open_foreign(module, args.src, 'r'))
            dest = stack.enter_context(open_database(args, args.dest, 'c'))
        else:
            source = stack.enter_context(open_database(args, args.src, 'r'))
            dest = stack.enter_context(_open_foreign(module, args.dest, 'c'))
        stack.callback(progress.finish)
        copied = _copy(source, dest, progress)
    print(f'copied {count(copied, "key")} from {args.src} to {args.dest}',
          file=sys.stderr)
    return ExitStatus.OK


def dbm_module(name: str) -> ModuleType:
    """Import the module *name*, and check that it looks like a dbm module.

    :raises UsageError: unless it can be imported and has ``open()`` and ``error``.
    """
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise UsageError(f'cannot import the dbm module {name!r} ({exc})') from None
    missing = [what for what, ok in [
        ('open()', callable(getattr(module, 'open', None))),
        ('error', _is_exception(getattr(module, 'error', None)))] if not ok]
    if missing:
        raise UsageError(f'{name!r} has no {" and no ".join(missing)}: not a dbm module')
    return module


def _is_exception(error: object) -> bool:
    """Tell whether *error* can be caught: an exception class, or a tuple of them
    (``dbm.error`` is one)."""
    errors = error if isinstance(error, tuple) else (error,)
    return bool(errors) and all(isinstance(each, type) and issubclass(each, BaseException)
                                for each in errors)


def _refuse_same(src: str, dest: str) -> None:
    """:raises UsageError: if SRC and DEST are one path, or one file."""
    try:
        same = os.path.samefile(src, dest)
    except OSError:  # one is missing: the paths alone tell
        same = False
    if same or os.path.realpath(src) == os.path.realpath(dest):
        raise UsageError(f'SRC and DEST are the same database ({src}); copy it to '
                         f'another path')


def _open_foreign(module: ModuleType, path: str,
                  flag: str) -> 'contextlib.closing[Any]':
    """Open *path* with another dbm *module*: a mapping, closed at the end.

    :raises Failure: for the module's error (no such database, say).
    :raises UsageError: if its ``open(path, flag)`` is not a dbm open or does not
        give a mapping.
    """
    name = module.__name__
    try:
        db = module.open(path, flag)
    except module.error as exc:
        raise Failure(f'{name} cannot open {path!r}: {exc}') from None
    except TypeError as exc:  # os.open takes an int flag
        raise UsageError(f'{name}.open({path!r}, {flag!r}) failed ({exc}): not a dbm '
                         f'module') from None
    if not all(hasattr(db, method) for method in ('keys', '__getitem__', '__setitem__')):
        if callable(getattr(db, 'close', None)):
            db.close()
        raise UsageError(f'{name}.open() gave {type(db).__name__}, not a mapping: not a '
                         f'dbm module')
    return contextlib.closing(db)


def _copy(source: Any, dest: Any, progress: Progress) -> int:
    keys = source.keys()
    total = len(keys)
    for done, key in enumerate(keys, 1):
        dest[key] = source[key]
        progress(done, total)
    return total
