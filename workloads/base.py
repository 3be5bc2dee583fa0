"""What every workload shares: parameters, start/stop, CPU choice, lifetimes, batching.

A workload is a SimPy process with its own random stream (``machine.rng(name)``).
Operations due within one ``tick`` run in one SimPy event, in time order: that keeps
the event count, and so the run time, proportional to simulated time rather than to
the number of allocations (DESIGN.md: batch work per SimPy event where the model
allows). This one is a model choice: an operation runs up to a tick before its own
time, and other processes see a tick's operations at once; a smaller tick interleaves
workloads more finely, at the cost of more events.

Within an event, workloads hand the engine runs of pages (``Machine.alloc_pages_batch``,
``free_pages_batch``) and draw vectors of random numbers where page-by-page code drew
scalars (numpy gives the same values either way). That one changes nothing: a
``Machine(batched=False)`` run is identical (tests/test_batching.py).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import operator
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import simpy
from pydantic import BaseModel, ConfigDict, Field

from sim.config import Duration

_when = operator.itemgetter(0)
_FAR = 1 << 62  # expiry buckets beyond this many ticks are one bucket
_INF = float("inf")


class WorkloadError(RuntimeError):
    """A workload raised: carries its name and the simulated time."""


class Lifetime(BaseModel):
    """How long an object or page lives: ``exponential``, ``lognormal``, ``fixed`` or
    ``forever``; ``mean`` is the mean (lognormal: the median is mean / exp(sigma^2/2))."""

    model_config = ConfigDict(extra="forbid")
    dist: Literal["exponential", "lognormal", "fixed", "forever"] = "exponential"
    mean: Duration = 10.0
    sigma: float = Field(1.0, gt=0, le=10)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.dist == "forever":
            return np.full(n, np.inf)
        if self.dist == "fixed":
            return np.full(n, self.mean)
        if self.dist == "exponential":
            return rng.exponential(self.mean, n)
        mu = np.log(self.mean) - self.sigma**2 / 2
        return rng.lognormal(mu, self.sigma, n)


class WorkloadParams(BaseModel):
    """Keys every workload takes."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    start: Duration = 0.0
    stop: Duration | None = Field(None, description="stop creating work at this time")
    cpu: Literal["round_robin", "random"] | int = "round_robin"
    tick: Duration = Field(0.01, gt=0,
                           description="operations due within a tick share an event")


