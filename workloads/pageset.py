"""The pfns of the blocks a workload holds (a simulator structure, not a kernel one).

Compiled by mypyc with the allocator's hot modules (sim/native.py).
"""

from __future__ import annotations

from array import array
from typing import Final

import numpy as np

# Runs of at least this many removals go through numpy when they are independent (see
# PageSet._independent): one gather and scatter, whose random reads overlap, where a
# loop waits on each. Shorter runs are cheaper one by one.
_VECTOR_MIN: Final = 16


class PageSet:
    """Pfns of blocks a workload holds: O(1) add, remove, random choice and migration.

    Backed by two ``array('i')``: the pfns, and a map from each aligned block of
    ``2**order`` pages of the zone to the index of the pfn held there (4 bytes a block,
    once per workload: a page for order-0 folios, 4 bytes per 2 MiB for huge pages), so
    millions of pages cost no Python objects. Every pfn held is the head of a block of
    at least ``order``: aligned, one per block.
    """

    def __init__(self, nr_pages: int, order: int = 0) -> None:
        self.shift = order
        self.pfns = array("i")
        self.where = array("i", [-1]) * ((nr_pages + (1 << order) - 1) >> order)
        self._where_np = np.frombuffer(self.where, dtype=np.int32)  # never resized

    def __len__(self) -> int:
        return len(self.pfns)

    def __contains__(self, pfn: int) -> bool:
        i = self.where[pfn >> self.shift]
        return i >= 0 and self.pfns[i] == pfn

    def add(self, pfn: int) -> None:
        self.where[pfn >> self.shift] = len(self.pfns)
        self.pfns.append(pfn)

    def add_many(self, pfns: list[int]) -> None:
        """``add`` each pfn in turn (distinct pfns, none of them in the set yet)."""
        if not pfns:
            return
        i = len(self.pfns)
        p = np.asarray(pfns, dtype=np.int32)
        self.pfns.frombytes(p.tobytes())
        self._where_np[p >> self.shift] = np.arange(i, i + len(p), dtype=np.int32)

    def remove(self, pfn: int) -> None:
        shift = self.shift
        i = self.where[pfn >> shift]
        last = self.pfns.pop()
        if last != pfn:
            self.pfns[i] = last
            self.where[last >> shift] = i
        self.where[pfn >> shift] = -1

    def remove_many(self, pfns: list[int]) -> None:
        """``remove`` each pfn in turn."""
        keep = len(self.pfns) - len(pfns)
        if (len(pfns) >= _VECTOR_MIN and min(pfns) >= 0
                and max(pfns) >> self.shift < len(self.where)):
            positions = self._where_np[np.asarray(pfns, dtype=np.int64) >> self.shift]
            if self._independent(positions, keep):
                self._swap_out(positions, keep)
                return
        for pfn in pfns:
            self.remove(pfn)

    def pop_random(self, rng: np.random.Generator) -> int:
        pfn = self.pfns[int(rng.integers(len(self.pfns)))]
        self.remove(pfn)
        return pfn

    def pop_random_many(self, rng: np.random.Generator, n: int) -> list[int]:
        """``n`` calls of ``pop_random`` in a row: the same draws (numpy gives a vector of
        bounded integers the values the scalar calls give), in one call."""
        size = len(self.pfns)
        if n <= 0:
            return []
        draws = rng.integers(0, np.arange(size, size - n, -1))
        if n >= _VECTOR_MIN and self._independent(draws, size - n):
            return self._swap_out(draws, size - n)
        pfns, where, shift = self.pfns, self.where, self.shift
        out = []
        for i in draws.tolist():
            pfn = pfns[i]
            last = pfns.pop()
            if last != pfn:
                pfns[i] = last
                where[last >> shift] = i
            where[pfn >> shift] = -1
            out.append(pfn)
        return out

    @staticmethod
    def _independent(positions: np.ndarray, keep: int) -> bool:
        """Whether removing the entries at ``positions`` in turn, each by a swap with
        the last entry, never touches an entry an earlier removal moved: true when
        they are distinct and all below ``keep`` (the size after), so every last
        entry comes from the untouched end."""
        ordered = np.sort(positions)
        return bool(ordered[0] >= 0 and ordered[-1] < keep
                    and not (ordered[1:] == ordered[:-1]).any())

    def _swap_out(self, positions: np.ndarray, keep: int) -> list[int]:
        """The removals ``_independent`` allows, at once: the pfns removed, in turn."""
        out = self._swap_moves(positions, keep)
        del self.pfns[keep:]  # (the numpy views of it are gone)
        return out

    def _swap_moves(self, positions: np.ndarray, keep: int) -> list[int]:
        pfns = np.frombuffer(self.pfns, dtype=np.int32)
        out = pfns[positions]  # a copy
        last = pfns[keep:][::-1].copy()  # removal j swaps in the entry at size - 1 - j
        pfns[positions] = last
        self._where_np[last >> self.shift] = positions
        self._where_np[out >> self.shift] = -1
        return out.tolist()

    def choice_many(self, rng: np.random.Generator, n: int) -> list[int]:
        """``n`` calls of ``choice`` in a row (the set does not change in between)."""
        if n <= 0:
            return []
        picks = rng.integers(len(self.pfns), size=n)
        # One numpy gather: the random reads overlap, where a loop waits on each.
        return np.frombuffer(self.pfns, dtype=np.int32)[picks].tolist()

    def choice(self, rng: np.random.Generator) -> int:
        return self.pfns[int(rng.integers(len(self.pfns)))]

    def migrate(self, old: int, new: int) -> bool:
        shift = self.shift
        i = self.where[old >> shift]
        if i < 0 or self.pfns[i] != old:
            return False
        self.pfns[i] = new
        self.where[old >> shift] = -1
        self.where[new >> shift] = i
        return True
