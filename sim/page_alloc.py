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
  (``__alloc_pages_direct_reclaim``: ``do_try_to_free_pages`` for SWAP_CLUSTER_MAX
  pages at falling priority, whose first round at DEF_PRIORITY scans its whole
  proportional share, ``lru_pages >> 12``, as ``shrink_lruvec``'s
  ``proportional_reclaim`` does for global direct reclaim; then a retry, then
  ``unreserve_highatomic_pageblock(ac, false)`` and ``drain_all_pages`` and a retry),
  direct compaction again, and the retry rules (``GFPF_NORETRY`` and
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
(``AllocStats.stall_s``) rather than slept. ``slowpath_elapsed`` is what the current
slow path has stalled so far: the task's clock, which the engine's hooks read when it
wakes kswapd and while its direct compaction lets kswapd run on another CPU
(sim/machine.py, sim/daemons.py ``Kswapd.run_concurrently``).

Zones: over a single zone (``machine.zones: [Normal]``) there is no zonelist walk, no
``ALLOC_NOFRAGMENT`` pass and no lowmem reserve. Over a ``Node`` of several zones
(sim/mmzone.py; the default machine) every ``get_page_from_freelist`` walks
the zonelist from ``gfp_zone(gfp)`` down with ``lowmem_reserve[highest_zoneidx]``, the
fast path adds ``alloc_flags_nofragment`` (the slow path does not, as in 6.18 without
``defrag_mode``), ``unreserve_highatomic_pageblock`` and ``drain_all_pages`` cover the
zonelist, and direct compaction is ``try_to_compact_pages`` over it with the request's
classzone, so a lower zone's watermark checks (``compaction_suit_allocation_order``,
``compaction_suitable``) keep its ``lowmem_reserve`` as the allocation after them does.
Direct reclaim is node-wide with ``sc->reclaim_idx`` = the classzone: the LRU passes over
the folios of higher zones (sim/vmscan.py).

Departures from 6.18 besides: no ``should_reclaim_retry`` watermark estimate (progress
alone decides), no ``should_compact_retry`` priority escalation beyond async then
sync-light, no OOM killer, no ``__GFP_NOFAIL``. ``unreserve_highatomic_pageblock``
gets the request's migratetype as ``ac->migratetype``.

