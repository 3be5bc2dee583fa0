"""The allocation slow path, shrink_node and kswapd's balance step, driven directly:
no SimPy, a zone, a file LRU and the synchronous reclaim and allocator objects."""

import pytest

from sim.buddy import (
    ALLOC_HIGHATOMIC,
    ALLOC_KSWAPD,
    ALLOC_MIN_RESERVE,
    ALLOC_NO_WATERMARKS,
    ALLOC_NON_BLOCK,
    ALLOC_WMARK_MIN,
    OWNER_MOVABLE,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    Zone,
)
from sim.compaction import Compactor
from sim.config import ReclaimSection
from sim.gfp import GFP_ATOMIC, GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_NOWAIT
from sim.migratetype import MIGRATE_MOVABLE
from sim.page_alloc import PageAllocator, gfp_to_alloc_flags
from sim.slab import SlabCaches
from sim.vmscan import DEF_PRIORITY, SWAP_CLUSTER_MAX, FileLru, Reclaim


class Node:
    """A 64 MiB zone whose movable pages are all page cache on the file LRU."""

    def __init__(self, nr_pages: int = 1 << 14) -> None:
        self.zone = Zone(nr_pages, cpus=1, pcp=False)
        self.lru = FileLru(lambda pfn, owner: self.zone.free(pfn, 0), nr_pages=nr_pages)
        self.caches = SlabCaches(self.zone)
        self.cfg = ReclaimSection()
        self.reclaim = Reclaim(self.zone, self.lru, self.caches, self.cfg)
        self.wakes: list[tuple[int, bool]] = []  # (order, caller may reclaim directly)
        self.failures: list[int] = []
        self.alloc = PageAllocator(self.zone, self.reclaim, Compactor(self.zone),
                                   wakeup_kswapd=lambda *wake: self.wakes.append(wake),
                                   on_failure=self.failures.append)

    def fill_page_cache(self, leave_free: int) -> None:
        """Page-cache pages on the LRU until ``leave_free`` pages are free."""
        while self.zone.nr_free_pages > leave_free:
            pfn = self.zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, ALLOC_NO_WATERMARKS)
            assert pfn is not None
            self.lru.add(pfn, 0)


def test_gfp_to_alloc_flags_follows_the_kernel():
    assert gfp_to_alloc_flags(0, GFP_KERNEL) == ALLOC_WMARK_MIN | ALLOC_KSWAPD
    assert gfp_to_alloc_flags(0, GFP_NOWAIT) == ALLOC_WMARK_MIN | ALLOC_KSWAPD | ALLOC_NON_BLOCK
    # GFP_ATOMIC: __GFP_HIGH reaches into the min reserve; high orders may use the
    # highatomic reserve.
    atomic = ALLOC_WMARK_MIN | ALLOC_MIN_RESERVE | ALLOC_KSWAPD | ALLOC_NON_BLOCK
    assert gfp_to_alloc_flags(0, GFP_ATOMIC) == atomic
    assert gfp_to_alloc_flags(3, GFP_ATOMIC) == atomic | ALLOC_HIGHATOMIC


