"""The pfns of the blocks a workload holds (a simulator structure, not a kernel one).

Compiled by mypyc with the allocator's hot modules (sim/native.py).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import numpy as np
from librt.vecs import append as vec_append
from librt.vecs import pop as vec_pop
from librt.vecs import vec
from mypy_extensions import i32

from sim.buddy import PageIndex
from sim.compaction import PageOwner


class PageSet:
    """Pfns of blocks a workload holds: O(1) add, remove, random choice and migration.

    Backed by two typed vectors (librt.vecs: compiled, an element is a C load or
    store): the pfns, and a map from each aligned block of ``2**order`` pages of the
    zone to the index of the pfn held there (4 bytes a block, once per workload: a page
    for order-0 folios, 4 bytes per 2 MiB for huge pages), so millions of pages cost no
    Python objects. Every pfn held is the head of a block of at least ``order``:
    aligned, one per block. The ``*_many`` methods are the single calls in turn.

    An order-0 set may keep its map in a vector shared with other owners of pages
    (``share_where``: the machine's per-pfn index, sim/machine.py ``page_index``, as the
    kernel's ``struct page`` holds one ``index`` for whichever owner a page has). An entry
    is then trusted only when it points at the pfn: ``pfns[i] == pfn``, which holds only
    for a pfn this set holds, whatever another owner wrote there while it held the page.
    """

    def __init__(self, nr_pages: int, order: int = 0) -> None:
        self.shift = order
        self.pfns: vec[i32] = vec[i32]()
        unheld = array("i", [-1]) * ((nr_pages + (1 << order) - 1) >> order)
        self.where: vec[i32] = vec[i32](unheld, capacity=len(unheld))

    def share_where(self, where: PageIndex) -> None:
        """Keep the map in ``where``, one entry a pfn of the zone, shared with other
        owners of pages (see the class). Only an empty order-0 set may."""
        if self.shift or len(self.pfns):
            raise ValueError("share_where: only an empty order-0 set")
        self.where = where.index

    def __len__(self) -> int:
        return len(self.pfns)

    def __contains__(self, pfn: int) -> bool:
        i = int(self.where[pfn >> self.shift])
        return 0 <= i < len(self.pfns) and int(self.pfns[i]) == pfn

    def add(self, pfn: int) -> None:
        self.where[pfn >> self.shift] = int(len(self.pfns))
        self.pfns = vec_append(self.pfns, pfn)

    def add_many(self, pfns: list[int]) -> None:
        """``add`` each pfn in turn (distinct pfns, none of them in the set yet)."""
        shift = self.shift
        where = self.where
        held = self.pfns
        for pfn in pfns:
            where[pfn >> shift] = int(len(held))
            held = vec_append(held, pfn)
        self.pfns = held

    def remove(self, pfn: int) -> None:
        shift = self.shift
        where = self.where
        i = int(where[pfn >> shift])
        self.pfns, popped = vec_pop(self.pfns)
        last = int(popped)
        if last != pfn:
            self.pfns[i] = last
            where[last >> shift] = i
        where[pfn >> shift] = -1

    def remove_many(self, pfns: list[int]) -> None:
        """``remove`` each pfn in turn."""
        for pfn in pfns:
            self.remove(pfn)

    def pop_random(self, rng: np.random.Generator) -> int:
        pfn = int(self.pfns[int(rng.integers(len(self.pfns)))])
        self.remove(pfn)
        return pfn

    def pop_random_many(self, rng: np.random.Generator, n: int) -> list[int]:
        """``n`` calls of ``pop_random`` in a row: the same draws (numpy gives a vector of
        bounded integers the values the scalar calls give), in one call."""
        size = len(self.pfns)
        if n <= 0:
            return []
        draws: list[int] = rng.integers(0, np.arange(size, size - n, -1)).tolist()
        out = []
        for i in draws:
            pfn = int(self.pfns[i])
            self.remove(pfn)
            out.append(pfn)
        return out

    def choice_many(self, rng: np.random.Generator, n: int) -> list[int]:
        """``n`` calls of ``choice`` in a row (the set does not change in between)."""
        if n <= 0:
            return []
        picks: list[int] = rng.integers(len(self.pfns), size=n).tolist()
        held = self.pfns
        return [int(held[i]) for i in picks]

    def choice(self, rng: np.random.Generator) -> int:
        return int(self.pfns[int(rng.integers(len(self.pfns)))])

    def migrate(self, old: int, new: int) -> bool:
        shift = self.shift
        where = self.where
        i = int(where[old >> shift])
        if not 0 <= i < len(self.pfns) or int(self.pfns[i]) != old:
            return False
        self.pfns[i] = new
        where[old >> shift] = -1
        where[new >> shift] = i
        return True


class AnonPages(PageOwner):
    """An anonymous workload's memory as a page owner (workloads/synthetic.py ``Anon``):
    its order-0 folios (``pages``), its huge pages (``thps``, of ``pmd_order``; an
    empty map: no THP) and, when it keeps them, its page tables (``vma_migrate``,
    sim/memory.py ``AnonVma.migrate``). Compiled, as compaction tells it of every page
    it moves (sim/vmscan.py ``MigrateOwners``)."""

    def __init__(self, pages: PageSet, thps: PageSet, pmd_order: int,
                 vma_migrate: Callable[[int, int, int], object] | None) -> None:
        self.pages = pages
        self.thps = thps
        self.pmd_order = pmd_order
        self.vma_migrate = vma_migrate

    def migrate_page(self, old: int, new: int, order: int) -> bool:
        if order == 0:
            held = self.pages
        elif order == self.pmd_order and len(self.thps.where):
            held = self.thps
        else:
            return False  # a folio of another order: not anonymous memory of ours
        if not held.migrate(old, new):
            return False
        if self.vma_migrate is not None:
            self.vma_migrate(old, new, order)
        return True
