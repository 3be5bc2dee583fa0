"""The buddy allocator against the rules of Linux 6.18 mm/page_alloc.c.

Claim and steal cases are worked out by hand from ``__rmqueue_claim``,
``try_to_claim_block`` and ``__rmqueue_steal``; per-CPU list cases from
``free_frozen_page_commit``, ``nr_pcp_high`` and ``decay_pcp_high``; watermark and
pageset sizes against the real /proc/zoneinfo in tests/data.
"""

import random
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from librt.vecs import vec
from mypy_extensions import i32, i64

from sim import metrics
from sim.buddy import (
    ALLOC_KSWAPD,
    ALLOC_NO_WATERMARKS,
    ALLOC_NOFRAGMENT,
    ALLOC_WMARK_LOW,
    OWNER_MOVABLE,
    OWNER_PINNED,
    OWNER_RECLAIMABLE,
    OWNER_SLAB,
    OWNER_UNMOVABLE,
    PG_PCP,
    RMQUEUE_NORMAL,
    BadFree,
    BuddyCorrupt,
    BuddyStats,
    PfnList,
    Zone,
    apply_ops,
    zone_batchsize,
    zone_highsize,
)
from sim.migratetype import (
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_TYPES,
    MIGRATE_UNMOVABLE,
)
from sim.procfs import parse_zoneinfo

DATA = Path(__file__).parent / "data"
NOWM = ALLOC_NO_WATERMARKS
U, M, R = MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE


def boot_layout(nr_pages: int, max_order: int = 10) -> list[int]:
    """nr_free per order of a freshly booted zone: the largest aligned blocks."""
    nr_free = [0] * (max_order + 1)
    pfn = 0
    while pfn < nr_pages:
        order = max_order
        while order and (pfn % (1 << order) or pfn + (1 << order) > nr_pages):
            order -= 1
        nr_free[order] += 1
        pfn += 1 << order
    return nr_free


def fill(zone: Zone, mt: int) -> list[int]:
    """Allocate every page at order 0 (no watermarks), then zero the counters so a
    test sees only what it does itself."""
    pfns = []
    while (pfn := zone.alloc(0, mt, alloc_flags=NOWM)) is not None:
        pfns.append(pfn)
    assert zone.nr_free_pages == 0
    zone.stats = BuddyStats()
    zone.watermark_boost = 0
    return pfns


# --------------------------------------------------------------------------- basics


def test_boot_zone_is_all_max_order_blocks_with_a_split_tail():
    zone = Zone(3 * 1024 + 512 + 7)
    assert zone.nr_free == boot_layout(3 * 1024 + 512 + 7)
    assert zone.nr_free[10] == 3 and zone.nr_free[9] == 1 and zone.nr_free[0] == 1
    zone.check()


def test_splitting_an_order10_block_for_order0_leaves_one_block_per_lower_order():
    zone = Zone(1024, pcp=False)
    pfn = zone.alloc(0, M)
    assert pfn == 0
    assert zone.nr_free == [1] * 10 + [0]
    # expand() keeps the lowest part and frees the upper halves: 512, 256, ..., 1.
    assert [zone.free_blocks(order, M) for order in range(10)] == [[1 << o] for o in range(10)]
    zone.check()


def test_freeing_everything_merges_back_to_max_order_blocks():
    zone = Zone(4096, pcp=False)
    pfns = fill(zone, M)
    for pfn in pfns[::-1]:
        zone.free(pfn, 0)
    assert zone.nr_free == boot_layout(4096)
    zone.check()


def test_page_state_fits_in_16_bytes_per_page():
    zone = Zone(1 << 20)
    assert zone.memory_bytes() / zone.nr_pages <= 16


# --------------------------------------------------------------------------- bad frees


def test_double_free_raises_at_once_and_leaves_state_intact():
    zone = Zone(2048)
    pfn = zone.alloc(0, M)
    zone.free(pfn, 0)
    with pytest.raises(BadFree, match="double free"):
        zone.free(pfn, 0)
    zone.check()


@pytest.mark.parametrize("pcp", [True, False])
def test_free_at_the_wrong_order_raises(pcp):
    zone = Zone(2048, pcp=pcp)
    pfn = zone.alloc(2, M)
    with pytest.raises(BadFree, match="allocated at order 2"):
        zone.free(pfn, 0)
    with pytest.raises(BadFree, match="not the head"):
        zone.free(pfn + 1, 0)
    with pytest.raises(BadFree, match="outside the zone"):
        zone.free(2048, 0)
    zone.free(pfn, 2)
    zone.check()


# --------------------------------------------------------------------------- claim vs steal


def test_unmovable_request_claims_a_whole_movable_max_order_block():
    # __rmqueue_claim starts at the largest order: an order-10 MOVABLE block is
    # claimed whole (change_pageblock_range over both pageblocks), no boost.
    zone = Zone(4096, pcp=False)
    assert zone.alloc(0, U, alloc_flags=NOWM) == 0
    assert zone.pageblock_counts()[:3] == [2, 6, 0]
    assert zone.nr_free_by_type()[U][:10] == [1] * 10
    assert zone.stats.extfrag_claim == 1 and zone.watermark_boost == 0
    zone.check()


