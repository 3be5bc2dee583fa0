"""Synthetic clients of the allocators: slab objects, kernel pages, anonymous memory,
page cache, the THP probe, the "free K-1 of K" fragmenter and manual compaction.

Each is a SimPy process with its own random stream; operations due within one tick
run in one event (workloads/base.py). Page allocations go through
``Machine.alloc_pages`` (fast path, then the slow path with kswapd, direct compaction
and direct reclaim); GFP flags are the ones the kernel uses for such memory.
"""

from __future__ import annotations

import itertools
import math
from array import array
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.buddy import OWNER_MOVABLE, OWNER_PINNED, OWNER_UNMOVABLE
from sim.daemons import Khugepaged
from sim.gfp import (
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
    GFP_PGTABLE_USER,
    GFP_TRANSHUGE,
    GFP_TRANSHUGE_LIGHT,
)
from sim.huge_memory import (
    ThpDefrag,
    ThpEnabled,
    ThpStats,
    alloc_hugepage_khugepaged_gfpmask,
    thp_vma_allowable,
    vma_alloc_anon_folio_pmd,
    vma_thp_gfp_mask,
)
from sim.khugepaged import KHUGEPAGED_CPU, KhugepagedScan
from sim.memory import PTE_PMD, AnonVma
from sim.metrics import avail, unusable_index
from sim.units import Duration, Size
from workloads.base import Lifetime, PageSet, Workload, WorkloadParams
from workloads.objloop import LiveObjects
from workloads.pageset import AnonPages

_KHUGEPAGED_CPU = itertools.repeat(KHUGEPAGED_CPU).__next__


class SlabChurn(Workload):
    """Objects of one slab cache: Poisson or burst arrivals, lifetimes from a
    distribution. ``unused_share`` of them sit unused on the cache's LRU (reclaimable by
    the shrinker and by free-mode defrag, like the dentries of closed files)."""

    kind = "slab_churn"

    class Params(WorkloadParams):
        cache: str
        size: Size | None = Field(None, description="slot size if the cache is new")
        rate: float = Field(1000.0, ge=0, description="objects per second")
        arrival: Literal["poisson", "bursts"] = "poisson"
        burst_size: int = Field(1000, ge=1)
        burst_every: Duration = 1.0
        lifetime: Lifetime = Field(default_factory=Lifetime)
        max_objects: int | None = Field(None, ge=0)
        unused_share: float = Field(0.0, ge=0, le=1)

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        self.live = LiveObjects()
        self.allocated = self.freed = self.failed = self.evicted = 0

    # ObjectOwner: the cache asks us before evicting an unused object.
    def reclaimable(self, cache, oid: int) -> bool:
        return oid in self.live and cache.default_reclaimable(oid)

    def evict(self, cache, oid: int, cpu: int) -> int:
        self.live.discard(oid)
        self.evicted += 1
        return cache.default_evict(oid, cpu)

    def run(self):
        p = self.params
        cache = self.machine.cache(p.cache, p.size)
        if p.unused_share > 0:
            if cache.owner is not None and cache.owner is not self:
                raise ValueError(f"cache {p.cache} already has an owner of unused objects")
            cache.owner = self
        self.cache = cache
        env = self.env
        next_burst = env.now
        while True:
            now = env.now
            self.freed += self.live.free_due(cache, self.pop_expired(now), self.cpu)
            if self.active():
                if p.arrival == "poisson":
                    n = self.arrivals(p.rate, p.tick)
                else:
                    n = 0
                    while next_burst <= now:
                        n += p.burst_size
                        next_burst += p.burst_every
                if p.max_objects is not None:
                    n = min(n, max(0, p.max_objects - len(self.live)))
                if n:
                    self._allocate(n)
            elif not self._expiry:
                return
            yield env.timeout(p.tick)

    def _allocate(self, n: int) -> None:
        p = self.params
        cache = self.cache
        lifetimes = p.lifetime.sample(self.rng, n).tolist()
        unused = self.rng.random(n) < p.unused_share if p.unused_share else None
        now = self.env.now
        whens: list[float] = []
        items: list[int] = []
        self.live.alloc_many(cache, n, self.cpu, now, lifetimes,
                             None if unused is None else unused.tolist(), whens, items)
        self.allocated += len(items)
        self.failed += n - len(items)
        # Nothing reads the expiry queue before the next tick: queue them at once.
        self.expire_many(whens, items)

    def summary(self) -> dict[str, Any]:
        return {"allocated": self.allocated, "freed": self.freed, "failed": self.failed,
                "evicted": self.evicted, "live": len(self.live)}


