"""Transparent huge pages for anonymous memory: which VMAs may have them, the gfp mask
of a huge page fault, and the fault's allocation, following Linux 6.18.

Kernel functions followed:

- ``thp_vma_allowable``: include/linux/huge_mm.h ``thp_vma_allowable_order(vma,
  vm_flags, TVA_PAGEFAULT, PMD_ORDER)`` for an anonymous VMA, with the 2048 kB per-size
  control at ``inherit`` and every other mTHP size ``never`` (the machine
  tests/data/folio-orders was recorded on): the PMD order is allowed under the global
  ``enabled=always``, or under ``madvise`` in a VM_HUGEPAGE (MADV_HUGEPAGE) VMA. No
  VM_NOHUGEPAGE, no prctl(PR_SET_THP_DISABLE), no DAX, no per-size ``always`` or
  ``madvise`` controls.
- ``vma_thp_gfp_mask``: mm/huge_memory.c, the five ``defrag`` modes (see its docstring).
- ``alloc_hugepage_khugepaged_gfpmask``: mm/khugepaged.c (``khugepaged/defrag``).
- ``vma_alloc_anon_folio_pmd``: mm/huge_memory.c ``vma_alloc_anon_folio_pmd`` ->
  ``vma_alloc_folio`` -> mm/mempolicy.c ``alloc_pages_mpol``. With CONFIG_NUMA and the
  default policy, a PMD-order request first tries ``gfp | __GFP_THISNODE |
  __GFP_NORETRY`` ("don't reclaim unnecessarily, just compact"), and only when that
  fails and ``gfp`` may reclaim directly tries ``gfp`` itself. The recorded kernel is
  such a kernel: its 128 THP faults (tests/data/folio-orders/anon-256m-madv-hugepage.json)
  carry ``GFP_TRANSHUGE|__GFP_NORETRY|__GFP_THISNODE``. One node here, so the second
  try is the same zone again, through the whole slow path. Counts THP_FAULT_ALLOC and
  THP_FAULT_FALLBACK as the kernel does: once per fault, whatever the tries.

``HPAGE_PMD_ORDER`` is the zone's ``pageblock_order`` (9 on x86-64 with 4 KiB pages, as
sim/compaction.py takes it too). Departures: no memcg charge (so no
THP_FAULT_FALLBACK_CHARGE), no huge zero page (every fault is a write fault), no mTHP
orders between 0 and the PMD order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Literal

from sim.gfp import (
    __GFP_DIRECT_RECLAIM,
    __GFP_KSWAPD_RECLAIM,
    __GFP_NORETRY,
    __GFP_THISNODE,
    GFP_TRANSHUGE,
    GFP_TRANSHUGE_LIGHT,
)

# /sys/kernel/mm/transparent_hugepage/enabled and .../defrag
ThpEnabled = Literal["always", "madvise", "never"]
ThpDefrag = Literal["always", "defer", "defer+madvise", "madvise", "never"]
THP_ENABLED: tuple[str, ...] = ("always", "madvise", "never")
THP_DEFRAG: tuple[str, ...] = ("always", "defer", "defer+madvise", "madvise", "never")


@dataclass
class ThpStats:
    """The THP events of /proc/vmstat (mm/vmstat.c names), and khugepaged's
    ``pages_collapsed`` and ``full_scans`` (its sysfs files)."""

    thp_fault_alloc: int = 0
    thp_fault_fallback: int = 0
    thp_collapse_alloc: int = 0
    thp_collapse_alloc_failed: int = 0
    pages_collapsed: int = 0
    full_scans: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def thp_vma_allowable(enabled: str, vma_madvised: bool) -> bool:
    """Whether an anonymous VMA may have PMD-order THPs (see the module docstring):
    ``hugepage_global_always() || (VM_HUGEPAGE && hugepage_global_enabled())``."""
    if enabled not in THP_ENABLED:
        raise ValueError(f"expected THP enabled one of {', '.join(THP_ENABLED)}, got {enabled!r}")
    return enabled == "always" or (enabled == "madvise" and vma_madvised)


def vma_thp_gfp_mask(defrag: str, vma_madvised: bool) -> int:
    """mm/huge_memory.c ``vma_thp_gfp_mask``: the gfp of a huge page fault.

    - ``always``: synchronous compaction; ``GFP_TRANSHUGE``, plus ``__GFP_NORETRY``
      outside MADV_HUGEPAGE regions;
    - ``defer``: wake kswapd (and so kcompactd) and fail at once;
      ``GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM``;
    - ``defer+madvise``: direct reclaim and compaction when madvised, else wake
      kswapd: ``GFP_TRANSHUGE_LIGHT`` with ``__GFP_DIRECT_RECLAIM`` or
      ``__GFP_KSWAPD_RECLAIM``;
    - ``madvise`` (the default): ``GFP_TRANSHUGE_LIGHT``, plus ``__GFP_DIRECT_RECLAIM``
      when madvised;
    - ``never``: ``GFP_TRANSHUGE_LIGHT``.
    """
    if defrag == "always":
        return GFP_TRANSHUGE | (0 if vma_madvised else __GFP_NORETRY)
    if defrag == "defer":
        return GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM
    if defrag == "defer+madvise":
        return GFP_TRANSHUGE_LIGHT | (__GFP_DIRECT_RECLAIM if vma_madvised
                                      else __GFP_KSWAPD_RECLAIM)
    if defrag == "madvise":
        return GFP_TRANSHUGE_LIGHT | (__GFP_DIRECT_RECLAIM if vma_madvised else 0)
    if defrag == "never":
        return GFP_TRANSHUGE_LIGHT
    raise ValueError(f"expected THP defrag one of {', '.join(THP_DEFRAG)}, got {defrag!r}")


def alloc_hugepage_khugepaged_gfpmask(khugepaged_defrag: bool = True) -> int:
    """mm/khugepaged.c: ``khugepaged_defrag() ? GFP_TRANSHUGE : GFP_TRANSHUGE_LIGHT``
    (``/sys/kernel/mm/transparent_hugepage/khugepaged/defrag``, 1 by default)."""
    return GFP_TRANSHUGE if khugepaged_defrag else GFP_TRANSHUGE_LIGHT


def alloc_pages_mpol_gfps(gfp: int) -> tuple[int, ...]:
    """The gfp masks ``alloc_pages_mpol`` tries in turn for a PMD-order folio under the
    default policy: ``gfp | __GFP_THISNODE | __GFP_NORETRY``, then ``gfp`` if that one
    may reclaim directly."""
    first = gfp | __GFP_THISNODE | __GFP_NORETRY
    return (first, gfp) if gfp & __GFP_DIRECT_RECLAIM else (first,)


def vma_alloc_anon_folio_pmd(alloc_pages: Callable[[int, int, int, int | None], int | None],
                             gfp: int, order: int, cpu: int, owner: int | None,
                             stats: ThpStats) -> int | None:
    """A huge page fault's folio: the head pfn, or None for VM_FAULT_FALLBACK.

    ``alloc_pages(order, gfp, cpu, owner)`` is ``__alloc_pages`` (sim/page_alloc.py).
    """
    for try_gfp in alloc_pages_mpol_gfps(gfp):
        pfn = alloc_pages(order, try_gfp, cpu, owner)
        if pfn is not None:
            stats.thp_fault_alloc += 1
            return pfn
    stats.thp_fault_fallback += 1
    return None
