"""Fragmentation metrics, computed exactly as Linux 6.18 computes them.

Kernel sources followed:
- mm/vmstat.c: fill_contig_page_info, unusable_free_index, __fragmentation_index,
  extfrag_for_order (what debugfs extfrag/unusable_index and extfrag/extfrag_index print).
- mm/compaction.c: fragmentation_score_zone, fragmentation_score_zone_weighted,
  fragmentation_score_node (the proactive compaction score).
- mm/show_mem.c si_mem_available (/proc/meminfo's MemAvailable) and mm/page_alloc.c
  calculate_totalreserve_pages, for one zone (see ``si_mem_available``).

All arithmetic is on integers; the kernel's div_u64 truncates, and every dividend here is
non-negative, so Python's ``//`` gives the same result.

``nr_free`` is always a sequence of free block counts per order 0..max_order, like
``zone->free_area[order].nr_free`` or one line of /proc/buddyinfo. An order outside
0..max_order is a programming error and raises ValueError (the kernel WARNs and returns 0).

Pageblock metrics at the end work on numpy arrays with one entry per pageblock, as the
simulator's zone produces them; they have no kernel counterpart but use its migratetypes.
``pageblock_stats(zone)`` is that census (pages per pageblock by what holds them), and
``zone_metrics`` / ``cache_metrics`` are the sampled series of a zone and its slab caches,
named as in every result file. Each is defined once, adding to a ``SampleRow`` (keys in
order, values as float64: ``zone_sample``, ``node_sample``, ``SlabCaches.sample``),
which ``Recorder.sample_row`` keeps as it is; the ``*_metrics`` functions give the same
row as a dict. The module is compiled (sim/native.py): ``fragsim replay`` samples about
400 times, and the census's numpy calls are the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from librt.vecs import append as vec_append
from librt.vecs import vec

from sim.buddy import (
    OWNER_MOVABLE,
    OWNER_PINNED,
    OWNER_RECLAIMABLE,
    OWNER_SLAB,
    OWNER_UNMOVABLE,
    PG_ALLOC,
    PG_BUDDY,
    PG_KIND,
    PG_ORDER,
    PG_PCP,
    Zone,
)
from sim.migratetype import MIGRATE_HIGHATOMIC, MIGRATE_MOVABLE, MIGRATE_TYPES

if TYPE_CHECKING:
    from sim.slab import SlabCaches

# mm/compaction.c COMPACTION_HPAGE_ORDER: HPAGE_PMD_ORDER on x86-64 with THP.
COMPACTION_HPAGE_ORDER = 9
PAGEBLOCK_NR_PAGES = 512


@dataclass(frozen=True, slots=True)
class ContigPageInfo:
    """struct contig_page_info of mm/vmstat.c."""

    free_pages: int
    free_blocks_total: int
    free_blocks_suitable: int


def _check_order(nr_free: Sequence[int], order: int) -> None:
    if not 0 <= order < len(nr_free):
        raise ValueError(f"order {order} outside 0..{len(nr_free) - 1}")


def free_pages(nr_free: Sequence[int]) -> int:
    """Free base pages in the free lists: sum of nr_free[order] << order."""
    return sum(count << order for order, count in enumerate(nr_free))


def contig_page_info(nr_free: Sequence[int], suitable_order: int) -> ContigPageInfo:
    """fill_contig_page_info: free pages, free blocks, and blocks usable at suitable_order.

    A free block of order k >= suitable_order counts as 2^(k - suitable_order) suitable
    blocks, since it can be split into that many.
    """
    _check_order(nr_free, suitable_order)
    pages = total = suitable = 0
    for order, blocks in enumerate(nr_free):
        total += blocks
        pages += blocks << order
        if order >= suitable_order:
            suitable += blocks << (order - suitable_order)
    return ContigPageInfo(pages, total, suitable)


def unusable_index(nr_free: Sequence[int], order: int) -> int:
    """unusable_free_index in thousandths: the share of free memory unusable at order.

    0 means no fragmentation. No free memory at all counts as all of it unusable: 1000.
    """
    info = contig_page_info(nr_free, order)
    if info.free_pages == 0:
        return 1000
    unusable = info.free_pages - (info.free_blocks_suitable << order)
    return unusable * 1000 // info.free_pages


def fragmentation_index(nr_free: Sequence[int], order: int) -> int:
    """__fragmentation_index in thousandths; -1000 means an order-N request would succeed.

    Towards 0 a failure is due to lack of memory, towards 1000 to fragmentation. Like the
    kernel's, the value can go below 0 when there are very few free blocks (one order-0
    block and an order-1 request give -500); the formula is kept as is.
    """
    info = contig_page_info(nr_free, order)
    if info.free_blocks_total == 0:
        return 0
    if info.free_blocks_suitable:
        return -1000
    requested = 1 << order
    return 1000 - (1000 + info.free_pages * 1000 // requested) // info.free_blocks_total


def extfrag_for_order(nr_free: Sequence[int], order: int) -> int:
    """extfrag_for_order: percent of free pages in blocks smaller than order (0 if none free)."""
    info = contig_page_info(nr_free, order)
    if info.free_pages == 0:
        return 0
    return (info.free_pages - (info.free_blocks_suitable << order)) * 100 // info.free_pages


def fragmentation_score_zone(
    nr_free: Sequence[int], hpage_order: int = COMPACTION_HPAGE_ORDER
) -> int:
    """fragmentation_score_zone: extfrag_for_order at the huge-page order, in percent."""
    return extfrag_for_order(nr_free, hpage_order)


def fragmentation_score_node(
    zones: Sequence[tuple[int, Sequence[int]]], hpage_order: int = COMPACTION_HPAGE_ORDER
) -> int:
    """fragmentation_score_node over (present_pages, nr_free) per zone of one node.

    Each populated zone's score is weighted by its share of the node's present pages,
    with the kernel's +1 in the divisor, and the weighted scores are summed. Proactive
    compaction compares this with sysctl compaction_proactiveness's watermarks.
    """
    node_present_pages = sum(present for present, _ in zones)
    score = 0
    for present_pages, nr_free in zones:
        if present_pages == 0:  # populated_zone() is false: skipped
            continue
        zone_score = fragmentation_score_zone(nr_free, hpage_order)
        score += present_pages * zone_score // (node_present_pages + 1)
    return score


def avail(nr_free: Sequence[int], order: int) -> int:
    """Order-N allocations that would succeed now: sum over k >= N of nr_free[k] << (k - N).

    This ignores watermarks and migratetypes; it is what the free lists could give.
    """
    return contig_page_info(nr_free, order).free_blocks_suitable


def totalreserve_pages(zone: Zone) -> int:
    """mm/page_alloc.c ``calculate_totalreserve_pages``, one zone's share: its largest
    ``lowmem_reserve`` (all 0 for a lone zone) plus its high watermark, at most its
    managed pages. The kernel computes it when it sets the watermarks
    (``__setup_per_zone_wmarks``, with ``watermark_boost`` reset to 0), so the boost
    never enters it."""
    return min(max(zone.lowmem_reserve) + zone.high_wmark, zone.managed_pages)


def si_mem_available(nr_free_pages: int, totalreserve: int, wmark_low: int,
                     file_lru_pages: int, slab_reclaimable_pages: int,
                     kernel_misc_reclaimable: int = 0) -> int:
    """mm/show_mem.c ``si_mem_available``, in pages: MemAvailable.

    ``nr_free_pages`` is NR_FREE_PAGES (buddy pages only: pages on per-CPU lists are not
    in it); ``totalreserve`` is ``totalreserve_pages``; ``wmark_low`` is the sum over
    zones of ``low_wmark_pages`` (which includes ``watermark_boost``);
    ``file_lru_pages`` is NR_ACTIVE_FILE + NR_INACTIVE_FILE (tmpfs/shmem pages are
    swap-backed and not on the file LRU); ``slab_reclaimable_pages`` is
    NR_SLAB_RECLAIMABLE_B in pages (every page of a SLAB_RECLAIM_ACCOUNT cache's slabs,
    in use or not). At least half of the page cache and of the reclaimable kernel
    memory, or the low watermark's worth if that is less, is taken to stay.
    """
    available = nr_free_pages - totalreserve
    pagecache = file_lru_pages
    pagecache -= min(pagecache // 2, wmark_low)
    available += pagecache
    reclaimable = slab_reclaimable_pages + kernel_misc_reclaimable
    reclaimable -= min(reclaimable // 2, wmark_low)
    available += reclaimable
    return max(available, 0)


def pageblocks_by_migratetype(block_migratetype: np.ndarray) -> np.ndarray:
    """Number of pageblocks of each migratetype, indexed by migratetype number."""
    return np.bincount(np.asarray(block_migratetype, dtype=np.intp), minlength=MIGRATE_TYPES)


def mixed_pageblocks(block_migratetype: np.ndarray, block_nonmovable_pages: np.ndarray) -> int:
    """MOVABLE pageblocks holding at least one non-movable (unmovable, slab, pinned) page.

    These are the blocks that compaction can never fully empty.
    """
    if np.shape(block_migratetype) != np.shape(block_nonmovable_pages):
        raise ValueError(
            f"one entry per pageblock expected in both arrays, got shapes "
            f"{np.shape(block_migratetype)} and {np.shape(block_nonmovable_pages)}"
        )
    movable = np.asarray(block_migratetype) == MIGRATE_MOVABLE
    return int(np.count_nonzero(movable & (np.asarray(block_nonmovable_pages) > 0)))


def free_pages_per_block_histogram(
    block_free_pages: np.ndarray,
    pageblock_nr_pages: int = PAGEBLOCK_NR_PAGES,
    bins: int | Sequence[float] = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of free 4 KiB pages per pageblock: (counts, edges) as np.histogram.

    With an integer ``bins`` the range is 0..pageblock_nr_pages in equal bins; the last
    bin is closed, so it holds the completely free blocks. ``bins`` may also be explicit
    edges.
    """
    free = np.asarray(block_free_pages)
    if free.size and (free.min() < 0 or free.max() > pageblock_nr_pages):
        raise ValueError(
            f"free pages per pageblock must be within 0..{pageblock_nr_pages}, "
            f"got {free.min()}..{free.max()}"
        )
    return np.histogram(free, bins=bins, range=(0, pageblock_nr_pages))


