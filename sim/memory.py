"""The page tables of one anonymous VMA: which 4 KiB virtual page is mapped by which
pfn, and which 2 MiB range is mapped whole by a PMD (a THP), as mm/memory.c fills them
on a fault and empties them on a zap.

A simulator structure, plain and synchronous like the allocator: the workload that owns
the VMA faults pages in (``map_ptes``, ``map_pmd``) and zaps them (``unmap_ptes``,
``zap_pmd``); compaction's migrations are followed through ``migrate``; khugepaged
(sim/khugepaged.py) reads a range's PTEs and replaces them by a PMD.

What follows mm/memory.c ``__handle_mm_fault``:

- A PMD range (``1 << pmd_order`` pages, 2 MiB) is *pmd_none* until something maps in
  it. A fault in a pmd_none range may try a huge page (``create_huge_pmd`` ->
  ``do_huge_pmd_anonymous_page``) when the range lies wholly inside the VMA
  (``thp_vma_suitable_order``: ``haddr >= vm_start && haddr + HPAGE_PMD_SIZE <=
  vm_end``); otherwise, and after VM_FAULT_FALLBACK, ``do_anonymous_page`` maps one
  order-0 page and the range has a page table from then on, so its later faults are
  order 0 (mTHP orders are off, as on the recorded machine).
- Zapping a whole PMD-mapped range (``zap_huge_pmd``) leaves it pmd_none again, so a
  later fault may try a huge page there once more. Zapping 4 KiB pages leaves the
  range's page table in place (CONFIG_PT_RECLAIM's freeing of emptied page tables is
  not modelled) until the exit's ``free_pgtables``. The page-table pages themselves are
  allocated and freed by the workload that owns the VMA (workloads/synthetic.py
  ``Anon``).

The VMA starts on a PMD boundary, as the recorded 256 MiB mapping did (6.18 gives an
anonymous mapping of a PMD multiple a PMD-aligned address); a VMA that is not a
multiple of 2 MiB ends in a partial range, which is always order 0.
"""

from __future__ import annotations

from array import array

import numpy as np

PTE_NONE = -1  # no page mapped here
PTE_PMD = -2  # the page lies in a PMD-mapped (THP) range


