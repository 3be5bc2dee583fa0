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
import itertools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import simpy
from pydantic import BaseModel, ConfigDict, Field

from sim.units import Duration
from workloads.expiry import ExpiryQueue
from workloads.pageset import PageSet

__all__ = ["Lifetime", "PageSet", "Workload", "WorkloadError", "WorkloadParams"]


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
        self._expiry = ExpiryQueue(params.tick)  # items due to be freed
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
        self._expiry.push_many((when,), (item,))

    def expire_many(self, whens: Sequence[float], items: Sequence[Any]) -> None:
        """``expire_at`` for each (when, item) pair in turn."""
        self._expiry.push_many(whens, items)

    def pop_expired(self, now: float) -> list[Any]:
        """The items due at or before ``now``, earliest first, ties in the order added."""
        return self._expiry.pop_due(now)

    def next_expiry(self) -> float:
        return self._expiry.next_due()

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