def test_claim_scans_from_the_largest_foreign_block_down():
    zone = Zone(2048, pcp=False)
    assert zone.alloc(10, M, alloc_flags=NOWM) == 0
    assert zone.alloc(0, M, alloc_flags=NOWM) == 1024  # MOVABLE pieces at orders 0..9 remain
    # An UNMOVABLE request takes the order-9 block at 1536, not the order-0 page at 1025.
    assert zone.alloc(0, U, alloc_flags=NOWM) == 1536
    assert zone.pageblock_migratetype(1536) == U
    assert zone.pageblock_migratetype(1024) == M
    zone.check()


def test_small_movable_request_steals_from_an_unmovable_block_without_retyping():
    zone = Zone(1024, pcp=False)
    pfns = fill(zone, U)
    zone.free(pfns[10], 0)
    # Movable requests only try to claim blocks of order >= pageblock_order / 2;
    # there are none, so __rmqueue_steal takes the order-0 UNMOVABLE page.
    assert zone.alloc(0, M, alloc_flags=NOWM) == pfns[10]
    assert zone.pageblock_migratetype(pfns[10]) == U
    assert zone.stats.extfrag_steal == 1 and zone.stats.extfrag_claim == 0
    assert zone.watermark_boost == 0  # __rmqueue_steal does not boost in 6.18
    zone.check()


def test_movable_request_claims_an_unmovable_block_when_half_of_it_is_free():
    zone = Zone(1024, pcp=False)
    pfns = fill(zone, U)
    for pfn in pfns[:300]:
        zone.free(pfn, 0)
    assert zone.alloc(0, M, alloc_flags=NOWM) is not None
    assert zone.pageblock_migratetype(0) == M
    assert zone.stats.extfrag_claim == 1
    zone.check()


def _movable_zone_with_free_head(nr_free: int) -> Zone:
    """Four MOVABLE pageblocks, full, then pfns 0..nr_free-1 freed (pageblock 0)."""
    zone = Zone(2048, pcp=False)
    pfns = fill(zone, M)
    for pfn in pfns[:nr_free]:
        zone.free(pfn, 0)
    return zone


def test_unmovable_request_claims_a_movable_block_with_half_free():
    zone = _movable_zone_with_free_head(300)
    wakes = []
    zone.on_wakeup_kswapd = wakes.append
    # free 300 + alike (512 - 300 free - 212 movable = 0) >= 256: claim, then
    # __rmqueue_smallest(UNMOVABLE) takes the smallest piece: order 2 at 296.
    assert zone.alloc(0, U, alloc_flags=NOWM | ALLOC_KSWAPD) == 296
    assert zone.pageblock_migratetype(0) == U
    assert zone.stats.extfrag_claim == 1
    # try_to_claim_block boosted the watermark before counting, and rmqueue woke kswapd.
    assert zone.watermark_boost == 512 and wakes == [0]
    zone.check()


def test_unmovable_request_steals_when_less_than_half_is_free_or_alike():
    zone = _movable_zone_with_free_head(200)
    # 200 free + 0 alike < 256: no claim; __rmqueue_steal takes the smallest MOVABLE
    # piece (order 3 at 192) and the block stays MOVABLE.
    assert zone.alloc(0, U, alloc_flags=NOWM) == 192
    assert zone.pageblock_migratetype(0) == M
    assert zone.stats.extfrag_steal == 1 and zone.stats.extfrag_claim == 0
    assert zone.watermark_boost > 0  # the failed claim attempt still boosted
    zone.check()


def test_unmovable_pages_in_a_movable_block_count_as_alike_for_an_unmovable_claim():
    zone = _movable_zone_with_free_head(200)
    stolen = [zone.alloc(0, U, alloc_flags=NOWM) for _ in range(50)]
    assert zone.stats.extfrag_claim == 0 and zone.pageblock_migratetype(0) == M
    for pfn in range(200, 260):  # free 60 more movable pages of the block
        zone.free(pfn, 0)
    # free 210 + alike (512 - 210 free - 252 movable = 50) = 260 >= 256: claim.
    assert zone.alloc(0, U, alloc_flags=NOWM) is not None
    assert zone.pageblock_migratetype(0) == U
    assert zone.stats.extfrag_claim == 1
    assert all(zone.owner_of(pfn) == OWNER_UNMOVABLE for pfn in stolen)
    zone.check()


@pytest.mark.parametrize(("freed", "claimed"), [(300, True), (200, False)])
def test_reclaimable_falling_into_unmovable_counts_no_alike_pages(freed, claimed):
    zone = Zone(2048, pcp=False)
    pfns = fill(zone, U)
    for pfn in pfns[:freed]:
        zone.free(pfn, 0)
    # UNMOVABLE <-> RECLAIMABLE: alike = 0 although 312 unmovable pages sit there.
    assert zone.alloc(0, R, alloc_flags=NOWM) is not None
    assert (zone.pageblock_migratetype(0) == R) is claimed
    assert zone.stats.extfrag_claim == int(claimed)
    assert zone.stats.extfrag_steal == int(not claimed)
    zone.check()


