"""Highatomic reserves against Linux 6.18 mm/page_alloc.c, driven directly: the zone
with the slow path's alloc_flags, and PageAllocator with a file LRU to reclaim from.

Followed: ``gfp_to_alloc_flags`` (ALLOC_HIGHATOMIC), ``rmqueue`` / ``rmqueue_buddy``,
``get_page_from_freelist`` (the reservation after an ALLOC_HIGHATOMIC allocation),
``reserve_highatomic_pageblock``, ``unreserve_highatomic_pageblock`` and its two callers
(``__alloc_pages_direct_reclaim``, ``should_reclaim_retry``),
``__zone_watermark_unusable_free`` and ``free_frozen_pages``' pcp list for a highatomic
pageblock.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import metrics
from sim.buddy import (
    ALLOC_HIGHATOMIC,
    ALLOC_KSWAPD,
    ALLOC_MIN_RESERVE,
    ALLOC_NO_WATERMARKS,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    OWNER_MOVABLE,
    OWNER_UNMOVABLE,
    WMARK_HIGH,
    Zone,
)
from sim.compaction import Compactor
from sim.config import ReclaimSection, load_config
from sim.ftrace import EV_PAGE_ALLOC, TraceEvent
from sim.gfp import __GFP_NOMEMALLOC, GFP_ATOMIC, GFP_KERNEL, GFP_NOWAIT
from sim.migratetype import (
    MIGRATE_HIGHATOMIC,
    MIGRATE_MOVABLE,
    MIGRATE_UNMOVABLE,
)
from sim.page_alloc import PageAllocator, gfp_to_alloc_flags
from sim.replay import Replayer
from sim.runner import run_machine
from sim.slab import SlabCaches
from sim.snapshot import synthesize_zone
from sim.vmscan import FileLru, Reclaim

U, M, H = MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_HIGHATOMIC
PB = 512
ATOMIC2 = gfp_to_alloc_flags(2, GFP_ATOMIC)  # the slow path's flags, order 2
NOWM = ALLOC_NO_WATERMARKS
# min_free_kbytes 256: min 64 pages, so that a test can hold the zone near empty.
SMALL_WMARKS = {"min_free_kbytes": 256}


def highatomic_blocks(zone: Zone) -> list[int]:
    return [b for b, mt in enumerate(zone.pageblock_types()) if mt == H]


def reserve(zone: Zone, pageblocks: int) -> list[tuple[int, int]]:
    """High-order atomic allocations until ``pageblocks`` pageblocks are reserved (with
    per-CPU lists off, the reserve is used up first each time, so each new one reserves
    another pageblock). Returns the blocks held."""
    held = []
    while zone.nr_reserved_highatomic < pageblocks * zone.pageblock_nr_pages:
        pfn = zone.alloc(2, U, 0, OWNER_UNMOVABLE, ATOMIC2)
        assert pfn is not None
        held.append((pfn, 2))
    return held


def reserve_two(zone: Zone) -> int:
    """Two reserved pageblocks, 0 and 1, every page free but the first allocation's at
    pfn 0: the two would otherwise merge into one free order-10 HIGHATOMIC block,
    which ``unreserve_highatomic_pageblock`` gives back whole. Returns pfn 0."""
    held = reserve(zone, 2)
    for pfn, order in held[1:]:
        zone.free(pfn, order)
    assert held[0][0] == 0 and highatomic_blocks(zone) == [0, 1]
    return held[0][0]


def fill(zone: Zone) -> list[int]:
    """Every page outside the reserve, at order 0 (no watermarks; without
    ALLOC_HIGHATOMIC, ALLOC_OOM or ALLOC_NON_BLOCK nothing comes from the reserve)."""
    pfns = []
    while (pfn := zone.alloc(0, M, 0, OWNER_MOVABLE, NOWM)) is not None:
        pfns.append(pfn)
    assert zone.nr_free_pages == zone.nr_free_highatomic
    return pfns


# --------------------------------------------------------------------------- gfp


def test_only_a_high_order_atomic_request_that_may_use_reserves_gets_alloc_highatomic():
    assert gfp_to_alloc_flags(2, GFP_ATOMIC) & ALLOC_HIGHATOMIC
    assert not gfp_to_alloc_flags(0, GFP_ATOMIC) & ALLOC_HIGHATOMIC
    assert not gfp_to_alloc_flags(2, GFP_NOWAIT) & ALLOC_HIGHATOMIC  # no __GFP_HIGH
    assert not gfp_to_alloc_flags(2, GFP_KERNEL) & ALLOC_HIGHATOMIC  # may reclaim
    # __GFP_NOMEMALLOC opts out of ALLOC_NON_BLOCK and the highatomic reserve alike.
    assert gfp_to_alloc_flags(2, GFP_ATOMIC | __GFP_NOMEMALLOC) == (
        ALLOC_WMARK_MIN | ALLOC_MIN_RESERVE | ALLOC_KSWAPD)


# --------------------------------------------------------------------------- reserving


def test_a_high_order_atomic_allocation_reserves_its_pageblock():
    zone = Zone(1 << 16, cpus=1, pcp=False)
    pfn = zone.alloc(2, U, 0, OWNER_UNMOVABLE, ATOMIC2)
    assert pfn is not None
    # __rmqueue claimed a MOVABLE order-10 block for UNMOVABLE; the pageblock of the
    # page then became HIGHATOMIC with its free pages, the other half stays UNMOVABLE.
    assert zone.pageblock_migratetype(pfn) == H
    assert zone.pageblock_migratetype(pfn ^ PB) == U
    assert zone.nr_reserved_highatomic == PB
    assert zone.nr_free_highatomic == PB - 4
    assert zone.stats.highatomic_reserved == 1
    assert zone.report()["nr_reserved_highatomic"] == PB
    assert metrics.zone_metrics(zone)[("highatomic_pageblocks", "")] == 1
    zone.check()


def test_the_next_atomic_allocation_uses_the_reserve_and_reserves_nothing_more():
    zone = Zone(1 << 16, cpus=1, pcp=False)
    first = zone.alloc(2, U, 0, OWNER_UNMOVABLE, ATOMIC2)
    second = zone.alloc(2, U, 0, OWNER_UNMOVABLE, ATOMIC2)
    # rmqueue_buddy: __rmqueue_smallest(MIGRATE_HIGHATOMIC) first; its pageblock is
    # HIGHATOMIC already, not mergeable, so nothing is reserved.
    assert second // PB == first // PB
    assert zone.nr_reserved_highatomic == PB and zone.stats.highatomic_reserved == 1
    zone.check()


@pytest.mark.parametrize(("nr_pages", "reserved_blocks"), [
    # 1 % = 1310 pages, aligned up to 1536: three pageblocks. (Before 6.5 the cap was
    # 1 % + a pageblock, 1822 pages: that would have let a fourth in.)
    (1 << 17, 3),
    # 1 % = 655 pages: ALIGN gives 1024, two pageblocks.
    (1 << 16, 2),
    # 1 % = 327 pages is less than a pageblock: no reserve at all.
    (1 << 15, 0),
])
def test_the_reserve_stops_at_about_one_percent_of_the_zone(nr_pages, reserved_blocks):
    zone = Zone(nr_pages, cpus=1, pcp=False)
    # Enough order-2 atomic allocations to use up four reserved pageblocks.
    for _ in range(4 * PB // 4 + 8):
        assert zone.alloc(2, U, 0, OWNER_UNMOVABLE, ATOMIC2) is not None
    assert zone.nr_reserved_highatomic == reserved_blocks * PB
    assert len(highatomic_blocks(zone)) == reserved_blocks
    assert zone.stats.highatomic_reserved == reserved_blocks
    zone.check()


def test_an_atomic_allocation_of_pageblock_order_or_more_reserves_all_its_pageblocks():
    zone = Zone(1 << 16, cpus=1, pcp=False)
    pfn = zone.alloc(10, U, 0, OWNER_UNMOVABLE, gfp_to_alloc_flags(10, GFP_ATOMIC))
    assert pfn is not None
    # change_pageblock_range over both pageblocks; nr_reserved_highatomic += 1 << order.
    assert highatomic_blocks(zone) == [pfn // PB, pfn // PB + 1]
    assert zone.nr_reserved_highatomic == 1024
    # At the cap (ALIGN(655, 512) = 1024) nothing more is reserved.
    zone.alloc(2, U, 0, OWNER_UNMOVABLE, ATOMIC2)
    assert zone.nr_reserved_highatomic == 1024
    zone.check()


def test_the_fast_path_never_reserves_only_the_slow_path_does():
    node = Node()
    zone = node.zone
    # Above the low watermark __alloc_pages' first attempt succeeds, at
    # ALLOC_WMARK_LOW without ALLOC_HIGHATOMIC: nothing reserved.
    pfn = node.alloc.alloc_pages(2, GFP_ATOMIC, 0, OWNER_UNMOVABLE)
    assert pfn is not None and zone.nr_reserved_highatomic == 0
    # Below it, the slow path's get_page_from_freelist has ALLOC_HIGHATOMIC.
    node.fill_page_cache(leave_free=zone.low_wmark - 1)
    pfn = node.alloc.alloc_pages(2, GFP_ATOMIC, 0, OWNER_UNMOVABLE)
    assert pfn is not None and node.alloc.stats.slowpath == 1
    assert zone.pageblock_migratetype(pfn) == H and zone.nr_reserved_highatomic == PB
    zone.check()


# --------------------------------------------------------------------------- using it


def checkerboard(zone: Zone, pfns: list[int]) -> None:
    """Free every other order-0 page: lots of free memory, nothing above order 0."""
    for pfn in pfns:
        if pfn % 2 == 0:
            zone.free(pfn, 0)


def test_a_later_atomic_allocation_is_served_from_the_reserve_when_the_lists_are_empty():
    zone = Zone(1 << 16, cpus=1, pcp=False, **SMALL_WMARKS)
    for pfn, order in reserve(zone, 1):
        zone.free(pfn, order)
    checkerboard(zone, fill(zone))
    assert zone.nr_free_pages - zone.nr_free_highatomic > zone.low_wmark
    assert all(zone.nr_free[o] == zone.nr_free_by_type()[H][o] for o in range(1, 11))
    # No order-2 block outside the reserve: a GFP_KERNEL request fails the
    # watermark's high-order check, a GFP_ATOMIC one may count the reserve's lists.
    assert zone.alloc(2, U, 0, None, gfp_to_alloc_flags(2, GFP_KERNEL)) is None
    pfn = zone.alloc(2, U, 0, None, ATOMIC2)
    assert pfn is not None and zone.pageblock_migratetype(pfn) == H
    zone.check()


def test_an_order_0_nonblocking_request_takes_from_the_reserve_only_when_all_else_failed():
    zone = Zone(1 << 16, cpus=1, pcp=False, min_free_kbytes=128)
    for pfn, order in reserve(zone, 1):
        zone.free(pfn, order)
    fill(zone)
    # Only the reserve is free. ALLOC_NON_BLOCK reaches into it after __rmqueue
    # failed ("failing now is worse than failing a high-order atomic allocation in
    # the future"); a plain GFP_KERNEL order-0 request may not.
    assert zone.alloc(0, U, 0, None, gfp_to_alloc_flags(0, GFP_KERNEL)) is None
    pfn = zone.alloc(0, U, 0, None, gfp_to_alloc_flags(0, GFP_NOWAIT))
    assert pfn is not None and zone.pageblock_migratetype(pfn) == H
    zone.check()


def test_ordinary_order_0_allocations_leave_the_reserve_alone():
    zone = Zone(1 << 16, cpus=1, **SMALL_WMARKS)
    for pfn, order in reserve(zone, 1):
        zone.free(pfn, order)
    zone.drain_all_pages()
    reserved = highatomic_blocks(zone)
    free_highatomic = zone.nr_free_highatomic
    assert free_highatomic == PB
    taken = []
    while (pfn := zone.alloc(0, U)) is not None:  # GFP_KERNEL's fast path
        taken.append(pfn)
    assert not any(pfn // PB in reserved for pfn in taken)
    assert zone.nr_free_highatomic == free_highatomic
    # The allocations stopped at the low watermark with the reserve not counted:
    # zone_watermark_fast subtracts nr_free_highatomic for a request without
    # ALLOC_RESERVES.
    assert zone.nr_free_pages - free_highatomic <= zone.low_wmark < zone.nr_free_pages
    zone.check()


def test_the_watermark_check_excludes_free_highatomic_pages_without_alloc_reserves():
    zone = Zone(1 << 16, cpus=1, pcp=False)
    for pfn, order in reserve(zone, 1):
        zone.free(pfn, order)
    free, highatomic = zone.nr_free_pages, zone.nr_free_highatomic
    assert highatomic == PB
    mark = free - highatomic  # what a request without ALLOC_RESERVES can use
    for check in (zone.zone_watermark_ok, zone.zone_watermark_fast):
        assert not check(0, mark, ALLOC_WMARK_MIN)
        assert check(0, mark - 1, ALLOC_WMARK_MIN)
        assert check(0, mark, ALLOC_WMARK_MIN | ALLOC_HIGHATOMIC)


def test_the_order_0_fast_path_counts_the_reserve_out_of_the_high_watermark():
    zone = Zone(1 << 16, cpus=1, **SMALL_WMARKS)
    [(atomic, order)] = reserve(zone, 1)
    zone.drain_all_pages()
    spare = [zone.alloc(0, M, 0, OWNER_MOVABLE, NOWM) for _ in range(32)]
    assert zone.alloc(0, M) is not None  # a pcp list to take from
    # Bring the zone, not counting the reserve, to its high watermark exactly: order-4
    # blocks from the buddy lists to below it, then order-0 pages freed straight to
    # the buddy lists. Taking them marked the zone below high; clear the flag, as
    # the free path would.
    high = zone.wmark_pages(WMARK_HIGH)
    while zone.nr_free_pages - zone.nr_free_highatomic > high - 16:
        assert zone.alloc(4, M, 0, OWNER_MOVABLE, NOWM) is not None
    while zone.nr_free_pages - zone.nr_free_highatomic < high:
        zone.free(spare.pop(), 0, to_tail=True)
    zone.zone_below_high = False
    # A page of the reserve comes back: NR_FREE_PAGES grows, what a request without
    # ALLOC_RESERVES may use does not. The unrolled fast path must not take it for
    # "above high": the general path runs and marks the zone below high.
    zone.free(atomic, order, to_tail=True)
    assert zone.nr_free_pages - zone.nr_free_highatomic == high < zone.nr_free_pages
    assert zone.alloc(0, M) is not None
    assert zone.zone_below_high
    zone.check()


# --------------------------------------------------------------------------- freeing


def test_freed_pages_of_a_reserved_pageblock_go_back_to_the_highatomic_lists():
    zone = Zone(1 << 16, cpus=1, pcp=False)
    pfn = zone.alloc(2, U, 0, OWNER_UNMOVABLE, ATOMIC2)
    zone.free(pfn, 2)
    # __free_one_page by the pageblock's type: the whole pageblock is one free
    # HIGHATOMIC block again, and it does not merge with its UNMOVABLE buddy.
    block = pfn & ~(PB - 1)
    assert zone.free_blocks(9, H) == [block]
    assert zone.nr_free_highatomic == PB
    assert zone.order_of(block ^ PB) == 9 and zone.nr_free[10] == 63
    zone.check()


def test_a_page_freed_from_a_reserved_pageblock_waits_on_the_movable_pcp_list():
    zone = Zone(1 << 16, cpus=1)
    pfn = zone.alloc(2, U, 0, OWNER_UNMOVABLE, ATOMIC2)
    assert zone.pageblock_migratetype(pfn) == H
    zone.free(pfn, 2)
    # free_frozen_pages: a migratetype >= MIGRATE_PCPTYPES goes on the MOVABLE list.
    assert pfn in zone.pcp[0].lists[3 * 2 + M]
    zone.drain_all_pages()
    # free_pcppages_bulk frees by the pageblock's type: back to HIGHATOMIC, merged with
    # the rest of the pageblock (the pcp's other order-2 blocks came from there too).
    block = pfn & ~(PB - 1)
    assert zone.free_blocks(9, H) == [block] and zone.nr_free_highatomic == PB
    zone.check()


# --------------------------------------------------------------------------- unreserving


def test_unreserve_without_force_keeps_the_last_pageblock():
    zone = Zone(1 << 16, cpus=1, pcp=False)
    for pfn, order in reserve(zone, 1):
        zone.free(pfn, order)
    assert not zone.unreserve_highatomic_pageblock(M, False)
    assert zone.nr_reserved_highatomic == PB and len(highatomic_blocks(zone)) == 1


def test_unreserve_gives_a_pageblock_back_to_the_requesting_migratetype():
    zone = Zone(1 << 16, cpus=1, pcp=False)
    reserve_two(zone)
    # Pageblock 0 holds free blocks of orders 2-8 (pfn 0 is held), pageblock 1 is one
    # free order-9 block. The first free HIGHATOMIC block, lowest order first, is the
    # order-2 block at pfn 4: pageblock 0 goes, with its free pages.
    assert zone.free_blocks(2, H) == [4]
    assert zone.unreserve_highatomic_pageblock(M, False)
    assert zone.pageblock_migratetype(0) == M and highatomic_blocks(zone) == [1]
    assert zone.nr_reserved_highatomic == PB and zone.nr_free_highatomic == PB
    assert zone.free_blocks(2, M)[-1] == 4  # move_freepages_block: to the list tail
    assert zone.stats.highatomic_unreserved == 1
    zone.check()
    # The last one goes only with force, as before an OOM.
    assert not zone.unreserve_highatomic_pageblock(M, False)
    assert zone.unreserve_highatomic_pageblock(U, True)
    assert zone.nr_reserved_highatomic == 0 and highatomic_blocks(zone) == []
    assert not zone.unreserve_highatomic_pageblock(U, True)  # nothing left
    zone.check()


def test_unreserve_needs_a_free_page_in_the_reserve():
    zone = Zone(1 << 16, cpus=1, pcp=False)
    reserve(zone, 1)
    while zone.nr_free_highatomic:  # served from the reserve, reserving nothing more
        zone.alloc(2, U, 0, OWNER_UNMOVABLE, ATOMIC2)
    assert not zone.unreserve_highatomic_pageblock(M, True)
    assert zone.nr_reserved_highatomic == PB


def test_unreserve_of_a_block_of_pageblock_order_or_more_retypes_all_its_pageblocks():
    zone = Zone(1 << 16, cpus=1, pcp=False)
    pfn = zone.alloc(10, U, 0, OWNER_UNMOVABLE, gfp_to_alloc_flags(10, GFP_ATOMIC))
    zone.free(pfn, 10)
    # (Two reserved pageblocks that are buddies merge into such a block too.)
    assert zone.free_blocks(10, H) == [pfn]
    assert zone.unreserve_highatomic_pageblock(M, False)  # 1024 reserved > a pageblock
    # size = max(pageblock_nr_pages, 1 << order): the whole reservation at once.
    assert zone.nr_reserved_highatomic == 0
    assert zone.pageblock_migratetype(pfn) == zone.pageblock_migratetype(pfn + PB) == M
    assert zone.free_blocks(10, M)[-1] == pfn  # move_to_free_list: the tail
    zone.check()


class Node:
    """A 256 MiB zone (1 % of it is two pageblocks) with small watermarks that no
    fallback boosts (there is no kswapd to take a boost off); its movable pages are
    page cache on the file LRU. No direct compaction."""

    def __init__(self, pcp: bool = False) -> None:
        nr_pages = 1 << 16
        self.zone = Zone(nr_pages, cpus=1, pcp=pcp, watermark_boost_factor=0,
                         **SMALL_WMARKS)
        self.lru = FileLru(lambda pfn, owner: self.zone.free(pfn, 0), nr_pages=nr_pages)
        self.reclaim = Reclaim(self.zone, self.lru, SlabCaches(self.zone), ReclaimSection())
        self.alloc = PageAllocator(self.zone, self.reclaim, Compactor(self.zone),
                                   compaction=False)

    def fill_page_cache(self, leave_free: int) -> None:
        while self.zone.nr_free_pages > leave_free:
            pfn = self.zone.alloc(0, M, 0, OWNER_MOVABLE, ALLOC_WMARK_LOW | NOWM)
            assert pfn is not None
            self.lru.add(pfn, 0)

    def fragmented_with_page_cache(self, lru_pages: int) -> None:
        """Everything outside the reserve allocated at order 0; ``lru_pages`` even pfns
        are page cache (reclaim frees them, never two buddies), 200 other even pfns are
        free, the rest is held: free memory above the watermarks, nothing above order 0
        outside the reserve."""
        pfns = [p for p in fill(self.zone) if p % 2 == 0]
        for pfn in pfns[:200]:
            self.zone.free(pfn, 0)
        for pfn in pfns[200:200 + lru_pages]:
            self.lru.add(pfn, 0)


def test_direct_reclaim_that_cannot_serve_the_order_takes_a_pageblock_from_the_reserve():
    node = Node()
    zone = node.zone
    reserve_two(zone)
    node.fragmented_with_page_cache(lru_pages=4096)
    # A GFP_KERNEL order-3 request: reclaim frees order-0 pages only, the retry
    # fails, and __alloc_pages_direct_reclaim calls unreserve_highatomic_pageblock(ac,
    # false) before draining and retrying: pageblock 0 becomes UNMOVABLE and serves.
    pfn = node.alloc.alloc_pages(3, GFP_KERNEL, 0, OWNER_UNMOVABLE)
    assert pfn is not None and pfn // PB == 0
    assert node.alloc.stats.direct_reclaim == 1
    assert zone.pageblock_migratetype(pfn) == U
    assert zone.nr_reserved_highatomic == PB and zone.stats.highatomic_unreserved == 1
    zone.check()


def test_before_giving_up_the_slow_path_takes_even_the_last_reserved_pageblock():
    node = Node()
    zone = node.zone
    for pfn, order in reserve(zone, 1):
        zone.free(pfn, order)
    node.fragmented_with_page_cache(lru_pages=64)
    # Direct reclaim keeps the last pageblock; once reclaim makes no progress,
    # should_reclaim_retry calls unreserve_highatomic_pageblock(ac, true) and the
    # slow path retries.
    pfn = node.alloc.alloc_pages(3, GFP_KERNEL, 0, OWNER_UNMOVABLE)
    assert pfn is not None and zone.pageblock_migratetype(pfn) == U
    assert len(node.lru) == 0  # reclaim ran dry first
    assert zone.nr_reserved_highatomic == 0 and zone.stats.highatomic_unreserved == 1
    zone.check()


def test_a_request_that_cannot_reclaim_never_unreserves():
    node = Node()
    zone = node.zone
    reserve_two(zone)
    node.fragmented_with_page_cache(lru_pages=4096)
    assert node.alloc.alloc_pages(3, GFP_NOWAIT, 0, OWNER_UNMOVABLE) is None
    assert zone.nr_reserved_highatomic == 2 * PB


# --------------------------------------------------------------------------- the engine

ATOMIC_UNDER_PRESSURE = """
name: atomic-under-pressure
seed: 1
duration: 2s
sample_every: 500ms
machine: {memory: 256MiB, cpus: 2}
workloads:
  - kind: anon
    size: 240MiB
    grow_rate: 256MiB
  - kind: kernel_alloc
    rate: 2000
    gfp: GFP
    orders: {0: 0.4, 1: 0.2, 2: 0.2, 3: 0.2}
    lifetime: {dist: exponential, mean: 500ms}
