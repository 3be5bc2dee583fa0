"""Nodes and zones (sim/mmzone.py): x86-64 sizing, the kernel's per-zone watermarks and
lowmem_reserve against real 6.18.44 zoneinfo, and the zonelist walk of
get_page_from_freelist with ALLOC_NOFRAGMENT and lowmem_reserve."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.buddy import (
    ALLOC_KSWAPD,
    ALLOC_NO_WATERMARKS,
    ALLOC_NOFRAGMENT,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    WMARK_HIGH,
    Zone,
)
from sim.cli import main
from sim.compaction import Compactor, CompactResult, NodeCompactor
from sim.config import ReclaimSection, validate_config
from sim.errors import FragsimError
from sim.gfp import (
    GFP_DMA,
    GFP_DMA32,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
    GFP_NOWAIT,
    GFP_USER,
    GFPF_NORETRY,
    GFPF_NOWARN,
)
from sim.metrics import fragmentation_score_node
from sim.migratetype import MIGRATE_MOVABLE as M
from sim.migratetype import MIGRATE_UNMOVABLE as U
from sim.mmzone import (
    MAX_NR_ZONES,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_MOVABLE,
    ZONE_NAMES,
    ZONE_NORMAL,
    Node,
    ZoneSpan,
    explicit_zone_spans,
    gfp_zone,
    node_min_free_kbytes,
    setup_per_zone_lowmem_reserve,
    setup_per_zone_wmarks,
    x86_64_zone_spans,
    zone_spans_for,
)
from sim.page_alloc import PageAllocator
from sim.procfs import (
    buddyinfo_of,
    format_buddyinfo,
    format_zoneinfo_zone,
    parse_buddyinfo,
    parse_pagetypeinfo,
    parse_zoneinfo,
)
from sim.slab import SlabCaches
from sim.snapshot import node_from_snapshots
from sim.vmscan import FileLru, Reclaim, ScanControl

DATA = Path(__file__).parent / "data"
ZONEINFOS = [
    "compaction/gupta-12g-keep1of4/zoneinfo-after-run",
    "kmem-traces/tmpfs-churn-20k-keep10/before.zoneinfo",
    "kmem-traces/tmpfs-churn-20k-keep10/after.zoneinfo",
]
MIB = 1 << 20


def real_zones(name):
    zones = parse_zoneinfo((DATA / name).read_text(), name)
    assert [z.zone for z in zones] == list(ZONE_NAMES)
    return zones


def managed_of(zones):
    return [z.managed for z in zones]


# --------------------------------------------------------------------------- sizing


def test_a_256_mib_machine_is_dma_and_dma32_without_normal():
    spans = x86_64_zone_spans(256 * MIB // 4096)
    assert [(s.name, s.start_pfn, s.spanned_pages) for s in spans] == [
        ("DMA", 0, 4096), ("DMA32", 4096, 65536 - 4096)]


def test_a_16_gib_machine_has_dma_dma32_and_normal_at_the_x86_boundaries():
    spans = x86_64_zone_spans(16 << 30 >> 12)
    assert [(s.name, s.start_pfn, s.spanned_pages) for s in spans] == [
        ("DMA", 0, 4096), ("DMA32", 4096, (1 << 20) - 4096),
        ("Normal", 1 << 20, (16 << 18) - (1 << 20))]


def test_real_zone_starts_are_the_x86_boundaries_the_model_uses():
    """The real DMA32 and Normal start where x86_64_zone_spans starts them; DMA starts
    at pfn 1 (pfn 0 is never given to the buddy allocator), the model's at 0."""
    real = {z.zone: z.start_pfn for z in real_zones(ZONEINFOS[0]) if z.start_pfn is not None}
    model = {s.name: s.start_pfn for s in x86_64_zone_spans(16 << 30 >> 12)}
    assert real["DMA32"] == model["DMA32"] and real["Normal"] == model["Normal"]
    assert real["DMA"] == model["DMA"] + 1


def test_explicit_zone_sizes_start_each_zone_on_a_max_order_boundary():
    spans = explicit_zone_spans([("DMA", 4000), ("DMA32", 8192), ("Normal", 5000)])
    assert [(s.start_pfn, s.spanned_pages) for s in spans] == [
        (0, 4000), (4096, 8192), (12288, 5000)]
    with pytest.raises(ValueError, match="in the order"):
        explicit_zone_spans([("Normal", 4096), ("DMA32", 4096)])
    with pytest.raises(ValueError, match="zone name"):
        explicit_zone_spans([("HighMem", 4096)])