# ------------------------------------------------------------------ samples of a machine


# A sample's key, a (metric, key) pair of strings. Typed Any because mypyc unboxes a
# tuple[str, str] into a C struct and boxes a new tuple at every call: a key stays the
# one tuple object made once, which is also what makes two samples' keys compare by
# identity (Recorder.sample_row).
SampleKey = Any


class SampleRow:
    """One sample as a row: its keys in order, and their values as float64 in a typed
    vector whose bytes numpy reads as they are (``Recorder.sample_row``). Compiled, a
    value costs a C store, not a Python number and a dict entry hashed by its key
    tuple: ``fragsim replay`` samples about 400 times, and a sample of a node of three
    zones and 235 slab caches holds about 700 values."""

    def __init__(self) -> None:
        self.keys: list[SampleKey] = []
        self.values: vec[float] = vec[float]()

    def add(self, key: SampleKey, value: float) -> None:
        self.keys.append(key)
        self.values = vec_append(self.values, value)

    def as_dict(self) -> dict[tuple[str, str], float]:
        return dict(zip(self.keys, self.values, strict=True))


# The keys of a sample, made once (a sample is taken hundreds of times a run): by the
# number of orders; by CPU; by zone name, with the zone's own keys they were made from.
_FREE_AREA_KEYS: dict[int, list[tuple[SampleKey, SampleKey, SampleKey]]] = {}
_PCP_KEYS: list[SampleKey] = []
_ZONE_KEYS: dict[str, tuple[list[SampleKey], list[SampleKey]]] = {}
_FRAGMENTATION_INDEX_KEYS: dict[int, SampleKey] = {}
_PAGEBLOCK_KEYS: tuple[SampleKey, ...] = (
    ("pageblocks", "Unmovable"), ("pageblocks", "Movable"), ("pageblocks", "Reclaimable"))
