"""``python -m semidbm``: inspect, check, repair, script and migrate a database.

``python -m semidbm --help`` lists the subcommands and the exit statuses
(:class:`~semidbm.clibase.ExitStatus`); ``docs/cli.rst`` shows each one with its
output.  An expected failure is one line on stderr, never a traceback.

This module is ``main`` and the parser; the subcommands are in
:mod:`semidbm.clicommands` and :mod:`semidbm.climove`, what they share in
:mod:`semidbm.clibase`.
"""
import argparse
import os
import sys
from typing import Callable, List, Optional, Sequence, Tuple

import semidbm
from semidbm import clicommands as commands
from semidbm import climove as move
from semidbm import lock, opening
from semidbm.clibase import ExitStatus, Failure, UsageError, one_line

__all__ = ['main', 'ExitStatus']

Command = Callable[[argparse.Namespace], ExitStatus]
AddArguments = Callable[[argparse.ArgumentParser], None]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line *argv* (default ``sys.argv[1:]``); return the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse says)
        return exc.code if isinstance(exc.code, int) else ExitStatus.USAGE.value
    try:
        status = args.run(args)
        sys.stdout.flush()  # a closed pipe is found here, not at the interpreter's exit
        return int(status)
    except UsageError as exc:
        args.subparser.print_usage(sys.stderr)
        print(f'{args.subparser.prog}: error: {exc}', file=sys.stderr)
        return ExitStatus.USAGE.value
    except BrokenPipeError:  # a reader such as `head` had all it wanted: no error
        _discard_stdout()
        return ExitStatus.OK.value
    except (Failure, OSError) as exc:
        message, status = _rephrased(exc)
        print(f'semidbm {args.command}: error: {message}', file=sys.stderr)
        return status.value
    except KeyboardInterrupt:
        print(f'semidbm {args.command}: interrupted', file=sys.stderr)
        return ExitStatus.INTERRUPTED.value