@pytest.mark.parametrize("gfp, zone", [
    (GFP_KERNEL, ZONE_NORMAL), (GFP_USER, ZONE_NORMAL), (GFP_DMA, ZONE_DMA),
    (GFP_DMA32, ZONE_DMA32), (GFP_HIGHUSER_MOVABLE, ZONE_MOVABLE)])
def test_gfp_zone_is_x86_64s_gfp_zone_table(gfp, zone):
    assert gfp_zone(gfp) == zone


# --------------------------------------------------------------------------- real zoneinfo


@pytest.mark.parametrize("name", ZONEINFOS)
def test_lowmem_reserve_is_the_real_zoneinfos_protection(name):
    zones = real_zones(name)
    reserve = setup_per_zone_lowmem_reserve(managed_of(zones))
    assert [z.protection for z in zones] == reserve


@pytest.mark.parametrize("name", ZONEINFOS)
def test_min_free_kbytes_and_every_zones_watermarks_are_the_real_ones(name):
    """init_per_zone_wmark_min with THP's raise (3 populated zones: 16 896 pages), then
    __setup_per_zone_wmarks shares it by managed pages; Movable (empty) gets
    SWAP_CLUSTER_MAX."""
    zones = real_zones(name)
    managed = managed_of(zones)
    min_free_kbytes = node_min_free_kbytes(managed, thp=True, pageblock_order=9)
    assert min_free_kbytes == 512 * 3 * 11 * 4
    marks = setup_per_zone_wmarks(min_free_kbytes, managed)
    for z, (wmin, gap) in zip(zones[:ZONE_MOVABLE + 1], marks, strict=False):
        assert (z.min, z.low, z.high, z.promo) == (
            wmin, wmin + gap, wmin + 2 * gap, wmin + 3 * gap), z.zone


@pytest.mark.parametrize("name", ZONEINFOS[:2])
def test_a_node_of_the_real_managed_sizes_has_the_real_watermarks_and_pagesets(name):
    zones = real_zones(name)
    spans = [ZoneSpan(i, z.start_pfn - (i == ZONE_DMA), z.managed, z.managed)
             for i, z in enumerate(zones) if z.managed]
    node = Node(spans, cpus=len(zones[ZONE_NORMAL].pcp))
    assert node.min_free_kbytes == 67584
    for z in zones:
        zone = node.node_zones[ZONE_NAMES.index(z.zone)]
        if zone is None:
            assert not z.managed
            continue
        assert (zone.min_wmark, zone.low_wmark, zone.high_wmark, zone.promo_wmark) == (
            z.min, z.low, z.high, z.promo)
        assert zone.lowmem_reserve == z.protection
        for pcp, cpu in zip(zone.pcp, z.pcp, strict=True):
            assert (pcp.batch, pcp.high_min, pcp.high_max) == (
                cpu["batch"], cpu["high_min"], cpu["high_max"])


def test_lowmem_reserve_is_cleared_for_a_zone_without_managed_pages_or_ratio():
    managed = [0, 1000, 5120, 0, 0]
    reserve = setup_per_zone_lowmem_reserve(managed)
    assert reserve[ZONE_DMA] == [0] * MAX_NR_ZONES
    assert reserve[ZONE_DMA32] == [0, 0, 20, 20, 20]
    assert reserve[ZONE_NORMAL] == [0, 0, 0, 0, 0]  # Movable has no managed pages
    assert setup_per_zone_lowmem_reserve(managed, (256, 0, 32, 0, 0))[ZONE_DMA32] == [0] * 5


# --------------------------------------------------------------------------- the zonelist


FAST = ALLOC_WMARK_LOW | ALLOC_KSWAPD


def small_node(**kwargs) -> Node:
    """DMA 4096, DMA32 8192 and Normal 8192 pages; no per-CPU lists, so that every
    page is on a buddy list."""
    return Node(explicit_zone_spans([("DMA", 4096), ("DMA32", 8192), ("Normal", 8192)]),
                cpus=1, pcp=False, **kwargs)


def fill(zone: Zone, keep_free: int, mt: int = M) -> list[int]:
    pfns = []
    while zone.nr_free_pages > keep_free:
        pfn = zone.alloc(0, mt, alloc_flags=ALLOC_NO_WATERMARKS)
        assert pfn is not None
        pfns.append(pfn)
    return pfns


def one_movable_page_in_every_pageblock(zone: Zone) -> None:
    """Every pageblock MOVABLE with one allocated page: no free block of pageblock order
    left, yet plenty of free pages."""
    pfns = fill(zone, 0)
    for pfn in pfns:
        if pfn % zone.pageblock_nr_pages:
            zone.free(pfn, 0)
    assert max(o for o, n in enumerate(zone.nr_free) if n) < zone.pageblock_order


