"""Nodes and zones, as include/linux/mmzone.h, mm/mm_init.c and the zone parts of
mm/page_alloc.c of Linux 6.18 build them on x86-64.

This module is the design of fragsim's multi-zone machine (issue 18, item 2) and the
code that exists of it so far. sim/buddy.py ``Zone`` stays the buddy allocator of one
zone; a ``Node`` (``pg_data_t``) holds the zones of one NUMA node and does what the
kernel does across zones: sizing, watermarks, ``lowmem_reserve`` and the zonelist walk
of ``get_page_from_freelist``.

**Zones (include/linux/mmzone.h ``enum zone_type``).** x86-64 with the distribution
config the real data was recorded on (6.18.44, tests/data/*/kernel): ZONE_DMA (0),
ZONE_DMA32 (1), ZONE_NORMAL (2), ZONE_MOVABLE (3) and ZONE_DEVICE (4), so
``MAX_NR_ZONES`` = 5: zoneinfo's ``protection:`` tuples have five entries. HIGHMEM does
not exist on 64-bit. ZONE_DEVICE never has managed pages (it is printed, never used).

**Sizing (arch/x86/mm/init.c ``zone_sizes_init``, mm/mm_init.c ``free_area_init``,
``calculate_node_totalpages``).** ``max_zone_pfns`` = DMA: ``MAX_DMA_PFN`` (16 MiB,
pfn 4096), DMA32: ``MAX_DMA32_PFN`` (4 GiB, pfn 1 << 20), Normal: ``max_pfn``; a zone
spans ``[max_zone_pfns[i-1], max_zone_pfns[i])`` clipped to the node's memory. So a
256 MiB machine is DMA + DMA32 and has no Normal zone; 16 GiB is DMA (16 MiB) + DMA32
(4 GiB - 16 MiB) + Normal (12 GiB). ZONE_MOVABLE is empty unless configured
(``kernelcore=``/``movablecore=``): here only by explicit sizes.

What the model leaves out of a real memory map, and why:

- **Holes.** A real x86-64 machine has the BIOS/legacy area below 1 MiB and the PCI hole
  below 4 GiB: the real DMA zone spans 4095 pages from pfn 1 (present 3998), DMA32
  spans 1 044 480 pages of which 782 336 are present (about 3 GiB), and RAM above the
  hole is remapped past 4 GiB into Normal. The model's zones have no holes
  (present = spanned) and DMA starts at pfn 0: a zone's buddy allocator is one dense
  array. For ``memory: 16GiB`` that gives DMA32 1 GiB more than a real 16 GiB machine
  and Normal 1 GiB less; explicit zone sizes (``zones:`` with sizes) reproduce a real
  machine's managed pages instead.
- **Reserved pages** (present - managed: the memmap, the kernel image, memblock
  reservations, boot-time hugetlb or crashkernel): managed = present here. Snapshots
  (sim/snapshot.py) take each zone's managed pages from zoneinfo.

**Pfns.** Every zone keeps its own dense pfn space 0..nr_pages-1 (sim/buddy.py is
unchanged inside, and compiled code keeps indexing arrays without an offset), plus
``zone.zone_start_pfn``; the node's pfn of a page is ``zone_start_pfn + local pfn``,
unique across the node's zones, and is what the node's ``get_page_from_freelist``
returns and its ``free`` takes (``page_zone`` finds the zone by pfn). Zone starts are
aligned to the largest block (``1 << max_order`` pages: the x86-64 boundaries 4096 and
1 << 20 are), so a buddy ``pfn ^ (1 << order)`` and a pageblock boundary are the same in
local and node pfns: the kernel's absolute pageblock alignment holds without the zone
knowing its start. Global pfns everywhere (an offset inside every array access) would
have cost every compiled per-page path a subtraction and touched all of buddy.py for no
difference in behaviour. Owners (the LRU, file systems, workloads, compaction's
``on_migrate``) must see node pfns; the engine's wiring (next step) gives them those.
A second node would take the pfns after the first's: the data structures allow
``nodes``, nothing creates more than one yet.

**Watermarks (mm/page_alloc.c ``__setup_per_zone_wmarks``).** One ``min_free_kbytes``
per machine (``calculate_min_free_kbytes`` on ``nr_free_buffer_pages``, the managed
pages of the zones up to ZONE_NORMAL, raised for THP by mm/khugepaged.c
``set_recommended_min_free_kbytes`` with the number of populated zones up to Normal),
shared by the lowmem zones in proportion to managed pages
(``min = pages_min * managed / lowmem_pages``); ZONE_MOVABLE gets
``clamp(managed / 1024, SWAP_CLUSTER_MAX, 128)``; low, high and promo are
``max(share / 4, managed * watermark_scale_factor / 10000)`` apart. Checked to the page
against the three real zoneinfo files of tests/data and ../shared/data.

**lowmem_reserve (``setup_per_zone_lowmem_reserve``).** ``sysctl_lowmem_reserve_ratio``
= {DMA 256, DMA32 256, Normal 32, Movable 0} (the CachyOS tree's 6.18-era
mm/page_alloc.c, and the real zoneinfo: DMA32's protection against Normal is Normal's
managed / 256); ``zone[i].lowmem_reserve[j]`` = (managed pages of zones i+1..j) /
ratio[i], 0 when the ratio or zone i's managed pages are 0. ``__zone_watermark_ok``
adds ``lowmem_reserve[highest_zoneidx]`` to the min it compares with
(sim/buddy.py ``Zone.reserve_for``).

**Zonelist and ``get_page_from_freelist``.** ``build_zonelists`` on one node: the
populated zones from the highest down (Normal, DMA32, DMA). A request's
``highest_zoneidx`` is ``gfp_zone(gfp)`` (GFP_ZONE_TABLE: ``__GFP_DMA`` DMA,
``__GFP_DMA32`` DMA32, ``__GFP_HIGHMEM | __GFP_MOVABLE`` Movable, everything else
Normal); the walk starts at the first populated zone at or below it (the preferred
zone). ``alloc_flags_nofragment`` sets ALLOC_NOFRAGMENT when the preferred zone is
ZONE_NORMAL (UMA): the first pass claims only whole pageblocks and never steals in each
zone, Normal, then DMA32, then DMA, each above its watermark plus
``lowmem_reserve[highest_zoneidx]``; if no zone gives a page, the walk runs again
without the flag (the fragmenting fallback, from Normal). The model sets the flag only
when the node has a populated zone below Normal: the kernel assumes DMA32 exists on UMA,
and the single-zone what-if (``zones: [Normal]``) keeps the one-pass behaviour the
existing anchors and goldens were measured with.

**Where it stands.** Built: this module's sizing, watermarks, reserves and zonelist
walk; sim/page_alloc.py over a node's zonelist (fast path with
``alloc_flags_nofragment``, slow path, batches, ``try_to_compact_pages`` over the
zonelist); sim/vmscan.py and sim/daemons.py kswapd per node (``pgdat_balanced`` up to
the classzone, every zone's boost, ``kswapd_highest_zoneidx``); sim/compaction.py
``NodeCompactor`` for kcompactd; sim/snapshot.py ``node_from_snapshots`` (every zone of
real snapshots, ``fragsim zones``, ``machine.from``); sim/machine.py building a node
from ``machine.zones`` and handing every client node pfns (``Node`` is a sim/buddy.py
``PageSpace``, so the compiled slab caches and file systems call it natively);
samples per zone (``<zone>/<key>``) and every zone in a run's final buddyinfo,
pagetypeinfo, zoneinfo and extfrag files. Per-CPU lists, boosts, highatomic reserves and
compaction state are per zone, being ``Zone``'s. ``machine.zones`` defaults to
x86-64's ``[DMA, DMA32, Normal]``; the anchors and goldens pin ``[Normal]``, on which
they were measured. ``fragsim replay`` with a zoneinfo (or ``--from``) replays on every
zone.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from librt.vecs import vec
from mypy_extensions import i32

from sim.buddy import (
    ALLOC_KSWAPD,
    ALLOC_NOFRAGMENT,
    ALLOC_WMARK_LOW,
    WMARK_HIGH,
    PageSpace,
    Zone,
    calculate_min_free_kbytes,
)
from sim.gfp import __GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM, __GFP_MOVABLE
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_PCPTYPES

ZONE_DMA: Final = 0
ZONE_DMA32: Final = 1
ZONE_NORMAL: Final = 2
ZONE_MOVABLE: Final = 3
ZONE_DEVICE: Final = 4
MAX_NR_ZONES: Final = 5
ZONE_NAMES: Final = ("DMA", "DMA32", "Normal", "Movable", "Device")

# mm/page_alloc.c sysctl_lowmem_reserve_ratio (6.18, x86-64: no HIGHMEM; Device unset).
SYSCTL_LOWMEM_RESERVE_RATIO: Final = (256, 256, 32, 0, 0)

# arch/x86/include/asm/dma.h: MAX_DMA_PFN (16 MiB) and MAX_DMA32_PFN (4 GiB), 4 KiB pages.
MAX_DMA_BYTES: Final = 16 << 20
MAX_DMA32_BYTES: Final = 4 << 30

SWAP_CLUSTER_MAX: Final = 32


def zone_index(name: str) -> int:
    """``DMA`` -> ZONE_DMA, ...; an unknown name raises ValueError."""
    try:
        return ZONE_NAMES.index(name)
    except ValueError:
        raise ValueError(f"expected a zone name ({', '.join(ZONE_NAMES[:4])}), "
                         f"got {name!r}") from None


# sim/gfp.py's zone flags as this module's constants: compiled, a static read rather than
# a look-up in the module's globals at every allocation.
_GFP_DMA: Final = __GFP_DMA
_GFP_DMA32: Final = __GFP_DMA32
_GFP_MOVABLE: Final = __GFP_MOVABLE
_GFP_HIGHMEM: Final = __GFP_HIGHMEM


def gfp_zone(gfp: int) -> int:
    """include/linux/gfp.h ``gfp_zone`` on x86-64 (GFP_ZONE_TABLE, OPT_ZONE_HIGHMEM =
    ZONE_NORMAL): the highest zone a request may use."""
    if gfp & _GFP_DMA:
        return ZONE_DMA
    if gfp & _GFP_DMA32:
        return ZONE_DMA32
    if gfp & _GFP_MOVABLE and gfp & _GFP_HIGHMEM:
        return ZONE_MOVABLE
    return ZONE_NORMAL


@dataclass(frozen=True)
class ZoneSpan:
    """One zone's place in the node: ``zone_start_pfn`` and ``spanned_pages``
    (``present_pages`` = spanned: the model has no holes), and its managed pages."""

    idx: int
    start_pfn: int
    spanned_pages: int
    managed_pages: int

    @property
    def name(self) -> str:
        return ZONE_NAMES[self.idx]


def x86_64_zone_spans(memory_pages: int, page_size: int = 4096) -> list[ZoneSpan]:
    """``zone_sizes_init`` + ``free_area_init`` for ``memory_pages`` of RAM from pfn 0:
    DMA below 16 MiB, DMA32 below 4 GiB, Normal above; empty zones left out."""
    limits = [(ZONE_DMA, MAX_DMA_BYTES // page_size),
              (ZONE_DMA32, MAX_DMA32_BYTES // page_size),
              (ZONE_NORMAL, memory_pages)]
    spans = []
    start = 0
    for idx, end in limits:
        end = min(end, memory_pages)
        if end > start:
            spans.append(ZoneSpan(idx, start, end - start, end - start))
            start = end
    return spans


def explicit_zone_spans(sizes: list[tuple[str, int]], max_order: int = 10) -> list[ZoneSpan]:
    """Zones of given page counts, in zone order, each starting at the next
    ``1 << max_order`` boundary after the one before (a hole in between when a size is
    not a multiple of it)."""
    spans = []
    start = 0
    last = -1
    align = 1 << max_order
    for name, pages in sizes:
        idx = zone_index(name)
        if idx <= last:
            raise ValueError(f"expected zones in the order {', '.join(ZONE_NAMES[:4])}, "
                             f"got {name} after {ZONE_NAMES[last]}")
        if pages <= 0:
            raise ValueError(f"expected a positive size for zone {name}, got {pages} pages")
        start = -(-start // align) * align
        spans.append(ZoneSpan(idx, start, pages, pages))
        start += pages
        last = idx
    return spans


def zone_spans_for(memory_pages: int, zones: list, page_size: int = 4096,
                   max_order: int = 10) -> list[ZoneSpan]:
    """``machine.zones`` (sim/config.py, checked there) as spans: names alone cut
    ``memory_pages`` at x86-64's boundaries, a zone left out going to the next one listed
    (the last listed takes the rest; a listed zone left with no pages is unpopulated and
    dropped, as Normal is on a 256 MiB machine); ``{name: bytes}`` entries are explicit
    sizes (``explicit_zone_spans``)."""
    if all(isinstance(entry, dict) for entry in zones):
        sizes = [(name, size // page_size) for entry in zones for name, size in entry.items()]
        return explicit_zone_spans(sizes, max_order)
    listed = [zone_index(name) for name in zones]
    limits = {ZONE_DMA: MAX_DMA_BYTES // page_size, ZONE_DMA32: MAX_DMA32_BYTES // page_size}
    spans = []
    start = 0
    for i, idx in enumerate(listed):
        end = memory_pages if i == len(listed) - 1 else min(limits.get(idx, memory_pages),
                                                               memory_pages)
        if end > start:
            spans.append(ZoneSpan(idx, start, end - start, end - start))
            start = end
    return spans


def setup_per_zone_lowmem_reserve(managed: list[int],
                                  ratio: tuple[int, ...] = SYSCTL_LOWMEM_RESERVE_RATIO
                                  ) -> list[list[int]]:
    """mm/page_alloc.c ``setup_per_zone_lowmem_reserve``: ``reserve[i][j]`` for each
    zone index i of ``managed`` (MAX_NR_ZONES entries, 0 for absent zones)."""
    reserve = [[0] * MAX_NR_ZONES for _ in range(MAX_NR_ZONES)]
    for i in range(MAX_NR_ZONES - 1):
        clear = not ratio[i] or not managed[i]
        upper = 0
        for j in range(i + 1, MAX_NR_ZONES):
            upper += managed[j]
            reserve[i][j] = 0 if clear else upper // ratio[i]
    return reserve


def nr_free_buffer_pages(managed: list[int], high: list[int]) -> int:
    """``nr_free_buffer_pages``: managed - high over the zones up to gfp_zone(GFP_USER)."""
    return sum(max(managed[i] - high[i], 0) for i in range(ZONE_NORMAL + 1))


def setup_per_zone_wmarks(min_free_kbytes: int, managed: list[int],
                          watermark_scale_factor: int = 10, page_size: int = 4096
                          ) -> list[tuple[int, int]]:
    """mm/page_alloc.c ``__setup_per_zone_wmarks``: (min, gap) per zone index, where
    low = min + gap, high = min + 2 gap, promo = min + 3 gap."""
    pages_min = min_free_kbytes // (page_size >> 10)
    lowmem_pages = sum(managed[i] for i in range(MAX_NR_ZONES) if i != ZONE_MOVABLE)
    out = []
    for i in range(MAX_NR_ZONES):
        tmp = pages_min * managed[i] // lowmem_pages if lowmem_pages else 0
        if i == ZONE_MOVABLE:
            wmin = min(max(managed[i] // 1024, SWAP_CLUSTER_MAX), 128)
        else:
            wmin = tmp
        gap = max(tmp >> 2, managed[i] * watermark_scale_factor // 10000)
        out.append((wmin, gap))
    return out


def node_min_free_kbytes(managed: list[int], *, thp: bool, pageblock_order: int,
                         watermark_scale_factor: int = 10, page_size: int = 4096) -> int:
    """``init_per_zone_wmark_min`` then mm/khugepaged.c ``set_recommended_min_free_kbytes``:
    the sqrt rule on the boot-time ``nr_free_buffer_pages`` (watermarks still 0), and with
    THP ``pageblock_nr_pages * nr_zones * (2 + MIGRATE_PCPTYPES**2)`` pages, at most 5 %
    of ``nr_free_buffer_pages`` once the watermarks exist."""
    page_kb = page_size >> 10
    zero = [0] * MAX_NR_ZONES
    min_free_kbytes = calculate_min_free_kbytes(nr_free_buffer_pages(managed, zero) * page_kb)
    if not thp:
        return min_free_kbytes
    marks = setup_per_zone_wmarks(min_free_kbytes, managed, watermark_scale_factor, page_size)
    high = [wmin + 2 * gap for wmin, gap in marks]
    nr_zones = sum(1 for i in range(ZONE_NORMAL + 1) if managed[i])
    pb = 1 << pageblock_order
    recommended = pb * nr_zones * 2 + pb * nr_zones * MIGRATE_PCPTYPES**2
    recommended = min(recommended, nr_free_buffer_pages(managed, high) // 20)
    return max(min_free_kbytes, recommended * page_kb)


class Node(PageSpace):
    """``pg_data_t``: one node's zones (``node_zones``, indexed by zone type, None when
    absent), its zonelist and ``get_page_from_freelist`` over it.

    Pfns given out and taken back are node pfns (``zone.zone_start_pfn`` + the zone's
    own pfn). ``zone_kwargs`` are sim/buddy.py ``Zone`` arguments shared by every zone
    (cpus, max_order, pageblock_order, pcp, ...); ``min_free_kbytes`` None computes the
    kernel's.
    """

    def __init__(self, spans: list[ZoneSpan], *, node_id: int = 0,
                 min_free_kbytes: int | None = None, watermark_scale_factor: int = 10,
                 lowmem_reserve_ratio: tuple[int, ...] = SYSCTL_LOWMEM_RESERVE_RATIO,
                 zones: list[Zone] | None = None, set_watermarks: bool = True,
                 **zone_kwargs) -> None:
        """``zones``, when given, are built already (one per span, of its size: e.g.
        sim/snapshot.py's); their watermarks and reserves are set here, unless
        ``set_watermarks`` is False (a lone zone keeping the ones it computed)."""
        if not spans:
            raise ValueError("expected at least one zone")
        if zones is not None and len(zones) != len(spans):
            raise ValueError(f"expected a zone per span, got {len(zones)} for {len(spans)}")
        self.node_id = node_id
        self.node_zones: list[Zone | None] = [None] * MAX_NR_ZONES
        max_order = zones[0].max_order if zones else zone_kwargs.get("max_order", 10)
        if zones:
            watermark_scale_factor = zones[0].watermark_scale_factor
        for i, span in enumerate(spans):
            if span.start_pfn % (1 << max_order):
                raise ValueError(f"zone {span.name} starts at pfn {span.start_pfn}, "
                                 f"not a multiple of {1 << max_order} (1 << max_order)")
            if zones is not None:
                zone = zones[i]
                if zone.nr_pages != span.spanned_pages:
                    raise ValueError(f"zone {span.name} has {zone.nr_pages} pages, its span "
                                     f"{span.spanned_pages}")
                zone_kwargs.setdefault("thp", zone.thp)
                zone_kwargs.setdefault("pageblock_order", zone.pageblock_order)
                zone_kwargs.setdefault("page_size", zone.page_size)
            else:
                zone = Zone(span.spanned_pages, watermark_scale_factor=watermark_scale_factor,
                            **zone_kwargs)
            zone.zone_idx = span.idx
            zone.zone_start_pfn = span.start_pfn
            self.node_zones[span.idx] = zone
        self.spans = list(spans)
        self.node_start_pfn = spans[0].start_pfn
        self.node_spanned_pages = spans[-1].start_pfn + spans[-1].spanned_pages \
            - spans[0].start_pfn
        # Populated zones, highest first: build_zonelists for one node.
        self.zonelist: list[Zone] = [z for z in reversed(self.node_zones) if z is not None]
        # PageSpace: what a client sizes and asks of the pages, as of a lone zone.
        first = self.zonelist[0]
        self.nr_pages = sum(z.nr_pages for z in self.zonelist)
        self.end_pfn = self.node_start_pfn + self.node_spanned_pages
        self.max_order = first.max_order
        self.pageblock_order = first.pageblock_order
        self.cpus = first.cpus
        self.page_size = first.page_size
        self._by_start = sorted(self.zonelist, key=lambda z: -z.zone_start_pfn)
        self._links: tuple[vec[i32], vec[i32]] | None = None  # page_links
        if self.multi_zone:
            self._share_links()
        page_size = zone_kwargs.get("page_size", 4096)
        managed = self.managed_by_idx()
        if not set_watermarks:
            self.min_free_kbytes = first.min_free_kbytes
            self.nofragment = False
            return
        if min_free_kbytes is None:
            min_free_kbytes = node_min_free_kbytes(
                managed, thp=zone_kwargs.get("thp", True),
                pageblock_order=zone_kwargs.get("pageblock_order", 9),
                watermark_scale_factor=watermark_scale_factor, page_size=page_size)
        self.min_free_kbytes = min_free_kbytes
        for maybe_zone, (wmin, gap) in zip(
                self.node_zones,
                setup_per_zone_wmarks(min_free_kbytes, managed, watermark_scale_factor,
                                      page_size), strict=True):
            if maybe_zone is not None:
                maybe_zone.set_watermarks(wmin, gap, min_free_kbytes)
        reserve = setup_per_zone_lowmem_reserve(managed, lowmem_reserve_ratio)
        for zone in self.zonelist:
            zone.lowmem_reserve = reserve[zone.zone_idx]
        # alloc_flags_nofragment: only with a populated zone below Normal (see above).
        self.nofragment = self.node_zones[ZONE_NORMAL] is not None and any(
            self.node_zones[i] is not None for i in range(ZONE_NORMAL))

    # ------------------------------------------------------------------ layout

    def _share_links(self) -> None:
        """One pair of link vectors for the node, indexed by node pfn (the zones' free
        lists' links, then each zone's list heads), so that a page's two words are in
        one place whichever zone it is in (``page_links``)."""
        heads = [z.free_list_heads() for z in self.zonelist]
        size = self.end_pfn + sum(heads)
        links = array("i", [0]) * size  # a name: mypyc 2.4 asserts on an expression
        nxt: vec[i32] = vec[i32](links, capacity=size)
        prv: vec[i32] = vec[i32](links, capacity=size)
        del links
        at = self.end_pfn
        for zone, n in zip(self.zonelist, heads, strict=True):
            zone.share_links(nxt, prv, zone.zone_start_pfn, at)
            at += n
        self._links = (nxt, prv)

    def page_links(self) -> tuple[vec[i32], vec[i32]]:
        """sim/buddy.py ``Zone.page_links`` for the node: its zones' links, by node
        pfn."""
        if self._links is None:
            return self.zonelist[0].page_links()
        return self._links

    def managed_by_idx(self) -> list[int]:
        return [0 if z is None else z.managed_pages for z in self.node_zones]

    @property
    def multi_zone(self) -> bool:
        """More than one zone, or one not at pfn 0: node pfns are not the zone's."""
        return len(self.zonelist) > 1 or self.zonelist[0].zone_start_pfn != 0

    @property
    def nr_free_pages(self) -> int:
        return sum(z.nr_free_pages for z in self.zonelist)

    def page_zone(self, pfn: int) -> Zone:
        """The zone holding node pfn ``pfn``."""
        for zone in self._by_start:
            if pfn >= zone.zone_start_pfn:
                if pfn - zone.zone_start_pfn < zone.nr_pages:
                    return zone
                break
        raise ValueError(f"pfn {pfn} is in no zone of node {self.node_id}")

    def preferred_zone(self, highest_zoneidx: int) -> Zone | None:
        """The first zone of the zonelist at or below ``highest_zoneidx``."""
        for zone in self.zonelist:
            if zone.zone_idx <= highest_zoneidx:
                return zone
        return None

    def alloc_flags_nofragment(self, highest_zoneidx: int) -> int:
        """``alloc_flags_nofragment`` on this node's preferred zone (the
        ``__GFP_KSWAPD_RECLAIM`` part is the caller's)."""
        preferred = self.preferred_zone(highest_zoneidx)
        if self.nofragment and preferred is not None and preferred.zone_idx == ZONE_NORMAL:
            return ALLOC_NOFRAGMENT
        return 0

    # ------------------------------------------------------------------ allocation

    def get_page_from_freelist(self, order: int, migratetype: int, cpu: int = 0,
                               owner: int | None = None, alloc_flags: int = ALLOC_WMARK_LOW,
                               highest_zoneidx: int = ZONE_NORMAL,
                               skip_preferred: bool = False) -> int | None:
        """mm/page_alloc.c ``get_page_from_freelist``: each zone of the zonelist at or
        below ``highest_zoneidx``, highest first, above its watermark plus
        ``lowmem_reserve[highest_zoneidx]`` (sim/buddy.py ``Zone.alloc``); with
        ALLOC_NOFRAGMENT, the whole walk once more without it when no zone gave a page.
        Returns a node pfn or None. ``skip_preferred``: the first pass starts after the
        preferred zone, which the caller has just tried with these flags
        (``alloc_batch``)."""
        pfn = self.get_page_pfn(order, migratetype, cpu, owner, alloc_flags,
                                highest_zoneidx, skip_preferred)
        return None if pfn < 0 else pfn

    def get_page_pfn(self, order: int, migratetype: int, cpu: int, owner: int | None,
                     alloc_flags: int, highest_zoneidx: int = ZONE_NORMAL,
                     skip_preferred: bool = False) -> int:
        """``get_page_from_freelist``, with -1 for None (compiled, no Python int made
        for the pfn)."""
        while True:
            for zone in self.zonelist:
                if zone.zone_idx > highest_zoneidx:
                    continue
                if skip_preferred:
                    skip_preferred = False
                    continue
                pfn = zone.alloc_pfn(order, migratetype, cpu, owner, alloc_flags,
                                     highest_zoneidx)
                if pfn >= 0:
                    return zone.zone_start_pfn + pfn
            if not alloc_flags & ALLOC_NOFRAGMENT:
                return -1
            alloc_flags &= ~ALLOC_NOFRAGMENT

    def alloc(self, order: int, migratetype: int = MIGRATE_MOVABLE, cpu: int = 0,
              owner: int | None = None, alloc_flags: int = ALLOC_WMARK_LOW | ALLOC_KSWAPD,
              highest_zoneidx: int = -1) -> int | None:
        """``get_page_from_freelist`` for a request of the Normal zone (-1) or of
        ``highest_zoneidx``, with ``alloc_flags_nofragment``: a client's allocation
        that does not go through sim/page_alloc.py (its fast path alone)."""
        pfn = self.alloc_pfn(order, migratetype, cpu, owner, alloc_flags, highest_zoneidx)
        return None if pfn < 0 else pfn

    def alloc_pfn(self, order: int, migratetype: int, cpu: int, owner: int | None,
                  alloc_flags: int, highest_zoneidx: int = -1) -> int:
        """``alloc``, with -1 for None (as ``Zone.alloc_pfn``)."""
        if highest_zoneidx < 0:
            highest_zoneidx = ZONE_NORMAL
        alloc_flags |= self.alloc_flags_nofragment(highest_zoneidx)
        return self.get_page_pfn(order, migratetype, cpu, owner, alloc_flags,
                                 highest_zoneidx)

    def alloc_batch(self, n: int, migratetype: int, cpu: Callable[[], int],
                    owner: int | None, alloc_flags: int, highest_zoneidx: int,
                    out: list[int], owner_of: Callable[[], int] | None = None,
                    ) -> tuple[int, int | None] | None:
        """``n`` order-0 ``get_page_from_freelist`` calls in a row (the contract of
        sim/buddy.py ``Zone.alloc_batch``, in node pfns): the preferred zone's batch,
        and for each page it refuses, the rest of the zonelist walk."""
        preferred = self.preferred_zone(highest_zoneidx)
        if preferred is None:
            return None if n <= 0 else (cpu(), owner if owner_of is None else owner_of())
        start = preferred.zone_start_pfn
        while n > 0:
            got: list[int] = []
            refused = preferred.alloc_batch(n, migratetype, cpu, owner, alloc_flags, got,
                                            owner_of)
            out.extend([pfn + start for pfn in got] if start else got)
            n -= len(got)
            if refused is None:
                return None
            c, o = refused
            pfn = self.get_page_from_freelist(0, migratetype, c, o, alloc_flags,
                                              highest_zoneidx, skip_preferred=True)
            if pfn is None:
                return refused
            out.append(pfn)
            n -= 1
        return None

    def free(self, pfn: int, order: int, cpu: int = 0, to_tail: bool = False) -> None:
        """``__free_pages`` of a node pfn: to the zone that holds it."""
        zone = self.page_zone(pfn)
        zone.free(pfn - zone.zone_start_pfn, order, cpu, to_tail)

    def free_batch(self, pfns: Iterable[int], order: int, cpu: Callable[[], int]) -> None:
        """``free(pfn, order, cpu())`` for each node pfn in turn."""
        for pfn in pfns:
            self.free(pfn, order, cpu())

    # ------------------------------------------------------------------ pages by node pfn
    # What the engine's clients (slab caches, files, workloads, khugepaged, replay) ask
    # of the pages they hold, by node pfn: the Zone methods of the same names.

    def _local(self, pfn: int) -> tuple[Zone, int]:
        zone = self.page_zone(pfn)
        return zone, pfn - zone.zone_start_pfn

    def owner_of(self, pfn: int) -> int:
        zone, local = self._local(pfn)
        return zone.owner_of(local)

    def set_owner(self, pfn: int, owner: int) -> None:
        zone, local = self._local(pfn)
        zone.set_owner(local, owner)

    def is_allocated(self, pfn: int) -> bool:
        zone, local = self._local(pfn)
        return zone.is_allocated(local)

    def order_of(self, pfn: int) -> int:
        zone, local = self._local(pfn)
        return zone.order_of(local)

    def pageblock_migratetype(self, pfn: int) -> int:
        zone, local = self._local(pfn)
        return zone.pageblock_migratetype(local)

    @property
    def nr_free(self) -> list[int]:
        """Free blocks per order, summed over the zones."""
        total = [0] * (self.zonelist[0].max_order + 1)
        for zone in self.zonelist:
            for order, n in enumerate(zone.nr_free):
                total[order] += n
        return total

    def high_wmark_ok(self, zone: Zone, order: int = 0, highest_zoneidx: int = -1) -> bool:
        return zone.zone_watermark_ok(order, zone.wmark_pages(WMARK_HIGH), 0, highest_zoneidx)

    def zone_name(self, zone: Zone) -> str:
        return ZONE_NAMES[zone.zone_idx]

    def check(self) -> None:
        for zone in self.zonelist:
            zone.check()
