"""The error tree: ``error`` (an ``OSError``, as in the stdlib's dbm modules) and its kin."""
from typing import Optional


class DBMError(OSError):
    """Base of semidbm's errors; also exported as ``semidbm.error``."""

    #: The part of the message that says what to do, in the library's words
    #: (``lock_timeout=SECONDS``), or None: the command line says it in its own.
    hint: Optional[str] = None


error = DBMError


class DBMLoadError(DBMError):
    """A data file (or its index snapshot) cannot be loaded: wrong format or damage."""


class DBMNotFoundError(DBMError, FileNotFoundError):
    """No database at the path given to a read-only or read-write ('r', 'w') open.

    Also a ``FileNotFoundError``, which is what ``dbm.dumb`` raises there.
    """


class DBMChecksumError(DBMError):
    """A record's stored checksum does not match its bytes."""


class RecoveryWarning(UserWarning):
    """An open found records after a crash that it could not apply, and kept them."""
