"""Allocating pages: ``__alloc_pages`` and its slow path, from mm/page_alloc.c (6.18).

The zone (sim/buddy.py) is ``get_page_from_freelist`` for one zone; this module is
what the kernel wraps around it, plain synchronous code with no SimPy, so tests drive
it directly:

- ``alloc_pages``: ``__alloc_pages``: the fast path at the low watermark
  (``ALLOC_WMARK_LOW``, plus ``ALLOC_KSWAPD`` when the gfp mask may wake kswapd),
  then the slow path.
- ``alloc_pages_slowpath``: ``__alloc_pages_slowpath``: ``gfp_to_alloc_flags``,
  kswapd woken, the min watermark, then, for requests that may block, direct
  compaction first for costly or non-movable high orders (``GFPF_NORETRY`` costly
  requests give up when it is skipped or deferred), direct reclaim
  (``__alloc_pages_direct_reclaim``: a SWAP_CLUSTER_MAX cluster at falling priority,
  a retry, then ``unreserve_highatomic_pageblock(ac, false)`` and ``drain_all_pages``
  and a retry), direct compaction again, and the retry rules (``GFPF_NORETRY`` and
  costly orders without ``GFPF_RETRY_MAYFAIL`` stop after one round; others retry
  while reclaim makes progress, up to MAX_RECLAIM_RETRIES, and when
  ``should_reclaim_retry`` would give up it first gives back a highatomic pageblock,
  ``unreserve_highatomic_pageblock(ac, true)``, and retries if it could). There is no
  OOM killer: a request that would need one fails and is counted
  (``AllocStats.alloc_failures``, ``failures_by_order``).
- Highatomic reserves: ``gfp_to_alloc_flags`` sets ALLOC_HIGHATOMIC for a request of
  order > 0 with ``__GFP_HIGH``, no ``__GFP_DIRECT_RECLAIM`` and no
  ``__GFP_NOMEMALLOC`` (GFP_ATOMIC), so only its slow path may reserve a pageblock (the
  fast path runs at ALLOC_WMARK_LOW without it, as the kernel's does); the zone does
  the rest (sim/buddy.py ``reserve_highatomic_pageblock``).
- ``alloc_pages_batch`` / ``free_pages_batch``: runs of order-0 pages through the
  zone's per-CPU fast path at once (``Zone.alloc_batch``), an implementation detail
  with no effect on results: a run stops at the first page the fast path refuses,
  and the caller takes the pages so far in hand before that page's slow path
  (``alloc_pages_refused``) can reclaim or migrate them. ``batched=False`` goes page
  by page, the reference tests/test_batching.py holds the batched path to.

Time: direct reclaim and direct compaction run at once in simulated time, inside
the allocating workload's step; their cost is added up as stall time
(``AllocStats.stall_s``) rather than slept.

Departures from 6.18: one zone, so no zonelist walk, no ``ALLOC_NOFRAGMENT`` second
pass and no lowmem reserve; no ``should_reclaim_retry`` watermark estimate (progress
alone decides), no ``should_compact_retry`` priority escalation beyond async then
sync-light, no OOM killer, no ``__GFP_NOFAIL``. ``unreserve_highatomic_pageblock``
gets the request's migratetype as ``ac->migratetype``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from sim.buddy import (
    ALLOC_HIGHATOMIC,
    ALLOC_KSWAPD,
    ALLOC_MIN_RESERVE,
    ALLOC_NON_BLOCK,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    PAGE_ALLOC_COSTLY_ORDER,
    Zone,
)
from sim.compaction import Compactor, CompactResult
from sim.gfp import (
    GFP_KERNEL,
    GFPF_DIRECT_RECLAIM,
    GFPF_HIGH,
    GFPF_KSWAPD_RECLAIM,
    GFPF_NOMEMALLOC,
    GFPF_NORETRY,
    GFPF_NOWARN,
    GFPF_RECLAIM,
    GFPF_RECLAIMABLE,
    GFPF_RETRY_MAYFAIL,
    gfp_migratetype,
)
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE
from sim.vmscan import DEF_PRIORITY, MAX_RECLAIM_RETRIES, SWAP_CLUSTER_MAX, Reclaim


@dataclass
class AllocStats:
    """Counters of the allocation slow path (the zone keeps the fast path's)."""

    alloc_failures: int = 0  # requests that failed after the slow path
    slowpath: int = 0
    direct_reclaim: int = 0
    direct_reclaimed: int = 0  # pages
    direct_compact: int = 0
    stall_s: float = 0.0  # direct reclaim + direct compaction cost

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def gfp_to_alloc_flags(order: int, gfp: int) -> int:
    """``gfp_to_alloc_flags``: the slow path's watermark and reserve flags. A caller
    that cannot reclaim directly may dip further into the reserves (ALLOC_NON_BLOCK),
    and a high-order one with ``__GFP_HIGH`` into the highatomic reserve, unless it
    opted out with ``__GFP_NOMEMALLOC``."""
    flags = ALLOC_WMARK_MIN
    if gfp & GFPF_HIGH:
        flags |= ALLOC_MIN_RESERVE
    if gfp & GFPF_KSWAPD_RECLAIM:
        flags |= ALLOC_KSWAPD
    if not gfp & GFPF_DIRECT_RECLAIM and not gfp & GFPF_NOMEMALLOC:
        flags |= ALLOC_NON_BLOCK
        if order > 0 and flags & ALLOC_MIN_RESERVE:
            flags |= ALLOC_HIGHATOMIC
    return flags


def slab_gfp(mt: int, noretry: bool) -> int:
    """The gfp mask of a slab page (mm/slub.c ``allocate_slab``): GFP_KERNEL with the
    cache's mobility bit; the first attempt above the minimum order adds
    ``GFPF_NOWARN | GFPF_NORETRY | GFPF_NOMEMALLOC`` and drops ``GFPF_RECLAIM``."""
    gfp = GFP_KERNEL | (GFPF_RECLAIMABLE if mt == MIGRATE_RECLAIMABLE else 0)
    if noretry:
        gfp = (gfp | GFPF_NOWARN | GFPF_NORETRY | GFPF_NOMEMALLOC) & ~GFPF_RECLAIM
    return gfp


class PageAllocator:
    """``__alloc_pages`` over one zone, with direct reclaim and direct compaction.

    ``wakeup_kswapd(order, direct_reclaim)`` is ``wake_all_kswapds`` for this zone
    (sim/daemons.py ``Kswapd.wakeup``; ``direct_reclaim`` is whether the caller may
    reclaim directly, which decides whether a balanced zone wakes kcompactd instead);
    ``on_failure(order)`` hears
    of each request that failed after the slow path (the slab defragmenter's trigger).
    ``compaction`` False: no direct compaction (``compaction.enabled: false``).
    """

    def __init__(self, zone: Zone, reclaim: Reclaim, compactor: Compactor, *,
                 compaction: bool = True, batched: bool = True,
                 wakeup_kswapd: Callable[[int, bool], None] | None = None,
                 on_failure: Callable[[int], object] | None = None) -> None:
        self.zone = zone
        self.reclaim = reclaim
        self.compactor = compactor
        self.compaction = compaction
        self.batched = batched
        self.wakeup_kswapd = wakeup_kswapd or (lambda order, direct_reclaim: None)
        self.on_failure = on_failure
        self.stats = AllocStats()
        self.failures_by_order = [0] * (zone.max_order + 1)
        self._gfp_fast: dict[int, tuple[int, int]] = {}
        self.free_pages = zone.free  # __free_pages: the zone's free itself, one call less

    def report(self) -> dict[str, float]:
        return self.stats.as_dict()

    # ------------------------------------------------------------------ fast path

    def _fast_params(self, gfp: int) -> tuple[int, int]:
        """The fast path's migratetype and alloc_flags, which depend on the gfp mask alone."""
        fast = self._gfp_fast.get(gfp)
        if fast is None:
            fast = self._gfp_fast[gfp] = (
                gfp_migratetype(gfp),
                ALLOC_WMARK_LOW | (ALLOC_KSWAPD if gfp & GFPF_KSWAPD_RECLAIM else 0))
        return fast

    def alloc_pages(self, order: int, gfp: int = GFP_KERNEL, cpu: int = 0,
                    owner: int | None = None) -> int | None:
        """``__alloc_pages``: the fast path, then the slow path; the head pfn or None."""
        fast = self._gfp_fast.get(gfp) or self._fast_params(gfp)
        pfn = self.zone.alloc(order, fast[0], cpu, owner, fast[1])
        if pfn is None:
            pfn = self.alloc_pages_refused(order, gfp, cpu, owner)
        return pfn

    def alloc_pages_refused(self, order: int, gfp: int, cpu: int,
                            owner: int | None) -> int | None:
        """The rest of ``alloc_pages`` once the zone's fast path said no: the slow
        path, and the failure accounting if that fails too."""
        pfn = self.alloc_pages_slowpath(order, gfp, self._fast_params(gfp)[0], cpu, owner)
        if pfn is None:
            self.stats.alloc_failures += 1
            self.failures_by_order[order] += 1
            if self.on_failure is not None:
                self.on_failure(order)
        return pfn

    def alloc_pages_batch(self, n: int, gfp: int, cpu: Callable[[], int],
                          owner: int | None, out: list[int],
                          owner_of: Callable[[], int] | None = None,
                          ) -> tuple[int, int | None] | None:
        """Order-0 pages as ``alloc_pages(0, gfp, cpu(), owner)`` calls in a row take
        them, while the zone serves them without the slow path.

        Appends the pfns to ``out``. Returns None when it stopped without a refusal
        (all ``n`` done, or, when not ``batched``, after one page), or the
        ``(cpu, owner)`` of the page the zone refused: the caller takes ``out``'s pages
        in hand first (the slow path can reclaim or migrate pages it holds), then
        finishes that page with ``alloc_pages_refused(0, gfp, cpu, owner)``.
        ``owner_of``, when given, draws each page's owner before its CPU.
        """
        mt, flags = self._gfp_fast.get(gfp) or self._fast_params(gfp)
        if self.batched:
            return self.zone.alloc_batch(n, mt, cpu, owner, flags, out, owner_of)
        # One page through the per-call path: the reference the batch must equal.
        if n <= 0:
            return None
        o = owner if owner_of is None else owner_of()
        c = cpu()
        pfn = self.zone.alloc(0, mt, c, o, flags)
        if pfn is None:
            return c, o
        out.append(pfn)
        return None

    def free_pages_batch(self, pfns: list[int], order: int, cpu: Callable[[], int]) -> None:
        """``free_pages(pfn, order, cpu())`` for each pfn in turn."""
        if self.batched:
            self.zone.free_batch(pfns, order, cpu)
            return
        free = self.zone.free
        for pfn in pfns:
            free(pfn, order, cpu())

    def slab_page_allocator(self, order: int, mt: int, cpu: int, owner: int,
                            alloc_flags: int, noretry: bool) -> int | None:
        """Slab pages through the full path, with ``slab_gfp``'s mask."""
        return self.alloc_pages(order, slab_gfp(mt, noretry), cpu, owner)

    # ------------------------------------------------------------------ slow path

    def alloc_pages_direct_compact(self, order: int, mt: int, cpu: int, owner: int | None,
                                   alloc_flags: int, prio: str
                                   ) -> tuple[CompactResult | None, int | None]:
        """``__alloc_pages_direct_compact``; its cost is stall time."""
        if not self.compaction or order == 0:
            return None, None
        before = self.compactor.stats.time_s
        result, pfn = self.compactor.alloc_pages_direct_compact(
            order, mt, prio=prio, alloc_flags=alloc_flags, cpu=cpu, owner=owner)
        self.stats.direct_compact += 1
        self.stats.stall_s += self.compactor.stats.time_s - before
        return result, pfn

    def alloc_pages_slowpath(self, order: int, gfp: int, mt: int, cpu: int,
                             owner: int | None) -> int | None:
        """``__alloc_pages_slowpath`` (see the module docstring)."""
        self.stats.slowpath += 1
        zone = self.zone
        costly = order > PAGE_ALLOC_COSTLY_ORDER
        can_direct_reclaim = bool(gfp & GFPF_DIRECT_RECLAIM)
        alloc_flags = gfp_to_alloc_flags(order, gfp)
        if alloc_flags & ALLOC_KSWAPD:
            self.wakeup_kswapd(order, can_direct_reclaim)
        pfn = zone.alloc(order, mt, cpu, owner, alloc_flags)
        if pfn is not None:
            return pfn
        prio = "async"
        if can_direct_reclaim and (costly or (order > 0 and mt != MIGRATE_MOVABLE)):
            result, pfn = self.alloc_pages_direct_compact(order, mt, cpu, owner, alloc_flags,
                                                          prio)
            if pfn is not None:
                return pfn
            if costly and gfp & GFPF_NORETRY and result in (
                None, CompactResult.COMPACT_SKIPPED, CompactResult.COMPACT_DEFERRED
            ):
                return None
        no_progress_loops = 0
        while True:
            if alloc_flags & ALLOC_KSWAPD:
                self.wakeup_kswapd(order, can_direct_reclaim)
            pfn = zone.alloc(order, mt, cpu, owner, alloc_flags)
            if pfn is not None:
                return pfn
            if not can_direct_reclaim:
                return None
            progress, pfn = self.alloc_pages_direct_reclaim(order, mt, cpu, owner,
                                                            alloc_flags)
            if pfn is not None:
                return pfn
            _, pfn = self.alloc_pages_direct_compact(order, mt, cpu, owner, alloc_flags, prio)
            if pfn is not None:
                return pfn
            if gfp & GFPF_NORETRY:
                return None
            if costly and not gfp & GFPF_RETRY_MAYFAIL:
                return None
            no_progress_loops = 0 if progress else no_progress_loops + 1
            if (no_progress_loops > MAX_RECLAIM_RETRIES or not progress) and not (
                # should_reclaim_retry: "Before OOM, exhaust highatomic_reserve"
                zone.unreserve_highatomic_pageblock(mt, True)
            ):
                return None  # the kernel would now consider the OOM killer
            prio = "sync_light"

    def alloc_pages_direct_reclaim(self, order: int, mt: int, cpu: int, owner: int | None,
                                   alloc_flags: int) -> tuple[int, int | None]:
        """``__alloc_pages_direct_reclaim``: reclaim a cluster, retry; if that fails,
        give back a highatomic pageblock (keeping the last) and drain the per-CPU lists,
        then retry once more. Returns (pages reclaimed, the pfn or None)."""
        self.stats.direct_reclaim += 1
        reclaimed = 0
        reclaim = self.reclaim
        for priority in range(DEF_PRIORITY, -1, -1):
            reclaimed += reclaim.shrink_node(SWAP_CLUSTER_MAX - reclaimed, priority, cpu)
            self.stats.stall_s += reclaim.last_cost
            if reclaimed >= SWAP_CLUSTER_MAX:
                break
        self.stats.direct_reclaimed += reclaimed
        pfn = self.zone.alloc(order, mt, cpu, owner, alloc_flags)
        if pfn is None and reclaimed:
            # "pages are pinned on the per-cpu lists or in high alloc reserves"
            self.zone.unreserve_highatomic_pageblock(mt, False)
            self.zone.drain_all_pages()
            pfn = self.zone.alloc(order, mt, cpu, owner, alloc_flags)
        return reclaimed, pfn