class AnonVma:
    """The page tables of an anonymous VMA of ``nr_pages`` pages (see the module doc).

    ``pte[v]`` is the pfn mapped at virtual page ``v`` (PTE_NONE, or PTE_PMD inside a
    THP); ``pmd[r]`` is the head pfn of range ``r``'s THP or -1; ``pte_table[r]`` says
    whether range ``r`` has a page table. ``rmap[pfn]`` is the virtual page of an
    order-0 pfn, or the first virtual page of the range a THP head maps (-1 for pfns
    the VMA does not map).
    """

    def __init__(self, nr_pages: int, pmd_order: int, zone_pages: int) -> None:
        if nr_pages < 0:
            raise ValueError(f"expected a VMA of 0 pages or more, got {nr_pages}")
        self.nr_pages = nr_pages
        self.pmd_order = pmd_order
        self.hpage_nr = 1 << pmd_order
        self.nr_ranges = -(-nr_pages // self.hpage_nr)
        self.nr_full_ranges = nr_pages >> pmd_order  # ranges wholly inside the VMA
        self.pte = array("i", [PTE_NONE]) * nr_pages
        self.pmd = array("i", [-1]) * self.nr_ranges
        self.pte_table = bytearray(self.nr_ranges)
        self.rmap = array("i", [-1]) * zone_pages
        # numpy views of the arrays above (never resized)
        self._pte = np.frombuffer(self.pte, dtype=np.int32)
        self._pmd = np.frombuffer(self.pmd, dtype=np.int32)
        self._table = np.frombuffer(self.pte_table, dtype=np.uint8)
        self._rmap = np.frombuffer(self.rmap, dtype=np.int32)
        self.low_hole = 0  # no unmapped virtual page below this one
        self.low_mapped = nr_pages  # no mapped virtual page below this one

    # ------------------------------------------------------------------ queries

    def range_in_vma(self, r: int) -> bool:
        """``thp_vma_suitable_order`` for range ``r``: the whole 2 MiB inside the VMA."""
        return r < self.nr_full_ranges

    def pmd_none(self, r: int) -> bool:
        return self.pmd[r] < 0 and not self.pte_table[r]

    def huge_fault_ranges(self, vpages: np.ndarray) -> np.ndarray:
        """For each virtual page, whether a fault there may try a huge page: its range
        is pmd_none and inside the VMA."""
        ranges = vpages >> self.pmd_order
        return ((ranges < self.nr_full_ranges) & (self._pmd[ranges] < 0)
                & (self._table[ranges] == 0))

    def next_holes(self, n: int) -> np.ndarray:
        """Up to ``n`` unmapped virtual pages, lowest first (the order the workload
        touches them in)."""
        pages, self.low_hole = self._lowest(n, self.low_hole, mapped=False)
        return pages

    def lowest_mapped(self, n: int) -> np.ndarray:
        """Up to ``n`` mapped virtual pages, lowest first (the order ``munmap`` zaps them
        in); a THP's pages appear as PTE_PMD entries of ``pte``."""
        pages, self.low_mapped = self._lowest(n, self.low_mapped, mapped=True)
        return pages

    def _lowest(self, n: int, start: int, mapped: bool) -> tuple[np.ndarray, int]:
        """Up to ``n`` virtual pages from ``start`` up that are mapped (or unmapped),
        lowest first, and the first such page found (the new search start; the end of
        the VMA when there is none)."""
        out: list[np.ndarray] = []
        found = 0
        chunk = max(4096, 2 * n)
        first = -1
        while found < n and start < self.nr_pages:
            end = min(start + chunk, self.nr_pages)
            ptes = self._pte[start:end]
            hits = np.flatnonzero(ptes != PTE_NONE if mapped else ptes == PTE_NONE) + start
            if len(hits):
                if first < 0:
                    first = int(hits[0])
                take = hits[:n - found]
                out.append(take)
                found += len(take)
            start = end
        pages = np.concatenate(out) if out else np.empty(0, dtype=np.int64)
        return pages, first if first >= 0 else self.nr_pages

    def ptes_of(self, vpages: np.ndarray) -> np.ndarray:
        """The PTEs at ``vpages``: pfns, PTE_NONE or PTE_PMD."""
        return self._pte[vpages]

    def range_ptes(self, r: int) -> np.ndarray:
        """Range ``r``'s PTEs (a copy): pfns, PTE_NONE or PTE_PMD."""
        lo = r << self.pmd_order
        return self._pte[lo:min(lo + self.hpage_nr, self.nr_pages)].copy()

    # ------------------------------------------------------------------ faults

    def map_ptes(self, vpages: np.ndarray | list[int], pfns: list[int]) -> None:
        """``do_anonymous_page`` for each (virtual page, order-0 pfn) pair."""
        if not len(pfns):
            return
        v = np.asarray(vpages, dtype=np.int64)
        p = np.asarray(pfns, dtype=np.int64)
        self._pte[v] = p
        self._rmap[p] = v
        self._table[v >> self.pmd_order] = 1
        self.low_mapped = min(self.low_mapped, int(v.min()))

    def map_pmd(self, r: int, pfn: int) -> None:
        """``set_pmd_at``: range ``r`` mapped whole by the THP at ``pfn``."""
        lo = r << self.pmd_order
        self.pmd[r] = pfn
        self._pte[lo:lo + self.hpage_nr] = PTE_PMD
        self.pte_table[r] = 0
        self.rmap[pfn] = lo
        self.low_mapped = min(self.low_mapped, lo)

    # ------------------------------------------------------------------ zaps

    def unmap_ptes(self, pfns: list[int]) -> None:
        """Zap the order-0 pages ``pfns`` (their page tables stay)."""
        if not len(pfns):
            return
        p = np.asarray(pfns, dtype=np.int64)
        v = self._rmap[p].astype(np.int64)
        if (v < 0).any() or (self._pte[v] != p).any():
            raise ValueError("unmap of a pfn this VMA does not map with a PTE")
        self._pte[v] = PTE_NONE
        self._rmap[p] = -1
        self.low_hole = min(self.low_hole, int(v.min()))

    def zap_pmd(self, pfn: int) -> int:
        """``zap_huge_pmd`` of the THP at ``pfn``: its range is pmd_none again.
        Returns the range."""
        lo = self.rmap[pfn]
        r = lo >> self.pmd_order
        if lo < 0 or self.pmd[r] != pfn:
            raise ValueError(f"pfn {pfn} is not a THP this VMA maps")
        self.pmd[r] = -1
        self._pte[lo:lo + self.hpage_nr] = PTE_NONE
        self.rmap[pfn] = -1
        self.low_hole = min(self.low_hole, lo)
        return r

    def free_pgtables(self) -> None:
        """``free_pgtables`` at exit, once nothing is mapped: no range has a page table."""
        if (self._pte != PTE_NONE).any():
            raise ValueError("free_pgtables of a VMA that still maps pages")
        self._table[:] = 0

    # ------------------------------------------------------------------ migration

    def migrate(self, old: int, new: int, order: int) -> None:
        """Compaction moved the block at ``old`` to ``new``: the rmap walk's
        ``remove_migration_ptes`` points the PTE (or the PMD) at the new pfn."""
        v = self.rmap[old]
        if order:
            self.pmd[v >> self.pmd_order] = new
        else:
            self.pte[v] = new
        self.rmap[new] = v
        self.rmap[old] = -1

    # ------------------------------------------------------------------ counts

    def mapped_pages(self) -> int:
        """Pages mapped, by PTE or inside a PMD (the VMA's resident set)."""
        return int(np.count_nonzero(self._pte != PTE_NONE))
