"""The file LRU: age order, second chance, eviction through the owner, migration."""

from sim.gfp import (
    __GFP_DIRECT_RECLAIM,
    __GFP_RECLAIMABLE,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
    GFP_TRANSHUGE,
    GFP_TRANSHUGE_LIGHT,
    gfp_migratetype,
    parse_gfp,
)
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE
from sim.vmscan import FileLru


def make_lru():
    evicted = []
    lru = FileLru(lambda pfn, owner: evicted.append((pfn, owner)))
    for pfn in range(10):
        lru.add(pfn, owner=pfn % 3)
    return lru, evicted


def test_shrink_evicts_oldest_first_through_the_owner():
    lru, evicted = make_lru()
    assert lru.shrink(3) == 3
    assert evicted == [(0, 0), (1, 1), (2, 2)]
    assert len(lru) == 7 and 0 not in lru


def test_referenced_pages_get_a_second_chance():
    lru, evicted = make_lru()
    lru.mark_accessed(0)
    lru.mark_accessed(1)
    assert lru.shrink(2) == 2
    assert [pfn for pfn, _ in evicted] == [2, 3]
    assert lru.stats.rotated == 2
    lru.shrink(8)
    assert [pfn for pfn, _ in evicted][-2:] == [0, 1]  # rotated to the newest end


def test_migrated_page_keeps_its_owner_under_the_new_pfn():
    lru, evicted = make_lru()
    lru.migrate(0, 100)
    assert 0 not in lru and 100 in lru
    lru.shrink(10)
    assert evicted[-1] == (100, 0)


def test_scan_limit_stops_a_list_of_referenced_pages():
    lru, evicted = make_lru()
    for pfn in range(10):
        lru.mark_accessed(pfn)
    assert lru.shrink(5, max_scan=10) == 0
    assert lru.shrink(5) == 5


def test_gfp_strings_from_the_real_trace_parse():
    slub = parse_gfp("GFP_KERNEL|__GFP_RECLAIMABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP")
    assert slub & __GFP_RECLAIMABLE and gfp_migratetype(slub) == MIGRATE_RECLAIMABLE
    stripped = parse_gfp("__GFP_IO|__GFP_FS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC")
    assert not stripped & __GFP_DIRECT_RECLAIM and gfp_migratetype(stripped) == MIGRATE_UNMOVABLE
    assert gfp_migratetype(parse_gfp("GFP_HIGHUSER_MOVABLE|__GFP_COMP")) == MIGRATE_MOVABLE
    assert parse_gfp("GFP_KERNEL") == GFP_KERNEL and parse_gfp("0x0") == 0
    assert not GFP_TRANSHUGE_LIGHT & __GFP_DIRECT_RECLAIM and GFP_TRANSHUGE & __GFP_DIRECT_RECLAIM
    assert gfp_migratetype(GFP_HIGHUSER_MOVABLE) == MIGRATE_MOVABLE
