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

Where a workload runs (``cpu:``) decides which CPU's per-CPU page lists its
allocations fill and its frees land on, and so how far each list's ``high`` is tuned up
(sim/buddy.py: ``nr_pcp_alloc``, ``nr_pcp_high``, ``decay_pcp_high``, all per CPU).
``round_robin`` (the default, kept so that old configs run as they did) and ``random``
pick a CPU for every operation, which no process does; an integer pins the workload,
as ``taskset`` does; ``any`` is the process-like choice: ``CpuSchedule`` below.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import simpy
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.units import Duration
from workloads.expiry import ExpiryQueue
from workloads.pageset import PageSet

__all__ = ["CpuSchedule", "Lifetime", "PacedParams", "PageSet", "Workload", "WorkloadError",
           "WorkloadParams"]


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
    cpu: Literal["round_robin", "random", "any"] | int = "round_robin"
    migrate_every: Duration | None = Field(
        None, gt=0, description="cpu: any only: the mean time the process stays on one CPU "
        "before the scheduler moves it (exponential; null: it never moves, as the load "
        "balancer leaves a lone running task where it is)")
    tick: Duration = Field(0.01, gt=0,
                           description="operations due within a tick share an event")
    wakes_every: Duration | None = Field(
        None, gt=0, description="cpu: any or a CPU only: the process wakes this often "
        "from its start to the end of the run, as a program that polls does (fragsim "
        "run --real's own counterparts poll every 0.5 s); each wake lets its CPU's "
        "deferrable vmstat work (decay_pcp_high) run. null: only its allocations and "
        "frees wake its CPU")

    @model_validator(mode="after")
    def _migrate_every_needs_any(self):
        if self.migrate_every is not None and self.cpu != "any":
            raise ValueError(f"migrate_every: expected only with cpu: any (the CPU of a "
                             f"process), got cpu: {self.cpu}")
        if self.wakes_every is not None and not (self.cpu == "any"
                                                 or isinstance(self.cpu, int)):
            raise ValueError(f"wakes_every: expected only with cpu: any or a CPU (one "
                             f"process's CPU), got cpu: {self.cpu}")
        return self


class PacedParams(WorkloadParams):
    """Keys of a workload with a rate that may pace itself against an earlier clock.

    A program that paces its work against a clock started before it began (``ahead =
    done / rate - (now - t0)``, sleeping only when ahead, as the shared capture's reader
    and file creator do) starts behind and works faster until it is on pace. fragsim
    cannot know how much faster (that is the disk and the CPUs): ``catch_up`` says it,
    as a multiple of the rate, read off the real run's counters."""

    paced_from: Duration | None = Field(
        None, description="pace the work from this time rather than from start: a "
        "workload that starts later works at catch_up x its rate until it is on pace")
    catch_up: float | None = Field(
        None, gt=1, description="with paced_from: the rate while behind pace, as a "
        "multiple of the rate")

    @model_validator(mode="after")
    def _pace_needs_both(self):
        if (self.paced_from is None) != (self.catch_up is None):
            given, missing = (("paced_from", "catch_up") if self.catch_up is None
                              else ("catch_up", "paced_from"))
            raise ValueError(f"{missing}: expected with {given} (a workload paced from an "
                             f"earlier time catches up at catch_up x its rate), got none")
        return self


