"""Promises about any sequence of operations: semidbm holds what a dict holds, across
reopens, compactions and kills (random operations, checked step by step).

Fast by default; ``SEMIDBM_LONG=1`` runs many more and longer examples::

    SEMIDBM_LONG=1 python -m pytest tests/test_model.py

A failure hypothesis finds is pinned at the end of this file, shrunk, as a plain
named test.
"""
import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule)

import helpers
import semidbm
from semidbm import layout, snapshot

settings.register_profile(
    'semidbm-fast', max_examples=50, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    'semidbm-long', max_examples=2000, stateful_step_count=100, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
PROFILE = 'semidbm-long' if os.environ.get('SEMIDBM_LONG') == '1' else 'semidbm-fast'

# Few keys, so that overwrites and deletes hit keys that exist.
keys = st.sampled_from([b'', b'a', b'b', b'ab', b'\x00', b'\xff\xff', 'ключ'.encode()])
values = st.one_of(
    st.just(b''),
    st.binary(max_size=16),
    # A few KB, so that the file grows past its preallocated room now and then.
    st.builds(lambda unit, count: unit * count, st.binary(min_size=1, max_size=8),
              st.integers(min_value=256, max_value=1024)),
)


class StoreModel(RuleBasedStateMachine):
    """The database must always hold exactly what the dict holds."""

    def __init__(self):
        super().__init__()
        self.saved_min_keys = snapshot.MIN_KEYS
        self.directory = tempfile.mkdtemp(prefix='semidbm-model-')
        self.path = os.path.join(self.directory, 'db')
        self.model = {}
        self.db = semidbm.open(self.path, 'c')

    @initialize(min_keys=st.sampled_from([0, 1, 3, 6]))
    def snapshot_from(self, min_keys):
        # Index snapshots from a few keys (not thousands), so that reopens here load
        # them, and smaller databases still take the path without.
        snapshot.MIN_KEYS = min_keys

    def teardown(self):
        try:
            self.db.close()
        finally:
            snapshot.MIN_KEYS = self.saved_min_keys
            shutil.rmtree(self.directory)

    def reopen(self, flag='w', **close_options):
        self.db.close(**close_options)
        self.db = semidbm.open(self.path, flag)

    @rule(key=keys, value=values)
    def put(self, key, value):
        self.db[key] = value
        self.model[key] = value

    @rule(pairs=st.lists(st.tuples(keys, values), max_size=5))
    def update(self, pairs):
        self.db.update(pairs)
        self.model.update(pairs)

    @rule(key=keys)
    def delete(self, key):
        if key in self.model:
            del self.db[key]
            del self.model[key]
        else:
            with pytest.raises(KeyError):
                del self.db[key]

    @rule(key=keys)
    def pop(self, key):
        assert self.db.pop(key, None) == self.model.pop(key, None)

    @rule(key=keys, value=values)
    def setdefault(self, key, value):
        assert self.db.setdefault(key, value) == self.model.setdefault(key, value)

    @rule(key=st.sampled_from(['a', 'ключ']), value=st.text(max_size=8))
    def put_str(self, key, value):
        self.db[key] = value
        self.model[key.encode('utf-8')] = value.encode('utf-8')

    @precondition(lambda self: len(self.model) > 3)
    @rule()
    def clear(self):
        self.db.clear()
        self.model.clear()

    @rule()
    def reopen_for_writing(self):
        self.reopen('w')

    @precondition(lambda self: len(self.model) > 3)
    @rule()
    def reopen_as_new(self):
        self.reopen('n')
        self.model.clear()

    @rule()
    def compact(self):
        self.db.compact()

    @rule()
    def close_with_compact(self):
        self.reopen('c', compact=True)

    @rule()
    def close_and_reopen_read_only(self):
        self.reopen('r')
        assert self.contents() == self.model
        with pytest.raises(semidbm.error):
            self.db[b'a'] = b'refused'
        self.reopen('w')

    @rule()
    def read_a_copy_taken_while_open(self):
        # What a process killed right now would leave: the file as it is, pad and all.
        copy = os.path.join(self.directory, 'copy')
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(self.path, copy)
        assert helpers.contents(copy, verify_checksums=True) == self.model

    @rule()
    def carry_on_after_a_kill(self):
        # A killed writer leaves the files as they are now; the next open writes on.
        copy = os.path.join(self.directory, 'copy')
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(self.path, copy)
        self.db.close()
        shutil.rmtree(self.path)
        os.rename(copy, self.path)
        self.db = semidbm.open(self.path, 'w')

    def contents(self):
        return {key: self.db[key] for key in self.db.keys()}

    @invariant()
    def holds_what_the_model_holds(self):
        assert len(self.db) == len(self.model)
        assert self.contents() == self.model


TestStoreModel = StoreModel.TestCase
TestStoreModel.settings = settings.get_profile(PROFILE)


# -- failures found by the model, pinned ------------------------------------------

def test_a_snapshot_holding_only_the_empty_key_loads(path, monkeypatch):
    # All keys of one size took a fast path that stepped by that size: zero here.
    monkeypatch.setattr(snapshot, 'MIN_KEYS', 0)
    with semidbm.open(path, 'c') as db:
        db[b''] = b''
    assert os.path.exists(os.path.join(path, layout.SNAPSHOT))
    with semidbm.open(path, 'r') as db:
        assert dict(db.items()) == {b'': b''}
