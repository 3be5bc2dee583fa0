"""Fragmentation metrics, computed exactly as Linux 6.18 computes them.

Kernel sources followed:
- mm/vmstat.c: fill_contig_page_info, unusable_free_index, __fragmentation_index,
  extfrag_for_order (what debugfs extfrag/unusable_index and extfrag/extfrag_index print).
- mm/compaction.c: fragmentation_score_zone, fragmentation_score_zone_weighted,
  fragmentation_score_node (the proactive compaction score).

All arithmetic is on integers; the kernel's div_u64 truncates, and every dividend here is
non-negative, so Python's ``//`` gives the same result.

``nr_free`` is always a sequence of free block counts per order 0..max_order, like
``zone->free_area[order].nr_free`` or one line of /proc/buddyinfo. An order outside
0..max_order is a programming error and raises ValueError (the kernel WARNs and returns 0).

Pageblock metrics at the end work on numpy arrays with one entry per pageblock, as the
simulator's zone produces them; they have no kernel counterpart but use its migratetypes.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_TYPES

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
