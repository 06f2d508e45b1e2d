"""Adapters that give ``scripts/benchmark`` a dbm-style ``open(path, flag)`` for stores
that do not have one.

An adapter module has ``open(path, flag)`` returning an object with ``__getitem__``,
``__setitem__``, ``__delitem__`` and ``close()``; ``update(pairs)`` and ``compact()`` are
used where present. Optional module attributes the benchmark reads:

``PERSISTENT``   False when nothing reaches the disk (no ``load`` workload, no disk bytes).
``ISOLATED``     True to run the child with ``python -E -S`` (no site-packages, no
                 PYTHONPATH), then ``configure(peer_dir)`` before the first ``open``.
``prepare(dir)`` run in the parent before the child starts (e.g. a one-time install).
``describe()``   the version and location to print.
"""
