"""Adapters that give ``scripts/benchmark`` a dbm-style ``open(path, flag)`` for stores
that do not have one.

An adapter module has ``open(path, flag)`` returning an object with ``__getitem__``,
``__setitem__``, ``__delitem__`` and ``close()``; ``update(pairs)`` and ``compact()`` are
used where present. Optional module attributes the benchmark reads:

``PERSISTENT``   False when nothing reaches the disk (no ``load`` workload, no disk bytes).
``ISOLATED``     True to run the child with ``python -E -S`` (no site-packages, no
                 PYTHONPATH).
``prepare(peer_dir, interpreter)``  run in the parent before the child starts (a
                 one-time install): *peer_dir* is ``--peer-dir``, *interpreter* what the
                 child's interpreter said of itself (semibench/interpreters.py). It raises
                 ImportError to have the store listed as not run, with the reason.
``configure(peer_dir)``  run in the child before the first ``open`` (the import).
``describe()``   the version and location to print.

``pipcache`` is not an adapter: it installs what the adapters need under ~/.cache.
"""