class KernelAlloc(Workload):
    """Unmovable kernel pages (network buffers, page tables): orders 0..3 with weights,
    GFP_KERNEL, lifetimes from a distribution. For kmalloc objects use ``slab_churn`` on a
    ``kmalloc-N`` cache."""

    kind = "kernel_alloc"

    class Params(WorkloadParams):
        rate: float = Field(100.0, ge=0, description="allocations per second")
        orders: dict[int, float] = Field(default_factory=lambda: {0: 1.0})
        lifetime: Lifetime = Field(default_factory=Lifetime)
        gfp: Literal["kernel", "atomic", "nowait"] = "kernel"

        @model_validator(mode="after")
        def _orders(self):
            if not self.orders or any(not 0 <= o <= 10 or not 0 <= w < math.inf
                                      for o, w in self.orders.items()):
                raise ValueError("expected orders as {order 0-10: finite weight >= 0}")
            total = sum(self.orders.values())
            if not 0 < total < math.inf:
                raise ValueError("expected weights with a positive, finite sum")
            return self

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        from sim.gfp import GFP_ATOMIC, GFP_NOWAIT

        self.gfp = {"kernel": GFP_KERNEL, "atomic": GFP_ATOMIC, "nowait": GFP_NOWAIT}[params.gfp]
        orders = sorted(params.orders)
        weights = np.array([params.orders[o] for o in orders], dtype=float)
        self._orders = np.array(orders)
        self._weights = weights / weights.sum()
        # Generator.choice(orders, n, p=weights) draws ``random(n)`` and looks them up
        # in this table; done here once rather than validated again every tick.
        self._cdf = self._weights.cumsum()
        self._cdf /= self._cdf[-1]
        self.allocated = self.failed = self.freed = 0
        self.held_pages = 0

    def draw_orders(self, n: int) -> list[int]:
        """``n`` orders by weight: ``rng.choice(orders, n, p=weights)``'s draws."""
        return self._orders[self._cdf.searchsorted(self.rng.random(n), side="right")].tolist()

    def run(self):
        p = self.params
        m = self.machine
        env = self.env
        while True:
            now = env.now
            for pfn, order in self.pop_expired(now):
                m.free_pages(pfn, order, self.cpu())
                self.freed += 1
                self.held_pages -= 1 << order
            if self.active():
                n = self.arrivals(p.rate, p.tick)
                if n:
                    orders = self.draw_orders(n)
                    lifetimes = p.lifetime.sample(self.rng, n).tolist()
                    whens: list[float] = []
                    items: list[tuple[int, int]] = []
                    for order, life in zip(orders, lifetimes, strict=True):
                        pfn = m.alloc_pages(order, self.gfp, self.cpu(), OWNER_UNMOVABLE)
                        if pfn is None:
                            self.failed += 1
                            continue
                        self.allocated += 1
                        self.held_pages += 1 << order
                        whens.append(now + life)
                        items.append((pfn, order))
                    # Nothing reads the expiry queue before the next tick: queue them at once.
                    self.expire_many(whens, items)
            elif not self._expiry:
                return
            yield env.timeout(p.tick)

    def summary(self) -> dict[str, Any]:
        return {"allocated": self.allocated, "failed": self.failed, "freed": self.freed,
                "held_pages": self.held_pages}


