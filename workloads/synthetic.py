"""Synthetic clients of the allocators: slab objects, kernel pages, anonymous memory,
page cache, the THP probe, the "free K-1 of K" fragmenter and manual compaction.

Each is a SimPy process with its own random stream; operations due within one tick
run in one event (workloads/base.py). Page allocations go through
``Machine.alloc_pages`` (fast path, then the slow path with kswapd, direct compaction
and direct reclaim); GFP flags are the ones the kernel uses for such memory.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from sim.buddy import OWNER_MOVABLE, OWNER_PINNED, OWNER_UNMOVABLE
from sim.gfp import (
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
    GFP_TRANSHUGE,
    GFP_TRANSHUGE_LIGHT,
)
from sim.metrics import avail, unusable_index
from sim.units import Duration, Size
from workloads.base import Lifetime, PageSet, Workload, WorkloadParams
from workloads.objloop import LiveObjects


class SlabChurn(Workload):
    """Objects of one slab cache: Poisson or burst arrivals, lifetimes from a
    distribution. ``unused_share`` of them sit unused on the cache's LRU (reclaimable by
    the shrinker and by free-mode defrag, like the dentries of closed files)."""

    kind = "slab_churn"

    class Params(WorkloadParams):
        cache: str
        size: Size | None = Field(None, description="slot size if the cache is new")
        rate: float = Field(1000.0, ge=0, description="objects per second")
        arrival: Literal["poisson", "bursts"] = "poisson"
        burst_size: int = Field(1000, ge=1)
        burst_every: Duration = 1.0
        lifetime: Lifetime = Field(default_factory=Lifetime)
        max_objects: int | None = Field(None, ge=0)
        unused_share: float = Field(0.0, ge=0, le=1)

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        self.live = LiveObjects()
        self.allocated = self.freed = self.failed = self.evicted = 0

    # ObjectOwner: the cache asks us before evicting an unused object.
    def reclaimable(self, cache, oid: int) -> bool:
        return oid in self.live and cache.default_reclaimable(oid)

    def evict(self, cache, oid: int, cpu: int) -> int:
        self.live.discard(oid)
        self.evicted += 1
        return cache.default_evict(oid, cpu)

    def run(self):
        p = self.params
        cache = self.machine.cache(p.cache, p.size)
        if p.unused_share > 0:
            if cache.owner is not None and cache.owner is not self:
                raise ValueError(f"cache {p.cache} already has an owner of unused objects")
            cache.owner = self
        self.cache = cache
        env = self.env
        next_burst = env.now
        while True:
            now = env.now
            self.freed += self.live.free_due(cache, self.pop_expired(now), self.cpu)
            if self.active():
                if p.arrival == "poisson":
                    n = self.arrivals(p.rate, p.tick)
                else:
                    n = 0
                    while next_burst <= now:
                        n += p.burst_size
                        next_burst += p.burst_every
                if p.max_objects is not None:
                    n = min(n, max(0, p.max_objects - len(self.live)))
                if n:
                    self._allocate(n)
            elif not self._expiry:
                return
            yield env.timeout(p.tick)

    def _allocate(self, n: int) -> None:
        p = self.params
        cache = self.cache
        lifetimes = p.lifetime.sample(self.rng, n).tolist()
        unused = self.rng.random(n) < p.unused_share if p.unused_share else None
        now = self.env.now
        whens: list[float] = []
        items: list[int] = []
        self.live.alloc_many(cache, n, self.cpu, now, lifetimes,
                             None if unused is None else unused.tolist(), whens, items)
        self.allocated += len(items)
        self.failed += n - len(items)
        # Nothing reads the expiry queue before the next tick: queue them at once.
        self.expire_many(whens, items)

    def summary(self) -> dict[str, Any]:
        return {"allocated": self.allocated, "freed": self.freed, "failed": self.failed,
                "evicted": self.evicted, "live": len(self.live)}


class KernelAlloc(Workload):
    """Unmovable kernel pages (network buffers, page tables): orders 0..3 with weights,
    GFP_KERNEL, lifetimes from a distribution. For kmalloc objects use ``slab_churn`` on a
    ``kmalloc-N`` cache."""

    kind = "kernel_alloc"

    class Params(WorkloadParams):
        rate: float = Field(100.0, ge=0, description="allocations per second")
        orders: dict[int, float] = Field(default_factory=lambda: {0: 1.0})
        lifetime: Lifetime = Field(default_factory=Lifetime)
        gfp: Literal["kernel", "atomic", "nowait"] = "kernel"

        @model_validator(mode="after")
        def _orders(self):
            if not self.orders or any(not 0 <= o <= 10 or not 0 <= w < math.inf
                                      for o, w in self.orders.items()):
                raise ValueError("expected orders as {order 0-10: finite weight >= 0}")
            total = sum(self.orders.values())
            if not 0 < total < math.inf:
                raise ValueError("expected weights with a positive, finite sum")
            return self

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        from sim.gfp import GFP_ATOMIC, GFP_NOWAIT

        self.gfp = {"kernel": GFP_KERNEL, "atomic": GFP_ATOMIC, "nowait": GFP_NOWAIT}[params.gfp]
        orders = sorted(params.orders)
        weights = np.array([params.orders[o] for o in orders], dtype=float)
        self._orders = np.array(orders)
        self._weights = weights / weights.sum()
        # Generator.choice(orders, n, p=weights) draws ``random(n)`` and looks them up
        # in this table; done here once rather than validated again every tick.
        self._cdf = self._weights.cumsum()
        self._cdf /= self._cdf[-1]
        self.allocated = self.failed = self.freed = 0
        self.held_pages = 0

    def draw_orders(self, n: int) -> list[int]:
        """``n`` orders by weight: ``rng.choice(orders, n, p=weights)``'s draws."""
        return self._orders[self._cdf.searchsorted(self.rng.random(n), side="right")].tolist()

    def run(self):
        p = self.params
        m = self.machine
        env = self.env
        while True:
            now = env.now
            for pfn, order in self.pop_expired(now):
                m.free_pages(pfn, order, self.cpu())
                self.freed += 1
                self.held_pages -= 1 << order
            if self.active():
                n = self.arrivals(p.rate, p.tick)
                if n:
                    orders = self.draw_orders(n)
                    lifetimes = p.lifetime.sample(self.rng, n).tolist()
                    whens: list[float] = []
                    items: list[tuple[int, int]] = []
                    for order, life in zip(orders, lifetimes, strict=True):
                        pfn = m.alloc_pages(order, self.gfp, self.cpu(), OWNER_UNMOVABLE)
                        if pfn is None:
                            self.failed += 1
                            continue
                        self.allocated += 1
                        self.held_pages += 1 << order
                        whens.append(now + life)
                        items.append((pfn, order))
                    # Nothing reads the expiry queue before the next tick: queue them at once.
                    self.expire_many(whens, items)
            elif not self._expiry:
                return
            yield env.timeout(p.tick)

    def summary(self) -> dict[str, Any]:
        return {"allocated": self.allocated, "failed": self.failed, "freed": self.freed,
                "held_pages": self.held_pages}


