"""``python -m semidbm``: the command line (see :mod:`semidbm.cli`)."""
from semidbm import cli

if __name__ == '__main__':
    raise SystemExit(cli.main())
