"""The queue of a workload's items (objects, pages, files) due to be freed at a time.

Items are kept in buckets of one tick: bucket k holds the items with
int(when / width) == k as (when, item) in the order added, and a small heap holds the
bucket numbers. Division by a positive width is monotonic, so every bucket below now's
holds only due items, and now's bucket is split by a stable sort: the order of a
(when, sequence) heap, at list-append cost. (A simulator structure, not a kernel one.)
Compiled by mypyc with the allocator's hot modules (sim/native.py).
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Sequence
from typing import Any, Final

_when = operator.itemgetter(0)
_FAR: Final = 1 << 62  # expiry buckets beyond this many ticks are one bucket
_INF: Final = float("inf")


def _bucket(q: float) -> int:
    # int() truncates, which never decreases as q grows; far-off (or -inf) times
    # share an end bucket rather than overflow.
    if -_FAR < q < _FAR:
        return int(q)
    return _FAR if q > 0 else -_FAR


class ExpiryQueue:
    """Items due at times; ``pop_due(now)`` takes those at or before ``now``."""

    def __init__(self, width: float) -> None:
        if not width > 0:
            raise ValueError(f"expected a bucket width above 0, got {width}")
        self.width = width
        self._heap: list[int] = []
        self._buckets: dict[int, list[tuple[float, Any]]] = {}

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push_many(self, whens: Sequence[float], items: Sequence[Any]) -> None:
        """Each (when, item) pair in turn; an infinite time is never due."""
        if len(whens) != len(items):
            raise ValueError(f"expected as many times as items, got {len(whens)} "
                             f"and {len(items)}")
        width = self.width
        buckets = self._buckets
        heap = self._heap
        for i in range(len(whens)):
            when = whens[i]
            if when == _INF:
                continue
            k = _bucket(when / width)
            bucket = buckets.get(k)
            if bucket is None:
                buckets[k] = [(when, items[i])]
                heapq.heappush(heap, k)
            else:
                bucket.append((when, items[i]))

    def pop_due(self, now: float) -> list[Any]:
        """The items due at or before ``now``, earliest first, ties in the order added."""
        heap = self._heap
        k_now = _bucket(now / self.width)
        out: list[Any] = []
        if not heap or heap[0] > k_now:
            return out
        buckets = self._buckets
        while heap and heap[0] <= k_now:
            k = heapq.heappop(heap)
            bucket = buckets.pop(k)
            bucket.sort(key=_when)
            if k < k_now or bucket[-1][0] <= now:
                for entry in bucket:
                    out.append(entry[1])
                continue
            due = 0
            while bucket[due][0] <= now:
                out.append(bucket[due][1])
                due += 1
            buckets[k] = bucket[due:]
            heapq.heappush(heap, k)
            break
        return out

    def next_due(self) -> float:
        """The earliest time queued (infinity when empty)."""
        if not self._heap:
            return _INF
        return min([entry[0] for entry in self._buckets[self._heap[0]]])