class Anon(Workload):
    """Movable user memory: grows to ``size`` at ``grow_rate``, then replaces pages at
    ``churn_rate``; ``pinned_share`` of its pages carry long-term GUP pins (on the LRU,
    never migrated). At ``shrink_at`` it frees down to ``shrink_to``."""

    kind = "anon"

    class Params(WorkloadParams):
        size: Size = Field(256 << 20, description="resident size to grow to")
        grow_rate: Size = Field(1 << 30, description="bytes per second while growing")
        churn_rate: Size = Field(0, description="bytes per second replaced once grown")
        pinned_share: float = Field(0.0, ge=0, le=1)
        shrink_at: Duration | None = None
        shrink_to: Size = 0
        free_at_stop: bool = True

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        machine.register_page_owner(self.migrate_page)
        self.pages = PageSet(machine.zone.nr_pages)
        self.page_size = machine.zone.page_size
        self.failed = self.allocated = 0
        self._carry = 0.0

    def migrate_page(self, old: int, new: int, order: int) -> bool:
        return self.pages.migrate(old, new)

    def _alloc(self, n: int) -> None:
        m = self.machine
        pinned = self.params.pinned_share
        owner_of = None
        if pinned:
            rng_random = self.rng.random

            def owner_of() -> int:
                return OWNER_PINNED if rng_random() < pinned else OWNER_MOVABLE

        remaining = n
        while remaining > 0:
            got: list[int] = []
            refused = m.alloc_pages_batch(remaining, GFP_HIGHUSER_MOVABLE, self.cpu,
                                          OWNER_MOVABLE, got, owner_of)
            self.pages.add_many(got)
            self.allocated += len(got)
            remaining -= len(got)
            if refused is not None:
                pfn = m.alloc_pages_refused(0, GFP_HIGHUSER_MOVABLE, *refused)
                if pfn is None:
                    self.failed += 1
                    return
                self.pages.add(pfn)
                self.allocated += 1
                remaining -= 1

    def _free(self, n: int) -> None:
        m = self.machine
        n = min(n, len(self.pages))
        if m.batched and not self.cpu_draws_rng:
            m.free_pages_batch(self.pages.pop_random_many(self.rng, n), 0, self.cpu)
            return
        for _ in range(n):
            m.free_pages(self.pages.pop_random(self.rng), 0, self.cpu())

    def _quota(self, rate_bytes: float) -> int:
        self._carry += rate_bytes * self.params.tick / self.page_size
        n = int(self._carry)
        self._carry -= n
        return n

    def run(self):
        p = self.params
        env = self.env
        target = p.size // self.page_size
        shrunk = False
        while self.active():
            if p.shrink_at is not None and not shrunk and env.now >= p.shrink_at:
                self._free(len(self.pages) - p.shrink_to // self.page_size)
                target = p.shrink_to // self.page_size
                shrunk = True
            if len(self.pages) < target:
                self._alloc(min(self._quota(p.grow_rate), target - len(self.pages)))
            elif p.churn_rate:
                n = self._quota(p.churn_rate)
                self._free(n)
                self._alloc(n)
            yield env.timeout(p.tick)
        if p.free_at_stop:
            self._free(len(self.pages))

    def summary(self) -> dict[str, Any]:
        return {"resident_pages": len(self.pages), "allocated": self.allocated,
                "failed": self.failed}


class ThpProbe(Workload):
    """Every ``interval``, try one order-N allocation through the real path; hold it for
    ``hold``, then free it. ``gfp: light`` is THP's default ``madvise`` mode outside
    madvised regions (GFP_TRANSHUGE_LIGHT: no direct compaction, no kswapd wake);
    ``direct`` is a madvised region or ``always`` (GFP_TRANSHUGE: direct reclaim and
    compaction). The headline measure of availability."""

    kind = "thp_probe"

    class Params(WorkloadParams):
        interval: Duration = 1.0
        order: int = Field(9, ge=1, le=20)
        hold: Duration = 0.5
        gfp: Literal["light", "direct"] = "light"
        window: int = Field(30, ge=1, description="attempts in the trailing success rate")

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        machine.register_page_owner(self.migrate_page)
        self.attempts = self.successes = self.compacted = 0
        self.recent: list[int] = []
        self.held = PageSet(machine.zone.nr_pages)

    def migrate_page(self, old: int, new: int, order: int) -> bool:
        return self.held.migrate(old, new)

    def run(self):
        p = self.params
        m = self.machine
        env = self.env
        gfp = GFP_TRANSHUGE_LIGHT if p.gfp == "light" else GFP_TRANSHUGE
        while self.active():
            for pfn in self.pop_expired(env.now):
                if pfn in self.held:
                    self.held.remove(pfn)
                    m.free_pages(pfn, p.order, self.cpu())
            before = m.compactor.stats.successes
            pfn = m.alloc_pages(p.order, gfp, self.cpu(), OWNER_MOVABLE)
            self.attempts += 1
            ok = pfn is not None
            self.successes += ok
            self.compacted += m.compactor.stats.successes > before
            self.recent.append(int(ok))
            if len(self.recent) > p.window:
                self.recent.pop(0)
            if ok:
                self.held.add(pfn)
                self.expire_at(env.now + p.hold, pfn)
            yield env.timeout(p.interval)
        for pfn in list(self.held.pfns):
            self.held.remove(pfn)
            m.free_pages(pfn, p.order, self.cpu())

    def samples(self, values: dict) -> None:
        if self.recent:
            values[("thp_success_rate", "")] = sum(self.recent) / len(self.recent)
            values[("thp_success_cumulative", "")] = self.successes / self.attempts
            values[("thp_attempts", "")] = self.attempts

    def summary(self) -> dict[str, Any]:
        rate = self.successes / self.attempts if self.attempts else float("nan")
        return {"attempts": self.attempts, "successes": self.successes,
                "success_rate": rate, "needed_compaction": self.compacted}


class Fragment(Workload):
    """The anchor recipe: fill memory with movable pages, then free K-1 of every K
    (Gupta's proactive-compaction test). ``unmovable_share`` of the fill are order-0
    GFP_KERNEL pages and ``slab_share`` are objects of ``slab_cache``: their placement
    comes from the allocator's own fallback rules, never from chosen pfns.

    ``keep`` picks which page of each K stays. With ``first`` on a fresh zone, the
    kept pages sit on a grid that includes every multiple of 32, so once 6.18's free
    scanner has doubled its stride to COMPACT_CLUSTER_MAX (after pageblocks without free
    pages) every pfn it samples is a kept page, and compaction finds almost no targets.
    The real kernel run (tests/data/compaction/gupta-12g-keep1of4) compacted, so its
    layout was not that one; ``last``, the default, behaves like it (bench/anchor_gupta.py
    explains; tests/test_compaction.py shows the stride starving).
    """

    kind = "fragment"

    class Params(WorkloadParams):
        fill: Size | float = Field(0.75, description="bytes, or a share of memory (0-1)")
        fill_rate: Size = Field(4 << 30, description="bytes per second while filling")
        keep_one_in: int = Field(4, ge=1)
        keep: Literal["first", "last"] = Field(
            "last", description="which page of each K stays allocated; see the class doc")
        free_at: Duration | None = Field(None, description="default: as soon as filled")
        unmovable_share: float = Field(0.0, ge=0, le=1)
        slab_share: float = Field(0.0, ge=0, le=1)
        slab_cache: str = "dentry"
        slab_size: Size | None = None

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        machine.register_page_owner(self.migrate_page)
        from array import array

        # Every allocation in order: its kind (0 movable, 1 unmovable, 2 slab) and its
        # pfn or object id; rev maps a movable page's pfn to its slot, for migration.
        self.kinds = bytearray()
        self.handles = array("q")
        self.rev = array("i", [-1]) * machine.zone.nr_pages
        self.failed = self.freed = 0
        self._carry = 0.0

    def migrate_page(self, old: int, new: int, order: int) -> bool:
        slot = self.rev[old]
        if slot < 0:
            return False
        self.handles[slot] = new
        self.rev[new] = slot
        self.rev[old] = -1
        return True

    def run(self):
        p = self.params
        m = self.machine
        env = self.env
        page_size = m.zone.page_size
        fill = p.fill if isinstance(p.fill, int) and p.fill > 1 else int(
            float(p.fill) * m.zone.nr_pages * page_size)
        target = fill // page_size
        cache = m.cache(p.slab_cache, p.slab_size) if p.slab_share else None
        done = 0
        while done < target:
            self._carry += p.fill_rate * p.tick / page_size
            n = min(int(self._carry), target - done)
            self._carry -= n
            for r in self.rng.random(n):
                cpu = self.cpu()
                if r < p.unmovable_share:
                    kind, handle = 1, m.alloc_pages(0, GFP_KERNEL, cpu, OWNER_UNMOVABLE)
                elif cache is not None and r < p.unmovable_share + p.slab_share:
                    kind, handle = 2, cache.alloc(cpu)
                else:
                    kind, handle = 0, m.alloc_pages(0, GFP_HIGHUSER_MOVABLE, cpu, OWNER_MOVABLE)
                if handle is None:
                    self.failed += 1
                    continue
                if kind == 0:
                    self.rev[handle] = len(self.handles)
                self.kinds.append(kind)
                self.handles.append(handle)
            done += n
            yield env.timeout(p.tick)
        if p.free_at is not None and env.now < p.free_at:
            yield env.timeout(p.free_at - env.now)
        k = p.keep_one_in
        kept = 0 if p.keep == "first" else k - 1
        for slot, (kind, handle) in enumerate(zip(self.kinds, self.handles, strict=True)):
            if slot % k == kept:
                continue  # keep one of every K, in allocation (virtual address) order
            cpu = self.cpu()
            if kind == 2:
                cache.free(handle, cpu)
            else:
                if kind == 0:
                    self.rev[handle] = -1
                m.free_pages(handle, 0, cpu)
            self.freed += 1

    def summary(self) -> dict[str, Any]:
        return {"allocated": len(self.handles), "freed": self.freed, "failed": self.failed}


class CompactMemory(Workload):
    """``echo 1 > /proc/sys/vm/compact_memory`` at the given times; each run records
    ``avail`` and ``unusable_index`` at pageblock order just before and just after it."""

    kind = "compact_memory"

    class Params(WorkloadParams):
        at: list[Duration] = Field(default_factory=lambda: [0.0])

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        self.runs: list[dict[str, Any]] = []

    def run(self):
        env = self.env
        for when in sorted(self.params.at):
            if when > env.now:
                yield env.timeout(when - env.now)
            comp = self.machine.compactor
            zone = self.machine.zone
            order = zone.pageblock_order
            before = comp.stats.time_s
            run: dict[str, Any] = {"at": env.now}
            run[f"avail{order}_before"] = avail(zone.nr_free, order)
            run[f"unusable_index{order}_before"] = unusable_index(zone.nr_free, order)
            result = comp.compact_memory(self.cpu())
            cost = comp.stats.time_s - before
            run[f"avail{order}_after"] = avail(zone.nr_free, order)
            run[f"unusable_index{order}_after"] = unusable_index(zone.nr_free, order)
            run.update(result=result.name, time_s=cost)
            self.runs.append(run)
            if cost > 0:
                yield env.timeout(cost)

    def summary(self) -> dict[str, Any]:
        return {"runs": self.runs}
