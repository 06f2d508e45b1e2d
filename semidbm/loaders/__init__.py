"""Record loaders kept for code written against semidbm 0.5.1.

``iter_keys(filename)`` yields ``(key, value_offset, value_size)`` for each record
(tombstones with value size :data:`semidbm.format.DELETED`), stopping at a torn
tail.  Both loaders are byte sources for the one parser, :func:`semidbm.format.scan`;
the store itself loads through its own map and does not use them.
"""
from __future__ import annotations

from typing import Iterator, Tuple

from semidbm import format, layout, loading

FILE_FORMAT_VERSION = format.VERSION
FILE_IDENTIFIER = format.MAGIC
_DELETED = format.DELETED


class DBMLoader:
    """Base class: turns a byte source into ``(key, value_offset, value_size)``."""

    def iter_keys(self, filename: layout.AnyPath) -> Iterator[Tuple[bytes, int, int]]:
        raise NotImplementedError('iter_keys')

    @staticmethod
    def _records(buf: format.ByteSource,
                 filename: layout.AnyPath) -> Iterator[Tuple[bytes, int, int]]:
        loading.check_header(buf, filename)
        head = format.RECORD_HEAD.size
        for offset, key, value_size in format.scan(buf, format.HEADER.size, len(buf)):
            yield bytes(key), offset + head + len(key), value_size
