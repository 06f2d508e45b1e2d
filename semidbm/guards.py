"""What the mapping refuses: keys and values that are not bytes, and a closed database."""
from __future__ import annotations

from typing import NoReturn, Tuple, Union

from semidbm.exceptions import error

#: What a key or value may be given as: :func:`coerce` makes it bytes.
Data = Union[bytes, bytearray, memoryview, str]


class Closed:
    """Stands in for the index and the data file of a closed db: any use raises.

    The one place that knows "closed", at no cost to an open db: every operation
    goes through the index or the file, so none needs a check of its own.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def _closed(self, *args: object) -> NoReturn:
        raise error(f'{self.path}: the database is closed; open it again to use it')

    __getitem__ = __setitem__ = __delitem__ = __contains__ = __iter__ = __len__ = _closed

    def __getattr__(self, name: str) -> NoReturn:
        self._closed()


def coerce(data: object, what: str = 'key') -> bytes:
    """Return *data* as bytes: str is encoded as UTF-8, other buffers (and bytes
    subclasses) copied into bytes.

    :raises TypeError: for anything else (int, None, ...).
    """
    if isinstance(data, str):
        return data.encode('utf-8')
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f'{what}s must be bytes or str, not {type(data).__name__}')


def coerce_pair(key: object, value: object) -> Tuple[bytes, bytes]:
    return coerce(key), coerce(value, 'value')
