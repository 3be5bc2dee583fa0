"""The simulated machine: a SimPy environment wiring allocators, daemons and workloads.

This module only builds and connects; each mechanism lives under its kernel file's name:

- sim/buddy.py: the zone (``get_page_from_freelist`` for one zone, per-CPU lists);
- sim/page_alloc.py: ``__alloc_pages`` and its slow path (direct reclaim and direct
  compaction, stall time);
- sim/vmscan.py: the file LRU, ``shrink_node`` and kswapd's ``balance_pgdat``;
- sim/compaction.py: compaction and kcompactd's decisions;
- sim/slab.py: the slab caches, created by name (``create_cache``);
- sim/defrag.py: the slab defragmenter;
- sim/daemons.py: every SimPy process that is not a workload (kswapd, kcompactd, the
  vmstat refresh, the RCU tick);
- sim/metrics.py: what a sample records.

Page owners (file systems, workloads holding pages) register with
``register_page_owner``; compaction's migration of a page goes to the file LRU, then to
each in turn until one says it was its page (sim/vmscan.py ``MigrateOwners``).

The hooks compaction and the file systems call once per page or folio are compiled
objects, not functions of this module: an interpreted function between two compiled
calls costs a Python frame and an int object per call (``MigrateOwners``,
``FileFolios``, sim/page_alloc.py ``FolioAlloc``, ``env_clock``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from sim import metrics
from sim.buddy import WMARK_LOW, PageIndex, PageSpace, Zone
from sim.compaction import Compactor, NodeCompactor, PageOwner
from sim.config import ExperimentConfig
from sim.daemons import Kcompactd, Kswapd, rcu_tick, vmstat_refresh
from sim.defrag import Defragmenter
from sim.errors import FragsimError
from sim.gfp import GFP_HIGHUSER_MOVABLE, GFPF_NORETRY, GFPF_NOWARN
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE
from sim.mmzone import ZONE_NAMES, ZONE_NORMAL, Node, zone_spans_for
from sim.objects import FileSystem
from sim.page_alloc import FolioAlloc, OtherCpus, PageAllocator
from sim.slab import SlabCache, SlabCaches, create_cache
from sim.snapshot import (
    FillerPool,
    InitialPopulation,
    apply_zoneinfo_watermarks,
    boot_footprint,
    boot_zone,
    node_from_snapshots,
    read_machine_snapshot,
    start_from_snapshot,
)
from sim.vmscan import FileFolios, FileLru, LruOwners, MigrateOwners, Reclaim

# machine: keys that are the node's or the snapshot's, not Zone arguments.
NODE_KEYS = frozenset({"memory", "zones", "from_", "online", "pagesets", "boot"})

# page_cache_folios samples orders 0..MAX_PAGECACHE_ORDER (9 on x86-64).
PAGECACHE_ORDERS = 10


GFP_PAGECACHE_LARGE = GFP_HIGHUSER_MOVABLE | GFPF_NORETRY | GFPF_NOWARN


def env_clock(env: simpy.Environment) -> Callable[[], float]:
    """``env.now`` as a callable with no Python frame (the slab caches ask it at every
    ``call_rcu``): SimPy's ``now`` property returns ``env._now``, read here by C code
    alone (``getattr`` through ``functools.partial``). tests/test_engine.py holds it to
    ``env.now``."""
    return functools.partial(getattr, env, "_now")


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes."""

    def __init__(self) -> None:
        super().__init__()
        self.events_processed = 0

    def step(self) -> None:
        self.events_processed += 1
        super().step()

    def advance_to(self, when: float) -> bool:
        """What a process's ``yield env.timeout(when - now)`` would come to when no
        other event is queued at or before ``when``: the clock at ``when``, the
        timeout's event id taken and the event counted, and the process goes on
        without a trip through the event queue. False, and nothing done, when another
        event is due first (or at the same time: SimPy would order the two by priority
        and id). Used by kswapd between the steps of ``balance_pgdat`` (sim/daemons.py
        ``Kswapd._balance``), thousands a simulated second."""
        if not when < self.peek():
            return False
        self._now = when
        next(self._eid)
        self.events_processed += 1
        return True


