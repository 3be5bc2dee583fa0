"""The buddy page allocator of one zone, following Linux 6.18 mm/page_alloc.c.

What is modelled, with the kernel's names:

- Free lists per order x migratetype (``zone->free_area[order].free_list[mt]``), a
  migratetype per pageblock, and merging with the buddy at ``pfn ^ (1 << order)``
  (``__free_one_page``). A freed block goes to the list tail when
  ``buddy_merge_likely`` holds or the caller passes FPI_TO_TAIL, else to the head.
- ``__rmqueue``: ``__rmqueue_smallest`` (with ``expand``), then ``__rmqueue_claim``
  (largest order down, ``should_try_claim_block``, ``try_to_claim_block`` with the
  asymmetric "alike pages" rule and the half-pageblock threshold; the watermark boost
  happens inside ``try_to_claim_block``), then ``__rmqueue_steal`` (smallest order up,
  the block keeps its type). ``rmqueue_bulk`` remembers the mode that found pages.
- Per-CPU page lists (``struct per_cpu_pages``): orders 0..PAGE_ALLOC_COSTLY_ORDER and
  pageblock_order (the THP list), one list per pcp migratetype and order, ``batch``
  from ``zone_batchsize``, ``high`` auto-tuned between ``high_min`` and ``high_max``
  (``nr_pcp_high``, ``nr_pcp_free``, ``nr_pcp_alloc``, ``free_frozen_page_commit``),
  ``free_pcppages_bulk``, ``drain_pages_zone`` and the vmstat ``decay_pcp_high``.
  A pcp page is not PageBuddy: it does not merge and is not counted in NR_FREE_PAGES.
- Watermarks: ``calculate_min_free_kbytes``, the THP raise of
  ``set_recommended_min_free_kbytes`` (mm/khugepaged.c), ``__setup_per_zone_wmarks``,
  ``boost_watermark``, ``__zone_watermark_ok``, ``zone_watermark_fast`` and the
  ZONE_BELOW_HIGH detection of ``get_page_from_freelist``. A request without
  ALLOC_RESERVES does not count the free pages of highatomic pageblocks
  (``__zone_watermark_unusable_free``: ``zone->nr_free_highatomic``, kept by
  ``account_freepages``).
- Highatomic reserves: ``rmqueue`` tries the pcp list first for pcp orders, then
  ``rmqueue_buddy``, which takes from MIGRATE_HIGHATOMIC first for ALLOC_HIGHATOMIC, and
  after a failed ``__rmqueue`` for ALLOC_OOM or ALLOC_NON_BLOCK.
  ``reserve_highatomic_pageblock`` runs after every ALLOC_HIGHATOMIC allocation (a
  high-order GFP_ATOMIC request in the slow path: sim/page_alloc.py): no reserve when 1 %
  of the zone is below a pageblock, up to ``ALIGN(managed / 100, pageblock_nr_pages)``
  pages, only a mergeable pageblock (``move_freepages_block`` to HIGHATOMIC; an
  allocation of pageblock order or more retypes its pageblocks, ``change_pageblock_range``).
  ``unreserve_highatomic_pageblock(migratetype, force)`` gives the pageblock of the first
  free HIGHATOMIC block, lowest order first, to the requesting migratetype, keeping one
  pageblock unless ``force``; sim/page_alloc.py calls it where 6.18 does. A page freed
  from a highatomic pageblock goes on the MOVABLE pcp list, and to the HIGHATOMIC free
  list when it reaches the buddy lists (``__free_one_page`` by pageblock type); it never
  merges with a buddy of another pageblock type.

Where this departs from the kernel, and why:

- Pfns 0..nr_pages-1: a zone keeps its own pfns, and a node of several zones
  (sim/mmzone.py) adds ``zone_start_pfn``, aligned to the largest block so that
  alignment relative to pfn 0 is the kernel's absolute alignment. A zone that is not a
  multiple of the largest block has its tail split into smaller aligned blocks, as
  boot-time ``__free_pages_core`` would.
- Alone, the zone stands for the whole machine: ``min_free_kbytes`` is computed for it
  with ``nr_populated_zones`` (default 3: DMA, DMA32 and Normal on an x86-64 machine
  over 4 GiB) entering only the THP formula
  ``pageblock_nr_pages * nr_zones * (2 + MIGRATE_PCPTYPES**2)``, and the whole reserve
  goes to it; its ``lowmem_reserve`` is all 0. In a node, sim/mmzone.py sets its share
  of the node's watermarks (``set_watermarks``) and its ``lowmem_reserve``, which
  ``__zone_watermark_ok`` adds for a request whose ``highest_zoneidx`` is above it.
- ALLOC_NOFRAGMENT makes ``__rmqueue_claim`` claim only whole pageblocks and skips
  ``__rmqueue_steal``; the zonelist walk and the retry without it are sim/mmzone.py's
  ``Node.get_page_from_freelist``. A hit on the per-CPU list is unaffected.
- No CMA, no memory isolation, no page reporting, no shuffle, no guard pages. The
  ISOLATE migratetype has lists so that the procfs formats are complete, but nothing
  puts pages there.
- Highatomic reserves, one zone: ``unreserve_highatomic_pageblock`` walks this zone only
  (the kernel walks the zonelist); there is no zone lock, so the reserve's unlocked
  pre-check and its recheck under the lock are one check. A pageblock reaching past
  the zone's last pfn (the zone's partial tail) is never reserved, as
  ``prep_move_freepages_block`` refuses a pageblock that straddles the zone.
  ``set_pageblock_migratetype`` (fragsim's own, for snapshots) keeps
  ``nr_reserved_highatomic`` equal to the HIGHATOMIC pageblocks, so that a snapshot's
  HighAtomic pageblocks are a reserve as the kernel's were.
- PageLRU is taken to hold for every allocated movable block (owner MOVABLE or PINNED):
  the kernel's per-CPU LRU caches that delay it are not modelled. This only matters
  for ``try_to_claim_block``'s count of movable pages.
- ``pcp: false`` frees and allocates straight through the buddy lists, which is what
  the kernel's boot pageset (high 0, batch 1) amounts to.
- ``free_list_order`` is a what-if: ``lifo`` is the kernel (head, or tail as above),
  ``fifo`` always adds at the tail, ``address`` always hands out the lowest pfn.
- ``grouping_by_mobility: false`` is ``page_group_by_mobility_disabled``: every
  request and every pageblock is UNMOVABLE, so there is one list per order.
- When ``__free_one_page`` merges a buddy of another migratetype, the kernel retypes
  the buddy's first pageblock (``set_pageblock_migratetype(buddy, ...)``); this retypes
  every pageblock of the buddy. With x86's pageblock_order = MAX_PAGE_ORDER - 1 (6.18's
  default) the buddy is one pageblock and the two are the same; with a smaller
  pageblock_order the kernel's later ``expand()`` would put pieces on a list that
  disagrees with their pageblock (it warns), and this model's lists would break.

The allocator is plain synchronous Python; it knows nothing of SimPy. The engine
calls ``alloc`` (``get_page_from_freelist`` for this zone) and handles the slow path.
Storage is intrusive: next/prev 32-bit links per pfn, a state byte and a 2-byte owner
tag per pfn (11 bytes per page), in typed vectors (librt.vecs), plus a list entry per
pageblock. As in ``struct page``, the two link words are a free block head's
``buddy_list`` only: at an allocated pfn they are the holder's (``page_links``; a
machine keeps a page-cache folio's file slot and LRU position there), and a node of
several zones keeps one pair of vectors by node pfn, each zone's links at its
``zone_start_pfn`` (``share_links``). Compiled with mypyc by default (sim/native.py).
``apply_ops`` (a simulator tool, not a kernel function) runs a sequence of ``alloc``
and ``free`` calls from compiled code: bench/bench_buddy.py times the zone with it.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Final

import numpy as np
from librt.vecs import vec
from mypy_extensions import i16, i32, i64, u8

from sim.migratetype import (
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    MIGRATE_RECLAIMABLE,
    MIGRATE_TYPES,
    MIGRATE_UNMOVABLE,
)
from sim.native import mypyc_attr, trait

if TYPE_CHECKING:
    from sim.compaction import CaptureControl

PAGE_ALLOC_COSTLY_ORDER: Final = 3
# mm/Kconfig: PCP_BATCH_SCALE_MAX default 5.
CONFIG_PCP_BATCH_SCALE_MAX: Final = 5
MIN_PERCPU_PAGELIST_HIGH_FRACTION: Final = 8
NR_LOWORDER_PCP_LISTS: Final = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
NR_PCP_THP: Final = 2
NR_PCP_LISTS: Final = NR_LOWORDER_PCP_LISTS + NR_PCP_THP

# pcp->flags
PCPF_PREV_FREE_HIGH_ORDER: Final = 1 << 0
PCPF_FREE_HIGH_BATCH: Final = 1 << 1

# alloc_flags, mm/internal.h
ALLOC_WMARK_MIN: Final = 0
ALLOC_WMARK_LOW: Final = 1
ALLOC_WMARK_HIGH: Final = 2
ALLOC_NO_WATERMARKS: Final = 0x04
ALLOC_WMARK_MASK: Final = ALLOC_NO_WATERMARKS - 1
ALLOC_OOM: Final = 0x08
ALLOC_NON_BLOCK: Final = 0x10
ALLOC_MIN_RESERVE: Final = 0x20
ALLOC_NOFRAGMENT: Final = 0x100
ALLOC_HIGHATOMIC: Final = 0x200
ALLOC_KSWAPD: Final = 0x800
ALLOC_RESERVES: Final = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM

WMARK_MIN: Final = 0
WMARK_LOW: Final = 1
WMARK_HIGH: Final = 2

# The state byte of a pfn: the kind of block it heads, and the block's order.
PG_TAIL: Final = 0x00  # inside a block whose head is at a lower pfn
PG_BUDDY: Final = 0x40  # head of a free block on a buddy free list (PageBuddy)
PG_ALLOC: Final = 0x80  # head of an allocated block
PG_PCP: Final = 0xC0  # head of a free block on a per-CPU list
PG_KIND: Final = 0xC0
PG_ORDER: Final = 0x3F
# The largest max_order: a zone has fewer than 2**31 pages, so no block is larger. The
# compiled scanners (sim/compaction.py) shift in i64, and mypyc 2.4.1 computes
# ``1 << n`` of a literal in a C int, wrong from n = 32: orders stay below that.
MAX_ORDER_LIMIT: Final = 30

# Owner tags of allocated blocks. A slab page is OWNER_SLAB + the cache's id.
OWNER_NONE: Final = 0
OWNER_MOVABLE: Final = 1  # on the LRU: anonymous or page-cache memory, migratable
OWNER_UNMOVABLE: Final = 2
OWNER_RECLAIMABLE: Final = 3
OWNER_PINNED: Final = 4  # movable memory held by a long-term GUP pin: on the LRU, not migratable
OWNER_SLAB: Final = 16
OWNER_SLAB_MAX: Final = 0x7FFF  # the owner tags are signed 16-bit

# free_batch reads the state of the pages of a run at least this long in one gather
# first (Zone._prefetch_page_state).
_PREFETCH_MIN: Final = 16

DEFAULT_OWNER = {
    MIGRATE_UNMOVABLE: OWNER_UNMOVABLE,
    MIGRATE_MOVABLE: OWNER_MOVABLE,
    MIGRATE_RECLAIMABLE: OWNER_RECLAIMABLE,
}
_DEFAULT_OWNER: Final = tuple(DEFAULT_OWNER[mt] for mt in range(MIGRATE_PCPTYPES))
# The alloc_flags of the kernel's fast path for GFP_KERNEL-like requests.
_FAST_ALLOC_FLAGS: Final = ALLOC_WMARK_LOW | ALLOC_KSWAPD

# mm/page_alloc.c fallbacks[]
FALLBACKS: Final = {
    MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
    MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),
    MIGRATE_RECLAIMABLE: (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),
}

FREE_LIST_ORDERS: Final = ("lifo", "fifo", "address")

# rmqueue_mode
RMQUEUE_NORMAL: Final = 0
RMQUEUE_CLAIM: Final = 2
RMQUEUE_STEAL: Final = 3


@mypyc_attr(native_class=False)  # a subclass of a builtin type
class BadFree(ValueError):
    """A free of something that is not an allocated block of that order."""


@mypyc_attr(native_class=False)  # a subclass of a builtin type
class BuddyCorrupt(AssertionError):
    """``Zone.check()`` found a broken invariant."""


@dataclass
class BuddyStats:
    """Event counters, named after /proc/vmstat where the kernel has one."""

    alloc_fail_wmark: int = 0  # get_page_from_freelist refused by the watermark
    alloc_fail_nopage: int = 0  # watermark fine but no block of that order found
    extfrag_claim: int = 0  # fallbacks that claimed the foreign block
    extfrag_steal: int = 0  # fallbacks that stole pages, block type unchanged
    pageblocks_retyped: int = 0  # pageblocks whose migratetype changed (claims, merges,
    # compaction's isolation, highatomic reserves)
    watermark_boosts: int = 0
    kswapd_wakeups: int = 0  # ZONE_BOOSTED_WATERMARK wakes from rmqueue
    pcp_refills: int = 0  # rmqueue_bulk calls
    pcp_bulk_frees: int = 0  # free_pcppages_bulk calls
    highatomic_reserved: int = 0  # reserve_highatomic_pageblock calls that reserved
    highatomic_unreserved: int = 0  # unreserve_highatomic_pageblock calls that gave one back

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_PFNLIST_RING0: Final = array("i", [0]) * 8  # a new PfnList's ring, copied


class PfnList:
    """A kernel list of pages (a ``list_head``), as their head pfns: one of ``struct
    per_cpu_pages``' lists, or one of compaction's lists of isolated free blocks
    (``compact_control.freepages``, sim/compaction.py). On a per-CPU list the right end
    is the kernel list's head (``rmqueue_pcplist`` takes from it,
    ``free_frozen_page_commit`` adds to it) and the left end its tail
    (``free_pcppages_bulk`` takes from it, ``rmqueue_bulk`` adds to it). The ``deque``
    operations these lists used, on a ring in a typed vector (librt.vecs) doubled
    when full, so that a page on a list is a C integer rather than an int object."""

    def __init__(self) -> None:
        zeros = _PFNLIST_RING0  # (compaction makes eleven lists per run)
        self._buf: vec[i32] = vec[i32](zeros, capacity=8)
        # C integers when compiled (i64): the per-CPU fast paths run through these.
        self._mask: i64 = 7
        self._head: i64 = 0  # the leftmost entry
        self._count: i64 = 0

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def _grow(self) -> None:
        old = self._buf
        head, mask = self._head, self._mask
        zeros = array("i", [0]) * (2 * (mask + 1))
        new: vec[i32] = vec[i32](zeros, capacity=len(zeros))
        for i in range(self._count):
            new[i] = old[(head + i) & mask]
        self._buf = new
        self._mask = 2 * mask + 1
        self._head = 0

    def append(self, pfn: int) -> None:
        """At the right end: the head."""
        if self._count > self._mask:
            self._grow()
        self._buf[(self._head + self._count) & self._mask] = pfn
        self._count += 1

    def appendleft(self, pfn: int) -> None:
        """At the left end: the tail."""
        if self._count > self._mask:
            self._grow()
        head = (self._head - 1) & self._mask
        self._buf[head] = pfn
        self._head = head
        self._count += 1

    def pop(self) -> i64:
        """From the right end: the head."""
        if not self._count:
            raise IndexError("pop from an empty page list")
        self._count -= 1
        return int(self._buf[(self._head + self._count) & self._mask])

    def popleft(self) -> i64:
        """From the left end: the tail."""
        if not self._count:
            raise IndexError("pop from an empty page list")
        head = self._head
        pfn = int(self._buf[head])
        self._head = (head + 1) & self._mask
        self._count -= 1
        return pfn

    def tolist(self) -> list[int]:
        """Left (tail) to right (head)."""
        buf, head, mask = self._buf, self._head, self._mask
        return [int(buf[(head + i) & mask]) for i in range(self._count)]

    def __iter__(self) -> Iterator[int]:
        return iter(self.tolist())

    def __contains__(self, pfn: object) -> bool:
        return pfn in self.tolist()

    def __repr__(self) -> str:
        return f"PfnList({self.tolist()})"


@dataclass(slots=True)
class PerCpuPages:
    """``struct per_cpu_pages`` of one CPU for this zone."""

    # C integers when compiled (i64): the per-CPU fast paths run through these.
    batch: i64
    high_min: i64
    high_max: i64
    high: i64 = 0  # BOOT_PAGESET_HIGH until first use clamps it to [high_min, high_max]
    count: i64 = 0  # pages (not blocks) on all lists
    free_count: i64 = 0
    alloc_factor: i64 = 0
    flags: i64 = 0
    lists: list[PfnList] = field(
        default_factory=lambda: [PfnList() for _ in range(NR_PCP_LISTS)])
    free_count_max: i64 = 0  # batch << CONFIG_PCP_BATCH_SCALE_MAX, kept for the fast path
    # The CPU allocated or freed through this pageset since vmstat's last refresh: it
    # was awake, so its deferrable vmstat work ran (see ``vmstat_refresh``).
    awake: bool = False

    def set_limits(self, batch: int, high_min: int, high_max: int) -> None:
        """``pageset_update``; a used pageset's high is clamped to the new limits at
        once (the kernel clamps it at its next use, before any comparison)."""
        self.batch, self.high_min, self.high_max = batch, high_min, high_max
        self.free_count_max = batch << CONFIG_PCP_BATCH_SCALE_MAX
        if self.high:
            self.high = max(high_min, min(self.high, high_max))


def int_sqrt(x: int) -> int:
    return math.isqrt(x)


def rounddown_pow_of_two(x: int) -> int:
    return 1 << (x.bit_length() - 1)


def calculate_min_free_kbytes(lowmem_kbytes: int) -> int:
    """mm/page_alloc.c calculate_min_free_kbytes: clamp(int_sqrt(lowmem_kb * 16), 128, 262144)."""
    return max(128, min(int_sqrt(lowmem_kbytes * 16), 262144))


def zone_batchsize(managed_pages: int, page_size: int = 4096) -> int:
    """mm/page_alloc.c zone_batchsize: ~0.1% of the zone or 1 MiB, as 2^n - 1."""
    batch = min(managed_pages >> 10, (1 << 20) // page_size)
    batch //= 4
    batch = max(batch, 1)
    return rounddown_pow_of_two(batch + batch // 2) - 1


def zone_highsize(total_pages: int, batch: int, nr_cpus: int) -> int:
    """mm/page_alloc.c zone_highsize for a zone whose node has ``nr_cpus`` CPUs."""
    return max(total_pages // nr_cpus, batch << 2)


@trait
class PageSpace:
    """The pages the engine's clients (slab caches, file systems, workloads, khugepaged)
    allocate, free and ask about by pfn: a lone ``Zone`` (its own pfns), or a
    sim/mmzone.py ``Node`` of several zones (node pfns, each call going to the zone
    that holds the pfn). A mypyc trait, so compiled clients call either natively.

    ``nr_pages`` is the pages in it; ``end_pfn`` one past its last pfn, the size of a
    table indexed by pfn (larger than ``nr_pages`` when zones leave holes between).
    """

    nr_pages: int
    end_pfn: int
    max_order: int
    pageblock_order: int
    cpus: int
    page_size: int

    def alloc(self, order: int, migratetype: int = MIGRATE_MOVABLE, cpu: int = 0,
              owner: int | None = None, alloc_flags: int = ALLOC_WMARK_LOW | ALLOC_KSWAPD,
              highest_zoneidx: int = -1) -> int | None:
        raise NotImplementedError

    def free(self, pfn: int, order: int, cpu: int = 0, to_tail: bool = False) -> None:
        raise NotImplementedError

    def order_of(self, pfn: int) -> int:
        raise NotImplementedError

    def is_allocated(self, pfn: int) -> bool:
        raise NotImplementedError

    def owner_of(self, pfn: int) -> int:
        raise NotImplementedError

    def set_owner(self, pfn: int, owner: int) -> None:
        raise NotImplementedError

    def pageblock_migratetype(self, pfn: int) -> int:
        raise NotImplementedError

    def page_links(self) -> tuple[vec[i32], vec[i32]]:
        raise NotImplementedError


class MigrateHook:
    """A compiled ``Zone.on_migrate``: the zone calls its ``migrated(old, new, order)``
    with C integers (sim/vmscan.py ``MigrateOwners``); any other callable is called as
    one."""

    def migrated(self, old: int, new: int, order: int) -> None:
        raise NotImplementedError


class PageIndex:
    """One 32-bit index per pfn of a page space, kept for whichever owner holds the
    page, as the kernel's ``struct page`` holds one ``index`` (sim/machine.py
    ``page_index``: the file systems' folio positions and the workloads' page sets'
    maps). The vector is made and read in compiled code only: handed to interpreted
    code and back, mypyc 2.4.1 boxes a vector and leaks its buffer (the first version
    made it in sim/machine.py, and a run left 256 KiB behind)."""

    def __init__(self, size: int) -> None:
        unset = array("i", [-1]) * size  # a name: mypyc 2.4 asserts on an expression
        self.index: vec[i32] = vec[i32](unset, capacity=size)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, pfn: int) -> int:
        return int(self.index[pfn])

    def __setitem__(self, pfn: int, value: int) -> None:
        self.index[pfn] = value


class Zone(PageSpace):
    """One zone's buddy allocator with per-CPU page lists.

    ``alloc(order, migratetype, cpu)`` returns the head pfn of a block of
    ``2**order`` pages, or None; ``free(pfn, order, cpu)`` gives it back.

    The order-0 per-CPU fast path is defined once, in ``_pcp_fast_alloc`` and
    ``_pcp_fast_free``, which ``alloc``, ``alloc_batch``, ``free`` and ``free_batch``
    call. Compiled, the calls cost nothing measurable: bench/bench_buddy.py (16 GiB),
    run in turn with the four inline copies they replaced, gave 2.06 M against 2.02 M
    ops/s (0.936x against 0.924x the reference; medians of 10 runs), and a loop of
    ``alloc_batch``/``free_batch`` 4.5 M against 4.2 M pages/s. ``_rmqueue_bulk``
    keeps its own batched ``__rmqueue_smallest`` (taking list heads, ``_bulk_split``):
    without it, refills that take order-0 list heads ran about 25 % slower per page.
    tests/test_buddy.py holds it equal to repeated ``_rmqueue`` calls.
    """

    def __init__(
        self,
        nr_pages: int,
        *,
        max_order: int = 10,
        pageblock_order: int = 9,
        cpus: int = 2,
        pcp: bool = True,
        grouping_by_mobility: bool = True,
        free_list_order: str = "lifo",
        thp: bool = True,
        nr_populated_zones: int = 3,
        min_free_kbytes: int | None = None,
        watermark_scale_factor: int = 10,
        watermark_boost_factor: int = 15000,
        percpu_pagelist_high_fraction: int = 0,
        page_size: int = 4096,
    ) -> None:
        if not 0 <= pageblock_order <= max_order <= MAX_ORDER_LIMIT:
            raise ValueError(
                f"expected 0 <= pageblock_order <= max_order <= {MAX_ORDER_LIMIT}, "
                f"got pageblock_order={pageblock_order}, max_order={max_order}"
            )
        if pageblock_order <= PAGE_ALLOC_COSTLY_ORDER:
            raise ValueError(
                f"expected pageblock_order > {PAGE_ALLOC_COSTLY_ORDER}, got {pageblock_order}"
            )
        if nr_pages < (1 << pageblock_order):
            raise ValueError(
                f"expected at least one pageblock ({1 << pageblock_order} pages), got {nr_pages}"
            )
        if nr_pages >= 1 << 31:
            raise ValueError(f"expected fewer than 2**31 pages, got {nr_pages}")
        if cpus < 1:
            raise ValueError(f"expected cpus >= 1, got {cpus}")
        if free_list_order not in FREE_LIST_ORDERS:
            raise ValueError(
                f"expected free_list_order one of {', '.join(FREE_LIST_ORDERS)}, "
                f"got {free_list_order!r}"
            )
        if percpu_pagelist_high_fraction and percpu_pagelist_high_fraction < (
            MIN_PERCPU_PAGELIST_HIGH_FRACTION
        ):
            raise ValueError(
                "expected percpu_pagelist_high_fraction 0 or >= "
                f"{MIN_PERCPU_PAGELIST_HIGH_FRACTION}, got {percpu_pagelist_high_fraction}"
            )

        self.nr_pages = nr_pages
        self.end_pfn = nr_pages
        self.managed_pages = nr_pages
        self.max_order = max_order
        self.pageblock_order = pageblock_order
        self.pageblock_nr_pages = 1 << pageblock_order
        self.nr_pageblocks = -(-nr_pages // self.pageblock_nr_pages)
        self.cpus = cpus
        self.pcp_enabled = pcp
        self.grouping_by_mobility = grouping_by_mobility
        self.free_list_order = free_list_order
        self._fifo = free_list_order == "fifo"  # a bool: tested at every list add
        self.page_size = page_size
        self.thp = thp
        self.nr_populated_zones = nr_populated_zones
        self.watermark_scale_factor = watermark_scale_factor
        self.watermark_boost_factor = watermark_boost_factor
        self.percpu_pagelist_high_fraction = percpu_pagelist_high_fraction
        self.user_min_free_kbytes = min_free_kbytes
        # The zone's place in its node (sim/mmzone.py sets these for a multi-zone node):
        # zone_idx (ZONE_NORMAL = 2 for a lone zone), the pfn its local pfn 0 stands for,
        # and lowmem_reserve[highest_zoneidx] (setup_per_zone_lowmem_reserve; MAX_NR_ZONES
        # entries, all 0 for a lone zone).
        self.zone_idx: i64 = 2
        self.zone_start_pfn = 0
        self.lowmem_reserve: list[int] = [0] * 5

        nr_lists = (max_order + 1) * MIGRATE_TYPES
        self._sentinel = nr_pages  # list L = order * MIGRATE_TYPES + mt has node nr_pages + L
        # Typed vectors (librt.vecs): compiled, an element is read and written as a C
        # integer, with no Python int boxed or reference counted (docs/performance.md).
        # The links: one per pfn, then one per list head.
        links = array("i", [0]) * (nr_pages + nr_lists)
        links[nr_pages:] = array("i", range(nr_pages, nr_pages + nr_lists))
        self._next: vec[i32] = vec[i32](links, capacity=len(links))
        self._prev: vec[i32] = vec[i32](links, capacity=len(links))
        del links
        # Where the links of local pfn 0 are: 0 in the zone's own vectors, the zone's
        # first node pfn in a node's (``share_links``). Links hold local pfns.
        self._lb: i64 = 0
        # The state byte and the owner tag of every pfn (3 bytes a page).
        self._state: vec[u8] = vec[u8](bytes(nr_pages), capacity=nr_pages)
        owners = array("h", [0]) * nr_pages  # a name: mypyc 2.4 asserts on an expression
        self._owner: vec[i16] = vec[i16](owners, capacity=nr_pages)
        del owners
        # memmap_init makes every pageblock MOVABLE; with grouping disabled
        # set_pageblock_migratetype turns that into UNMOVABLE.
        boot_mt = MIGRATE_MOVABLE if grouping_by_mobility else MIGRATE_UNMOVABLE
        boot_types = bytes((boot_mt,)) * self.nr_pageblocks
        self._pageblock_mt: vec[u8] = vec[u8](boot_types, capacity=self.nr_pageblocks)
        # Pageblocks per migratetype, kept as the types change (pagetypeinfo's "Number of
        # blocks type", which the kernel counts by walking them at each read; a sample
        # here would walk every pageblock of the zone).
        self._pageblock_nr: list[int] = [0] * MIGRATE_TYPES
        self._pageblock_nr[boot_mt] = self.nr_pageblocks
        self._addr_heaps: list[list[int]] | None = (
            [[] for _ in range(nr_lists)] if free_list_order == "address" else None
        )

        # free_area[order].nr_free (``nr_free`` gives it as a list), a typed vector
        # for the same reason as the next.
        self._nr_free: vec[i64] = vec[i64]([0] * (max_order + 1))
        # Blocks per (order, migratetype), in a typed vector: counted on every list
        # add and delete, where a list of ints would make an int object each time.
        self._nr_free_mt: vec[i64] = vec[i64]([0] * nr_lists)
        # C integers when compiled (i64), as are the fast paths' other counters.
        self.nr_free_pages: i64 = 0  # NR_FREE_PAGES: buddy pages only, not pcp pages
        self.nr_alloc_calls: i64 = 0  # alloc() and free() calls: the simulator's "alloc_ops"
        self.nr_free_calls: i64 = 0
        self.nr_free_highatomic = 0  # zone->nr_free_highatomic: free pages on HIGHATOMIC lists
        self.nr_reserved_highatomic = 0  # zone->nr_reserved_highatomic: pages reserved
        self._watermark_boost = 0
        self.stats = BuddyStats()

        # zone->flags
        self._zone_boosted_watermark = self._zone_below_high = False
        self._zone_reclaim_active = False
        # Called as wakeup_kswapd(order) when rmqueue finds ZONE_BOOSTED_WATERMARK.
        self.on_wakeup_kswapd: Callable[[int], None] | None = None
        # Called as on_migrate(old_pfn, new_pfn, order) when compaction moves a block: a
        # MigrateHook in the union, so that compiled its ``migrated`` is a native call.
        self.on_migrate: MigrateHook | Callable[[int, int, int], None] | None = None
        self._capc: CaptureControl | None = None  # compaction's capture_control
        # PB_compact_skip of every pageblock (a byte each): compaction's hints, which
        # its scanners read and write directly (``pageblock_skip_bits``).
        skip_bits = bytes(self.nr_pageblocks)  # a name: mypyc 2.4 asserts on an expression
        self._pageblock_skip_bits: vec[u8] = vec[u8](skip_bits, capacity=self.nr_pageblocks)
        del skip_bits

        self.min_free_kbytes = 0
        self._watermark = [0, 0, 0, 0]  # min, low, high, promo
        # alloc()/free() take their unrolled order-0 paths only in the kernel's
        # default set-up: per-CPU lists on, grouping on, lifo lists, no reserves.
        self._fast_alloc = (
            pcp and grouping_by_mobility and free_list_order == "lifo"
            and not percpu_pagelist_high_fraction  # high_min != high_max: auto-tuning
        )
        self._fast_ok = self._fast_alloc
        self._alloc_mark: i64 = 1 << 62  # set by setup_per_zone_wmarks
        self.setup_per_zone_wmarks()
        self.pcp = [self._new_pageset() for _ in range(cpus)]

        # Boot: __free_pages_core frees the largest aligned blocks, in pfn order, to the tail.
        pfn = 0
        while pfn < nr_pages:
            order = max_order
            while order and (pfn & ((1 << order) - 1) or pfn + (1 << order) > nr_pages):
                order -= 1
            self._add_to_free_list(pfn, order, boot_mt, True)
            pfn += 1 << order

    # ------------------------------------------------------------------ watermarks

    def setup_per_zone_wmarks(self) -> None:
        """min_free_kbytes (with the THP raise) and ``__setup_per_zone_wmarks``."""
        page_kb = self.page_size >> 10
        managed = self.managed_pages
        if self.user_min_free_kbytes is not None:
            self.min_free_kbytes = self.user_min_free_kbytes
            self._set_wmarks()
        else:
            # At boot nr_free_buffer_pages() is the managed pages (watermarks still 0).
            self.min_free_kbytes = calculate_min_free_kbytes(managed * page_kb)
            self._set_wmarks()
            if self.thp:
                # mm/khugepaged.c set_recommended_min_free_kbytes, run after the
                # watermarks exist: nr_free_buffer_pages() is managed - high.
                pb = self.pageblock_nr_pages
                nr_zones = self.nr_populated_zones
                recommended = pb * nr_zones * 2 + pb * nr_zones * MIGRATE_PCPTYPES**2
                recommended = min(recommended, (managed - self._watermark[WMARK_HIGH]) // 20)
                recommended *= page_kb
                if recommended > self.min_free_kbytes:
                    self.min_free_kbytes = recommended
                    self._set_wmarks()
        if hasattr(self, "pcp"):
            self._update_pagesets()

    def set_watermarks(self, wmin: int, gap: int, min_free_kbytes: int) -> None:
        """A node's ``__setup_per_zone_wmarks`` for this zone: ``min`` is its share of
        ``min_free_kbytes`` (sim/mmzone.py), low, high and promo follow ``gap`` apart;
        the per-CPU limits follow the new low watermark (``zone_pcp_update``)."""
        self.min_free_kbytes = min_free_kbytes
        self.user_min_free_kbytes = min_free_kbytes
        self._watermark = [wmin, wmin + gap, wmin + 2 * gap, wmin + 3 * gap]
        self.watermark_boost = 0
        self._update_pagesets()

    def _set_wmarks(self) -> None:
        pages_min = self.min_free_kbytes // (self.page_size >> 10)
        managed = self.managed_pages
        # One lowmem zone holds all of lowmem: tmp = pages_min * managed / lowmem = pages_min.
        tmp = pages_min
        wmin = tmp
        gap = max(tmp >> 2, managed * self.watermark_scale_factor // 10000)
        self._watermark = [wmin, wmin + gap, wmin + 2 * gap, wmin + 3 * gap]
        self.watermark_boost = 0

    @property
    def watermark_boost(self) -> int:
        """``zone->watermark_boost``: added to every watermark; kswapd resets it."""
        return self._watermark_boost

    @watermark_boost.setter
    def watermark_boost(self, value: int) -> None:
        self._watermark_boost = value
        self._refresh_alloc_mark()

    # zone->flags. Setting one refreshes ``_fast_ok``, the one flag the unrolled paths
    # of alloc() and free() test.
    @property
    def zone_boosted_watermark(self) -> bool:
        """ZONE_BOOSTED_WATERMARK: a fallback boosted the watermark; wake kswapd."""
        return self._zone_boosted_watermark

    @zone_boosted_watermark.setter
    def zone_boosted_watermark(self, value: bool) -> None:
        self._zone_boosted_watermark = value
        self._refresh_fast_ok()

    @property
    def zone_below_high(self) -> bool:
        """ZONE_BELOW_HIGH: an allocation found the zone below the high watermark."""
        return self._zone_below_high

    @zone_below_high.setter
    def zone_below_high(self, value: bool) -> None:
        self._zone_below_high = value
        self._refresh_fast_ok()

    @property
    def zone_reclaim_active(self) -> bool:
        """ZONE_RECLAIM_ACTIVE: set by the engine's kswapd while it reclaims."""
        return self._zone_reclaim_active

    @zone_reclaim_active.setter
    def zone_reclaim_active(self, value: bool) -> None:
        self._zone_reclaim_active = value
        self._refresh_fast_ok()

    def _refresh_fast_ok(self) -> None:
        self._fast_ok = self._fast_alloc and not (
            self._zone_boosted_watermark or self._zone_below_high or self._zone_reclaim_active
        )
        self._refresh_alloc_mark()

    def _refresh_alloc_mark(self) -> None:
        """The one number the order-0 fast path of alloc() compares NR_FREE_PAGES with.

        ``_alloc`` takes an order-0 page from a non-empty pcp list with no other effect
        when the zone passes the high watermark (or, once ZONE_BELOW_HIGH is set, the
        low one: ALLOC_WMARK_LOW) plus the boost, and no kswapd wake is pending.
        ``free - min(free, highatomic) > mark`` is ``free > mark + highatomic``.
        """
        if not self._fast_alloc or self._zone_boosted_watermark:
            self._alloc_mark = 1 << 62  # never: the general path
            return
        which = WMARK_LOW if self._zone_below_high else WMARK_HIGH
        self._alloc_mark = (self._watermark[which] + self._watermark_boost
                            + self.nr_free_highatomic)

    @property
    def nr_allocated_pages(self) -> int:
        """Pages in allocated blocks: what is neither on a free list nor a pcp list."""
        return self.nr_pages - self.nr_free_pages - self.pcp_pages

    def wmark_pages(self, which: int) -> int:
        """``wmark_pages(zone, i)``: the watermark plus the current boost."""
        return self._watermark[which] + self.watermark_boost

    @property
    def min_wmark(self) -> int:
        return self._watermark[WMARK_MIN]

    @property
    def low_wmark(self) -> int:
        return self._watermark[WMARK_LOW]

    @property
    def high_wmark(self) -> int:
        return self._watermark[WMARK_HIGH]

    @property
    def promo_wmark(self) -> int:
        return self._watermark[3]

    def zone_watermark_ok(self, order: int, mark: int, alloc_flags: int = 0,
                          highest_zoneidx: int = -1) -> bool:
        """``__zone_watermark_ok`` on this zone's NR_FREE_PAGES, keeping
        ``lowmem_reserve[highest_zoneidx]`` (none for -1 or this zone's own index)."""
        return self._zone_watermark_ok(order, mark, alloc_flags, self.nr_free_pages,
                                       self.reserve_for(highest_zoneidx))

    def reserve_for(self, highest_zoneidx: int) -> int:
        """``z->lowmem_reserve[highest_zoneidx]``: 0 unless the request could have used
        a higher zone."""
        if highest_zoneidx <= self.zone_idx:
            return 0
        return self.lowmem_reserve[highest_zoneidx]

    def _zone_watermark_ok(self, order: int, mark: int, alloc_flags: int, free_pages: int,
                           reserve: int = 0) -> bool:
        # __zone_watermark_unusable_free
        unusable = (1 << order) - 1
        if not alloc_flags & ALLOC_RESERVES:
            unusable += self.nr_free_highatomic
        free_pages -= unusable
        wmin = mark
        if alloc_flags & ALLOC_RESERVES:
            if alloc_flags & ALLOC_MIN_RESERVE:
                wmin -= wmin // 2
                if alloc_flags & ALLOC_NON_BLOCK:
                    wmin -= wmin // 4
            if alloc_flags & ALLOC_OOM:
                wmin -= wmin // 2
        if free_pages <= wmin + reserve:
            return False
        if not order:
            return True
        nr_free_mt = self._nr_free_mt
        for o in range(order, self.max_order + 1):
            if not self._nr_free[o]:
                continue
            base = o * MIGRATE_TYPES
            for mt in range(MIGRATE_PCPTYPES):
                if nr_free_mt[base + mt]:
                    return True
            if alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM) and nr_free_mt[
                base + MIGRATE_HIGHATOMIC
            ]:
                return True
        return False

    def zone_watermark_fast(self, order: int, mark: int, alloc_flags: int = 0,
                            reserve: int = 0) -> bool:
        """``zone_watermark_fast``: the order-0 shortcut, then ``__zone_watermark_ok``;
        ``reserve`` is ``lowmem_reserve[highest_zoneidx]`` (``reserve_for``)."""
        free_pages = self.nr_free_pages
        if not order:
            reserved = 0 if alloc_flags & ALLOC_RESERVES else self.nr_free_highatomic
            if free_pages - min(free_pages, reserved) > mark + reserve:
                return True
        if self._zone_watermark_ok(order, mark, alloc_flags, free_pages, reserve):
            return True
        # Boosting is ignored for __GFP_HIGH order-0 allocations at the min watermark.
        if (
            not order
            and alloc_flags & ALLOC_MIN_RESERVE
            and self.watermark_boost
            and (alloc_flags & ALLOC_WMARK_MASK) == WMARK_MIN
        ):
            return self._zone_watermark_ok(
                order, self._watermark[WMARK_MIN], alloc_flags, free_pages, reserve
            )
        return False

    def boost_watermark(self) -> bool:
        """``boost_watermark``: raise every watermark by a pageblock, up to high * factor."""
        if not self.watermark_boost_factor:
            return False
        if self.pageblock_nr_pages * 4 > self.managed_pages:
            return False
        max_boost = self._watermark[WMARK_HIGH] * self.watermark_boost_factor // 10000
        if not max_boost:
            return False
        max_boost = max(self.pageblock_nr_pages, max_boost)
        self.watermark_boost = min(self.watermark_boost + self.pageblock_nr_pages, max_boost)
        self.stats.watermark_boosts += 1
        return True

    # ------------------------------------------------------------------ free lists

    def _add_to_free_list(self, pfn: int, order: int, mt: int, to_tail: bool) -> None:
        lst = order * MIGRATE_TYPES + mt
        s = self._sentinel + lst
        nxt = self._next
        prv = self._prev
        lb = self._lb
        if to_tail or self._fifo:
            t = int(prv[lb + s])
            prv[lb + pfn] = t
            nxt[lb + pfn] = s
            nxt[lb + t] = pfn
            prv[lb + s] = pfn
        else:
            n = int(nxt[lb + s])
            nxt[lb + pfn] = n
            prv[lb + pfn] = s
            prv[lb + n] = pfn
            nxt[lb + s] = pfn
        if self._addr_heaps is not None:
            heapq.heappush(self._addr_heaps[lst], pfn)
        self._state[pfn] = PG_BUDDY | order
        self._nr_free_mt[lst] += 1
        self._nr_free[order] += 1
        self.nr_free_pages += 1 << order
        if mt == MIGRATE_HIGHATOMIC:
            self._account_highatomic(1 << order)

    def _del_from_free_list(self, pfn: int, order: int, mt: int) -> None:
        nxt = self._next
        prv = self._prev
        lb = self._lb
        n = int(nxt[lb + pfn])
        p = int(prv[lb + pfn])
        nxt[lb + p] = n
        prv[lb + n] = p
        self._state[pfn] = PG_TAIL
        self._nr_free_mt[order * MIGRATE_TYPES + mt] -= 1
        self._nr_free[order] -= 1
        self.nr_free_pages -= 1 << order
        if mt == MIGRATE_HIGHATOMIC:
            self._account_highatomic(-(1 << order))

    def _account_highatomic(self, nr_pages: int) -> None:
        """``account_freepages`` for MIGRATE_HIGHATOMIC: ``zone->nr_free_highatomic``,
        and the fast path's mark, which includes it."""
        self.nr_free_highatomic += nr_pages
        self._refresh_alloc_mark()

    def _first_free(self, order: int, mt: int) -> int:
        """``get_page_from_free_area``: the list head, or -1 when the list is empty."""
        lst = order * MIGRATE_TYPES + mt
        if not self._nr_free_mt[lst]:
            return -1
        heap = self._addr_heaps[lst] if self._addr_heaps is not None else None
        if heap is None:
            return int(self._next[self._lb + self._sentinel + lst])
        # Lazy deletion: skip entries that left this list since they were pushed.
        state = self._state
        want = PG_BUDDY | order
        pb_shift = self.pageblock_order
        pb_mt = self._pageblock_mt
        while heap:
            pfn = heap[0]
            if int(state[pfn]) == want and int(pb_mt[pfn >> pb_shift]) == mt:
                return pfn
            heapq.heappop(heap)
        raise BuddyCorrupt(f"free list order {order} mt {mt} counted but empty")

    def _expand(self, pfn: int, low: int, high: int, mt: int) -> None:
        """``expand``: put the upper halves back on the list heads, keep the lowest part."""
        while high > low:
            high -= 1
            self._add_to_free_list(pfn + (1 << high), high, mt, False)

    def _set_pageblock_range(self, pfn: int, order: int, mt: int) -> None:
        """``change_pageblock_range``"""
        shift = self.pageblock_order
        first = pfn >> shift
        nr = 1 << max(order - shift, 0)
        for block in range(first, first + nr):
            old = int(self._pageblock_mt[block])
            if old != mt:
                self._pageblock_mt[block] = mt
                self._pageblock_nr[old] -= 1
                self._pageblock_nr[mt] += 1
                self.stats.pageblocks_retyped += 1

    # ------------------------------------------------------------------ __rmqueue

    def _rmqueue_smallest(self, order: int, mt: int) -> int:
        nr_free_mt = self._nr_free_mt
        for current_order in range(order, self.max_order + 1):
            if nr_free_mt[current_order * MIGRATE_TYPES + mt]:
                pfn = self._first_free(current_order, mt)
                self._del_from_free_list(pfn, current_order, mt)
                self._expand(pfn, order, current_order, mt)
                return pfn
        return -1

    def _should_try_claim_block(self, order: int, start_mt: int) -> bool:
        if order >= self.pageblock_order:
            return True
        if order >= self.pageblock_order // 2:
            return True
        if start_mt in (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE):
            return True
        return not self.grouping_by_mobility

    def _find_suitable_fallback(self, order: int, mt: int, claimable: bool) -> int:
        """-2: too small to claim (stop the scan); -1: nothing at this order; else the type."""
        if claimable and not self._should_try_claim_block(order, mt):
            return -2
        if not self._nr_free[order]:
            return -1
        base = order * MIGRATE_TYPES
        for fallback_mt in FALLBACKS[mt]:
            if self._nr_free_mt[base + fallback_mt]:
                return fallback_mt
        return -1

    def _count_block(self, start: int) -> tuple[int, int]:
        """``prep_move_freepages_block``: free and movable (PageLRU) pages of a pageblock."""
        state = self._state
        owner = self._owner
        end = start + self.pageblock_nr_pages
        free = movable = 0
        pfn = start
        while pfn < end:
            st = int(state[pfn])
            size = 1 << (st & PG_ORDER)
            kind = st & PG_KIND
            if kind == PG_BUDDY:
                free += size
            elif kind == PG_ALLOC and int(owner[pfn]) in (OWNER_MOVABLE, OWNER_PINNED):
                # 6.18 walks pfn by pfn and PageLRU is PF_HEAD (a tail page reads its
                # head's flag): every page of an LRU folio counts.
                movable += size
            elif kind == PG_TAIL:
                raise BuddyCorrupt(f"pageblock walk from {start} reached tail pfn {pfn}")
            pfn += size
        return free, movable

    def _move_freepages_block(self, start: int, old_mt: int, new_mt: int) -> None:
        """``__move_freepages_block``: every buddy page of the block to the new list tail."""
        state = self._state
        end = start + self.pageblock_nr_pages
        pfn = start
        while pfn < end:
            st = int(state[pfn])
            order = st & PG_ORDER
            if st & PG_KIND == PG_BUDDY:
                self._del_from_free_list(pfn, order, old_mt)
                self._add_to_free_list(pfn, order, new_mt, True)
            pfn += 1 << order

    def _try_to_claim_block(
        self, pfn: int, current_order: int, order: int, start_mt: int, block_mt: int,
        alloc_flags: int,
    ) -> int:
        if current_order >= self.pageblock_order:
            self._del_from_free_list(pfn, current_order, block_mt)
            self._set_pageblock_range(pfn, current_order, start_mt)
            self._expand(pfn, order, current_order, start_mt)
            return pfn
        if self.boost_watermark() and alloc_flags & ALLOC_KSWAPD:
            self.zone_boosted_watermark = True
        start = pfn & ~(self.pageblock_nr_pages - 1)
        if start + self.pageblock_nr_pages > self.nr_pages:
            return -1  # the block straddles the zone end
        free, movable = self._count_block(start)
        if start_mt == MIGRATE_MOVABLE:
            alike = movable
        elif block_mt == MIGRATE_MOVABLE:
            alike = self.pageblock_nr_pages - (free + movable)
        else:
            alike = 0
        if free + alike >= (1 << (self.pageblock_order - 1)) or not self.grouping_by_mobility:
            self._move_freepages_block(start, block_mt, start_mt)
            self._set_pageblock_range(start, 0, start_mt)
            return self._rmqueue_smallest(order, start_mt)
        return -1

    def _rmqueue_claim(self, order: int, mt: int, alloc_flags: int) -> int:
        min_order = order
        if order < self.pageblock_order and alloc_flags & ALLOC_NOFRAGMENT:
            min_order = self.pageblock_order
        for current_order in range(self.max_order, min_order - 1, -1):
            fallback_mt = self._find_suitable_fallback(current_order, mt, True)
            if fallback_mt == -1:
                continue
            if fallback_mt == -2:
                break
            pfn = self._first_free(current_order, fallback_mt)
            page = self._try_to_claim_block(
                pfn, current_order, order, mt, fallback_mt, alloc_flags
            )
            if page >= 0:
                self.stats.extfrag_claim += 1
                return page
        return -1

    def _rmqueue_steal(self, order: int, mt: int) -> int:
        for current_order in range(order, self.max_order + 1):
            fallback_mt = self._find_suitable_fallback(current_order, mt, False)
            if fallback_mt == -1:
                continue
            pfn = self._first_free(current_order, fallback_mt)
            self._del_from_free_list(pfn, current_order, fallback_mt)
            self._expand(pfn, order, current_order, fallback_mt)
            self.stats.extfrag_steal += 1
            return pfn
        return -1

    def _rmqueue(self, order: int, mt: int, alloc_flags: int, mode: list[int]) -> int:
        """``__rmqueue``; ``mode[0]`` is the rmqueue_mode that ``rmqueue_bulk`` keeps."""
        m = mode[0]
        if m == RMQUEUE_NORMAL:
            page = self._rmqueue_smallest(order, mt)
            if page >= 0:
                return page
            m = RMQUEUE_CLAIM
        if m == RMQUEUE_CLAIM:
            page = self._rmqueue_claim(order, mt, alloc_flags)
            if page >= 0:
                mode[0] = RMQUEUE_NORMAL
                return page
        if not alloc_flags & ALLOC_NOFRAGMENT:
            page = self._rmqueue_steal(order, mt)
            if page >= 0:
                mode[0] = RMQUEUE_STEAL
                return page
        return -1

    def _rmqueue_buddy(self, order: int, mt: int, alloc_flags: int) -> int:
        """``rmqueue_buddy``: the highatomic reserve first for ALLOC_HIGHATOMIC, then
        ``__rmqueue``; if that fails, the reserve for ALLOC_OOM or ALLOC_NON_BLOCK
        ("failing now is worse than failing a high-order atomic allocation in the
        future")."""
        page = -1
        if alloc_flags & ALLOC_HIGHATOMIC:
            page = self._rmqueue_smallest(order, MIGRATE_HIGHATOMIC)
        if page < 0:
            page = self._rmqueue(order, mt, alloc_flags, [RMQUEUE_NORMAL])
            if page < 0 and alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK):
                page = self._rmqueue_smallest(order, MIGRATE_HIGHATOMIC)
        return page

    # ------------------------------------------------------------------ highatomic reserves

    def reserve_highatomic_pageblock(self, pfn: int, order: int) -> None:
        """``reserve_highatomic_pageblock``: make the pageblock of the block just
        allocated at ``pfn`` (``order``) a highatomic reserve, if the zone has room.

        The reserve is at least a pageblock and at most about 1 % of the zone: none
        when 1 % of the managed pages is less than a pageblock, else up to
        ``ALIGN(managed / 100, pageblock_nr_pages)`` pages (the check comes before the
        reservation, so an allocation of pageblock order or more may pass it). Only a
        mergeable pageblock (UNMOVABLE, MOVABLE, RECLAIMABLE) is taken.
        """
        pb = self.pageblock_nr_pages
        one_percent = self.managed_pages // 100
        if one_percent < pb:
            return
        max_managed = (one_percent + pb - 1) & ~(pb - 1)  # ALIGN(one_percent, pb)
        if self.nr_reserved_highatomic >= max_managed:
            return
        shift = self.pageblock_order
        mt = int(self._pageblock_mt[pfn >> shift])
        if mt >= MIGRATE_PCPTYPES:  # !migratetype_is_mergeable(mt)
            return
        if order < shift:
            start = pfn & ~(pb - 1)
            if start + pb > self.nr_pages:
                return  # move_freepages_block == -1: the pageblock straddles the zone end
            self._move_freepages_block(start, mt, MIGRATE_HIGHATOMIC)
            self._set_pageblock_range(start, 0, MIGRATE_HIGHATOMIC)
            self.nr_reserved_highatomic += pb
        else:
            self._set_pageblock_range(pfn, order, MIGRATE_HIGHATOMIC)  # change_pageblock_range
            self.nr_reserved_highatomic += 1 << order
        self.stats.highatomic_reserved += 1

    def unreserve_highatomic_pageblock(self, migratetype: int, force: bool) -> bool:
        """``unreserve_highatomic_pageblock(ac, force)``: give one reserved pageblock
        back, as the allocation of ``migratetype`` that failed needs the pages.

        The first free block on a HIGHATOMIC list, lowest order first, decides which:
        its pageblock (or, for a block of pageblock order or more, its pageblocks)
        becomes ``migratetype`` with every free page in it, avoiding the normal
        claiming heuristics, and ``nr_reserved_highatomic`` drops by as many pages.
        Without ``force`` the last pageblock of the reserve is kept. True if a
        pageblock was given back.
        """
        pb = self.pageblock_nr_pages
        # Preserve at least one pageblock unless memory pressure is really high.
        if not force and self.nr_reserved_highatomic <= pb:
            return False
        if not self.grouping_by_mobility:
            migratetype = MIGRATE_UNMOVABLE  # ac->migratetype from gfp_migratetype()
        shift = self.pageblock_order
        for order in range(self.max_order + 1):
            pfn = self._first_free(order, MIGRATE_HIGHATOMIC)
            if pfn < 0:
                continue
            # The kernel warns (WARN_ON_ONCE) and clamps if this would underflow.
            size = min(max(pb, 1 << order), self.nr_reserved_highatomic)
            self.nr_reserved_highatomic -= size
            if order < shift:
                start = pfn & ~(pb - 1)
                self._move_freepages_block(start, MIGRATE_HIGHATOMIC, migratetype)
                self._set_pageblock_range(start, 0, migratetype)
            else:
                # move_to_free_list (to the tail), then change_pageblock_range.
                self._del_from_free_list(pfn, order, MIGRATE_HIGHATOMIC)
                self._add_to_free_list(pfn, order, migratetype, True)
                self._set_pageblock_range(pfn, order, migratetype)
            self.stats.highatomic_unreserved += 1
            return True
        return False

    # ------------------------------------------------------------------ per-CPU lists

    def _pageset_params(self) -> tuple[int, int, int]:
        batch = max(1, zone_batchsize(self.managed_pages, self.page_size))
        if self.percpu_pagelist_high_fraction:
            high_min = zone_highsize(
                self.managed_pages // self.percpu_pagelist_high_fraction, batch, self.cpus
            )
            high_max = high_min
        else:
            high_min = zone_highsize(self._watermark[WMARK_LOW], batch, self.cpus)
            high_max = zone_highsize(
                self.managed_pages // MIN_PERCPU_PAGELIST_HIGH_FRACTION, batch, self.cpus
            )
        return batch, high_min, high_max

    def _new_pageset(self) -> PerCpuPages:
        batch, high_min, high_max = self._pageset_params()
        pcp = PerCpuPages(batch=batch, high_min=high_min, high_max=high_max)
        pcp.set_limits(batch, high_min, high_max)
        return pcp

    def _update_pagesets(self) -> None:
        limits = self._pageset_params()
        for pcp in self.pcp:
            pcp.set_limits(*limits)

    def _order_to_pindex(self, mt: int, order: int) -> int:
        if order > PAGE_ALLOC_COSTLY_ORDER:
            return NR_LOWORDER_PCP_LISTS + (mt == MIGRATE_MOVABLE)
        return MIGRATE_PCPTYPES * order + mt

    def _pindex_to_order(self, pindex: int) -> int:
        if pindex >= NR_LOWORDER_PCP_LISTS:
            return self.pageblock_order
        return pindex // MIGRATE_PCPTYPES

    def _nr_pcp_alloc(self, pcp: PerCpuPages, order: int) -> int:
        base_batch = pcp.batch
        high_min, high_max = pcp.high_min, pcp.high_max
        high = pcp.high = max(high_min, min(pcp.high, high_max))
        if high < base_batch:
            return 1
        batch = base_batch if order else base_batch << pcp.alloc_factor
        if high_min != high_max and not self.zone_below_high:
            high = pcp.high = min(high + batch, high_max)
        if not order:
            max_nr_alloc = max(high - pcp.count - base_batch, base_batch)
            if batch <= max_nr_alloc and pcp.alloc_factor < CONFIG_PCP_BATCH_SCALE_MAX:
                pcp.alloc_factor += 1
            batch = min(batch, max_nr_alloc)
        if batch > 1:
            batch = max(batch >> order, 2)
        return batch

    def _rmqueue_bulk(self, order: int, count: int, lst: PfnList, mt: int,
                      alloc_flags: int) -> int:
        """``rmqueue_bulk``: up to ``count`` blocks onto the tail of a pcp list."""
        self.stats.pcp_refills += 1
        mode = [RMQUEUE_NORMAL]
        state = self._state
        pcp_state = PG_PCP | order
        # Each block goes onto the list's tail as it is taken (the kernel's list_add_tail
        # in rmqueue_bulk), so that no int object is made for it.
        start = len(lst)
        lst_index = order * MIGRATE_TYPES + mt
        nr_free_mt = self._nr_free_mt
        lb = self._lb
        sentinel = self._sentinel + lst_index
        nxt, prv = self._next, self._prev
        unrolled = self._addr_heaps is None
        while len(lst) - start < count:
            avail = int(nr_free_mt[lst_index])
            if unrolled and avail and mode[0] == RMQUEUE_NORMAL:
                # __rmqueue_smallest finding the list of this very order: take list
                # heads, exactly as repeated calls would.
                take = min(count - (len(lst) - start), avail)
                for _ in range(take):
                    pfn = int(nxt[lb + sentinel])
                    n = int(nxt[lb + pfn])
                    nxt[lb + sentinel] = n
                    prv[lb + n] = sentinel
                    state[pfn] = pcp_state
                    lst.appendleft(pfn)
                nr_free_mt[lst_index] -= take
                self._nr_free[order] -= take
                self.nr_free_pages -= take << order
                continue
            if (
                unrolled
                and mode[0] == RMQUEUE_NORMAL
                and self._bulk_split(order, count - (len(lst) - start), mt, lst)
            ):
                continue
            page = self._rmqueue(order, mt, alloc_flags, mode)
            if page < 0:
                break
            state[page] = pcp_state
            lst.appendleft(page)  # the list's right end is the kernel list's head
        return len(lst) - start

    def _bulk_split(self, order: int, want: int, mt: int, lst: PfnList) -> bool:
        """Repeated ``__rmqueue_smallest`` calls that have to split a larger block.

        The smallest non-empty list of this migratetype is at order k > ``order``, so
        every list of orders order..k-1 is empty. Repeated calls then hand out the
        block's pieces in ascending pfn order, each ``expand`` leaving the only
        entries of the lower lists. After m pieces the lists hold exactly the aligned
        decomposition of the block's unused end: that is what this writes, at once.
        """
        nr_free_mt = self._nr_free_mt
        for k in range(order + 1, self.max_order + 1):
            if nr_free_mt[k * MIGRATE_TYPES + mt]:
                break
        else:
            return False
        block = self._first_free(k, mt)
        self._del_from_free_list(block, k, mt)
        taken = min(want, 1 << (k - order))
        state = self._state
        pcp_state = PG_PCP | order
        step = 1 << order
        end = block + (taken << order)
        page = block
        while page < end:  # (not range() with a step: compiled, that is a generic loop)
            state[page] = pcp_state
            lst.appendleft(page)  # onto the tail, as _rmqueue_bulk's other pages
            page += step
        pfn = end
        block_end = block + (1 << k)
        while pfn < block_end:
            j = (pfn & -pfn).bit_length() - 1  # alignment of pfn, below k here
            self._add_to_free_list(pfn, j, mt, False)
            pfn += 1 << j
        return True

    def _rmqueue_pcplist(self, order: int, mt: int, cpu: int, alloc_flags: int) -> int:
        pcp = self.pcp[cpu]
        pcp.free_count >>= 1
        pcp.awake = True
        lst = pcp.lists[self._order_to_pindex(mt, order)]
        if not lst:
            batch = self._nr_pcp_alloc(pcp, order)
            alloced = self._rmqueue_bulk(order, batch, lst, mt, alloc_flags)
            pcp.count += alloced << order
            if not lst:
                return -1
        pcp.count -= 1 << order
        return lst.pop()

    def _nr_pcp_high(self, pcp: PerCpuPages, batch: int, free_high: bool) -> int:
        high_min, high_max = pcp.high_min, pcp.high_max
        high = pcp.high = max(high_min, min(pcp.high, high_max))
        if not high:
            return 0
        if free_high:
            pcp.high = max(high - (batch << CONFIG_PCP_BATCH_SCALE_MAX), high_min)
            return 0
        if self.zone_reclaim_active:
            free_count = max(pcp.free_count, batch)
            pcp.high = max(high - free_count, high_min)
            return min(batch << 2, pcp.high)
        if high_min == high_max:
            return high
        if self.zone_below_high:
            free_count = max(pcp.free_count, batch)
            pcp.high = max(high - free_count, high_min)
            high = max(pcp.count, high_min)
        elif pcp.count >= high:
            need_high = pcp.free_count + batch
            if pcp.high < need_high:
                pcp.high = max(high_min, min(need_high, high_max))
        return high

    @staticmethod
    def _nr_pcp_free(pcp: PerCpuPages, batch: int, high: int, free_high: bool) -> int:
        if free_high:
            return min(pcp.count, batch << CONFIG_PCP_BATCH_SCALE_MAX)
        if high < batch:
            return 1
        return max(batch, min(pcp.free_count, high - batch))

    def _free_pcppages_bulk(self, count: int, pcp: PerCpuPages, pindex: int) -> None:
        """``free_pcppages_bulk``: round-robin over the lists from ``pindex``, oldest first."""
        self.stats.pcp_bulk_frees += 1
        count = min(pcp.count, count)
        pindex -= 1
        lists = pcp.lists
        pb_mt = self._pageblock_mt
        shift = self.pageblock_order
        while count > 0:
            while True:
                pindex += 1
                if pindex > NR_PCP_LISTS - 1:
                    pindex = 0
                lst = lists[pindex]
                if lst:
                    break
            order = self._pindex_to_order(pindex)
            nr_pages = 1 << order
            while True:
                pfn = lst.popleft()
                count -= nr_pages
                pcp.count -= nr_pages
                self._free_one_page(pfn, order, int(pb_mt[pfn >> shift]), False)
                if count <= 0 or not lst:
                    break

    def _free_frozen_page_commit(self, pcp: PerCpuPages, pfn: int, mt: int, order: int) -> None:
        pcp.alloc_factor >>= 1
        pcp.awake = True
        pindex = self._order_to_pindex(mt, order)
        self._state[pfn] = PG_PCP | order
        pcp.lists[pindex].append(pfn)
        pcp.count += 1 << order
        batch = pcp.batch
        free_high = False
        if order and order <= PAGE_ALLOC_COSTLY_ORDER:
            free_high = (
                pcp.free_count >= batch + pcp.high_min // 2
                and bool(pcp.flags & PCPF_PREV_FREE_HIGH_ORDER)
                and (not pcp.flags & PCPF_FREE_HIGH_BATCH or pcp.count >= batch)
            )
            pcp.flags |= PCPF_PREV_FREE_HIGH_ORDER
        elif pcp.flags & PCPF_PREV_FREE_HIGH_ORDER:
            pcp.flags &= ~PCPF_PREV_FREE_HIGH_ORDER
        if pcp.free_count < batch << CONFIG_PCP_BATCH_SCALE_MAX:
            pcp.free_count += 1 << order
        high = self._nr_pcp_high(pcp, batch, free_high)
        if pcp.count >= high:
            self._free_pcppages_bulk(self._nr_pcp_free(pcp, batch, high, free_high), pcp, pindex)
            if self.zone_below_high and self.zone_watermark_ok(0, self.wmark_pages(WMARK_HIGH)):
                self.zone_below_high = False

    def drain_pages(self, cpu: int) -> None:
        """``drain_pages_zone``: empty one CPU's lists into the buddy lists."""
        pcp = self.pcp[cpu]
        while pcp.count:
            self._free_pcppages_bulk(
                min(pcp.count, pcp.batch << CONFIG_PCP_BATCH_SCALE_MAX), pcp, 0
            )

    def drain_all_pages(self) -> None:
        """``drain_all_pages(zone)``, as compaction and direct reclaim call it."""
        for cpu in range(self.cpus):
            self.drain_pages(cpu)

    def decay_pcp_high(self, cpu: int) -> int:
        """mm/page_alloc.c ``decay_pcp_high``, run each second by vmstat's refresh."""
        pcp = self.pcp[cpu]
        todo = 0
        high_min = pcp.high_min
        batch = pcp.batch
        if pcp.high > high_min:
            pcp.high = max(
                pcp.count - (batch << CONFIG_PCP_BATCH_SCALE_MAX),
                pcp.high - (pcp.high >> 3),
                high_min,
            )
            if pcp.high > high_min:
                todo += 1
        to_drain = pcp.count - pcp.high
        if to_drain > 0:
            self._free_pcppages_bulk(to_drain, pcp, 0)
            todo += 1
        return todo

    def vmstat_refresh(self) -> None:
        """The once-a-second per-CPU work of ``refresh_cpu_vm_stats`` for this zone, on
        the CPUs that were awake since the last one.

        mm/vmstat.c runs ``vmstat_update`` on each CPU as *deferrable* work (it re-arms
        itself while ``refresh_cpu_vm_stats`` reports a change, and ``decay_pcp_high``
        reports one while ``pcp->high`` is above ``high_min``; ``vmstat_shepherd`` queues
        it on a CPU whose counters moved). A deferrable timer does not wake an idle CPU:
        the work runs when the CPU next wakes for something else. So a CPU that goes idle
        after a large free keeps its raised ``high`` and the pages on its lists, as the
        real ``zoneinfo`` after the Gupta anchor shows (tests/data/compaction: CPU 1 held
        115 915 free pages, high 116 205, after the program exited). Here a CPU is awake
        when it allocated or freed through its pageset since the last refresh."""
        if self.pcp_enabled:
            pcp = self.pcp
            for cpu in range(self.cpus):
                if pcp[cpu].awake:
                    pcp[cpu].awake = False
                    self.decay_pcp_high(cpu)

    @property
    def pcp_pages(self) -> int:
        return sum(pcp.count for pcp in self.pcp)

    @property
    def nr_free(self) -> list[int]:
        """``free_area[order].nr_free`` for every order (a new list: a copy)."""
        return [int(n) for n in self._nr_free]

    def nr_free_at(self, order: int) -> int:
        """``free_area[order].nr_free`` (``nr_free[order]`` without the list)."""
        return int(self._nr_free[order])

    # ------------------------------------------------------------------ order-0 fast path

    # The order-0 per-CPU fast path, defined once: alloc(), alloc_batch(), free() and
    # free_batch() call these two when the conditions they check hold (see alloc()
    # and free()). The per-CPU lists hold C integers (PfnList), so the pfn is an int
    # throughout.

    def _pcp_fast_alloc(self, pcp: PerCpuPages, lst: PfnList, owner: int) -> i64:
        """``rmqueue_pcplist`` for an order-0 page when ``lst``, a pcp list of ``pcp``, is
        not empty: pop its head and hand it out to ``owner``."""
        pcp.free_count >>= 1
        pcp.awake = True
        pcp.count -= 1
        # lst.pop(), inline (the hot path: no call): the head, at the ring's right end
        n: i64 = lst._count - 1
        lst._count = n
        pfn: i64 = int(lst._buf[(lst._head + n) & lst._mask])
        self._state[pfn] = PG_ALLOC
        self._owner[pfn] = owner
        return pfn

    def _pcp_fast_free(self, pcp: PerCpuPages, pfn: int, mt: i64) -> bool:
        """``free_frozen_page_commit`` for an allocated order-0 page of pcp migratetype
        ``mt`` while ``pcp->high`` is settled (clamped once by first use, auto-tuning,
        no reclaim, zone above high: ``_fast_ok``): the page goes on its list if the
        list stays below high, with no drain. Same effect as the general path. False,
        and nothing done, when the list would reach high."""
        count = pcp.count + 1
        if count >= pcp.high:
            return False
        if pcp.alloc_factor:
            pcp.alloc_factor >>= 1
        pcp.awake = True
        self._state[pfn] = PG_PCP
        # pcp.lists[mt].append(pfn), inline (the hot path: no call): at the right end
        lst = pcp.lists[mt]
        n: i64 = lst._count
        if n > lst._mask:
            lst._grow()
        lst._buf[(lst._head + n) & lst._mask] = pfn
        lst._count = n + 1
        pcp.count = count
        if pcp.flags:
            pcp.flags &= ~PCPF_PREV_FREE_HIGH_ORDER
        if pcp.free_count < pcp.free_count_max:
            pcp.free_count += 1
        return True

    # ------------------------------------------------------------------ free

    def _free_one_page(self, pfn: int, order: int, mt: int, to_tail: bool) -> None:
        """``__free_one_page``: merge with free buddies, then add to a list."""
        state = self._state
        pb_mt = self._pageblock_mt
        # i64 (mypy_extensions): C integer arithmetic when compiled, plain ints when
        # interpreted (vector elements are read with int(), which is i64's conversion
        # compiled and no call of the i64 class interpreted). Orders stay below
        # MAX_ORDER_LIMIT (see there).
        p: i64 = pfn
        o: i64 = order
        m: i64 = mt
        shift: i64 = self.pageblock_order
        max_order: i64 = self.max_order
        nr_pages: i64 = self.nr_pages
        capc = self._capc
        if capc is not None and capc.page is not None:
            capc = None  # task_capc(): only until one page is captured
        state[p] = PG_TAIL
        buddy_pfn: i64 = p
        nxt, prv = self._next, self._prev
        lb: i64 = self._lb
        nr_free_mt, nr_free = self._nr_free_mt, self._nr_free
        while o < max_order:
            if capc is not None and self._capture(capc, p, o, m):
                return
            buddy_pfn = p ^ (1 << o)
            if buddy_pfn >= nr_pages or int(state[buddy_pfn]) != PG_BUDDY | o:
                break
            buddy_mt: i64 = m
            if o >= shift:
                buddy_mt = int(pb_mt[buddy_pfn >> shift])
                if buddy_mt != m and (
                    m >= MIGRATE_PCPTYPES or buddy_mt >= MIGRATE_PCPTYPES
                ):
                    break  # no merging across isolated or highatomic blocks
            # _del_from_free_list(buddy_pfn, order, buddy_mt), inline
            n = int(nxt[lb + buddy_pfn])
            q = int(prv[lb + buddy_pfn])
            nxt[lb + q] = n
            prv[lb + n] = q
            state[buddy_pfn] = PG_TAIL
            nr_free_mt[o * MIGRATE_TYPES + buddy_mt] -= 1
            nr_free[o] -= 1
            self.nr_free_pages -= 1 << o
            if buddy_mt == MIGRATE_HIGHATOMIC:
                self._account_highatomic(-(1 << o))
            if buddy_mt != m:
                # set_pageblock_migratetype(buddy): match the buddy's type so that a
                # later expand() puts the pieces on the right lists. Every pageblock
                # of the buddy (see the module docstring).
                self._set_pageblock_range(buddy_pfn, o, m)
            p &= buddy_pfn
            o += 1
        if not to_tail and o < max_order - 1:
            # buddy_merge_likely: is the next-higher block's buddy free?
            higher = buddy_pfn & p
            higher_buddy = higher ^ (1 << (o + 1))
            to_tail = higher_buddy < nr_pages and int(state[higher_buddy]) == PG_BUDDY | (o + 1)
        self._add_to_free_list(p, o, m, to_tail)

    # ------------------------------------------------------------------ public API

    def alloc(
        self,
        order: int,
        migratetype: int = MIGRATE_MOVABLE,
        cpu: int = 0,
        owner: int | None = None,
        alloc_flags: int = ALLOC_WMARK_LOW | ALLOC_KSWAPD,
        highest_zoneidx: int = -1,
    ) -> int | None:
        """``get_page_from_freelist`` for this zone: watermark check, then ``rmqueue``.

        Returns the head pfn (local to the zone), or None when the watermark or the free
        lists refuse. The slow path (kswapd, compaction, reclaim) is the caller's, and so
        is the zonelist walk (sim/mmzone.py ``Node.get_page_from_freelist``), which
        passes the request's ``highest_zoneidx`` so that a lower zone keeps its
        ``lowmem_reserve``. ALLOC_NOFRAGMENT does not change a hit on the per-CPU list.
        """
        pfn = self.alloc_pfn(order, migratetype, cpu, owner, alloc_flags, highest_zoneidx)
        return None if pfn < 0 else pfn

    def alloc_pfn(self, order: i64, migratetype: i64, cpu: i64, owner: int | None,
                  alloc_flags: i64, highest_zoneidx: i64 = -1) -> i64:
        """``alloc``, with -1 for None: compiled, an ``int | None`` result is a Python
        int made for every page, an ``i64`` one a C integer (as are the arguments)."""
        self.nr_alloc_calls += 1
        if (
            not order
            and (alloc_flags & ~ALLOC_NOFRAGMENT) == _FAST_ALLOC_FLAGS
            and highest_zoneidx <= self.zone_idx
            and self.nr_free_pages > self._alloc_mark
            and 0 <= migratetype <= 2  # a pcp migratetype
        ):
            # The common case, unrolled: an order-0 request that passes the watermark
            # (see _refresh_alloc_mark), with no kswapd wake pending, finds its pcp
            # list non-empty. Same effect as the general path.
            pcp = self.pcp[cpu]
            lst = pcp.lists[migratetype]
            if lst:
                if owner is None:
                    # DEFAULT_OWNER[migratetype], without a Python int
                    return self._pcp_fast_alloc(
                        pcp, lst, OWNER_MOVABLE if migratetype == MIGRATE_MOVABLE
                        else OWNER_UNMOVABLE if migratetype == MIGRATE_UNMOVABLE
                        else OWNER_RECLAIMABLE)
                return self._pcp_fast_alloc(pcp, lst, owner)
        return self._alloc(order, migratetype, cpu, owner, alloc_flags, highest_zoneidx)

    def _alloc(
        self, order: int, migratetype: int, cpu: int, owner: int | None, alloc_flags: int,
        highest_zoneidx: int = -1,
    ) -> int:
        if not self.grouping_by_mobility:
            migratetype = MIGRATE_UNMOVABLE  # gfp_migratetype() with grouping disabled
        if not 0 <= order <= self.max_order:
            raise ValueError(f"expected an order from 0 to {self.max_order}, got {order}")
        if migratetype >= MIGRATE_PCPTYPES:
            raise ValueError(f"expected a migratetype below {MIGRATE_PCPTYPES}, got {migratetype}")
        free_pages = self.nr_free_pages
        boost = self.watermark_boost
        wmark = self._watermark
        reserve = self.reserve_for(highest_zoneidx)
        # ZONE_BELOW_HIGH detection, then the caller's watermark.
        ok = False
        if not self.zone_below_high:
            mark = wmark[WMARK_HIGH] + boost
            if (not order and free_pages - min(free_pages, self.nr_free_highatomic)
                    > mark + reserve) \
                    or self.zone_watermark_fast(order, mark, alloc_flags, reserve):
                ok = True
            else:
                self.zone_below_high = True
        if not ok:
            mark = wmark[alloc_flags & ALLOC_WMARK_MASK] + boost
            if not (alloc_flags & ALLOC_NO_WATERMARKS
                    or self.zone_watermark_fast(order, mark, alloc_flags, reserve)):
                self.stats.alloc_fail_wmark += 1
                return -1
        # rmqueue: the pcp list for pcp_allowed_order, then (also when that fails) the
        # buddy lists.
        pfn = -1
        if self.pcp_enabled and (order <= PAGE_ALLOC_COSTLY_ORDER or
                                 (self.thp and order == self.pageblock_order)):
            pfn = self._rmqueue_pcplist(order, migratetype, cpu, alloc_flags)
        if pfn < 0:
            pfn = self._rmqueue_buddy(order, migratetype, alloc_flags)
        if alloc_flags & ALLOC_KSWAPD and self.zone_boosted_watermark:
            self.zone_boosted_watermark = False
            self.stats.kswapd_wakeups += 1
            if self.on_wakeup_kswapd is not None:
                self.on_wakeup_kswapd(0)
        if pfn < 0:
            self.stats.alloc_fail_nopage += 1
            return -1
        self._state[pfn] = PG_ALLOC | order
        self._owner[pfn] = _DEFAULT_OWNER[migratetype] if owner is None else owner
        # get_page_from_freelist: a high-order atomic allocation may reserve its
        # pageblock for the next ones.
        if alloc_flags & ALLOC_HIGHATOMIC:
            self.reserve_highatomic_pageblock(pfn, order)
        return pfn

    def free(self, pfn: int, order: int, cpu: int = 0, to_tail: bool = False) -> None:
        """Free an allocated block (``__free_pages``).

        ``to_tail`` is FPI_TO_TAIL: the block goes straight to the buddy list tail,
        bypassing the per-CPU lists, as ``__free_pages_core`` and page isolation do.
        """
        # The owner tag of a free block is stale and never read: alloc sets it.
        self.nr_free_calls += 1
        state = self._state
        if pfn < 0 or pfn >= self.nr_pages or int(state[pfn]) != PG_ALLOC | order:
            raise BadFree(self._describe_bad_free(pfn, order))
        p: i64 = pfn  # in the zone: a C integer from here
        shift: i64 = self.pageblock_order
        mt: i64 = int(self._pageblock_mt[p >> shift])
        if (not order and self._fast_ok and not to_tail and mt <= 2
                and self._pcp_fast_free(self.pcp[cpu], p, mt)):
            # The order-0 fast path took it. Same effect as the general path.
            return
        if (
            self.pcp_enabled
            and not to_tail
            and (order <= PAGE_ALLOC_COSTLY_ORDER or (self.thp and order == self.pageblock_order))
            and mt != MIGRATE_ISOLATE
        ):
            if mt >= MIGRATE_PCPTYPES:
                mt = MIGRATE_MOVABLE
            self._free_frozen_page_commit(self.pcp[cpu], p, mt, order)
        else:
            self._free_one_page(p, order, mt, to_tail)

    def alloc_batch(
        self,
        n: int,
        migratetype: int,
        cpu: Callable[[], int],
        owner: int | None,
        alloc_flags: int,
        out: list[int],
        owner_of: Callable[[], int] | None = None,
    ) -> tuple[int, int | None] | None:
        """``n`` order-0 ``alloc`` calls in a row, with no call per page while the
        per-CPU fast path serves them.

        Page i is ``alloc(0, migratetype, c, o, alloc_flags)`` with ``o = owner_of()``
        (or ``owner``) then ``c = cpu()``, drawn in that order, and its pfn is appended
        to ``out``. The first refusal stops the batch: it returns that page's
        ``(cpu, owner)`` so the caller can run the slow path for it; None when all
        ``n`` were served. Call for call the same effects as the loop
        (tests/test_batching.py holds it to that); there are no callbacks to the
        caller except ``on_wakeup_kswapd``, which only wakes a daemon.
        """
        pcps = self.pcp
        pcp_type = 0 <= migratetype < MIGRATE_PCPTYPES
        fast_flags = (alloc_flags & ~ALLOC_NOFRAGMENT) == _FAST_ALLOC_FLAGS and pcp_type
        default_owner = _DEFAULT_OWNER[migratetype] if pcp_type else 0
        fast = fast_flags and self.nr_free_pages > self._alloc_mark
        lists = [pcp.lists[migratetype] for pcp in pcps] if pcp_type else []
        start = len(out)
        by_alloc = 0  # pages from alloc(), which counts its own calls
        try:
            for _ in range(n):
                o = owner if owner_of is None else owner_of()
                c = cpu()
                if fast:
                    lst = lists[c]
                    if lst:
                        out.append(self._pcp_fast_alloc(
                            pcps[c], lst, default_owner if o is None else o))
                        continue
                pfn = self.alloc(0, migratetype, c, o, alloc_flags)
                if pfn is None:
                    return c, o
                out.append(pfn)
                by_alloc += 1
                # alloc may have moved the free count, the boost or a zone flag.
                fast = fast_flags and self.nr_free_pages > self._alloc_mark
            return None
        finally:
            self.nr_alloc_calls += len(out) - start - by_alloc

    def _prefetch_page_state(self, pfns: list[int]) -> None:
        """Read the state of every page in ``pfns`` at once, and drop what was read.

        Only a speed-up, with no effect on any result: one numpy gather issues the
        random reads together, where the loop that follows would wait on each in turn
        (a cache and TLB miss per page on a large zone, where the pfns come in random
        order). In a loop that frees random runs of 164 pages on a 16 GiB zone and
        allocates them again: 305 ns a free without it, 180 ns with it."""
        try:
            index = np.asarray(pfns, dtype=np.intp)
        except (OverflowError, TypeError, ValueError):
            return  # not all pfns: the loop reports the bad one
        np.frombuffer(memoryview(self._state), dtype=np.uint8).take(index, mode="clip")

    def free_batch(self, pfns: Iterable[int], order: int, cpu: Callable[[], int]) -> None:
        """``free(pfn, order, cpu())`` for each pfn in turn, without a call per page
        while the order-0 per-CPU fast path applies (same effects as the loop)."""
        state = self._state
        pb_mt = self._pageblock_mt
        shift = self.pageblock_order
        pcps = self.pcp
        done = 0  # fast-path frees, counted in nr_free_calls at the end
        if isinstance(pfns, list) and len(pfns) >= _PREFETCH_MIN:
            self._prefetch_page_state(pfns)
        try:
            for pfn in pfns:
                c = cpu()
                if (not order and self._fast_ok and 0 <= pfn < self.nr_pages
                        and int(state[pfn]) == PG_ALLOC):
                    mt = int(pb_mt[pfn >> shift])
                    if mt <= 2 and self._pcp_fast_free(pcps[c], pfn, mt):
                        done += 1
                        continue
                self.free(pfn, order, c)
        finally:
            self.nr_free_calls += done

    def _describe_bad_free(self, pfn: int, order: int) -> str:
        if not 0 <= pfn < self.nr_pages:
            return f"free of pfn {pfn} order {order}: outside the zone (0..{self.nr_pages - 1})"
        st = int(self._state[pfn])
        kind = st & PG_KIND
        if kind == PG_ALLOC:
            return (
                f"free of pfn {pfn} at order {order}, but it was allocated at order "
                f"{st & PG_ORDER}"
            )
        if kind in (PG_BUDDY, PG_PCP):
            return f"double free of pfn {pfn} order {order}: it is already free"
        return f"free of pfn {pfn} order {order}: not the head of an allocated block"

    # ------------------------------------------------------------------ inspection

    def order_of(self, pfn: int) -> int:
        return int(self._state[pfn]) & PG_ORDER

    def is_allocated(self, pfn: int) -> bool:
        return int(self._state[pfn]) & PG_KIND == PG_ALLOC

    def owner_of(self, pfn: int) -> int:
        return int(self._owner[pfn])

    def set_owner(self, pfn: int, owner: int) -> None:
        if not self.is_allocated(pfn):
            raise ValueError(f"pfn {pfn} is not the head of an allocated block")
        self._owner[pfn] = owner

    def pageblock_migratetype(self, pfn: int) -> int:
        """``get_pfnblock_migratetype``"""
        return int(self._pageblock_mt[pfn >> self.pageblock_order])

    def set_pageblock_migratetype(self, pfn: int, mt: int) -> None:
        """``set_pageblock_migratetype`` for the pageblock holding ``pfn``.

        As in the kernel, this sets the type bits only; the pageblock must hold no free
        buddy block then (free lists are per type), which is checked here. One
        bookkeeping step the kernel's has not: a pageblock made or unmade HIGHATOMIC
        moves ``nr_reserved_highatomic`` by a pageblock, so that a snapshot's HighAtomic
        pageblocks (sim/snapshot.py) are a reserve, as they were in the kernel.
        """
        if not 0 <= mt < MIGRATE_TYPES:
            raise ValueError(f"expected a migratetype below {MIGRATE_TYPES}, got {mt}")
        shift = self.pageblock_order
        start = pfn >> shift << shift
        first = start >> self.max_order << self.max_order  # a free block may start there
        end = min(start + self.pageblock_nr_pages, self.nr_pages)
        seg = np.asarray(self._state[first:end])
        for head in (np.flatnonzero((seg & PG_KIND) == PG_BUDDY) + first).tolist():
            if head + (1 << (int(self._state[head]) & PG_ORDER)) > start:
                raise ValueError(f"pageblock at pfn {start} holds the free block at pfn "
                                 f"{head}: move its free pages first")
        old_mt = int(self._pageblock_mt[start >> shift])
        if (old_mt == MIGRATE_HIGHATOMIC) != (mt == MIGRATE_HIGHATOMIC):
            self.nr_reserved_highatomic += (
                self.pageblock_nr_pages if mt == MIGRATE_HIGHATOMIC
                else -self.pageblock_nr_pages)
        self._pageblock_mt[start >> shift] = mt
        self._pageblock_nr[old_mt] -= 1
        self._pageblock_nr[mt] += 1

    def nr_free_by_type(self) -> list[list[int]]:
        """Free blocks per migratetype per order, as /proc/pagetypeinfo counts them."""
        n = MIGRATE_TYPES
        counts = self._nr_free_mt
        return [[int(counts[o * n + mt]) for o in range(self.max_order + 1)]
                for mt in range(n)]

    def pageblock_counts(self) -> list[int]:
        """Pageblocks per migratetype ("Number of blocks type" in pagetypeinfo)."""
        return list(self._pageblock_nr)

    def _count_pageblocks(self) -> list[int]:
        """``pageblock_counts`` by walking every pageblock (``check``'s reference)."""
        counts = [0] * MIGRATE_TYPES
        for mt in self._pageblock_mt:
            counts[mt] += 1
        return counts

    def free_blocks(self, order: int, mt: int) -> list[int]:
        """The pfns on one free list, head first (for tests and inspection)."""
        s = self._sentinel + order * MIGRATE_TYPES + mt
        out = []
        lb = self._lb
        pfn = int(self._next[lb + s])
        while pfn != s:
            out.append(pfn)
            pfn = int(self._next[lb + pfn])
        return out

    def memory_bytes(self) -> int:
        """Bytes held by page state and free lists (the per-page storage)."""
        return (
            8 * (self.nr_pages + self.free_list_heads())  # its share of the links
            + len(self._state) + 2 * len(self._owner)  # state bytes and owner tags
            + len(self._pageblock_mt)  # a migratetype byte per pageblock
            + len(self._pageblock_skip_bits)  # and a skip byte
        )

    def pageblock_types(self) -> list[int]:
        """A copy of every pageblock's migratetype, in pfn order."""
        return [int(mt) for mt in self._pageblock_mt]

    def report(self) -> dict[str, int]:
        """The zone's counters for a run's summary (``buddy``), and the highatomic
        reserve at the end (``nr_reserved_highatomic``, in pages)."""
        report = self.stats.as_dict()
        report["nr_reserved_highatomic"] = self.nr_reserved_highatomic
        return report

    # ------------------------------------------------------------------ check()

    def check(self) -> None:
        """Verify every invariant; raise BuddyCorrupt on the first broken one.

        - every pfn is covered by exactly one aligned block (no overlap, no gap);
        - every buddy block is on exactly one list, of its order and of its
          pageblock's migratetype (every pageblock it spans has that type);
        - per-CPU pages are on the list of their order and are counted;
        - free + per-CPU + allocated = total, and the counters agree;
        - ``nr_free_highatomic`` is the pages on the HIGHATOMIC lists, and
          ``nr_reserved_highatomic`` is the HIGHATOMIC pageblocks' pages;
        - the pageblocks per migratetype kept are those of the pageblocks.
        """
        if self._pageblock_nr != self._count_pageblocks():
            raise BuddyCorrupt(f"pageblocks per type kept {self._pageblock_nr}, counted "
                               f"{self._count_pageblocks()}")
        state = self._state
        n = self.nr_pages
        shift = self.pageblock_order
        pb_mt = self._pageblock_mt
        seen_buddy = 0
        seen = {PG_BUDDY: 0, PG_PCP: 0, PG_ALLOC: 0}
        pfn = 0
        while pfn < n:
            st = int(state[pfn])
            kind = st & PG_KIND
            order = st & PG_ORDER
            if kind == PG_TAIL:
                raise BuddyCorrupt(f"pfn {pfn} is a tail page with no head before it")
            size = 1 << order
            if order > self.max_order or pfn & (size - 1) or pfn + size > n:
                raise BuddyCorrupt(f"block at pfn {pfn} order {order} is misaligned or out of zone")
            if size > 1 and bytes(state[pfn + 1:pfn + size]).count(PG_TAIL) != size - 1:
                raise BuddyCorrupt(f"block at pfn {pfn} order {order} overlaps another block")
            seen[kind] += size
            if kind == PG_BUDDY:
                seen_buddy += 1
            pfn += size

        listed = 0
        for order in range(self.max_order + 1):
            per_order = 0
            for mt in range(MIGRATE_TYPES):
                blocks = self.free_blocks(order, mt)
                if len(blocks) != self._nr_free_mt[order * MIGRATE_TYPES + mt]:
                    raise BuddyCorrupt(f"list order {order} mt {mt} length disagrees with count")
                for pfn in blocks:
                    if int(state[pfn]) != PG_BUDDY | order:
                        raise BuddyCorrupt(
                            f"pfn {pfn} on list order {order} has state {int(state[pfn]):#x}"
                        )
                    # The kernel keeps a free block on the list of its first
                    # pageblock's type (move_to_free_list warns otherwise).
                    if int(pb_mt[pfn >> shift]) != mt:
                        raise BuddyCorrupt(
                            f"pfn {pfn} on the mt {mt} list lies in a pageblock of type "
                            f"{int(pb_mt[pfn >> shift])}"
                        )
                per_order += len(blocks)
            if per_order != self._nr_free[order]:
                raise BuddyCorrupt(
                    f"nr_free[{order}] = {self._nr_free[order]}, lists hold {per_order}"
                )
            listed += per_order
        if listed != seen_buddy:
            raise BuddyCorrupt(f"{seen_buddy} buddy blocks in page state, {listed} on lists")
        if seen[PG_BUDDY] != self.nr_free_pages:
            raise BuddyCorrupt(f"NR_FREE_PAGES {self.nr_free_pages}, buddy pages {seen[PG_BUDDY]}")
        highatomic_free = sum(
            int(self._nr_free_mt[order * MIGRATE_TYPES + MIGRATE_HIGHATOMIC]) << order
            for order in range(self.max_order + 1))
        if highatomic_free != self.nr_free_highatomic:
            raise BuddyCorrupt(f"nr_free_highatomic {self.nr_free_highatomic}, HIGHATOMIC "
                               f"lists hold {highatomic_free} pages")
        reserved = self.pageblock_counts()[MIGRATE_HIGHATOMIC] * self.pageblock_nr_pages
        if reserved != self.nr_reserved_highatomic:
            raise BuddyCorrupt(f"nr_reserved_highatomic {self.nr_reserved_highatomic}, "
                               f"HIGHATOMIC pageblocks hold {reserved} pages")

        pcp_total = 0
        for cpu, pcp in enumerate(self.pcp):
            count = 0
            for pindex, lst in enumerate(pcp.lists):
                order = self._pindex_to_order(pindex)
                for pfn in lst:
                    if int(state[pfn]) != PG_PCP | order:
                        raise BuddyCorrupt(f"cpu {cpu} pcp list {pindex} holds pfn {pfn} "
                                           f"with state {int(state[pfn]):#x}")
                    count += 1 << order
            if count != pcp.count:
                raise BuddyCorrupt(f"cpu {cpu} pcp count {pcp.count}, lists hold {count}")
            pcp_total += count
        if pcp_total != seen[PG_PCP]:
            raise BuddyCorrupt(f"{seen[PG_PCP]} pcp pages in page state, {pcp_total} on lists")
        if seen[PG_BUDDY] + seen[PG_PCP] + seen[PG_ALLOC] != n:
            raise BuddyCorrupt("free + per-CPU + allocated != total")

    # ---- compaction support (mm/compaction.c, mm/migrate.c)
    #
    # What sim/compaction.py needs from the zone, and nothing else calls: the
    # allocator's own paths above are unchanged by this section. The scanners read the
    # page state directly (page_state_arrays); every change goes through a method here.

    def page_state_arrays(self) -> tuple[vec[u8], vec[i16]]:
        """The per-pfn state bytes and owner tags, for the compaction scanners and the
        vectorised pageblock census (sim/metrics.py, through ``numpy.frombuffer``).

        Read-only by contract: a scanner walks millions of pfns, and a method call per
        pfn would cost more than the walk. Changes go through the methods below.
        """
        return self._state, self._owner

    def free_area_empty(self, order: int, mt: int) -> bool:
        """``free_area_empty(&zone->free_area[order], mt)``"""
        return not self._nr_free_mt[order * MIGRATE_TYPES + mt]

    def find_suitable_fallback(self, order: int, mt: int, claimable: bool) -> int:
        """``find_suitable_fallback``: -2 too small to claim, -1 none, else the type."""
        return self._find_suitable_fallback(order, mt, claimable)

    def isolate_free_page(self, pfn: int) -> int:
        """``__isolate_free_page``: take the free block at ``pfn`` off its list.

        Returns the pages isolated, or 0 when the zone would fall to the min watermark
        (compaction obeys watermarks as if it allocated the block). The block becomes
        an allocated block with owner OWNER_NONE until compaction hands it to a
        migrated page or frees it. A block of at least half a pageblock turns every
        mergeable pageblock it touches MOVABLE, moving the block's other free pages.
        """
        st = int(self._state[pfn])
        if st & PG_KIND != PG_BUDDY:
            raise ValueError(f"pfn {pfn} is not the head of a free block (state {st:#x})")
        order = st & PG_ORDER
        shift = self.pageblock_order
        mt = int(self._pageblock_mt[pfn >> shift])
        if mt != MIGRATE_ISOLATE and not self.zone_watermark_ok(
            0, self._watermark[WMARK_MIN] + (1 << order), 0
        ):
            return 0
        self._del_from_free_list(pfn, order, mt)
        self._state[pfn] = PG_ALLOC | order
        self._owner[pfn] = OWNER_NONE
        if order >= shift - 1:
            pb = self.pageblock_nr_pages
            for page in range(pfn, pfn + (1 << order) - 1, pb):
                block_mt = int(self._pageblock_mt[page >> shift])
                start = page & ~(pb - 1)
                # migratetype_is_mergeable, and prep_move_freepages_block's refusal of
                # a pageblock that straddles the zone end.
                if block_mt < MIGRATE_PCPTYPES and start + pb <= self.nr_pages:
                    self._move_freepages_block(start, block_mt, MIGRATE_MOVABLE)
                    self._set_pageblock_range(start, 0, MIGRATE_MOVABLE)
        return 1 << order

    def split_isolated_page(self, pfn: int, order: int, new_order: int) -> list[int]:
        """Split an isolated block as ``compaction_alloc`` does: keep the lowest
        ``2**new_order`` pages at ``pfn``; return the upper halves, largest first
        (pfn + 2**(order-1) at order-1, ..., pfn + 2**new_order at new_order)."""
        if int(self._state[pfn]) != PG_ALLOC | order or int(self._owner[pfn]) != OWNER_NONE:
            raise ValueError(f"pfn {pfn} is not an isolated free block of order {order}")
        pieces = []
        for k in range(order - 1, new_order - 1, -1):
            piece = pfn + (1 << k)
            self._state[piece] = PG_ALLOC | k
            self._owner[piece] = OWNER_NONE
            pieces.append(piece)
        self._state[pfn] = PG_ALLOC | new_order
        return pieces

    def split_folio(self, pfn: int, order: int) -> None:
        """``split_folio``: the allocated block of ``order`` at ``pfn`` becomes
        ``2**order`` allocated order-0 blocks with its owner, as splitting a large folio
        into base pages leaves it (mm/huge_memory.c ``__split_unmapped_folio``)."""
        if order <= 0 or int(self._state[pfn]) != PG_ALLOC | order:
            raise ValueError(f"pfn {pfn} is not an allocated block of order {order}")
        owner = int(self._owner[pfn])
        for page in range(pfn, pfn + (1 << order)):
            self._state[page] = PG_ALLOC
            self._owner[page] = owner

    def migrate_page(self, src: int, dst: int, cpu: int) -> None:
        """Move an allocated block's contents and owner to an isolated block.

        mm/migrate.c ``migrate_folio_move`` then ``migrate_folio_done``: the source is
        released with ``folio_put``, i.e. freed on ``cpu``'s per-CPU list like any
        other free (``free_frozen_pages``), not merged at once.

        ``zone.on_migrate(src, dst, order)``, if the engine set it, is called before the
        source is freed: whoever tracks the block by pfn (rmap, in the kernel) follows it.
        """
        st = int(self._state[src])
        order = st & PG_ORDER
        if st & PG_KIND != PG_ALLOC:
            raise ValueError(f"migration source pfn {src} is not allocated (state {st:#x})")
        if int(self._state[dst]) != PG_ALLOC | order or int(self._owner[dst]) != OWNER_NONE:
            raise ValueError(
                f"migration target pfn {dst} is not an isolated block of order {order}"
            )
        self._owner[dst] = int(self._owner[src])
        on_migrate = self.on_migrate
        if isinstance(on_migrate, MigrateHook):
            on_migrate.migrated(src, dst, order)
        elif on_migrate is not None:
            on_migrate(src, dst, order)
        self.free(src, order, cpu)

    def pageblock_migratetypes(self) -> vec[u8]:
        """Every pageblock's migratetype, indexed by ``pfn >> pageblock_order``, for the
        compaction scanners. Read-only by contract, as ``page_state_arrays``: changes go
        through ``set_pageblock_migratetype``."""
        return self._pageblock_mt

    def pageblock_skip_bits(self) -> vec[u8]:
        """PB_compact_skip of every pageblock, indexed by ``pfn >> pageblock_order``:
        compaction's own hints, which its scanners read and write directly (a method
        call per pageblock cost more than the scanners' test of it)."""
        return self._pageblock_skip_bits

    def pageblock_skip(self, pfn: int) -> bool:
        """``get_pageblock_skip``"""
        return bool(self._pageblock_skip_bits[pfn >> self.pageblock_order])

    def set_pageblock_skip(self, pfn: int) -> None:
        self._pageblock_skip_bits[pfn >> self.pageblock_order] = 1

    def clear_pageblock_skip(self, pfn: int) -> None:
        self._pageblock_skip_bits[pfn >> self.pageblock_order] = 0

    def free_list_iter(self, order: int, mt: int, reverse: bool = False) -> Iterator[int]:
        """The pfns of one free list, head first (or tail first), read lazily.

        The next link is read before a pfn is yielded, so the caller may move that pfn
        (``move_freelist_head``/``_tail``) and stop, as the fast compaction searches do.
        """
        s = self._sentinel + order * MIGRATE_TYPES + mt
        links = self._prev if reverse else self._next
        lb = self._lb
        pfn = int(links[lb + s])
        while pfn != s:
            after = int(links[lb + pfn])
            yield pfn
            pfn = after

    def free_list_sentinel(self, order: int, mt: int) -> int:
        """The list head of one free list, for a walk with ``free_list_link``.

        ``free_list_iter`` as two calls a step instead of a generator (the compaction
        searches walk lists this way: a generator's frame per walk cost 3 % of a run)::

            s = zone.free_list_sentinel(order, mt)
            nxt = zone.free_list_link(s)
            while nxt != s:
                pfn, nxt = nxt, zone.free_list_link(nxt)
                ...  # pfn may be moved (move_freelist_head/_tail): nxt was read first
        """
        return self._sentinel + order * MIGRATE_TYPES + mt

    def free_list_links(self) -> tuple[vec[i32], vec[i32]]:
        """The free lists' next and previous links of every pfn, then of every list
        head (``free_list_sentinel``), at ``free_list_base()`` + the pfn, for the
        compaction searches' walks: a ``free_list_link`` call per step cost more than
        the step. Read-only by contract, as ``page_state_arrays``."""
        return self._next, self._prev

    def free_list_heads(self) -> int:
        """The list heads the links hold after the pfns': one per order and
        migratetype."""
        return (self.max_order + 1) * MIGRATE_TYPES

    def free_list_base(self) -> int:
        """Where local pfn 0's links are in ``free_list_links``: the zone's first node
        pfn when it shares its node's (``share_links``), else 0. A walk reads the link
        of ``pfn`` (or of a sentinel) at ``base + pfn``; the links hold local pfns."""
        return self._lb

    def page_links(self) -> tuple[vec[i32], vec[i32]]:
        """The two 32-bit words per pfn that the free lists link free blocks with,
        indexed by pfn from 0 (sim/mmzone.py ``Node.page_links`` for a node). A free
        block's head uses them as ``page->buddy_list``; at any other pfn they are
        whoever holds the page's to use (sim/machine.py gives them to the file systems
        and the file LRU), as the kernel's ``struct page`` keeps an allocated page's
        ``mapping`` and ``lru`` in the words a free page's buddy links use. Nothing
        the free lists read is at an allocated pfn, and nothing a holder reads is
        trusted unless its own tables name the page."""
        if self.zone_start_pfn:
            raise ValueError("page_links: a zone not at pfn 0 shares its node's")
        return self._next, self._prev

    def share_links(self, nxt: vec[i32], prv: vec[i32], base: int, heads: int) -> None:
        """Move the free lists' links into a node's vectors (sim/mmzone.py ``Node``):
        local pfn p at ``base + p``, the list heads at ``heads`` on. The lists are
        unchanged; the zone's own vectors are let go."""
        nr_lists = self.free_list_heads()
        if base < 0 or base + self.nr_pages > heads or heads + nr_lists > len(nxt) \
                or len(prv) != len(nxt):
            raise ValueError(f"share_links: {self.nr_pages} pages at {base} and "
                             f"{nr_lists} heads at {heads} do not fit {len(nxt)} links")
        old_next, old_prev = self._next, self._prev
        old_lb, old_s = self._lb, self._sentinel
        sentinel = heads - base  # the local index whose links are at ``heads``
        shift = sentinel - old_s
        for k in range(self.nr_pages + nr_lists):
            i = base + k if k < self.nr_pages else heads + k - self.nr_pages
            n = int(old_next[old_lb + k])
            p = int(old_prev[old_lb + k])
            nxt[i] = n if n < old_s else n + shift
            prv[i] = p if p < old_s else p + shift
        self._next, self._prev = nxt, prv
        self._lb = base
        self._sentinel = sentinel

    def free_list_link(self, pfn: int, reverse: bool = False) -> int:
        """The pfn after ``pfn`` on its free list (before it if ``reverse``); a
        sentinel (``free_list_sentinel``) at the end of the list."""
        lb = self._lb
        return int(self._prev[lb + pfn]) if reverse else int(self._next[lb + pfn])

    def _rotate_free_list(self, order: int, mt: int, before: int, after: int) -> None:
        # Re-link the list's sentinel between ``before`` and ``after``: a rotation of
        # the circular list, which is what list_cut_* + list_splice_tail amount to.
        s = self._sentinel + order * MIGRATE_TYPES + mt
        if before == s or after == s:
            return  # already the head (or the tail): list_is_first/list_is_last
        nxt, prv = self._next, self._prev
        lb = self._lb
        n, p = int(nxt[lb + s]), int(prv[lb + s])
        nxt[lb + p] = n
        prv[lb + n] = p
        nxt[lb + before] = s
        prv[lb + s] = before
        nxt[lb + s] = after
        prv[lb + after] = s

    def move_freelist_head(self, order: int, mt: int, pfn: int) -> None:
        """mm/compaction.c ``move_freelist_head``: make ``pfn`` the list head; the
        entries before it go to the tail, in order."""
        if int(self._state[pfn]) != PG_BUDDY | order:
            raise ValueError(f"pfn {pfn} is not on a free list of order {order}")
        self._rotate_free_list(order, mt, int(self._prev[self._lb + pfn]), pfn)

    def move_freelist_tail(self, order: int, mt: int, pfn: int) -> None:
        """mm/compaction.c ``move_freelist_tail``: make ``pfn`` the list tail."""
        if int(self._state[pfn]) != PG_BUDDY | order:
            raise ValueError(f"pfn {pfn} is not on a free list of order {order}")
        self._rotate_free_list(order, mt, pfn, int(self._next[self._lb + pfn]))

    def set_capture_control(self, capc: CaptureControl | None) -> None:
        """Install ``current->capture_control`` for a direct compaction, or remove it:
        while installed, ``__free_one_page`` offers each merged block to it."""
        self._capc = capc

    def _capture(self, capc: CaptureControl, pfn: int, order: int, mt: int) -> bool:
        """``compaction_capture``: take the block for the compacting allocation? The
        order must be the request's, not an isolated block, and a block below pageblock
        order in a MOVABLE pageblock goes only to a MOVABLE request."""
        if order != capc.order or mt == MIGRATE_ISOLATE or (
            order < self.pageblock_order and mt == MIGRATE_MOVABLE
            and capc.migratetype != MIGRATE_MOVABLE
        ):
            return False
        capc.page = pfn
        self._state[pfn] = PG_ALLOC | order
        self._owner[pfn] = capc.owner
        return True



