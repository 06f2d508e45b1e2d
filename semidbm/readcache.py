"""When the read cache keeps the values it reads, and when it only watches.

A database's read cache holds the values of recent reads, up to *cache_size* of them,
so that a key read again is one dict lookup.  Every read looks in it.  While the cache
is *warm*, every value read from the file goes in; when it is full it starts again
empty, and the keys it held become the *previous generation*.  A read from the file of
a key of the previous generation is a *reuse*: a larger cache would have served it.  A
generation with fewer reuses than one in :data:`WORTH` of its size turns the cache
*cold*: reads over many more keys than it holds (random reads over a large database)
would pay to fill it and rarely find a value in it.

While cold, nothing more goes in (what is in it is still served, and writes keep it
exact); one read from the file in :data:`SAMPLE` is watched instead: its key is noted,
a window of :data:`WINDOW` keys at a time, and counted as a reuse if the window before
noted it too.  Reads that come back to a set of keys the cache could hold find reuses
within a window or two, and turn it warm again when a full cache would serve one read
in WORTH of them.  So a cold read pays for the cache one
look in a dict and one count, and a working set that fits in the cache never fills it
at all.
"""
from typing import Dict, FrozenSet, List

#: While cold, one read from the file in SAMPLE is watched.
SAMPLE = 16
#: The cache stays warm while a larger one would serve one read from the file in WORTH.
WORTH = 16
#: While cold, the keys watched are compared a window of WINDOW keys at a time...
WINDOW = 512
#: ...and at least REUSES of them noted in the window before, and as many as a cache
#: serving one read in WORTH would see, turn the cache warm.
REUSES = 3


class Policy:
    """The bookkeeping of one database's read cache, off the hot path.

    ``SemiDBM.__getitem__`` counts reads from the file down from :attr:`ticks`; at
    zero it calls :meth:`missed` (warm) or :meth:`watched` (cold).
    """

    __slots__ = ('size', 'ticks', 'previous', 'reuses', 'noted')

    def __init__(self, size: int) -> None:
        self.size = size
        #: Reads from the file until the next one the policy sees: 1 while warm (every
        #: one), SAMPLE while cold, and SAMPLE always for a cache of size 0.
        self.ticks = 1 if size else SAMPLE
        self.previous: FrozenSet[bytes] = frozenset()
        self.reuses = 0
        self.noted: List[bytes] = []

    @property
    def warm(self) -> bool:
        """Whether every value read from the file goes in the cache."""
        return self.ticks == 1

    def missed(self, key: bytes) -> None:
        """A read of *key* from the file, while warm: its value goes in the cache."""
        if key in self.previous:
            self.reuses += 1

    def renewed(self, old: Dict[bytes, bytes]) -> None:
        """The cache was full and starts again empty; *old* is what it held."""
        judged = bool(self.previous)  # the first generation has none to compare with
        if judged and self.reuses * WORTH < self.size:
            self.ticks, self.previous, self.noted = SAMPLE, frozenset(), []
        else:
            self.previous = frozenset(old)
        self.reuses = 0

    def watched(self, key: bytes) -> None:
        """One read in SAMPLE from the file, while cold: note *key*, judge a window."""
        if not self.size:  # no cache: nothing to judge
            return
        if key in self.previous:
            self.reuses += 1
        self.noted.append(key)
        if len(self.noted) < WINDOW:
            return
        # reuses / len(noted) is the share of reads a cache of len(previous) keys would
        # serve; one of size keys serves about size / len(previous) times it.
        if self.reuses >= REUSES and (self.reuses * self.size * WORTH
                                      >= len(self.noted) * len(self.previous)):
            self.ticks, self.previous = 1, frozenset()  # warm: a new first generation
        else:
            self.previous = frozenset(self.noted)
        self.noted, self.reuses = [], 0
