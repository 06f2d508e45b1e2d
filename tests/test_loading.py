"""Promises about the scan at open, a window at a time (semidbm/loading.py): the windows
never change what it finds.

A file is scanned twice, once in one window and once in windows of a few bytes, and
both must give the same index, the same end and the same refusal; and pages behind
the scan are given back, so an open does not leave the file counted in the RSS.
"""
import mmap
import pathlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers
import semidbm
from semidbm import format, layout, loading
from semidbm.exceptions import DBMLoadError

keys = st.binary(max_size=6)
values = st.one_of(st.none(), st.binary(max_size=40))  # None: a delete
damage = st.one_of(
    st.none(),
    st.tuples(st.just('cut'), st.integers(min_value=1, max_value=60)),
    st.tuples(st.just('pad'), st.integers(min_value=1, max_value=60)),
    st.tuples(st.just('flip'), st.integers(min_value=0)),
)


def build(pairs, harm):
    data = bytearray(helpers.records(*pairs))
    body = data[format.HEADER.size:]
    if harm is not None:
        kind, amount = harm
        if kind == 'cut':
            del data[max(format.HEADER.size, len(data) - amount):]
        elif kind == 'pad':
            data[len(data) - min(amount, len(body)):] = format.PAD_BYTE * min(amount, len(body))
        elif body:
            data[format.HEADER.size + amount % len(body)] ^= 0x5A
    return bytes(data)


def outcome(data, window, durable_end=None):
    """What a scan makes of *data*, with no sync mark or one at *durable_end*."""
    index = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, 'WINDOW', window)
        try:
            end, leftover = loading.scan_into(index, data, format.HEADER.size, len(data),
                                              durable_end, 'd', 'db')
        except DBMLoadError as exc:
            return 'refused', str(exc)
    return index, end, leftover


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(keys, values), max_size=30), damage,
       st.integers(min_value=1, max_value=64), st.sampled_from([None, 'header', 'all']))
def test_windows_find_what_one_scan_finds(pairs, harm, window, durable):
    data = build(pairs, harm)
    durable_end = {None: None, 'header': format.HEADER.size, 'all': len(data)}[durable]
    assert (outcome(data, window, durable_end)
            == outcome(data, len(data) + 1, durable_end))


@pytest.mark.parametrize('window', [1, 7, 64, 1 << 24])
def test_a_value_longer_than_the_window_is_found(window):
    big = bytes(range(256)) * 40
    data = format.HEADER_BYTES + format.encode_put(b'big', big) + format.encode_put(b'k', b'v')
    index, end, _ = outcome(data, window)
    assert end == len(data)
    position = index[b'big']
    assert data[position >> 32:(position >> 32) + (position & 0xFFFFFFFF)] == big


def resident_kib(path):
    """The KiB of *path*'s mapping that this process has resident (Linux)."""
    with open('/proc/self/smaps') as smaps:
        blocks = re.split(r'\n(?=[0-9a-f]+-[0-9a-f]+ )', smaps.read())
    return sum(int(re.search(r'^Rss:\s+(\d+) kB', block, re.M).group(1))
               for block in blocks if block.split('\n')[0].endswith(path))


@pytest.mark.skipif(not hasattr(mmap.mmap, 'madvise') or not hasattr(mmap, 'MADV_DONTNEED')
                    or not __import__('os').path.exists('/proc/self/smaps'),
                    reason='needs madvise and /proc/self/smaps')
def test_a_read_only_open_gives_the_scanned_pages_back(path, monkeypatch):
    value = b'v' * 4000
    with semidbm.open(path, 'n') as db:
        db.update((b'%06d' % n, value) for n in range(2000))  # 8 MB
    monkeypatch.setattr(semidbm.snapshot, 'MIN_KEYS', 10 ** 9)  # no snapshot: a scan
    pathlib.Path(path, layout.SNAPSHOT).unlink(missing_ok=True)
    monkeypatch.setattr(loading, 'WINDOW', 1 << 20)
    data_path = helpers.data_path(path)
    with semidbm.open(path, 'r') as db:
        assert len(db) == 2000
        # At most the last window and the tail the open checks are left mapped.
        assert resident_kib(data_path) <= 2 * 1024
        assert db[b'001999'] == value


def test_pages_that_cannot_be_given_back_are_kept_quietly():
    class Refusing:
        def madvise(self, *args):
            raise OSError(22, 'Invalid argument')

    assert loading._release(Refusing(), 0, 3 * mmap.PAGESIZE + 5) == 0
    assert loading._release(b'bytes have no madvise', 0, 3 * mmap.PAGESIZE) == 0