def test_below_low_the_slow_path_wakes_kswapd_and_allocates_down_to_min():
    node = Node()
    zone = node.zone
    low, min_ = zone.wmark_pages(WMARK_LOW), zone.wmark_pages(WMARK_MIN)
    node.fill_page_cache(leave_free=(low + min_) // 2)
    pfn = node.alloc.alloc_pages(0, GFP_KERNEL, 0, OWNER_MOVABLE)
    assert pfn is not None
    assert node.wakes == [(0, True)]
    assert node.alloc.stats.slowpath == 1 and node.alloc.stats.direct_reclaim == 0
    assert zone.nr_free_pages > min_


def test_at_min_a_blocking_request_reclaims_a_cluster_and_stalls_for_it():
    node = Node()
    zone = node.zone
    node.fill_page_cache(leave_free=zone.wmark_pages(WMARK_MIN) - 1)
    before = len(node.lru)
    pfn = node.alloc.alloc_pages(0, GFP_HIGHUSER_MOVABLE, 0, OWNER_MOVABLE)
    stats = node.alloc.stats
    assert pfn is not None
    assert stats.direct_reclaim == 1
    assert stats.direct_reclaimed >= SWAP_CLUSTER_MAX
    assert len(node.lru) == before - stats.direct_reclaimed
    scanned = node.lru.stats.scanned  # order-0 folios: as many folios as pages
    cfg = node.cfg
    assert stats.stall_s == pytest.approx(
        scanned * cfg.scan_cost
        + stats.direct_reclaimed * (cfg.evict_cost + cfg.evict_page_cost))
    assert node.failures == []


def test_global_direct_reclaim_at_def_priority_scans_its_whole_proportional_share():
    """shrink_lruvec's proportional_reclaim: a global direct reclaimer at DEF_PRIORITY
    does not stop at SWAP_CLUSTER_MAX; it scans lru_pages >> DEF_PRIORITY (here 255
    pages of 1 Mi-page zone's page cache, none referenced, so all are reclaimed)."""
    node = Node(1 << 20)
    zone = node.zone
    node.fill_page_cache(leave_free=zone.wmark_pages(WMARK_MIN) - 1)
    share = len(node.lru) >> DEF_PRIORITY
    assert share > SWAP_CLUSTER_MAX
    pfn = node.alloc.alloc_pages(0, GFP_HIGHUSER_MOVABLE, 0, OWNER_MOVABLE)
    stats = node.alloc.stats
    assert pfn is not None and stats.direct_reclaim == 1
    assert stats.direct_reclaimed == node.lru.stats.scanned == share


def test_direct_reclaim_of_2_mib_folios_takes_one_folio_for_each_batch_of_its_share():
    """proportional_reclaim scans the share in batches (``nr[lru] -= nr_to_scan`` with
    ``nr_to_scan = min(nr[lru], SWAP_CLUSTER_MAX)``), and each batch's
    isolate_lru_folios takes one whole 2 MiB folio: the stall reclaims ceil(share / 32)
    folios, 16 times its share, not the share's worth of pages."""
    node = Node(1 << 20)
    zone = node.zone
    node.lru = FileLru(lambda pfn, order: zone.free(pfn, order), nr_pages=1 << 20)
    node.reclaim = Reclaim(zone, node.lru, node.caches, node.cfg)
    node.alloc = PageAllocator(zone, node.reclaim, Compactor(zone), compaction=False)
    low = zone.wmark_pages(WMARK_LOW)
    while zone.nr_free_pages > low + 1024:
        pfn = zone.alloc(9, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, ALLOC_NO_WATERMARKS)
        node.lru.add(pfn, 9, 9)  # the owner id is the folio's order, for the callback
    while zone.nr_free_pages >= zone.wmark_pages(WMARK_MIN):
        pfn = zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, ALLOC_NO_WATERMARKS)
        node.lru.add(pfn, 0, 0)
    share = node.lru.nr_pages >> DEF_PRIORITY
    batches = -(-share // SWAP_CLUSTER_MAX)
    assert batches > 1
    pfn = node.alloc.alloc_pages(0, GFP_HIGHUSER_MOVABLE, 0, OWNER_MOVABLE)
    stats = node.alloc.stats
    assert pfn is not None and stats.direct_reclaim == 1
    assert stats.direct_reclaimed == node.lru.stats.scanned == batches * 512


def fragmented_page_cache(nr_pages: int = 1 << 16) -> Node:
    """Page cache in every page, then every other page dropped: plenty of free memory,
    all of it order-0 blocks (fragmentation index near 1000 for order 9)."""
    node = Node(nr_pages)
    node.fill_page_cache(leave_free=0)
    for pfn in range(0, nr_pages, 2):
        node.lru.remove(pfn)
        node.zone.free(pfn, 0)
    return node


def test_reclaim_for_a_costly_order_repeats_until_compaction_could_go_ahead():
    """should_continue_reclaim: a shrink_node for order 9 repeats at the same priority
    while no zone could give the order at min and compaction_suitable says no; it stops
    at the first round after which compaction would go ahead. Not for order 0, nor for
    order 2 at DEF_PRIORITY (in_reclaim_compaction), nor without compaction."""
    node = Node()
    zone = node.zone
    pfns = []
    while (pfn := zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE,
                             ALLOC_NO_WATERMARKS)) is not None:
        pfns.append(pfn)
    # Oldest first in a stride of 512 pfns, so that what reclaim frees does not merge
    # into an order-9 block (which would let the allocation succeed and stop it).
    for pfn in sorted(pfns, key=lambda p: (p % 512, p)):
        node.lru.add(pfn, 0)
    target = 3000
    calls = []

    def suitable(z, order, watermark, highest_zoneidx):
        calls.append((order, watermark))
        return z.nr_free_pages >= target

    assert node.reclaim.shrink_node(SWAP_CLUSTER_MAX, DEF_PRIORITY, order=9) == 32
    node.reclaim.compaction_suitable = suitable
    assert node.reclaim.shrink_node(SWAP_CLUSTER_MAX, DEF_PRIORITY, order=0) == 32
    assert node.reclaim.shrink_node(SWAP_CLUSTER_MAX, DEF_PRIORITY, order=2) == 32
    assert calls == []
    reclaimed = node.reclaim.shrink_node(SWAP_CLUSTER_MAX, DEF_PRIORITY, order=9)
    assert target <= zone.nr_free_pages < target + SWAP_CLUSTER_MAX
    assert reclaimed == zone.nr_free_pages - 3 * 32 and reclaimed % SWAP_CLUSTER_MAX == 0
    assert set(calls) == {(9, zone.min_wmark)} and len(calls) == reclaimed // 32
    # in_reclaim_compaction: a costly order at any priority, any order > 0 below
    # DEF_PRIORITY - 2.
    mode = node.reclaim.in_reclaim_compaction
    assert mode(4, DEF_PRIORITY) and not mode(3, DEF_PRIORITY - 2)
    assert mode(1, DEF_PRIORITY - 3) and not mode(0, 0)


