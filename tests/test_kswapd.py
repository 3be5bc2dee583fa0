"""kswapd and kcompactd by Linux 6.18's rules (mm/vmscan.c ``wakeup_kswapd``,
``balance_pgdat``, ``kswapd_shrink_node``, ``kswapd_try_to_sleep``; mm/compaction.c
``wakeup_kcompactd``), driven directly: the synchronous ``Reclaim`` rules without
SimPy, then the daemons on a bare SimPy environment for the order-3 script."""

import random

import simpy

from sim.buddy import ALLOC_NO_WATERMARKS, OWNER_MOVABLE, WMARK_HIGH, Zone
from sim.compaction import Compactor, CompactResult, PagePredicate, compact_gap
from sim.config import CompactionSection, ReclaimSection
from sim.daemons import Kcompactd, Kswapd
from sim.gfp import GFP_NOWAIT
from sim.migratetype import MIGRATE_MOVABLE
from sim.page_alloc import PageAllocator
from sim.slab import SlabCaches
from sim.vmscan import DEF_PRIORITY, MAX_RECLAIM_RETRIES, SWAP_CLUSTER_MAX, FileLru, Reclaim


class Node:
    """A 64 MiB zone (no per-CPU lists) whose allocated pages are page cache on the
    file LRU; compaction moves LRU pages with their LRU entry."""

    def __init__(self, nr_pages: int = 1 << 14, proactiveness: int = 0) -> None:
        self.zone = zone = Zone(nr_pages, cpus=1, pcp=False)
        self.lru = FileLru(lambda pfn, owner: zone.free(pfn, 0), nr_pages=nr_pages)
        self.reclaim = Reclaim(zone, self.lru, SlabCaches(zone), ReclaimSection())
        self.compactor = Compactor(zone, CompactionSection(proactiveness=proactiveness))
        zone.on_migrate = self._migrated
        self.kcompactd_wakes: list[int] = []
        self.reclaim.on_wakeup_kcompactd = self.kcompactd_wakes.append

    def _migrated(self, old: int, new: int, order: int) -> None:
        if old in self.lru:
            self.lru.migrate(old, new)

    def all_page_cache(self) -> list[int]:
        pfns = []
        while True:
            pfn = self.zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, ALLOC_NO_WATERMARKS)
            if pfn is None:
                return pfns
            pfns.append(pfn)

    def checkerboard(self, seed: int = 1) -> None:
        """Every even pfn free (8 192 order-0 pages, no two of them buddies), every
        odd pfn a page-cache page, added to the LRU in random order."""
        pfns = self.all_page_cache()
        odd = [pfn for pfn in pfns if pfn & 1]
        random.Random(seed).shuffle(odd)
        for pfn in odd:
            self.lru.add(pfn, 0)
        for pfn in pfns:
            if not pfn & 1:
                self.zone.free(pfn, 0)

    def fill(self, leave_free: int) -> None:
        """Page cache on the LRU until ``leave_free`` pages are free."""
        while self.zone.nr_free_pages > leave_free:
            pfn = self.zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, ALLOC_NO_WATERMARKS)
            assert pfn is not None
            self.lru.add(pfn, 0)


def avail(zone: Zone, order: int) -> int:
    return sum(zone.nr_free[k] << (k - order) for k in range(order, zone.max_order + 1))


# ------------------------------------------------------------------ balance by order


def test_a_zone_balanced_at_order_0_is_not_balanced_for_order_3_without_an_order_3_block():
    node = Node()
    node.checkerboard()
    zone, reclaim = node.zone, node.reclaim
    assert zone.nr_free_pages == len(node.lru) == 8192 and avail(zone, 1) == 0
    assert zone.nr_free_pages > zone.wmark_pages(WMARK_HIGH)
    assert reclaim.pgdat_balanced(0) and not reclaim.pgdat_balanced(3)
    # wakeup_kswapd for order 3 wakes a sleeping kswapd and records the order.
    assert reclaim.wakeup_kswapd(3, False, sleeping=True)
    assert reclaim.kswapd_order == 3 and node.kcompactd_wakes == []


def drive(steps):
    """Run a balance_pgdat generator to its end: (its costs, the order it returned)."""
    costs = []
    while True:
        try:
            costs.append(next(steps))
        except StopIteration as done:
            return costs, done.value


