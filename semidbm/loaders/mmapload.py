"""A loader that parses the data file through a read-only memory map."""
from __future__ import annotations

import mmap
from typing import Iterator, Tuple

from semidbm.layout import AnyPath
from semidbm.loaders import DBMLoader

#: Kept for 0.5.1 compatibility (it sized 0.5.1's sliding window); one map is used here.
_MAPPED_LOAD_PAGES = 300


class MMapLoader(DBMLoader):
    """Maps the file once and parses it in place."""

    def iter_keys(self, filename: AnyPath) -> Iterator[Tuple[bytes, int, int]]:
        with open(filename, 'rb') as f:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                yield from self._records(buf, filename)
