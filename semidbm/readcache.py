"""When the read cache keeps values, and when it sleeps.

A database's read cache holds the values of recent reads, up to *cache_size* of them,
so that a key read again is one dict lookup.  It is filled in generations: when it is
full, its keys become the previous generation and it starts again empty.  A read that
misses the cache but finds its key in the previous generation is a *reuse*: the cache
would have served it had it been larger.  When a whole generation passes with fewer
reuses than one in REUSE_SHARE of its size, the reads are not repeating at a scale the
cache can serve (random reads over many more keys than it holds), and the cache goes to
sleep: reads neither look in it nor fill it, which is all a cold read would pay for it.
After SLEEP_FACTOR generations' worth of reads it wakes for a trial of two generations;
each trial that fails doubles the next sleep, up to MAX_SLEEPS doublings.

A working set that fits in the cache never fills it, so the cache never sleeps for it.
"""
from typing import Dict, FrozenSet, Optional

# A generation reused at least 1/16 of its keys: the cache serves a few percent of
# reads, and (the read_hot benchmark against read_random) each hit saves more than a
# cold read pays for the cache.
REUSE_SHARE = 16
SLEEP_FACTOR = 16
MAX_SLEEPS = 6


class Policy:
    """The bookkeeping of one database's read cache, off the hot path.

    The hot path (``SemiDBM.__getitem__``) counts the reuses, and the reads left to
    sleep; it calls :meth:`full` when the cache is full.
    """

    __slots__ = ('size', 'previous', 'judged', 'sleeps')

    def __init__(self, size: int) -> None:
        self.size = size
        self.previous: FrozenSet[bytes] = frozenset()
        self.judged = False  # whether *previous* is a whole generation of this trial
        self.sleeps = 0

    def full(self, cache: Dict[bytes, bytes], reuses: int) -> Optional[int]:
        """The cache is full after a generation that had *reuses*: None to go on with
        an empty cache, or the number of reads to sleep for."""
        if self.judged and reuses * REUSE_SHARE < self.size:
            self.previous, self.judged = frozenset(), False
            self.sleeps = min(self.sleeps + 1, MAX_SLEEPS)
            return self.size * SLEEP_FACTOR << (self.sleeps - 1)
        if self.judged:
            self.sleeps = 0  # the reads repeat: the next failed trial sleeps briefly
        self.previous, self.judged = frozenset(cache), True
        return None