Reclaim/compaction (with compaction on): direct reclaim for a costly order leaves alone
the zones that are already ``compaction_ready`` and stops after the round that found one
(``shrink_zones``, ``do_try_to_free_pages``, which then reports progress), and every
``shrink_node`` of an order > 0 (a costly one, or any once the priority has fallen below
DEF_PRIORITY - 2) repeats while ``should_continue_reclaim`` (sim/vmscan.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from librt.vecs import append as vec_append
from librt.vecs import vec
from mypy_extensions import i64

from sim.buddy import (
    ALLOC_HIGHATOMIC,
    ALLOC_KSWAPD,
    ALLOC_MIN_RESERVE,
    ALLOC_NON_BLOCK,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    OWNER_PINNED,
    PAGE_ALLOC_COSTLY_ORDER,
    Zone,
)
from sim.compaction import Compactor, CompactResult
from sim.gfp import (
    GFP_KERNEL,
    GFPF_DIRECT_RECLAIM,
    GFPF_FS,
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
from sim.mmzone import Node, gfp_zone
from sim.objects import FolioSource
from sim.vmscan import DEF_PRIORITY, MAX_RECLAIM_RETRIES, SWAP_CLUSTER_MAX, Reclaim


@dataclass
class AllocStats:
    """Counters of the allocation slow path (the zone keeps the fast path's)."""

    alloc_failures: int = 0  # requests that failed after the slow path
    slowpath: int = 0
    direct_reclaim: int = 0
    direct_reclaimed: int = 0  # pages
    direct_compact: int = 0
    drain_all_pages: int = 0  # drain_all_pages calls of direct reclaim
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
    """``__alloc_pages`` over one zone or one node's zonelist, with direct reclaim and
    direct compaction.

    ``wakeup_kswapd(order, direct_reclaim[, highest_zoneidx])`` is ``wake_all_kswapds``
    (sim/daemons.py ``Kswapd.wakeup``; ``direct_reclaim`` is whether the caller may
    reclaim directly, which decides whether a balanced zone wakes kcompactd instead);
    ``on_failure(order)`` hears
    of each request that failed after the slow path (the slab defragmenter's trigger).
    ``compaction`` False: no direct compaction (``compaction.enabled: false``).

    With a ``node`` of several zones (sim/mmzone.py), every ``get_page_from_freelist``
    walks its zonelist from ``gfp_zone(gfp)`` down, the fast path with
    ``alloc_flags_nofragment``, pfns are node pfns, and direct compaction runs
    ``try_to_compact_pages`` over the zonelist with ``compactors`` (one ``Compactor``
    per zone index). A node of one zone at pfn 0 is the single zone: the same calls as
    without a node.
    """

    def __init__(self, zone: Zone, reclaim: Reclaim, compactor: Compactor, *,
                 compaction: bool = True, batched: bool = True,
                 wakeup_kswapd: Callable[..., None] | None = None,
                 on_failure: Callable[[int], object] | None = None,
                 node: Node | None = None,
                 compactors: dict[int, Compactor] | None = None) -> None:
        self.zone = zone
        self.reclaim = reclaim
        self.compactor = compactor
        self.compaction = compaction
        self.batched = batched
        self.wakeup_kswapd = wakeup_kswapd or (
            lambda order, direct_reclaim, highest_zoneidx=-1: None)
        self.on_failure = on_failure
        self.stats = AllocStats()
        # Simulated time: in a slow path, and the stall at its start
        # (``slowpath_elapsed``: the task's clock for the engine's hooks).
        self._in_slowpath = False
        self._slowpath_stall0 = 0.0
        self.slowpath_s = 0.0  # wall time of this process in the slow path
        self.failures_by_order = [0] * (zone.max_order + 1)
        # The fast path's parameters of each gfp mask seen so far (``_fast_params``): the
        # masks in a typed vector searched in order (a run uses a handful), and their
        # (migratetype, alloc_flags, highest_zoneidx) in a list beside it. A dict keyed by
        # the mask made an int object of the key at every allocation.
        self._fast_gfps: vec[i64] = vec[i64]()
        self._fast_values: list[tuple[int, int, int]] = []
        self.node = node if node is not None and node.multi_zone else None
        self.compactors = compactors if compactors is not None else {zone.zone_idx: compactor}
        if self.node is not None:
            self.free_pages = self.node.free
        else:
            self.free_pages = zone.free  # __free_pages: the zone's free itself, one call less

    def report(self) -> dict[str, float]:
        return self.stats.as_dict()

    # ------------------------------------------------------------------ fast path

    def _fast_params(self, gfp: int) -> tuple[int, int, int]:
        """The fast path's migratetype, alloc_flags and highest_zoneidx, which depend on
        the gfp mask alone."""
        gfps = self._fast_gfps
        for i in range(len(gfps)):
            if gfps[i] == gfp:
                return self._fast_values[i]
        highest_zoneidx = gfp_zone(gfp)
        flags = ALLOC_WMARK_LOW | (ALLOC_KSWAPD if gfp & GFPF_KSWAPD_RECLAIM else 0)
        if self.node is not None:
            flags |= self.node.alloc_flags_nofragment(highest_zoneidx)
        fast = (gfp_migratetype(gfp), flags, highest_zoneidx)
        self._fast_gfps = vec_append(self._fast_gfps, gfp)
        self._fast_values.append(fast)
        return fast

    def get_page_from_freelist(self, order: int, mt: int, cpu: int, owner: int | None,
                               alloc_flags: int, highest_zoneidx: int) -> int | None:
        """The zone's ``alloc``, or the node's zonelist walk."""
        if self.node is None:
            return self.zone.alloc(order, mt, cpu, owner, alloc_flags)
        return self.node.get_page_from_freelist(order, mt, cpu, owner, alloc_flags,
                                                highest_zoneidx)

    def alloc_pages(self, order: int, gfp: int = GFP_KERNEL, cpu: int = 0,
                    owner: int | None = None) -> int | None:
        """``__alloc_pages``: the fast path, then the slow path; the head pfn or None."""
        pfn = self.alloc_pages_pfn(order, gfp, cpu, owner)
        return None if pfn < 0 else pfn

    def alloc_pages_pfn(self, order: int, gfp: int, cpu: int, owner: int | None) -> int:
        """``alloc_pages``, with -1 for None: compiled, an ``int | None`` result is a
        Python int made for every page, an ``int`` one a C integer."""
        fast = self._fast_params(gfp)
        if self.node is None:
            pfn = self.zone.alloc_pfn(order, fast[0], cpu, owner, fast[1])
        else:
            pfn = self.node.get_page_pfn(order, fast[0], cpu, owner, fast[1], fast[2])
        if pfn < 0:
            got = self.alloc_pages_refused(order, gfp, cpu, owner)
            return -1 if got is None else got
        return pfn

    def alloc_pages_refused(self, order: int, gfp: int, cpu: int,
                            owner: int | None) -> int | None:
        """The rest of ``alloc_pages`` once the zone's fast path said no: the slow
        path, and the failure accounting if that fails too."""
        started = time.perf_counter()
        pfn = self.alloc_pages_slowpath(order, gfp, self._fast_params(gfp)[0], cpu, owner)
        # What this run spends here, for the summary (the time itself changes nothing;
        # perf_counter, not process_time: a tenth of a microsecond, not a system call)
        self.slowpath_s += time.perf_counter() - started
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
        mt, flags, highest_zoneidx = self._fast_params(gfp)
        if self.batched:
            if self.node is not None:
                return self.node.alloc_batch(n, mt, cpu, owner, flags, highest_zoneidx, out,
                                             owner_of)
            return self.zone.alloc_batch(n, mt, cpu, owner, flags, out, owner_of)
        # One page through the per-call path: the reference the batch must equal.
        if n <= 0:
            return None
        o = owner if owner_of is None else owner_of()
        c = cpu()
        pfn = self.get_page_from_freelist(0, mt, c, o, flags, highest_zoneidx)
        if pfn is None:
            return c, o
        out.append(pfn)
        return None

    def free_pages_batch(self, pfns: list[int], order: int, cpu: Callable[[], int]) -> None:
        """``free_pages(pfn, order, cpu())`` for each pfn in turn."""
        if self.batched:
            if self.node is None:
                self.zone.free_batch(pfns, order, cpu)
            else:
                self.node.free_batch(pfns, order, cpu)  # the loop below, compiled calls
            return
        free = self.free_pages
        for pfn in pfns:
            free(pfn, order, cpu())

    def slab_page_allocator(self, order: int, mt: int, cpu: int, owner: int,
                            alloc_flags: int, noretry: bool) -> int | None:
        """Slab pages through the full path, with ``slab_gfp``'s mask."""
        return self.alloc_pages(order, slab_gfp(mt, noretry), cpu, owner)

    # ------------------------------------------------------------------ slow path

    def alloc_pages_direct_compact(self, order: int, mt: int, cpu: int, owner: int | None,
                                   alloc_flags: int, prio: str, highest_zoneidx: int = 2,
                                   gfp_fs: bool = True
                                   ) -> tuple[CompactResult | None, int | None]:
        """``__alloc_pages_direct_compact``; its cost is stall time. ``gfp_fs``: the
        request's mask has __GFP_FS (``cc->gfp_mask``); without it only anonymous folios
        migrate."""
        if not self.compaction or order == 0:
            return None, None
        if self.node is not None:
            return self._direct_compact_zonelist(order, mt, cpu, owner, alloc_flags, prio,
                                                 highest_zoneidx, gfp_fs)
        before = self.compactor.stats.time_s
        result, pfn = self.compactor.alloc_pages_direct_compact(
            order, mt, prio=prio, alloc_flags=alloc_flags, cpu=cpu, owner=owner,
            gfp_fs=gfp_fs)
        self.stats.direct_compact += 1
        self.stats.stall_s += self.compactor.stats.time_s - before
        return result, pfn

    def _direct_compact_zonelist(self, order: int, mt: int, cpu: int, owner: int | None,
                                 alloc_flags: int, prio: str, highest_zoneidx: int,
                                 gfp_fs: bool = True
                                 ) -> tuple[CompactResult | None, int | None]:
        """``__alloc_pages_direct_compact`` with mm/compaction.c ``try_to_compact_pages``
        over the zonelist: each zone's own deferral and ``compact_zone_order``
        (``Compactor.try_to_compact_pages``), the results' max, stopping at a capture or
        a COMPACT_SUCCESS; then the captured block or one more zonelist walk. The stall,
        success and failure counts go to the preferred zone's compactor (the kernel's
        are global vm events); success resets the deferral of the zone that gave the
        page."""
        node = self.node
        assert node is not None
        zones = [z for z in node.zonelist if z.zone_idx <= highest_zoneidx]
        if not zones:
            return None, None
        compactors = self.compactors.values()
        rc = CompactResult.COMPACT_SKIPPED
        page = None
        for zone in zones:
            # Each zone's compaction is stalled as it ends, so the next one's clock
            # (``slowpath_elapsed``) includes it.
            before = sum(c.stats.time_s for c in compactors)
            status, captured = self.compactors[zone.zone_idx].try_to_compact_pages(
                order, mt, prio=prio, alloc_flags=alloc_flags, cpu=cpu, owner=owner,
                gfp_fs=gfp_fs, highest_zoneidx=highest_zoneidx)
            self.stats.stall_s += sum(c.stats.time_s for c in compactors) - before
            rc = max(rc, status)
            if captured is not None:
                page = zone.zone_start_pfn + captured
                break
            if status == CompactResult.COMPACT_SUCCESS:
                break
        self.stats.direct_compact += 1
        if rc == CompactResult.COMPACT_SKIPPED:
            return rc, None
        preferred = self.compactors[zones[0].zone_idx]
        preferred.stats.stalls += 1
        if page is None:
            page = node.get_page_from_freelist(order, mt, cpu, owner, alloc_flags,
                                               highest_zoneidx)
        if page is not None:
            self.compactors[node.page_zone(page).zone_idx].direct_compact_done(
                order, True, counted_by=preferred)
        else:
            preferred.direct_compact_done(order, False)
        return rc, page

    def unreserve_highatomic_pageblock(self, mt: int, force: bool,
                                       highest_zoneidx: int = 2) -> bool:
        """``unreserve_highatomic_pageblock(ac, force)``: the zones of the zonelist in
        turn, until one gives a pageblock back."""
        if self.node is None:
            return self.zone.unreserve_highatomic_pageblock(mt, force)
        for zone in self.node.zonelist:
            if zone.zone_idx <= highest_zoneidx and zone.unreserve_highatomic_pageblock(
                    mt, force):
                return True
        return False

    def drain_all_pages(self) -> None:
        """``drain_all_pages(NULL)``: every zone's per-CPU lists."""
        for zone in (self.node.zonelist if self.node is not None else [self.zone]):
            zone.drain_all_pages()

    def _wake_all_kswapds(self, order: int, direct_reclaim: bool, highest_zoneidx: int
                          ) -> None:
        """``wake_all_kswapds``: with the request's classzone over a node's zonelist
        (a lone zone is its own classzone)."""
        if self.node is None:
            self.wakeup_kswapd(order, direct_reclaim)
        else:
            self.wakeup_kswapd(order, direct_reclaim, highest_zoneidx)

    def slowpath_elapsed(self) -> float:
        """The simulated time the current slow path has stalled so far (0 outside
        one); a direct compaction's own time is added when it ends."""
        return self.stats.stall_s - self._slowpath_stall0 if self._in_slowpath else 0.0

    def alloc_pages_slowpath(self, order: int, gfp: int, mt: int, cpu: int,
                             owner: int | None) -> int | None:
        """``__alloc_pages_slowpath`` (see the module docstring). A slow path inside
        another's direct compaction (a slab page emptied for it allocates) keeps its own
        clock and gives the outer one back at its end."""
        saved = (self._in_slowpath, self._slowpath_stall0)
        self._in_slowpath = True
        self._slowpath_stall0 = self.stats.stall_s
        try:
            return self._alloc_pages_slowpath(order, gfp, mt, cpu, owner)
        finally:
            self._in_slowpath, self._slowpath_stall0 = saved

    def _alloc_pages_slowpath(self, order: int, gfp: int, mt: int, cpu: int,
                              owner: int | None) -> int | None:
        self.stats.slowpath += 1
        hz = gfp_zone(gfp)
        gpff = self.get_page_from_freelist
        costly = order > PAGE_ALLOC_COSTLY_ORDER
        can_direct_reclaim = bool(gfp & GFPF_DIRECT_RECLAIM)
        gfp_fs = bool(gfp & GFPF_FS)
        alloc_flags = gfp_to_alloc_flags(order, gfp)
        if alloc_flags & ALLOC_KSWAPD:
            self._wake_all_kswapds(order, can_direct_reclaim, hz)
        pfn = gpff(order, mt, cpu, owner, alloc_flags, hz)
        if pfn is not None:
            return pfn
        prio = "async"
        if can_direct_reclaim and (costly or (order > 0 and mt != MIGRATE_MOVABLE)):
            result, pfn = self.alloc_pages_direct_compact(order, mt, cpu, owner, alloc_flags,
                                                          prio, hz, gfp_fs)
            if pfn is not None:
                return pfn
            if costly and gfp & GFPF_NORETRY and result in (
                None, CompactResult.COMPACT_SKIPPED, CompactResult.COMPACT_DEFERRED
            ):
                return None
        no_progress_loops = 0
        while True:
            if alloc_flags & ALLOC_KSWAPD:
                self._wake_all_kswapds(order, can_direct_reclaim, hz)
            pfn = gpff(order, mt, cpu, owner, alloc_flags, hz)
            if pfn is not None:
                return pfn
            if not can_direct_reclaim:
                return None
            progress, pfn = self.alloc_pages_direct_reclaim(order, mt, cpu, owner,
                                                            alloc_flags, hz, gfp_fs)
            if pfn is not None:
                return pfn
            _, pfn = self.alloc_pages_direct_compact(order, mt, cpu, owner, alloc_flags, prio,
                                                     hz, gfp_fs)
            if pfn is not None:
                return pfn
            if gfp & GFPF_NORETRY:
                return None
            if costly and not gfp & GFPF_RETRY_MAYFAIL:
                return None
            no_progress_loops = 0 if progress else no_progress_loops + 1
            if (no_progress_loops > MAX_RECLAIM_RETRIES or not progress) and not (
                # should_reclaim_retry: "Before OOM, exhaust highatomic_reserve"
                self.unreserve_highatomic_pageblock(mt, True, hz)
            ):
                return None  # the kernel would now consider the OOM killer
            prio = "sync_light"

    def alloc_pages_direct_reclaim(self, order: int, mt: int, cpu: int, owner: int | None,
                                   alloc_flags: int, highest_zoneidx: int = 2,
                                   gfp_fs: bool = True) -> tuple[int, int | None]:
        """``__alloc_pages_direct_reclaim``: reclaim at least a cluster (the whole
        proportional share at DEF_PRIORITY; for a costly order, until compaction could
        go ahead), retry; if that fails, give back a highatomic pageblock (keeping the
        last) and drain the per-CPU lists, then retry once more. Returns (progress, the
        pfn or None): progress is the pages reclaimed, or 1 when reclaim stopped
        because compaction is ready (``do_try_to_free_pages``)."""
        self.stats.direct_reclaim += 1
        reclaimed = 0
        reclaim = self.reclaim
        # shrink_zones: for a costly order, a zone that is compaction_ready is left
        # alone (and ends the priority loop after this round); the node is shrunk once,
        # at the first zone up to the classzone that is not ready, and the zones after
        # it are checked after that shrink.
        costly = order > PAGE_ALLOC_COSTLY_ORDER and self.compaction
        zones: list[Zone] = []
        if costly:
            zones = ([z for z in self.node.zonelist if z.zone_idx <= highest_zoneidx]
                     if self.node is not None else [self.zone])
        hz = highest_zoneidx if self.node is not None else -1
        compaction_ready = False
        for priority in range(DEF_PRIORITY, -1, -1):
            if costly:
                shrunk = False
                for zone in zones:
                    if reclaim.compaction_ready(zone, order, hz):
                        compaction_ready = True
                    elif not shrunk:
                        shrunk = True
                        reclaimed += self._shrink_node(reclaimed, priority, cpu, gfp_fs,
                                                       hz, order)
            else:
                reclaimed += self._shrink_node(reclaimed, priority, cpu, gfp_fs, hz, order)
            if reclaimed >= SWAP_CLUSTER_MAX or compaction_ready:
                break
        self.stats.direct_reclaimed += reclaimed
        # do_try_to_free_pages: "Aborted reclaim to try compaction? don't OOM, then".
        progress = reclaimed or int(compaction_ready)
        pfn = self.get_page_from_freelist(order, mt, cpu, owner, alloc_flags, highest_zoneidx)
        if pfn is None and progress:
            # "pages are pinned on the per-cpu lists or in high alloc reserves"
            self.unreserve_highatomic_pageblock(mt, False, highest_zoneidx)
            self.stats.drain_all_pages += 1
            self.drain_all_pages()
            pfn = self.get_page_from_freelist(order, mt, cpu, owner, alloc_flags,
                                              highest_zoneidx)
        return progress, pfn

    def _shrink_node(self, reclaimed: int, priority: int, cpu: int, gfp_fs: bool,
                     reclaim_idx: int, order: int) -> int:
        """Direct reclaim's ``shrink_node`` for what is left of SWAP_CLUSTER_MAX: at
        DEF_PRIORITY ``shrink_lruvec`` scans its whole proportional share, not just until
        SWAP_CLUSTER_MAX are reclaimed; ``shrink_node`` repeats while
        ``should_continue_reclaim`` (``sc->order``). Its cost is stall time."""
        got = self.reclaim.shrink_node(SWAP_CLUSTER_MAX - reclaimed, priority, cpu,
                                       proportional=priority == DEF_PRIORITY, gfp_fs=gfp_fs,
                                       reclaim_idx=reclaim_idx, order=order)
        self.stats.stall_s += self.reclaim.last_cost
        return got


class OtherCpus:
    """What the other CPUs do while a direct compaction takes its time: the hook
    sim/compaction.py's ``Compactor.concurrent`` calls with the time the compaction has
    taken so far (``elapsed``). It runs ``run(until)`` (sim/daemons.py
    ``Kswapd.run_concurrently``) at the compacting task's time: ``now()`` plus what its
    slow path has stalled so far (``slowpath_elapsed``) plus ``elapsed``.

    ``run``'s owner keeps ``not_before`` (``Kswapd._publish``): a time up to which
    ``run`` finds nothing to do, so the call is not made. It is compiled for that: most
    rounds of a direct compaction come while kswapd is inside a step that ends later,
    and the interpreted call of ``run`` cost more than the test. ``task_time`` is the
    allocating task's clock alone (kswapd's ``clock``: a wake comes at that time)."""

    def __init__(self, pa: PageAllocator, now: Callable[[], float],
                 run: Callable[[float], None]) -> None:
        self.pa = pa
        self.now = now
        self.run = run
        self.not_before = -math.inf

    def task_time(self) -> float:
        """The allocating task's time: ``now()`` plus what its slow path has stalled."""
        return self.now() + self.pa.slowpath_elapsed()

    def __call__(self, elapsed: float) -> None:
        until = self.task_time() + elapsed
        if until > self.not_before:
            self.run(until)


class FolioAlloc(FolioSource):
    """One call site's folio allocations with its GFP flags fixed: ``alloc_pages(order,
    gfp, cpu, OWNER_PINNED)``, ``gfp`` at order 0 and ``gfp_large`` above. A page-cache
    folio is held, not migratable, until its file system adds it to the file
    (sim/objects.py ``_add_folio`` makes it OWNER_MOVABLE): the folios a write(2) or a
    readahead allocates in turn are in no file while the later ones are allocated, and
    a direct compaction those allocations run must not move (or split) one that no
    owner would follow. In the kernel each is in the page cache from its allocation on
    (``filemap_add_folio``), and migration updates the mapping; this holds them for the
    length of the one call instead. Compiled, for the file system (``folio_pfn(order,
    cpu)``, its ``alloc_folio``) and for a read's readahead (``on_cpu(order)``, at
    ``cpu`` as last set): the engine's callables were interpreted functions between two
    compiled calls, one Python frame per folio. Nothing else: the same allocation as
    calling ``alloc_pages`` itself."""

    def __init__(self, page_alloc: PageAllocator, gfp: int, gfp_large: int) -> None:
        self.page_alloc = page_alloc
        self.gfp = gfp
        self.gfp_large = gfp_large
        self.cpu = 0  # on_cpu's CPU

    def folio_pfn(self, order: int, cpu: int) -> int:
        """The folio's head pfn, -1 for none (sim/objects.py ``FolioSource``)."""
        return self.page_alloc.alloc_pages_pfn(
            order, self.gfp if order == 0 else self.gfp_large, cpu, OWNER_PINNED)

    def on_cpu(self, order: int) -> int | None:
        pfn = self.folio_pfn(order, self.cpu)
        return None if pfn < 0 else pfn