def test_watermark_boost_is_capped_at_high_times_boost_factor():
    zone = Zone(1 << 16, pcp=False)
    cap = max(512, zone.high_wmark * 15000 // 10000)
    for k in range(1, 6):
        assert zone.boost_watermark()
        assert zone.watermark_boost == min(k * 512, cap)
    assert zone.wmark_pages(0) == zone.min_wmark + zone.watermark_boost


def test_no_boost_in_zones_smaller_than_four_pageblocks():
    zone = Zone(1536, pcp=False)
    assert not zone.boost_watermark()


def test_grouping_disabled_uses_one_list_and_never_falls_back():
    zone = Zone(4096, pcp=False, grouping_by_mobility=False)
    for mt in (U, M, R, M):
        zone.alloc(0, mt, alloc_flags=NOWM)
    assert zone.stats.extfrag_claim == zone.stats.extfrag_steal == 0
    assert zone.pageblock_counts()[:3] == [8, 0, 0]
    zone.check()


# --------------------------------------------------------------------------- free placement


def test_freed_page_goes_to_the_tail_when_its_higher_buddy_is_free():
    zone = Zone(1024, pcp=False)
    fill(zone, M)
    zone.free(8, 0)  # higher buddy (order 1 at 10) allocated: head
    zone.free(2, 0)
    zone.free(3, 0)  # merges with 2 into order 1 at 2
    zone.free(1, 0)  # buddy 0 allocated, but the order-1 block at 2 is free: tail
    zone.free(12, 0)  # higher buddy (order 1 at 14) allocated: head
    assert zone.free_blocks(0, M) == [12, 8, 1]
    zone.check()


def test_fpi_to_tail_bypasses_the_per_cpu_lists():
    zone = Zone(1 << 14, cpus=1)
    pfn = zone.alloc(0, M)
    pcp_before = zone.pcp_pages
    zone.free(pfn, 0, to_tail=True)
    assert zone.pcp_pages == pcp_before
    zone.check()


# --------------------------------------------------------------------------- per-CPU lists


def test_freed_order0_pages_do_not_merge_until_drained():
    zone = Zone(1 << 14, cpus=1)
    a = zone.alloc(0, M)
    b = zone.alloc(0, M)
    assert a ^ b == 1  # buddies, handed out in pfn order by rmqueue_bulk
    zone.free(a, 0)
    zone.free(b, 0)
    assert zone.nr_free[10] < 16
    assert zone.pcp_pages > 0
    zone.check()
    zone.drain_all_pages()
    assert zone.pcp_pages == 0
    assert zone.nr_free == boot_layout(1 << 14)
    zone.check()


def test_pcp_refill_takes_a_batch_and_the_first_page_is_handed_out():
    zone = Zone(1 << 16, cpus=2)
    pcp = zone.pcp[1]
    assert zone.alloc(0, M, cpu=1) == 0
    # nr_pcp_alloc: batch << alloc_factor (0 the first time) pages, one handed out.
    assert pcp.count == pcp.batch - 1
    assert zone.pcp[0].count == 0
    zone.check()


def test_pcp_count_stays_below_high_and_decay_returns_pages():
    zone = Zone(1 << 16, cpus=1)
    pcp = zone.pcp[0]
    pfns = [zone.alloc(0, M) for _ in range(12000)]  # more than high_max (8192)
    assert pcp.high > pcp.high_min  # refills raised high (nr_pcp_alloc, zone above high)
    for pfn in pfns:
        zone.free(pfn, 0)
        assert pcp.count < max(pcp.high, pcp.batch) + pcp.batch
    assert zone.stats.pcp_bulk_frees > 0
    for _ in range(200):
        zone.free(zone.alloc(0, M), 0)  # the CPU is awake: its vmstat work runs
        zone.vmstat_refresh()
    assert pcp.high == pcp.high_min
    assert pcp.count <= pcp.high_min
    zone.check()


def test_an_idle_cpu_keeps_its_raised_high_and_its_pages():
    """vmstat_update is deferrable work: it does not wake an idle CPU, so a CPU that
    freed a large fill and went idle keeps its pcp high and the pages on its lists (the
    real zoneinfo after the Gupta anchor: CPU 1 held 115 915 free pages, high 116 205)."""
    zone = Zone(1 << 16, cpus=2)
    pages = [zone.alloc(0, M, cpu=1) for _ in range(20_000)]
    for pfn in pages:
        zone.free(pfn, 0, cpu=1)
    idle = zone.pcp[1]
    high, count = idle.high, idle.count
    assert high > idle.high_min and count > idle.high_min
    zone.vmstat_refresh()  # CPU 1 was awake since boot: one decay
    high, count = idle.high, idle.count
    for _ in range(100):
        zone.free(zone.alloc(0, M, cpu=0), 0, cpu=0)  # CPU 0 busy, CPU 1 idle
        zone.vmstat_refresh()
    assert (idle.high, idle.count) == (high, count) and high > idle.high_min
    zone.free(zone.alloc(0, M, cpu=1), 0, cpu=1)  # CPU 1 wakes: its pending work runs
    zone.vmstat_refresh()
    assert idle.high < high
    zone.check()


def test_thp_order_uses_its_own_pcp_list():
    zone = Zone(1 << 14, cpus=1)
    pfn = zone.alloc(9, M)
    assert pfn is not None and pfn % 512 == 0
    zone.free(pfn, 9)
    assert zone.pcp_pages >= 512
    assert zone.alloc(9, M) == pfn  # LIFO from the THP list
    zone.check()


def test_pcp_off_frees_straight_to_the_buddy_lists():
    zone = Zone(1 << 14, pcp=False)
    pfn = zone.alloc(0, M)
    zone.free(pfn, 0)
    assert zone.pcp_pages == 0 and zone.nr_free == boot_layout(1 << 14)


# --------------------------------------------------------------------------- watermarks


def _real_zones():
    text = (DATA / "compaction/gupta-12g-keep1of4/zoneinfo-after-run").read_text()
    return [z for z in parse_zoneinfo(text) if z.managed]


def fragmented_zone(seed: int) -> Zone:
    """8192 pages, mixed pageblocks, free blocks of every order up to 3 on every list."""
    rng = random.Random(seed)
    zone = Zone(8192, pcp=False)
    live = []
    while zone.nr_free_pages > 800:
        pfn = zone.alloc(order := 0 if rng.random() < 0.7 else rng.randint(1, 3),
                         rng.choice((U, M, M, M, R)), alloc_flags=NOWM)
        if pfn is not None:
            live.append((pfn, order))
    rng.shuffle(live)
    for pfn, order in live[: len(live) * 3 // 5]:
        zone.free(pfn, order)
    return zone


def buddy_state(zone: Zone):
    """Everything __rmqueue touches, with free lists in list order. (Not the links of
    pages off the lists: those are stale, and differ.)"""
    stats = zone.stats.as_dict()
    del stats["pcp_refills"]
    lists = [[list(zone.free_list_iter(order, mt)) for mt in range(MIGRATE_TYPES)]
             for order in range(zone.max_order + 1)]
    return (lists, zone.nr_free_by_type(), zone.nr_free, zone.nr_free_pages,
            bytes(zone.page_state_arrays()[0]), zone.pageblock_types(), stats,
            zone.watermark_boost, zone.zone_boosted_watermark)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("order", [0, 2])
@pytest.mark.parametrize("mt", [U, M, R])
@pytest.mark.parametrize("count", [5, 400, 6000])
@pytest.mark.parametrize("flags", [ALLOC_WMARK_LOW | ALLOC_KSWAPD, ALLOC_NOFRAGMENT])
def test_pcp_refill_equals_repeated_rmqueue_calls(seed, order, mt, count, flags):
    """``_rmqueue_bulk`` takes list heads and splits a larger block for many pages at
    once (kept for speed, Zone's docstring); the kernel's rmqueue_bulk calls __rmqueue
    once a block, keeping the rmqueue mode. Both leave the same zone and pcp list."""
    bulk, calls = fragmented_zone(seed), fragmented_zone(seed)
    assert buddy_state(bulk) == buddy_state(calls)
    lst = PfnList()
    n = bulk._rmqueue_bulk(order, count, lst, mt, flags)
    state = calls.page_state_arrays()[0]
    mode = [RMQUEUE_NORMAL]
    got = []
    while len(got) < count and (page := calls._rmqueue(order, mt, flags, mode)) >= 0:
        state[page] = PG_PCP | order
        got.append(page)
    assert n == len(got) > 0
    assert list(lst)[::-1] == got  # rmqueue_bulk adds each block at the list's tail
    assert buddy_state(bulk) == buddy_state(calls)


def test_pageset_batch_and_high_limits_match_the_real_zoneinfo():
    zones = _real_zones()
    assert [z.zone for z in zones] == ["DMA", "DMA32", "Normal"]
    for z in zones:
        batch = max(1, zone_batchsize(z.managed))
        for cpu in z.pcp:
            assert cpu["batch"] == batch
            assert cpu["high_min"] == zone_highsize(z.low, batch, len(z.pcp))
            assert cpu["high_max"] == zone_highsize(z.managed // 8, batch, len(z.pcp))


@pytest.mark.parametrize("name", ["DMA", "DMA32", "Normal"])
def test_zone_watermarks_and_pagesets_match_the_real_zoneinfo(name):
    real = next(z for z in _real_zones() if z.zone == name)
    # Each real zone got its share of min_free_kbytes; give this zone the same share.
    zone = Zone(real.managed, cpus=len(real.pcp), min_free_kbytes=real.min * 4)
    assert (zone.min_wmark, zone.low_wmark, zone.high_wmark, zone.promo_wmark) == (
        real.min, real.low, real.high, real.promo)
    for pcp, cpu in zip(zone.pcp, real.pcp, strict=True):
        assert (pcp.batch, pcp.high_min, pcp.high_max) == (
            cpu["batch"], cpu["high_min"], cpu["high_max"])


def test_thp_raises_min_free_kbytes_as_khugepaged_does():
    zones = _real_zones()
    total = sum(z.managed for z in zones)
    zone = Zone(total, cpus=2, nr_populated_zones=3)
    # pageblock_nr_pages * 3 zones * (2 + 3 * 3) pages, in kB.
    assert zone.min_free_kbytes == 512 * 3 * 11 * 4
    # The real zones split that reserve; their mins add up to it but for rounding.
    assert abs(zone.min_wmark - sum(z.min for z in zones)) <= len(zones)
    no_thp = Zone(total, cpus=2, thp=False)
    assert no_thp.min_free_kbytes == min(262144, max(128, int((total * 4 * 16) ** 0.5)))


def test_low_watermark_refuses_order0_and_boost_raises_every_mark():
    zone = Zone(1 << 14, pcp=False)
    allocated = 0
    while zone.alloc(0, M) is not None:
        allocated += 1
    assert zone.stats.alloc_fail_wmark == 1
    assert zone.nr_free_pages <= zone.low_wmark + 1
    assert zone.zone_below_high
    # alloc_pfn, the compiled callers' form, refuses with -1 and counts it the same
    assert zone.alloc_pfn(0, M, 0, None, ALLOC_WMARK_LOW | ALLOC_KSWAPD) == -1
    assert zone.stats.alloc_fail_wmark == 2
    assert zone.alloc(0, M, alloc_flags=NOWM) is not None


def test_high_order_watermark_needs_a_free_block_of_that_order():
    zone = Zone(1 << 14, pcp=False)
    assert zone.zone_watermark_ok(10, zone.min_wmark)
    pfns = fill(zone, M)
    for pfn in pfns[::2]:  # half the memory free, but no two free pages adjacent
        zone.free(pfn, 0)
    assert zone.zone_watermark_ok(0, zone.min_wmark)
    assert not zone.zone_watermark_ok(1, zone.min_wmark)
    assert metrics.avail(zone.nr_free, 1) == 0


# --------------------------------------------------------------------------- metrics


PB_FIELDS = ("free_pages", "pcp_pages", "movable_pages", "pinned_pages",
             "unmovable_pages", "slab_pages")


def pageblock_stats_lists(zone):
    stats = metrics.pageblock_stats(zone)
    return {name: getattr(stats, name).tolist() for name in PB_FIELDS}


def brute_pageblock_stats(zone):
    """pageblock_stats the slow way: walk the heads, give each page of a block to
    the pageblock it lies in."""
    state, owner = zone.page_state_arrays()
    counts = {name: [0] * zone.nr_pageblocks for name in PB_FIELDS}
    for pfn in range(zone.nr_pages):
        st = state[pfn]
        if not st:
            continue  # a tail
        kind, order, who = st & 0xC0, st & 0x3F, owner[pfn]
        if kind == 0x40:
            name = "free_pages"
        elif kind == 0xC0:
            name = "pcp_pages"
        elif who == OWNER_MOVABLE:
            name = "movable_pages"
        elif who == OWNER_PINNED:
            name = "pinned_pages"
        elif who in (OWNER_UNMOVABLE, OWNER_RECLAIMABLE):
            name = "unmovable_pages"
        elif who >= OWNER_SLAB:
            name = "slab_pages"
        else:
            continue
        for page in range(pfn, pfn + (1 << order)):
            counts[name][page >> zone.pageblock_order] += 1
    return counts


def test_pageblock_stats_account_every_page():
    zone = Zone(4096 + 100, cpus=2)
    live = [(zone.alloc(0, M, cpu=0), 0) for _ in range(300)]
    live += [(zone.alloc(2, U, cpu=1), 2) for _ in range(40)]
    live += [(zone.alloc(9, M), 9)]
    zone.set_owner(live[0][0], OWNER_MOVABLE)
    for pfn, order in live[::3]:
        zone.free(pfn, order)
    stats = metrics.pageblock_stats(zone)
    total = (stats.free_pages + stats.pcp_pages + stats.movable_pages + stats.pinned_pages
             + stats.unmovable_pages + stats.slab_pages)
    assert total.sum() == zone.nr_pages
    assert stats.free_pages.sum() == zone.nr_free_pages
    assert stats.pcp_pages.sum() == zone.pcp_pages
    assert list(total[:-1]) == [512] * 8 and total[-1] == 100


# --------------------------------------------------------------------------- properties

ops = st.lists(
    st.tuples(
        st.sampled_from(["alloc", "alloc", "alloc", "free", "free", "drain", "decay"]),
        st.sampled_from([0, 0, 0, 0, 1, 2, 3, 4, 9, 10]),
        st.sampled_from([U, M, M, R]),
        st.integers(0, 2),
        st.booleans(),
        st.integers(0, 10**6),
    ),
    max_size=250,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nr_pages=st.integers(512, 5000),
    cpus=st.integers(1, 3),
    pcp=st.booleans(),
    grouping=st.booleans(),
    order_mode=st.sampled_from(["lifo", "fifo", "address"]),
    # (max_order, pageblock_order): x86's, and pageblocks smaller than half the
    # largest block, where a merged buddy spans several pageblocks.
    geometry=st.sampled_from([(10, 9), (10, 9), (8, 6), (8, 4)]),
    steps=ops,
)
def test_random_operations_keep_every_invariant_and_free_all_restores_boot_layout(
    nr_pages, cpus, pcp, grouping, order_mode, geometry, steps
):
    max_order, pageblock_order = geometry
    zone = Zone(nr_pages, cpus=cpus, pcp=pcp, grouping_by_mobility=grouping,
                free_list_order=order_mode, max_order=max_order,
                pageblock_order=pageblock_order)
    live: list[tuple[int, int]] = []
    for i, (op, order, mt, cpu, nowm, pick) in enumerate(steps):
        cpu %= cpus
        order = min(order, max_order)
        if op == "alloc":
            flags = NOWM if nowm else ALLOC_KSWAPD | 1
            pfn = zone.alloc(order, mt, cpu=cpu, alloc_flags=flags)
            if pfn is not None:
                assert pfn % (1 << order) == 0
                live.append((pfn, order))
                if pick % 5 == 0:  # owners beyond the migratetype's default
                    zone.set_owner(pfn, (OWNER_PINNED, OWNER_SLAB + pick % 9, 5)[pick % 3])
        elif op == "free" and live:
            pfn, order = live.pop(pick % len(live))
            zone.free(pfn, order, cpu=cpu)
        elif op == "drain":
            zone.drain_all_pages()
        elif op == "decay":
            zone.vmstat_refresh()
        if i % 50 == 0:
            zone.check()
    zone.check()
    assert pageblock_stats_lists(zone) == brute_pageblock_stats(zone)
    # the pageblocks per type kept as steals retype them: a count of the types
    types = np.asarray(zone.pageblock_migratetypes())
    assert zone.pageblock_counts() == np.bincount(types, minlength=len(
        zone.pageblock_counts())).tolist()
    # the mixed-pageblock sample without the census counts what the census does
    census = metrics.pageblock_stats(zone)
    block_mt = census.migratetype if grouping else np.full_like(census.migratetype, M)
    mixed = metrics.mixed_pageblocks(block_mt, census.nonmovable_pages)
    assert metrics.node_mixed_pageblocks([zone]) == mixed
    # the same a few pageblocks at a time (a large zone's census goes by chunks of
    # 1 024; here as few as hold the largest block)
    saved, metrics._CENSUS_BLOCKS = metrics._CENSUS_BLOCKS, 1
    try:
        assert pageblock_stats_lists(zone) == brute_pageblock_stats(zone)
        assert metrics.node_mixed_pageblocks([zone]) == mixed
    finally:
        metrics._CENSUS_BLOCKS = saved
    assert zone.nr_allocated_pages == sum(1 << order for _, order in live)
    for pfn, order in live:
        zone.free(pfn, order)
    zone.drain_all_pages()
    zone.check()
    assert zone.nr_free == boot_layout(nr_pages, max_order)
    assert zone.nr_free_pages == nr_pages


def test_check_finds_pageblock_counts_that_disagree_with_the_pageblocks():
    zone = Zone(4096, cpus=1, pcp=False)
    zone.check()
    zone._pageblock_nr[MIGRATE_UNMOVABLE] += 1
    with pytest.raises(BuddyCorrupt, match="pageblocks per type"):
        zone.check()


def test_set_pageblock_migratetype_retypes_only_blocks_without_free_pages():
    zone = Zone(16384, cpus=1, pcp=False)
    # Free at boot: every pageblock lies inside a free max-order block.
    with pytest.raises(ValueError, match="free block at pfn 0"):
        zone.set_pageblock_migratetype(600, MIGRATE_UNMOVABLE)
    held = [zone.alloc(9, MIGRATE_MOVABLE) for _ in range(2)]
    assert held == [0, 512]
    zone.set_pageblock_migratetype(600, MIGRATE_UNMOVABLE)
    assert zone.pageblock_migratetype(512) == MIGRATE_UNMOVABLE
    assert zone.pageblock_migratetype(0) == MIGRATE_MOVABLE
    zone.free(512, 9)  # the block goes back on the list of its new type
    assert zone.nr_free_by_type()[MIGRATE_UNMOVABLE][9] == 1
    zone.check()
    with pytest.raises(ValueError, match="expected a migratetype"):
        zone.set_pageblock_migratetype(0, 99)


def test_merging_a_buddy_of_another_type_retypes_every_pageblock_it_spans():
    """With pageblocks smaller than half the largest block, a merged buddy can span
    several pageblocks: all of them take the freed block's type, so the lists and the
    pageblock types still agree after later splits."""
    zone = Zone(256, cpus=1, pcp=False, max_order=8, pageblock_order=4,
                min_free_kbytes=128, watermark_boost_factor=0)
    low = zone.alloc(5, MIGRATE_MOVABLE, alloc_flags=NOWM)
    high = zone.alloc(5, MIGRATE_MOVABLE, alloc_flags=NOWM)
    assert (low, high) == (0, 32)
    for pfn in (32, 48):  # the two pageblocks of the second block
        zone.set_pageblock_migratetype(pfn, MIGRATE_UNMOVABLE)
    zone.free(high, 5)  # onto the UNMOVABLE order-5 list
    assert zone.nr_free_by_type()[MIGRATE_UNMOVABLE][5] == 1
    zone.free(low, 5)  # merges with it, then on up to one order-8 block
    assert zone.nr_free == boot_layout(256, 8)
    assert [zone.pageblock_migratetype(pfn) for pfn in range(0, 256, 16)] == (
        [MIGRATE_MOVABLE] * 16)
    zone.check()
    pieces = [zone.alloc(0, MIGRATE_MOVABLE, alloc_flags=NOWM) for _ in range(64)]
    assert None not in pieces
    zone.check()


def test_a_claim_counts_every_page_of_an_lru_folio():
    # 6.18 prep_move_freepages_block walks pfn by pfn, and PageLRU is PF_HEAD: the 90
    # order-2 LRU folios of this MOVABLE block are 360 movable pages, not 90. An
    # unmovable request falling back into it sees 100 free + 52 alike (512 - 100 -
    # 360) < 256, so it steals a page and the block stays MOVABLE (counting one page a
    # folio, 100 + 322 would have claimed the block).
    zone = Zone(2048, cpus=1, pcp=False, free_list_order="address")
    folios = [zone.alloc(2, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, NOWM) for _ in range(90)]
    assert folios == list(range(0, 360, 4))
    kernel = [zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_UNMOVABLE, NOWM) for _ in range(52)]
    spare = [zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, NOWM) for _ in range(100)]
    assert kernel + spare == list(range(360, 512))
    for _ in range(1536):  # the other three blocks full: no other free page
        assert zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, NOWM) is not None
    for pfn in spare:
        zone.free(pfn, 0)
    census = metrics.pageblock_stats(zone)
    assert (census.free_pages[0], census.movable_pages[0], census.unmovable_pages[0]) == \
        (100, 360, 52)
    pfn = zone.alloc(0, MIGRATE_UNMOVABLE, 0, None, NOWM)
    assert pfn is not None and pfn < 512
    assert (zone.stats.extfrag_claim, zone.stats.extfrag_steal) == (0, 1)
    assert zone.pageblock_migratetype(0) == MIGRATE_MOVABLE
    zone.check()
    # The setup can claim: a block of 64 order-2 LRU folios and 256 free pages has
    # free + alike = 256 + 0 >= 256, and the unmovable request claims it.
    zone2 = Zone(2048, cpus=1, pcp=False, free_list_order="address")
    folios2 = [zone2.alloc(2, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, NOWM) for _ in range(64)]
    rest = [zone2.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, NOWM) for _ in range(256)]
    assert folios2[-1] == 252 and rest == list(range(256, 512))
    for _ in range(1536):
        assert zone2.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, NOWM) is not None
    for pfn in rest:
        zone2.free(pfn, 0)
    assert zone2.alloc(0, MIGRATE_UNMOVABLE, 0, None, NOWM) is not None
    assert zone2.stats.extfrag_claim == 1
    assert zone2.pageblock_migratetype(0) == MIGRATE_UNMOVABLE
    zone2.check()


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["append", "appendleft", "pop", "popleft"]),
                              st.lists(st.integers(0, 2**31 - 1), max_size=40)),
                    max_size=120))
