"""Counting the outcomes of the long crash and fuzz runs (docs/reliability.rst)."""
import json
import os


def record(source, figure):
    """With ``SEMIDBM_STATS=FILE``, count *figure* of *source* (a test module) in FILE:
    the figures of the long run in docs/reliability.rst come from there."""
    stats = os.environ.get('SEMIDBM_STATS')
    if stats:
        with open(stats, 'a') as f:
            f.write(json.dumps([source, figure]) + '\n')
