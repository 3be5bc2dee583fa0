"""khugepaged's scan of an anonymous VMA and its collapse of 4 KiB pages into a THP,
following Linux 6.18 mm/khugepaged.c. Plain synchronous code: the kernel thread's
sleeps are sim/daemons.py ``Khugepaged``.

Kernel functions followed:

- ``khugepaged_scan_mm_slot`` (``KhugepagedScan.scan_mm_slot``): from the cursor
  ``khugepaged_scan.address``, every PMD range wholly inside the VMA (``hstart`` to
  ``hend``) in turn: ``hpage_collapse_scan_pmd``, and ``collapse_huge_page`` when it
  says so. ``progress`` is 1 for taking the mm and HPAGE_PMD_NR for every range
  scanned, whatever the range held. It returns after a collapse was tried (the kernel
  has dropped mmap_lock there), once ``progress`` reaches the pages it was given, or at
  the end of the VMA: the mm slot is then released (``khugepaged_scan.mm_slot`` back to
  the list head), ``full_scans`` counts, and the next call starts from the VMA's start.
- ``hpage_collapse_scan_pmd``: ``find_pmd_or_thp_or_none`` (a pmd_none range, with no
  page table, is SCAN_PMD_NONE; a PMD-mapped one SCAN_PMD_MAPPED), then over the range's PTEs: more
  than ``max_ptes_none`` empty ones is SCAN_EXCEED_NONE_PTE; a page with a long-term GUP
  pin fails ``is_refcount_suitable`` (SCAN_PAGE_COUNT). Every mapped page counts as
  young and writable (the workload wrote each page it faulted), so SCAN_PAGE_RO and
  SCAN_LACK_REFERENCED_PAGE never happen; there is no swap (max_ptes_swap), no
  sharing across fork (max_ptes_shared), no userfaultfd.
- ``collapse_huge_page``: ``alloc_charge_folio`` takes the huge page first, with
  ``alloc_hugepage_khugepaged_gfpmask()`` through ``__folio_alloc`` (the plain
  ``__alloc_pages``: no mempolicy first try, unlike a fault), counting
  THP_COLLAPSE_ALLOC or THP_COLLAPSE_ALLOC_FAILED (SCAN_ALLOC_HUGE_PAGE_FAIL); then
  ``__collapse_huge_page_isolate`` reads the PTEs again (the allocation may have
  compacted and moved them) and ``__collapse_huge_page_copy`` replaces them by the PMD:
  the old pages are freed (``free_page_and_swap_cache``) and the empty PTEs become
  zeroed subpages of the THP, so the VMA's resident set grows by them (the memory
  max_ptes_none trades for huge pages). If the range no longer qualifies, the new
  folio is put back.

Departures: one mm and one VMA per scanner (see sim/daemons.py ``Khugepaged``); the
copy costs no simulated time; the collapse runs on CPU 0.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Protocol

import numpy as np

from sim.buddy import OWNER_PINNED, PageSpace
from sim.huge_memory import ThpStats
from sim.memory import PTE_NONE, PTE_PMD, AnonVma

KHUGEPAGED_CPU = 0


class ScanResult(IntEnum):
    """The ``enum scan_result`` values this model produces (mm/khugepaged.c names)."""

    SCAN_FAIL = 0
    SCAN_SUCCEED = 1
    SCAN_PMD_NULL = 2
    SCAN_PMD_NONE = 3
    SCAN_PMD_MAPPED = 4
    SCAN_EXCEED_NONE_PTE = 5
    SCAN_PAGE_COUNT = 15
    SCAN_ALLOC_HUGE_PAGE_FAIL = 25


class CollapseMm(Protocol):
    """What khugepaged needs from the owner of an mm: its VMA, and the last step of a
    collapse, which the owner does because it holds the pages."""

    vma: AnonVma

    def collapse_pmd(self, r: int, pfn: int, old_pfns: list[int]) -> None:
        """Map range ``r`` by the THP at ``pfn`` and free its order-0 pages
        ``old_pfns`` (``__collapse_huge_page_copy_succeeded`` and ``set_pmd_at``)."""


class KhugepagedScan:
    """``khugepaged_scan`` over one mm (see the module docstring).

    ``alloc_pages(order, gfp, cpu, owner)`` is ``__alloc_pages``; the collapsed THP
    takes ``owner`` (the LRU's OWNER_MOVABLE). ``stats`` holds the THP events.
    """

    def __init__(self, mm: CollapseMm, zone: PageSpace,
                 alloc_pages: Callable[[int, int, int, int | None], int | None],
                 gfp: int, owner: int, stats: ThpStats, max_ptes_none: int) -> None:
        hpage_nr = mm.vma.hpage_nr
        if not 0 <= max_ptes_none < hpage_nr:
            raise ValueError(f"expected max_ptes_none from 0 to {hpage_nr - 1}, "
                             f"got {max_ptes_none}")
        self.mm = mm
        self.zone = zone
        self.alloc_pages = alloc_pages
        self.gfp = gfp
        self.owner = owner
        self.stats = stats
        self.max_ptes_none = max_ptes_none
        self.address = 0  # khugepaged_scan.address, as a PMD range index
        self.in_mm = False  # khugepaged_scan.mm_slot is this mm (not the list head)

    def scan_mm_slot(self, pages: int) -> tuple[int, ScanResult]:
        """``khugepaged_scan_mm_slot(pages)``: (progress, the last range's result)."""
        vma = self.mm.vma
        hpage_nr = vma.hpage_nr
        if not self.in_mm:
            self.in_mm = True
            self.address = 0
        result = ScanResult.SCAN_FAIL
        progress = 1
        while self.address < vma.nr_full_ranges:
            r = self.address
            result, tried = self.hpage_collapse_scan_pmd(r)
            if result == ScanResult.SCAN_SUCCEED:
                self.stats.pages_collapsed += 1
            self.address += 1
            progress += hpage_nr
            if tried or progress >= pages:
                return progress, result
        # Past the VMA's last range: the mm slot is released, the next scan starts over.
        self.in_mm = False
        self.stats.full_scans += 1
        return progress, result

    def hpage_collapse_scan_pmd(self, r: int) -> tuple[ScanResult, bool]:
        """(result, whether ``collapse_huge_page`` was called) for range ``r``."""
        vma = self.mm.vma
        if vma.pmd[r] >= 0:
            return ScanResult.SCAN_PMD_MAPPED, False
        if not vma.pte_table[r]:
            return ScanResult.SCAN_PMD_NONE, False
        result = self._check_ptes(vma.range_ptes(r))
        if result != ScanResult.SCAN_SUCCEED:
            return result, False
        return self.collapse_huge_page(r), True

    def _check_ptes(self, ptes: np.ndarray) -> ScanResult:
        none_or_zero = int(np.count_nonzero(ptes == PTE_NONE))
        if none_or_zero > self.max_ptes_none:
            return ScanResult.SCAN_EXCEED_NONE_PTE
        owner_of = self.zone.owner_of
        if any(owner_of(pfn) == OWNER_PINNED for pfn in ptes[ptes >= 0].tolist()):
            return ScanResult.SCAN_PAGE_COUNT
        return ScanResult.SCAN_SUCCEED

    def collapse_huge_page(self, r: int) -> ScanResult:
        vma = self.mm.vma
        pfn = self.alloc_pages(vma.pmd_order, self.gfp, KHUGEPAGED_CPU, self.owner)
        if pfn is None:
            self.stats.thp_collapse_alloc_failed += 1
            return ScanResult.SCAN_ALLOC_HUGE_PAGE_FAIL
        self.stats.thp_collapse_alloc += 1
        ptes = vma.range_ptes(r)
        result = ScanResult.SCAN_FAIL
        if vma.pmd[r] < 0 and vma.pte_table[r] and not (ptes == PTE_PMD).any():
            result = self._check_ptes(ptes)
        if result != ScanResult.SCAN_SUCCEED:
            self.zone.free(pfn, vma.pmd_order, KHUGEPAGED_CPU)  # folio_put
            return result
        self.mm.collapse_pmd(r, pfn, ptes[ptes >= 0].tolist())
        return ScanResult.SCAN_SUCCEED