"""


@pytest.mark.parametrize("gfp", ["atomic", "kernel"])
def test_a_kernel_alloc_workload_of_atomic_high_orders_reserves_under_pressure(tmp_path, gfp):
    path = tmp_path / "atomic.yaml"
    path.write_text(ATOMIC_UNDER_PRESSURE.replace("GFP", gfp))
    config = load_config(path)
    result = run_machine(config, config.seed, "default")
    buddy = result.summary["buddy"]
    if gfp == "kernel":
        assert buddy["highatomic_reserved"] == 0
        assert max(result.get("highatomic_pageblocks")) == 0
        return
    # GFP_ATOMIC orders 1-3 reach the slow path once the anonymous memory presses
    # the zone below the low watermark, and reserve pageblocks there.
    assert buddy["highatomic_reserved"] > 0
    assert max(result.get("highatomic_pageblocks")) > 0


def test_a_traced_high_order_atomic_page_allocation_reserves_through_the_slow_path():
    node = Node()
    zone = node.zone
    node.fill_page_cache(leave_free=zone.low_wmark - 1)
    # What the trace workload wires up: the replay's page events go through
    # __alloc_pages (workloads/trace.py). An mm_page_alloc of order 2 with
    # GFP_ATOMIC and no slab signature is a page the replay allocates itself.
    replayer = Replayer(zone, SlabCaches(zone), page_allocator=node.alloc.alloc_pages,
                        page_free=node.alloc.free_pages)
    replayer.feed([TraceEvent(1.0, 0, EV_PAGE_ALLOC, "p", 0x5000, None, 0, 0, GFP_ATOMIC,
                              2, MIGRATE_UNMOVABLE, False)])
    replayer.run()
    assert replayer.stats.page_allocs == 1
    [(pfn, order)] = replayer.pages.values()
    assert order == 2 and zone.pageblock_migratetype(pfn) == H
    assert zone.nr_reserved_highatomic == PB
    zone.check()


# --------------------------------------------------------------------------- snapshots


def test_a_snapshots_highatomic_pageblocks_are_a_reserve():
    nr_free = [0] * 11
    nr_free[9] = 1
    free_by_type = [[0] * 11 for _ in range(5)]
    free_by_type[H][9] = 1
    zone, _ = synthesize_zone(nr_free, 128 * PB, free_by_type=free_by_type,
                              pageblock_counts=[10, 115, 1, 2, 0])
    assert zone.nr_reserved_highatomic == 2 * PB and zone.nr_free_highatomic == PB
    zone.check()


# --------------------------------------------------------------------------- properties


GFPS = {
    "atomic": GFP_ATOMIC,
    "nowait": GFP_NOWAIT,
    "kernel": GFP_KERNEL,
    "atomic-nomemalloc": GFP_ATOMIC | __GFP_NOMEMALLOC,
}
ops = st.lists(
    st.tuples(
        st.sampled_from(["alloc", "alloc", "alloc", "fast", "free", "free", "drain",
                         "unreserve"]),
        st.integers(0, 6),  # order
        st.sampled_from(sorted(GFPS)),
        st.sampled_from([U, M]),
        st.integers(0, 1 << 16),  # pick
    ),
    max_size=300,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pcp=st.booleans(), steps=ops)
def test_random_atomic_and_other_allocations_conserve_pages_and_the_reserve_count(pcp, steps):
    # 16-page pageblocks in 8192 pages: 1 % is 81 pages, up to six pageblocks reserved
    # (96 pages); orders 4-6 reserve several pageblocks at once.
    zone = Zone(8192, cpus=2, pcp=pcp, max_order=6, pageblock_order=4, min_free_kbytes=128)
    pb = zone.pageblock_nr_pages
    live: list[tuple[int, int]] = []
    for i, (op, order, gfp_name, mt, pick) in enumerate(steps):
        cpu = pick % 2
        if op == "alloc":
            flags = gfp_to_alloc_flags(order, GFPS[gfp_name])
            pfn = zone.alloc(order, mt, cpu, None, flags)
        elif op == "fast":
            pfn = zone.alloc(order, mt, cpu)
        elif op == "free" and live:
            pfn = None
            zone.free(*live.pop(pick % len(live)), cpu)
        elif op == "drain":
            pfn = None
            zone.drain_all_pages()
        elif op == "unreserve":
            pfn = None
            zone.unreserve_highatomic_pageblock(mt, bool(pick % 2))
        else:
            pfn = None
        if pfn is not None:
            live.append((pfn, order))
        held = sum(1 << o for _, o in live)
        assert zone.nr_free_pages + zone.pcp_pages + held == zone.nr_pages
        assert zone.nr_reserved_highatomic == len(highatomic_blocks(zone)) * pb
        assert zone.nr_reserved_highatomic <= 96 + (1 << 6)  # the cap, + one order-6
        if i % 25 == 0:
            zone.check()
    zone.check()
    for pfn, order in live:
        zone.free(pfn, order)
    zone.drain_all_pages()
    while zone.unreserve_highatomic_pageblock(M, True):
        pass
    assert zone.nr_free_pages == zone.nr_pages
    assert zone.nr_reserved_highatomic == 0 == zone.nr_free_highatomic
    zone.check()
