"""A loader that reads the whole data file into memory (no mmap needed)."""
from __future__ import annotations

from typing import Iterator, Tuple

from semidbm.layout import AnyPath
from semidbm.loaders import DBMLoader


class SimpleFileLoader(DBMLoader):
    """Reads the file with one ``read()`` and parses the bytes."""

    def iter_keys(self, filename: AnyPath) -> Iterator[Tuple[bytes, int, int]]:
        with open(filename, 'rb') as f:
            data = f.read()
        return self._records(data, filename)