def test_a_pcp_list_does_what_the_deque_it_replaced_did(ops):
    """PfnList is the deque operations the per-CPU lists use, on a ring that doubles:
    the same items in the same order, through growth and wrap-around."""
    ring, model = PfnList(), deque()
    for op, pfns in ops:
        if op in ("append", "appendleft"):
            for pfn in pfns:
                getattr(ring, op)(pfn)
                getattr(model, op)(pfn)
        elif model:
            assert getattr(ring, op)() == getattr(model, op)()
        else:
            with pytest.raises(IndexError):
                getattr(ring, op)()
        assert len(ring) == len(model) and bool(ring) == bool(model)
        assert list(ring) == list(model) == ring.tolist()
        if model:
            assert model[0] in ring and model[-1] in ring


def _zone_state(zone: Zone) -> tuple:
    """Everything the allocation paths change: page state and owners, the free lists'
    counts, each pageset's counters and lists in order, the call counters."""
    state, owner = zone.page_state_arrays()
    pagesets = [(p.count, p.high, p.free_count, p.alloc_factor, p.flags, p.awake,
                 [lst.tolist() for lst in p.lists]) for p in zone.pcp]
    return (list(state), list(owner), zone.nr_free_by_type(), zone.nr_free_pages, pagesets,
            zone.nr_alloc_calls, zone.nr_free_calls, zone.stats.as_dict())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cpus=st.integers(1, 2),
    steps=st.lists(st.tuples(
        st.sampled_from(["alloc", "alloc", "alloc", "free", "free", "alloc_batch",
                         "free_batch", "drain", "decay"]),
        st.sampled_from([0, 0, 0, 0, 0, 1, 3]),
        st.sampled_from([U, M, M, R]),
        st.integers(0, 1),
        st.sampled_from([None, None, OWNER_PINNED, OWNER_SLAB + 3]),
        st.integers(1, 40),
        st.integers(0, 10**6),
    ), max_size=150),
)
def test_the_order0_fast_paths_do_what_the_general_path_does(cpus, steps):
    """alloc()'s and free()'s unrolled order-0 per-CPU paths (and the batches', which
    call the same two) leave the zone exactly as the general path does: the same pfns
    handed out, the same pages on the same per-CPU lists in the same order. The twin
    zone has the fast paths turned off, as a zone outside the kernel's default set-up
    has them."""
    fast, general = (Zone(3000, cpus=cpus) for _ in range(2))
    general._fast_alloc = False
    general._refresh_fast_ok()
    assert fast._fast_ok and not general._fast_ok
    live: list[tuple[int, int]] = []
    flags = ALLOC_WMARK_LOW | ALLOC_KSWAPD
    for op, order, mt, cpu, owner, n, pick in steps:
        cpu %= cpus
        if op == "alloc":
            got = [z.alloc(order, mt, cpu, owner, flags) for z in (fast, general)]
            assert got[0] == got[1]
            if got[0] is not None:
                live.append((got[0], order))
        elif op == "alloc_batch":
            outs: list[list[int]] = [[], []]
            for z, out in zip((fast, general), outs, strict=True):
                z.alloc_batch(n, mt, lambda c=cpu: c, owner, flags, out)
            assert outs[0] == outs[1]
            live.extend((pfn, 0) for pfn in outs[0])
        elif op == "free" and live:
            pfn, order = live.pop(pick % len(live))
            for z in (fast, general):
                z.free(pfn, order, cpu)
        elif op == "free_batch":
            run = [live.pop(i) for i in sorted(
                {pick * (k + 1) % len(live) for k in range(n)} if live else (), reverse=True)
                if live[i][1] == 0]
            for z in (fast, general):
                z.free_batch([pfn for pfn, _ in run], 0, lambda c=cpu: c)
        elif op == "drain":
            for z in (fast, general):
                z.drain_all_pages()
        elif op == "decay":
            for z in (fast, general):
                z.vmstat_refresh()
        assert _zone_state(fast) == _zone_state(general)
    fast.check()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), nr_ops=st.integers(0, 3000))