def test_the_zonelist_is_normal_dma32_dma_and_node_pfns_are_unique():
    node = small_node()
    assert [z.zone_idx for z in node.zonelist] == [ZONE_NORMAL, ZONE_DMA32, ZONE_DMA]
    assert node.nofragment and node.alloc_flags_nofragment(ZONE_MOVABLE) == ALLOC_NOFRAGMENT
    assert node.alloc_flags_nofragment(ZONE_DMA32) == 0
    seen = set()
    while (pfn := node.get_page_from_freelist(0, M, alloc_flags=ALLOC_NO_WATERMARKS)) is not None:
        assert pfn not in seen and node.page_zone(pfn).zone_start_pfn <= pfn
        seen.add(pfn)
    assert seen == set(range(4096 + 8192 + 8192))
    for pfn in seen:
        node.free(pfn, 0)
    node.check()
    assert node.nr_free_pages == node.nr_pages


def test_an_allocation_for_normal_tries_dma32_whole_pageblocks_before_fragmenting_normal():
    """ALLOC_NOFRAGMENT: Normal has free pages but only in MOVABLE pageblocks below
    pageblock order, so an unmovable request would have to fall back inside Normal; the
    first pass instead claims a whole free pageblock of DMA32."""
    node = small_node()
    normal, dma32 = node.node_zones[ZONE_NORMAL], node.node_zones[ZONE_DMA32]
    one_movable_page_in_every_pageblock(normal)
    flags = FAST | node.alloc_flags_nofragment(ZONE_NORMAL)
    pfn = node.get_page_from_freelist(0, U, alloc_flags=flags, highest_zoneidx=ZONE_NORMAL)
    assert node.page_zone(pfn) is dma32
    assert normal.stats.extfrag_claim == normal.stats.extfrag_steal == 0
    assert dma32.pageblock_migratetype(pfn - dma32.zone_start_pfn) == U
    # Without the flag (the single-zone behaviour) Normal falls back in place.
    pfn = node.get_page_from_freelist(0, U, alloc_flags=FAST, highest_zoneidx=ZONE_NORMAL)
    assert node.page_zone(pfn) is normal and normal.stats.extfrag_claim == 1


def test_the_walk_never_takes_a_lower_zone_below_its_lowmem_reserve():
    """DMA32 is usable by a Normal request only above low + lowmem_reserve[Normal]; at
    exactly that many free pages the walk goes on (DMA is full) and retries without
    ALLOC_NOFRAGMENT in Normal. A DMA32 request has no reserve to keep there."""
    node = small_node()
    normal, dma32, dma = (node.node_zones[i] for i in (ZONE_NORMAL, ZONE_DMA32, ZONE_DMA))
    one_movable_page_in_every_pageblock(normal)
    fill(dma, 0)
    reserve = dma32.lowmem_reserve[ZONE_NORMAL]
    assert reserve == 8192 // 256
    fill(dma32, dma32.low_wmark + reserve + 1)
    flags = FAST | node.alloc_flags_nofragment(ZONE_NORMAL)

    pfn = node.get_page_from_freelist(0, U, alloc_flags=flags, highest_zoneidx=ZONE_NORMAL)
    assert node.page_zone(pfn) is dma32  # one page above the reserve: allowed
    assert dma32.nr_free_pages == dma32.low_wmark + reserve
    pfn = node.get_page_from_freelist(0, U, alloc_flags=flags, highest_zoneidx=ZONE_NORMAL)
    assert node.page_zone(pfn) is normal and normal.stats.extfrag_claim == 1
    assert dma32.nr_free_pages == dma32.low_wmark + reserve
    pfn = node.get_page_from_freelist(0, U, alloc_flags=flags, highest_zoneidx=ZONE_DMA32)
    assert node.page_zone(pfn) is dma32


def test_the_single_zone_what_if_has_no_nofragment_pass():
    node = Node(explicit_zone_spans([("Normal", 8192)]), cpus=1)
    assert not node.nofragment and node.alloc_flags_nofragment(ZONE_NORMAL) == 0
    zone = node.node_zones[ZONE_NORMAL]
    assert zone.lowmem_reserve == [0] * MAX_NR_ZONES
    alone = Zone(8192, cpus=1)
    assert (zone.min_wmark, zone.low_wmark, zone.high_wmark) == (
        alone.min_wmark, alone.low_wmark, alone.high_wmark)


