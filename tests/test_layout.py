"""Promises about the files of a database directory: every file semidbm makes gets the
database's permission bits, whatever later opens pass as *mode* (semidbm/layout.py).

The parity of *mode* with the stdlib on a new database is in test_parity.py.
"""
import os
import stat

import pytest

import helpers
import semidbm
from semidbm import format, layout, repair, snapshot

MANY = {b'key%05d' % n: b'value %d' % n for n in range(snapshot.MIN_KEYS)}


@pytest.fixture
def private(tmp_path, umask):
    """A database made with mode 0o600, big enough for an index snapshot."""
    umask(0o022)
    path = str(tmp_path / 'private.db')
    with semidbm.open(path, 'c', 0o600) as db:
        db.update(MANY)
    assert helpers.file_modes(path) == {layout.DATA: 0o600, layout.SNAPSHOT: 0o600,
                                        layout.SYNCED: 0o600}
    return path


def test_the_directory_gets_the_mode_with_search_bits_where_it_reads(tmp_path, umask):
    umask(0o022)
    for mode, expected in [(0o600, 0o700), (0o640, 0o750), (0o666, 0o755)]:
        path = tmp_path / oct(mode)
        semidbm.open(path, 'c', mode).close()
        assert stat.S_IMODE(os.stat(path).st_mode) == expected, oct(mode)


def test_compaction_keeps_the_permission_bits_of_the_data_file(private):
    with semidbm.open(private, 'w', 0o666) as db:
        db[b'key00000'] = b'overwritten'
        db.compact()
        # No snapshot: it described the old file.
        assert helpers.file_modes(private) == {layout.DATA: 0o600, layout.SYNCED: 0o600}
    assert set(helpers.file_modes(private).values()) == {0o600}
    assert layout.SNAPSHOT in helpers.file_modes(private)


def test_compaction_keeps_bits_that_the_umask_would_take(tmp_path, umask):
    umask(0o000)
    path = str(tmp_path / 'shared.db')
    with semidbm.open(path, 'c', 0o664) as db:
        db[b'a'] = b'1'
    umask(0o077)
    with semidbm.open(path, 'w') as db:
        db.compact()
    assert helpers.file_modes(path) == {layout.DATA: 0o664, layout.SYNCED: 0o664}


def test_repair_keeps_the_permission_bits_of_the_data_file(private):
    data = helpers.data_path(private)
    with open(data, 'r+b') as f:  # damage the first record's key: valid records follow
        f.seek(format.HEADER.size + format.RECORD_HEAD.size)
        f.write(b'X')
    report, kept = repair.repair(private)
    assert kept is not None and report.damage
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600


def test_the_snapshot_is_written_with_the_data_files_bits_after_a_chmod(private):
    os.chmod(helpers.data_path(private), 0o640)
    with semidbm.open(private, 'w') as db:
        db[b'more'] = b'keys'
    # The sync mark was made at 0o600, with the database, and keeps its bits.
    assert helpers.file_modes(private) == {layout.DATA: 0o640, layout.SNAPSHOT: 0o640,
                                           layout.SYNCED: 0o600}


def test_on_windows_no_directory_is_synced(tmp_path, monkeypatch):
    """Windows cannot open a directory; its file systems need no such step."""
    monkeypatch.setattr(layout.os, 'name', 'nt')
    layout.fsync_directory(str(tmp_path / 'not even there'))  # no open, no error
