"""Promises about the index snapshot's file alone (semidbm/snapshot.py): its round trips.

Its use by the store (fresh, stale, extended by a scan, forged) is tested in
test_api.py, test_interop.py, test_model.py and test_fuzz.py; here, the file alone.
"""
import pathlib

import pytest

from semidbm import layout, snapshot

DATA = b'SEMI' + bytes(4) + bytes(range(256)) * 64


def write(tmp_path, index, ino=7):
    files = layout.Layout(tmp_path)
    snapshot.write(files, index, DATA, len(DATA), ino, 0o644)
    return files.snapshot


def round_trip(tmp_path, index, ino=7):
    return snapshot.load(write(tmp_path, index, ino), DATA, len(DATA), ino)


@pytest.mark.parametrize('count', [0, 1, 4095, 4096, 4097, 3 * 4096 + 5, 70000])
def test_keys_of_one_size_come_back_in_order(tmp_path, count):
    index = {b'%015d' % n + b'k': (n % 1000 + 8) << 32 | n % 100 for n in range(count)}
    assert round_trip(tmp_path, index) == (index, len(DATA))
    assert list(round_trip(tmp_path, index)[0]) == list(index)


def test_keys_of_many_sizes_come_back(tmp_path):
    index = {b'k' * (n % 50): n << 32 for n in range(50)}
    index[b''] = 5
    assert round_trip(tmp_path, index) == (index, len(DATA))


def test_a_snapshot_of_another_file_is_not_trusted(tmp_path):
    path = write(tmp_path, {b'key': 9 << 32 | 1})
    assert snapshot.load(path, DATA, len(DATA), 8) is None  # another inode
    changed = DATA[:-1] + b'\x00'
    assert snapshot.load(path, changed, len(changed), 7) is None  # other bytes
    assert snapshot.load(path, DATA, len(DATA) - 1, 7) is None  # shorter than covered


def test_a_damaged_snapshot_is_not_trusted(tmp_path):
    path = pathlib.Path(write(tmp_path, {b'key': 9 << 32 | 1}))
    blob = path.read_bytes()
    flipped = blob[:-5] + bytes([blob[-5] ^ 0xFF]) + blob[-4:]  # the byte before the crc
    for cut in (blob[:-1], blob[:10], flipped):
        path.write_bytes(cut)
        assert snapshot.load(str(path), DATA, len(DATA), 7) is None
