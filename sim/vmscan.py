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
  (``lru_pages >> priority``, at least SWAP_CLUSTER_MAX), stopping once
  ``nr_to_reclaim`` pages are reclaimed, except for global direct reclaim at
  DEF_PRIORITY (``proportional``), which scans its whole share as ``shrink_lruvec``'s
  ``proportional_reclaim`` does ("the fact we are direct reclaiming implies that kswapd
  is not keeping up and it is best to do a batch of work at once"). The share is
  scanned in batches of SWAP_CLUSTER_MAX pages, each taking whole folios and at least
  one (``isolate_lru_folios`` counts a folio's pages and stops once its batch is
  scanned), so a list of 2 MiB folios is scanned 16 times its share. Then
  ``shrink_slab``, with the reclaimer's __GFP_FS (the super block shrinkers return
  SHRINK_STOP without it): every
  file system's super block shrinker (``super_cache_scan``: dentries and inodes in
  proportion) and every other cache with an LRU of unused objects
  (``do_shrink_slab``). Its cost (folios scanned, folios and their pages evicted, as
  configs/real/reclaim-cost measured kswapd's eviction; objects scanned) is left
  in ``last_cost`` for direct reclaim, which stalls it; kswapd takes the same work in
  its steps (``shrink_node_steps``: each LRU batch of 32 pages, then the shrinkers)
  and sleeps each step's cost. With
  an ``after_shrink`` hook (``defrag.after_shrink``) the slab defragmenter runs at the
  end of a shrinker round that freed something, as in Lameter's series. In
  reclaim/compaction mode (compaction on and an order above PAGE_ALLOC_COSTLY_ORDER, or
  any order > 0 once the priority is below DEF_PRIORITY - 2) the round repeats while
  ``should_continue_reclaim``; ``compaction_ready`` is the check direct reclaim's
  ``shrink_zones`` makes of each zone first (sim/page_alloc.py). Both ask
  ``compaction_suitable`` through a hook the engine sets.
- kswapd's rules (the loop that sleeps is sim/daemons.py ``Kswapd``), each method
  named after the kernel function it follows and quoting it:
  ``pgdat_balanced(order)`` (above the high watermark plus the boost, with a free
  block of ``order``), ``prepare_kswapd_sleep``, ``wakeup_kswapd`` (records the order;
  wakes kswapd unless the zone is balanced for the order and unboosted or kswapd is
  hopeless, and then wakes kcompactd itself for a caller that cannot reclaim
  directly), ``kswapd_shrink_node`` (up to the high watermark's pages per round,
  order 0 once ``compact_gap(order)`` pages are reclaimed) and ``balance_pgdat(order)``
  (boosted reclaim even on a balanced zone, the priority held at DEF_PRIORITY - 2;
  only the boost present at the start taken off; kcompactd woken at pageblock order
  after a boost; ``kswapd_failures`` counted, reset by any ``shrink_node`` that
  reclaims). Read in mm/vmscan.c of the CachyOS/linux tree (see the report in
  docs/model.md, "The engine").

Zones: ``Reclaim`` is a node's, over ``zones`` (a lone zone by default; a node of
several from sim/mmzone.py): ``pgdat_balanced`` checks the zones up to
``highest_zoneidx`` bottom-up with their ``lowmem_reserve``, wakeups record
``kswapd_highest_zoneidx``, ``balance_pgdat`` takes each zone's boost and reclaims for
``max(high, SWAP_CLUSTER_MAX)`` summed over the zones up to ``sc.reclaim_idx``.

``sc.reclaim_idx`` also keeps the folios of higher zones from being reclaimed: the scan
passes over them as ``isolate_lru_folios`` does (PGSCAN_SKIP) and puts them back as the
newest, so kswapd woken for a lower zone's boost (rmqueue's ZONE_BOOSTED_WATERMARK wake
passes ``zone_idx(zone)``) frees that zone's pages.

Departures from 6.18: ``zone_watermark_ok_safe`` reads
the exact NR_FREE_PAGES (no per-CPU vmstat drift); one LRU, no anonymous reclaim (no
swap), no writeback (so boosted reclaim's "no writeback, no swap" changes nothing
here), no ``sc->nr_to_reclaim`` accounting across nodes, no memcg soft limit reclaim,
no ``kswapd_age_node``, no ``pfmemalloc_wait`` throttling (``allow_direct_reclaim``
only matters to throttled direct reclaimers, which are not modelled).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from librt.vecs import append as vec_append
from librt.vecs import extend as vec_extend
from librt.vecs import vec
from mypy_extensions import i16, i32, i64

from sim.buddy import PAGE_ALLOC_COSTLY_ORDER, WMARK_HIGH, MigrateHook, PageSpace, Zone
from sim.compaction import PageOwner, PagePredicate, compact_gap
from sim.objects import FileSystem
from sim.slab import SlabCaches

if TYPE_CHECKING:
    from sim.config import ReclaimSection

SWAP_CLUSTER_MAX: Final = 32
MAX_RECLAIM_RETRIES: Final = 16  # mm/internal.h
DEF_PRIORITY: Final = 12
# A scan for at least this many pages reads its first queue entries' per-pfn state in
# one gather first (FileLru._prefetch).
_PREFETCH_MIN: Final = 16
# The largest folio the LRU holds: MAX_PAGECACHE_ORDER and HPAGE_PMD_ORDER are 9 on
# x86-64; the arrays allow up to MAX_PAGE_ORDER (10).
MAX_FOLIO_ORDER: Final = 10
# FileLru's word of a queue entry: the folio's order, its referenced state, its owner.
_ORDER_MASK: Final = 0xF
_REF_SHIFT: Final = 4
_REF_MASK: Final = 0x30
_ACTIVE: Final = 2 << _REF_SHIFT  # the referenced state "activated", in place
_OWNER_SHIFT: Final = 6
_MAX_OWNER: Final = (1 << 9) - 1  # an i16's bits 6-14
# include/linux/swap.h: isolate_lru_folios passes over at most this many folios of a
# zone above sc->reclaim_idx in one call ("to prevent hard LOCKUP").
SWAP_CLUSTER_MAX_SKIPPED: Final = 32 << 10


@dataclass
class NodeShrink:
    """What one reclaimer's ``shrink_node`` did: pages freed (page cache and slab),
    LRU pages scanned and evicted, slab objects the shrinkers freed."""

    reclaimed: int = 0
    scanned: int = 0
    evicted: int = 0
    slab_freed: int = 0

    def add(self, other: NodeShrink) -> None:
        self.reclaimed += other.reclaimed
        self.scanned += other.scanned
        self.evicted += other.evicted
        self.slab_freed += other.slab_freed