class KhugepagedParams(BaseModel):
    """khugepaged's settings (``/sys/kernel/mm/transparent_hugepage/khugepaged/``) for
    the scan of one anonymous workload's VMA."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(
        True, description="scan this workload's VMA when THP is enabled for it (thp: always, "
        "or madvise with madvise: true), as the kernel's khugepaged does; false: a what-if "
        "without it")
    pages_to_scan: int = Field(4096, ge=1, description="PTEs scanned per wakeup (pages_to_scan)")
    scan_sleep: Duration = Field(10.0, gt=0,
                                 description="the sleep between scans (scan_sleep_millisecs)")
    alloc_sleep: Duration = Field(
        60.0, ge=0, description="the sleep after a failed huge page allocation "
        "(alloc_sleep_millisecs)")
    max_ptes_none: int = Field(
        511, ge=0, le=511, description="empty PTEs a 2 MiB range may have and still be "
        "collapsed (511 = HPAGE_PMD_NR - 1: any range with a page)")
    defrag: bool = Field(
        True, description="khugepaged/defrag: direct reclaim and compaction for its huge "
        "pages (GFP_TRANSHUGE; false: GFP_TRANSHUGE_LIGHT)")


class Anon(Workload):
    """Movable user memory: an anonymous VMA of ``size`` that fills at ``grow_rate``
    (to ``size``, or until MemAvailable falls to ``fill_until_available``), then replaces
    pages at ``churn_rate``; ``pinned_share`` of its pages carry long-term GUP pins (on
    the LRU, never migrated). At ``shrink_at`` it frees down to ``shrink_to``. With THP
    enabled for the VMA (``thp: always``, or ``madvise`` with ``madvise: true``) a fault
    in an empty, wholly mapped 2 MiB range tries a huge page first, and khugepaged
    collapses ranges of 4 KiB pages.

    Faults (sim/memory.py, sim/huge_memory.py): the workload writes its unmapped pages
    lowest address first, ``grow_rate`` bytes a second while it grows, and as many as
    it freed while it churns. The first write in a pmd_none range wholly inside the VMA
    tries a PMD-order folio with ``vma_thp_gfp_mask(defrag, madvise)`` (through
    ``alloc_pages_mpol``'s two tries); it makes 2 MiB resident at once, and the budget
    it overdrew is paid back from the next ticks'. On failure (THP_FAULT_FALLBACK) that
    page, and every later one in the range, faults at order 0 (``do_anonymous_page``,
    GFP_HIGHUSER_MOVABLE). A partial 2 MiB range at the VMA's end is always order 0.

    ``fill_until_available``: before each tick's writes the workload reads MemAvailable
    (``si_mem_available``, sim/metrics.py) and writes at most the difference to the
    target, so growth stops within a tick's worth of it (a THP fault makes 2 MiB
    resident at once, and a pcp refill takes a batch out of NR_FREE_PAGES, so it can
    end a little below). The size reached is then the target of churn. Without ``size``
    the VMA is as large as memory.

    Frees (churn, shrink, and at stop): ``release: random`` picks resident pages at
    random, each page equally likely (madvise(MADV_DONTNEED) of scattered pages);
    ``release: address`` frees the lowest mapped addresses first, as ``munmap`` of the
    VMA's start does (``zap_pte_range`` walks up the addresses and the gathered pages
    are freed in that order, ``free_pages_and_swap_cache``); the page tables are then
    kept without THP too. An order-0 page is zapped alone. A page of a THP zaps the
    THP's whole 2 MiB range (``zap_huge_pmd``: 512 pages freed at once, the range
    pmd_none again), and the pages freed beyond those asked for are owed by the next
    ticks. Departure: a partial zap of a THP in the kernel splits the PMD and leaves the
    folio on the deferred split queue, to be split into 512 order-0 pages under memory
    pressure (``deferred_split_scan``) with only the zapped ones freed. sim/buddy.py
    cannot free part of an allocated block (its ``split_isolated_page`` splits
    compaction's isolated free blocks only), so here THP-backed memory always leaves in
    whole pageblocks, which understates the fragmentation that churn in THPs causes.

    khugepaged (sim/khugepaged.py, sim/daemons.py ``Khugepaged``): while THP is enabled
    for the VMA, it scans ``pages_to_scan`` PTEs every ``scan_sleep`` and collapses a
    range of order-0 pages with at most ``max_ptes_none`` holes into a THP (the holes
    become resident zeroed pages, so the resident set grows past what was written).
    Compaction never moves a THP (sim/compaction.py ``_skip_isolation_on_order``), but
    ``migrate_page`` follows any block it moves.

    With ``thp: never`` (the default), or ``madvise`` without ``madvise: true``, there
    are neither THPs nor khugepaged, and the page tables are not kept.

    Page-table pages (mm/memory.c ``__pte_alloc``, mm/huge_memory.c
    ``__do_huge_pmd_anonymous_page``): the first fault in a pmd_none 2 MiB range
    allocates the range's PTE page, order 0 with GFP_PGTABLE_USER (Unmovable), before
    the data page; a THP fault allocates one too after its folio and deposits it with
    the PMD (``pgtable_trans_huge_deposit``); khugepaged's collapse keeps the range's
    PTE page as the deposit. ``zap_huge_pmd`` frees the deposited page
    (``zap_deposited_table``), before the THP; zapping 4 KiB pages leaves the PTE page
    (CONFIG_PT_RECLAIM is not modelled); the exit frees every one after the data
    (``free_pgtables``). 12 GiB of anonymous memory so holds 6 144 Unmovable pages, as
    the recorded file server's ``nr_page_table_pages`` rose by 6 176 with its 12 GiB
    balloon. Without kept page tables the faults still go lowest address first, so a
    PTE page is taken whenever a fault reaches a new 2 MiB range past the highest
    address written. Departures: the PMD pages (one per GiB) and PUD pages are not
    allocated; a failed PTE-page allocation (VM_FAULT_OOM in the kernel) ends the
    tick's writes as a failed order-0 allocation does, and after a THP fault the folio
    is freed and the range falls back to order 0.
    """

    kind = "anon"

    class Params(WorkloadParams):
        size: Size | None = Field(
            None, description="resident size to grow to, and the VMA's size (null: "
            "256 MiB; with fill_until_available, as large as memory)")
        fill_until_available: Size | None = Field(
            None, description="grow until MemAvailable (si_mem_available) falls to this, "
            "read before each tick's writes (and at most to size, if given)")
        grow_rate: Size = Field(1 << 30, description="bytes per second while growing")
        churn_rate: Size = Field(0, description="bytes per second replaced once grown")
        pinned_share: float = Field(0.0, ge=0, le=1)
        shrink_at: Duration | None = None
        shrink_to: Size = 0
        free_at_stop: bool = True
        release: Literal["random", "address"] = Field(
            "random", description="which pages churn, shrink_at and the exit free: random "
            "pages, or the lowest addresses first (munmap order)")
        thp: ThpEnabled = Field(
            "never", description="/sys/kernel/mm/transparent_hugepage/enabled as this "
            "workload sees it")
        madvise: bool = Field(
            False, description="the VMA is madvise(MADV_HUGEPAGE)d (VM_HUGEPAGE)")
        defrag: ThpDefrag = Field(
            "madvise", description="/sys/kernel/mm/transparent_hugepage/defrag: the gfp "
            "mask of a huge page fault (vma_thp_gfp_mask)")
        khugepaged: KhugepagedParams = Field(
            default_factory=KhugepagedParams, description="khugepaged's scan of this "
            "workload's VMA (/sys/kernel/mm/transparent_hugepage/khugepaged/)")

    DEFAULT_SIZE = 256 << 20

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        zone = machine.zone
        if params.size is not None:
            self.vma_pages = params.size // zone.page_size
        elif params.fill_until_available is not None:
            self.vma_pages = zone.nr_pages
        else:
            self.vma_pages = self.DEFAULT_SIZE // zone.page_size
        self.pages = PageSet(0)  # order-0 folios, its map the machine's page index
        self.pages.share_where(machine.page_index())
        self.page_size = zone.page_size
        self.failed = self.allocated = 0
        self._carry = 0.0
        self.pmd_order = zone.pageblock_order  # HPAGE_PMD_ORDER
        self.thp_stats = ThpStats()
        self.thp_gfp = vma_thp_gfp_mask(params.defrag, params.madvise)
        thp = self.thp = thp_vma_allowable(params.thp, params.madvise)
        # Which virtual page a pfn backs only matters where a THP can be faulted or
        # collapsed, or where frees go by address: otherwise the page tables are not
        # kept at all.
        self.vma = AnonVma(self.vma_pages, self.pmd_order, zone.end_pfn) if (
            thp or params.release == "address") else None
        self.thps = PageSet(zone.end_pfn if thp else 0, self.pmd_order)  # THP heads
        # compaction's moves of its pages, told in compiled code
        self.page_owner = AnonPages(self.pages, self.thps, self.pmd_order,
                                    self.vma.migrate if self.vma is not None else None)
        machine.register_page_owner(self.page_owner, self.owns)
        # PTE pages: by 2 MiB range with kept page tables (-1: pmd_none), else in the
        # order of the ranges the faults reached (``_span`` virtual pages written).
        self._pgtable = array("i", [-1]) * (self.vma.nr_ranges if self.vma else 0)
        self._pgtables: list[int] = []
        self._span = 0
        self._grow_debt = self._churn_debt = 0  # pages a THP fault or zap overdrew
        self.exited = False  # the mm is gone (everything freed at stop)
        self.khugepaged: Khugepaged | None = None
        k = params.khugepaged
        if thp and k.enabled:
            scan = KhugepagedScan(self, zone, machine.alloc_pages,
                                  alloc_hugepage_khugepaged_gfpmask(k.defrag), OWNER_MOVABLE,
                                  self.thp_stats, k.max_ptes_none)
            self.khugepaged = Khugepaged(machine.env, scan, pages_to_scan=k.pages_to_scan,
                                         scan_sleep=k.scan_sleep, alloc_sleep=k.alloc_sleep,
                                         alive=lambda: not self.exited)

    @property
    def page_tables(self) -> int:
        """PTE pages held (``nr_page_table_pages``)."""
        return sum(1 for pfn in self._pgtable if pfn >= 0) + len(self._pgtables)

    @property
    def resident(self) -> int:
        """Pages resident: order-0 folios and the pages of THPs."""
        return len(self.pages) + (len(self.thps) << self.pmd_order)

    def start(self) -> None:
        super().start()
        if self.khugepaged is not None:
            self.env.process(self._khugepaged())

    def _khugepaged(self):
        if self.params.start > 0:
            yield self.env.timeout(self.params.start)
        yield from self.khugepaged.run()

    def owns(self, pfn: int, order: int) -> bool:
        if order == 0:
            return pfn in self.pages
        return (order == self.machine.zone.pageblock_order and len(self.thps.where) > 0
                and pfn in self.thps)

    def migrate_page(self, old: int, new: int, order: int) -> bool:
        return self.page_owner.migrate_page(old, new, order)

    # ------------------------------------------------------------------ faults

    def _alloc(self, n: int, vpages: np.ndarray | None = None) -> int:
        """``n`` order-0 pages, mapped at ``vpages`` in turn when the page tables are
        kept; stops at the first page the slow path cannot find. Returns the pages
        allocated."""
        m = self.machine
        pinned = self.params.pinned_share
        owner_of = None
        if pinned:
            rng_random = self.rng.random

            def owner_of() -> int:
                return OWNER_PINNED if rng_random() < pinned else OWNER_MOVABLE

        holes = self._span - len(self.pages)  # without kept tables: below the span
        tables = self._pte_alloc_points(n, vpages, holes)
        done = k = 0
        try:
            while done < n:
                if k < len(tables) and tables[k] == done:
                    # __pte_alloc: the range's page table before its first page.
                    if not self._pte_alloc(
                            None if vpages is None else int(vpages[done]) >> self.pmd_order):
                        self.failed += 1
                        return done
                    k += 1
                end = tables[k] if k < len(tables) else n
                got: list[int] = []
                refused = m.alloc_pages_batch(end - done, GFP_HIGHUSER_MOVABLE, self.cpu,
                                              OWNER_MOVABLE, got, owner_of)
                # In hand (and mapped) before a slow path can migrate them.
                self._add_order0(got, vpages, done)
                done += len(got)
                if refused is not None:
                    pfn = m.alloc_pages_refused(0, GFP_HIGHUSER_MOVABLE, *refused)
                    if pfn is None:
                        self.failed += 1
                        return done
                    self._add_order0([pfn], vpages, done)
                    done += 1
            return done
        finally:
            if vpages is None:
                self._span += max(0, done - holes)

    def _pte_alloc_points(self, n: int, vpages: np.ndarray | None, holes: int) -> list[int]:
        """Which of ``n`` order-0 faults (at ``vpages``, or, when the tables are not
        kept, into the ``holes`` below the highest address written and then past it)
        each first need their 2 MiB range's page table, as indexes into the run."""
        shift = self.pmd_order
        if vpages is None:
            hp = 1 << shift
            first = holes + (-self._span) % hp  # the first new range's first fault
            return list(range(first, n, hp))
        if n <= 0:
            return []
        ranges = np.asarray(vpages[:n], dtype=np.int64) >> shift
        starts = np.flatnonzero(np.diff(ranges, prepend=-1))  # each range's first fault
        table = self._pgtable
        return [int(i) for i in starts if table[int(ranges[i])] < 0]

    def _pte_alloc(self, r: int | None) -> bool:
        """``pte_alloc_one`` for range ``r`` (None: the next new range, when the tables
        are not kept): False if no page could be had."""
        pfn = self.machine.alloc_pages(0, GFP_PGTABLE_USER, self.cpu(), OWNER_UNMOVABLE)
        if pfn is None:
            return False
        if r is None:
            self._pgtables.append(pfn)
        else:
            self._pgtable[r] = pfn
        return True

    def _pte_free(self, r: int) -> None:
        """``pte_free`` of range ``r``'s page table (``zap_deposited_table``)."""
        pfn = self._pgtable[r]
        if pfn >= 0:
            self._pgtable[r] = -1
            self.machine.free_pages(pfn, 0, self.cpu())

    def _free_pgtables(self) -> None:
        """``free_pgtables`` at exit: every page table left, lowest range first."""
        for r in range(len(self._pgtable)):
            self._pte_free(r)
        if self.vma is not None:
            self.vma.free_pgtables()
        m = self.machine
        for pfn in self._pgtables:
            m.free_pages(pfn, 0, self.cpu())
        self._pgtables = []
        self._span = 0

    def _add_order0(self, pfns: list[int], vpages: np.ndarray | None, at: int) -> None:
        self.pages.add_many(pfns)
        self.allocated += len(pfns)
        if vpages is not None:
            self.vma.map_ptes(vpages[at:at + len(pfns)], pfns)

    def _fault_huge(self, r: int) -> bool:
        """``do_huge_pmd_anonymous_page`` in range ``r``: False for VM_FAULT_FALLBACK."""
        pinned = self.params.pinned_share
        owner = OWNER_PINNED if pinned and self.rng.random() < pinned else OWNER_MOVABLE
        pfn = vma_alloc_anon_folio_pmd(self.machine.alloc_pages, self.thp_gfp, self.pmd_order,
                                       self.cpu(), owner, self.thp_stats)
        if pfn is None:
            return False
        # pte_alloc_one for the deposit (pgtable_trans_huge_deposit), after the folio.
        if not self._pte_alloc(r):  # VM_FAULT_OOM: the folio goes back
            self.machine.free_pages(pfn, self.pmd_order, self.cpu())
            return False
        self.thps.add(pfn)
        self.vma.map_pmd(r, pfn)
        return True

    def _fault(self, n: int) -> int:
        """Write ``n`` unmapped pages, lowest address first (see the class doc).
        Returns the pages made resident: more than ``n`` after a THP fault, fewer when
        an order-0 page could not be had."""
        if n <= 0:
            return 0
        vma = self.vma
        if vma is None:
            return self._alloc(n)
        holes = vma.next_holes(n)
        if not self.thp:
            return self._alloc(len(holes), holes)
        ranges = holes >> self.pmd_order
        huge = vma.huge_fault_ranges(holes)
        done = i = 0
        k = len(holes)
        while i < k and done < n:
            if huge[i]:
                r = int(ranges[i])
                end = int(np.searchsorted(ranges, r, side="right"))
                if self._fault_huge(r):
                    done += vma.hpage_nr
                    i = end
                    continue
                huge[i:end] = False  # VM_FAULT_FALLBACK: the range faults at order 0
            later = np.flatnonzero(huge[i:])
            count = min((i + int(later[0]) if len(later) else k) - i, n - done)
            got = self._alloc(count, holes[i:i + count])
            done += got
            if got < count:
                break
            i += count
        return done

    def _grow(self, n: int) -> None:
        paid = min(n, self._grow_debt)
        self._grow_debt -= paid
        n -= paid
        if n > 0:
            self._grow_debt += max(0, self._fault(n) - n)

    # ------------------------------------------------------------------ frees

    def _free(self, n: int) -> int:
        """Free ``n`` pages' worth, chosen at random page by page or lowest address
        first (``release``); a page of a THP frees the whole THP (see the class doc).
        Returns the pages freed."""
        if self.params.release == "address":
            return self._free_lowest(n)
        m = self.machine
        vma = self.vma
        if not len(self.thps):
            n = min(n, len(self.pages))
            if n <= 0:
                return 0
            if m.batched and not self.cpu_draws_rng:
                pfns = self.pages.pop_random_many(self.rng, n)
                if vma is not None:
                    vma.unmap_ptes(pfns)
                m.free_pages_batch(pfns, 0, self.cpu)
                return n
            for _ in range(n):
                pfn = self.pages.pop_random(self.rng)
                if vma is not None:
                    vma.unmap_ptes([pfn])
                m.free_pages(pfn, 0, self.cpu())
            return n
        pages, thps, shift = self.pages, self.thps, self.pmd_order
        freed = 0
        while freed < n:
            n0 = len(pages)
            resident = n0 + (len(thps) << shift)
            if not resident:
                break
            x = int(self.rng.integers(resident))
            if x < n0:
                pfn = pages.pfns[x]
                pages.remove(pfn)
                vma.unmap_ptes([pfn])
                m.free_pages(pfn, 0, self.cpu())
                freed += 1
            else:
                pfn = thps.pfns[(x - n0) >> shift]
                thps.remove(pfn)
                self._pte_free(vma.zap_pmd(pfn))
                m.free_pages(pfn, shift, self.cpu())
                freed += 1 << shift
        return freed

    def _free_lowest(self, n: int) -> int:
        """``munmap`` order: free ``n`` pages' worth, the lowest mapped addresses first,
        order-0 pages in runs (one ``free_pages_batch`` each) and a THP whole. Returns
        the pages freed."""
        m = self.machine
        vma = self.vma
        pte = vma.pte
        freed = 0
        while freed < n:
            # a bounded look ahead: a run ends at the next THP anyway
            vpages = vma.lowest_mapped(min(n - freed, 4096))
            if not len(vpages):
                break
            first = pte[int(vpages[0])]
            if first == PTE_PMD:  # zap_huge_pmd: the whole THP goes
                pfn = vma.pmd[int(vpages[0]) >> self.pmd_order]
                self.thps.remove(pfn)
                self._pte_free(vma.zap_pmd(pfn))
                m.free_pages(pfn, self.pmd_order, self.cpu())
                freed += 1 << self.pmd_order
                continue
            ptes = vma.ptes_of(vpages)
            huge = np.flatnonzero(ptes == PTE_PMD)
            pfns = (ptes[:int(huge[0])] if len(huge) else ptes).tolist()
            self.pages.remove_many(pfns)
            vma.unmap_ptes(pfns)
            m.free_pages_batch(pfns, 0, self.cpu)
            freed += len(pfns)
        return freed

    def _free_all(self) -> None:
        if self.params.release == "address":
            self._free_lowest(self.resident)
        else:
            m = self.machine
            for pfn in list(self.thps.pfns):
                self.thps.remove(pfn)
                self._pte_free(self.vma.zap_pmd(pfn))
                m.free_pages(pfn, self.pmd_order, self.cpu())
            self._free(len(self.pages))
        self._free_pgtables()

    def _churn(self, n: int, target: int) -> None:
        """Free ``n`` pages' worth (less what earlier zaps overdrew), then write as many
        unmapped pages as were freed, up to ``target`` resident."""
        paid = min(n, self._churn_debt)
        self._churn_debt -= paid
        n -= paid
        freed = self._free(n)
        self._churn_debt += max(0, freed - n)
        self._fault(min(freed, target - self.resident))

    # ------------------------------------------------------------------ khugepaged

    def collapse_pmd(self, r: int, pfn: int, old_pfns: list[int]) -> None:
        """khugepaged's collapse of range ``r`` into the THP at ``pfn`` (sim/khugepaged.py
        ``CollapseMm``): the old pages are freed, the range mapped by the PMD."""
        self.pages.remove_many(old_pfns)
        self.vma.unmap_ptes(old_pfns)
        self.vma.map_pmd(r, pfn)
        self.thps.add(pfn)
        self.machine.free_pages_batch(old_pfns, 0, _KHUGEPAGED_CPU)

    # ------------------------------------------------------------------ the process

    def _quota(self, rate_bytes: float) -> int:
        self._carry += rate_bytes * self.params.tick / self.page_size
        n = int(self._carry)
        self._carry -= n
        return n

    def run(self):
        p = self.params
        env = self.env
        target = self.vma_pages
        until = (None if p.fill_until_available is None
                 else p.fill_until_available // self.page_size)
        shrunk = False
        while self.active():
            if p.shrink_at is not None and not shrunk and env.now >= p.shrink_at:
                self._free(self.resident - p.shrink_to // self.page_size)
                target = p.shrink_to // self.page_size
                shrunk = True
                until = None
            resident = self.resident
            if until is not None and resident < target:
                room = self.machine.mem_available() - until
                if room <= 0:  # filled: what it holds is the size it keeps
                    target = resident
                    until = None
                else:
                    self._grow(min(self._quota(p.grow_rate), target - resident, room))
            elif resident < target:
                self._grow(min(self._quota(p.grow_rate), target - resident))
            elif p.churn_rate:
                n = self._quota(p.churn_rate)
                if self.vma is None:
                    self._free(n)
                    self._alloc(n)
                else:
                    self._churn(n, target)
            yield env.timeout(p.tick)
        if p.free_at_stop:
            self._free_all()
            self.exited = True

    def samples(self, values: dict) -> None:
        name = self.name
        values[("anon_pages_order0", name)] = len(self.pages)
        values[(f"anon_pages_order{self.pmd_order}", name)] = (
            len(self.thps) << self.pmd_order)
        stats = self.thp_stats
        values[("thp_fault_alloc", name)] = stats.thp_fault_alloc
        values[("thp_fault_fallback", name)] = stats.thp_fault_fallback
        values[("thp_collapse_alloc", name)] = stats.thp_collapse_alloc
        values[("thp_collapse_alloc_failed", name)] = stats.thp_collapse_alloc_failed

    def summary(self) -> dict[str, Any]:
        order = str(self.pmd_order)
        stats = self.thp_stats
        out: dict[str, Any] = {
            "resident_pages": self.resident, "allocated": self.allocated,
            "failed": self.failed,
            "resident_by_order": {"0": len(self.pages),
                                  order: len(self.thps) << self.pmd_order},
            # folios allocated, by order: what a kmem/mm_page_alloc trace counts
            "folio_allocs": {"0": self.allocated,
                             order: stats.thp_fault_alloc + stats.thp_collapse_alloc},
            "thp_fault_alloc": stats.thp_fault_alloc,
            "thp_fault_fallback": stats.thp_fault_fallback,
            "thp_collapse_alloc": stats.thp_collapse_alloc,
            "thp_collapse_alloc_failed": stats.thp_collapse_alloc_failed,
            "page_tables": self.page_tables,
        }
        if self.khugepaged is not None:
            out["khugepaged_pages_collapsed"] = stats.pages_collapsed
            out["khugepaged_full_scans"] = stats.full_scans
        return out


class ThpProbe(Workload):
    """Every ``interval``, try one order-N allocation through the real path; hold it for
    ``hold``, then free it. ``gfp: light`` is THP's default ``madvise`` mode outside
    madvised regions (GFP_TRANSHUGE_LIGHT: no direct compaction, no kswapd wake);
    ``direct`` is a madvised region or ``always`` (GFP_TRANSHUGE: direct reclaim and
    compaction). The headline measure of availability."""

    kind = "thp_probe"

    class Params(WorkloadParams):
        interval: Duration = 1.0
        order: int = Field(9, ge=1, le=20)
        hold: Duration = 0.5
        gfp: Literal["light", "direct"] = "light"
        window: int = Field(30, ge=1, description="attempts in the trailing success rate")

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        machine.register_page_owner(self.migrate_page, self.owns)
        self.attempts = self.successes = self.compacted = 0
        self.recent: list[int] = []
        if params.order:
            self.held = PageSet(machine.zone.end_pfn, params.order)
        else:  # its map the machine's page index
            self.held = PageSet(0)
            self.held.share_where(machine.page_index())

    def owns(self, pfn: int, order: int) -> bool:
        return pfn in self.held

    def migrate_page(self, old: int, new: int, order: int) -> bool:
        return self.held.migrate(old, new)

    def run(self):
        p = self.params
        m = self.machine
        env = self.env
        gfp = GFP_TRANSHUGE_LIGHT if p.gfp == "light" else GFP_TRANSHUGE
        while self.active():
            for pfn in self.pop_expired(env.now):
                if pfn in self.held:
                    self.held.remove(pfn)
                    m.free_pages(pfn, p.order, self.cpu())
            before = m.compactor.stats.successes
            pfn = m.alloc_pages(p.order, gfp, self.cpu(), OWNER_MOVABLE)
            self.attempts += 1
            ok = pfn is not None
            self.successes += ok
            self.compacted += m.compactor.stats.successes > before
            self.recent.append(int(ok))
            if len(self.recent) > p.window:
                self.recent.pop(0)
            if ok:
                self.held.add(pfn)
                self.expire_at(env.now + p.hold, pfn)
            yield env.timeout(p.interval)
        for pfn in list(self.held.pfns):
            self.held.remove(pfn)
            m.free_pages(pfn, p.order, self.cpu())

    def samples(self, values: dict) -> None:
        if self.recent:
            values[("thp_success_rate", "")] = sum(self.recent) / len(self.recent)
            values[("thp_success_cumulative", "")] = self.successes / self.attempts
            values[("thp_attempts", "")] = self.attempts

    def summary(self) -> dict[str, Any]:
        rate = self.successes / self.attempts if self.attempts else float("nan")
        return {"attempts": self.attempts, "successes": self.successes,
                "success_rate": rate, "needed_compaction": self.compacted}


class Fragment(Workload):
    """The anchor recipe: fill memory with movable pages, then free K-1 of every K
    (Gupta's proactive-compaction test). ``unmovable_share`` of the fill are order-0
    GFP_KERNEL pages and ``slab_share`` are objects of ``slab_cache``: their placement
    comes from the allocator's own fallback rules, never from chosen pfns.

    ``keep`` picks which page of each K stays. With ``first`` on a fresh zone, the
    kept pages sit on a grid that includes every multiple of 32, so once 6.18's free
    scanner has doubled its stride to COMPACT_CLUSTER_MAX (after pageblocks without free
    pages) every pfn it samples is a kept page, and compaction finds almost no targets.
    The real kernel run (tests/data/compaction/gupta-12g-keep1of4) compacted, so its
    layout was not that one; ``last``, the default, behaves like it (bench/anchor_gupta.py
    explains; tests/test_compaction.py shows the stride starving).

    The recipe as a program runs it: one process that writes ``fill`` bytes (or until
    MemAvailable falls to ``fill_until_available``) at ``fill_rate``, waits for
    ``free_at``, then frees in allocation (virtual address) order, all at once (the
    default) or ``free_rate`` bytes a second, as a loop of ``madvise(MADV_DONTNEED)``
    calls paced by the program would. Where it runs is the workload's ``cpu``:
    ``cpu: any`` (with ``migrate_every``) is one process the scheduler may move
    (workloads/base.py ``CpuSchedule``); an integer pins it. With the default
    ``round_robin`` every operation goes to the next CPU, which no process does, but
    which old configs ran with.

    ``fill_until_available``: before each tick's writes the program reads MemAvailable
    (``si_mem_available``, sim/metrics.py) and writes at most the difference to the
    target, so the fill stops within a tick's worth of it. Pages moved to a per-CPU list
    by a refill leave NR_FREE_PAGES, so MemAvailable can fall a pcp batch or so below the
    target. The fill also ends when a whole tick's allocations fail (the allocator can
    give no more), and at ``fill`` bytes if that is given.
    """

    kind = "fragment"

    class Params(WorkloadParams):
        fill: Size | float | None = Field(
            None, description="bytes, or a share of memory (0-1) (null: 0.75 of memory, "
            "or no limit with fill_until_available)")
        fill_until_available: Size | None = Field(
            None, description="fill until MemAvailable (si_mem_available) falls to this, "
            "read before each tick's writes")
        fill_rate: Size = Field(4 << 30, description="bytes per second while filling")
        keep_one_in: int = Field(4, ge=1)
        keep: Literal["first", "last"] = Field(
            "last", description="which page of each K stays allocated; see the class doc")
        free_at: Duration | None = Field(None, description="default: as soon as filled")
        free_rate: Size | None = Field(
            None, gt=0, description="bytes per second freed, in allocation order (null: "
            "all at once)")
        unmovable_share: float = Field(0.0, ge=0, le=1)
        slab_share: float = Field(0.0, ge=0, le=1)
        slab_cache: str = "dentry"
        slab_size: Size | None = None

    DEFAULT_FILL = 0.75

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        machine.register_page_owner(self.migrate_page, self.owns)
        from array import array

        # Every allocation in order: its kind (0 movable, 1 unmovable, 2 slab) and its
        # pfn or object id; rev maps a movable page's pfn to its slot, for migration.
        self.kinds = bytearray()
        self.handles = array("q")
        self.rev = array("i", [-1]) * machine.zone.end_pfn
        self.failed = self.freed = 0
        self._carry = 0.0
        self.filled_at: float | None = None  # when the fill ended
        self.freed_at: float | None = None  # when the last free was done
        self._free_cursor = 0  # the next slot to free (or keep)
        self._cache = None

    def owns(self, pfn: int, order: int) -> bool:
        return self.rev[pfn] >= 0

    def migrate_page(self, old: int, new: int, order: int) -> bool:
        slot = self.rev[old]
        if slot < 0:
            return False
        self.handles[slot] = new
        self.rev[new] = slot
        self.rev[old] = -1
        return True

    def _fill_pages(self) -> int | None:
        """The fill's size in pages; None: no limit but fill_until_available."""
        p = self.params
        zone = self.machine.zone
        fill = p.fill
        if fill is None:
            if p.fill_until_available is not None:
                return None
            fill = self.DEFAULT_FILL
        if isinstance(fill, int) and fill > 1:
            return fill // zone.page_size
        return int(float(fill) * zone.nr_pages * zone.page_size) // zone.page_size

    def run(self):
        p = self.params
        m = self.machine
        env = self.env
        page_size = m.zone.page_size
        target = self._fill_pages()
        until = (None if p.fill_until_available is None
                 else p.fill_until_available // page_size)
        cache = self._cache = m.cache(p.slab_cache, p.slab_size) if p.slab_share else None
        done = 0
        while target is None or done < target:
            self._carry += p.fill_rate * p.tick / page_size
            n = int(self._carry)
            if target is not None:
                n = min(n, target - done)
            if until is not None:
                room = m.mem_available() - until
                if room <= 0:
                    break
                n = min(n, room)
            self._carry -= n
            before = len(self.handles)
            for r in self.rng.random(n):
                cpu = self.cpu()
                if r < p.unmovable_share:
                    kind, handle = 1, m.alloc_pages(0, GFP_KERNEL, cpu, OWNER_UNMOVABLE)
                elif cache is not None and r < p.unmovable_share + p.slab_share:
                    kind, handle = 2, cache.alloc(cpu)
                else:
                    kind, handle = 0, m.alloc_pages(0, GFP_HIGHUSER_MOVABLE, cpu, OWNER_MOVABLE)
                if handle is None:
                    self.failed += 1
                    continue
                if kind == 0:
                    self.rev[handle] = len(self.handles)
                self.kinds.append(kind)
                self.handles.append(handle)
            done += n
            if until is not None and n and len(self.handles) == before:
                break  # not one page of the tick's: the allocator can give no more
            yield env.timeout(p.tick)
        self.filled_at = env.now
        if p.free_at is not None and env.now < p.free_at:
            yield env.timeout(p.free_at - env.now)
        if p.free_rate is None:
            self._free_next(len(self.handles))
        else:
            carry = 0.0
            while self._free_cursor < len(self.handles):
                carry += p.free_rate * p.tick / page_size
                n = int(carry)
                carry -= n
                self._free_next(n)
                if self._free_cursor < len(self.handles):
                    yield env.timeout(p.tick)
        self.freed_at = env.now

    def _free_next(self, n: int) -> None:
        """Free the next ``n`` pages or objects in allocation (virtual address) order,
        keeping one of every K."""
        m = self.machine
        k = self.params.keep_one_in
        kept = 0 if self.params.keep == "first" else k - 1
        kinds, handles, cache = self.kinds, self.handles, self._cache
        slot, end = self._free_cursor, len(handles)
        while n > 0 and slot < end:
            if slot % k != kept:
                kind, handle = kinds[slot], handles[slot]
                cpu = self.cpu()
                if kind == 2:
                    cache.free(handle, cpu)
                else:
                    if kind == 0:
                        self.rev[handle] = -1
                    m.free_pages(handle, 0, cpu)
                self.freed += 1
                n -= 1
            slot += 1
        while slot < end and slot % k == kept:  # the kept pages up to the next free
            slot += 1
        self._free_cursor = slot

    def summary(self) -> dict[str, Any]:
        return {"allocated": len(self.handles), "freed": self.freed, "failed": self.failed,
                "filled_at_s": self.filled_at, "freed_at_s": self.freed_at}


class CompactMemory(Workload):
    """``echo 1 > /proc/sys/vm/compact_memory`` at the given times; each run records
    ``avail`` and ``unusable_index`` at pageblock order just before and just after it."""

    kind = "compact_memory"

    class Params(WorkloadParams):
        at: list[Duration] = Field(default_factory=lambda: [0.0])
        without_root: Literal["stop", "skip"] = Field(
            "stop", description="under fragsim run --real without root (writing "
            "/proc/sys/vm/compact_memory needs it): stop (refuse the run) or skip this "
            "workload, with a note; a simulation always runs it")

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        self.runs: list[dict[str, Any]] = []

    def run(self):
        env = self.env
        for when in sorted(self.params.at):
            if when > env.now:
                yield env.timeout(when - env.now)
            comp = self.machine.compactor
            zone = self.machine.zone
            order = zone.pageblock_order
            before = comp.stats.time_s
            run: dict[str, Any] = {"at": env.now}
            run[f"avail{order}_before"] = avail(zone.nr_free, order)
            run[f"unusable_index{order}_before"] = unusable_index(zone.nr_free, order)
            result = comp.compact_memory(self.cpu())
            cost = comp.stats.time_s - before
            run[f"avail{order}_after"] = avail(zone.nr_free, order)
            run[f"unusable_index{order}_after"] = unusable_index(zone.nr_free, order)
            run.update(result=result.name, time_s=cost)
            self.runs.append(run)
            if cost > 0:
                yield env.timeout(cost)

    def summary(self) -> dict[str, Any]:
        return {"runs": self.runs}
