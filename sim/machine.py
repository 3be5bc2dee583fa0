"""The simulated machine: one SimPy environment wiring allocators, daemons and workloads.

What runs, and the kernel code each part stands for:

- ``alloc_pages``: ``__alloc_pages`` with its slow path (mm/page_alloc.c
  ``__alloc_pages_slowpath``): the fast path at the low watermark, kswapd woken, the min
  watermark, then, for requests that may block, direct compaction first for costly or
  non-movable high orders (``GFPF_NORETRY`` costly requests give up when it is skipped
  or deferred), direct reclaim with a ``drain_all_pages`` retry, direct compaction
  again, and the retry rules (``GFPF_NORETRY`` and costly orders without
  ``GFPF_RETRY_MAYFAIL`` stop after one round; others retry while reclaim makes
  progress, up to MAX_RECLAIM_RETRIES). There is no OOM killer: a request that would
  need one fails and is counted.
- kswapd (``balance_pgdat``): woken below the low watermark or by a boost, it reclaims
  page-cache pages and runs the shrinkers at falling priority until the zone is above
  high + boost, then clears the boost and wakes kcompactd at pageblock order (or the
  order it was woken for). With ``defrag.after_shrink`` the slab defragmenter runs at
  the end of each shrinker round, as in Lameter's series. kswapd gives up after
  MAX_RECLAIM_RETRIES rounds that reclaim nothing.
- kcompactd: the proactive check every 500 ms (32 s after a pass that did not lower the
  score) and ``kcompactd_do_work`` when kswapd wakes it.
- The vmstat refresh once a second (``decay_pcp_high``) and RCU callbacks applied every
  tick while any are pending.
- A sampler every ``sample_every``.

Time: direct reclaim and direct compaction run at once in simulated time, inside the
allocating workload's step; their cost is added up as stall time rather than slept.
kswapd, kcompactd and the defragmenter sleep for their costs, so other processes run
meanwhile. Page-cache pages of ``sim.objects.FileSystem`` files go through the full
``alloc_pages`` path too.

Batching, an implementation detail with no effect on results: workloads take runs of
order-0 pages with ``alloc_pages_batch`` (the zone's per-CPU fast path inlined, see
``Zone.alloc_batch``) and free them with ``free_pages_batch``; a run stops at the
first page the fast path refuses, and the caller takes the pages so far in hand before
that page's slow path can reclaim or migrate them. Reclaim hands its victims to their
owners a run at a time. ``Machine(batched=False)`` does everything page by page; the
tests hold the two to identical results (tests/test_batching.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import simpy

from sim import metrics
from sim.buddy import (
    ALLOC_HIGHATOMIC,
    ALLOC_KSWAPD,
    ALLOC_MIN_RESERVE,
    ALLOC_NON_BLOCK,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    OWNER_MOVABLE,
    PAGE_ALLOC_COSTLY_ORDER,
    WMARK_HIGH,
    PageblockStats,
    Zone,
)
from sim.compaction import CompactionCosts, Compactor, CompactResult
from sim.config import ExperimentConfig
from sim.defrag import DefragConfig, Defragmenter
from sim.gfp import (
    GFP_HIGHUSER_MOVABLE,
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
from sim.objects import FileSystem
from sim.slab import SlabCache, SlabCaches, SlabGeometry
from sim.vmscan import SWAP_CLUSTER_MAX, FileLru

# Slot sizes (slabinfo objsize) of well-known caches on the real 6.18 x86-64 kernel of
# the shared data (tests/data/kmem-traces/tmpfs-churn-20k-keep10/before.slabinfo).
KNOWN_CACHE_SIZES = {
    "dentry": 192, "shmem_inode_cache": 752, "ext4_inode_cache": 1128, "xfs_inode": 1024,
    "inode_cache": 624, "radix_tree_node": 584, "buffer_head": 104, "filp": 192,
}

MAX_RECLAIM_RETRIES = 16
DEF_PRIORITY = 12
VMSTAT_INTERVAL = 1.0
RCU_TICK = 0.01


@dataclass
class MachineStats:
    """Counters of the engine's own paths (the allocators keep theirs)."""

    alloc_failures: int = 0  # requests that failed after the slow path
    slowpath: int = 0
    direct_reclaim: int = 0
    direct_reclaimed: int = 0  # pages
    direct_compact: int = 0
    stall_s: float = 0.0  # direct reclaim + direct compaction cost
    kswapd_runs: int = 0
    kswapd_reclaimed: int = 0  # page-cache pages evicted by kswapd
    kswapd_slab_freed: int = 0  # objects the shrinkers freed for kswapd
    kswapd_giveups: int = 0  # rounds ended with nothing reclaimable
    kswapd_time_s: float = 0.0
    kcompactd_runs: int = 0
    kcompactd_time_s: float = 0.0
    shrinker_runs: int = 0
    shrinker_freed: int = 0  # objects
    shrinker_scanned: int = 0

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes."""

    def __init__(self) -> None:
        super().__init__()
        self.events_processed = 0

    def step(self) -> None:
        self.events_processed += 1
        super().step()


def zone_metrics(zone: Zone) -> dict[tuple[str, str], float]:
    """The sampled zone metrics: buddyinfo, avail, the vmstat indices, pageblock types."""
    nr_free = zone.nr_free
    values: dict[tuple[str, str], float] = {}
    for order in range(zone.max_order + 1):
        key = str(order)
        values[("nr_free", key)] = nr_free[order]
        values[("avail", key)] = metrics.avail(nr_free, order)
        values[("unusable_index", key)] = metrics.unusable_index(nr_free, order)
    pbo = str(zone.pageblock_order)
    values[("fragmentation_index", pbo)] = metrics.fragmentation_index(
        nr_free, zone.pageblock_order)
    values[("fragmentation_score", "")] = metrics.extfrag_for_order(
        nr_free, zone.pageblock_order)
    values[("free_pages", "")] = zone.nr_free_pages
    values[("pcp_pages", "")] = zone.pcp_pages
    values[("watermark_boost", "")] = zone.watermark_boost
    for name, count in zip(("Unmovable", "Movable", "Reclaimable"),
                           zone.pageblock_counts(), strict=False):
        values[("pageblocks", name)] = count
    return values


def cache_metrics(caches: SlabCaches) -> dict[tuple[str, str], float]:
    """Per slab cache: live objects, slabs, pages and occupancy."""
    values: dict[tuple[str, str], float] = {}
    for cache in caches:
        if cache.nr_slabs or cache.nr_allocs:
            values[("slab_objects", cache.name)] = cache.nr_live
            values[("slab_slabs", cache.name)] = cache.nr_slabs
            values[("slab_pages", cache.name)] = cache.nr_pages
            values[("slab_occupancy", cache.name)] = cache.occupancy()
    return values


def build_zone(config: ExperimentConfig) -> Zone:
    m, b = config.machine, config.buddy
    return Zone(
        m.memory // m.page_size,
        max_order=m.max_order,
        pageblock_order=m.pageblock_order,
        cpus=m.cpus,
        pcp=b.pcp,
        grouping_by_mobility=b.grouping_by_mobility,
        free_list_order=b.free_list_order,
        thp=b.thp,
        nr_populated_zones=m.nr_populated_zones,
        min_free_kbytes=b.min_free_kbytes,
        watermark_scale_factor=b.watermark_scale_factor,
        watermark_boost_factor=b.watermark_boost_factor,
        percpu_pagelist_high_fraction=b.percpu_pagelist_high_fraction,
        page_size=m.page_size,
    )


class Machine:
    """One machine: zone, slab caches, daemons and workloads in a SimPy environment."""

    def __init__(self, config: ExperimentConfig, seed: int | None = None,
                 variant: str = "default", batched: bool = True) -> None:
        self.config = config
        # Workloads take runs of pages in one call (alloc_pages_batch); False makes
        # them go page by page, the reference the batched run must equal exactly.
        self.batched = batched
        self.seed = config.seed if seed is None else seed
        self.variant = variant
        self.env = CountingEnvironment()
        self.stats = MachineStats()
        self.zone = build_zone(config)
        self.zone.on_wakeup_kswapd = self.wakeup_kswapd
        self.free_pages = self.zone.free  # type: ignore[method-assign]
        self._gfp_fast: dict[int, tuple[int, int]] = {}
        self.caches = SlabCaches(self.zone, page_allocator=self._slab_page_allocator,
                                 rcu_grace=config.slab.rcu_grace, clock=self._now)
        self.caches.on_create = self._created
        self.lru = FileLru(self._evict_lru_page,
                           self._evict_lru_pages if batched else None,
                           nr_pages=self.zone.nr_pages)
        self._lru_owners: list[Callable[[int], None]] = []
        self._lru_batch_owners: list[Callable[[list[int]], None] | None] = []
        self.filesystems: list[FileSystem] = []
        self._fs_caches: set[str] = set()
        self.workloads: list = []
        self._seed_seq = np.random.SeedSequence(self.seed)

        d = config.defrag
        self.defrag = Defragmenter(self.env, self.caches, config=DefragConfig(
            used_ratio=d.used_ratio, max_partial=d.max_partial,
            max_slabs_per_pass=d.max_slabs_per_pass, pinned_policy=d.pinned_policy,
            rcu_wait=d.rcu_wait, batch=d.batch, cost_get=d.cost_get, cost_free=d.cost_free,
            cost_move=d.cost_move, failure_min_order=d.failure_min_order,
        ))
        c = config.compaction
        self.compactor = Compactor(
            self.zone, proactiveness=c.proactiveness, extfrag_threshold=c.extfrag_threshold,
            costs=CompactionCosts(migrate_scan_s=c.migrate_scan_cost,
                                  free_scan_s=c.free_scan_cost, isolate_s=c.isolate_cost,
                                  migrate_s=c.migrate_cost),
            slab_movable=c.slab_movable and d.enabled,
            slab_page_mobile=self.defrag.slab_page_mobile,
            vacate_slab_page=self.defrag.vacate_now,
            kswapd_is_running=lambda: self.kswapd_running,
        )
        self.zone.on_migrate = self._on_migrate

        self.kswapd_running = False
        self._kswapd_order = 0
        self._kswapd_event = self.env.event()
        self._kcompactd_order = -1
        self._kcompactd_event = self.env.event()
        self._sample_hooks: list[Callable[[dict], None]] = []
        self.failures_by_order = [0] * (self.zone.max_order + 1)

    # ------------------------------------------------------------------ helpers

    def _now(self) -> float:
        return self.env.now

    def rng(self, name: str) -> np.random.Generator:
        """An independent random stream for one workload, fixed by the seed and the name."""
        digest = sum((i + 1) * ord(ch) for i, ch in enumerate(name)) & 0xFFFFFFFF
        return np.random.default_rng([self.seed, digest, len(self.workloads)])

    def cache(self, name: str, size: int | None = None) -> SlabCache:
        """The slab cache ``name``, created on first use from ``caches:`` and ``size``."""
        if name in self.caches:
            return self.caches[name]
        spec = self.config.caches.get(name)
        size = spec.size if spec is not None and spec.size else size
        size = size or KNOWN_CACHE_SIZES.get(name) or _kmalloc_size(name)
        options: dict[str, Any] = {}
        geometry = None
        if spec is not None:
            if spec.objects_per_slab is not None or spec.order is not None:
                if size is None:
                    raise ValueError(f"caches.{name}: expected a size with objects_per_slab/order")
                geometry = explicit_geometry(size, spec.objects_per_slab, spec.order,
                                             self.zone.page_size)
            for key in ("rcu_free", "min_partial", "cpu_partial_slabs"):
                value = getattr(spec, key)
                if value is not None:
                    options[key] = value
        if size is None and geometry is None:
            raise ValueError(f"caches.{name}: expected a size (no workload gave one)")
        options["vfs_cache_pressure"] = self.config.slab.vfs_cache_pressure
        return self.caches.create(name, size, geometry=geometry, **options)

    def _created(self, cache: SlabCache) -> None:
        """Every cache, whoever creates it (a workload, the trace replayer, a slabinfo
        import), gets its configured mobility."""
        spec = self.config.caches.get(cache.name)
        if self.config.defrag.enabled and spec is not None and spec.mobility != "none":
            self.defrag.set_mobility(cache.name, _load_mobility(spec.mobility))

    def filesystem(self, fs: str, *, inode_cache: str | None = None) -> FileSystem:
        """The file system of type ``fs`` on the shared dentry cache, created on first
        use; later workloads on the same type and inode cache share it. Its super block
        shrinker counts the caches' whole LRUs, so a second FileSystem on the same caches
        would scan them twice per shrinker round."""
        dentry = self.cache("dentry")
        if inode_cache is None:
            inode_cache = "shmem_inode_cache" if fs == "tmpfs" else "ext4_inode_cache"
        for fsys in self.filesystems:
            if fsys.fs == fs and fsys.icache.name == inode_cache:
                return fsys
        inodes = self.cache(inode_cache)
        xa = self.cache("radix_tree_node")
        fsys = FileSystem(self.zone, dentry, inodes, xa, fs=fs,
                          vfs_cache_pressure=self.config.slab.vfs_cache_pressure,
                          alloc_page=self._page_cache_page)
        self.filesystems.append(fsys)
        # The super block shrinker scans these; the per-cache shrinker must not again.
        self._fs_caches.update((dentry.name, inodes.name))
        return fsys

    def _page_cache_page(self, cpu: int) -> int | None:
        """A file's page-cache page (``filemap_alloc_folio`` with the mapping's
        GFP_HIGHUSER_MOVABLE), through the full allocation path."""
        return self.alloc_pages(0, GFP_HIGHUSER_MOVABLE, cpu, OWNER_MOVABLE)

    def register_lru_owner(self, evict: Callable[[int], None],
                           evict_many: Callable[[list[int]], None] | None = None) -> int:
        """An owner of page-cache pages on the file LRU; ``evict(pfn)`` drops one and
        ``evict_many(pfns)``, if given, drops several in turn. Neither may change the
        LRU: a reclaim pass hands over its victims when its scan is done."""
        self._lru_owners.append(evict)
        self._lru_batch_owners.append(evict_many)
        return len(self._lru_owners) - 1

    def _evict_lru_page(self, pfn: int, owner: int) -> None:
        self._lru_owners[owner](pfn)

    def _evict_lru_pages(self, pfns: list[int], owners: list[int]) -> None:
        """A reclaim pass's victims, in scan order: each run of one owner's pages in
        one call when the owner takes several."""
        start = 0
        n = len(pfns)
        while start < n:
            owner = owners[start]
            end = start + 1
            while end < n and owners[end] == owner:
                end += 1
            evict_many = self._lru_batch_owners[owner]
            if evict_many is not None:
                evict_many(pfns[start:end])
            else:
                evict = self._lru_owners[owner]
                for pfn in pfns[start:end]:
                    evict(pfn)
            start = end

    def _on_migrate(self, old: int, new: int, order: int) -> None:
        """Compaction moved a movable block: tell whoever tracks it by pfn."""
        if old in self.lru:
            self.lru.migrate(old, new)
        for fsys in self.filesystems:
            if fsys.migrate_page(old, new):
                return
        for workload in self.workloads:
            hook = getattr(workload, "migrate_page", None)
            if hook is not None:
                hook(old, new, order)

    def add_sample_hook(self, hook: Callable[[dict], None]) -> None:
        self._sample_hooks.append(hook)

    # ------------------------------------------------------------------ page allocator

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
        pfn = self._alloc_slowpath(order, gfp, self._fast_params(gfp)[0], cpu, owner)
        if pfn is None:
            self.stats.alloc_failures += 1
            self.failures_by_order[order] += 1
            if order >= self.config.defrag.failure_min_order and self._defrag_on_failure:
                self.defrag.on_alloc_failure(order)
        return pfn

    def alloc_pages_batch(self, n: int, gfp: int, cpu: Callable[[], int],
                          owner: int | None, out: list[int],
                          owner_of: Callable[[], int] | None = None,
                          ) -> tuple[int, int | None] | None:
        """Order-0 pages as ``alloc_pages(0, gfp, cpu(), owner)`` calls in a row take
        them, while the zone serves them without the slow path.

        Appends the pfns to ``out``. Returns None when it stopped without a refusal
        (all ``n`` done, or, when the machine is not ``batched``, after one page), or
        the ``(cpu, owner)`` of the page the zone refused: the caller takes ``out``'s
        pages in hand first (the slow path can reclaim or migrate pages it holds), then
        finishes that page with ``alloc_pages_refused(0, gfp, cpu, owner)``. ``owner_of``,
        when given, draws each page's owner before its CPU.
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

    def _slab_page_allocator(self, order: int, mt: int, cpu: int, owner: int,
                             alloc_flags: int, noretry: bool) -> int | None:
        """Slab pages through the full path (mm/slub.c ``allocate_slab``): GFP_KERNEL
        with the cache's mobility bit; the first attempt above the minimum order has
        ``GFPF_NORETRY | GFPF_NOMEMALLOC`` and no ``GFPF_RECLAIM``."""
        gfp = GFP_KERNEL | (GFPF_RECLAIMABLE if mt == MIGRATE_RECLAIMABLE else 0)
        if noretry:
            gfp = (gfp | GFPF_NOWARN | GFPF_NORETRY | GFPF_NOMEMALLOC) & ~GFPF_RECLAIM
        return self.alloc_pages(order, gfp, cpu, owner)

    def free_pages(self, pfn: int, order: int, cpu: int = 0) -> None:
        """``__free_pages``: the zone's free (replaced in __init__ by the bound method
        itself, to save a call per free)."""
        self.zone.free(pfn, order, cpu)

    @property
    def _defrag_on_failure(self) -> bool:
        return self.config.defrag.enabled and self.config.defrag.on_failure

    def _gfp_to_alloc_flags(self, order: int, gfp: int) -> int:
        flags = ALLOC_WMARK_MIN
        if gfp & GFPF_HIGH:
            flags |= ALLOC_MIN_RESERVE
        if gfp & GFPF_KSWAPD_RECLAIM:
            flags |= ALLOC_KSWAPD
        if not gfp & GFPF_DIRECT_RECLAIM:
            if not gfp & GFPF_NOMEMALLOC:
                flags |= ALLOC_NON_BLOCK
            if order > 0 and flags & ALLOC_MIN_RESERVE:
                flags |= ALLOC_HIGHATOMIC
        return flags

    def _direct_compact(self, order: int, mt: int, cpu: int, owner: int | None,
                        alloc_flags: int, prio: str) -> tuple[CompactResult | None, int | None]:
        if not self.config.compaction.enabled or order == 0:
            return None, None
        before = self.compactor.stats.time_s
        result, pfn = self.compactor.alloc_pages_direct_compact(
            order, mt, prio=prio, alloc_flags=alloc_flags, cpu=cpu, owner=owner)
        self.stats.direct_compact += 1
        self.stats.stall_s += self.compactor.stats.time_s - before
        return result, pfn

    def _alloc_slowpath(self, order: int, gfp: int, mt: int, cpu: int,
                        owner: int | None) -> int | None:
        self.stats.slowpath += 1
        zone = self.zone
        costly = order > PAGE_ALLOC_COSTLY_ORDER
        can_direct_reclaim = bool(gfp & GFPF_DIRECT_RECLAIM)
        alloc_flags = self._gfp_to_alloc_flags(order, gfp)
        if alloc_flags & ALLOC_KSWAPD:
            self.wakeup_kswapd(order)
        pfn = zone.alloc(order, mt, cpu, owner, alloc_flags)
        if pfn is not None:
            return pfn
        prio = "async"
        if can_direct_reclaim and (costly or (order > 0 and mt != MIGRATE_MOVABLE)):
            result, pfn = self._direct_compact(order, mt, cpu, owner, alloc_flags, prio)
            if pfn is not None:
                return pfn
            if costly and gfp & GFPF_NORETRY and result in (
                None, CompactResult.COMPACT_SKIPPED, CompactResult.COMPACT_DEFERRED
            ):
                return None
        no_progress_loops = 0
        while True:
            if alloc_flags & ALLOC_KSWAPD:
                self.wakeup_kswapd(order)
            pfn = zone.alloc(order, mt, cpu, owner, alloc_flags)
            if pfn is not None:
                return pfn
            if not can_direct_reclaim:
                return None
            progress, pfn = self._direct_reclaim(order, mt, cpu, owner, alloc_flags)
            if pfn is not None:
                return pfn
            _, pfn = self._direct_compact(order, mt, cpu, owner, alloc_flags, prio)
            if pfn is not None:
                return pfn
            if gfp & GFPF_NORETRY:
                return None
            if costly and not gfp & GFPF_RETRY_MAYFAIL:
                return None
            no_progress_loops = 0 if progress else no_progress_loops + 1
            if no_progress_loops > MAX_RECLAIM_RETRIES or not progress:
                return None  # the kernel would now consider the OOM killer
            prio = "sync_light"

    def _direct_reclaim(self, order: int, mt: int, cpu: int, owner: int | None,
                        alloc_flags: int) -> tuple[int, int | None]:
        """``__alloc_pages_direct_reclaim``: reclaim a cluster, retry, drain, retry."""
        self.stats.direct_reclaim += 1
        reclaimed = 0
        for priority in range(DEF_PRIORITY, -1, -1):
            reclaimed += self.shrink_node(SWAP_CLUSTER_MAX - reclaimed, priority, cpu,
                                          stall=True)
            if reclaimed >= SWAP_CLUSTER_MAX:
                break
        self.stats.direct_reclaimed += reclaimed
        pfn = self.zone.alloc(order, mt, cpu, owner, alloc_flags)
        if pfn is None and reclaimed:
            self.zone.drain_all_pages()
            pfn = self.zone.alloc(order, mt, cpu, owner, alloc_flags)
        return reclaimed, pfn

    # ------------------------------------------------------------------ reclaim

    def shrink_node(self, nr_to_reclaim: int, priority: int, cpu: int = 0,
                    stall: bool = False) -> int:
        """One ``shrink_node`` round: the file LRU's share for ``priority``, then every
        shrinker (``shrink_slab``). Returns page-cache pages plus slab pages freed; the
        cost is charged to the caller (kswapd sleeps it, direct reclaim stalls)."""
        r = self.config.reclaim
        lru_scan = max(len(self.lru) >> priority, min(len(self.lru), SWAP_CLUSTER_MAX))
        before = self.lru.stats.scanned
        evicted = self.lru.shrink(nr_to_reclaim, max_scan=lru_scan) if len(self.lru) else 0
        cost = (self.lru.stats.scanned - before) * r.scan_cost + evicted * r.evict_cost
        slab_pages_before = sum(c.nr_pages for c in self.caches)
        freed = scanned = 0
        for fsys in self.filesystems:
            result = fsys.shrink(priority=priority, cpu=cpu)
            freed += result.freed
            scanned += result.scanned
        fs_caches = self._fs_caches
        for cache in self.caches:
            if cache.nr_lru and cache.name not in fs_caches:
                result = cache.shrink_slab(priority, cpu)
                freed += result.freed
                scanned += result.scanned
        self.stats.shrinker_runs += 1
        self.stats.shrinker_freed += freed
        self.stats.shrinker_scanned += scanned
        cost += scanned * r.slab_scan_cost
        slab_pages_freed = max(0, slab_pages_before - sum(c.nr_pages for c in self.caches))
        if stall:
            self.stats.stall_s += cost
        else:
            self._last_reclaim_cost = cost
        if freed and self.config.defrag.enabled and self.config.defrag.after_shrink:
            self.defrag.after_shrink()
        return evicted + slab_pages_freed

    def wakeup_kswapd(self, order: int = 0) -> None:
        if not self.config.reclaim.kswapd:
            return
        self._kswapd_order = max(self._kswapd_order, order)
        if not self._kswapd_event.triggered:
            self._kswapd_event.succeed()

    def wakeup_kcompactd(self, order: int) -> None:
        if not self.config.compaction.enabled:
            return
        self._kcompactd_order = max(self._kcompactd_order, order)
        if not self._kcompactd_event.triggered:
            self._kcompactd_event.succeed()

    def _balanced(self) -> bool:
        zone = self.zone
        return zone.zone_watermark_ok(0, zone.wmark_pages(WMARK_HIGH))

    def _kswapd(self):
        zone = self.zone
        while True:
            yield self._kswapd_event
            self._kswapd_event = self.env.event()
            order, self._kswapd_order = self._kswapd_order, 0
            if self._balanced() and not zone.watermark_boost:
                continue
            self.stats.kswapd_runs += 1
            self.kswapd_running = True
            zone.zone_reclaim_active = True
            boosted = zone.watermark_boost > 0
            priority = DEF_PRIORITY
            started = self.env.now
            while not self._balanced():
                self._last_reclaim_cost = 0.0
                freed_before = self.stats.shrinker_freed
                reclaimed = self.shrink_node(SWAP_CLUSTER_MAX * 4, priority)
                self.stats.kswapd_reclaimed += reclaimed
                self.stats.kswapd_slab_freed += self.stats.shrinker_freed - freed_before
                yield self.env.timeout(max(self._last_reclaim_cost, 1e-6))
                if reclaimed == 0 and self.stats.shrinker_freed == freed_before:
                    priority -= 1
                    if priority < 0:
                        self.stats.kswapd_giveups += 1
                        break
            self.stats.kswapd_time_s += self.env.now - started
            zone.zone_reclaim_active = False
            self.kswapd_running = False
            if boosted:
                zone.watermark_boost = 0
                self.wakeup_kcompactd(zone.pageblock_order)
            elif order:
                self.wakeup_kcompactd(order)
            self.compactor.reset_isolation_suitable()

    def _kcompactd(self):
        timeout = 0.5
        while True:
            woken = self._kcompactd_event
            yield woken | self.env.timeout(timeout)
            before = self.compactor.stats.time_s
            if woken.triggered:
                self._kcompactd_event = self.env.event()
                order, self._kcompactd_order = self._kcompactd_order, -1
                if order > 0:
                    self.compactor.kcompactd_do_work(order)
                    self.stats.kcompactd_runs += 1
                timeout = 0.5
            else:
                step = self.compactor.proactive_compact()
                timeout = step.next_check_s
                if step.ran:
                    self.stats.kcompactd_runs += 1
            cost = self.compactor.stats.time_s - before
            if cost > 0:
                self.stats.kcompactd_time_s += cost
                yield self.env.timeout(cost)

    def _vmstat(self):
        while True:
            yield self.env.timeout(VMSTAT_INTERVAL)
            self.zone.vmstat_refresh()

    def _rcu(self):
        idle = RCU_TICK
        while True:
            yield self.env.timeout(idle)
            if any(cache.nr_rcu_pending for cache in self.caches):
                self.caches.rcu_advance(self.env.now)
                idle = RCU_TICK
            else:
                idle = min(idle * 2, 1.0)

    # ------------------------------------------------------------------ sampling

    def snapshot(self) -> dict[tuple[str, str], float]:
        """The sampled metrics, named as everywhere else (see sim/metrics.py)."""
        zone = self.zone
        values = zone_metrics(zone)
        values.update(cache_metrics(self.caches))
        values[("page_cache_pages", "")] = len(self.lru)
        values[("compact_migrated", "")] = self.compactor.stats.migrated
        values[("defrag_pages_returned", "")] = self.defrag.stats.pages_returned
        values[("extfrag_fallbacks", "")] = (zone.stats.extfrag_claim
                                             + zone.stats.extfrag_steal)
        for hook in self._sample_hooks:
            hook(values)
        return values

    def pageblock_snapshot(self, stats: PageblockStats | None = None
                           ) -> dict[tuple[str, str], float]:
        """The pageblock metrics, from ``stats`` when given (the zone's stats now)."""
        if stats is None:
            stats = self.zone.pageblock_stats()
        block_mt = stats.migratetype
        if not self.zone.grouping_by_mobility:
            # page_group_by_mobility_disabled: every block is typed UNMOVABLE, yet every
            # block is where movable pages go; one holding a non-movable page is just
            # as mixed (compaction cannot empty it), so count it as MOVABLE would be.
            block_mt = np.full_like(block_mt, MIGRATE_MOVABLE)
        return {("mixed_pageblocks", ""): metrics.mixed_pageblocks(
            block_mt, stats.nonmovable_pages)}

    # ------------------------------------------------------------------ running

    def start(self, workloads: list) -> None:
        self.workloads = workloads
        env = self.env
        env.process(self._vmstat())
        env.process(self._rcu())
        if self.config.reclaim.kswapd:
            env.process(self._kswapd())
        if self.config.compaction.enabled:
            env.process(self._kcompactd())
        d = self.config.defrag
        if d.enabled:
            if d.interval:
                self.defrag.start_periodic(d.interval)
            if d.at:
                self.defrag.schedule(d.at)
        for workload in workloads:
            workload.start()


def _kmalloc_size(name: str) -> int | None:
    """The slot size in a kmalloc cache's name: kmalloc-256, kmalloc-rcl-96, kmalloc-cg-8k."""
    if not name.startswith("kmalloc-"):
        return None
    tail = name.rsplit("-", 1)[-1]
    scale = 1024 if tail.endswith("k") else 1
    digits = tail.rstrip("k")
    return int(digits) * scale if digits.isdigit() else None


def explicit_geometry(size: int, objects_per_slab: int | None, order: int | None,
                      page_size: int) -> SlabGeometry:
    """A geometry from ``caches:`` keys: the missing one of objects/order is derived."""
    if order is None:
        assert objects_per_slab is not None  # the config asks for one of the two
        order = 0
        while (page_size << order) // size < objects_per_slab:
            order += 1
    if objects_per_slab is None:
        objects_per_slab = (page_size << order) // size
    return SlabGeometry(size, objects_per_slab, order, page_size)


def _load_mobility(name: str):
    """``none``/``free``/``move``, or ``module:Class`` for a user's get/reclaim pair."""
    if ":" not in name:
        return name
    import importlib

    module_name, _, class_name = name.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)()