class Workload:
    """Base class: subclasses set ``kind`` and ``Params`` and write ``run()``."""

    kind = "workload"
    Params: type[WorkloadParams] = WorkloadParams

    def __init__(self, machine, params: WorkloadParams, index: int = 0) -> None:
        self.machine = machine
        self.env: simpy.Environment = machine.env
        self.params = params
        self.index = index
        self.name = params.name or f"{self.kind}-{index}"
        self.rng = machine.rng(self.name)
        self.cpu = self._cpu_chooser(index)
        # A random CPU choice draws from self.rng: batched code must then keep its
        # draws interleaved with the workload's other draws, page by page.
        self.cpu_draws_rng = params.cpu == "random"
        # Items due at a time, in buckets of one tick: bucket k holds the items with
        # int(when / width) == k as (when, item) in the order added, and a small heap
        # holds the bucket numbers. Division by a positive width is monotonic, so every
        # bucket below now's holds only due items, and now's bucket is split by a
        # stable sort: the order of a (when, sequence) heap, at list-append cost.
        self._expiry: list[int] = []
        self._expiring: dict[int, list[tuple[float, Any]]] = {}
        self._expiry_width = params.tick
        self.process: simpy.Process | None = None

    # ------------------------------------------------------------------ helpers

    def _cpu_chooser(self, index: int):
        """``self.cpu()``: the CPU of the next operation (called once per operation, so
        it is a bound C iterator for round robin rather than a Python method)."""
        choice = self.params.cpu
        ncpu = self.machine.zone.cpus
        if choice == "round_robin":
            first = index % ncpu
            return functools.partial(next, itertools.cycle(
                [(first + i) % ncpu for i in range(ncpu)]))
        if choice == "random":
            return lambda: int(self.rng.integers(ncpu))
        if not 0 <= choice < ncpu:
            def bad_cpu() -> int:
                raise ValueError(f"cpu: expected 0 to {ncpu - 1}, got {choice}")
            return bad_cpu
        return lambda: choice

    def active(self) -> bool:
        stop = self.params.stop
        return stop is None or self.env.now < stop

    def expire_at(self, when: float, item: Any) -> None:
        """``item`` is due at ``when`` (never, when that is infinite)."""
        self.expire_many((when,), (item,))

    def expire_many(self, whens: Iterable[float], items: Iterable[Any]) -> None:
        """``expire_at`` for each (when, item) pair in turn."""
        width = self._expiry_width
        expiring = self._expiring
        heap = self._expiry
        for when, item in zip(whens, items, strict=True):
            if when == _INF:
                continue
            q = when / width
            # int() truncates, which never decreases as q grows; far-off (or -inf)
            # times share an end bucket rather than overflow.
            k = int(q) if -_FAR < q < _FAR else (_FAR if q > 0 else -_FAR)
            bucket = expiring.get(k)
            if bucket is None:
                expiring[k] = [(when, item)]
                heapq.heappush(heap, k)
            else:
                bucket.append((when, item))

    def pop_expired(self, now: float) -> list[Any]:
        """The items due at or before ``now``, earliest first, ties in the order added."""
        heap = self._expiry
        q = now / self._expiry_width
        k_now = int(q) if -_FAR < q < _FAR else (_FAR if q > 0 else -_FAR)
        if not heap or heap[0] > k_now:
            return []
        out: list[Any] = []
        expiring = self._expiring
        while heap and heap[0] <= k_now:
            k = heapq.heappop(heap)
            bucket = expiring.pop(k)
            bucket.sort(key=_when)
            if k < k_now or bucket[-1][0] <= now:
                out.extend([item for _, item in bucket])
                continue
            due = 0
            while bucket[due][0] <= now:
                due += 1
            out.extend([item for _, item in bucket[:due]])
            expiring[k] = bucket[due:]
            heapq.heappush(heap, k)
            break
        return out

    def next_expiry(self) -> float:
        if not self._expiry:
            return np.inf
        return min(when for when, _ in self._expiring[self._expiry[0]])

    def arrivals(self, rate: float, dt: float) -> int:
        """Poisson arrivals in ``dt`` seconds at ``rate`` per second."""
        return int(self.rng.poisson(rate * dt)) if rate > 0 and dt > 0 else 0

    # ------------------------------------------------------------------ process

    def start(self) -> None:
        self.process = self.env.process(self._main())

    def _main(self):
        if self.params.start > 0:
            yield self.env.timeout(self.params.start)
        try:
            yield from self.run()
        except WorkloadError:
            raise
        except Exception as err:
            raise WorkloadError(
                f"workload {self.name} ({self.kind}) failed at t={self.env.now:.6g} s: "
                f"{type(err).__name__}: {err}"
            ) from err

    def run(self):
        raise NotImplementedError
        yield  # pragma: no cover

    def samples(self, values: dict) -> None:
        """Add this workload's series to a sample (override)."""

    def summary(self) -> dict[str, Any]:
        return {}


class PageSet:
    """Pfns of blocks a workload holds: O(1) add, remove, random choice and migration.

    Backed by two ``array('i')``: the pfns, and a pfn -> index map over the zone (4 bytes
    a page, once per workload), so millions of pages cost no Python objects.
    """

    def __init__(self, nr_pages: int) -> None:
        from array import array

        self.pfns = array("i")
        self.where = array("i", [-1]) * nr_pages
        self._where_np = np.frombuffer(self.where, dtype=np.int32)  # never resized

    def __len__(self) -> int:
        return len(self.pfns)

    def __contains__(self, pfn: int) -> bool:
        return self.where[pfn] >= 0

    def add(self, pfn: int) -> None:
        self.where[pfn] = len(self.pfns)
        self.pfns.append(pfn)

    def add_many(self, pfns: list[int]) -> None:
        """``add`` each pfn in turn (distinct pfns, none of them in the set yet)."""
        if not pfns:
            return
        i = len(self.pfns)
        p = np.asarray(pfns, dtype=np.int32)
        self.pfns.frombytes(p.tobytes())
        self._where_np[p] = np.arange(i, i + len(p), dtype=np.int32)

    def remove(self, pfn: int) -> None:
        i = self.where[pfn]
        last = self.pfns.pop()
        if last != pfn:
            self.pfns[i] = last
            self.where[last] = i
        self.where[pfn] = -1

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
        picks = rng.integers(0, np.arange(size, size - n, -1)).tolist()
        pfns, where = self.pfns, self.where
        out = []
        for i in picks:
            pfn = pfns[i]
            last = pfns.pop()
            if last != pfn:
                pfns[i] = last
                where[last] = i
            where[pfn] = -1
            out.append(pfn)
        return out

    def choice_many(self, rng: np.random.Generator, n: int) -> list[int]:
        """``n`` calls of ``choice`` in a row (the set does not change in between)."""
        if n <= 0:
            return []
        return [self.pfns[i] for i in rng.integers(len(self.pfns), size=n).tolist()]

    def choice(self, rng: np.random.Generator) -> int:
        return self.pfns[int(rng.integers(len(self.pfns)))]

    def migrate(self, old: int, new: int) -> bool:
        i = self.where[old]
        if i < 0:
            return False
        self.pfns[i] = new
        self.where[new] = i
        self.where[old] = -1
        return True
