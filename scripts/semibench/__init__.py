"""The code of ``scripts/benchmark`` and ``scripts/plot_benchmarks``, one concern a module.

``workloads``  the data and the timed workloads, run on one module in one process
``durable``    the loops of the durable workloads (writes that wait for the disk)
``floor``      the read floor: semidbm's index lookup and map slice, nothing else
``memory``     peak RSS and the C heap, as far as the OS lets a process measure them
``progress``   what a child says on stderr while it works
``runner``     the child processes: one per module and round, then each one's best
``interpreters`` MODULE@PYTHON: finding PYTHON, and what it says it is
``tables``     the comparison tables of a run, as data: built once, rendered twice
``goals``      semidbm's speed targets and the docs runs that judge them
``report``     text for the terminal, reST for the docs, the JSON of the results
``plot``       the docs' figure (matplotlib), and ``scripts/plot_benchmarks``
``cli``        the command line of ``scripts/benchmark``

Only ``plot`` needs more than the standard library. The adapters for stores without
``open(path, flag)`` are the package ``scripts/adapters/``, beside this one (with
``pipcache``, which installs the packages a contender needs under ~/.cache).
"""
