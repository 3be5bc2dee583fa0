"""sim.snapshot builds the initial state from real /proc snapshots: a zone with exactly
buddyinfo's (and pagetypeinfo's) free lists, and caches with exactly slabinfo's rows."""

from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sim.buddy import OWNER_MOVABLE, OWNER_RECLAIMABLE, OWNER_SLAB, OWNER_UNMOVABLE, Zone
from sim.errors import FragsimError
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE
from sim.procfs import parse_buddyinfo, parse_pagetypeinfo, parse_slabinfo
from sim.slab import SlabCaches
from sim.snapshot import (
    pick_zone,
    plan_layout,
    populate_from_slabinfo,
    synthesize_zone,
    zone_from_buddyinfo,
)

DATA = Path(__file__).parent / "data"
TMPFS = DATA / "kmem-traces" / "tmpfs-churn-20k-keep10"
GUPTA = DATA / "compaction" / "gupta-12g-keep1of4"


def snapshot(folder: Path, stem: str, zone: str | None = None):
    buddy = parse_buddyinfo((folder / f"{stem}.buddyinfo").read_text())
    pt = parse_pagetypeinfo((folder / f"{stem}.pagetypeinfo").read_text())
    return pick_zone(buddy, pt, zone)


def no_free_buddies(zone: Zone) -> None:
    """The kernel's invariant: a free block's buddy is never a free block of its order."""
    free = {(pfn, order) for order in range(zone.max_order + 1)
            for mt in range(5) for pfn in zone.free_blocks(order, mt)}
    for pfn, order in free:
        if order < zone.max_order:
            assert (pfn ^ (1 << order), order) not in free, (pfn, order)


def test_normal_zone_of_the_tmpfs_snapshot_is_exact():
    snap = snapshot(TMPFS, "before")
    assert snap.name == "Normal"
    zone = zone_from_buddyinfo(snap.nr_free, free_by_type=snap.free_by_type,
                               pageblock_counts=snap.pageblock_counts)
    zone.check()
    assert zone.nr_pages == 256 * 512  # the pageblocks pagetypeinfo counts
    assert list(zone.nr_free) == snap.nr_free
    assert zone.nr_free_by_type() == snap.free_by_type
    assert zone.pageblock_counts() == snap.pageblock_counts
    assert zone.pcp_pages == 0
    no_free_buddies(zone)
    # Filler is owned by pageblock type.
    state, owner = zone.page_state_arrays()
    for pfn in range(0, zone.nr_pages, 512):
        if zone.is_allocated(pfn):
            want = {MIGRATE_UNMOVABLE: OWNER_UNMOVABLE, MIGRATE_MOVABLE: OWNER_MOVABLE,
                    MIGRATE_RECLAIMABLE: OWNER_RECLAIMABLE}[zone.pageblock_migratetype(pfn)]
            assert owner[pfn] == want


def test_capped_pagetypeinfo_counts_are_derived_and_the_zone_is_exact():
    # 2-freed: the Normal zone's Movable order-0 and order-1 lists print ">100000".
    snap = snapshot(GUPTA, "2-freed")
    assert snap.free_by_type[MIGRATE_MOVABLE][0] is None
    zone = zone_from_buddyinfo(snap.nr_free, free_by_type=snap.free_by_type,
                               pageblock_counts=snap.pageblock_counts)
    assert list(zone.nr_free) == snap.nr_free == [784753, 784054, 75, 35, 17, 6, 4, 1, 6, 1, 21]
    by_type = zone.nr_free_by_type()
    assert by_type[MIGRATE_MOVABLE][:2] == [784753 - 384, 784054 - 135]
    assert by_type[MIGRATE_RECLAIMABLE] == snap.free_by_type[MIGRATE_RECLAIMABLE]
    assert zone.pageblock_counts()[:3] == [109, 6211, 16]


def test_without_pagetypeinfo_every_free_block_is_movable():
    nr_free = [5, 3, 0, 1, 0, 0, 0, 0, 0, 1, 2]
    zone = zone_from_buddyinfo(nr_free, 4096)
    zone.check()
    assert list(zone.nr_free) == nr_free
    assert zone.nr_free_by_type()[MIGRATE_MOVABLE] == nr_free
    no_free_buddies(zone)


def test_a_layout_never_leaves_two_free_buddies():
    # Many small free blocks in few pageblocks: every one needs an allocated buddy.
    layout = plan_layout(2048, [[0] * 11, [300, 100, 20, 5, 0, 0, 0, 0, 0, 0, 0]],
                         [MIGRATE_MOVABLE] * 4)
    free = {(pfn, order) for pfn, order, _ in layout.free_blocks}
    for pfn, order in free:
        assert (pfn ^ (1 << order), order) not in free
    covered = sorted([(p, o) for p, o, _ in layout.free_blocks] + layout.filler_blocks)
    pfn = 0
    for start, order in covered:
        assert start == pfn and start % (1 << order) == 0
        pfn += 1 << order
    assert pfn == 2048