def _discard_stdout() -> None:
    """Point standard output at the null device, so that the flush at the
    interpreter's exit does not fail again ("Exception ignored ...")."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError:  # not a file (in a test): nothing to flush at exit
        pass


def _rephrased(exc: Exception) -> Tuple[str, ExitStatus]:
    """The message of *exc* in the command line's words, and the exit status.

    A library error that says what to do in the library's words (its ``hint``) says
    it in ours instead; a lock held elsewhere is known by its hint.
    """
    if isinstance(exc, Failure):
        return one_line(exc), exc.status
    message = one_line(exc)
    if not isinstance(exc, semidbm.error):
        return message, ExitStatus.FAILURE
    ours, status = {
        lock.WAIT_HINT: ('--lock-timeout SECONDS', ExitStatus.LOCKED),
        opening.MISSING_HINT: ('create one with: semidbm set PATH KEY VALUE, or '
                               'semidbm load PATH FILE', ExitStatus.FAILURE),
        lock.NO_LOCK_HINT: ('the command line always locks: copy the database to a '
                            'local file system', ExitStatus.FAILURE),
    }.get(exc.hint or '', (None, ExitStatus.FAILURE))
    if isinstance(exc, (semidbm.DBMLoadError, semidbm.DBMChecksumError)):
        status = ExitStatus.DAMAGED
    if ours is not None and exc.hint:
        message = message.replace(exc.hint, ours)
    return message, status


# -- the parser ----------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='semidbm', description='Inspect, check, repair, script and migrate a '
        'semidbm database\n(a directory holding PATH/data).  The options --lock-timeout, '
        '--hex and\n--base64 go before the subcommand or after it.',
        epilog=_exit_statuses(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', action='version',
                        version=f'semidbm {semidbm.__version__}')
    _lock_timeout(parser, None)
    _encoding(parser, 'text')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name, run, help_text, add_arguments in _subcommands():
        sub = subparsers.add_parser(name, help=help_text,
                                  description=help_text[0].upper() + help_text[1:] + '.')
        sub.set_defaults(run=run, subparser=sub)
        _lock_timeout(sub, argparse.SUPPRESS)  # given here, it overrides the one before
        add_arguments(sub)
    return parser


def _exit_statuses() -> str:
    return 'exit status:\n' + '\n'.join(f'  {status.value:<4} {status.meaning}'
                                        for status in ExitStatus)


def _subcommands() -> List[Tuple[str, Command, str, AddArguments]]:
    """``(name, function, help, add_arguments)`` for each subcommand."""
    return [
        ('stat', commands.cmd_stat, 'show keys, live and dead bytes, format version '
         'and snapshot', _json_arguments('what stats() reports')),
        ('check', commands.cmd_check, "verify every record's checksum (exit status "
         f'{ExitStatus.DAMAGED.value} on damage)', _json_arguments('the report')),
        ('repair', commands.cmd_repair, 'recover every good record of a damaged '
         'database, keeping the original as PATH/data.corrupt-TIMESTAMP, and apply the '
         'records a recovery kept aside', _repair_arguments),
        ('compact', commands.cmd_compact, 'rewrite the data file with only the live '
         'records', _path),
        ('get', commands.cmd_get, 'write the value of each KEY to standard output',
         _get_arguments),
        ('set', commands.cmd_set, 'store a value under KEY (the database is created if '
         'missing)', _set_arguments),
        ('delete', commands.cmd_delete, f'delete KEY (exit status '
         f'{ExitStatus.MISSING_KEY.value} if missing)', _delete_arguments),
        ('keys', commands.cmd_keys, 'list the keys, one a line', _keys_arguments),
        ('dump', move.cmd_dump, 'write every key and value as JSON lines to standard '
         'output', _dump_arguments),
        ('load', move.cmd_load, 'store the keys and values of a dump (JSON lines): all '
         'of them, or none if any line is bad', _load_arguments),
        ('migrate', move.cmd_migrate, 'copy a database of another dbm module into '
         'semidbm (--from) or out of it (--to)', _migrate_arguments),
    ]


def _lock_timeout(parser: argparse.ArgumentParser, default: Optional[str]) -> None:
    parser.add_argument('--lock-timeout', type=float, default=default,
                        metavar='SECONDS', help='wait this long for a lock held by '
                        'another process (default: fail at once)')


def _encoding(parser: argparse.ArgumentParser, default: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--hex', dest='encoding', action='store_const', const='hex',
                       default=default, help='keys and values on the command line and '
                       'in the output are hexadecimal (in a dump: key_hex, value_hex)')
    group.add_argument('--base64', dest='encoding', action='store_const',
                       const='base64', default=default, help='... are base64 (in a '
                       'dump: key_base64, value_base64, its default)')


def _path(sub: argparse.ArgumentParser) -> None:
    sub.add_argument('path', metavar='PATH', help='the database directory')


def _json_arguments(what: str) -> AddArguments:
    def add(sub: argparse.ArgumentParser) -> None:
        _path(sub)
        sub.add_argument('--json', action='store_true', help=f'print {what} as a JSON '
                         'object, for scripts (docs/cli.rst lists its keys)')
    return add


def _repair_arguments(sub: argparse.ArgumentParser) -> None:
    _path(sub)
    sub.add_argument('--force', action='store_true',
                     help='apply kept records even when the database was written to '
                     'since they were kept (they may overwrite newer values)')


def _key(sub: argparse.ArgumentParser, nargs: Optional[str] = None) -> None:
    sub.add_argument('key', metavar='KEY', nargs=nargs, help='a key: text (stored as '
                     'UTF-8), or its bytes in hex or base64 with --hex or --base64')


def _get_arguments(sub: argparse.ArgumentParser) -> None:
    _path(sub)
    _key(sub, '+')
    _encoding(sub, argparse.SUPPRESS)


def _set_arguments(sub: argparse.ArgumentParser) -> None:
    _path(sub)
    _key(sub)
    sub.add_argument('value', metavar='VALUE', nargs='?', help="the value, as KEY is "
                     "given; '-' stores the bytes of standard input as they are")
    sub.add_argument('--file', metavar='FILE', help='store the bytes of FILE as they '
                     'are (for binary and large values), instead of VALUE')
    _encoding(sub, argparse.SUPPRESS)


def _delete_arguments(sub: argparse.ArgumentParser) -> None:
    _path(sub)
    _key(sub)
    _encoding(sub, argparse.SUPPRESS)


def _keys_arguments(sub: argparse.ArgumentParser) -> None:
    _path(sub)
    _encoding(sub, argparse.SUPPRESS)


def _dump_arguments(sub: argparse.ArgumentParser) -> None:
    _path(sub)
    sub.add_argument('--text', action='store_true',
                     help='write keys and values that are UTF-8 as text (others stay '
                     'base64, or hex with --hex)')
    _encoding(sub, argparse.SUPPRESS)


def _load_arguments(sub: argparse.ArgumentParser) -> None:
    _path(sub)
    sub.add_argument('file', metavar='FILE', nargs='?', default='-',
                     help="a dump (JSON lines; each line names its encoding, so "
                     "--hex and --base64 change nothing); default '-', standard input")
    _encoding(sub, argparse.SUPPRESS)


def _migrate_arguments(sub: argparse.ArgumentParser) -> None:
    direction = sub.add_mutually_exclusive_group(required=True)
    direction.add_argument('--from', dest='source_module', metavar='MODULE',
                           help='copy SRC, a MODULE database, into the semidbm DEST')
    direction.add_argument('--to', dest='dest_module', metavar='MODULE',
                           help='copy the semidbm SRC into DEST, a MODULE database')
    sub.add_argument('src', metavar='SRC', help='the database to copy from (of MODULE '
                     'with --from, else semidbm)')
    sub.add_argument('dest', metavar='DEST', help='the database to copy into, created '
                     'if missing (of MODULE with --to, else semidbm); its keys that SRC '
                     'has too are overwritten')
