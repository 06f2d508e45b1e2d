"""A loader that reads the whole data file into memory (no mmap needed)."""
from semidbm.loaders import DBMLoader


class SimpleFileLoader(DBMLoader):
    """Reads the file with one ``read()`` and parses the bytes."""

    def iter_keys(self, filename):
        with open(filename, 'rb') as f:
            data = f.read()
        return self._records(data, filename)