_FRAGMENTATION_SCORE: SampleKey = ("fragmentation_score", "")
_FREE_PAGES: SampleKey = ("free_pages", "")
_PCP_PAGES: SampleKey = ("pcp_pages", "")
_WATERMARK_BOOST: SampleKey = ("watermark_boost", "")
_HIGHATOMIC_PAGEBLOCKS: SampleKey = ("highatomic_pageblocks", "")


def _pcp_key(cpu: int) -> SampleKey:
    while len(_PCP_KEYS) <= cpu:
        _PCP_KEYS.append(("pcp_pages", f"cpu{len(_PCP_KEYS)}"))
    return _PCP_KEYS[cpu]


def _free_area_sample(row: SampleRow, nr_free: Sequence[int], pageblock_order: int) -> None:
    """``nr_free``, ``avail`` and ``unusable_index`` by order, and
    ``fragmentation_index`` at pageblock order, of one set of free block counts.

    The same values as ``avail``, ``unusable_index`` and ``fragmentation_index`` give
    (a test holds them to it), from one pass over the orders rather than one per order
    and index: the blocks suitable at order o are ``nr_free[o]`` plus twice those
    suitable at o + 1 (a sample is taken hundreds of times a run)."""
    top = len(nr_free)
    _check_order(nr_free, pageblock_order)
    pages = total = 0
    for order, blocks in enumerate(nr_free):
        total += blocks
        pages += blocks << order
    suitable = [0] * top
    above = 0
    for order in range(top - 1, -1, -1):
        above = suitable[order] = nr_free[order] + 2 * above
    keys = _FREE_AREA_KEYS.get(top)
    if keys is None:
        keys = _FREE_AREA_KEYS[top] = [
            (("nr_free", str(o)), ("avail", str(o)), ("unusable_index", str(o)))
            for o in range(top)]
    for order in range(top):
        nr_free_key, avail_key, unusable_key = keys[order]
        row.add(nr_free_key, nr_free[order])
        row.add(avail_key, suitable[order])
        row.add(unusable_key,
                (pages - (suitable[order] << order)) * 1000 // pages if pages else 1000)
    # __fragmentation_index
    if total == 0:
        index = 0
    elif suitable[pageblock_order]:
        index = -1000
    else:
        index = 1000 - (1000 + pages * 1000 // (1 << pageblock_order)) // total
    key = _FRAGMENTATION_INDEX_KEYS.get(pageblock_order)
    if key is None:
        key = _FRAGMENTATION_INDEX_KEYS[pageblock_order] = (
            "fragmentation_index", str(pageblock_order))
    row.add(key, index)


def zone_sample(row: SampleRow, zone: Zone) -> None:
    """The sampled zone metrics: buddyinfo, avail, the vmstat indices, pageblock types."""
    nr_free = zone.nr_free
    _free_area_sample(row, nr_free, zone.pageblock_order)
    row.add(_FRAGMENTATION_SCORE, extfrag_for_order(nr_free, zone.pageblock_order))
    row.add(_FREE_PAGES, float(zone.nr_free_pages))
    row.add(_PCP_PAGES, zone.pcp_pages)
    if zone.pcp_enabled:
        # Each CPU's pageset (zoneinfo's "count:" under "cpu: N"): key cpuN.
        for cpu, pcp in enumerate(zone.pcp):
            row.add(_pcp_key(cpu), float(pcp.count))
    row.add(_WATERMARK_BOOST, zone.watermark_boost)
    counts = zone.pageblock_counts()
    for key, count in zip(_PAGEBLOCK_KEYS, counts, strict=False):
        row.add(key, count)
    # The highatomic reserve (reserve_highatomic_pageblock), in pageblocks.
    row.add(_HIGHATOMIC_PAGEBLOCKS, counts[MIGRATE_HIGHATOMIC])


def zone_metrics(zone: Zone) -> dict[tuple[str, str], float]:
    """``zone_sample`` as a dict."""
    row = SampleRow()
    zone_sample(row, zone)
    return row.as_dict()


def node_sample(row: SampleRow, zones: Sequence[tuple[str, Zone]]) -> None:
    """The sampled metrics of a node of several zones, ``(name, zone)`` in pfn order.

    Under today's keys, the node as a whole: free blocks per order summed over the
    zones (``nr_free``, ``avail``, and ``unusable_index``/``fragmentation_index``
    computed from those sums: no kernel file prints a node's index, so these are the
    indices of the node's free lists taken as one), ``fragmentation_score`` as
    ``fragmentation_score_node`` (present pages as weights), and the sums of the page,
    boost and pageblock counts. Every zone's own ``zone_sample`` follows under the key
    ``<zone>/<key>`` (``<zone>`` alone for a metric without a key): ``avail`` key
    ``Normal/9``, ``pageblocks`` key ``DMA32/Movable``, ``free_pages`` key ``DMA``.
    A lone zone's samples are ``zone_sample`` alone (the node is the zone)."""
    first = zones[0][1]
    nr_free = [0] * (first.max_order + 1)
    free = pcp = boost = highatomic = 0
    pageblocks = [0, 0, 0]
    per_cpu: list[int] = []
    for _, zone in zones:
        for order, n in enumerate(zone.nr_free):
            nr_free[order] += n
        free += zone.nr_free_pages
        pcp += zone.pcp_pages
        boost += zone.watermark_boost
        counts = zone.pageblock_counts()
        for i in range(len(pageblocks)):
            pageblocks[i] += counts[i]
        highatomic += counts[MIGRATE_HIGHATOMIC]
        if zone.pcp_enabled:  # each CPU's pagesets, over the zones
            for cpu, pageset in enumerate(zone.pcp):
                while len(per_cpu) <= cpu:
                    per_cpu.append(0)
                per_cpu[cpu] += pageset.count
    pbo = first.pageblock_order
    _free_area_sample(row, nr_free, pbo)
    row.add(_FRAGMENTATION_SCORE, fragmentation_score_node(
        [(zone.nr_pages, zone.nr_free) for _, zone in zones], pbo))
    row.add(_FREE_PAGES, free)
    row.add(_PCP_PAGES, pcp)
    row.add(_WATERMARK_BOOST, boost)
    for key, count in zip(_PAGEBLOCK_KEYS, pageblocks, strict=True):
        row.add(key, count)
    row.add(_HIGHATOMIC_PAGEBLOCKS, highatomic)
    for cpu, count in enumerate(per_cpu):
        row.add(_pcp_key(cpu), count)
    for name, zone in zones:
        own = SampleRow()
        zone_sample(own, zone)
        made = _ZONE_KEYS.get(name)
        if made is None or made[0] != own.keys:
            if len(_ZONE_KEYS) > 64:  # zones of many machines in one process
                _ZONE_KEYS.clear()
            made = _ZONE_KEYS[name] = (own.keys, [
                (metric, f"{name}/{key}" if key else name) for metric, key in own.keys])
        keys = made[1]
        for i in range(len(keys)):
            row.add(keys[i], own.values[i])


def node_metrics(zones: Sequence[tuple[str, Zone]]) -> dict[tuple[str, str], float]:
    """``node_sample`` as a dict."""
    row = SampleRow()
    node_sample(row, zones)
    return row.as_dict()


def cache_metrics(caches: SlabCaches) -> dict[tuple[str, str], float]:
    """Per slab cache with slabs or allocations: live objects, slabs, pages and
    occupancy (``SlabCaches.sample``)."""
    row = SampleRow()
    caches.sample(row)
    return row.as_dict()


# ------------------------------------------------------------------ the pageblock census

# pageblock_stats' page categories
_PB_FREE = 0
_PB_PCP = 1
_PB_MOVABLE = 2
_PB_PINNED = 3
_PB_UNMOVABLE = 4
_PB_SLAB = 5
_PB_OTHER = 6
_PB_CATEGORIES = 7




@dataclass
class PageblockStats:
    """Per-pageblock page counts, as numpy arrays indexed by pageblock number."""

    migratetype: np.ndarray
    free_pages: np.ndarray  # on the buddy free lists
    pcp_pages: np.ndarray  # free but held on per-CPU lists
    movable_pages: np.ndarray  # allocated, owner MOVABLE
    pinned_pages: np.ndarray  # allocated, owner PINNED
    unmovable_pages: np.ndarray  # allocated, owner UNMOVABLE or RECLAIMABLE (not slab)
    slab_pages: np.ndarray  # allocated to slab caches

    @property
    def nonmovable_pages(self) -> np.ndarray:
        """Pages that no migration can move: unmovable, reclaimable and slab."""
        return self.unmovable_pages + self.slab_pages


def node_pageblock_stats(zones: Sequence[Zone]) -> PageblockStats:
    """``pageblock_stats`` of several zones in pfn order, their pageblocks one after
    another (the holes between zones left out)."""
    if len(zones) == 1:
        return pageblock_stats(zones[0])
    parts = [pageblock_stats(zone) for zone in zones]
    return PageblockStats(*(np.concatenate([getattr(p, f) for p in parts])
                            for f in PageblockStats.__dataclass_fields__))


def node_mixed_pageblocks(zones: Sequence[Zone]) -> int:
    """``mixed_pageblocks`` of several zones, without the whole census: the number a
    pageblock sample records, read from the zones' page state in a few vector passes.

    Equal to ``mixed_pageblocks(stats.migratetype, stats.nonmovable_pages)`` of
    ``node_pageblock_stats(zones)`` (a hypothesis test holds them equal) at a fraction
    of its cost: a block is mixed when it is MOVABLE and holds the head of an allocated
    non-movable block (owner UNMOVABLE, RECLAIMABLE or a slab cache); a block smaller
    than a pageblock lies inside the pageblock of its head, so only heads of larger
    ones (rare for non-movable memory) are followed to the pageblocks they cover. With
    grouping by mobility off every block counts as MOVABLE (``pageblock_snapshot``).
    """
    return sum(_mixed_pageblocks_of(zone) for zone in zones)


_CENSUS_BLOCKS = 1024  # pageblocks a census pass reads at once (512 Ki pages at order 9)


def _census_chunks(zone: Zone):
    """The zone's page state and owner tags in chunks of ``_CENSUS_BLOCKS`` pageblocks:
    (first pageblock, pageblocks, state bytes, owner tags), views of the zone's own
    vectors. A chunk holds whole buddy blocks (its size is a multiple of the largest
    block's), and the census's temporaries are a chunk's, not the zone's: whole-zone
    passes set a 64 GiB run's peak resident set, 36 MB higher."""
    shift = zone.pageblock_order
    nblocks = zone.nr_pageblocks
    n = zone.nr_pages
    step = max(_CENSUS_BLOCKS, 1 << max(0, zone.max_order - shift))
    state_vec, owner_vec = zone.page_state_arrays()
    state = np.frombuffer(state_vec, dtype=np.uint8)  # type: ignore[call-overload]
    owner = np.frombuffer(owner_vec, dtype=np.int16)  # type: ignore[call-overload]
    for b0 in range(0, nblocks, step):
        b1 = min(nblocks, b0 + step)
        p0, p1 = b0 << shift, min(n, b1 << shift)
        yield b0, b1 - b0, state[p0:p1], owner[p0:p1]


def _mixed_pageblocks_of(zone: Zone) -> int:
    shift = zone.pageblock_order
    hit = np.zeros(zone.nr_pageblocks, dtype=bool)
    for b0, _, state, owner in _census_chunks(zone):
        nonmovable = (owner >= OWNER_SLAB) | (owner == OWNER_UNMOVABLE) | (
            owner == OWNER_RECLAIMABLE)
        nonmovable &= (state & PG_KIND) == PG_ALLOC
        heads = np.flatnonzero(nonmovable)
        hit[b0 + (heads >> shift)] = True
        orders = state[heads] & PG_ORDER
        for pfn, order in zip(heads[orders > shift].tolist(),
                              orders[orders > shift].tolist(), strict=True):
            first = b0 + (pfn >> shift)
            hit[first:first + (1 << (order - shift))] = True
    if not zone.grouping_by_mobility:
        return int(np.count_nonzero(hit))
    movable = np.frombuffer(bytes(zone.pageblock_types()), dtype=np.uint8) == MIGRATE_MOVABLE
    return int(np.count_nonzero(hit & movable))


def _census_chunk(counts: np.ndarray, state: np.ndarray, owner: np.ndarray, shift: int,
                  lut: np.ndarray, alloc_row: list[int]) -> None:
    """Add one chunk's pages to ``counts`` (its pageblocks' rows): ``state`` and
    ``owner`` are the chunk's, padded to whole pageblocks."""
    nblocks = len(counts)
    kind = state >> 6
    code = kind * np.uint8(OWNER_SLAB + 1)
    code += owner  # the table's flat index
    # Pages per (pageblock, category), by an equality pass per kind (free, pcp)
    # or per allocated entry of the table: cheaper than gathering a category for
    # every page.
    passes = [(_PB_FREE, kind, PG_BUDDY >> 6), (_PB_PCP, kind, PG_PCP >> 6)]
    passes += [(c, code, (PG_ALLOC >> 6) * (OWNER_SLAB + 1) + o)
               for o, c in enumerate(alloc_row) if c != _PB_OTHER]
    for c, values, value in passes:
        per_page = (values == value).reshape(nblocks, 1 << shift)
        counts[:, c] += per_page.sum(axis=1, dtype=np.int32)
    heads = np.flatnonzero((state & PG_ORDER) != 0)  # heads of blocks above order 0
    orders = (state[heads] & PG_ORDER).astype(np.int64)
    head_cat = lut.ravel()[code[heads]]
    small = orders < shift
    if small.any():
        counts += np.bincount(
            (heads[small] >> shift) * _PB_CATEGORIES + head_cat[small],
            weights=np.left_shift(1, orders[small]) - 1,
            minlength=nblocks * _PB_CATEGORIES,
        ).astype(np.int64).reshape(nblocks, _PB_CATEGORIES)
    for pfn, order, c in zip(heads[~small].tolist(), orders[~small].tolist(),
                             head_cat[~small].tolist(), strict=True):
        first = pfn >> shift
        counts[first:first + (1 << (order - shift)), c] += 1 << shift
        counts[first, c] -= 1  # the head, counted above


def pageblock_stats(zone: Zone) -> PageblockStats:
    """Page counts per pageblock (the census the memory maps and mixed-pageblock
    samples read), computed vectorised from the zone's page state, a chunk of
    pageblocks at a time (``_census_chunks``)."""
    nblocks = zone.nr_pageblocks
    shift = zone.pageblock_order
    # A category per page from a table over (kind, owner class): a head counts
    # once where it stands (tails are "other"), then heads of larger blocks add
    # the rest of their pages.
    lut = np.full((4, OWNER_SLAB + 1), _PB_OTHER, dtype=np.uint8)
    lut[PG_BUDDY >> 6, :] = _PB_FREE
    lut[PG_PCP >> 6, :] = _PB_PCP
    lut[PG_ALLOC >> 6, OWNER_MOVABLE] = _PB_MOVABLE
    lut[PG_ALLOC >> 6, OWNER_PINNED] = _PB_PINNED
    lut[PG_ALLOC >> 6, OWNER_UNMOVABLE] = _PB_UNMOVABLE
    lut[PG_ALLOC >> 6, OWNER_RECLAIMABLE] = _PB_UNMOVABLE
    lut[PG_ALLOC >> 6, OWNER_SLAB] = _PB_SLAB
    alloc_row = lut[PG_ALLOC >> 6].tolist()
    counts = np.zeros((nblocks, _PB_CATEGORIES), dtype=np.int64)
    for b0, nb, state_view, owner_view in _census_chunks(zone):
        # Copies of the chunk's state bytes and owner tags (capped at OWNER_SLAB),
        # padded with tails to whole pageblocks.
        state = np.zeros(nb << shift, dtype=np.uint8)
        state[:len(state_view)] = state_view
        owner = np.zeros(nb << shift, dtype=np.uint8)
        owner[:len(owner_view)] = np.minimum(owner_view, OWNER_SLAB)
        _census_chunk(counts[b0:b0 + nb], state, owner, shift, lut, alloc_row)
    return PageblockStats(
        migratetype=np.array(zone.pageblock_types(), dtype=np.uint8),
        free_pages=counts[:, _PB_FREE].copy(),
        pcp_pages=counts[:, _PB_PCP].copy(),
        movable_pages=counts[:, _PB_MOVABLE].copy(),
        pinned_pages=counts[:, _PB_PINNED].copy(),
        unmovable_pages=counts[:, _PB_UNMOVABLE].copy(),
        slab_pages=counts[:, _PB_SLAB].copy(),
    )
