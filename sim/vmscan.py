"""Page-cache reclaim, reduced from mm/vmscan.c: one file LRU with a referenced bit.

The kernel keeps active and inactive lists per lruvec and ages pages between them
(``shrink_active_list``, ``folio_check_references``). This model keeps one list in
age order and gives a referenced page one more trip round it, which is what the
inactive list's second chance amounts to for a streaming workload. Anonymous memory
is not reclaimed: the simulated machine has no swap.

Pages are identified by pfn and carry an owner id; evicting a page calls the owner's
callback, which frees it (``__remove_mapping`` then ``free_unref_folios``). A page
moved by compaction keeps its place in the LRU's bookkeeping under its new pfn, added
back as the newest (``folio_putback_lru`` after migration).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

SWAP_CLUSTER_MAX = 32


@dataclass
class ReclaimStats:
    scanned: int = 0
    rotated: int = 0  # referenced pages given a second chance
    evicted: int = 0  # page-cache pages dropped (a later read refaults them)


class FileLru:
    """Page-cache pages, oldest first, with a referenced bit per page."""

    def __init__(self, evict: Callable[[int, int], None],
                 evict_many: Callable[[list[int], list[int]], None] | None = None) -> None:
        # pfn -> owner id, oldest first. An OrderedDict, not a dict: popping the oldest
        # of a plain dict leaves dummies that every later next(iter()) walks over.
        self._pages: OrderedDict[int, int] = OrderedDict()
        self._referenced: set[int] = set()
        self._evict = evict
        # evict_many(pfns, owners): a pass's victims at once, after its scan (the
        # callbacks do not touch the LRU, so this is the same as one call each).
        self._evict_many = evict_many
        self.stats = ReclaimStats()

    def __len__(self) -> int:
        return len(self._pages)

    def __contains__(self, pfn: int) -> bool:
        return pfn in self._pages

    def add(self, pfn: int, owner: int) -> None:
        """``folio_add_lru``: a new page-cache page, the newest on the list."""
        self._pages[pfn] = owner
        self._referenced.discard(pfn)

    def add_many(self, pfns: list[int], owner: int) -> None:
        """``add`` each of these new pages in turn (none of them is on the list)."""
        self._pages.update(zip(pfns, itertools.repeat(owner)))
        self._referenced.difference_update(pfns)

    def mark_accessed_many(self, pfns: list[int]) -> None:
        """``mark_accessed`` each pfn in turn."""
        pages = self._pages
        self._referenced.update([pfn for pfn in pfns if pfn in pages])

    def mark_accessed(self, pfn: int) -> None:
        """``folio_mark_accessed``: the page was read again."""
        if pfn in self._pages:
            self._referenced.add(pfn)

    def remove(self, pfn: int) -> int:
        """The owner drops the page itself (truncation, unlink); returns its owner id."""
        self._referenced.discard(pfn)
        return self._pages.pop(pfn)

    def migrate(self, old_pfn: int, new_pfn: int) -> None:
        """Compaction moved the page: same owner, new pfn, put back as the newest."""
        owner = self._pages.pop(old_pfn)
        referenced = old_pfn in self._referenced
        self._referenced.discard(old_pfn)
        self._pages[new_pfn] = owner
        if referenced:
            self._referenced.add(new_pfn)

    def shrink(self, nr_to_reclaim: int, max_scan: int | None = None) -> int:
        """Scan from the oldest end, evicting unreferenced pages; returns pages evicted.

        A referenced page loses its bit and goes to the newest end. At most ``max_scan``
        pages are looked at (default: twice the list, so every page is seen twice).
        """
        pages = self._pages
        referenced = self._referenced
        limit = 2 * len(pages) if max_scan is None else max_scan
        evicted = scanned = rotated = 0
        victims: list[int] = []
        owners: list[int] = []
        while evicted < nr_to_reclaim and scanned < limit and pages:
            pfn, owner = pages.popitem(last=False)
            scanned += 1
            if pfn in referenced:
                referenced.discard(pfn)
                pages[pfn] = owner
                rotated += 1
                continue
            evicted += 1
            if self._evict_many is None:
                self._evict(pfn, owner)
            else:
                victims.append(pfn)
                owners.append(owner)
        if victims:
            self._evict_many(victims, owners)
        self.stats.rotated += rotated
        self.stats.scanned += scanned
        self.stats.evicted += evicted
        return evicted
