"""Initial machine state from /proc snapshots: a zone from buddyinfo (and pagetypeinfo),
slab caches and their objects from slabinfo.

**Zone: exactly buddyinfo's free lists** (:func:`synthesize_zone`, :func:`zone_from_buddyinfo`).
buddyinfo says how many free blocks of each order a zone has (mm/vmstat.c
``frag_show_print``), not where they are. The synthesized layout holds exactly those
counts, and when pagetypeinfo is given, exactly its per-migratetype counts (its
``>100000`` caps derived from buddyinfo by ``derive_capped_counts``) and its pageblock
counts per migratetype. The choices, in order:

- Pageblocks are laid out by type in runs: UNMOVABLE first (lowest pfns), then
  RECLAIMABLE, then MOVABLE, then the rarer types. Without pagetypeinfo every pageblock is
  MOVABLE and every free block is on a MOVABLE list.
- Each type's free blocks are placed inside that type's run, from the largest order down,
  best fit, lowest pfns first. A free block never has a free buddy of the same order
  (``__free_one_page`` would have merged them): placing a block of order o inside a
  larger hole leaves its buddy marked "must keep an allocated page", so that buddy only
  ever holds smaller free blocks; across the boundary of two runs the later of two
  buddy holes is marked the same way.
- Everything else is allocated **filler**: owned by pageblock type (OWNER_UNMOVABLE in
  UNMOVABLE blocks, OWNER_RECLAIMABLE in RECLAIMABLE blocks, OWNER_MOVABLE, i.e. LRU
  memory that compaction may migrate, in MOVABLE ones). The kernel's per-CPU lists are
  empty, since buddyinfo does not count their pages.
- The slab pages of a slabinfo population come out of the filler of the right pageblock
  type (:class:`FillerPool`), so that populating the caches leaves the free lists
  exactly as buddyinfo says. The kernel's real slab pages were somewhere in that
  memory too.

The zone is built through the allocator's own calls (everything allocated, split, and the
chosen blocks freed with ``Zone.free``), so a layout mistake would show as a merge and a
wrong count; ``zone.check()`` and the counts are verified before returning. Pageblock
migratetypes are set with ``Zone.set_pageblock_migratetype`` while every page is
allocated; HighAtomic pageblocks become the zone's highatomic reserve
(``nr_reserved_highatomic``), as they were in the kernel.

**Slab caches: slabinfo's geometry and population** (:func:`populate_from_slabinfo`).
Each row gives a cache (``SlabGeometry.from_slabinfo``; page type and RCU freeing from
sim/slab.py's flags table) and ``num_slabs`` slabs holding ``active_objs`` objects. The
per-slab occupancy assumed:

- ``even`` (default): the ``num_objs - active_objs`` free slots are spread as evenly as
  slabinfo allows: every slab has ``floor`` or ``ceil`` of ``free / num_slabs`` free
  slots. Slabs with a free slot are on the node partial list, the others full; no CPU
  slab, no per-CPU partial list. Then ``get_slabinfo`` of the simulated cache prints
  slabinfo's own row: active = total - free slots on node-partial slabs.
- ``packed``: the free slots are packed into as few slabs as possible (the last ones);
  empty slabs beyond ``min_partial`` are given back, as ``__put_partials`` would.

Either way ``active_objs`` counts more objects than are really live: ``get_slabinfo``
counts the free slots of per-CPU slabs as active. The simulated cache therefore starts
with ``active_objs`` objects, which is an upper bound. Those objects are the **initial
population**: a trace free of an object the trace never allocated takes one of them
(sim/replay.py).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sim.buddy import (
    ALLOC_NO_WATERMARKS,
    OWNER_MOVABLE,
    OWNER_NONE,
    OWNER_RECLAIMABLE,
    OWNER_UNMOVABLE,
    BuddyStats,
    Zone,
)
from sim.errors import FragsimError
from sim.migratetype import (
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_TYPES,
    MIGRATE_UNMOVABLE,
    MIGRATETYPE_NAMES,
)
from sim.mmzone import MAX_NR_ZONES, ZONE_NAMES, Node, ZoneSpan, zone_index
from sim.procfs import (
    Pagetypeinfo,
    SlabinfoEntry,
    ZoneFree,
    ZoneinfoZone,
    derive_capped_counts,
    parse_buddyinfo,
    parse_pagetypeinfo,
    parse_slabinfo,
    parse_zoneinfo,
)
from sim.slab import SlabCache, SlabCaches, SlabGeometry

OCCUPANCY_POLICIES = ("even", "packed")

# Pageblock runs from the lowest pfn: the types the kernel groups away from movable
# memory first.
_RUN_ORDER = (MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE, MIGRATE_HIGHATOMIC,
              MIGRATE_ISOLATE)
_FILLER_OWNER = {
    MIGRATE_UNMOVABLE: OWNER_UNMOVABLE,
    MIGRATE_MOVABLE: OWNER_MOVABLE,
    MIGRATE_RECLAIMABLE: OWNER_RECLAIMABLE,
    MIGRATE_HIGHATOMIC: OWNER_UNMOVABLE,
    MIGRATE_ISOLATE: OWNER_UNMOVABLE,
}


# --------------------------------------------------------------------------- layout


@dataclass
class _Holes:
    """Unassigned aligned blocks of one pageblock type, by order. A "flagged" hole must
    keep at least one allocated page: it is the buddy of a free block (or of a hole that
    may become one), so it may hold smaller free blocks but never be free whole."""

    free: list[list[int]]
    flagged: list[list[int]]

    @classmethod
    def empty(cls, max_order: int) -> _Holes:
        return cls([[] for _ in range(max_order + 1)], [[] for _ in range(max_order + 1)])


@dataclass
class ZoneLayout:
    """A planned zone: free blocks (pfn, order, migratetype), filler blocks (pfn, order),
    and the migratetype of every pageblock."""

    nr_pages: int
    pageblock_types: list[int]
    free_blocks: list[tuple[int, int, int]]
    filler_blocks: list[tuple[int, int]]


def _decompose(start: int, end: int, max_order: int) -> list[tuple[int, int]]:
    """[start, end) as the largest aligned blocks of at most max_order, in pfn order."""
    blocks = []
    pfn = start
    while pfn < end:
        order = max_order
        while order and (pfn & ((1 << order) - 1) or pfn + (1 << order) > end):
            order -= 1
        blocks.append((pfn, order))
        pfn += 1 << order
    return blocks


def plan_layout(nr_pages: int, free_by_type: Sequence[Sequence[int]],
                pageblock_types: Sequence[int], *, max_order: int = 10,
                pageblock_order: int = 9, cross_type_flags: bool = True,
                spread: random.Random | None = None) -> ZoneLayout:
    """Place ``free_by_type[mt][order]`` free blocks in pageblocks of type mt.

    ``pageblock_types`` gives each pageblock's migratetype. Raises FragsimError when a
    type's pageblocks cannot hold its free blocks. ``cross_type_flags`` False does not
    reserve an allocated page in a hole whose buddy hole is of another type (the caller
    then checks that no two free buddies came out: :func:`_free_buddies`). ``spread``:
    each block goes to a hole drawn at random from the type's holes of the order needed
    (the rules above unchanged), instead of the lowest: free memory scattered over the
    type's pageblocks as on a machine that has run a while, not packed at its start.
    """
    def take(lst: list[int]) -> int:
        if spread is not None and len(lst) > 1:
            i = spread.randrange(len(lst))
            lst[i], lst[-1] = lst[-1], lst[i]
        return lst.pop()

    nr_pb = len(pageblock_types)
    pb_pages = 1 << pageblock_order
    holes = [_Holes.empty(max_order) for _ in range(MIGRATE_TYPES)]
    # Runs of equal type, decomposed into aligned holes.
    b = 0
    runs: list[tuple[int, int, int]] = []
    while b < nr_pb:
        e = b
        while e < nr_pb and pageblock_types[e] == pageblock_types[b]:
            e += 1
        runs.append((b * pb_pages, min(e * pb_pages, nr_pages), pageblock_types[b]))
        b = e
    hole_at: dict[int, tuple[int, int]] = {}  # pfn -> (order, type), for the buddy rule
    ordered: list[tuple[int, int, int]] = []
    for start, end, mt in runs:
        for pfn, order in _decompose(start, end, max_order):
            hole_at[pfn] = (order, mt)
            ordered.append((pfn, order, mt))
    for pfn, order, mt in ordered:
        buddy = pfn ^ (1 << order)
        buddy_order, buddy_mt = hole_at.get(buddy, (-1, -1))
        flag = (buddy < pfn and buddy_order == order and order < max_order
                and (cross_type_flags or buddy_mt == mt))
        (holes[mt].flagged if flag else holes[mt].free)[order].append(pfn)
    for mt in range(MIGRATE_TYPES):
        for lst in (*holes[mt].free, *holes[mt].flagged):
            lst.reverse()  # pop() takes the lowest pfn

    free_blocks: list[tuple[int, int, int]] = []
    for mt in range(MIGRATE_TYPES):
        counts = free_by_type[mt] if mt < len(free_by_type) else ()
        h = holes[mt]
        for order in range(len(counts) - 1, -1, -1):
            for _ in range(counts[order]):
                if order > max_order:
                    raise FragsimError(f"expected orders 0..{max_order}, got a free block of "
                                       f"order {order}")
                if h.free[order]:
                    free_blocks.append((take(h.free[order]), order, mt))
                    continue
                # Split the smallest larger hole; a flagged one first at equal order, as
                # it must keep an allocated page anyway.
                for k in range(order + 1, max_order + 1):
                    if h.flagged[k]:
                        pfn = take(h.flagged[k])
                        break
                    if h.free[k]:
                        pfn = take(h.free[k])
                        break
                else:
                    raise FragsimError(
                        f"cannot place the free blocks: the {MIGRATETYPE_NAMES[mt]} "
                        f"pageblocks hold no room for another order-{order} block "
                        f"(pagetypeinfo and buddyinfo disagree, or the zone is too small)"
                    )
                # The block's buddy keeps an allocated page (and carries on the
                # obligation of a flagged hole); the larger pieces may be free whole.
                free_blocks.append((pfn, order, mt))
                h.flagged[order].append(pfn + (1 << order))
                for j in range(order + 1, k):
                    h.free[j].append(pfn + (1 << j))
    filler = [(pfn, order) for mt in range(MIGRATE_TYPES)
              for lists in (holes[mt].free, holes[mt].flagged)
              for order, lst in enumerate(lists) for pfn in lst]
    filler.sort()
    free_blocks.sort()
    return ZoneLayout(nr_pages, list(pageblock_types), free_blocks, filler)


def _free_buddies(free_blocks: Sequence[tuple[int, int, int]], max_order: int) -> bool:
    """Two free blocks that are buddies of the same order (__free_one_page would merge
    them)."""
    placed = {(pfn, order) for pfn, order, _ in free_blocks}
    return any(order < max_order and (pfn ^ (1 << order), order) in placed
               for pfn, order in placed)


def _pageblock_types(nr_pageblocks: int, counts: Sequence[int] | None,
                     spread_chunk: int = 0) -> list[int]:
    """Runs by type in _RUN_ORDER; counts are scaled down to the zone's pageblocks if
    they sum to more, and MOVABLE takes the remainder (never scaled up: pagetypeinfo
    counts the pageblocks there are, and a zone rounded up to a largest block has a few
    more).

    ``spread_chunk`` > 0: the other types' pageblocks, in _RUN_ORDER, cut into groups of
    ``spread_chunk`` (the pageblocks of one largest block), the groups spaced evenly
    over the zone's chunks with MOVABLE between them, as unmovable and reclaimable
    pageblocks are spread over a zone that has run a while (grouping by mobility keeps
    each largest block to one kind where it can, so whole free MOVABLE largest blocks
    stay possible)."""
    if counts is None:
        return [MIGRATE_MOVABLE] * nr_pageblocks
    counts = list(counts) + [0] * (MIGRATE_TYPES - len(counts))
    total = sum(counts)
    if total > nr_pageblocks:
        counts = [c * nr_pageblocks // total for c in counts]
    counts[MIGRATE_MOVABLE] += nr_pageblocks - sum(counts)
    others = [mt for mt in _RUN_ORDER if mt != MIGRATE_MOVABLE for _ in range(counts[mt])]
    groups = [others[i:i + spread_chunk] for i in range(0, len(others), spread_chunk)] \
        if spread_chunk > 0 else []
    full = nr_pageblocks // spread_chunk if spread_chunk > 0 else 0
    types: list[int] = []
    if not groups or len(groups) > full:
        for mt in _RUN_ORDER:
            types += [mt] * counts[mt]
        return types
    chunks: list[list[int] | None] = [None] * full
    for i, group in enumerate(groups):
        slot = (2 * i + 1) * full // (2 * len(groups))
        while chunks[slot] is not None:
            slot = (slot + 1) % full
        chunks[slot] = group
    for chunk in chunks:
        group = chunk or []
        types += group + [MIGRATE_MOVABLE] * (spread_chunk - len(group))
    return types + [MIGRATE_MOVABLE] * (nr_pageblocks - len(types))


# --------------------------------------------------------------------------- the zone


class FillerPool:
    """The allocated filler of a synthesized zone, by pageblock type; a page allocator
    (sim/slab.py's PageAllocator signature) that hands it out, so that slab pages of
    the initial population come from memory buddyinfo already counted as used."""

    def __init__(self, zone: Zone, blocks: Iterable[tuple[int, int]]) -> None:
        self.zone = zone
        self.by_type: list[list[list[int]]] = [
            [[] for _ in range(zone.max_order + 1)] for _ in range(MIGRATE_TYPES)
        ]
        for pfn, order in sorted(blocks, reverse=True):
            self.by_type[zone.pageblock_migratetype(pfn)][order].append(pfn)
        self.handed_out = 0  # blocks given to slab caches
        self.fallbacks = 0  # of those, from a pageblock of another type
        self.from_free_lists = 0  # filler ran out: taken from the free lists instead
        self.finished = False

    def take(self, order: int, migratetype: int) -> int | None:
        """An allocated block of ``order`` (split from a larger filler block if need
        be), from a pageblock of ``migratetype`` if any, else of another type."""
        for mt in (migratetype, *[m for m in _RUN_ORDER if m != migratetype]):
            lists = self.by_type[mt]
            for k in range(order, len(lists)):
                if lists[k]:
                    pfn = lists[k].pop()
                    for piece, j in zip(self.zone.split_isolated_page(pfn, k, order),
                                        range(k - 1, order - 1, -1), strict=True):
                        lists[j].append(piece)
                    if mt != migratetype:
                        self.fallbacks += 1
                    self.handed_out += 1
                    return pfn
        return None

    def page_allocator(self, order: int, migratetype: int, cpu: int, owner: int,
                       alloc_flags: int, noretry: bool) -> int | None:
        """``PageAllocator`` for SlabCache: filler first, then the zone as usual."""
        pfn = self.take(order, migratetype) if not self.finished else None
        if pfn is None:
            self.from_free_lists += 1
            return self.zone.alloc(order, migratetype, cpu, owner, alloc_flags)
        self.zone.set_owner(pfn, owner)
        return pfn

    def finish(self) -> None:
        """Give the remaining filler its owner by pageblock type; no more handing out."""
        if self.finished:
            return
        for mt, lists in enumerate(self.by_type):
            owner = _FILLER_OWNER[mt]
            for lst in lists:
                for pfn in lst:
                    self.zone.set_owner(pfn, owner)
        self.finished = True

    @property
    def nr_pages(self) -> int:
        return sum(len(lst) << order for lists in self.by_type
                   for order, lst in enumerate(lists))


def _allocate_everything(zone: Zone) -> list[tuple[int, int]]:
    """Take every free block of a fresh zone as an allocated OWNER_NONE block (the boot
    layout), smallest blocks first while the watermark lets ``isolate_free_page`` take
    them, the rest with ALLOC_NO_WATERMARKS."""
    taken = []
    for order in range(zone.max_order + 1):
        for mt in range(MIGRATE_TYPES):
            for pfn in zone.free_blocks(order, mt):
                if zone.isolate_free_page(pfn):
                    taken.append((pfn, order))
    while zone.nr_free_pages or zone.pcp_pages:
        zone.drain_all_pages()
        order = max(o for o in range(zone.max_order + 1) if zone.nr_free[o])
        pfn = zone.alloc(order, MIGRATE_MOVABLE, 0, OWNER_NONE, ALLOC_NO_WATERMARKS)
        if pfn is None:
            raise AssertionError(f"cannot allocate a free order-{order} block")
        taken.append((pfn, order))
    # A per-CPU list refilled by the last allocations holds blocks we took above.
    if zone.pcp_pages:
        raise AssertionError("per-CPU lists still hold pages")
    return taken


def _split_to(zone: Zone, pfn: int, order: int, want: dict[int, int]) -> None:
    """Split the allocated block (pfn, order) until every piece is a block of ``want``."""
    stack = [(pfn, order)]
    while stack:
        pfn, order = stack.pop()
        if want.get(pfn) == order:
            continue
        if order == 0:
            raise AssertionError(f"layout has no block at pfn {pfn}")
        (upper,) = zone.split_isolated_page(pfn, order, order - 1)
        stack.append((upper, order - 1))
        stack.append((pfn, order - 1))


def synthesize_zone(
    nr_free: Sequence[int],
    nr_pages: int | None = None,
    *,
    free_by_type: Sequence[Sequence[int | None]] | None = None,
    pageblock_counts: Sequence[int] | None = None,
    spread: int | None = None,
    onlined: int = 0,
    **zone_options: object,
) -> tuple[Zone, FillerPool]:
    """A Zone whose free lists hold exactly ``nr_free[order]`` blocks, and its filler.

    ``free_by_type[mt][order]`` (pagetypeinfo's free counts; None for ">100000") and
    ``pageblock_counts[mt]`` (its "Number of blocks type" row) make the per-type counts
    exact too. ``nr_pages`` defaults to the pageblocks counted, or else to twice the free
    pages, rounded up to a whole largest block. ``spread``, a seed: the spread layout
    (pageblock types interleaved, free blocks scattered; ``plan_layout``), else packed
    runs. ``zone_options`` go to Zone. Call ``filler.finish()`` (or use
    :func:`zone_from_buddyinfo`) once slab caches took their pages.

    ``onlined``: the zone's last ``onlined`` pages (whole pageblocks, the rest of the
    zone a whole number of largest blocks) are memory onlined after the snapshot was
    read, as mm/memory_hotplug.c ``online_pages`` puts it in the zone:
    ``move_pfn_range_to_zone`` types its pageblocks MIGRATE_MOVABLE and
    ``online_pages_range`` frees it in the largest aligned chunks up to MAX_PAGE_ORDER
    (``generic_online_page``, ``__free_pages_core``: to the free lists' tail,
    FPI_TO_TAIL), lowest pfn first, after the snapshot's own free blocks. The snapshot's
    counts then describe the rest of the zone, and the zone's free lists hold them plus
    these blocks.
    """
    nr_free = list(nr_free)
    max_order = int(zone_options.get("max_order", len(nr_free) - 1))  # type: ignore[arg-type]
    zone_options["max_order"] = max_order
    pageblock_order = int(zone_options.get("pageblock_order", 9))  # type: ignore[arg-type]
    if len(nr_free) != max_order + 1:
        raise FragsimError(f"buddyinfo: expected {max_order + 1} free counts (orders 0.."
                           f"{max_order}), got {len(nr_free)}")
    free_pages = sum(n << o for o, n in enumerate(nr_free))
    if nr_pages is None:
        if pageblock_counts is not None and sum(pageblock_counts):
            nr_pages = sum(pageblock_counts) << pageblock_order
        else:
            block = 1 << max_order
            nr_pages = max(block, -(-2 * free_pages // block) * block)
    if free_pages > nr_pages:
        raise FragsimError(f"buddyinfo: {free_pages} free pages do not fit in a zone of "
                           f"{nr_pages} pages")
    zone = Zone(nr_pages, **zone_options)  # type: ignore[arg-type]
    base = nr_pages - onlined  # the snapshot's own pages
    pb_pages = 1 << pageblock_order
    if onlined < 0 or onlined % pb_pages or base % (1 << max_order) or free_pages > base:
        raise FragsimError(f"onlined: expected whole pageblocks above a whole number of "
                           f"largest blocks holding the {free_pages} free pages, got "
                           f"{onlined} of {nr_pages} pages")
    online_blocks = _decompose(base, nr_pages, max_order)
    if free_by_type is not None:
        by_type = derive_capped_counts(free_by_type, nr_free)
        sums = [sum(by_type[mt][o] for mt in range(len(by_type))) for o in range(len(nr_free))]
        if sums != nr_free:
            raise FragsimError(f"pagetypeinfo and buddyinfo disagree: per-order free blocks "
                               f"{sums} in pagetypeinfo, {nr_free} in buddyinfo")
    else:
        by_type = [[0] * len(nr_free) for _ in range(MIGRATE_TYPES)]
        by_type[MIGRATE_MOVABLE] = list(nr_free)
    if not zone.grouping_by_mobility:
        # One list per order, every pageblock UNMOVABLE.
        by_type = [[0] * len(nr_free) for _ in range(MIGRATE_TYPES)]
        by_type[MIGRATE_UNMOVABLE] = list(nr_free)
        types = [MIGRATE_UNMOVABLE] * zone.nr_pageblocks
    else:
        types = _pageblock_types(-(-base // pb_pages), pageblock_counts,
                                 0 if spread is None else 1 << (max_order - pageblock_order))
        types += [MIGRATE_MOVABLE] * (zone.nr_pageblocks - len(types))
        # A type with free blocks needs pageblocks of its own.
        for mt, counts in enumerate(by_type):
            need = sum(n << o for o, n in enumerate(counts))
            have = types.count(mt) << pageblock_order
            if need > have:
                raise FragsimError(
                    f"pagetypeinfo: {need} free {MIGRATETYPE_NAMES[mt]} pages do not fit in "
                    f"{types.count(mt)} {MIGRATETYPE_NAMES[mt]} pageblocks"
                )
    rng = None if spread is None else random.Random(spread)
    base_types = types[:-(-base // pb_pages)]
    try:
        layout = plan_layout(base, by_type, base_types, max_order=max_order,
                             pageblock_order=pageblock_order, spread=rng)
    except FragsimError as e:
        # Holes at the boundary of two types' runs were kept from being free whole; a
        # zone like the real DMA (an Unmovable pageblock with a free order-8 block below
        # a free Movable order-9 one) needs one of them whole. Without that reservation
        # the layout is valid when no two free buddies come out.
        rng = None if spread is None else random.Random(spread)
        layout = plan_layout(base, by_type, base_types, max_order=max_order,
                             pageblock_order=pageblock_order, cross_type_flags=False,
                             spread=rng)
        if _free_buddies(layout.free_blocks, max_order):
            raise e from None

    want = {pfn: order for pfn, order, _ in layout.free_blocks}
    want.update(layout.filler_blocks)
    want.update(online_blocks)
    for pfn, order in _allocate_everything(zone):
        _split_to(zone, pfn, order, want)
    # Every block is allocated now, so no free list depends on the types as they change.
    for block, mt in enumerate(types):
        zone.set_pageblock_migratetype(block << pageblock_order, mt)
    for pfn, order, _ in layout.free_blocks:
        zone.free(pfn, order, 0, to_tail=True)
    for pfn, order in online_blocks:  # online_pages_range, lowest pfn first
        zone.free(pfn, order, 0, to_tail=True)
    for pfn, order in online_blocks:
        nr_free[order] += 1
        by_type[types[pfn >> pageblock_order]][order] += 1
    # The allocations above were bookkeeping, not workload: forget their side effects.
    zone.stats = BuddyStats()
    zone.zone_below_high = False
    zone.zone_boosted_watermark = False
    zone.watermark_boost = 0

    if list(zone.nr_free) != nr_free:
        raise AssertionError(f"synthesized zone has nr_free {zone.nr_free}, wanted {nr_free}")
    got = zone.nr_free_by_type()
    for mt in range(len(by_type)):
        if got[mt] != list(by_type[mt]):
            raise AssertionError(f"synthesized zone has {got[mt]} free blocks of type {mt}, "
                                 f"wanted {by_type[mt]}")
    zone.check()
    return zone, FillerPool(zone, layout.filler_blocks)


def zone_from_buddyinfo(
    nr_free: Sequence[int],
    nr_pages: int | None = None,
    *,
    free_by_type: Sequence[Sequence[int | None]] | None = None,
    pageblock_counts: Sequence[int] | None = None,
    **zone_options: object,
) -> Zone:
    """A Zone with exactly buddyinfo's free block counts (see :func:`synthesize_zone`);
    the filler is owned by pageblock type."""
    zone, filler = synthesize_zone(nr_free, nr_pages, free_by_type=free_by_type,
                                   pageblock_counts=pageblock_counts, **zone_options)
    filler.finish()
    return zone


@dataclass
class ZoneSnapshot:
    """The rows of one zone picked out of buddyinfo / pagetypeinfo / zoneinfo."""

    name: str
    nr_free: list[int]
    free_by_type: list[list[int | None]] | None = None
    pageblock_counts: list[int] | None = None
    nr_pages: int | None = None  # zoneinfo's managed pages


def pick_zone(buddyinfo: Sequence[ZoneFree], pagetypeinfo: Pagetypeinfo | None = None,
              zone: str | None = None, node: int = 0,
              managed_pages: dict[str, int] | None = None) -> ZoneSnapshot:
    """One zone's rows. By default "Normal" (where GFP_KERNEL and movable allocations go
    first), else the last zone listed."""
    rows = [z for z in buddyinfo if z.node == node]
    if not rows:
        raise FragsimError(f"buddyinfo: expected a zone of node {node}, got none")
    if zone is None:
        names = [z.zone for z in rows]
        zone = "Normal" if "Normal" in names else names[-1]
    row = next((z for z in rows if z.zone == zone), None)
    if row is None:
        raise FragsimError(f"buddyinfo: expected zone {zone!r} of node {node}, got "
                           f"{', '.join(z.zone for z in rows)}")
    snap = ZoneSnapshot(zone, list(row.nr_free))
    if pagetypeinfo is not None:
        key = (node, zone)
        if key in pagetypeinfo.free:
            snap.free_by_type = [list(c) for c in pagetypeinfo.free[key]]
            snap.pageblock_counts = list(pagetypeinfo.blocks[key])
    if managed_pages and zone in managed_pages:
        snap.nr_pages = managed_pages[zone]
    return snap


# --------------------------------------------------------------------------- slab caches


@dataclass
class InitialPopulation:
    """Objects created from slabinfo, per cache: the objects that were live before the
    trace began (or, for ``active_objs`` above the true count, free per-CPU slots)."""

    objects: dict[str, list[int]] = field(default_factory=dict)
    policy: str = "even"

    def count(self, name: str) -> int:
        return len(self.objects.get(name, ()))

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.objects.values())


ONLINE_POLICIES = ("pagetypeinfo", "managed")


def snapshot_zones(buddyinfo: Sequence[ZoneFree], zoneinfo: Sequence[ZoneinfoZone], *,
                   node: int = 0, sources: tuple[str, str] = ("buddyinfo", "zoneinfo"),
                   pagetypeinfo: Pagetypeinfo | None = None, online: str = "pagetypeinfo",
                   ptsource: str = "pagetypeinfo", pageblock_order: int = 9,
                   ) -> list[tuple[ZoneFree, ZoneinfoZone, int, int, int]]:
    """Each buddyinfo zone of ``node`` with its zoneinfo entry, its start pfn, its
    size as :func:`node_from_snapshots` builds it (see there) and the pages of it
    onlined after the snapshot (``online``); the checks that make a snapshot unusable,
    as one FragsimError line naming the file.

    pagetypeinfo's pageblock counts are the zone's online pageblocks (mm/vmstat.c
    ``pagetypeinfo_showblockcount_print`` counts only those ``pfn_to_online_page``
    finds). A zone whose zoneinfo ``present`` pages go beyond them (a virtual machine's
    hot-pluggable memory that is not online) is built of those pageblocks alone. A
    zoneinfo that manages more pages than those pageblocks hold was not read with this
    pagetypeinfo: memory came online in between. ``online: pagetypeinfo`` (the
    default) refuses such a snapshot; ``online: managed`` takes zoneinfo's managed
    pages as online, the ones pagetypeinfo lacks onlined after it was read
    (:func:`synthesize_zone`'s ``onlined``)."""
    if online not in ONLINE_POLICIES:
        raise FragsimError(f"machine.online: expected one of {', '.join(ONLINE_POLICIES)}, "
                           f"got {online!r}")
    bsrc, zsrc = sources
    rows = [row for row in buddyinfo if row.node == node]
    if not rows:
        raise FragsimError(f"{bsrc}: expected a zone of node {node}, got none")
    info = {z.zone: z for z in zoneinfo if z.node == node}
    out = []
    end = 0
    max_order = len(rows[0].nr_free) - 1
    block = 1 << max_order
    for row in rows:
        real = info.get(row.zone)
        if real is None or not real.managed:
            raise FragsimError(
                f"{bsrc}: zone {row.zone} of node {node} is not a populated zone of {zsrc} "
                f"({', '.join(n for n, z in info.items() if z.managed) or 'none'})")
        free = sum(n << o for o, n in enumerate(row.nr_free))
        if free > real.managed:
            raise FragsimError(
                f"{bsrc}: zone {row.zone} of node {node} has {free} free pages, more than "
                f"the {real.managed} pages it manages in {zsrc}")
        # The zone's present pages from its largest-block-aligned start, the pages it
        # does not manage (reserved) allocated filler: a zone of only its managed pages
        # could not hold the real free blocks (DMA's order-10 blocks sit at pfns 1024,
        # 2048 and 3072, up to its end at 4096; a whole free DMA32 would merge into
        # other orders than the real one, split by its reserved pages). A zone's holes
        # (spanned but not present: DMA32's PCI hole below 4 GiB) are left out, as
        # pagetypeinfo's pageblock counts leave them out (no valid struct page).
        start = (real.start_pfn or 0) // block * block
        start = max(start, -(-end // block) * block)
        present_end = (real.start_pfn or 0) + real.present
        counted = pagetypeinfo.blocks.get((node, row.zone)) if pagetypeinfo else None
        if counted and sum(counted):
            pb_pages = (pagetypeinfo.pages_per_block  # type: ignore[union-attr]
                        or 1 << 9)
            present_end = (real.start_pfn or 0) + sum(counted) * pb_pages
        nr_pages = max(-(-(present_end - start) // block) * block, real.managed)
        nr_pages = min(nr_pages, max((real.start_pfn or 0) + real.spanned - start,
                                     real.managed))
        onlined = 0
        blocks = pagetypeinfo.blocks.get((node, row.zone)) if pagetypeinfo else None
        pb_order = pageblock_order
        if blocks is not None and sum(blocks) << pb_order < nr_pages:
            counted = sum(blocks) << pb_order
            if real.managed > counted:
                if online == "pagetypeinfo":
                    raise FragsimError(
                        f"{zsrc}: zone {row.zone} of node {node} manages {real.managed} "
                        f"pages, more than the {sum(blocks)} pageblocks ({counted} pages) "
                        f"{ptsource} counts online: the two were not read together (memory "
                        f"came online in between; machine.online: managed takes it as "
                        f"onlined after the snapshot)")
                onlined = -(-(real.managed - counted) >> pb_order) << pb_order
            nr_pages = -(-counted // block) * block + onlined
        out.append((row, real, start, nr_pages, onlined))
        end = start + nr_pages
    return out


def node_from_snapshots(
    buddyinfo: Sequence[ZoneFree],
    zoneinfo: Sequence[ZoneinfoZone],
    pagetypeinfo: Pagetypeinfo | None = None,
    *,
    node: int = 0,
    sources: tuple[str, str] = ("buddyinfo", "zoneinfo"),
    spread: int | None = None,
    fillers: dict[int, FillerPool] | None = None,
    online: str = "pagetypeinfo",
    ptsource: str = "pagetypeinfo",
    **zone_options: object,
) -> Node:
    """A ``Node`` (sim/mmzone.py) with every zone of ``node`` in buddyinfo, each
    synthesized as :func:`zone_from_buddyinfo` builds one, spanning its zoneinfo
    pages from its start pfn rounded down to a largest block (DMA's pfn 1 is pfn 0
    here; a zone never overlaps the one below), with its managed pages as
    ``managed_pages``; the pages it does not manage (holes, reserved) are allocated
    filler, owned by pageblock type like the rest (a MOVABLE one may be migrated).
    Watermarks and lowmem_reserve are the kernel's formulas on the managed pages (they
    give the real zoneinfo's). Bad input is one FragsimError line naming the file: a
    buddyinfo zone zoneinfo lacks, or more free pages than the zone manages.

    ``spread``: a seed for :func:`synthesize_zone`'s spread layout. ``fillers``, a dict
    to fill: each zone's filler is left unowned there, by zone index (zone pfns), for
    the caller to hand slab pages out of and ``finish``. A zone is only the pageblocks
    pagetypeinfo counts online, plus with ``online: managed`` the managed pages they
    lack, onlined after the snapshot (:func:`snapshot_zones`)."""
    spans: list[ZoneSpan] = []
    zones: list[Zone] = []
    bsrc = sources[0]
    for row, real, start, nr_pages, onlined in snapshot_zones(
            buddyinfo, zoneinfo, node=node, sources=sources, pagetypeinfo=pagetypeinfo,
            online=online, ptsource=ptsource,
            pageblock_order=int(zone_options.get("pageblock_order", 9))):  # type: ignore[call-overload]
        snap = pick_zone(buddyinfo, pagetypeinfo, row.zone, node,
                         managed_pages={row.zone: real.managed})
        try:
            zone, filler = synthesize_zone(snap.nr_free, nr_pages,
                                           free_by_type=snap.free_by_type,
                                           pageblock_counts=snap.pageblock_counts,
                                           spread=spread, onlined=onlined, **zone_options)
        except FragsimError as e:
            raise FragsimError(f"{bsrc}: zone {row.zone} of node {node}: {e}") from None
        if fillers is None:
            filler.finish()
        else:
            fillers[zone_index(row.zone)] = filler
        zone.managed_pages = real.managed
        spans.append(ZoneSpan(zone_index(row.zone), start, zone.nr_pages, zone.nr_pages))
        zones.append(zone)
    return Node(spans, zones=zones, node_id=node)


# A snapshot's files; the first two are needed, the others read when there.
SNAPSHOT_FILES = ("buddyinfo", "zoneinfo", "pagetypeinfo", "slabinfo")


def snapshot_paths(path: str | os.PathLike[str]) -> dict[str, Path]:
    """The files of a snapshot (SNAPSHOT_FILES): ``DIR/buddyinfo``, ``DIR/zoneinfo``,
    ... for a directory, else ``PREFIX.buddyinfo`` and so on (as tests/data's
    ``before.*`` sets are named)."""
    base = Path(path)
    if base.is_dir():
        return {name: base / name for name in SNAPSHOT_FILES}
    return {name: Path(f"{base}.{name}") for name in SNAPSHOT_FILES}


def node_from_snapshot_dir(path: str | os.PathLike[str], **zone_options: object) -> Node:
    """:func:`node_from_snapshots` on a snapshot's files (:func:`read_machine_snapshot`):
    a missing buddyinfo or zoneinfo, like any inconsistency, is one FragsimError line
    naming the file."""
    snap = read_machine_snapshot(path)
    return node_from_snapshots(snap.buddyinfo, snap.zoneinfo, snap.pagetypeinfo,
                               sources=(snap.sources["buddyinfo"], snap.sources["zoneinfo"]),
                               **zone_options)


@dataclass
class MachineSnapshot:
    """A real machine's snapshot, read and checked (``machine.from``): what a machine is
    built from (sim/machine.py)."""

    path: str
    buddyinfo: list[ZoneFree]
    zoneinfo: list[ZoneinfoZone]
    pagetypeinfo: Pagetypeinfo | None
    slabinfo: list[SlabinfoEntry] | None
    sources: dict[str, str]
    zone_pages: list[tuple[str, int]]  # (zone, pages as built), in pfn order
    cpus: int
    online: str = "pagetypeinfo"  # snapshot_zones' policy the zones were sized with

    @property
    def nr_pages(self) -> int:
        return sum(pages for _, pages in self.zone_pages)


def _read_snapshot_file(file: Path, optional: bool) -> str | None:
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if optional:
            return None
        raise FragsimError(f"{file}: cannot read: no such file (a snapshot needs its "
                           f"{' and '.join(SNAPSHOT_FILES[:2])})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FragsimError(f"{file}: cannot read: "
                           f"{getattr(e, 'strerror', None) or e}") from None


_MACHINE_SNAPSHOTS: dict[tuple, MachineSnapshot] = {}


def read_machine_snapshot(path: str | os.PathLike[str], online: str = "pagetypeinfo"
                          ) -> MachineSnapshot:
    """The files of a snapshot (:func:`snapshot_paths`), parsed and checked as
    :func:`node_from_snapshots` checks them (``online``: see :func:`snapshot_zones`);
    every problem is one FragsimError line naming the file. The CPUs are the pagesets
    zoneinfo prints for its first populated zone. Read once per path, modification time
    and policy."""
    files = snapshot_paths(path)
    stamps = []
    for file in files.values():  # every file's change time and size: a changed one rereads
        try:
            st = file.stat()
            stamps.append((st.st_mtime_ns, st.st_size))
        except OSError:
            stamps.append(None)
    key = (str(Path(path).resolve()), tuple(stamps), online)
    if key in _MACHINE_SNAPSHOTS:
        return _MACHINE_SNAPSHOTS[key]
    snap = read_machine_snapshot_files(**files, online=online)
    snap.path = str(path)
    _MACHINE_SNAPSHOTS[key] = snap
    return snap


class NodeFiller:
    """The zones' fillers as one slab page allocator handing out node pfns, from the
    zones in zonelist order (Normal first, as GFP_KERNEL allocations go)."""

    def __init__(self, node: Node, fillers: dict[int, FillerPool]) -> None:
        self.node = node
        self.fillers = fillers

    def page_allocator(self, order: int, migratetype: int, cpu: int, owner: int,
                       alloc_flags: int, noretry: bool) -> int | None:
        for zone in self.node.zonelist:
            pfn = self.fillers[zone.zone_idx].take(order, migratetype)
            if pfn is not None:
                zone.set_owner(pfn, owner)
                return zone.zone_start_pfn + pfn
        return self.node.alloc(order, migratetype, cpu, owner, alloc_flags)


def apply_zoneinfo_watermarks(node: Node, zoneinfo: Sequence[ZoneinfoZone]) -> None:
    """Each zone's ``min``, ``low``, ``high`` and ``protection`` (lowmem_reserve) as its
    zoneinfo prints them: the kernel's own, whatever sysctls set them."""
    info = {z.zone: z for z in zoneinfo if z.node == node.node_id}
    for zone in node.zonelist:
        real = info.get(ZONE_NAMES[zone.zone_idx])
        if real is None:
            continue
        zone.set_watermarks(real.min, real.low - real.min, node.min_free_kbytes)
        if real.protection:
            zone.lowmem_reserve = (list(real.protection) + [0] * MAX_NR_ZONES)[:MAX_NR_ZONES]


PAGESET_POLICIES = ("snapshot", "empty")


def start_from_snapshot(node: Node, caches: SlabCaches, snap: MachineSnapshot,
                        fillers: dict[int, FillerPool], occupancy: str = "even",
                        pagesets: str = "snapshot") -> InitialPopulation | None:
    """A snapshot's node made the machine it was: the slab caches and objects of its
    slabinfo out of the zones' filler (:class:`NodeFiller`), each CPU's pagesets as
    zoneinfo prints them (``high``, ``batch``, ``high_min``, ``high_max``, and ``count``
    order-0 pages freed onto the list, taken from MOVABLE filler: pages the CPU freed,
    which buddyinfo does not count), then the rest of the filler owned by its pageblock
    type: the kernel's own memory, never freed. The zones' counters start at zero.

    ``pagesets: empty`` keeps zoneinfo's ``batch``, ``high_min`` and ``high_max`` (the
    zone's sizes: ``zone_set_pageset_high_and_batch``) but starts every list empty at
    ``high = high_min``, as a pageset is after ``pageset_update`` (which sets only the
    limits) and the first ``clamp(pcp->high, high_min, high_max)``: for a zoneinfo read
    at another time than the free lists, whose pageset counts are that time's freed
    pages. A ``count`` the zone's allocated MOVABLE memory cannot hold is one
    FragsimError line: those free pages would be pages buddyinfo counts as used."""
    if pagesets not in PAGESET_POLICIES:
        raise FragsimError(f"machine.pagesets: expected one of "
                           f"{', '.join(PAGESET_POLICIES)}, got {pagesets!r}")
    population = None
    if snap.slabinfo:
        population = populate_from_slabinfo(
            caches, snap.slabinfo, occupancy,
            filler=NodeFiller(node, fillers),  # type: ignore[arg-type]
            source=snap.sources.get("slabinfo", "slabinfo"))
    info = {z.zone: z for z in snap.zoneinfo if z.node == node.node_id}
    for zone in node.zonelist:
        filler = fillers[zone.zone_idx]
        for entry in info[ZONE_NAMES[zone.zone_idx]].pcp:
            cpu = entry["cpu"]
            if cpu >= zone.cpus:
                continue
            pcp = zone.pcp[cpu]
            pcp.set_limits(entry["batch"], entry["high_min"], entry["high_max"])
            if pagesets == "empty":
                pcp.high = entry["high_min"]
                continue
            pcp.high = entry["high"]
            for _ in range(entry["count"]):
                pfn = filler.take(0, MIGRATE_MOVABLE)
                if pfn is None or zone.pageblock_migratetype(pfn) != MIGRATE_MOVABLE:
                    name = ZONE_NAMES[zone.zone_idx]
                    total = sum(e["count"] for e in info[name].pcp)
                    raise FragsimError(
                        f"{snap.sources.get('zoneinfo', 'zoneinfo')}: zone {name}: the "
                        f"pagesets hold {total} free pages, more than the zone's allocated "
                        f"memory in MOVABLE pageblocks can give (the zoneinfo was not read "
                        f"with the free lists; machine.pagesets: empty starts them empty)")
                zone.free(pfn, 0, cpu)
    for filler in fillers.values():
        filler.finish()
    for zone in node.zonelist:
        zone.stats = BuddyStats()
        zone.nr_alloc_calls = zone.nr_free_calls = 0
    return population


def read_machine_snapshot_files(buddyinfo: str | os.PathLike[str],
                                zoneinfo: str | os.PathLike[str],
                                pagetypeinfo: str | os.PathLike[str] | None = None,
                                slabinfo: str | os.PathLike[str] | None = None,
                                online: str = "pagetypeinfo",
                                ) -> MachineSnapshot:
    """:func:`read_machine_snapshot` of files named one by one (the last two optional:
    a missing one is skipped)."""
    files = {"buddyinfo": Path(buddyinfo), "zoneinfo": Path(zoneinfo)}
    if pagetypeinfo is not None:
        files["pagetypeinfo"] = Path(pagetypeinfo)
    if slabinfo is not None:
        files["slabinfo"] = Path(slabinfo)
    texts = {name: _read_snapshot_file(file, name in ("pagetypeinfo", "slabinfo"))
             for name, file in files.items()}
    sources = {name: str(file) for name, file in files.items()}
    buddy = parse_buddyinfo(texts["buddyinfo"] or "", sources["buddyinfo"])
    zones_info = parse_zoneinfo(texts["zoneinfo"] or "", sources["zoneinfo"])
    ptinfo = (parse_pagetypeinfo(texts["pagetypeinfo"] or "", sources["pagetypeinfo"])
              if texts.get("pagetypeinfo") is not None else None)
    slabs = (parse_slabinfo(texts["slabinfo"] or "", sources["slabinfo"])
             if texts.get("slabinfo") is not None else None)
    if ptinfo is not None:
        for row in buddy:
            if (row.node, row.zone) not in ptinfo.free:
                raise FragsimError(f"{sources['pagetypeinfo']}: expected zone {row.zone} of "
                                   f"node {row.node} (it is in {sources['buddyinfo']}), "
                                   f"got none")
    zones = snapshot_zones(buddy, zones_info,
                           sources=(sources["buddyinfo"], sources["zoneinfo"]),
                           pagetypeinfo=ptinfo, online=online,
                           ptsource=sources.get("pagetypeinfo", "pagetypeinfo"))
    cpus = max(len(real.pcp) for _, real, _, _, _ in zones)
    if cpus < 1:
        raise FragsimError(f"{sources['zoneinfo']}: expected the pagesets of each CPU "
                           f"('cpu: N' entries), got none")
    return MachineSnapshot(str(buddyinfo), buddy, zones_info, ptinfo, slabs, sources,
                           [(row.zone, pages) for row, _, _, pages, _ in zones], cpus,
                           online)


# --------------------------------------------------------------------------- boot state

BOOT_FOOTPRINTS = {"idle-6.18": Path(__file__).parent / "data" / "idle-6.18"}


@dataclass
class BootFootprint:
    """The kernel's own memory on an idle machine, as shares of its managed pages,
    summed over its zones (``machine.boot``): ``free[mt][order]``, the share of the
    pages that are free blocks of that order on that migratetype's list (pagetypeinfo,
    its ``>100000`` caps derived from buddyinfo); ``blocks[mt]``, the share of the
    pageblocks of each migratetype. Everything else was in use."""

    name: str
    free: list[list[float]]
    blocks: list[float]

    @property
    def used(self) -> float:
        return 1.0 - sum(sum(row) for row in self.free)


def boot_footprint(name_or_path: str) -> BootFootprint:
    """A bundled footprint (``idle-6.18``) or that of a snapshot directory or prefix
    with a buddyinfo, pagetypeinfo and zoneinfo; one FragsimError line when unusable."""
    path = BOOT_FOOTPRINTS.get(name_or_path, Path(name_or_path))
    snap = read_machine_snapshot(path)
    if snap.pagetypeinfo is None:
        raise FragsimError(f"{path}: machine.boot: expected a pagetypeinfo beside the "
                           f"buddyinfo (the footprint needs the pageblocks' types), got none")
    managed = {z.zone: z.managed for z in snap.zoneinfo if z.node == 0}
    total = sum(managed[row.zone] for row in snap.buddyinfo if row.node == 0)
    orders = len(snap.buddyinfo[0].nr_free)
    free = [[0.0] * orders for _ in range(MIGRATE_TYPES)]
    blocks = [0.0] * MIGRATE_TYPES
    for row in snap.buddyinfo:
        if row.node != 0:
            continue
        per_type = derive_capped_counts(snap.pagetypeinfo.free[(0, row.zone)], row.nr_free)
        for mt, counts in enumerate(per_type):
            for order, n in enumerate(counts):
                free[mt][order] += (n << order) / total
        for mt, n in enumerate(snap.pagetypeinfo.blocks[(0, row.zone)]):
            blocks[mt] += n
    nr_blocks = sum(blocks)
    return BootFootprint(str(name_or_path), free, [b / nr_blocks for b in blocks])


def boot_zone(nr_pages: int, footprint: BootFootprint, seed: int,
              **zone_options: object) -> Zone:
    """A zone of ``nr_pages`` with the footprint's shares (:class:`BootFootprint`) of
    free blocks by migratetype and order (what a larger order cannot hold goes to the
    smaller ones) and of pageblocks by migratetype (rounded), laid out spread
    (:func:`synthesize_zone`, drawn with ``seed``); the pages in use are the kernel's
    own, owned by their pageblock's type and never freed."""
    pageblock_order = int(zone_options.get("pageblock_order", 9))  # type: ignore[arg-type]
    max_order = int(zone_options.get("max_order", 10))  # type: ignore[arg-type]
    nr_blocks = nr_pages >> pageblock_order
    counts = [round(share * nr_blocks) for share in footprint.blocks]
    counts[MIGRATE_MOVABLE] += nr_blocks - sum(counts)
    free_by_type: list[list[int | None]] = []
    for mt, row in enumerate(footprint.free):
        room = counts[mt] << pageblock_order
        per_order = [0] * (max_order + 1)
        carry = 0.0  # pages a larger order's rounding left for the smaller ones
        for order in range(max_order, -1, -1):
            want = (row[order] if order < len(row) else 0.0) * nr_pages + carry
            n = min(int(want) >> order, room >> order)
            room -= n << order
            carry = want - (n << order)
            per_order[order] = n
        free_by_type.append(list(per_order))
    nr_free = [sum(row[o] or 0 for row in free_by_type) for o in range(max_order + 1)]
    zone, filler = synthesize_zone(nr_free, nr_pages, free_by_type=free_by_type,
                                   pageblock_counts=counts, spread=seed, **zone_options)
    filler.finish()
    return zone


def _free_counts(nr_slabs: int, per_slab: int, free: int, policy: str) -> list[int]:
    """Free slots per slab (in allocation order) under an occupancy policy."""
    if policy == "even":
        base, extra = divmod(free, nr_slabs)
        return [base + (1 if i < extra else 0) for i in range(nr_slabs)]
    counts = [0] * nr_slabs
    i = nr_slabs - 1
    while free > 0:
        counts[i] = min(per_slab, free)
        free -= counts[i]
        i -= 1
    return counts


def populate_from_slabinfo(
    caches: SlabCaches,
    entries: Iterable[SlabinfoEntry],
    occupancy_policy: str = "even",
    *,
    filler: FillerPool | None = None,
    cpu: int = 0,
    source: str = "slabinfo",
    flags: Callable[[str], int | None] | None = None,
) -> InitialPopulation:
    """Create every cache of a slabinfo and fill it with ``active_objs`` objects in
    ``num_slabs`` slabs (see the module docstring for the occupancy policies).

    Slab pages come from ``filler`` when given (a synthesized zone's), else from the
    zone's free lists. ``flags(name)`` may override the flags table for a cache. A cache
    that already exists keeps its geometry and receives the objects.
    """
    if occupancy_policy not in OCCUPANCY_POLICIES:
        raise FragsimError(f"{source}: expected an occupancy policy "
                           f"{' or '.join(OCCUPANCY_POLICIES)}, got {occupancy_policy!r}")
    population = InitialPopulation(policy=occupancy_policy)
    for entry in entries:
        if entry.active_objs > entry.num_objs:
            raise FragsimError(f"{source}: {entry.name}: expected active_objs <= num_objs, "
                               f"got {entry.active_objs} > {entry.num_objs}")
        try:
            cache: SlabCache | None = caches[entry.name]
        except KeyError:
            cache = None
        if cache is None:
            try:
                geometry = SlabGeometry.from_slabinfo(entry, caches.zone.page_size)
            except ValueError as err:
                raise FragsimError(f"{source}: {err}") from None
            options: dict[str, object] = {}
            if flags is not None and (f := flags(entry.name)) is not None:
                options["flags"] = f
            cache = caches.create(entry.name, geometry=geometry, **options)
        population.objects[entry.name] = _fill(cache, entry, occupancy_policy, filler, cpu)
    return population


def _fill(cache: SlabCache, entry: SlabinfoEntry, policy: str, filler: FillerPool | None,
          cpu: int) -> list[int]:
    nr_slabs = entry.num_slabs
    if not nr_slabs:
        return []
    per_slab = cache.objects_per_slab
    total = nr_slabs * per_slab
    # Slots beyond num_objs (slabs that the kernel allocated at the fallback order) are
    # counted as free ones.
    free = total - entry.active_objs
    saved = cache.page_allocator
    if filler is not None:
        cache.page_allocator = filler.page_allocator
    try:
        oids = []
        for _ in range(total):
            oid = cache.alloc(cpu)
            if oid is None:
                raise FragsimError(
                    f"slabinfo: {entry.name}: no memory for its {nr_slabs} slabs in the "
                    f"simulated zone"
                )
            oids.append(oid)
    finally:
        cache.page_allocator = saved
    cache.flush_cpu_slabs(cpu)  # every slab full, on no list
    by_slab: dict[int, list[int]] = {}
    for oid in oids:
        by_slab.setdefault(id(cache.slab_of(oid)), []).append(oid)
    slabs = list(by_slab.values())
    keep: list[int] = []
    for objs, nfree in zip(slabs, _free_counts(len(slabs), per_slab, free, policy),
                           strict=True):
        split = len(objs) - nfree
        keep += objs[:split]
        for oid in reversed(objs[split:]):
            cache.free(oid, cpu)
    cache.flush_cpu_slabs(cpu)  # per-CPU partial slabs to the node partial list
    return keep