def test_direct_reclaim_for_a_costly_order_leaves_a_compaction_ready_zone_alone():
    """compaction_ready: with free memory above high + compact_gap and fragmented, a
    costly request's direct reclaim reclaims nothing and reports progress (1), so the
    slow path goes on to compaction; without compaction it reclaims as before."""
    node = fragmented_page_cache()
    compactor = Compactor(node.zone)
    node.reclaim.compaction_suitable = (
        lambda z, order, mark, hz: compactor.compaction_suitable(order, mark, hz))
    assert compactor.compaction_suitable(9, node.zone.wmark_pages(WMARK_HIGH))
    progress, pfn = node.alloc.alloc_pages_direct_reclaim(9, MIGRATE_MOVABLE, 0, None,
                                                          ALLOC_WMARK_MIN)
    assert (progress, pfn) == (1, None)
    assert node.lru.stats.scanned == 0 and node.alloc.stats.direct_reclaim == 1
    # An order-3 request (not costly) reclaims.
    progress, _ = node.alloc.alloc_pages_direct_reclaim(3, MIGRATE_MOVABLE, 0, None,
                                                        ALLOC_WMARK_MIN)
    assert progress >= SWAP_CLUSTER_MAX and node.lru.stats.scanned > 0
    # So does a costly one when compaction is off.
    off = fragmented_page_cache()
    off.alloc.compaction = False
    off.reclaim.compaction_suitable = node.reclaim.compaction_suitable
    progress, _ = off.alloc.alloc_pages_direct_reclaim(9, MIGRATE_MOVABLE, 0, None,
                                                       ALLOC_WMARK_MIN)
    assert progress >= SWAP_CLUSTER_MAX


def test_a_request_that_cannot_block_fails_without_reclaim_and_is_counted():
    node = Node()
    zone = node.zone
    node.fill_page_cache(leave_free=zone.wmark_pages(WMARK_MIN) - 1)
    assert node.alloc.alloc_pages(2, GFP_NOWAIT, 0, OWNER_MOVABLE) is None
    assert node.alloc.stats.direct_reclaim == 0
    assert node.alloc.stats.alloc_failures == 1
    assert node.alloc.failures_by_order[2] == 1 and node.failures == [2]
    # woken at the start and again before the retry, by a caller that cannot reclaim
    assert node.wakes == [(2, False), (2, False)]


def test_shrink_node_scans_the_priority_share_and_charges_its_cost():
    node = Node()
    node.fill_page_cache(leave_free=0)
    nr = len(node.lru)
    freed = node.reclaim.shrink_node(10_000, DEF_PRIORITY)
    share = max(nr >> DEF_PRIORITY, min(nr, SWAP_CLUSTER_MAX))
    assert node.lru.stats.scanned == share and freed == share
    assert node.zone.nr_free_pages == share
    cfg = node.cfg
    assert node.reclaim.last_cost == pytest.approx(
        share * (cfg.scan_cost + cfg.evict_cost + cfg.evict_page_cost))
    assert node.reclaim.stats.shrinker_runs == 1


def test_reclaim_charges_a_large_folio_per_folio_and_per_page():
    """Evicting a folio costs ``scan_cost`` + ``evict_cost`` whatever its size, plus
    ``evict_page_cost`` a page (configs/real/reclaim-cost: kswapd's CPU time over
    order-0, 1 MiB and 2 MiB folios fits that line within 5 %). A 2 MiB folio costs
    about 17 order-0 folios, not 512."""
    zone = Zone(1 << 14, cpus=1, pcp=False)
    lru = FileLru(lambda pfn, order: zone.free(pfn, order), nr_pages=1 << 14)
    cfg = ReclaimSection()
    reclaim = Reclaim(zone, lru, SlabCaches(zone), cfg)
    while True:
        pfn = zone.alloc(9, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, ALLOC_NO_WATERMARKS)
        if pfn is None:
            break
        lru.add(pfn, 9, order=9)  # the owner tag is the order to free at
    assert len(lru) >= 16
    freed = reclaim.shrink_node(1 << 20, DEF_PRIORITY)
    # The share (32 pages) is one batch, which takes one whole folio.
    assert freed == 512 and lru.stats.folios_evicted == lru.stats.folios_scanned == 1
    one = cfg.scan_cost + cfg.evict_cost + 512 * cfg.evict_page_cost
    assert reclaim.last_cost == pytest.approx(one)
    order0 = cfg.scan_cost + cfg.evict_cost + cfg.evict_page_cost
    assert 10 * order0 < one < 30 * order0