def build_zone(config: ExperimentConfig) -> Zone:
    """The zone of ``machine:`` and ``buddy:``: every key of the two sections is the
    Zone argument of the same name (tests/test_config.py holds the two to one set of
    names and defaults)."""
    m = config.machine
    return Zone(m.memory // m.page_size, **_zone_options(config))


def _zone_options(config: ExperimentConfig, exclude: frozenset[str] = frozenset()
                  ) -> dict[str, Any]:
    """The Zone arguments of ``machine:`` and ``buddy:`` (the node's keys left out)."""
    return {**config.machine.model_dump(exclude={*NODE_KEYS, *exclude}),
            **config.buddy.model_dump(exclude=set(exclude))}


def build_node(config: ExperimentConfig, seed: int = 0,
               fillers: dict[int, FillerPool] | None = None) -> Node:
    """The node of ``machine.zones`` (sim/mmzone.py ``zone_spans_for``). ``[Normal]``
    is ``build_zone``'s lone zone, its watermarks as the zone computes them
    (``nr_populated_zones`` standing in for the zones it does not model); several zones
    get the node's (``min_free_kbytes`` shared by managed pages, ``lowmem_reserve``).

    ``machine.boot`` (not ``none``): each zone starts with that footprint of the kernel's
    own memory (sim/snapshot.py ``boot_zone``, spread layout drawn with ``seed``).

    With ``machine.from``, the node of the snapshot (sim/snapshot.py
    ``node_from_snapshots``, spread layout drawn with ``seed``), each zone's watermarks
    and ``lowmem_reserve`` as its zoneinfo prints them; ``fillers`` receives each zone's
    unowned filler (``Machine`` hands slab pages out of it, then finishes it)."""
    m = config.machine
    if m.from_ is not None:
        snap = read_machine_snapshot(m.from_, m.online)
        options = _zone_options(config, frozenset({"max_order", "min_free_kbytes"}))
        node = node_from_snapshots(snap.buddyinfo, snap.zoneinfo, snap.pagetypeinfo,
                                   sources=(snap.sources["buddyinfo"],
                                            snap.sources["zoneinfo"]),
                                   spread=seed, fillers=fillers, online=m.online,
                                   ptsource=snap.sources.get("pagetypeinfo", "pagetypeinfo"),
                                   **options)
        apply_zoneinfo_watermarks(node, snap.zoneinfo)
        return node
    spans = zone_spans_for(m.memory // m.page_size, m.zones, m.page_size, m.max_order)
    for span in spans:
        if span.spanned_pages < 1 << m.pageblock_order:
            raise FragsimError(
                f"machine.zones: zone {span.name} would have {span.spanned_pages} pages of "
                f"{m.memory} bytes of memory, fewer than a pageblock "
                f"({1 << m.pageblock_order}); expected memory that leaves each zone a "
                f"pageblock at least, or zones: [Normal]")
    lone = len(spans) == 1 and spans[0].idx == ZONE_NORMAL and spans[0].start_pfn == 0
    b = config.buddy
    if m.boot != "none":
        footprint = boot_footprint(m.boot)
        options = _zone_options(config)
        zones = [boot_zone(span.spanned_pages, footprint, seed, **options) for span in spans]
        if lone:
            return Node(spans, zones=zones, set_watermarks=False)
        return Node(spans, zones=zones, min_free_kbytes=b.min_free_kbytes)
    if lone:
        return Node(spans, zones=[build_zone(config)], set_watermarks=False)
    return Node(spans, min_free_kbytes=b.min_free_kbytes,
                watermark_scale_factor=b.watermark_scale_factor,
                **_zone_options(config, frozenset({"min_free_kbytes",
                                                   "watermark_scale_factor"})))


class Machine:
    """One machine: zone, slab caches, reclaim, compaction, daemons and workloads."""

    def __init__(self, config: ExperimentConfig, seed: int | None = None,
                 variant: str = "default", batched: bool = True) -> None:
        self.config = config
        # Workloads take runs of pages in one call (alloc_pages_batch); False makes
        # them go page by page, the reference the batched run must equal exactly.
        self.batched = batched
        self.seed = config.seed if seed is None else seed
        self.variant = variant
        self.env = env = CountingEnvironment()
        # The node and its zones; ``zone`` is what the engine's clients allocate from
        # and ask about by pfn (sim/buddy.py ``PageSpace``): the lone zone itself, or
        # the node, whose pfns are node pfns.
        fillers: dict[int, FillerPool] | None = {} if config.machine.from_ else None
        self.node = node = build_node(config, self.seed, fillers)
        zones = node.zonelist  # highest first: Normal, DMA32, DMA
        self.multi_zone = multi = node.multi_zone
        self.zone: PageSpace = node if multi else zones[0]
        space = self.zone
        # (name, zone) in pfn order: DMA, DMA32, Normal; what every per-zone output lists.
        self.zones = [(ZONE_NAMES[z.zone_idx], z)
                      for z in sorted(zones, key=lambda z: z.zone_start_pfn)]
        self.workloads: list = []
        # Compaction's page owners, in registration order (sim/vmscan.py MigrateOwners).
        self._migrate_owners: list[FileSystem | PageOwner
                                   | Callable[[int, int, int], object]] = []
        self._page_index: PageIndex | None = None  # see page_index
        self._page_owns: list[Callable[[int, int], bool] | None] = []
        self._lru_owners = LruOwners()
        self._sample_hooks: list[Callable[[dict], None]] = []

        d, c = config.defrag, config.compaction
        self.caches = SlabCaches(space, page_allocator=self._slab_page_allocator,
                                 rcu_grace=config.slab.rcu_grace, clock=env_clock(env))
        self.caches.on_create = self._created
        self.defrag = Defragmenter(env, self.caches, config=d)
        self.lru = FileLru(self._lru_owners.evict_page,
                           self._lru_owners.evict_pages if batched else None,
                           nr_pages=space.end_pfn)
        # A folio's file slot and LRU position in the two words the free lists link a
        # free block's head with (sim/buddy.py ``page_links``), as ``struct page``.
        self.lru.share_positions(space)
        # The LRU follows every migrated folio first (MigrateOwners), owning none.
        self._page_owns.append(self._lru_owns)
        self.reclaim = Reclaim(zones[0], self.lru, self.caches, config.reclaim,
                               after_shrink=self.defrag.after_shrink
                               if d.enabled and d.after_shrink else None,
                               zones=zones if multi else None)
        compactors: dict[int, Compactor] = {}
        for zone in zones:
            compactors[zone.zone_idx] = Compactor(
                zone, c,
                slab_movable=c.slab_movable and d.enabled,
                slab_page_mobile=_at_node_pfn(self.defrag.slab_page_mobile, zone),
                vacate_slab_page=_at_node_pfn(self.defrag.vacate_now, zone),
                kswapd_is_running=lambda: self.kswapd.running,
                split_folio=self._split_folio_hook(zone),
                is_file_folio=FileFolios(self.reclaim.filesystems, zone.zone_start_pfn),
            )
            zone.on_migrate = MigrateOwners(self.lru, zone.zone_start_pfn,
                                            self._migrate_owners)
        self.compactors = compactors
        self.compactor: Compactor | NodeCompactor = (
            NodeCompactor(list(compactors.values())) if multi
            else compactors[zones[0].zone_idx])
        self.kcompactd = Kcompactd(env, self.compactor, enabled=c.enabled)
        self.kswapd = Kswapd(env, zones[0], self.reclaim, self.compactor,
                             self.kcompactd.wakeup, enabled=config.reclaim.kswapd)
        for zone in zones:
            # rmqueue's ZONE_BOOSTED_WATERMARK wake: wakeup_kswapd(zone, 0, 0,
            # zone_idx(zone)), the boosted zone as the classzone.
            zone.on_wakeup_kswapd = functools.partial(self.kswapd.wakeup,
                                                      highest_zoneidx=zone.zone_idx)
        self.reclaim.on_wakeup_kcompactd = self.kcompactd.wakeup
        if c.enabled:
            # vmscan's reclaim/compaction checks ask compaction_suitable of each zone.
            self.reclaim.compaction_suitable = _compaction_suitable(compactors)
        self.page_alloc = pa = PageAllocator(
            zones[0], self.reclaim, compactors[zones[0].zone_idx], compaction=c.enabled,
            batched=batched, wakeup_kswapd=self.kswapd.wakeup,
            on_failure=self.defrag.on_alloc_failure if d.enabled and d.on_failure else None,
            node=node, compactors=compactors)
        # A file's page-cache folio (``filemap_alloc_folio`` with the mapping's
        # GFP_HIGHUSER_MOVABLE, plus ``__GFP_NORETRY | __GFP_NOWARN`` above order 0 as
        # ``__filemap_get_folio`` and readahead add them), through the full path.
        self._page_cache_folio = FolioAlloc(pa, GFP_HIGHUSER_MOVABLE, GFP_PAGECACHE_LARGE)
        if config.machine.cpus > 1 and config.reclaim.kswapd:
            # kswapd runs on another CPU while a direct compaction takes its time.
            kswapd = self.kswapd
            concurrent = OtherCpus(pa, env_clock(env), kswapd.run_concurrently)
            kswapd.attach_gate(concurrent)
            for compactor in compactors.values():
                compactor.concurrent = concurrent
            # A wake from a slow path comes at the waking task's time.
            kswapd.clock = concurrent.task_time
        self.initial_population: InitialPopulation | None = None
        if fillers is not None:
            self._start_from_snapshot(fillers)
        # The allocation entry points workloads call, one attribute lookup away.
        self.alloc_pages = pa.alloc_pages
        self.alloc_pages_refused = pa.alloc_pages_refused
        self.alloc_pages_batch = pa.alloc_pages_batch
        self.free_pages = pa.free_pages
        self.free_pages_batch = pa.free_pages_batch

    # ------------------------------------------------------------------ wiring

    def _start_from_snapshot(self, fillers: dict[int, FillerPool]) -> None:
        """``machine.from``: the snapshot's slab caches and per-CPU lists
        (sim/snapshot.py ``start_from_snapshot``)."""
        m = self.config.machine
        snap = read_machine_snapshot(m.from_ or "", m.online)
        self.initial_population = start_from_snapshot(self.node, self.caches, snap, fillers,
                                                      pagesets=m.pagesets)

    @property
    def filesystems(self) -> list[FileSystem]:
        return self.reclaim.filesystems

    def _slab_page_allocator(self, order: int, mt: int, cpu: int, owner: int,
                             alloc_flags: int, noretry: bool) -> int | None:
        return self.page_alloc.slab_page_allocator(order, mt, cpu, owner, alloc_flags,
                                                   noretry)

    def rng(self, name: str) -> np.random.Generator:
        """An independent random stream for one workload, fixed by the seed and the name."""
        digest = sum((i + 1) * ord(ch) for i, ch in enumerate(name)) & 0xFFFFFFFF
        return np.random.default_rng([self.seed, digest, len(self.workloads)])

    def cache(self, name: str, size: int | None = None) -> SlabCache:
        """The slab cache ``name``, created on first use from ``caches:`` and ``size``."""
        if name in self.caches:
            return self.caches[name]
        return create_cache(self.caches, name, size, self.config.caches.get(name),
                            self.config.slab.vfs_cache_pressure)

    def _created(self, cache: SlabCache) -> None:
        """Every cache, whoever creates it (a workload, the trace replayer, a slabinfo
        import), gets its configured mobility."""
        spec = self.config.caches.get(cache.name)
        if self.config.defrag.enabled and spec is not None and spec.mobility != "none":
            self.defrag.set_mobility(cache.name, _load_mobility(spec.mobility))

    def filesystem(self, fs: str, *, inode_cache: str | None = None,
                   large_folios: bool = True) -> FileSystem:
        """The file system of type ``fs`` on the shared dentry cache, created on first
        use; later workloads on the same type and inode cache share it. Its super block
        shrinker counts the caches' whole LRUs, so a second FileSystem on the same caches
        would scan them twice per shrinker round."""
        dentry = self.cache("dentry")
        if inode_cache is None:
            inode_cache = "shmem_inode_cache" if fs == "tmpfs" else "ext4_inode_cache"
        for fsys in self.filesystems:
            if (fsys.fs == fs and fsys.icache.name == inode_cache
                    and fsys.large_folios == (large_folios and fs == "disk")):
                return fsys
        inodes = self.cache(inode_cache)
        xa = self.cache("radix_tree_node")
        # ext4's extent status tree (fs/ext4/extents_status.c); no other file system
        # fragsim models has one.
        es = (self.cache("extent_status")
              if fs == "disk" and inode_cache == "ext4_inode_cache" else None)
        fsys = FileSystem(self.zone, dentry, inodes, xa, fs=fs,
                          vfs_cache_pressure=self.config.slab.vfs_cache_pressure,
                          alloc_folio=self._page_cache_folio, large_folios=large_folios,
                          es_cache=es, lsm_cache=self._lsm_inode_cache())
        self.reclaim.add_filesystem(fsys)
        fsys.share_page_index(self.page_index())
        fsys.share_page_slots()
        fsys.attach_lru(self.lru, self.register_lru_owner(
            fsys.evict_folio, fsys.evict_folios if self.batched else None))
        self.register_page_owner(fsys, lambda pfn, order: fsys.holds_page(pfn))
        return fsys

    def _lsm_inode_cache(self) -> SlabCache | None:
        """``lsm_inode_cache`` when the kernel's LSMs keep an inode blob
        (``slab.lsm_inode_blob``; unset: a snapshot machine has the cache only if its
        slabinfo lists it, any other machine has it, as the project's 6.18 kernel)."""
        want = self.config.slab.lsm_inode_blob
        if want is None:
            want = not self.config.machine.from_ or "lsm_inode_cache" in self.caches
        return self.cache("lsm_inode_cache") if want else None

    def register_lru_owner(self, evict: Callable[[int], None],
                           evict_many: Callable[[list[int]], None] | None = None) -> int:
        """An owner of page-cache pages on the file LRU; ``evict(pfn)`` drops one and
        ``evict_many(pfns)``, if given, drops several in turn. Neither may change the
        LRU: a reclaim pass hands over its victims when its scan is done."""
        return self._lru_owners.register(evict, evict_many)

    def page_index(self) -> PageIndex:
        """One 32-bit index per pfn of the machine (a sim/buddy.py ``PageIndex``, made
        at the first call), shared by the owners of pages that keep a position per
        page: the file systems (a folio's place in its file's list) and the workloads'
        order-0 page sets (a page's place among those held). A page has one owner at a
        time, and each owner trusts an entry only for a page it holds, as the kernel's
        ``struct page`` holds one ``index`` for whichever owner the page has: 4 bytes a
        page instead of 4 for each owner (issue 20, item 4)."""
        if self._page_index is None:
            self._page_index = PageIndex(self.zone.end_pfn)
        return self._page_index

    def register_page_owner(self, migrate: FileSystem | PageOwner
                            | Callable[[int, int, int], object],
                            owns: Callable[[int, int], bool] | None = None) -> None:
        """An owner of allocated movable pages: ``migrate(old, new, order)`` hears of
        every page compaction moves, in registration order, and returns True when the
        page was its own (the later owners are then not asked); a file system is asked
        its ``migrate_page(old, new)``, a ``PageOwner`` (sim/compaction.py) its
        ``migrate_page(old, new, order)``. ``owns(pfn, order)`` says whether the block is
        its own; an owner without it is taken to own every block, so that compaction
        never splits a large folio it might hold (``_split_folio_hook``)."""
        self._migrate_owners.append(migrate)
        self._page_owns.append(owns)

    def _lru_owns(self, pfn: int, order: int) -> bool:
        return pfn in self.lru

    def wake_cpu(self, cpu: int) -> None:
        """Something ran on ``cpu`` (a process that woke up): its deferrable vmstat work
        runs at the next refresh, as for a CPU that allocated or freed (sim/buddy.py
        ``Zone.vmstat_refresh``)."""
        for _, zone in self.zones:
            if zone.pcp_enabled:
                zone.pcp[cpu].awake = True

    def _split_folio_hook(self, zone: Zone) -> Callable[[int, int], bool]:
        """Compaction's ``split_folio`` for ``zone`` (zone pfns): a large movable block
        that found no migration target is split into base pages (mm/migrate.c
        ``migrate_pages_batch`` on -ENOMEM: ``try_split_folio``) when no page owner
        holds it: the machine's own movable memory (a snapshot's). A block an owner
        holds (a page-cache folio, a THP) stays whole: the owners track folios by head
        pfn, and the kernel's split of those is not modelled."""
        start = zone.zone_start_pfn

        def split_folio(pfn: int, order: int) -> bool:
            for owns in self._page_owns:
                if owns is None or owns(pfn + start, order):
                    return False
            zone.split_folio(pfn, order)
            return True
        return split_folio

    def add_sample_hook(self, hook: Callable[[dict], None]) -> None:
        self._sample_hooks.append(hook)

    # ------------------------------------------------------------------ results

    def mem_available(self) -> int:
        """MemAvailable in pages (``si_mem_available``, sim/metrics.py): the zones' free
        pages less their reserve, plus the reclaimable shares of the file LRU and of the
        slab pages of SLAB_RECLAIM_ACCOUNT caches (NR_SLAB_RECLAIMABLE_B)."""
        zones = [zone for _, zone in self.zones]
        slab_reclaimable = sum(c.nr_pages for c in self.caches
                               if c.migratetype == MIGRATE_RECLAIMABLE)
        return metrics.si_mem_available(
            sum(z.nr_free_pages for z in zones),
            sum(metrics.totalreserve_pages(z) for z in zones),
            sum(z.wmark_pages(WMARK_LOW) for z in zones), self.lru.nr_pages,
            slab_reclaimable)

    def snapshot(self) -> dict[tuple[str, str], float]:
        """The sampled metrics, named as everywhere else (see sim/metrics.py): a node
        of several zones has each zone's under ``<zone>/<key>`` besides the node's."""
        if self.multi_zone:
            values = metrics.node_metrics(self.zones)
        else:
            values = metrics.zone_metrics(self.zones[0][1])
        values.update(metrics.cache_metrics(self.caches))
        values[("page_cache_pages", "")] = self.lru.nr_pages
        values[("mem_available", "")] = self.mem_available()
        for order, n in enumerate(self.lru.nr_by_order[:PAGECACHE_ORDERS]):
            values[("page_cache_folios", str(order))] = n
        values[("compact_migrated", "")] = self.compactor.stats.migrated
        values[("defrag_pages_returned", "")] = self.defrag.stats.pages_returned
        values[("extfrag_fallbacks", "")] = sum(
            zone.stats.extfrag_claim + zone.stats.extfrag_steal for _, zone in self.zones)
        for hook in self._sample_hooks:
            hook(values)
        for name, count in self.vmstat().items():
            values[("vmstat", name)] = count
        return values

    def vmstat(self) -> dict[str, int]:
        """The /proc/vmstat event counters the model has, under the kernel's names,
        counted from t = 0 (what ``fragsim record`` writes as the ``vmstat`` series):
        reclaim (``pgsteal_kswapd``: page-cache pages kswapd's LRU scans reclaimed,
        ``pgsteal_direct`` the rest; ``pgscan_kswapd``/``pgscan_direct``: the pages
        those scans looked at; ``pgskip_<zone>`` the pages of each zone they passed over
        (a reclaim for a lower zone); ``pageoutrun`` kswapd's runs; ``allocstall`` direct
        reclaim entries; ``slabs_scanned`` objects every shrinker scanned), compaction
        (``compact_stall``/``success``/``fail``, ``compact_migrate_scanned``,
        ``compact_free_scanned``, ``pgmigrate_success``, ``compact_daemon_wake``) and
        THP (``thp_fault_alloc``/``thp_fault_fallback``: the anon workloads' huge page
        faults and every THP probe attempt, as the probe's fault would count;
        ``thp_collapse_alloc``/``_failed``: khugepaged's)."""
        comp = self.compactor.stats
        reclaim = self.reclaim.stats
        thp_alloc = thp_fallback = collapse = collapse_failed = 0
        for w in all_workloads(self.workloads):
            if w.kind == "thp_probe":
                thp_alloc += w.successes
                thp_fallback += w.attempts - w.successes
            stats = getattr(w, "thp_stats", None)
            if stats is not None:
                thp_alloc += stats.thp_fault_alloc
                thp_fallback += stats.thp_fault_fallback
                collapse += stats.thp_collapse_alloc
                collapse_failed += stats.thp_collapse_alloc_failed
        return {
            "pgsteal_kswapd": reclaim.pgsteal_kswapd,
            "pgsteal_direct": self.lru.stats.evicted - reclaim.pgsteal_kswapd,
            "pgscan_kswapd": reclaim.pgscan_kswapd,
            "pgscan_direct": self.lru.stats.scanned - reclaim.pgscan_kswapd,
            **{f"pgskip_{name.lower()}": self.lru.stats.skipped_by_zone[zone.zone_idx]
               for name, zone in self.zones},
            "pageoutrun": self.kswapd.stats.runs,
            "allocstall": self.page_alloc.stats.direct_reclaim,
            "slabs_scanned": reclaim.shrinker_scanned,
            "compact_stall": comp.stalls,
            "compact_success": comp.successes,
            "compact_fail": comp.failures,
            "compact_migrate_scanned": comp.migrate_scanned,
            "compact_free_scanned": comp.free_scanned,
            "pgmigrate_success": comp.migrated,
            "compact_daemon_wake": comp.kcompactd_wakes,
            "thp_fault_alloc": thp_alloc,
            "thp_fault_fallback": thp_fallback,
            "thp_collapse_alloc": collapse,
            "thp_collapse_alloc_failed": collapse_failed,
        }

    def pageblock_stats(self) -> metrics.PageblockStats:
        """The pageblock census of every zone, in pfn order (sim/metrics.py)."""
        return metrics.node_pageblock_stats([zone for _, zone in self.zones])

    def pageblock_snapshot(self, stats: metrics.PageblockStats | None = None
                           ) -> dict[tuple[str, str], float]:
        """The pageblock metrics, from ``stats`` when given, else read from the page
        state without the whole census (``node_mixed_pageblocks``: the same number)."""
        if stats is None:
            return {("mixed_pageblocks", ""): metrics.node_mixed_pageblocks(
                [zone for _, zone in self.zones])}
        block_mt = stats.migratetype
        if not self.zones[0][1].grouping_by_mobility:
            # page_group_by_mobility_disabled: every block is typed UNMOVABLE, yet every
            # block is where movable pages go; one holding a non-movable page is just
            # as mixed (compaction cannot empty it), so count it as MOVABLE would be.
            block_mt = np.full_like(block_mt, MIGRATE_MOVABLE)
        return {("mixed_pageblocks", ""): metrics.mixed_pageblocks(
            block_mt, stats.nonmovable_pages)}

    def buddy_report(self) -> dict[str, Any]:
        """The zones' allocator counters (sim/machine.py ``buddy_report``)."""
        return buddy_report(self.zones)

    @property
    def buddy_calls(self) -> int:
        """Buddy allocator calls (allocations and frees) over every zone."""
        return sum(zone.nr_alloc_calls + zone.nr_free_calls for _, zone in self.zones)

    def engine_report(self) -> dict[str, float]:
        """The slow path's, reclaim's and the daemons' counters, as one section."""
        reclaim = self.reclaim.stats.as_dict()
        return {
            **self.page_alloc.report(),
            **self.kswapd.stats.as_dict("kswapd"),
            **{k: reclaim.pop(k) for k in ("kswapd_reclaimed", "kswapd_slab_freed",
                                           "kswapd_giveups")},
            # balance_pgdat steps kswapd ran beside a direct compaction
            "kswapd_concurrent_steps": self.kswapd.concurrent_steps,
            **self.kcompactd.stats.as_dict("kcompactd"),
            **reclaim,
        }

    def report(self) -> dict[str, Any]:
        """Every component's report, as the sections of a run's summary."""
        return {
            "buddy": self.buddy_report(),
            "engine": self.engine_report(),
            # order-N allocation failures after the slow path, by order
            "alloc_failures_by_order": {str(o): n for o, n in
                                        enumerate(self.page_alloc.failures_by_order) if n},
            "compaction": self.compactor.report(),
            "defrag": self.defrag.report(),
            "shrinker": self.reclaim.report(),
            "evictions": {
                "slab_objects": sum(c.stats.objects_evicted for c in self.caches),
                # page-cache pages dropped: by LRU reclaim, and with an evicted inode
                "page_cache_pages": self.lru.stats.evicted
                + sum(c.stats.page_cache_evicted for c in self.caches),
                "page_cache_pages_lru": self.lru.stats.evicted,
                "page_cache_pages_inode": sum(c.stats.page_cache_evicted
                                              for c in self.caches),
            },
            "page_cache_folios_by_order": {str(o): n for o, n in
                                           enumerate(self.lru.nr_by_order) if n},
            "caches": self.caches.report(),
        }

    # ------------------------------------------------------------------ running

    def start(self, workloads: list) -> None:
        self.workloads = workloads
        env = self.env
        for _, zone in self.zones:
            env.process(vmstat_refresh(env, zone))
        env.process(rcu_tick(env, self.caches))
        if self.config.reclaim.kswapd:
            env.process(self.kswapd.run())
        if self.config.compaction.enabled:
            env.process(self.kcompactd.run())
        d = self.config.defrag
        if d.enabled:
            if d.interval:
                self.defrag.start_periodic(d.interval)
            if d.at:
                self.defrag.schedule(d.at)
        for workload in workloads:
            workload.start()


def all_workloads(workloads: list) -> list:
    """The workloads and, in turn, their children (phases' workloads)."""
    out = []
    for w in workloads:
        out.append(w)
        out.extend(all_workloads(getattr(w, "children", [])))
    return out


def buddy_report(zones: list[tuple[str, Zone]]) -> dict[str, Any]:
    """``Zone.report`` of a lone zone, or of several summed, with each zone's own under
    ``zones``."""
    if len(zones) == 1:
        return zones[0][1].report()
    reports = {name: zone.report() for name, zone in zones}
    total: dict[str, Any] = {}
    for report in reports.values():
        for key, value in report.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    total["zones"] = reports
    return total


def _at_node_pfn(hook: Callable[[int], bool], zone: Zone) -> Callable[[int], bool]:
    """A compaction hook that takes node pfns, called with the zone's own pfns."""
    start = zone.zone_start_pfn
    if not start:
        return hook

    def at_node_pfn(pfn: int) -> bool:
        return hook(pfn + start)
    return at_node_pfn


def _load_mobility(name: str):
    """``none``/``free``/``move``, or ``module:Class`` for a user's get/reclaim pair."""
    if ":" not in name:
        return name
    import importlib

    module_name, _, class_name = name.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)()


def _compaction_suitable(compactors: dict[int, Compactor]
                         ) -> Callable[[Zone, int, int, int], bool]:
    """mm/compaction.c ``compaction_suitable(zone, order, watermark, highest_zoneidx)``
    for vmscan's reclaim/compaction checks: the zone's own compactor answers (its
    ``vm.extfrag_threshold``)."""
    def compaction_suitable(zone: Zone, order: int, watermark: int,
                            highest_zoneidx: int) -> bool:
        return compactors[zone.zone_idx].compaction_suitable(order, watermark,
                                                             highest_zoneidx)
    return compaction_suitable
