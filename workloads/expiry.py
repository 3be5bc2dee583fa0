"""The queue of a workload's items (objects, pages, files) due to be freed at a time.

Items are kept in buckets of one tick: bucket k holds the items with
int(when / width) == k, in the order added, as two lists (their times and the items:
no tuple per item), and a small heap holds the bucket numbers. Division by a positive
width is monotonic, so every bucket below now's holds only due items, and now's bucket
is split by a stable sort on time: the order of a (when, sequence) heap, at
list-append cost. (A simulator structure, not a kernel one.)

A bucket lives in slot k % RING_SLOTS of a ring of lists when that slot is free (nearly
always: lifetimes rarely span thousands of ticks), else in a dict; the ring spares each
push a dict lookup.
Compiled by mypyc with the allocator's hot modules (sim/native.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any, Final

_FAR: Final = 1 << 62  # expiry buckets beyond this many ticks are one bucket
_INF: Final = float("inf")
RING_SLOTS: Final = 4096  # a power of two
_RING_MASK: Final = RING_SLOTS - 1
_NO_BUCKET: Final = _FAR + 1  # a ring slot that holds no bucket


_FAR_F: Final = float(_FAR)


def _bucket(q: float) -> int:
    # int() truncates, which never decreases as q grows; far-off (or -inf) times
    # share an end bucket rather than overflow.
    if -_FAR_F < q < _FAR_F:
        return int(q)
    return _FAR if q > 0 else -_FAR


class ExpiryQueue:
    """Items due at times; ``pop_due(now)`` takes those at or before ``now``."""

    def __init__(self, width: float) -> None:
        if not width > 0:
            raise ValueError(f"expected a bucket width above 0, got {width}")
        self.width = width
        self._heap: list[int] = []  # the numbers of the buckets that hold items
        self._ring_k: list[int] = [_NO_BUCKET] * RING_SLOTS
        self._free_slot: list[Any] = []  # what a free slot holds (never filled)
        self._ring_when: list[list[float]] = [self._free_slot] * RING_SLOTS
        self._ring_item: list[list[Any]] = [self._free_slot] * RING_SLOTS
        # Those not in the ring: bucket number -> (times, items).
        self._buckets: dict[int, tuple[list[float], list[Any]]] = {}

    def __bool__(self) -> bool:
        return bool(self._heap)

    def _new_bucket(self, k: int, whens: list[float], items: list[Any]) -> None:
        heapq.heappush(self._heap, k)
        slot = k & _RING_MASK
        if self._ring_k[slot] == _NO_BUCKET:
            self._ring_k[slot] = k
            self._ring_when[slot] = whens
            self._ring_item[slot] = items
        else:
            self._buckets[k] = (whens, items)

    def _take_bucket(self, k: int) -> tuple[list[float], list[Any]]:
        """Bucket ``k``, out of the queue (its number already off the heap)."""
        slot = k & _RING_MASK
        if self._ring_k[slot] == k:
            self._ring_k[slot] = _NO_BUCKET
            bucket = (self._ring_when[slot], self._ring_item[slot])
            self._ring_when[slot] = self._free_slot
            self._ring_item[slot] = self._free_slot
            return bucket
        return self._buckets.pop(k)

    def push_many(self, whens: Sequence[float], items: Sequence[Any]) -> None:
        """Each (when, item) pair in turn; an infinite time is never due."""
        if len(whens) != len(items):
            raise ValueError(f"expected as many times as items, got {len(whens)} "
                             f"and {len(items)}")
        width = self.width
        ring_k = self._ring_k
        ring_when = self._ring_when
        ring_item = self._ring_item
        for i in range(len(whens)):
            when = whens[i]
            if when == _INF:
                continue
            k = _bucket(when / width)
            slot = k & _RING_MASK
            if ring_k[slot] == k:
                ring_when[slot].append(when)
                ring_item[slot].append(items[i])
                continue
            bucket = self._buckets.get(k)
            if bucket is None:
                self._new_bucket(k, [when], [items[i]])
            else:
                bucket[0].append(when)
                bucket[1].append(items[i])

    def pop_due(self, now: float) -> list[Any]:
        """The items due at or before ``now``, earliest first, ties in the order added."""
        heap = self._heap
        k_now = _bucket(now / self.width)
        out: list[Any] = []
        while heap and heap[0] <= k_now:
            k = heapq.heappop(heap)
            whens, items = self._take_bucket(k)
            # Positions by time, ties in the order added (the sort is stable).
            order = sorted(range(len(whens)), key=whens.__getitem__)
            if k < k_now or whens[order[-1]] <= now:
                for j in order:
                    out.append(items[j])
                continue
            due = 0
            while whens[order[due]] <= now:
                out.append(items[order[due]])
                due += 1
            rest = order[due:]
            self._new_bucket(k, [whens[j] for j in rest], [items[j] for j in rest])
            break
        return out

    def next_due(self) -> float:
        """The earliest time queued (infinity when empty)."""
        if not self._heap:
            return _INF
        k = self._heap[0]
        slot = k & _RING_MASK
        return min(self._ring_when[slot] if self._ring_k[slot] == k else self._buckets[k][0])