# --------------------------------------------------------------------------- __alloc_pages


class NodeAllocator:
    """A PageAllocator over ``small_node``'s zonelist, with an empty file LRU (no
    reclaim progress) and a compactor per zone."""

    def __init__(self, batched: bool = True, pcp: bool = False) -> None:
        self.node = Node(explicit_zone_spans([("DMA", 4096), ("DMA32", 8192),
                                              ("Normal", 8192)]), cpus=2, pcp=pcp)
        normal = self.node.node_zones[ZONE_NORMAL]
        lru = FileLru(lambda pfn, owner: self.node.free(pfn, 0),
                      nr_pages=self.node.node_spanned_pages)
        reclaim = Reclaim(normal, lru, SlabCaches(normal), ReclaimSection())
        compactors = {z.zone_idx: Compactor(z) for z in self.node.zonelist}
        self.alloc = PageAllocator(normal, reclaim, compactors[ZONE_NORMAL], batched=batched,
                                   node=self.node, compactors=compactors)


def test_alloc_pages_for_normal_takes_dma32_under_nofragment_and_gfp_dma32_never_normal():
    na = NodeAllocator()
    node = na.node
    normal, dma32, dma = (node.node_zones[i] for i in (ZONE_NORMAL, ZONE_DMA32, ZONE_DMA))
    one_movable_page_in_every_pageblock(normal)
    pfn = na.alloc.alloc_pages(0, GFP_KERNEL, 0)
    assert node.page_zone(pfn) is dma32 and normal.stats.extfrag_claim == 0
    na.alloc.free_pages(pfn, 0, 0)
    fill(dma32, 0)
    fill(dma, 0)
    assert na.alloc.alloc_pages(0, GFP_DMA32 | GFP_NOWAIT, 0) is None
    assert na.alloc.alloc_pages(0, GFP_DMA | GFP_NOWAIT, 0) is None
    pfn = na.alloc.alloc_pages(0, GFP_NOWAIT, 0)
    assert node.page_zone(pfn) is normal  # the retry without ALLOC_NOFRAGMENT


def test_node_batches_equal_page_by_page_allocation_across_zones():
    """alloc_pages_batch over the zonelist (the preferred zone's per-CPU batch, the rest
    of the walk for each page it refuses) gives the pfns and zone states of one
    alloc_pages call after another."""
    runs = []
    for batched in (True, False):
        na = NodeAllocator(batched=batched, pcp=True)
        draws = iter(range(1 << 20))

        def cpu(draws=draws) -> int:
            return next(draws) % 2

        pfns: list[int] = []
        while len(pfns) < 12000:
            refused = na.alloc.alloc_pages_batch(12000 - len(pfns), GFP_HIGHUSER_MOVABLE,
                                                 cpu, None, pfns)
            if refused is not None:
                pfn = na.alloc.alloc_pages_refused(0, GFP_HIGHUSER_MOVABLE, *refused)
                if pfn is None:
                    break
                pfns.append(pfn)
        zones = [(z.nr_free, z.nr_free_by_type(), z.pcp_pages) for z in na.node.zonelist]
        runs.append((pfns, zones))
        assert {na.node.page_zone(p).zone_idx for p in pfns} == {ZONE_NORMAL, ZONE_DMA32}
        na.alloc.free_pages_batch(pfns, 0, lambda: 0)
        na.node.check()
    assert runs[0] == runs[1]


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10), st.sampled_from([M, U]),
                              st.integers(0, 10**6)), min_size=5, max_size=150),
       seed=st.integers(0, 2**32))