def test_apply_ops_is_the_loop_of_alloc_and_free_it_stands_for(seed, nr_ops):
    """bench/bench_buddy.py's compiled loop: the same calls as ``alloc(order, mt,
    cpu)`` and ``free(pfn, order, cpu)`` in a Python loop, refusals kept as -1."""
    rng = random.Random(seed)
    kinds, orders, mts, cpus, slots = [], [], [], [], []
    live: list[int] = []
    slot_order: list[int] = []
    for _ in range(nr_ops):
        if live and rng.random() < 0.45:
            slot = live.pop(rng.randrange(len(live)))
            kinds.append(1)
            mts.append(0)
        else:
            slot = len(slot_order)
            slot_order.append(rng.choice([0, 0, 0, 1, 2, 3, 9]))
            live.append(slot)
            kinds.append(0)
            mts.append(rng.choice([U, M, R]))
        orders.append(slot_order[slot])
        cpus.append(rng.randrange(2))
        slots.append(slot)
    by_calls, by_apply = Zone(4096, cpus=2), Zone(4096, cpus=2)
    pfns = [0] * len(slot_order)
    for kind, order, mt, cpu, slot in zip(kinds, orders, mts, cpus, slots, strict=True):
        if kind == 0:
            pfn = by_calls.alloc(order, mt, cpu)
            pfns[slot] = -1 if pfn is None else pfn
        elif pfns[slot] >= 0:
            by_calls.free(pfns[slot], order, cpu)
    applied = vec[i64]([0] * len(slot_order))
    # a free of a refused allocation is skipped above; the sequence without them
    keep = [i for i, (kind, slot) in enumerate(zip(kinds, slots, strict=True))
            if kind == 0 or pfns[slot] >= 0]
    args = [vec[i32]([seq[i] for i in keep]) for seq in (kinds, orders, mts, cpus, slots)]
    refused = apply_ops(by_apply, *args, applied, 0, len(keep))
    assert refused == sum(1 for kind, slot in zip(kinds, slots, strict=True)
                          if kind == 0 and pfns[slot] < 0)
    assert list(applied) == pfns
    assert _zone_state(by_apply) == _zone_state(by_calls)