class CpuSchedule:
    """The CPU a process runs on over time: ``cpu: any``, a simple scheduler model.

    The process starts on a CPU drawn uniformly and stays there; with ``migrate_every``
    the scheduler moves it after exponential holding times of that mean, each time to a
    CPU drawn uniformly among the others. Without it the process never moves.

    What the kernel's scheduler (kernel/sched/fair.c) justifies, and what it does not:

    - A lone running task is not moved by load balancing: ``sched_balance_find_src_group``
      (``find_busiest_group`` before 6.10) treats a busiest group whose only task is
      running as balanced ("busiest doesn't have any tasks waiting to run"), and
      ``detach_tasks`` never takes the task a CPU is running. A process that sleeps
      (a ``sleep`` between phases) wakes on its previous CPU when that CPU is idle
      (``wake_affine_idle`` and ``select_idle_sibling`` keep it). Hence the default: no
      migration.
    - A process does move when it has to share its CPU: other tasks runnable there
      (kworkers, daemons, other programs) make it the waiting task the idle balance or
      the periodic balance pulls, and a wakeup on a busy CPU goes to an idle sibling.
      How often that happens depends on the rest of the machine, which the model does
      not have: ``migrate_every`` is that rate, a parameter, not something derived.
    - Departures: holding times are memoryless and every other CPU is equally likely (no
      cache or NUMA topology, no wake-affine pull towards a waker's CPU, no
      cache-hotness, no migration cost); the process is always runnable.

    Simulated time advances in events (a workload's ``tick``): every operation of one
    event runs on the CPU the process is on at the event's time, so migrations within a
    tick are seen only at the next event (a smaller ``tick`` resolves them more finely).
    The holding times and CPUs come from a random stream of their own, fixed by the seed
    and the workload's name: where the process runs is a function of time alone, so it
    does not shift the workload's other draws, and batched and page-by-page runs agree.
    """

    __slots__ = ("cpu", "next_migration", "migrations", "_rng", "_ncpu", "_mean")

    def __init__(self, rng: np.random.Generator, ncpu: int, migrate_every: float | None,
                 now: float = 0.0) -> None:
        self._rng = rng
        self._ncpu = ncpu
        self._mean = migrate_every
        self.cpu = int(rng.integers(ncpu))
        self.migrations = 0
        self.next_migration = (now + float(rng.exponential(migrate_every))
                               if migrate_every is not None and ncpu > 1 else math.inf)

    def cpu_at(self, now: float) -> int:
        """The CPU at time ``now`` (not before the last time asked: time runs forward)."""
        if now >= self.next_migration:
            rng, ncpu, mean = self._rng, self._ncpu, self._mean
            cpu, when, moves = self.cpu, self.next_migration, 0
            while now >= when:
                # uniform among the other ncpu - 1 CPUs
                cpu = (cpu + 1 + int(rng.integers(ncpu - 1))) % ncpu
                when += float(rng.exponential(mean))
                moves += 1
            self.cpu, self.next_migration = cpu, when
            self.migrations += moves
        return self.cpu


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
        self.schedule: CpuSchedule | None = None  # cpu: any
        self.cpu = self._cpu_chooser(index)
        # A random CPU choice draws from self.rng: batched code must then keep its
        # draws interleaved with the workload's other draws, page by page.
        self.cpu_draws_rng = params.cpu == "random"
        self._expiry = ExpiryQueue(params.tick)  # items due to be freed
        self._paced_done = 0.0  # paced(): the work handed out so far
        self.process: simpy.Process | None = None

    # ------------------------------------------------------------------ helpers

    def _cpu_chooser(self, index: int):
        """``self.cpu()``: the CPU of the next operation (called once per operation, so
        it is a bound C iterator for round robin rather than a Python method)."""
        choice = self.params.cpu
        ncpu = self.machine.zone.cpus
        if choice == "any":
            schedule = self.schedule = CpuSchedule(
                self.machine.rng(self.name + "/cpu"), ncpu, self.params.migrate_every,
                self.env.now)
            env = self.env

            def process_cpu() -> int:
                if env.now < schedule.next_migration:
                    return schedule.cpu
                return schedule.cpu_at(env.now)
            return process_cpu
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

    def paced(self, rate: float) -> float:
        """The work due in the tick that starts now at ``rate`` (per second): rate x tick,
        or, with ``paced_from`` (PacedParams), what brings the work done since
        ``paced_from`` up to rate x the time since, at most ``catch_up`` x rate x tick."""
        p = self.params
        tick = p.tick
        since = getattr(p, "paced_from", None)
        if since is None:
            return rate * tick
        target = rate * (self.env.now + tick - since)
        amount = min(max(0.0, target - self._paced_done), p.catch_up * rate * tick)
        self._paced_done += amount
        return amount

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
        if self.params.wakes_every is not None:
            self.env.process(self._wakes())

    def _wakes(self):
        """``wakes_every``: the process wakes on its CPU (where the scheduler has it)."""
        every = self.params.wakes_every
        fixed = self.params.cpu
        schedule = self.schedule
        if self.params.start > 0:
            yield self.env.timeout(self.params.start)
        while True:
            yield self.env.timeout(every)
            if schedule is not None:
                cpu = schedule.cpu_at(self.env.now)
            else:
                assert isinstance(fixed, int)
                cpu = fixed
            self.machine.wake_cpu(cpu)

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