def test_balance_pgdat_for_order_3_drops_to_order_0_after_compact_gap_pages():
    node = Node()
    node.checkerboard()
    reclaim = node.reclaim
    costs, reclaim_order = drive(reclaim.balance_pgdat(3))
    # One kswapd_shrink_node round (SWAP_CLUSTER_MAX pages at DEF_PRIORITY) is past
    # compact_gap(3) = 16 pages: sc->order = 0, and the zone is balanced at order 0;
    # balance_pgdat returns 0, below the order asked (kswapd then wakes kcompactd).
    assert compact_gap(3) <= SWAP_CLUSTER_MAX
    assert len(costs) == 1 and reclaim.stats.kswapd_reclaimed == SWAP_CLUSTER_MAX
    assert reclaim_order == 0 and not reclaim.pgdat_balanced(3)
    assert not node.kcompactd_wakes  # not boosted: no pageblock-order wake here


def test_the_order_3_nowait_script_gets_its_block_within_3s_through_kswapd_and_kcompactd():
    """Issue 18's script: a failed order-3 GFP_NOWAIT allocation with 8 192 free
    order-0 pages and 8 192 reclaimable pages. kswapd runs for order 3, falls back to
    order 0 after compact_gap(3), and going to sleep wakes kcompactd for order 3,
    which compacts an order-3 block (proactive compaction is off, so nothing else
    would)."""
    node = Node(proactiveness=0)
    node.checkerboard()
    zone, reclaim, compactor = node.zone, node.reclaim, node.compactor
    env = simpy.Environment()
    kcompactd = Kcompactd(env, compactor)
    kswapd = Kswapd(env, zone, reclaim, compactor, kcompactd.wakeup)
    reclaim.on_wakeup_kcompactd = kcompactd.wakeup
    alloc = PageAllocator(zone, reclaim, compactor, wakeup_kswapd=kswapd.wakeup)
    env.process(kswapd.run())
    env.process(kcompactd.run())
    env.run(until=0.5)  # both asleep: kswapd's short nap, then its full sleep
    assert kswapd.sleeping and kswapd.full_sleeps == 1 and kswapd.stats.runs == 0
    assert alloc.alloc_pages(3, GFP_NOWAIT, 0, OWNER_MOVABLE) is None
    env.run(until=3.5)
    assert kswapd.stats.runs == 1 and reclaim.stats.kswapd_reclaimed == SWAP_CLUSTER_MAX
    assert compactor.stats.kcompactd_wakes == 1 and kcompactd.stats.runs == 1
    assert avail(zone, 3) > 0
    assert alloc.alloc_pages(3, GFP_NOWAIT, 0, OWNER_MOVABLE) is not None
    assert kswapd.sleeping and kcompactd.max_order == 0


# ------------------------------------------------------------------ boosted reclaim


def test_boosted_reclaim_on_a_balanced_zone_reclaims_the_boost_at_a_held_priority():
    node = Node()
    zone, reclaim, lru = node.zone, node.reclaim, node.lru
    boost = zone.pageblock_nr_pages
    node.fill(leave_free=zone.high_wmark + boost + 1000)
    zone.watermark_boost = boost
    assert reclaim.pgdat_balanced(0)  # above high + boost
    # Balanced but boosted: wakeup_kswapd wakes kswapd (and not kcompactd).
    assert reclaim.wakeup_kswapd(0, False, sleeping=True) and node.kcompactd_wakes == []
    evicted = []
    steps = reclaim.balance_pgdat(0)
    for i, _cost in enumerate(steps):
        evicted.append(lru.stats.evicted - sum(evicted))
        if i == 0:
            zone.watermark_boost += 100  # a fallback boosts again meanwhile
    # Every round is the SWAP_CLUSTER_MAX minimum of priorities 12, 11, 10 and then
    # 10 again (held at DEF_PRIORITY - 2; a lower priority would scan more), until
    # the boost present at the start is reclaimed.
    nr = 1 << 14
    assert all(nr >> p < SWAP_CLUSTER_MAX for p in range(DEF_PRIORITY, DEF_PRIORITY - 3, -1))
    assert nr >> (DEF_PRIORITY - 5) > SWAP_CLUSTER_MAX
    assert evicted == [SWAP_CLUSTER_MAX] * (boost // SWAP_CLUSTER_MAX)
    # Only the boost present at the start is taken off; kcompactd at pageblock order.
    assert zone.watermark_boost == 100
    assert node.kcompactd_wakes == [zone.pageblock_order]
    assert not zone.zone_reclaim_active


def test_boosted_reclaim_on_an_unbalanced_zone_restarts_as_normal_reclaim():
    node = Node()
    zone, reclaim = node.zone, node.reclaim
    boost = zone.pageblock_nr_pages
    node.fill(leave_free=zone.high_wmark)
    zone.watermark_boost = boost
    assert not reclaim.pgdat_balanced(0)
    list(reclaim.balance_pgdat(0))
    # Normal reclaim to high + boost (then balanced: out), the boost dropped after.
    assert zone.nr_free_pages > zone.high_wmark + boost
    assert zone.watermark_boost == 0 and node.kcompactd_wakes == [zone.pageblock_order]


def test_boosted_reclaim_with_nothing_to_reclaim_stops_and_counts_a_failure():
    node = Node()
    zone, reclaim = node.zone, node.reclaim
    while zone.nr_free_pages > zone.high_wmark + 2 * zone.pageblock_nr_pages:
        assert zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, ALLOC_NO_WATERMARKS) is not None
    zone.watermark_boost = zone.pageblock_nr_pages
    costs = list(reclaim.balance_pgdat(0))
    # "If reclaim made no progress for a boost, stop reclaim": one round.
    assert len(costs) == 1 and reclaim.kswapd_failures == 1
    assert zone.watermark_boost == 0


