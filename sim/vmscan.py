"""Page-cache and slab reclaim, reduced from mm/vmscan.c: one file LRU with a
referenced bit, ``shrink_node`` over it and the shrinkers, and kswapd's
``balance_pgdat`` loop (its SimPy process is in sim/daemons.py).

The kernel keeps active and inactive lists per lruvec and ages pages between them
(``shrink_active_list``, ``folio_check_references``). This model keeps one list in
age order and gives a referenced page one more trip round it, which is what the
inactive list's second chance amounts to for a streaming workload. Anonymous memory
is not reclaimed: the simulated machine has no swap.

Pages are identified by pfn and carry an owner id; evicting a page calls the owner's
callback, which frees it (``__remove_mapping`` then ``free_unref_folios``). A page
moved by compaction keeps its place in the LRU's bookkeeping under its new pfn, added
back as the newest (``folio_putback_lru`` after migration).

``Reclaim`` is a node's reclaim, plain synchronous code that tests drive directly:

- ``shrink_node(nr_to_reclaim, priority)``: the file LRU's share for ``priority``
  (``lru_pages >> priority``, at least SWAP_CLUSTER_MAX), then ``shrink_slab``: every
  file system's super block shrinker (``super_cache_scan``: dentries and inodes in
  proportion) and every other cache with an LRU of unused objects
  (``do_shrink_slab``). Its cost (pages scanned and evicted, objects scanned) is left
  in ``last_cost`` for the caller: direct reclaim stalls it, kswapd sleeps it. With
  an ``after_shrink`` hook (``defrag.after_shrink``) the slab defragmenter runs at the
  end of a shrinker round that freed something, as in Lameter's series.
- ``balance_pgdat()``: kswapd's loop as a generator of each round's cost: rounds of
  ``shrink_node(SWAP_CLUSTER_MAX * 4, priority)`` until the zone is above its high
  watermark (order 0); a round that frees nothing lowers the priority, and kswapd
  gives up after priority 0.

Departures from 6.18 (issue "Reclaim, zones and CPUs as Linux 6.18 runs them" will
remove them): ``pgdat_balanced`` ignores the order kswapd was woken for and there is
no ``compact_gap``; boosted reclaim is not a separate pass; one LRU, no anonymous
reclaim (no swap), no writeback, no ``sc->nr_to_reclaim`` accounting across nodes.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Final

import numpy as np

from sim.buddy import WMARK_HIGH, Zone
from sim.objects import FileSystem
from sim.slab import SlabCaches

if TYPE_CHECKING:
    from sim.config import ReclaimSection

SWAP_CLUSTER_MAX: Final = 32
DEF_PRIORITY: Final = 12
# A scan for at least this many pages reads its first queue entries' per-pfn state in
# one gather first (FileLru._prefetch).
_PREFETCH_MIN: Final = 16


@dataclass
class ReclaimStats:
    scanned: int = 0
    rotated: int = 0  # referenced pages given a second chance
    evicted: int = 0  # page-cache pages dropped (a later read refaults them)


class FileLru:
    """Page-cache pages, oldest first, with a referenced bit per page.

    Kept as a queue of pfns in the order they became newest, plus per-pfn arrays over
    the zone: the queue index of the pfn's live entry (-1 when not on the list), its
    owner and its referenced bit. Removing a page only clears its index; the scan
    skips queue entries that are no longer live, and the queue is compacted once
    mostly stale. Adds and accesses of a run of pages are then a few numpy calls. The
    order is an ordered dict's: a page added again while on the list keeps its place.
    """

    COMPACT_AFTER = 4096  # consumed queue entries before a compaction is considered

    def __init__(self, evict: Callable[[int, int], None],
                 evict_many: Callable[[list[int], list[int]], None] | None = None,
                 nr_pages: int = 0) -> None:
        self._evict = evict
        # evict_many(pfns, owners): a pass's victims at once, after its scan (the
        # callbacks do not touch the LRU, so this is the same as one call each).
        self._evict_many = evict_many
        self.stats = ReclaimStats()
        self._queue = array("i")
        self._head = 0  # queue entries before this one are consumed
        self._count = 0
        self._size = 0  # pfns covered by the arrays below, grown on demand
        self._pos = array("i")
        self._owner = array("h")
        self._ref = bytearray()
        self._pos_np = self._owner_np = self._ref_np = np.zeros(0, dtype=np.int32)
        self._nr_pages = nr_pages  # the zone's size: the arrays' size at the first add

    def _grow(self, size: int) -> None:
        """Cover pfns below ``size``: at once the zone, when it was given."""
        size = max(size, 2 * self._size, self._nr_pages)
        extra = size - self._size
        # Drop the numpy views first: an array with exported buffers cannot grow.
        self._pos_np = self._owner_np = self._ref_np = np.zeros(0, dtype=np.int32)
        self._pos.extend(array("i", [-1]) * extra)
        self._owner.extend(array("h", [0]) * extra)
        self._ref.extend(bytes(extra))
        self._size = size
        self._pos_np = np.frombuffer(self._pos, dtype=np.int32)
        self._owner_np = np.frombuffer(self._owner, dtype=np.int16)
        self._ref_np = np.frombuffer(self._ref, dtype=np.uint8)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, pfn: int) -> bool:
        return 0 <= pfn < self._size and self._pos[pfn] >= 0

    def _put(self, pfn: int, owner: int) -> None:
        """``pfn`` on the list with ``owner``: the newest, unless it is there already."""
        if pfn >= self._size:
            self._grow(pfn + 1)
        if self._pos[pfn] < 0:
            self._pos[pfn] = len(self._queue)
            self._queue.append(pfn)
            self._count += 1
        self._owner[pfn] = owner

    def add(self, pfn: int, owner: int) -> None:
        """``folio_add_lru``: a new page-cache page, the newest on the list."""
        self._put(pfn, owner)
        self._ref[pfn] = 0

    def add_many(self, pfns: list[int], owner: int) -> None:
        """``add`` each of these pages in turn."""
        if not pfns:
            return
        p = np.asarray(pfns, dtype=np.int64)
        top = int(p.max())
        if top >= self._size:
            self._grow(top + 1)
        new = p[self._pos_np[p] < 0]
        where = np.arange(len(self._queue), len(self._queue) + len(new), dtype=np.int32)
        self._pos_np[new] = where
        if not np.array_equal(self._pos_np[new], where):
            # A pfn twice in the run: only its first add appends. Undo, go one by one.
            self._pos_np[new] = -1
            for pfn in pfns:
                self.add(pfn, owner)
            return
        self._queue.frombytes(new.astype(np.int32).tobytes())
        self._count += len(new)
        self._owner_np[p] = owner
        self._ref_np[p] = 0

    def mark_accessed_many(self, pfns: list[int]) -> None:
        """``mark_accessed`` each pfn in turn."""
        if not pfns:
            return
        p = np.asarray(pfns, dtype=np.int64)
        p = p[(p >= 0) & (p < self._size)]
        self._ref_np[p[self._pos_np[p] >= 0]] = 1

    def mark_accessed(self, pfn: int) -> None:
        """``folio_mark_accessed``: the page was read again."""
        if pfn in self:
            self._ref[pfn] = 1

    def remove(self, pfn: int) -> int:
        """The owner drops the page itself (truncation, unlink); returns its owner id."""
        if pfn not in self:
            raise KeyError(pfn)
        self._pos[pfn] = -1
        self._ref[pfn] = 0
        self._count -= 1
        return self._owner[pfn]

    def migrate(self, old_pfn: int, new_pfn: int) -> None:
        """Compaction moved the page: same owner, new pfn, put back as the newest."""
        referenced = old_pfn in self and self._ref[old_pfn]
        self._put(new_pfn, self.remove(old_pfn))
        if referenced:
            self._ref[new_pfn] = 1

    def shrink(self, nr_to_reclaim: int, max_scan: int | None = None) -> int:
        """Scan from the oldest end, evicting unreferenced pages; returns pages evicted.

        A referenced page loses its bit and goes to the newest end. At most ``max_scan``
        pages are looked at (default: twice the list, so every page is seen twice).
        """
        queue, pos, ref, owners = self._queue, self._pos, self._ref, self._owner
        limit = 2 * self._count if max_scan is None else max_scan
        evicted = scanned = rotated = 0
        head = self._head
        if nr_to_reclaim >= _PREFETCH_MIN and self._size:
            self._prefetch(head, 2 * nr_to_reclaim)
        victims: list[int] = []
        victim_owners: list[int] = []
        while evicted < nr_to_reclaim and scanned < limit and self._count:
            pfn = queue[head]
            while pos[pfn] != head:  # a page that left the list or moved up
                head += 1
                pfn = queue[head]
            head += 1
            scanned += 1
            if ref[pfn]:
                ref[pfn] = 0
                pos[pfn] = len(queue)
                queue.append(pfn)
                rotated += 1
                continue
            pos[pfn] = -1
            self._count -= 1
            evicted += 1
            if self._evict_many is None:
                self._evict(pfn, owners[pfn])
            else:
                victims.append(pfn)
                victim_owners.append(owners[pfn])
        self._head = head
        if head > self.COMPACT_AFTER and head > len(queue) // 2:
            self._compact()
        if victims:
            assert self._evict_many is not None  # victims are only kept for it
            self._evict_many(victims, victim_owners)
        self.stats.rotated += rotated
        self.stats.scanned += scanned
        self.stats.evicted += evicted
        return evicted

    def _prefetch(self, start: int, n: int) -> None:
        """Read the per-pfn entries of the ``n`` queue entries from ``start`` at once,
        and drop what was read: only a speed-up, with no effect on any result. One
        numpy gather per array issues the random reads together, where the scan would
        wait on each in turn (cache and TLB misses, on a large zone)."""
        pfns = np.frombuffer(self._queue, dtype=np.int32)[start:start + n]
        if len(pfns):
            self._pos_np.take(pfns, mode="clip")
            self._ref_np.take(pfns, mode="clip")
            self._owner_np.take(pfns, mode="clip")

    def _compact(self) -> None:
        """Drop consumed and stale queue entries; live entries keep their order."""
        q = np.frombuffer(self._queue, dtype=np.int32)[self._head:].copy()
        live = q[self._pos_np[q] == np.arange(self._head, self._head + len(q))]
        self._pos_np[live] = np.arange(len(live))
        queue = array("i")
        queue.frombytes(live.tobytes())
        self._queue = queue
        self._head = 0


@dataclass
class NodeReclaimStats:
    """Counters of a node's reclaim (the LRU keeps its own in ``ReclaimStats``)."""

    kswapd_reclaimed: int = 0  # page-cache plus slab pages freed for kswapd
    kswapd_slab_freed: int = 0  # objects the shrinkers freed for kswapd
    kswapd_giveups: int = 0  # kswapd runs ended at priority 0 with nothing reclaimable
    shrinker_runs: int = 0
    shrinker_freed: int = 0  # objects
    shrinker_scanned: int = 0

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Reclaim:
    """A node's reclaim: ``shrink_node`` and kswapd's ``balance_pgdat`` (see above)."""

    def __init__(self, zone: Zone, lru: FileLru, caches: SlabCaches, cfg: ReclaimSection,
                 after_shrink: Callable[[], object] | None = None) -> None:
        self.zone = zone
        self.lru = lru
        self.caches = caches
        self.cfg = cfg
        self.after_shrink = after_shrink
        self.filesystems: list[FileSystem] = []
        # Caches a super block shrinker scans; the per-cache shrinker must not again.
        self.fs_caches: set[str] = set()
        self.stats = NodeReclaimStats()
        self.last_cost = 0.0  # simulated seconds of the last shrink_node

    def add_filesystem(self, fsys: FileSystem) -> None:
        """A mounted file system: its super block shrinker joins ``shrink_slab``."""
        self.filesystems.append(fsys)
        self.fs_caches.update((fsys.dcache.name, fsys.icache.name))

    def report(self) -> dict[str, int]:
        """The shrinkers' work, for a run's summary (``shrinker``)."""
        stats = self.stats
        return {"runs": stats.shrinker_runs, "objects_freed": stats.shrinker_freed,
                "objects_scanned": stats.shrinker_scanned}

    def pgdat_balanced(self) -> bool:
        """The zone is above its high watermark at order 0."""
        zone = self.zone
        return zone.zone_watermark_ok(0, zone.wmark_pages(WMARK_HIGH))

    def shrink_node(self, nr_to_reclaim: int, priority: int, cpu: int = 0) -> int:
        """One ``shrink_node`` round; returns page-cache pages plus slab pages freed and
        leaves its cost in ``last_cost``."""
        cfg = self.cfg
        lru = self.lru
        nr_lru = len(lru)
        lru_scan = max(nr_lru >> priority, min(nr_lru, SWAP_CLUSTER_MAX))
        before = lru.stats.scanned
        evicted = lru.shrink(nr_to_reclaim, max_scan=lru_scan) if nr_lru else 0
        cost = (lru.stats.scanned - before) * cfg.scan_cost + evicted * cfg.evict_cost
        slab_pages_before = sum(c.nr_pages for c in self.caches)
        freed = scanned = 0
        for fsys in self.filesystems:
            result = fsys.shrink(priority=priority, cpu=cpu)
            freed += result.freed
            scanned += result.scanned
        fs_caches = self.fs_caches
        for cache in self.caches:
            if cache.nr_lru and cache.name not in fs_caches:
                result = cache.shrink_slab(priority, cpu)
                freed += result.freed
                scanned += result.scanned
        stats = self.stats
        stats.shrinker_runs += 1
        stats.shrinker_freed += freed
        stats.shrinker_scanned += scanned
        cost += scanned * cfg.slab_scan_cost
        slab_pages_freed = max(0, slab_pages_before - sum(c.nr_pages for c in self.caches))
        self.last_cost = cost
        if freed and self.after_shrink is not None:
            self.after_shrink()
        return evicted + slab_pages_freed

    def balance_pgdat(self) -> Iterator[float]:
        """kswapd's reclaim until the zone is balanced; yields each round's cost (at
        least 1 us), which kswapd sleeps before it looks at the zone again."""
        stats = self.stats
        priority = DEF_PRIORITY
        while not self.pgdat_balanced():
            freed_before = stats.shrinker_freed
            reclaimed = self.shrink_node(SWAP_CLUSTER_MAX * 4, priority)
            stats.kswapd_reclaimed += reclaimed
            stats.kswapd_slab_freed += stats.shrinker_freed - freed_before
            yield max(self.last_cost, 1e-6)
            if reclaimed == 0 and stats.shrinker_freed == freed_before:
                priority -= 1
                if priority < 0:
                    stats.kswapd_giveups += 1
                    return
