"""What the subcommands of ``python -m semidbm`` share: the exit statuses, the expected
failures, the open, progress, and keys and values as command-line text.

The parser and ``main`` are in :mod:`semidbm.cli`; the subcommands in
:mod:`semidbm.clicommands` and :mod:`semidbm.climove`.
"""
import argparse
import base64
import binascii
import enum
import sys
import time
import warnings
from typing import Optional, TextIO

import semidbm
from semidbm import opening


class ExitStatus(enum.IntEnum):
    """The exit statuses of the command line, each defined here only (``--help``
    and ``docs/cli.rst`` list them)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    MISSING_KEY = 3
    LOCKED = 4
    DAMAGED = 5
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        """What the status says, for ``--help``."""
        return {
            ExitStatus.OK: 'success',
            ExitStatus.FAILURE: 'a failure: no database, a bad dump, an I/O error',
            ExitStatus.USAGE: 'a usage error: a bad option or argument',
            ExitStatus.MISSING_KEY: 'a key asked for is missing',
            ExitStatus.LOCKED: 'a lock is held by another process',
            ExitStatus.DAMAGED: 'damage found: a checksum that fails, a data file that '
                                'does not load',
            ExitStatus.INTERRUPTED: 'interrupted (Ctrl-C)',
        }[self]


class Failure(Exception):
    """An expected failure: one line on stderr, and the exit *status*."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.FAILURE) -> None:
        super().__init__(message)
        self.status = status


class UsageError(Exception):
    """A bad argument found after parsing: reported as argparse does, exit status 2."""


def one_line(message: object) -> str:
    """*message* (an exception, a warning) as one line."""
    return ' '.join(str(message).split())


def count(number: int, noun: str) -> str:
    """``1 key``, ``2 keys``."""
    return f'{number} {noun}' + ('' if number == 1 else 's')


class Progress:
    """A one-line progress report on stderr, shown only when stderr is a terminal."""

    def __init__(self, label: str, stream: Optional[TextIO] = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.shown = self.stream.isatty()
        self._next = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.shown or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + 0.1
        status = f'{100 * done // total}% ({done} of {total})' if total else str(done)
        self.stream.write(f'\r{self.label}: {status}')
        self.stream.flush()

    def finish(self) -> None:
        if self.shown and self._next:
            self.stream.write('\r\x1b[K')
            self.stream.flush()


def open_database(args: argparse.Namespace, path: str,
                  flag: opening.Flag) -> semidbm.SemiDBM:
    """Open *path*; what the open warns of (a recovery after a crash, another dbm's
    database beside a new one) is one line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        # Every value the command line prints is verified: it never shows damage.
        db = semidbm.open(path, flag, lock_timeout=args.lock_timeout,
                          verify_checksums=True)
    for warning in caught:
        print(f'semidbm {args.command}: warning: {one_line(warning.message)}',
              file=sys.stderr)
    return db


def decode(text: str, encoding: str, what: str) -> bytes:
    """The bytes a command-line argument stands for (*encoding*: text, hex, base64)."""
    try:
        if encoding == 'hex':
            return bytes.fromhex(text)
        if encoding == 'base64':
            return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise UsageError(f'the {what} {text!r} is not valid {encoding}') from None
    return text.encode('utf-8', 'surrogateescape')


def encode(data: bytes, encoding: str, what: str) -> str:
    """*data* as one line of output text; *what* names it in an error.

    :raises Failure: in text, for bytes that are not one line of UTF-8.
    """
    if encoding == 'hex':
        return data.hex()
    if encoding == 'base64':
        return base64.b64encode(data).decode('ascii')
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        text = '\n'
    if '\n' in text or '\r' in text:
        raise Failure(f'the {what} is not one line of UTF-8 text; use --hex or '
                      f'--base64')
    return text
