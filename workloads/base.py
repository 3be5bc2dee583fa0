"""What every workload shares: parameters, start/stop, CPU choice, lifetimes, batching.

A workload is a SimPy process with its own random stream (``machine.rng(name)``).
Operations due within one ``tick`` run in one SimPy event, in time order: that keeps
the event count, and so the run time, proportional to simulated time rather than to
the number of allocations (DESIGN.md: batch work per SimPy event where the model
allows). ``tick: 0`` gives one event per operation.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from typing import Any, Literal

import numpy as np
import simpy
from pydantic import BaseModel, ConfigDict, Field

from sim.config import Duration


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
    tick: Duration = Field(0.01, description="operations due within a tick share an event")


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
        self._expiry: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
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
        if when != np.inf:
            heapq.heappush(self._expiry, (when, next(self._seq), item))

    def pop_expired(self, now: float) -> list[Any]:
        out = []
        heap = self._expiry
        while heap and heap[0][0] <= now:
            out.append(heapq.heappop(heap)[2])
        return out

    def next_expiry(self) -> float:
        return self._expiry[0][0] if self._expiry else np.inf

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

    def __len__(self) -> int:
        return len(self.pfns)

    def __contains__(self, pfn: int) -> bool:
        return self.where[pfn] >= 0

    def add(self, pfn: int) -> None:
        self.where[pfn] = len(self.pfns)
        self.pfns.append(pfn)

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