def test_zones_sharing_their_nodes_links_keep_the_lists_of_zones_of_their_own(ops, seed):
    """A node of several zones keeps their free lists' links in one pair of vectors by
    node pfn (``page_links``), whose words at an allocated pfn belong to the page's
    holder (the file systems' slots, the LRU's positions). Zones of the same sizes
    with links of their own, given the same allocations and frees, keep the same lists
    in the same order, whatever is written at the pfns allocated."""
    sizes = [("DMA", 4096), ("DMA32", 8192), ("Normal", 8192)]
    node = Node(explicit_zone_spans(sizes), cpus=1, pcp=False)
    by_start = sorted(node.zonelist, key=lambda z: z.zone_start_pfn)
    alone = [Zone(n, cpus=1, pcp=False) for _, n in sizes]
    nxt, prv = node.page_links()
    dma32 = by_start[1]
    head = dma32.free_blocks(10, M)[0]
    assert nxt[dma32.zone_start_pfn + head] == dma32.free_list_link(head)
    held: list[tuple[int, int, int]] = []  # (zone, local pfn, order)
    junk = random.Random(seed)
    for z, order, mt, pick in ops:
        if held and pick % 3 == 0:
            z, pfn, order = held.pop(pick % len(held))
            by_start[z].free(pfn, order)
            alone[z].free(pfn, order)
        else:
            got = by_start[z].alloc(order, mt, alloc_flags=ALLOC_NO_WATERMARKS)
            assert got == alone[z].alloc(order, mt, alloc_flags=ALLOC_NO_WATERMARKS)
            if got is not None:
                held.append((z, got, order))
        for z, pfn, order in held:  # the holder's words at every page of its block
            start = by_start[z].zone_start_pfn
            for p in range(pfn, pfn + (1 << order)):
                nxt[start + p] = junk.randrange(-1, 1 << 20)
                prv[start + p] = junk.randrange(-1, 1 << 20)
            assert by_start[z].free_list_links()[1][start + pfn] == prv[start + pfn]  # one store
        for shared, own in zip(by_start, alone, strict=True):
            for o in range(shared.max_order + 1):
                for m in (M, U):
                    assert shared.free_blocks(o, m) == own.free_blocks(o, m)
                    assert list(shared.free_list_iter(o, m, reverse=True)) == \
                        list(own.free_list_iter(o, m, reverse=True))
    node.check()


# --------------------------------------------------------------------------- kswapd, kcompactd


def node_reclaim(node: Node, wakes: list[int] | None = None) -> Reclaim:
    normal = node.node_zones[ZONE_NORMAL]
    lru = FileLru(lambda pfn, owner: node.free(pfn, 0), nr_pages=node.node_spanned_pages)
    reclaim = Reclaim(normal, lru, SlabCaches(normal), ReclaimSection(), zones=node.zonelist)
    if wakes is not None:
        reclaim.on_wakeup_kcompactd = wakes.append
    return reclaim


def test_a_node_is_balanced_when_any_zone_up_to_the_classzone_is_above_high_plus_reserve():
    """pgdat_balanced checks the zones bottom-up with lowmem_reserve[highest_zoneidx]."""
    node = small_node()
    normal, dma32, dma = (node.node_zones[i] for i in (ZONE_NORMAL, ZONE_DMA32, ZONE_DMA))
    reclaim = node_reclaim(node)
    assert [z.zone_idx for z in reclaim.zones] == [ZONE_DMA, ZONE_DMA32, ZONE_NORMAL]
    fill(normal, normal.high_wmark)
    assert reclaim.pgdat_balanced(0, ZONE_NORMAL)  # DMA and DMA32 are above theirs
    fill(dma, 0)
    reserve = dma32.lowmem_reserve[ZONE_NORMAL]
    fill(dma32, dma32.high_wmark + reserve)
    assert not reclaim.pgdat_balanced(0, ZONE_NORMAL)
    assert not reclaim.pgdat_balanced(0)  # -1: the node's highest zone, Normal
    assert reclaim.pgdat_balanced(0, ZONE_DMA32)  # no reserve against DMA32's own class
    dma32.watermark_boost = 512
    assert reclaim.pgdat_watermark_boosted(ZONE_NORMAL)
    assert not reclaim.pgdat_watermark_boosted(ZONE_DMA)


def test_wakeup_kswapd_keeps_the_highest_classzone_asked():
    node = small_node()
    reclaim = node_reclaim(node)
    assert reclaim.kswapd_highest_zoneidx == -1
    reclaim.wakeup_kswapd(0, True, False, ZONE_DMA32)
    reclaim.wakeup_kswapd(0, True, False, ZONE_MOVABLE)
    reclaim.wakeup_kswapd(0, True, False, ZONE_DMA)
    assert reclaim.kswapd_highest_zoneidx == ZONE_MOVABLE


def test_kswapd_reclaims_for_every_zones_high_watermark_and_takes_every_boost_off():
    """kswapd_shrink_node's target is max(high, SWAP_CLUSTER_MAX) summed over the zones
    up to reclaim_idx; balance_pgdat takes off each zone's boost present at its start
    and wakes kcompactd at pageblock order."""
    node = small_node()
    wakes: list[int] = []
    reclaim = node_reclaim(node, wakes)
    zones = node.zonelist
    sc = ScanControl(0)
    sc.reclaim_idx = ZONE_DMA32
    for _ in reclaim.kswapd_shrink_node(sc):
        pass
    assert sc.nr_to_reclaim == sum(max(z.wmark_pages(WMARK_HIGH), 32)
                                   for z in zones if z.zone_idx <= ZONE_DMA32)
    for zone in zones:
        zone.watermark_boost = 1024
    for _ in reclaim.balance_pgdat(0, ZONE_NORMAL):
        pass
    assert [z.watermark_boost for z in zones] == [0, 0, 0]
    assert wakes == [9]
    for zone in zones:
        zone.watermark_boost = 1024
    for _ in reclaim.balance_pgdat(0, ZONE_DMA32):  # Normal's boost is not its business
        pass
    assert [z.watermark_boost for z in zones] == [1024, 0, 0]