def test_balance_pgdat_reclaims_until_above_high_then_stops():
    node = Node()
    zone = node.zone
    node.fill_page_cache(leave_free=0)
    nr = len(node.lru)
    costs = list(node.reclaim.balance_pgdat())
    high = zone.wmark_pages(WMARK_HIGH)
    assert node.reclaim.pgdat_balanced() and zone.nr_free_pages > high
    # kswapd_shrink_node asks for the high watermark's pages (all referenced bits are
    # clear, so every page scanned is evicted); a round that scans fewer raises the
    # priority, so the rounds evict the LRU's share at priorities 12, 11, ... until the
    # zone is above high, and kswapd stops at the first check that finds it there.
    assert high > SWAP_CLUSTER_MAX
    shares, freed, priority = [], 0, DEF_PRIORITY
    while freed <= high:
        share = min(max(nr >> priority, SWAP_CLUSTER_MAX), high)
        shares.append(share)
        freed += share
        nr -= share
        priority -= 1
    # Each round in its steps: a cost for every batch of 32 pages.
    assert node.reclaim.stats.kswapd_rounds == len(shares)
    assert zone.nr_free_pages == sum(shares)
    assert len(costs) == sum(-(-share // SWAP_CLUSTER_MAX) for share in shares)
    assert all(c > 0 for c in costs)
    assert node.reclaim.stats.kswapd_reclaimed == zone.nr_free_pages
    assert not zone.zone_reclaim_active and node.reclaim.kswapd_failures == 0


def test_balance_pgdat_with_nothing_to_reclaim_gives_up_after_priority_one():
    node = Node()
    zone = node.zone
    # Anonymous memory and no swap: nothing on the LRU, no shrinker.
    while zone.nr_free_pages > zone.wmark_pages(WMARK_MIN) // 2:
        assert zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, ALLOC_NO_WATERMARKS) is not None
    costs = list(node.reclaim.balance_pgdat())
    # "} while (sc.priority >= 1);": priorities 12 .. 1, each a round of nothing.
    assert len(costs) == DEF_PRIORITY
    assert costs == [1e-6] * DEF_PRIORITY
    assert node.reclaim.stats.kswapd_giveups == node.reclaim.kswapd_failures == 1


# ------------------------------------------------------------------ the slow path in summaries

CLIFF = """
name: cliff
seed: 1
duration: 1s
sample_every: 500ms
machine: {memory: 64MiB, cpus: 2, zones: [Normal], boot: none}
workloads:
  - {kind: anon, size: 48MiB, grow_rate: 256MiB}
  - {kind: page_cache, rate: 512MiB}
"""


def test_a_run_reports_its_slow_path_work_per_allocation(tmp_path, capsys, monkeypatch):
    """summary.json's slow_path section counts what the allocator's counters count, per
    buddy allocation call, and fragsim run notes a variant whose slow path takes more
    of its time than SLOW_PATH_NOTE_SHARE (here forced to 0 and to 1)."""
    from sim import cli, runner
    from sim.experiment import load_config

    path = tmp_path / "cliff.yaml"
    path.write_text(CLIFF)
    config = load_config(path)
    summary = runner.run_machine(config, 1, "default").summary
    sp, engine = summary["slow_path"], summary["engine"]
    assert sp["entered"] == engine["slowpath"] > 0
    assert summary["alloc_ops"] > sp["alloc_calls"] > sp["entered"]  # alloc_ops: frees too
    assert sp["share"] == sp["entered"] / sp["alloc_calls"]
    assert sp["direct_reclaim_share"] == engine["direct_reclaim"] / sp["alloc_calls"] > 0
    assert sp["direct_compact_share"] == engine["direct_compact"] / sp["alloc_calls"]
    assert 0 < sp["drain_all_pages"] == engine["drain_all_pages"] <= engine["direct_reclaim"]
    assert 0 < summary["slow_path_s"] < summary["wall_s"]
    out = tmp_path / "out"
    runner.run_experiment(path, out=out, plots=False)
    for share, noted in ((0.0, True), (1.0, False)):
        monkeypatch.setattr(runner, "SLOW_PATH_NOTE_SHARE", share)
        cli._print_headline(out)
        printed = capsys.readouterr().out
        assert ("default: note: the allocation slow path took" in printed) is noted, printed