def apply_ops(zone: Zone, kinds: vec[i32], orders: vec[i32], mts: vec[i32],
              cpus: vec[i32], slots: vec[i32], pfns: vec[i64], start: i64, end: i64) -> i64:
    """Apply operations ``start`` to ``end`` of a sequence to ``zone`` (a simulator
    tool, not a kernel function): operation i allocates (``kinds[i]`` 0) a block of
    ``orders[i]`` of migratetype ``mts[i]`` on ``cpus[i]`` and keeps its pfn in
    ``pfns[slots[i]]``, or frees (1) the block kept there. An allocation is
    ``zone.alloc(order, mt, cpu)``, a refused one keeps -1; a free is ``zone.free(pfn,
    order, cpu)``. Returns the number refused.

    bench/bench_buddy.py measures the allocator with it: compiled, the loop around
    the zone's calls makes no Python objects, as the workloads' compiled loops call it
    in a run, where a loop in the interpreter costs more than the zone's own work."""
    refused: i64 = 0
    i: i64 = start
    while i < end:
        order: i64 = int(orders[i])
        slot: i64 = int(slots[i])
        cpu: i64 = int(cpus[i])
        if int(kinds[i]) == 0:
            pfn = zone.alloc_pfn(order, int(mts[i]), cpu, None, _FAST_ALLOC_FLAGS)
            pfns[slot] = pfn
            if pfn < 0:
                refused += 1
        else:
            zone.free(int(pfns[slot]), order, cpu)
        i += 1
    return refused
