"""sim.metrics computes the kernel's fragmentation numbers exactly."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.metrics import (
    ContigPageInfo,
    SampleRow,
    _free_area_sample,
    avail,
    cache_metrics,
    contig_page_info,
    extfrag_for_order,
    fragmentation_index,
    fragmentation_score_node,
    fragmentation_score_zone,
    free_pages,
    free_pages_per_block_histogram,
    mixed_pageblocks,
    pageblocks_by_migratetype,
    unusable_index,
)
from sim.migratetype import (
    MIGRATE_HIGHATOMIC,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    MIGRATETYPE_NAMES,
)
from sim.procfs import format_extfrag_index, format_unusable_index, parse_buddyinfo

DATA = Path(__file__).parent / "data"
GUPTA = DATA / "compaction" / "gupta-12g-keep1of4"
TMPFS = DATA / "kmem-traces" / "tmpfs-churn-20k-keep10"
MAX_ORDER = 10
ORDERS = range(MAX_ORDER + 1)

EMPTY_ZONE = [0] * (MAX_ORDER + 1)
ONE_MAX_ORDER_BLOCK = [0] * MAX_ORDER + [1]

nr_free_lists = st.lists(st.integers(0, 10**7), min_size=MAX_ORDER + 1, max_size=MAX_ORDER + 1)


# --- known values by hand -------------------------------------------------------------


def test_empty_zone_is_all_unusable_and_fails_for_lack_of_memory():
    for order in ORDERS:
        assert unusable_index(EMPTY_ZONE, order) == 1000
        assert fragmentation_index(EMPTY_ZONE, order) == 0
        assert extfrag_for_order(EMPTY_ZONE, order) == 0
        assert avail(EMPTY_ZONE, order) == 0


def test_single_max_order_block_is_fully_usable_at_every_order():
    for order in ORDERS:
        assert unusable_index(ONE_MAX_ORDER_BLOCK, order) == 0
        assert fragmentation_index(ONE_MAX_ORDER_BLOCK, order) == -1000
        assert extfrag_for_order(ONE_MAX_ORDER_BLOCK, order) == 0
        assert avail(ONE_MAX_ORDER_BLOCK, order) == 1 << (MAX_ORDER - order)


def test_contig_page_info_counts_pages_blocks_and_splittable_blocks():
    # 3 order-0, 1 order-1, 2 order-3 blocks: 3 + 2 + 16 = 21 pages in 6 blocks.
    nr_free = [3, 1, 0, 2]
    assert contig_page_info(nr_free, 0) == ContigPageInfo(21, 6, 21)
    assert contig_page_info(nr_free, 2) == ContigPageInfo(21, 6, 4)
    assert free_pages(nr_free) == 21


def test_fragmentation_index_of_only_small_blocks_by_hand():
    # 4 free order-0 pages, order-2 request: 1000 - (1000 + 4*1000/4) / 4 = 500.
    assert fragmentation_index([4, 0, 0], 2) == 500
    # 64 order-0 pages and an order-9 request: mostly lack of memory.
    # 1000 - (1000 + 64000 // 512) // 64 = 1000 - 1125 // 64 = 983
    assert fragmentation_index([64] + [0] * 10, 9) == 983


def test_fragmentation_index_keeps_the_kernels_negative_values_for_few_blocks():
    # One free page, order-1 request: 1000 - (1000 + 500) // 1 = -500, as the kernel
    # computes it (the documented range is 0..1000, the formula does not keep to it).
    assert fragmentation_index([1, 0], 1) == -500


def test_unusable_and_extfrag_for_order_by_hand():
    # 2 order-0, 1 order-1, 1 order-3: 12 pages; at order 2 only the order-3 block
    # serves, as 2 blocks of 4 pages: 4 of 12 pages unusable.
    nr_free = [2, 1, 0, 1]
    assert unusable_index(nr_free, 2) == 333
    assert extfrag_for_order(nr_free, 2) == 33
    assert avail(nr_free, 2) == 2
    assert avail(nr_free, 0) == 12


def test_fragmentation_score_node_weights_zones_by_present_pages():
    all_order0 = [100] + [0] * MAX_ORDER  # extfrag 100 at order 9
    all_huge = [0] * MAX_ORDER + [5]  # extfrag 0
    assert fragmentation_score_zone(all_order0) == 100
    zones = [(1000, all_order0), (0, EMPTY_ZONE), (3000, all_huge)]
    # 1000 * 100 // (4000 + 1) + 0
    assert fragmentation_score_node(zones) == 24


def test_fragmentation_score_of_the_real_compaction_run_falls_after_compaction():
    def normal_zone(snapshot):
        zones = parse_buddyinfo((GUPTA / f"{snapshot}.buddyinfo").read_text())
        return next(z.nr_free for z in zones if z.zone == "Normal")

    # The unusable index at order 9 went from 0.990 to 0.019 (see the data README).
    assert fragmentation_score_zone(normal_zone("2-freed")) == 99
    assert fragmentation_score_zone(normal_zone("3-compacted")) == 1


def test_order_outside_the_free_area_is_a_programming_error():
    with pytest.raises(ValueError, match="order 11 outside 0..10"):
        unusable_index(EMPTY_ZONE, 11)
    with pytest.raises(ValueError):
        avail(EMPTY_ZONE, -1)


# --- properties -----------------------------------------------------------------------


@given(nr_free_lists)
def test_unusable_index_is_within_0_and_1000_and_never_falls_with_order(nr_free):
    values = [unusable_index(nr_free, order) for order in ORDERS]
    assert all(0 <= v <= 1000 for v in values)
    assert values == sorted(values)


# Free lists empty from some order up: the fragmentation index's formula branch.
_low_orders_only = st.integers(0, MAX_ORDER + 1).flatmap(lambda top: st.lists(
    st.integers(0, 10**7), min_size=top, max_size=top).map(
        lambda low: low + [0] * (MAX_ORDER + 1 - len(low))))


@given(nr_free_lists | _low_orders_only | st.just(ONE_MAX_ORDER_BLOCK),
       st.integers(0, MAX_ORDER))
def test_a_samples_free_area_values_are_the_kernels_formulas(nr_free, pageblock_order):
    # _free_area_sample computes every order in one pass; each value must be what the
    # per-order functions (mm/vmstat.c's formulas) give.
    row = SampleRow()
    _free_area_sample(row, nr_free, pageblock_order)
    values = row.as_dict()
    expect = {}
    for order in ORDERS:
        expect[("nr_free", str(order))] = nr_free[order]
        expect[("avail", str(order))] = avail(nr_free, order)
        expect[("unusable_index", str(order))] = unusable_index(nr_free, order)
    expect[("fragmentation_index", str(pageblock_order))] = fragmentation_index(
        nr_free, pageblock_order)
    assert values == expect
    assert list(values) == list(expect)  # the same order of keys (of CSV rows)


@given(nr_free_lists)
def test_avail_is_the_sum_of_splittable_blocks(nr_free):
    assert avail(nr_free, 0) == free_pages(nr_free)
    for order in ORDERS:
        expected = sum(nr_free[k] * 2 ** (k - order) for k in range(order, MAX_ORDER + 1))
        assert avail(nr_free, order) == expected
        if order < MAX_ORDER:
            # A block that serves order+1 serves order twice; order-N blocks add more.
            assert avail(nr_free, order) == 2 * avail(nr_free, order + 1) + nr_free[order]


@given(nr_free_lists)
def test_fragmentation_index_is_minus_1000_exactly_when_an_allocation_would_succeed(nr_free):
    for order in ORDERS:
        index = fragmentation_index(nr_free, order)
        assert (index == -1000) == (avail(nr_free, order) > 0)
        assert index <= 1000


@given(nr_free_lists)
def test_unusable_index_counts_the_pages_avail_cannot_use(nr_free):
    total = free_pages(nr_free)
    for order in ORDERS:
        if total:
            usable = avail(nr_free, order) << order
            assert unusable_index(nr_free, order) == (total - usable) * 1000 // total
            # extfrag_for_order is the same ratio in percent, truncated the same way.
            assert extfrag_for_order(nr_free, order) == unusable_index(nr_free, order) // 10


# --- the kernel's own output on real data ---------------------------------------------

SNAPSHOTS = ["0-idle", "1-filled", "2-freed", "3-compacted", "4-released"]


@pytest.mark.parametrize("snapshot", SNAPSHOTS)
def test_unusable_index_equals_the_kernels_debugfs_output(snapshot):
    zones = parse_buddyinfo((GUPTA / f"{snapshot}.buddyinfo").read_text())
    assert format_unusable_index(zones) == (GUPTA / f"{snapshot}.unusable_index").read_text()


@pytest.mark.parametrize("snapshot", SNAPSHOTS)
def test_extfrag_index_equals_the_kernels_debugfs_output(snapshot):
    zones = parse_buddyinfo((GUPTA / f"{snapshot}.buddyinfo").read_text())
    assert format_extfrag_index(zones) == (GUPTA / f"{snapshot}.extfrag_index").read_text()


def test_indices_of_the_trace_captures_before_snapshot_equal_the_kernels():
    # Only before.*: after.buddyinfo and after.unusable_index were read a moment apart.
    zones = parse_buddyinfo((TMPFS / "before.buddyinfo").read_text())
    assert format_unusable_index(zones) == (TMPFS / "before.unusable_index").read_text()
    assert format_extfrag_index(zones) == (TMPFS / "before.extfrag_index").read_text()


def test_extfrag_index_prints_intermediate_and_negative_values_as_the_kernel_does():
    # Four order-0 pages. Order 1: 1000 - (1000 + 4000 // 2) // 4 = 250; order 2: 500.
    zones = parse_buddyinfo("Node 0, zone   Normal      4      0      0 \n")
    assert format_extfrag_index(zones) == "Node 0, zone   Normal -1.000  0.250  0.500 \n"
    zones = parse_buddyinfo("Node 0, zone   Normal      1      0 \n")
    # "%2d.%03d" of -500 with C's truncating division: " 0.-500".
    assert format_extfrag_index(zones) == "Node 0, zone   Normal -1.000  0.-500 \n"
    assert format_unusable_index(zones) == "Node 0, zone   Normal 0.000 1.000 \n"


# --- pageblocks -----------------------------------------------------------------------


def test_migratetype_names_follow_the_kernel_numbering():
    assert MIGRATETYPE_NAMES[MIGRATE_UNMOVABLE] == "Unmovable"
    assert MIGRATETYPE_NAMES[MIGRATE_MOVABLE] == "Movable"
    assert MIGRATETYPE_NAMES[MIGRATE_RECLAIMABLE] == "Reclaimable"


def test_mixed_pageblocks_counts_movable_blocks_with_a_non_movable_page():
    migratetype = np.array(
        [MIGRATE_MOVABLE, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE],
        dtype=np.uint8,
    )
    nonmovable = np.array([0, 1, 512, 37, 3])
    assert mixed_pageblocks(migratetype, nonmovable) == 2


def test_mixed_pageblocks_needs_one_entry_per_pageblock_in_both_arrays():
    with pytest.raises(ValueError, match="one entry per pageblock"):
        mixed_pageblocks(np.zeros(3, dtype=np.uint8), np.zeros(4, dtype=np.int64))


def test_pageblocks_by_migratetype_counts_every_type():
    migratetype = np.array([1, 1, 0, 2, 1], dtype=np.uint8)
    assert pageblocks_by_migratetype(migratetype).tolist() == [1, 3, 1, 0, 0]


def test_free_pages_histogram_puts_fully_free_blocks_in_the_last_bin():
    counts, edges = free_pages_per_block_histogram(np.array([0, 0, 10, 511, 512, 512]), bins=4)
    assert edges.tolist() == [0, 128, 256, 384, 512]
    assert counts.tolist() == [3, 0, 0, 3]


def test_free_pages_histogram_takes_explicit_edges():
    counts, _ = free_pages_per_block_histogram(np.array([0, 1, 256, 512]), bins=[0, 1, 512, 513])
    assert counts.tolist() == [1, 2, 1]


def test_free_pages_histogram_rejects_more_free_pages_than_a_pageblock_holds():
    with pytest.raises(ValueError, match="within 0..512"):
        free_pages_per_block_histogram(np.array([0, 513]))


def test_cache_metrics_are_each_used_caches_counts_in_cache_order():
    """cache_metrics (``SlabCaches.sample``, compiled): for each cache with slabs or
    allocations, in cache order, its live objects, slabs, pages and occupancy; a cache
    never used is left out, and one whose objects were all freed is not."""
    from sim.buddy import Zone
    from sim.slab import SlabCaches

    caches = SlabCaches(Zone(1 << 14, cpus=2))
    a, unused, b, c = (caches.create(n, size) for n, size in
                       (("a", 192), ("unused", 64), ("b", 1024), ("c", 32)))
    oids = [a.alloc_id(i % 2) for i in range(300)] + [b.alloc_id(0) for _ in range(40)]
    for oid in oids[:120]:
        a.free(oid, 0)
    c.free(c.alloc_id(1), 1)
    expected = {}
    for cache in (a, b, c):
        name = cache.name
        expected[("slab_objects", name)] = cache.nr_live
        expected[("slab_slabs", name)] = cache.nr_slabs
        expected[("slab_pages", name)] = cache.nr_pages
        expected[("slab_occupancy", name)] = cache.occupancy()
    first = cache_metrics(caches)
    assert list(first.items()) == list(expected.items())
    assert first[("slab_objects", "a")] == 180 and first[("slab_objects", "c")] == 0
    assert unused.nr_slabs == 0 and ("slab_slabs", "unused") not in first
    b.alloc_id(1)
    again = cache_metrics(caches)
    assert again[("slab_objects", "b")] == 41 and list(again) == list(first)


def test_node_metrics_give_the_node_then_each_zones_values_under_its_name():
    """node_metrics of a node of three zones (a real machine's snapshots): the node's
    values, then every zone's own ``zone_metrics`` under ``<zone>/<key>`` (``<zone>``
    for a metric without a key), in that order, sample after sample (their keys are
    made once and kept)."""
    from sim.metrics import node_metrics, zone_metrics
    from sim.replay import build_replay

    snaps = Path(__file__).parent / "data" / "kmem-traces" / "tmpfs-churn-20k-keep10"
    zones = build_replay(slabinfo=snaps / "before.slabinfo",
                         buddyinfo=snaps / "before.buddyinfo",
                         pagetypeinfo=snaps / "before.pagetypeinfo",
                         zoneinfo=snaps / "before.zoneinfo").zones
    assert [name for name, _ in zones] == ["DMA", "DMA32", "Normal"]
    for step in range(3):
        if step:  # pages freed onto some CPUs' lists of the two larger zones
            for cpu, (_, zone) in enumerate(zones[1:], start=step):
                pfns = [zone.alloc(0, cpu=cpu % len(zone.pcp)) for _ in range(40)]
                for pfn in pfns[::2]:
                    zone.free(pfn, 0, cpu=cpu % len(zone.pcp))
        values = node_metrics(zones)
        # the node's sums, from each zone's own counts
        assert values[("pcp_pages", "")] == sum(z.pcp_pages for _, z in zones)
        for cpu in range(max(len(z.pcp) for _, z in zones)):
            assert values[("pcp_pages", f"cpu{cpu}")] == sum(
                z.pcp[cpu].count for _, z in zones if z.pcp_enabled and cpu < len(z.pcp))
        for i, name in enumerate(("Unmovable", "Movable", "Reclaimable")):
            assert values[("pageblocks", name)] == sum(z.pageblock_counts()[i]
                                                       for _, z in zones)
        assert values[("highatomic_pageblocks", "")] == sum(
            z.pageblock_counts()[MIGRATE_HIGHATOMIC] for _, z in zones)
        assert values[("watermark_boost", "")] == sum(z.watermark_boost for _, z in zones)
        for order in range(zones[0][1].max_order + 1):
            assert values[("nr_free", str(order))] == sum(z.nr_free[order] for _, z in zones)
        if step:
            assert values[("pcp_pages", "")] > 0
        own = {}
        for name, zone in zones:
            for (metric, key), value in zone_metrics(zone).items():
                own[(metric, f"{name}/{key}" if key else name)] = value
        keys = list(values)
        assert keys[len(keys) - len(own):] == list(own)
        assert all(values[k] == v for k, v in own.items())
        assert values[("free_pages", "")] == sum(z.nr_free_pages for _, z in zones)
        assert ("avail", "Normal/9") in values and ("free_pages", "DMA") in values