def fragment(zone: Zone) -> None:
    """Movable pages in the whole zone, 3 of every 4 freed."""
    for i, pfn in enumerate(fill(zone, 0)):
        if i % 4:
            zone.free(pfn, 0)


def test_node_compaction_compacts_every_zone_and_scores_the_node_by_present_pages():
    node = small_node()
    compactors = [Compactor(z) for z in node.zonelist]
    node_compactor = NodeCompactor(compactors)
    assert [c.zone.zone_idx for c in node_compactor.compactors] == [0, 1, 2]
    fragment(node.node_zones[ZONE_DMA32])
    fragment(node.node_zones[ZONE_NORMAL])
    zones = node.node_zones[:ZONE_NORMAL + 1]  # DMA, DMA32, Normal
    assert node_compactor.fragmentation_score_node() == fragmentation_score_node(
        [(z.nr_pages, z.nr_free) for z in zones], 9)
    assert node_compactor.fragmentation_score_node() > 0
    before = [z.nr_free[9] + 2 * z.nr_free[10] for z in zones]
    node_compactor.compact_memory()
    after = [z.nr_free[9] + 2 * z.nr_free[10] for z in zones]
    assert after[0] == before[0]  # DMA: nothing to do
    assert after[1] > before[1] and after[2] > before[2]
    assert node_compactor.stats.time_s == sum(c.stats.time_s for c in compactors) > 0
    node.check()