# ------------------------------------------------------------------ kcompactd wakes


def test_wakeup_kswapd_on_a_balanced_zone_wakes_kcompactd_for_a_caller_that_cannot_reclaim():
    node = Node()
    node.fill(leave_free=4096)  # free pages in large blocks: balanced for order 3
    reclaim = node.reclaim
    assert reclaim.pgdat_balanced(3)
    assert not reclaim.wakeup_kswapd(3, False, sleeping=True)
    assert node.kcompactd_wakes == [3]
    # A caller that may reclaim directly compacts itself: no kcompactd wake.
    assert not reclaim.wakeup_kswapd(3, True, sleeping=True)
    assert node.kcompactd_wakes == [3]
    # kswapd awake: the order is recorded, nothing is woken.
    assert not reclaim.wakeup_kswapd(5, False, sleeping=False)
    assert reclaim.kswapd_order == 5 and node.kcompactd_wakes == [3]


def test_a_hopeless_node_leaves_kswapd_asleep_and_wakes_kcompactd_instead():
    node = Node()
    node.checkerboard()
    reclaim = node.reclaim
    reclaim.kswapd_failures = MAX_RECLAIM_RETRIES
    assert reclaim.prepare_kswapd_sleep(3)  # may sleep though not balanced for 3
    assert not reclaim.wakeup_kswapd(3, False, sleeping=True)
    assert node.kcompactd_wakes == [3]
    # Any shrink_node that reclaims revives it.
    assert reclaim.shrink_node(SWAP_CLUSTER_MAX, DEF_PRIORITY) > 0
    assert reclaim.kswapd_failures == 0 and reclaim.wakeup_kswapd(3, False, sleeping=True)