@dataclass
class ReclaimStats:
    scanned: int = 0  # pages, the skipped ones too (isolate_lru_folios' total_scan)
    # pages of folios above the reclaim's zone that the scan passed over (PGSCAN_SKIP), by
    # the folio's zone index (pgskip_dma, _dma32, _normal, ...)
    skipped_by_zone: list[int] = field(default_factory=lambda: [0] * 5)
    rotated: int = 0  # pages of referenced folios given a second chance
    evicted: int = 0  # page-cache pages dropped (a later read refaults them)
    folios_scanned: int = 0  # the folios of ``scanned``
    folios_evicted: int = 0  # the folios of ``evicted``


class FileLru:
    """Page-cache folios, oldest first, with their access state.

    Access follows ``folio_mark_accessed``: a first access sets PG_referenced (state 1),
    a second activates the folio (state 2). The scan (``shrink_folio_list`` ->
    ``folio_check_references``) reclaims an unmapped clean file folio that is only
    PG_referenced (FOLIOREF_RECLAIM_CLEAN), as it does one never accessed; an activated
    folio gets a second chance: it goes to the newest end with its state cleared. One
    list stands for the kernel's inactive and active file lists (the rotation is the
    activation and the later deactivation); page cache here is never mapped, so no
    folio has referenced ptes.

    An entry is a folio: its head pfn, its order and its owner. It is scanned, aged and
    evicted whole (``shrink_folio_list`` frees the folio), and counted in pages where
    the kernel counts pages: ``nr_pages`` (``lruvec_lru_size``), the scan
    (``isolate_lru_folios`` adds ``folio_nr_pages`` to ``scan``) and the pages
    reclaimed.

    Kept as a queue of entries in the order they became newest, each a head pfn and a
    16-bit word beside it (two typed vectors, librt.vecs): the folio's order, its
    referenced state and its owner (bits 0-3, 4-5 and 6-14: up to 512 owners). Per pfn
    of the zone, one 32-bit vector: the queue index of the pfn's live entry, trusted
    only when the queue names the pfn back, so that in a machine the vector is the
    second of the free lists' link words (``share_positions``; no byte a page of its
    own). The scan reads the words in queue order, where the per-pfn index is the only
    read at a random place.
    Removing a folio only clears its queue entry (-1); the scan skips queue entries
    that are no longer live, and the queue is compacted once mostly stale. The order is
    an ordered dict's: a folio added again while on the list keeps its place.
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
        # (first node pfn, zone index) of the node's zones, lowest first: which zone a
        # passed-over folio is counted in. Reclaim sets it; one zone by default.
        self.zone_starts: list[tuple[int, int]] = [(0, 2)]
        # Typed vectors (librt.vecs): compiled, read and written as C integers. The
        # queue and its words grow by ``vec_append``, which may move them: they are
        # never held in a local across a call that could append.
        self._queue: vec[i32] = vec[i32]()
        # order | ref << 4 | owner << 6 of each queue entry; ref 1: PG_referenced, 2:
        # activated. Meaningful only for live entries.
        self._words: vec[i16] = vec[i16]()
        self._head = 0  # queue entries before this one are consumed
        self._count = 0  # folios on the list
        self.exhausted = False  # the last shrink found nothing more it may take
        self.nr_pages = 0  # pages on the list
        # Folios on the list, by order (``nr_by_order`` gives the list): a typed vector,
        # as a list of ints makes an int object at each count.
        self._nr_by_order: vec[i64] = vec[i64]([0] * (MAX_FOLIO_ORDER + 1))
        self._size = 0  # pfns covered by the vector below, grown on demand
        # The queue position of the folio headed at each pfn: trusted only where the
        # queue names the pfn back (``share_positions``: the entry of a pfn not on the
        # list is anyone's). A queue entry that is not live is -1.
        self._pos: vec[i32] = vec[i32]()
        self._pos_shared = False
        self._view: Any = None
        self._nr_pages = nr_pages  # the zone's size: the vector's size at the first add

    @property
    def nr_by_order(self) -> list[int]:
        """Folios on the list, by order (a new list: a copy)."""
        return [int(n) for n in self._nr_by_order]

    def _grow(self, size: int) -> None:
        """Cover pfns below ``size``: at once the zone, when it was given."""
        size = max(size, 2 * self._size, self._nr_pages)
        if self._pos_shared:
            raise IndexError(f"FileLru: pfn beyond the shared positions ({self._size})")
        extra = size - self._size
        unlisted = array("i", [-1]) * extra
        if not self._size:  # the first: exactly the zone, no spare capacity
            self._pos = vec[i32](unlisted, capacity=size)
        else:
            self._pos = vec_extend(self._pos, unlisted)
        self._size = size
        # A read-only numpy view of the per-pfn vector, for _prefetch (it moves only here).
        self._view = np.frombuffer(memoryview(self._pos), dtype=np.int32)

    def share_positions(self, space: PageSpace) -> None:
        """Keep each folio's queue position in the second of ``space``'s
        ``page_links`` words, one a pfn, shared with the free lists (the kernel's
        ``struct page`` keeps ``lru`` in the words a free page's buddy list links use).
        Only a folio on the list has its entry written; an entry is trusted only when
        the queue names the pfn back. Before the first folio only. (The vector is taken
        here, in compiled code: handed to interpreted code and back, mypyc 2.4.1 boxes
        a vector and leaks its buffer, sim/buddy.py ``PageIndex``.)"""
        words = space.page_links()[1]
        size = space.end_pfn
        if self._size or len(words) < size:
            raise ValueError("FileLru.share_positions: before the first folio, over the zone")
        self._pos = words
        self._pos_shared = True
        self._size = size
        self._view = np.frombuffer(memoryview(self._pos), dtype=np.int32)

    def __len__(self) -> int:
        """Folios on the list (``nr_pages`` counts their pages)."""
        return self._count

    def __contains__(self, pfn: int) -> bool:
        if not 0 <= pfn < self._size:
            return False
        pos = int(self._pos[pfn])
        return 0 <= pos < len(self._queue) and int(self._queue[pos]) == pfn

    def _word(self, pfn: int) -> int:
        """The word of ``pfn``'s live entry (``pfn`` on the list)."""
        return int(self._words[int(self._pos[pfn])])

    def order_of(self, pfn: int) -> int:
        """The order of the folio with head ``pfn`` on the list."""
        if pfn not in self:
            raise KeyError(pfn)
        return self._word(pfn) & _ORDER_MASK

    def _append(self, pfn: int, word: int) -> None:
        """A new queue entry for ``pfn``, its live one."""
        self._pos[pfn] = int(len(self._queue))
        self._queue = vec_append(self._queue, pfn)
        self._words = vec_append(self._words, word)

    def _put(self, pfn: int, owner: int, order: int, ref: int) -> None:
        """``pfn`` on the list with ``owner`` and referenced state ``ref`` (-1: keep
        it, 0 for a folio new to the list): the newest, unless it is there already."""
        if not 0 <= owner <= _MAX_OWNER:
            raise ValueError(f"FileLru: owner {owner}: expected 0 to {_MAX_OWNER}")
        if pfn >= self._size:
            self._grow(pfn + 1)
        if pfn not in self:
            self._append(pfn, order | owner << _OWNER_SHIFT | max(ref, 0) << _REF_SHIFT)
            self._count += 1
        else:
            pos = int(self._pos[pfn])
            word = int(self._words[pos])
            old = word & _ORDER_MASK
            self.nr_pages -= 1 << old
            self._nr_by_order[old] -= 1
            ref_bits = word & _REF_MASK if ref < 0 else ref << _REF_SHIFT
            self._words[pos] = ref_bits | order | owner << _OWNER_SHIFT
        self.nr_pages += 1 << order
        self._nr_by_order[order] += 1

    def add(self, pfn: int, owner: int, order: int = 0) -> None:
        """``folio_add_lru``: a new page-cache folio, the newest on the list."""
        self._put(pfn, owner, order, 0)

    def add_many(self, pfns: list[int], owner: int, order: int = 0) -> None:
        """``add`` each of these folios, all of ``order``, in turn."""
        for pfn in pfns:
            self._put(pfn, owner, order, 0)

    def mark_accessed(self, pfn: int) -> None:
        """``folio_mark_accessed``: PG_referenced on a first access, activated on the
        next."""
        if pfn in self:
            pos = int(self._pos[pfn])
            word = int(self._words[pos])
            ref = 2 if word & _REF_MASK else 1
            self._words[pos] = (word & ~_REF_MASK) | ref << _REF_SHIFT

    def remove(self, pfn: int) -> int:
        """The owner drops the folio itself (truncation, unlink); returns its owner id."""
        if pfn not in self:
            raise KeyError(pfn)
        pos = int(self._pos[pfn])
        word = int(self._words[pos])
        self._queue[pos] = -1
        self._count -= 1
        order = word & _ORDER_MASK
        self.nr_pages -= 1 << order
        self._nr_by_order[order] -= 1
        return word >> _OWNER_SHIFT

    def migrate(self, old_pfn: int, new_pfn: int) -> None:
        """Compaction moved the folio: same owner and order, new pfn, put back as the
        newest (``folio_putback_lru``), its referenced state with it
        (``folio_migrate_flags``)."""
        word = self._word(old_pfn) if old_pfn in self else 0
        self._put(new_pfn, self.remove(old_pfn), word & _ORDER_MASK,
                  (word & _REF_MASK) >> _REF_SHIFT)

    def shrink(self, nr_to_reclaim: int, max_scan: int | None = None,
               batch: int = 0, skip_from: int = -1) -> int:
        """Scan from the oldest end, evicting folios not activated, until
        ``nr_to_reclaim`` pages are evicted (a negative goal: until ``max_scan`` is
        scanned, whatever is evicted); returns pages evicted.

        An activated folio loses its state and goes to the newest end. At most
        ``max_scan`` pages are looked at (default: twice the list, so every folio is seen
        twice); a folio counts all its pages towards both limits, as
        ``isolate_lru_folios`` and ``shrink_folio_list`` count them.

        ``batch`` (SWAP_CLUSTER_MAX for ``shrink_lruvec``): ``max_scan`` is taken in
        batches of that many pages (``nr_to_scan = min(nr[lru], SWAP_CLUSTER_MAX)``), and
        each batch's ``isolate_lru_folios`` takes whole folios until it has scanned its
        pages, at least one folio: with 2 MiB folios every batch of 32 pages scans 512.
        0: one batch of ``max_scan``.

        ``skip_from`` (a pfn, -1: none): folios from it up are in zones above the
        reclaim's ``sc->reclaim_idx``. A batch passes over up to
        SWAP_CLUSTER_MAX_SKIPPED of them: they count as scanned (``total_scan``, which
        ``sc->nr_scanned`` and pgscan add up) but not towards the batch, and go back to
        the newest end at the batch's end ("Splice any skipped folios to the start of
        the LRU list"), with their access state.
        """
        queue, words, pos = self._queue, self._words, self._pos
        nr_by_order = self._nr_by_order
        limit = 2 * self.nr_pages if max_scan is None else max_scan
        # What the scan can reach: its goal, and never more than ``max_scan`` (a batch).
        want = min(nr_to_reclaim, limit) if nr_to_reclaim >= 0 else limit
        if nr_to_reclaim < 0:
            nr_to_reclaim = self.nr_pages + 1  # more than can be evicted: no goal
        evicted = scanned = rotated = folios_scanned = folios_evicted = 0
        head = self._head
        if self._size and self._count:
            # about the entries two passes over ``want`` pages take (folios, not pages)
            entries = 2 * want * self._count // max(self.nr_pages, 1) + 1
            if entries >= _PREFETCH_MIN:
                self._prefetch(head, entries)
        victims: list[int] = []
        victim_owners: list[int] = []
        remaining = limit  # nr[lru]: what the batches still have to scan
        batch_left = 0  # what the current batch's isolate_lru_folios has left to scan
        held: list[int] = []  # the current batch's skipped folios (folios_skipped)
        held_words: list[int] = []  # their words
        nr_held = 0
        while evicted < nr_to_reclaim and self._count > nr_held:
            if batch_left <= 0:
                if held:
                    for i in range(len(held)):  # list_splice(&folios_skipped, src)
                        queue[int(pos[held[i]])] = -1
                        pos[held[i]] = int(len(queue))
                        queue = vec_append(queue, held[i])
                        words = vec_append(words, held_words[i])
                    held = []
                    held_words = []
                    nr_held = 0
                if remaining <= 0:
                    break
                batch_left = min(batch, remaining) if batch > 0 else remaining
                remaining -= batch_left
            pfn = int(queue[head])
            while pfn < 0:  # a folio that left the list or moved up
                head += 1
                pfn = int(queue[head])
            word = int(words[head])
            head += 1
            order = word & _ORDER_MASK
            nr = 1 << order
            scanned += nr
            folios_scanned += 1
            if 0 <= skip_from <= pfn and nr_held < SWAP_CLUSTER_MAX_SKIPPED:
                held.append(pfn)
                held_words.append(word)
                nr_held += 1
                self._count_skip(pfn, nr)
                continue
            batch_left -= nr
            if word & _REF_MASK == _ACTIVE:  # active: a second chance
                queue[head - 1] = -1
                pos[pfn] = int(len(queue))
                queue = vec_append(queue, pfn)
                words = vec_append(words, word & ~_REF_MASK)
                rotated += nr
                continue
            queue[head - 1] = -1
            self._count -= 1
            self.nr_pages -= nr
            nr_by_order[order] -= 1
            evicted += nr
            folios_evicted += 1
            if self._evict_many is None:
                self._queue, self._words = queue, words  # the callback sees the list as it is
                self._evict(pfn, word >> _OWNER_SHIFT)
                queue, words, pos = self._queue, self._words, self._pos
            else:
                victims.append(pfn)
                victim_owners.append(word >> _OWNER_SHIFT)
        # The scan ended with every folio left passed over (or none left): another
        # batch would find nothing it may take.
        self.exhausted = self._count <= nr_held
        for i in range(len(held)):
            queue[int(pos[held[i]])] = -1
            pos[held[i]] = int(len(queue))
            queue = vec_append(queue, held[i])
            words = vec_append(words, held_words[i])
        self._queue, self._words = queue, words
        self._head = head
        if head > self.COMPACT_AFTER and head > len(queue) // 2:
            self._compact()
        if victims:
            assert self._evict_many is not None  # victims are only kept for it
            self._evict_many(victims, victim_owners)
        stats = self.stats
        stats.rotated += rotated
        stats.scanned += scanned
        stats.evicted += evicted
        stats.folios_scanned += folios_scanned
        stats.folios_evicted += folios_evicted
        return evicted

    def _count_skip(self, pfn: int, nr: int) -> None:
        """``nr_skipped[folio_zonenum(folio)] += nr_pages``."""
        zone_idx = self.zone_starts[0][1]
        for start, idx in self.zone_starts:
            if start <= pfn:
                zone_idx = idx
        self.stats.skipped_by_zone[zone_idx] += nr

    def _prefetch(self, start: int, n: int) -> None:
        """Read the per-pfn entries of the ``n`` queue entries from ``start`` at once,
        and drop what was read: only a speed-up, with no effect on any result. One
        numpy gather issues the random reads together, where the scan would wait on
        each in turn (cache and TLB misses, on a large zone)."""
        pfns = np.frombuffer(memoryview(self._queue), dtype=np.int32)[start:start + n]
        if len(pfns):
            self._view.take(pfns, mode="clip")

    def _compact(self) -> None:
        """Drop consumed and stale queue entries; live entries keep their order."""
        old, old_words, pos = self._queue, self._words, self._pos
        queue: vec[i32] = vec[i32](capacity=self._count)
        words: vec[i16] = vec[i16](capacity=self._count)
        n = 0
        for i in range(self._head, len(old)):
            pfn = int(old[i])
            if pfn >= 0:  # live: the entry its folio's position names
                pos[pfn] = n
                queue = vec_append(queue, pfn)
                words = vec_append(words, old_words[i])
                n += 1
        self._queue, self._words = queue, words
        self._head = 0


@dataclass
class NodeReclaimStats:
    """Counters of a node's reclaim (the LRU keeps its own in ``ReclaimStats``)."""

    kswapd_reclaimed: int = 0  # page-cache plus slab pages freed for kswapd
    pgsteal_kswapd: int = 0  # of those, page-cache pages (/proc/vmstat pgsteal_kswapd)
    pgscan_kswapd: int = 0  # page-cache pages kswapd's LRU scans looked at (pgscan_kswapd)
    kswapd_slab_freed: int = 0  # objects the shrinkers freed for kswapd
    kswapd_giveups: int = 0  # balance_pgdat runs that reclaimed nothing (kswapd_failures++)
    kswapd_rounds: int = 0  # kswapd_shrink_node calls (counted as each begins)
    shrinker_runs: int = 0
    shrinker_freed: int = 0  # objects
    shrinker_scanned: int = 0

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class FileFolios(PagePredicate):
    """``page_mapping(page)`` is not NULL: the folio headed at zone pfn ``pfn`` is the
    page cache of one of ``filesystems`` (the engine's list, which grows as file systems
    are made) at node pfn ``pfn + start``. Compaction's ``is_file_folio`` (a direct
    compaction without __GFP_FS leaves those pages), compiled: its migrate scanner asks
    it of every movable page it passes."""

    def __init__(self, filesystems: list[FileSystem], start: int = 0) -> None:
        super().__init__()
        self.filesystems = filesystems
        self.start = start

    def holds(self, pfn: int) -> bool:
        pfn += self.start
        for fsys in self.filesystems:  # noqa: SIM110 (a loop: no generator per page)
            if fsys.holds_page(pfn):
                return True
        return False


class LruOwners:
    """The owners of the file LRU's folios, by the owner id the LRU keeps with each
    (sim/machine.py ``register_lru_owner``): ``evict(pfn)`` drops one folio and
    ``evict_many(pfns)``, when an owner has it, several in turn. ``evict_page`` and
    ``evict_pages`` are the LRU's callbacks (``FileLru(evict, evict_many)``). Compiled,
    as every reclaim batch hands its victims over here."""

    def __init__(self) -> None:
        self.evict: list[Callable[[int], None]] = []
        self.evict_many: list[Callable[[list[int]], None] | None] = []

    def register(self, evict: Callable[[int], None],
                 evict_many: Callable[[list[int]], None] | None = None) -> int:
        """A new owner; returns its id."""
        self.evict.append(evict)
        self.evict_many.append(evict_many)
        return len(self.evict) - 1

    def evict_page(self, pfn: int, owner: int) -> None:
        self.evict[owner](pfn)

    def evict_pages(self, pfns: list[int], owners: list[int]) -> None:
        """A reclaim pass's victims, in scan order: each run of one owner's folios in
        one call when the owner takes several."""
        start = 0
        n = len(pfns)
        while start < n:
            owner = owners[start]
            end = start + 1
            while end < n and owners[end] == owner:
                end += 1
            evict_many = self.evict_many[owner]
            if evict_many is not None:
                evict_many(pfns[start:end])
            else:
                evict = self.evict[owner]
                for k in range(start, end):
                    evict(pfns[k])
            start = end


class MigrateOwners(MigrateHook):
    """``zone.on_migrate(old, new, order)`` for a zone whose pfns start at node pfn
    ``start``: compaction moved the block at ``old`` to ``new``. The file LRU keeps its
    bookkeeping under the new pfn (``folio_putback_lru``), then the page owners hear of
    it in registration order until one says the block was its own. ``owners`` is the
    engine's list, shared by its zones and grown as owners register: a file system (asked
    ``migrate_page``), a compiled owner (sim/compaction.py ``PageOwner``, asked
    ``migrate_page(old, new, order)``) or any other owner's callable (a workload's
    ``migrate_page``; True: its own). Compiled, as it runs once per migrated block: the
    LRU, the file systems and the compiled owners are called with C integers."""

    def __init__(self, lru: FileLru | None, start: int,
                 owners: list[FileSystem | PageOwner | Callable[[int, int, int], object]]
                 ) -> None:
        self.lru = lru
        self.start = start
        self.owners = owners

    def __call__(self, old: int, new: int, order: int) -> None:
        """As ``migrated``: a ``Zone.on_migrate`` is a callable."""
        self.migrated(old, new, order)

    def migrated(self, old: int, new: int, order: int) -> None:
        old += self.start
        new += self.start
        lru = self.lru
        if lru is not None and old in lru:
            lru.migrate(old, new)
        for owner in self.owners:
            if isinstance(owner, FileSystem):
                if owner.migrate_page(old, new):
                    return
            elif isinstance(owner, PageOwner):
                if owner.migrate_page(old, new, order):
                    return
            elif owner(old, new, order) is True:
                return


class Reclaim:
    """A node's reclaim: ``shrink_node`` and kswapd's ``balance_pgdat`` (see above)."""

    def __init__(self, zone: Zone, lru: FileLru, caches: SlabCaches, cfg: ReclaimSection,
                 after_shrink: Callable[[], object] | None = None,
                 zones: list[Zone] | None = None) -> None:
        self.zone = zone
        # The node's populated zones, lowest first (for_each_managed_zone_pgdat); a
        # lone zone by default.
        self.zones: list[Zone] = sorted(zones, key=_zone_idx) if zones else [zone]
        # The highest zone index of the node: a highest_zoneidx of -1 means it.
        self.top_zoneidx: int = self.zones[-1].zone_idx
        self.lru = lru
        lru.zone_starts = sorted((z.zone_start_pfn, z.zone_idx) for z in self.zones)
        self.caches = caches
        self.cfg = cfg
        self.after_shrink = after_shrink
        self.filesystems: list[FileSystem] = []
        # Caches a super block shrinker scans; the per-cache shrinker must not again.
        self.fs_caches: set[str] = set()
        self.stats = NodeReclaimStats()
        self.last_cost = 0.0  # simulated seconds of the last shrink_node
        self.last_scanned = 0  # LRU pages the last shrink_node scanned (sc->nr_scanned)
        # pgdat->kswapd_order: the highest order asked of kswapd since it last read it.
        self.kswapd_order = 0
        # pgdat->kswapd_highest_zoneidx: the highest classzone asked since kswapd last
        # read it; -1 is the kernel's MAX_NR_ZONES, "none asked".
        self.kswapd_highest_zoneidx = -1
        # pgdat->kswapd_failures: balance_pgdat runs in a row that reclaimed nothing.
        self.kswapd_failures = 0
        # wakeup_kcompactd(order), set by the engine (sim/machine.py).
        self.on_wakeup_kcompactd: Callable[[int], None] | None = None
        # mm/compaction.c compaction_suitable(zone, order, watermark, highest_zoneidx),
        # set by the engine when compaction is on; None is CONFIG_COMPACTION off, with
        # no reclaim/compaction mode (should_continue_reclaim, compaction_ready).
        self.compaction_suitable: Callable[[Zone, int, int, int], bool] | None = None

    def add_filesystem(self, fsys: FileSystem) -> None:
        """A mounted file system: its super block shrinker joins ``shrink_slab``."""
        self.filesystems.append(fsys)
        self.fs_caches.update((fsys.dcache.name, fsys.icache.name))

    def report(self) -> dict[str, int]:
        """The shrinkers' work, for a run's summary (``shrinker``)."""
        stats = self.stats
        return {"runs": stats.shrinker_runs, "objects_freed": stats.shrinker_freed,
                "objects_scanned": stats.shrinker_scanned}

    # ------------------------------------------------------------------ kswapd's rules

    def pgdat_balanced(self, order: int = 0, highest_zoneidx: int = -1) -> bool:
        """``pgdat_balanced(pgdat, order, highest_zoneidx)``: some zone up to
        ``highest_zoneidx`` (-1: every zone), checked bottom-up, passes
        ``zone_watermark_ok_safe(zone, order, high_wmark_pages(zone), ...)``, i.e. it has
        more free pages than the high watermark plus the boost plus
        ``lowmem_reserve[highest_zoneidx]`` and, for ``order`` > 0, a free block of at
        least that order::

            for_each_managed_zone_pgdat(zone, pgdat, i, highest_zoneidx) {
                mark = high_wmark_pages(zone);
                if (zone_watermark_ok_safe(zone, order, mark, highest_zoneidx))
                    return true;
            }
            if (mark == -1)
                return true;
            return false;
        """
        if highest_zoneidx < 0:
            highest_zoneidx = self.top_zoneidx
        managed = False
        for zone in self.zones:
            if zone.zone_idx > highest_zoneidx:
                break
            managed = True
            if zone.zone_watermark_ok(order, zone.wmark_pages(WMARK_HIGH), 0, highest_zoneidx):
                return True
        return not managed

    def pgdat_watermark_boosted(self, highest_zoneidx: int = -1) -> bool:
        """``pgdat_watermark_boosted``: a zone up to ``highest_zoneidx`` has a boost::

            if (zone->watermark_boost) return true;
        """
        if highest_zoneidx < 0:
            highest_zoneidx = self.top_zoneidx
        for zone in self.zones:
            if zone.zone_idx <= highest_zoneidx and zone.watermark_boost > 0:
                return True
        return False

    def kswapd_hopeless(self) -> bool:
        """``pgdat->kswapd_failures >= MAX_RECLAIM_RETRIES``: "Hopeless node, leave it
        to direct reclaim". A ``shrink_node`` that reclaims anything resets the count."""
        return self.kswapd_failures >= MAX_RECLAIM_RETRIES

    def prepare_kswapd_sleep(self, order: int, highest_zoneidx: int = -1) -> bool:
        """``prepare_kswapd_sleep(pgdat, order, highest_zoneidx)``: kswapd may sleep on a
        hopeless node or one balanced for ``order``::

            if (pgdat->kswapd_failures >= MAX_RECLAIM_RETRIES)
                return true;
            if (pgdat_balanced(pgdat, order, highest_zoneidx)) {
                clear_pgdat_congested(pgdat);
                return true;
            }
            return false;
        """
        return self.kswapd_hopeless() or self.pgdat_balanced(order, highest_zoneidx)

    def wakeup_kswapd(self, order: int, direct_reclaim: bool, sleeping: bool,
                      highest_zoneidx: int = -1) -> bool:
        """``wakeup_kswapd(zone, gfp_flags, order, highest_zoneidx)``: True when kswapd
        is to be woken. ``direct_reclaim`` is ``gfp_flags & __GFP_DIRECT_RECLAIM``;
        ``sleeping`` is ``waitqueue_active(&pgdat->kswapd_wait)`` (kswapd in its short or
        its full sleep). The order is recorded whether or not kswapd sleeps::

            if (READ_ONCE(pgdat->kswapd_order) < order)
                WRITE_ONCE(pgdat->kswapd_order, order);
            curr_idx = READ_ONCE(pgdat->kswapd_highest_zoneidx);
            if (curr_idx == MAX_NR_ZONES || curr_idx < highest_zoneidx)
                WRITE_ONCE(pgdat->kswapd_highest_zoneidx, highest_zoneidx);
            if (!waitqueue_active(&pgdat->kswapd_wait))
                return;
            /* Hopeless node, leave it to direct reclaim if possible */
            if (pgdat->kswapd_failures >= MAX_RECLAIM_RETRIES ||
                (pgdat_balanced(pgdat, order, highest_zoneidx) &&
                 !pgdat_watermark_boosted(pgdat, highest_zoneidx))) {
                if (!(gfp_flags & __GFP_DIRECT_RECLAIM))
                    wakeup_kcompactd(pgdat, order, highest_zoneidx);
                return;
            }
            wake_up_interruptible(&pgdat->kswapd_wait);

        ``highest_zoneidx`` -1 is the node's highest zone.
        """
        if highest_zoneidx < 0:
            highest_zoneidx = self.top_zoneidx
        if self.kswapd_order < order:
            self.kswapd_order = order
        if self.kswapd_highest_zoneidx < highest_zoneidx:
            self.kswapd_highest_zoneidx = highest_zoneidx
        if not sleeping:
            return False
        if self.kswapd_hopeless() or (self.pgdat_balanced(order, highest_zoneidx)
                                      and not self.pgdat_watermark_boosted(highest_zoneidx)):
            if not direct_reclaim:
                self.wakeup_kcompactd(order)
            return False
        return True

    def wakeup_kcompactd(self, order: int) -> None:
        """``wakeup_kcompactd(pgdat, order, highest_zoneidx)``, through the hook the
        engine sets (sim/daemons.py ``Kcompactd.wakeup``); nothing without one."""
        hook = self.on_wakeup_kcompactd
        if hook is not None:
            hook(order)

    def shrink_node(self, nr_to_reclaim: int, priority: int, cpu: int = 0,
                    proportional: bool = False, gfp_fs: bool = True,
                    reclaim_idx: int = -1, order: int = 0) -> int:
        """``shrink_node``; returns page-cache pages plus slab pages freed and leaves its
        cost in ``last_cost`` and its LRU scan in ``last_scanned``. ``proportional``:
        scan the LRU's whole share for ``priority`` whatever is reclaimed
        (``shrink_lruvec``'s ``proportional_reclaim``: global direct reclaim at
        DEF_PRIORITY). ``gfp_fs``: the reclaimer's gfp mask has __GFP_FS
        (``sc->gfp_mask``, which ``shrink_slab`` hands to the shrinkers; the super block
        shrinkers stop without it). ``reclaim_idx``: ``sc->reclaim_idx`` (-1: the node's
        highest zone); the LRU's folios of higher zones are passed over
        (``FileLru.shrink``'s ``skip_from``). ``order``: ``sc->order``; in
        reclaim/compaction mode the round repeats at the same priority while
        ``should_continue_reclaim`` says so (``goto again``). All at once: the steps of
        ``shrink_node_steps``, their costs added up."""
        steps = self.shrink_node_steps(nr_to_reclaim, priority, cpu, proportional, gfp_fs,
                                       reclaim_idx, order)
        cost = 0.0
        while True:
            try:
                cost += next(steps)
            except StopIteration as done:
                result: NodeShrink = done.value
                break
        self.last_cost = cost
        self.last_scanned = result.scanned
        return result.reclaimed

    def shrink_node_steps(self, nr_to_reclaim: int, priority: int, cpu: int = 0,
                          proportional: bool = False, gfp_fs: bool = True,
                          reclaim_idx: int = -1, order: int = 0
                          ) -> Generator[float, None, NodeShrink]:
        """``shrink_node`` in the steps that free memory: each batch of the LRU's share
        (``shrink_lruvec`` takes SWAP_CLUSTER_MAX pages at a time, and
        ``shrink_folio_list`` frees the batch's folios at its end), then the shrinkers;
        yields each step's cost and returns what this reclaimer did (others may reclaim
        between its steps: every count is its own)."""
        total = NodeShrink()
        while True:
            done = yield from self._shrink_node_round(
                nr_to_reclaim, priority, cpu, proportional, gfp_fs, reclaim_idx)
            total.add(done)
            if not self.should_continue_reclaim(done.reclaimed, order, priority,
                                                reclaim_idx):
                break
        return total

    def in_reclaim_compaction(self, order: int, priority: int) -> bool:
        """``in_reclaim_compaction``: reclaim for compaction's sake, for a costly order,
        or any order > 0 once the priority has fallen below DEF_PRIORITY - 2."""
        return (self.compaction_suitable is not None and order > 0
                and (order > PAGE_ALLOC_COSTLY_ORDER or priority < DEF_PRIORITY - 2))

    def should_continue_reclaim(self, nr_reclaimed: int, order: int, priority: int,
                                reclaim_idx: int = -1) -> bool:
        """``should_continue_reclaim(pgdat, nr_reclaimed, sc)``: in reclaim/compaction
        mode, go on until a zone up to ``reclaim_idx`` could give the order at its min
        watermark or compaction would go ahead there, while the round reclaimed
        something and more than ``compact_gap(order)`` pages are left on the LRU::

            if (!in_reclaim_compaction(sc)) return false;
            if (!nr_reclaimed) return false;
            for_each_managed_zone_pgdat(zone, pgdat, z, sc->reclaim_idx) {
                unsigned long watermark = min_wmark_pages(zone);
                if (zone_watermark_ok(zone, sc->order, watermark, sc->reclaim_idx, 0))
                    return false;
                if (compaction_suitable(zone, sc->order, watermark, sc->reclaim_idx))
                    return false;
            }
            pages_for_compaction = compact_gap(sc->order);
            inactive_lru_pages = node_page_state(pgdat, NR_INACTIVE_FILE);
            return inactive_lru_pages > pages_for_compaction;

        One LRU stands for the inactive file list (no swap: anon is not counted)."""
        suitable = self.compaction_suitable
        if suitable is None or not self.in_reclaim_compaction(order, priority):
            return False
        if not nr_reclaimed:
            return False
        hz = reclaim_idx if reclaim_idx >= 0 else self.top_zoneidx
        for zone in self.zones:
            if zone.zone_idx > hz:
                break
            mark = zone.min_wmark
            if zone.zone_watermark_ok(order, mark, 0, hz):
                return False
            if suitable(zone, order, mark, hz):
                return False
        return self.lru.nr_pages > compact_gap(order)

    def compaction_ready(self, zone: Zone, order: int, reclaim_idx: int = -1) -> bool:
        """``compaction_ready(zone, sc)``: direct reclaim for a costly order leaves alone
        a zone that could give the order at its min watermark, or where compaction
        would go ahead above the high watermark (``shrink_zones`` skips it and
        ``do_try_to_free_pages`` stops after the round)::

            if (zone_watermark_ok(zone, sc->order, min_wmark_pages(zone),
                                  sc->reclaim_idx, 0))
                return true;
            watermark = high_wmark_pages(zone);
            if (compaction_suitable(zone, sc->order, watermark, sc->reclaim_idx))
                return true;
            return false;
        """
        suitable = self.compaction_suitable
        if suitable is None:
            return False
        hz = reclaim_idx if reclaim_idx >= 0 else self.top_zoneidx
        if zone.zone_watermark_ok(order, zone.min_wmark, 0, hz):
            return True
        return suitable(zone, order, zone.wmark_pages(WMARK_HIGH), hz)

    def _shrink_node_round(self, nr_to_reclaim: int, priority: int, cpu: int,
                           proportional: bool, gfp_fs: bool, reclaim_idx: int
                           ) -> Generator[float, None, NodeShrink]:
        """One round of ``shrink_node`` (``shrink_node_memcgs``: the LRU's share, then
        ``shrink_slab``), yielding the cost of each LRU batch and then the shrinkers'."""
        cfg = self.cfg
        # The costs read once: a pydantic model's attribute goes through its __getattr__
        # hook, and the loop below runs once per batch of 32 pages.
        scan_cost, evict_cost, evict_page_cost = cfg.scan_cost, cfg.evict_cost, cfg.evict_page_cost
        lru = self.lru
        nr_lru = lru.nr_pages
        lru_scan = max(nr_lru >> priority, min(nr_lru, SWAP_CLUSTER_MAX))
        lru_stats = lru.stats
        lru_scanned = 0
        # proportional_reclaim: every batch of the share is scanned whatever is
        # reclaimed (with 2 MiB folios each batch of 32 takes one folio, so the share's
        # lru_scan / 32 batches reclaim up to 16 times lru_scan pages).
        goal = -1 if proportional else nr_to_reclaim
        skip_from = self.skip_from(reclaim_idx)
        evicted = 0
        remaining = lru_scan if nr_lru else 0
        while remaining > 0 and (goal < 0 or evicted < goal):
            batch = min(SWAP_CLUSTER_MAX, remaining)
            remaining -= batch
            folios_scanned, folios_evicted = lru_stats.folios_scanned, lru_stats.folios_evicted
            pages_scanned = lru_stats.scanned
            got = lru.shrink(goal - evicted if goal >= 0 else -1, max_scan=batch,
                             batch=SWAP_CLUSTER_MAX, skip_from=skip_from)
            evicted += got
            lru_scanned += lru_stats.scanned - pages_scanned
            # Eviction costs per folio, and per page for what a folio's size adds
            # (freeing its pages): configs/real/reclaim-cost measured kswapd at 650 ns a
            # folio and 29 ns a page, from order-0 to 2 MiB folios.
            yield ((lru_stats.folios_scanned - folios_scanned) * scan_cost
                   + (lru_stats.folios_evicted - folios_evicted) * evict_cost
                   + got * evict_page_cost)
            if lru.exhausted:
                break
        slab_pages_before = sum(c.nr_pages for c in self.caches)
        freed = scanned = 0
        for fsys in self.filesystems:
            result = fsys.shrink(priority=priority, cpu=cpu, gfp_fs=gfp_fs)
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
        slab_pages_freed = max(0, slab_pages_before - sum(c.nr_pages for c in self.caches))
        if freed and self.after_shrink is not None:
            self.after_shrink()
        reclaimed = evicted + slab_pages_freed
        if reclaimed:
            # "A successful direct reclaim run will revive a dormant kswapd."
            self.kswapd_failures = 0
        if scanned:
            yield scanned * cfg.slab_scan_cost
        return NodeShrink(reclaimed, lru_scanned, evicted, freed)

    def skip_from(self, reclaim_idx: int) -> int:
        """The first node pfn of the zones above ``reclaim_idx`` (-1: none, or every
        zone is eligible)."""
        if reclaim_idx < 0 or reclaim_idx >= self.top_zoneidx:
            return -1
        return min(z.zone_start_pfn for z in self.zones if z.zone_idx > reclaim_idx)

    def kswapd_shrink_node(self, sc: ScanControl) -> Generator[float, None, bool]:
        """``kswapd_shrink_node``: one ``shrink_node`` for up to the high watermarks'
        pages of the zones up to ``sc.reclaim_idx``, in its steps (``shrink_node_steps``:
        yields each one's cost); past ``compact_gap(order)`` pages reclaimed kswapd
        checks order 0 only. True when it scanned its target (the priority need not
        rise)::

            for_each_managed_zone_pgdat(zone, pgdat, z, sc->reclaim_idx)
                sc->nr_to_reclaim += max(high_wmark_pages(zone), SWAP_CLUSTER_MAX);
            shrink_node(pgdat, sc);
            if (sc->order && sc->nr_reclaimed >= compact_gap(sc->order))
                sc->order = 0;
            return sc->nr_scanned >= sc->nr_to_reclaim;
        """
        self.stats.kswapd_rounds += 1
        nr_to_reclaim = 0
        for zone in self.zones:
            if zone.zone_idx <= sc.reclaim_idx:
                nr_to_reclaim += max(zone.wmark_pages(WMARK_HIGH), SWAP_CLUSTER_MAX)
        sc.nr_to_reclaim = nr_to_reclaim
        done = yield from self.shrink_node_steps(sc.nr_to_reclaim, sc.priority,
                                                 reclaim_idx=sc.reclaim_idx, order=sc.order)
        stats = self.stats
        stats.kswapd_reclaimed += done.reclaimed
        stats.pgsteal_kswapd += done.evicted
        stats.pgscan_kswapd += done.scanned
        stats.kswapd_slab_freed += done.slab_freed
        sc.nr_reclaimed += done.reclaimed
        sc.nr_scanned = done.scanned
        if sc.order and sc.nr_reclaimed >= compact_gap(sc.order):
            sc.order = 0
        return sc.nr_scanned >= sc.nr_to_reclaim

    def balance_pgdat(self, order: int = 0, highest_zoneidx: int = -1
                      ) -> Generator[float, None, int]:
        """``balance_pgdat(pgdat, order, highest_zoneidx)``: kswapd's reclaim. Yields
        the cost of each step of each ``kswapd_shrink_node`` round (every LRU batch,
        then the shrinkers, and a last step that brings a round to at least 1 us),
        which kswapd sleeps before the next, and returns the order it finished at
        (``sc.order``: 0 when it fell back from a high order).

        - The boost present at the start is reclaimed even on a balanced zone, at a
          priority held at DEF_PRIORITY - 2 (no writeback or swap here in any case);
          an unbalanced zone drops the boost target and restarts as normal reclaim::

              balanced = pgdat_balanced(pgdat, sc.order, highest_zoneidx);
              if (!balanced && nr_boost_reclaim) {
                  nr_boost_reclaim = 0;
                  goto restart;
              }
              if (!nr_boost_reclaim && balanced)
                  goto out;
              if (nr_boost_reclaim && sc.priority == DEF_PRIORITY - 2)
                  raise_priority = false;
              ...
              if (kswapd_shrink_node(pgdat, &sc))
                  raise_priority = false;
              ...
              nr_boost_reclaim -= min(nr_boost_reclaim, nr_reclaimed);
              if (nr_boost_reclaim && !nr_reclaimed)
                  break;
              if (raise_priority || !nr_reclaimed)
                  sc.priority--;
          } while (sc.priority >= 1);
          if (!sc.nr_reclaimed)
              pgdat->kswapd_failures++;

        - At the end only the boost that was there at the start is taken off (boosts
          that arrived meanwhile stay), and kcompactd is woken at pageblock order::

              zone->watermark_boost -= min(zone->watermark_boost, zone_boosts[i]);
              ...
              wakeup_kcompactd(pgdat, pageblock_order, highest_zoneidx);

        ZONE_RECLAIM_ACTIVE is set while it runs (``set_reclaim_active``). The zones are
        those up to ``highest_zoneidx`` (-1: all), which is also ``sc.reclaim_idx``: the
        reclaim target is theirs, and the LRU's folios of higher zones are passed over.
        """
        if highest_zoneidx < 0:
            highest_zoneidx = self.top_zoneidx
        zones = [zone for zone in self.zones if zone.zone_idx <= highest_zoneidx]
        stats = self.stats
        sc = ScanControl(order)
        sc.reclaim_idx = highest_zoneidx
        zone_boosts = [zone.watermark_boost for zone in zones]
        nr_boost_reclaim = sum(zone_boosts)
        boosted = nr_boost_reclaim > 0
        for zone in zones:
            zone.zone_reclaim_active = True
        sc.priority = DEF_PRIORITY  # restart:
        while True:
            nr_reclaimed = sc.nr_reclaimed
            raise_priority = True
            balanced = self.pgdat_balanced(sc.order, highest_zoneidx)
            if not balanced and nr_boost_reclaim:
                nr_boost_reclaim = 0
                sc.priority = DEF_PRIORITY  # goto restart
                continue
            if not nr_boost_reclaim and balanced:
                break  # goto out
            if nr_boost_reclaim and sc.priority == DEF_PRIORITY - 2:
                raise_priority = False
            # The round's steps (each LRU batch, then the shrinkers), at least 1 us in all.
            steps = self.kswapd_shrink_node(sc)
            spent = 0.0
            while True:
                try:
                    cost = next(steps)
                except StopIteration as done:
                    if done.value:
                        raise_priority = False
                    break
                spent += cost
                yield cost
            if spent < 1e-6:
                yield 1e-6 - spent
            nr_reclaimed = sc.nr_reclaimed - nr_reclaimed
            nr_boost_reclaim -= min(nr_boost_reclaim, nr_reclaimed)
            if not (nr_boost_reclaim and not nr_reclaimed):
                if raise_priority or not nr_reclaimed:
                    sc.priority -= 1
                if sc.priority >= 1:
                    continue
            # The loop ended (priority below 1, or a boost that made no progress).
            if not sc.nr_reclaimed:
                self.kswapd_failures += 1
                stats.kswapd_giveups += 1
            break
        for zone in zones:
            zone.zone_reclaim_active = False  # out:
        if boosted:
            for i, zone in enumerate(zones):
                zone.watermark_boost = zone.watermark_boost - min(zone.watermark_boost,
                                                                  zone_boosts[i])
            self.wakeup_kcompactd(zones[0].pageblock_order)
        return sc.order


class ScanControl:
    """The fields of ``struct scan_control`` kswapd's loop uses."""

    def __init__(self, order: int) -> None:
        self.order = order
        self.priority = DEF_PRIORITY
        self.nr_to_reclaim = 0
        self.nr_reclaimed = 0  # pages, over the whole balance_pgdat
        self.nr_scanned = 0  # LRU pages the last kswapd_shrink_node scanned
        self.reclaim_idx = 4  # the highest zone index reclaimed for (MAX_NR_ZONES - 1)


def _zone_idx(zone: Zone) -> int:
    return zone.zone_idx