def test_compaction_for_a_higher_classzone_keeps_the_lower_zones_lowmem_reserve():
    """compaction_suit_allocation_order and compaction_suitable check a zone with
    ``lowmem_reserve[ac->highest_zoneidx]``, as the allocation after them does. DMA32
    holds a free order-9 block and just enough free pages for it above min, but not
    above min plus its reserve for Normal: for itself compaction is not needed
    (COMPACT_SUCCESS); for a Normal request it is skipped, and a costly __GFP_NORETRY
    request (readahead's) for Normal gives up without reclaiming, as 6.18 does when
    every zone skipped."""
    na = NodeAllocator()
    node = na.node
    normal, dma32, dma = (node.node_zones[i] for i in (ZONE_NORMAL, ZONE_DMA32, ZONE_DMA))
    fill(normal, 0)
    fill(dma, 0)
    reserve = dma32.lowmem_reserve[ZONE_NORMAL]
    assert reserve > 0
    fill(dma32, dma32.min_wmark + 511 + reserve // 2)  # above min + 511, below + reserve
    assert dma32.nr_free[9] + dma32.nr_free[10] > 0
    compactor = na.alloc.compactors[ZONE_DMA32]
    R = CompactResult
    assert compactor.compaction_suit_allocation_order(9, ALLOC_WMARK_MIN, True) == R.COMPACT_SUCCESS
    assert compactor.compaction_suit_allocation_order(
        9, ALLOC_WMARK_MIN, True, ZONE_NORMAL) == R.COMPACT_SKIPPED
    assert node.get_page_from_freelist(9, M, alloc_flags=ALLOC_WMARK_MIN,
                                       highest_zoneidx=ZONE_NORMAL) is None
    readahead = GFP_HIGHUSER_MOVABLE | GFPF_NORETRY | GFPF_NOWARN
    assert na.alloc.alloc_pages(9, readahead, 0) is None
    assert na.alloc.stats.direct_compact == 1 and na.alloc.stats.direct_reclaim == 0
    assert compactor.stats.stalls == 0  # a skipped compaction is no stall
    # A DMA32 request keeps no reserve there: the block is its own.
    pfn = na.alloc.alloc_pages(9, GFP_DMA32 | readahead, 0)
    assert pfn is not None and node.page_zone(pfn) is dma32


# --------------------------------------------------------------------------- machine.zones


@pytest.mark.parametrize("zones, expected", [
    (["Normal"], [("Normal", 0, 1 << 22)]),
    (["DMA", "DMA32", "Normal"], [("DMA", 0, 4096), ("DMA32", 4096, (1 << 20) - 4096),
                                  ("Normal", 1 << 20, (1 << 22) - (1 << 20))]),
    (["DMA32", "Normal"], [("DMA32", 0, 1 << 20), ("Normal", 1 << 20, 3 << 20)]),
    (["DMA", "DMA32"], [("DMA", 0, 4096), ("DMA32", 4096, (1 << 22) - 4096)]),
    ([{"DMA": 16 << 20}, {"DMA32": 1 << 30}, {"Normal": (15 << 30) - (16 << 20)}],
     [("DMA", 0, 4096), ("DMA32", 4096, 1 << 18),
      ("Normal", 4096 + (1 << 18), (15 << 18) - 4096)]),
])
def test_machine_zones_cut_memory_as_configured(zones, expected):
    spans = zone_spans_for(1 << 22, zones)  # 16 GiB
    assert [(s.name, s.start_pfn, s.spanned_pages) for s in spans] == expected


def test_a_256_mib_machine_listing_normal_has_no_normal_zone():
    assert [s.name for s in zone_spans_for(1 << 16, ["DMA", "DMA32", "Normal"])] == [
        "DMA", "DMA32"]


@pytest.mark.parametrize("zones, message", [
    ("[HighMem]", "zone names"),
    ("[Normal, DMA32]", "in the order"),
    ("[DMA, {Normal: 1GiB}]", "sizes for every zone or for none"),
    ("[{DMA: 16MiB}, {Normal: 16MiB}]", "adding up to machine.memory"),
    ("[DMA32, Movable]", "a size for Movable"),
])
def test_bad_machine_zones_are_one_line_errors(zones, message):
    with pytest.raises(FragsimError, match=r"^x.yaml: machine.zones: expected .*" + message):
        validate_config(yaml.safe_load(f"machine: {{memory: 1GiB, zones: {zones}}}"),
                        "x.yaml")


def test_machine_zones_default_to_x86_64s_and_normal_is_the_single_zone():
    config = validate_config({"machine": {"memory": "64MiB"}}, "x.yaml")
    assert config.machine.zones == ["DMA", "DMA32", "Normal"]
    assert validate_config({"machine": {"memory": "64MiB", "zones": [{"Normal": "64MiB"}]}},
                           "x.yaml").machine.zones == [{"Normal": 64 << 20}]


# --------------------------------------------------------------------------- snapshots


BEFORE = DATA / "kmem-traces/tmpfs-churn-20k-keep10/before"


def snapshot_node():
    text = Path(f"{BEFORE}.buddyinfo").read_text()
    rows = parse_buddyinfo(text, "before.buddyinfo")
    zoneinfo = parse_zoneinfo(Path(f"{BEFORE}.zoneinfo").read_text(), "before.zoneinfo")
    ptinfo = parse_pagetypeinfo(Path(f"{BEFORE}.pagetypeinfo").read_text())
    return text, zoneinfo, node_from_snapshots(rows, zoneinfo, ptinfo,
                                               sources=("before.buddyinfo", "before.zoneinfo"))


def test_a_node_built_from_real_snapshots_prints_their_buddyinfo_and_zoneinfo_lines():
    """Every zone of the real 6.18.44 snapshot (DMA, DMA32, Normal), built from its
    buddyinfo, pagetypeinfo and zoneinfo's managed pages: buddyinfo comes out byte for
    byte, and so do zoneinfo's header, watermark, managed and protection lines (the
    kernel's formulas on the managed pages). Not compared: pages free (read a moment
    apart from buddyinfo: 12 pages more in Normal), spanned and present (the model has
    no holes)."""
    text, zoneinfo, node = snapshot_node()
    node.check()
    assert [node.zone_name(z) for z in reversed(node.zonelist)] == ["DMA", "DMA32", "Normal"]
    assert format_buddyinfo([buddyinfo_of(z, 0, node.zone_name(z))
                             for z in reversed(node.zonelist)]) == text
    real = Path(f"{BEFORE}.zoneinfo").read_text().splitlines()
    compared = ("Node ", "        min ", "        low ", "        high ", "        promo ",
                "        managed ", "        protection:", "        boost ")
    for z in zoneinfo[:3]:
        zone = node.node_zones[ZONE_NAMES.index(z.zone)]
        ours = format_zoneinfo_zone(zone, 0, z.zone, zone.lowmem_reserve).splitlines()
        start = real.index(ours[0])
        theirs = [line for line in real[start:start + 70] if line.startswith(compared)]
        mine = [line for line in ours if line.startswith(compared)]
        assert mine == theirs[:len(mine)], z.zone


def test_a_buddyinfo_zone_that_zoneinfo_lacks_is_one_line_naming_the_file():
    rows = parse_buddyinfo(Path(f"{BEFORE}.buddyinfo").read_text())
    zoneinfo = [z for z in parse_zoneinfo(Path(f"{BEFORE}.zoneinfo").read_text())
                if z.zone != "DMA32"]
    with pytest.raises(FragsimError, match=r"^b: zone DMA32 of node 0 is not a populated "
                                           r"zone of z \(DMA, Normal\)$"):
        node_from_snapshots(rows, zoneinfo, sources=("b", "z"))


def test_free_pages_beyond_the_managed_pages_are_one_line_naming_the_file():
    rows = parse_buddyinfo(Path(f"{BEFORE}.buddyinfo").read_text())
    zoneinfo = parse_zoneinfo(Path(f"{BEFORE}.zoneinfo").read_text())
    rows[0].nr_free[0] += 1  # DMA: 3841 free pages of 3840
    with pytest.raises(FragsimError, match=r"^b: zone DMA of node 0 has 3841 free pages, "
                                           r"more than the 3840 pages it manages in z$"):
        node_from_snapshots(rows, zoneinfo, sources=("b", "z"))


def test_pages_are_asked_about_by_node_pfn():
    """The node answers for a page by its node pfn what its zone answers by its own."""
    node = small_node()
    dma32 = node.node_zones[ZONE_DMA32]
    pfn = node.get_page_from_freelist(2, U, owner=7, alloc_flags=ALLOC_NO_WATERMARKS,
                                      highest_zoneidx=ZONE_DMA32)
    local = pfn - dma32.zone_start_pfn
    assert node.page_zone(pfn) is dma32 and dma32.is_allocated(local)
    assert (node.is_allocated(pfn), node.order_of(pfn), node.owner_of(pfn)) == (True, 2, 7)
    assert node.pageblock_migratetype(pfn) == U
    node.set_owner(pfn, 9)
    assert dma32.owner_of(local) == 9
    assert node.end_pfn == 4096 + 8192 + 8192 and node.nr_free_pages == node.nr_pages - 4
    assert node.nr_free == [sum(z.nr_free[o] for z in node.zonelist) for o in range(11)]
    node.free_batch([pfn], 2, lambda: 0)
    assert not node.is_allocated(pfn) and node.nr_free_pages == node.nr_pages
    with pytest.raises(ValueError, match="pfn 20480 is in no zone"):
        node.page_zone(node.end_pfn)


def test_fragsim_zones_prints_the_snapshots_buddyinfo_and_zone_heads(capsys):
    assert main(["zones", str(BEFORE)]) == 0
    out = capsys.readouterr().out
    buddyinfo = Path(f"{BEFORE}.buddyinfo").read_text()
    assert out.startswith(buddyinfo)
    assert "Node 0, zone    DMA32\n  pages free     772917\n" in out
    assert "        protection: (0, 3019, 3531, 3531, 3531)\n" in out


@pytest.mark.parametrize("break_it, message", [
    (lambda d: (d / "zoneinfo").unlink(),
     r"/zoneinfo: cannot read: no such file \(a snapshot needs its buddyinfo and zoneinfo\)$"),
    (lambda d: (d / "zoneinfo").write_text(
        "".join(Path(f"{BEFORE}.zoneinfo").read_text().partition("Node 0, zone    DMA32")[:1])
        + "Node 0, zone   Normal" + Path(f"{BEFORE}.zoneinfo").read_text().partition(
            "Node 0, zone   Normal")[2]),
     r"/buddyinfo: zone DMA32 of node 0 is not a populated zone of .*/zoneinfo "
     r"\(DMA, Normal\)$"),
    (lambda d: (d / "buddyinfo").write_text(Path(f"{BEFORE}.buddyinfo").read_text().replace(
        "zone      DMA      0", "zone      DMA      1", 1)),
     r"/buddyinfo: zone DMA of node 0 has 3841 free pages, more than the 3840 pages it "
     r"manages in .*/zoneinfo$"),
])
def test_a_bad_snapshot_directory_is_one_line_naming_the_file_exit_2(
        capsys, tmp_path, break_it, message):
    for name in ("buddyinfo", "zoneinfo", "pagetypeinfo"):
        (tmp_path / name).write_text(Path(f"{BEFORE}.{name}").read_text())
    assert main(["zones", str(tmp_path)]) == 0
    capsys.readouterr()
    break_it(tmp_path)
    assert main(["zones", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(r"^fragsim: error: " + str(tmp_path) + message,
                                              err), err