def test_wakeup_kcompactd_wakes_only_a_sleeping_kcompactd_on_a_suitable_zone():
    node = Node(proactiveness=20)  # kcompactd's 500 ms timeout runs
    zone, compactor = node.zone, node.compactor
    node.fill(leave_free=zone.min_wmark + compact_gap(3) // 2)  # too little to compact
    env = simpy.Environment()
    kcompactd = Kcompactd(env, compactor)
    env.process(kcompactd.run())
    env.run(until=0.1)
    assert kcompactd.sleeping
    kcompactd.wakeup(0)  # "if (!order) return;"
    assert kcompactd.max_order == 0
    assert not compactor.kcompactd_node_suitable(3)
    kcompactd.wakeup(3)
    env.run(until=0.2)
    # Recorded, not woken: kcompactd_do_work waits for the next timeout (at 0.5 s)...
    assert kcompactd.max_order == 3 and compactor.stats.kcompactd_wakes == 0
    env.run(until=0.6)
    # ... where kcompactd_work_requested holds; do_work finds compaction unsuitable.
    assert compactor.stats.kcompactd_wakes == 1 and kcompactd.max_order == 0


# ------------------------------------------------------------------ kswapd beside compaction


def _woken_beside_a_compaction(concurrent: bool):
    """Every odd pfn page cache (on the LRU in pfn order), every even pfn free; kswapd
    asleep, then woken for order 4 as the slow path does before compacting. The page
    cache cannot migrate (a compaction without __GFP_FS), so compaction alone finds
    nothing to do; kswapd's first round frees pfns 1-63, which merge with their free
    buddies."""
    node = Node()
    pfns = node.all_page_cache()
    for pfn in pfns:
        if pfn & 1:
            node.lru.add(pfn, 0)
    for pfn in pfns:
        if not pfn & 1:
            node.zone.free(pfn, 0)
    env = simpy.Environment()
    kcompactd = Kcompactd(env, node.compactor)
    kswapd = Kswapd(env, node.zone, node.reclaim, node.compactor, kcompactd.wakeup)
    node.reclaim.on_wakeup_kcompactd = kcompactd.wakeup
    env.process(kswapd.run())
    env.process(kcompactd.run())
    env.run(until=0.5)
    assert kswapd.sleeping and kswapd.stats.runs == 0
    if concurrent:
        node.compactor.concurrent = lambda elapsed: kswapd.run_concurrently(env.now + elapsed)
    node.compactor.is_file_folio = PagePredicate(lambda pfn: True)
    kswapd.wakeup(order=4, direct_reclaim=True)
    assert avail(node.zone, 4) == 0
    result, captured = node.compactor.try_to_compact_pages(4, MIGRATE_MOVABLE,
                                                           owner=OWNER_MOVABLE, gfp_fs=False)
    return env, node, kswapd, result, captured


def test_a_woken_kswapd_reclaims_on_another_cpu_while_a_direct_compaction_takes_its_time():
    """With a CPU for kswapd, the direct compaction that the wake came before sees
    kswapd's first round once its own time has passed it: it finishes on a block that
    kswapd freed (COMPACT_SUCCESS, nothing migrated), as the kernel's successful direct
    compactions do while kswapd frees beside them. Without one, kswapd runs only
    after the compaction, which crossed the zone for nothing."""
    env, node, kswapd, result, captured = _woken_beside_a_compaction(concurrent=True)
    run = node.compactor.last_run
    assert result == CompactResult.COMPACT_SUCCESS and captured is None
    assert run is not None and run.migrated == 0 and 0 < run.migrate_scanned < 512
    # kswapd's first step: one LRU batch of its first round, 32 pages freed.
    assert kswapd.running and kswapd.stats.runs == 1 and kswapd.concurrent_steps == 1
    assert node.lru.stats.evicted == SWAP_CLUSTER_MAX
    assert avail(node.zone, 4) > 0

    env1, node1, kswapd1, result1, _ = _woken_beside_a_compaction(concurrent=False)
    assert result1 == CompactResult.COMPACT_PARTIAL_SKIPPED
    assert kswapd1.stats.runs == 0 and node1.lru.stats.evicted == 0
    assert avail(node1.zone, 4) == 0


def test_rounds_kswapd_ran_during_a_compaction_are_slept_not_run_again():
    """Once both kswapds' processes have run, the two machines agree: the same run,
    the same pages reclaimed, the same time spent; only when the first round's work
    was done differs."""
    env, node, kswapd, _, _ = _woken_beside_a_compaction(concurrent=True)
    env1, node1, kswapd1, _, _ = _woken_beside_a_compaction(concurrent=False)
    env.run(until=5)
    env1.run(until=5)
    for k in (kswapd, kswapd1):
        assert k.stats.runs == 1 and not k.running
    assert node.reclaim.stats.kswapd_reclaimed == node1.reclaim.stats.kswapd_reclaimed
    assert abs(kswapd.stats.time_s - kswapd1.stats.time_s) < 1e-12
    assert kswapd.short_sleeps == kswapd1.short_sleeps


def _kswapd_asleep_on_a_checkerboard():
    """kswapd fully asleep on the checkerboard zone, which is not balanced for order 3."""
    node = Node()
    node.checkerboard()
    env = simpy.Environment()
    kswapd = Kswapd(env, node.zone, node.reclaim, node.compactor, lambda order: None)
    env.process(kswapd.run())
    env.run(until=0.5)
    return env, kswapd


def test_nothing_kswapd_does_is_seen_in_no_time():
    """A compaction that has taken no time yet sees nothing of the kswapd it woke: the
    run does not start, and kswapd's own process starts it as before."""
    env, kswapd = _kswapd_asleep_on_a_checkerboard()
    kswapd.wakeup(order=3, direct_reclaim=True)
    kswapd.run_concurrently(env.now)
    assert kswapd.sleeping and kswapd.stats.runs == 0 and not kswapd.running
    kswapd.run_concurrently(env.now + 1e-6)
    assert kswapd.running and kswapd.stats.runs == 1 and not kswapd.sleeping


def test_a_wake_after_a_stall_starts_kswapd_at_the_waking_tasks_time():
    """A slow path's retry loop wakes kswapd again after it has stalled: kswapd starts
    then, not at the slow path's start, and a compaction sees nothing of it before."""
    env, kswapd = _kswapd_asleep_on_a_checkerboard()
    kswapd.clock = lambda: env.now + 0.01  # the task has stalled 10 ms
    kswapd.wakeup(order=3, direct_reclaim=True)
    kswapd.run_concurrently(env.now + 0.005)
    assert kswapd.sleeping and kswapd.stats.runs == 0
    kswapd.run_concurrently(env.now + 0.011)
    assert kswapd.running and kswapd._started == env.now + 0.01
    assert kswapd.concurrent_steps >= 1
    env.run(until=1.0)
    assert kswapd.stats.runs == 1 and not kswapd.running