def test_free_blocks_that_cannot_fit_are_a_one_line_error():
    with pytest.raises(FragsimError, match="do not fit") as err:
        zone_from_buddyinfo([0] * 10 + [8], 4096)
    assert "\n" not in str(err.value)
    with pytest.raises(FragsimError, match="Unmovable"):
        zone_from_buddyinfo([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 4096,
                            free_by_type=[[0] * 10 + [1], [0] * 11, [0] * 11, [0] * 11,
                                          [0] * 11],
                            pageblock_counts=[1, 7, 0, 0, 0])


def test_slabinfo_population_reproduces_every_row_and_leaves_the_free_lists_alone():
    snap = snapshot(TMPFS, "before")
    zone, filler = synthesize_zone(snap.nr_free, free_by_type=snap.free_by_type,
                                   pageblock_counts=snap.pageblock_counts)
    caches = SlabCaches(zone)
    entries = parse_slabinfo((TMPFS / "before.slabinfo").read_text())
    population = populate_from_slabinfo(caches, entries, "even", filler=filler)
    filler.finish()
    assert list(zone.nr_free) == snap.nr_free  # slab pages came out of the filler
    assert filler.fallbacks == 0 and filler.from_free_lists == 0
    zone.check()
    caches.check()
    for want, got in zip(entries, caches.slabinfo_entries(), strict=True):
        assert (got.name, got.active_objs, got.num_objs, got.num_slabs) == (
            want.name, want.active_objs, want.num_objs, want.num_slabs)
    assert population.count("dentry") == 9240 and population.count("shmem_inode_cache") == 189
    dentry = caches["dentry"]
    # Slab pages take the cache's page type; dentry slabs sit in RECLAIMABLE pageblocks.
    for slab in dentry.slabs():
        assert zone.owner_of(slab.pfn) == OWNER_SLAB + dentry.cache_id
        assert zone.pageblock_migratetype(slab.pfn) == MIGRATE_RECLAIMABLE


def test_even_occupancy_spreads_free_slots_and_packed_gathers_them():
    zone = Zone(1 << 14)
    entry = parse_slabinfo(
        "slabinfo - version: 2.1\n"
        "anon_vma_chain       509    640     64   64    1 : tunables    0    0    0 : "
        "slabdata     10     10      0\n")
    caches = SlabCaches(zone)
    populate_from_slabinfo(caches, entry, "even")
    inuse = sorted(s.inuse for s in caches["anon_vma_chain"].slabs())
    assert inuse == [50] + [51] * 9  # 131 free slots: 14 in one slab, 13 in the others
    packed = SlabCaches(Zone(1 << 14))
    populate_from_slabinfo(packed, entry, "packed")
    inuse = sorted(s.inuse for s in packed["anon_vma_chain"].slabs())
    # 131 free slots: two empty slabs (kept: nr_partial < min_partial) and one with 3 free.
    assert inuse == [0, 0, 61] + [64] * 7


def test_bad_slabinfo_is_a_one_line_error(tmp_path):
    with pytest.raises(FragsimError, match="version 2.1") as err:
        parse_slabinfo("slabinfo - version: 2.0\nfoo 1 1 1 1 1\n", "old.slabinfo")
    assert "\n" not in str(err.value)
    zone = Zone(1 << 12)
    bad = parse_slabinfo("slabinfo - version: 2.1\n"
                         "x 9 8 64 64 1 : tunables 0 0 0 : slabdata 1 1 0\n")
    with pytest.raises(FragsimError, match="active_objs <= num_objs"):
        populate_from_slabinfo(SlabCaches(zone), bad)
    with pytest.raises(FragsimError, match="occupancy"):
        populate_from_slabinfo(SlabCaches(zone), [], "sparse")


ORDER_COUNTS = st.tuples(*(st.integers(0, max(1, 64 >> o)) for o in range(11)))


@settings(max_examples=40, deadline=None)
@given(ORDER_COUNTS, st.integers(2, 16))
def test_any_buddyinfo_that_fits_gives_exactly_its_free_lists(counts, blocks):
    nr_free = list(counts)
    nr_pages = blocks * 1024
    nr_free[10] = min(nr_free[10], blocks - 1)
    free_pages = sum(n << o for o, n in enumerate(nr_free))
    # Every free block below the largest order needs an allocated page in its buddy.
    assume(free_pages + sum(nr_free[:10]) <= nr_pages)
    try:
        zone = zone_from_buddyinfo(nr_free, nr_pages)
    except FragsimError:
        return  # a layout this planner cannot find is reported, never wrong
    zone.check()
    assert list(zone.nr_free) == nr_free
    no_free_buddies(zone)
