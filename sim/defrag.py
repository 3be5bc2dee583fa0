"""Slab defragmentation: the two-phase protocol of the seed thread.

Follows Christoph Lameter's slab defragmentation series (2007-2010: ``get``/``kick``
callbacks, ``kmem_cache_defrag`` at the end of ``shrink_slab``, ``defrag_ratio`` 30,
``MAX_PARTIAL`` 20, a processed slab back at the tail of the partial list), Tobin
Harding's Slab Movable Objects (2019: ``isolate``/``migrate``, ``defrag_used_ratio`` 30,
free-only dentries, XArray nodes truly moved) and Matthew Wilcox's ``xa_reclaim``
(move the node, then ``rcu_barrier``). None of them was merged; there is no kernel
source to follow line by line, so the rules are those of DESIGN.md "Defragmenter".

A pass:

1. Candidates: node-partial slabs with ``inuse <= used_ratio% * objects`` of caches
   with a mobility and ``nr_partial > max_partial``; sparsest first, at most
   ``max_slabs_per_pass`` (0: all) over all caches.
2. Every candidate is frozen before any is processed (both series did this), so a moved
   object never lands in another candidate: "objects moved twice in a pass" stays 0.
3. Per slab: ``get(cache, objects) -> private | None`` runs atomically (no simulated
   time passes inside it) and pins objects with ``cache.hold``, or refuses and holds
   nothing. Its cost is charged after it returns.
4. ``reclaim(cache, objects, private)`` is a SimPy generator that spends simulated time
   and evicts, moves, or leaves each object. A workload free of a held object is
   deferred by the cache and applied exactly once when the hold is dropped; every hold
   left when reclaim ends (or raises) is dropped here.
5. Unfreeze: an empty slab's pages go back to the buddy allocator at once; any other
   slab goes to the tail of the node partial list.

Mobilities: ``none``; ``free`` (evict unused objects; pinned ones are skipped, or with
``pinned_policy: refuse`` the slab is refused); ``move`` (allocate a replacement in a
non-frozen slab, copy, re-point, free the original; objects on an LRU or not yet
published are busy; optional RCU wait per batch). ``move`` on dentry or inode caches is
a labelled what-if: it was never implemented in any kernel. A user object with
``get``/``reclaim`` may be registered instead; if it raises, the error is recorded with
the cache's name, the holds are dropped and the slab is unfrozen.

Entry points: :meth:`Defragmenter.run_pass` and the triggers (after a shrinker run,
periodic, a high-order allocation failure, given times) are SimPy processes;
:meth:`Defragmenter.vacate` empties one slab page for compaction, and
:meth:`Defragmenter.vacate_now` / :meth:`Defragmenter.slab_page_mobile` are the synchronous
hooks sim/compaction.py calls (its waits are charged, not simulated).

Departures from the patches: one pass at a time (a trigger during a pass is counted
and dropped); objects freed with RCU leave their slot after the cache's grace period,
so free-mode eviction of dentries empties a slab only after that (unless ``rcu_wait``);
costs are configurable constants, not measurements.

A consequence worth knowing: in an RCU-freed cache without ``rcu_wait``, a processed
slab still holds the old copies of its moved objects, so it goes back to the partial
list, and later moves of the same pass are allocated into it (it is no longer a
candidate, so nothing moves twice). Once RCU runs, those slabs are the dense ones and
the others are empty; no new slab pages were needed.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator, Iterable
from dataclasses import dataclass, fields
from typing import Any, Protocol

import simpy

from sim.config import DefragSection
from sim.slab import (
    F_DEFERRED,
    F_GHOST,
    F_LRU,
    F_RCU,
    F_UNPUBLISHED,
    W_FROZEN,
    Slab,
    SlabCache,
    SlabCaches,
)

MOBILITY_NAMES = ("none", "free", "move")
PINNED_POLICIES = ("skip", "refuse")
# Caches for which move mode is a what-if: no kernel ever moved dentries or inodes.
WHAT_IF_MOVE_NOTE = "move for dentries and inodes is a what-if: never implemented in any kernel"


def is_dentry_or_inode_cache(name: str) -> bool:
    # lsm_inode_cache holds LSM blobs, not inodes.
    return (name == "dentry" or name.endswith("_inode")
            or (name.endswith("inode_cache") and name != "lsm_inode_cache"))


class Mobility(Protocol):
    """A cache's defrag callbacks (Lameter's get/kick, SMO's isolate/migrate)."""

    def get(self, cache: SlabCache, objects: list[int]) -> Any | None: ...

    def reclaim(self, cache: SlabCache, objects: list[int],
                private: Any) -> Generator[simpy.Event, Any, None] | None: ...


@dataclass
class DefragStats:
    passes: int = 0
    passes_dropped: int = 0  # triggers while a pass was running
    slabs_considered: int = 0  # node-partial slabs examined
    slabs_frozen: int = 0
    slabs_refused: int = 0  # get() returned None
    slabs_freed: int = 0  # empty at unfreeze: pages back to the buddy allocator
    objects_evicted: int = 0
    objects_moved: int = 0
    objects_busy: int = 0  # left in their slab
    objects_moved_twice: int = 0  # in one pass; the freeze-first rule keeps it 0
    frees_deferred: int = 0  # workload frees of held objects, applied at release
    new_slab_pages: int = 0  # slab pages allocated to receive moved objects
    pages_returned: int = 0
    page_cache_evicted: int = 0
    callback_errors: int = 0
    vacate_calls: int = 0
    vacate_freed: int = 0
    cpu_time: float = 0.0  # get + free + move costs, simulated seconds
    rcu_wait_time: float = 0.0
    longest_freeze: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class DefragError:
    """A callback that raised (or broke the protocol)."""

    cache: str
    phase: str  # "get" or "reclaim"
    error: str
    time: float

    def __str__(self) -> str:
        return f"{self.cache}: {self.phase} failed at t={self.time:g}s: {self.error}"


class FreeMobility:
    """``free``: evict unused objects (Lameter's dentry/inode kick, SMO's dentry)."""

    name = "free"

    def __init__(self, defrag: Defragmenter) -> None:
        self.defrag = defrag

    def get(self, cache: SlabCache, objects: list[int]) -> list[int] | None:
        refuse = self.defrag.config.pinned_policy == "refuse"
        unused = []
        for oid in objects:
            if cache.reclaimable(oid):
                unused.append(oid)
            elif refuse:
                return None  # a pinned object: this slab cannot be emptied
        if not unused:
            return None
        for oid in unused:
            cache.hold(oid)
        return unused

    def reclaim(self, cache: SlabCache, objects: list[int],
                private: list[int]) -> Generator[simpy.Event, Any, None]:
        d = self.defrag
        cfg = d.config
        for start in range(0, len(private), cfg.batch):
            chunk = private[start:start + cfg.batch]
            yield d.spend(cfg.cost_free * len(chunk))
            for oid in chunk:
                # Freed or taken into use while we waited: leave it (release applies a
                # deferred free).
                if cache.is_held(oid) and cache.reclaimable(oid):
                    cache.release(oid, cfg.cpu)
                    d.evict(cache, oid)
            if cfg.rcu_wait:
                yield from d.rcu_wait(cache)


class MoveMobility:
    """``move``: XArray-node style (SMO ``xa_object_migrate``, Wilcox ``xa_reclaim``)."""

    name = "move"

    def __init__(self, defrag: Defragmenter) -> None:
        self.defrag = defrag

    def get(self, cache: SlabCache, objects: list[int]) -> list[int] | None:
        movable = [oid for oid in objects
                   if not cache.flags_of(oid) & (F_LRU | F_UNPUBLISHED | F_RCU | F_DEFERRED
                                                 | F_GHOST)]
        if not movable:
            return None
        for oid in movable:
            cache.hold(oid)
        return movable

    def reclaim(self, cache: SlabCache, objects: list[int],
                private: list[int]) -> Generator[simpy.Event, Any, None]:
        d = self.defrag
        cfg = d.config
        busy = F_LRU | F_UNPUBLISHED | F_RCU | F_DEFERRED
        for start in range(0, len(private), cfg.batch):
            chunk = private[start:start + cfg.batch]
            yield d.spend(cfg.cost_move * len(chunk))
            for oid in chunk:
                if (cache.is_held(oid) and not cache.flags_of(oid) & busy
                        and not d.move(cache, oid)):
                    break  # no memory for a replacement: the rest stay
            if cfg.rcu_wait:
                yield from d.rcu_wait(cache)


@dataclass(frozen=True)
class _Delay:
    """A wait inside a synchronous vacate: charged, not simulated."""

    delay: float


class Defragmenter:
    """Runs passes, targeted vacates and triggers; keeps the counters and costs."""

    def __init__(self, env: simpy.Environment, caches: SlabCaches,
                 mobility: dict[str, str | Mobility] | None = None,
                 config: DefragSection | None = None) -> None:
        self.env = env
        self.caches = caches
        self.config = config or DefragSection()
        self.stats = DefragStats()
        self.errors: list[DefragError] = []
        self.notes: list[str] = []
        self._mobility: dict[SlabCache, Mobility] = {}
        self._pass_running = False
        self._pass_process: simpy.Process | None = None
        self._moved_in_pass: set[tuple[int, int]] = set()
        self._side_evictions = 0
        self._sync = 0  # > 0 while vacate_now drives a vacate without SimPy
        self._sync_elapsed = 0.0
        for name, mob in (mobility or {}).items():
            self.set_mobility(name, mob)

    # ------------------------------------------------------------------ setup

    def set_mobility(self, cache_name: str, mobility: str | Mobility) -> None:
        """``none``, ``free``, ``move`` or an object with ``get`` and ``reclaim``."""
        cache = self.caches[cache_name]
        self._mobility.pop(cache, None)
        if isinstance(mobility, str):
            if mobility not in MOBILITY_NAMES:
                raise ValueError(
                    f"caches.{cache_name}.mobility: expected one of "
                    f"{', '.join(MOBILITY_NAMES)} or an object with get() and reclaim(), "
                    f"got {mobility!r}"
                )
            if mobility == "none":
                return
            mob: Mobility = FreeMobility(self) if mobility == "free" else MoveMobility(self)
            if mobility == "move" and is_dentry_or_inode_cache(cache_name):
                self.notes.append(f"{cache_name}: {WHAT_IF_MOVE_NOTE}")
        else:
            if not (callable(getattr(mobility, "get", None))
                    and callable(getattr(mobility, "reclaim", None))):
                raise ValueError(
                    f"caches.{cache_name}.mobility: expected an object with get() and "
                    f"reclaim(), got {type(mobility).__name__}"
                )
            mob = mobility
        self._mobility[cache] = mob

    def mobility_of(self, cache: SlabCache) -> Mobility | None:
        return self._mobility.get(cache)

    # ------------------------------------------------------------------ helpers for callbacks

    def spend(self, seconds: float) -> simpy.Event | _Delay:
        """Charge simulated CPU time and return the timeout to yield."""
        self.stats.cpu_time += seconds
        if self._sync:
            return _Delay(seconds)
        return self.env.timeout(seconds)

    def now(self) -> float:
        """Simulated time, including the waits a synchronous vacate skipped."""
        return self.env.now + self._sync_elapsed

    def evict(self, cache: SlabCache, oid: int) -> int:
        """Evict an unused object (the caller holds no reference any more).

        Objects its owner evicts with it (an inode's dentry, pruned first) are counted
        as evicted too. Returns the page-cache pages evicted."""
        before = sum(c.stats.objects_evicted for c in self.caches)
        pages = cache.evict(oid, self.config.cpu)
        self._side_evictions += sum(c.stats.objects_evicted for c in self.caches) - before - 1
        self.stats.page_cache_evicted += pages
        return pages

    def move(self, cache: SlabCache, oid: int) -> bool:
        """Move an object to a non-frozen slab of its cache; it keeps its id."""
        before = cache.stats.pages_allocated
        moved = cache.move_object(oid, self.config.cpu)
        self.stats.new_slab_pages += cache.stats.pages_allocated - before
        return moved

    def rcu_wait(self, cache: SlabCache) -> Generator[simpy.Event, Any, None]:
        """``rcu_barrier``: wait a grace period, then run the callbacks it released."""
        grace = cache.rcu_grace if self.config.rcu_grace is None else self.config.rcu_grace
        self.stats.rcu_wait_time += grace
        yield _Delay(grace) if self._sync else self.env.timeout(grace)
        cache.rcu_advance(self.now())

    def _error(self, cache: SlabCache, phase: str, err: BaseException | str) -> None:
        text = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
        self.errors.append(DefragError(cache.name, phase, text, self.now()))
        self.stats.callback_errors += 1

    # ------------------------------------------------------------------ one slab

    def _process_slab(self, cache: SlabCache, mob: Mobility, slab: Slab,
                      frozen_at: float) -> Generator[simpy.Event, Any, int]:
        """get, reclaim, release, unfreeze one frozen slab. Returns pages given back."""
        cfg, st = self.config, self.stats
        cpu = cfg.cpu
        live = [oid for oid in cache.objects_of(slab) if cache.is_live(oid)]
        held: list[int] = []
        if live:
            failed = False
            try:
                private = mob.get(cache, live)
            except Exception as err:  # a user callback: report it, lose nothing
                self._error(cache, "get", err)
                private, failed = None, True
            held = [oid for oid in live if cache.is_held(oid)]
            yield self.spend(cfg.cost_get * len(live))
            if private is None:
                if held and not failed:
                    self._error(cache, "get",
                                f"returned None but holds {len(held)} objects")
                for oid in held:
                    cache.release(oid, cpu)
                held = []
                st.slabs_refused += 1
            else:
                try:
                    steps = mob.reclaim(cache, live, private)
                    if inspect.isgenerator(steps):
                        yield from steps
                except Exception as err:
                    self._error(cache, "reclaim", err)
                applied = 0
                for oid in held:
                    applied += cache.release(oid, cpu)
                st.frees_deferred += applied
                gone = 0
                for oid in held:
                    where = cache.slab_of(oid)
                    if where is None or not cache.is_live(oid):
                        gone += 1
                    elif where is not slab:
                        st.objects_moved += 1
                        key = (cache.cache_id, oid)
                        if key in self._moved_in_pass:
                            st.objects_moved_twice += 1
                        self._moved_in_pass.add(key)
                st.objects_evicted += max(gone - applied, 0) + self._side_evictions
        self._side_evictions = 0
        st.objects_busy += sum(1 for oid in cache.objects_of(slab) if cache.is_live(oid))
        st.longest_freeze = max(st.longest_freeze, self.now() - frozen_at)
        pages = cache.unfreeze(slab, cpu)
        if pages:
            st.slabs_freed += 1
            st.pages_returned += pages
        return pages

    # ------------------------------------------------------------------ passes

    def candidates(self) -> list[tuple[SlabCache, Slab]]:
        """This moment's candidates, sparsest first, limited to max_slabs_per_pass."""
        cfg = self.config
        found: list[tuple[float, int, SlabCache, Slab]] = []
        for cache in self._mobility:
            if cache.nr_partial <= cfg.max_partial:
                continue
            self.stats.slabs_considered += cache.nr_partial
            for slab in cache.candidate_slabs(cfg.used_ratio):
                found.append((slab.inuse / slab.objects, len(found), cache, slab))
        found.sort(key=lambda c: (c[0], c[1]))
        if cfg.max_slabs_per_pass:
            found = found[:cfg.max_slabs_per_pass]
        return [(cache, slab) for _, _, cache, slab in found]

    def run_pass(self, reason: str = "manual") -> Generator[simpy.Event, Any, int]:
        """One defrag pass (a SimPy process body). Returns the pages given back."""
        if self._pass_running:
            self.stats.passes_dropped += 1
            return 0
        self._pass_running = True
        try:
            self.stats.passes += 1
            chosen = self.candidates()
            frozen_at = self.env.now
            # Freeze them all before processing any.
            for cache, slab in chosen:
                cache.freeze(slab)
            self.stats.slabs_frozen += len(chosen)
            self._moved_in_pass = set()
            pages = 0
            for cache, slab in chosen:
                pages += yield from self._process_slab(cache, self._mobility[cache], slab,
                                                       frozen_at)
            return pages
        finally:
            self._pass_running = False

    def vacate(self, pfn: int) -> Generator[simpy.Event, Any, bool]:
        """Compaction's entry point: empty the slab page at ``pfn`` through its cache's
        callbacks. Returns whether the page went back to the buddy allocator."""
        self.stats.vacate_calls += 1
        cache = self.caches.cache_of_pfn(pfn)
        if cache is None:
            return False
        mob = self._mobility.get(cache)
        slab = cache.slab_at(pfn)
        if mob is None or slab is None or slab.where == W_FROZEN:
            return False
        cache.freeze(slab)
        self.stats.slabs_frozen += 1
        pages = yield from self._process_slab(cache, mob, slab, self.now())
        if pages:
            self.stats.vacate_freed += 1
        return pages > 0

    def slab_page_mobile(self, pfn: int) -> bool:
        """Compaction's question: is ``pfn`` a slab page whose cache has a mobility?"""
        cache = self.caches.cache_of_pfn(pfn)
        if cache is None or cache not in self._mobility:
            return False
        slab = cache.slab_at(pfn)
        return slab is not None and slab.where != W_FROZEN

    def vacate_now(self, pfn: int) -> bool:
        """:meth:`vacate` run synchronously, for compaction, which is instantaneous in the
        allocator: the waits are not simulated but charged (``stats.cpu_time``,
        ``stats.rcu_wait_time``), and an RCU wait runs the callbacks that would have
        completed by then. A user callback that yields its own events gets no wait."""
        self._sync += 1
        self._sync_elapsed = 0.0
        gen = self.vacate(pfn)
        try:
            event = gen.send(None)
            while True:
                delay = event.delay if isinstance(event, _Delay) else getattr(
                    event, "_delay", 0.0)
                self._sync_elapsed += delay
                event = gen.send(None)
        except StopIteration as stop:
            return bool(stop.value)
        finally:
            self._sync -= 1
            self._sync_elapsed = 0.0

    # ------------------------------------------------------------------ triggers

    def trigger(self, reason: str = "manual") -> simpy.Process | None:
        """Start a pass now unless one is running."""
        if self._pass_running or (self._pass_process is not None
                                  and self._pass_process.is_alive):
            self.stats.passes_dropped += 1
            return None
        self._pass_process = self.env.process(self.run_pass(reason))
        return self._pass_process

    def report(self) -> dict[str, Any]:
        """The defragmenter's counters, for a run's summary (``defrag``)."""
        later = sum(c.stats.defragged_pages_freed for c in self.caches)
        return {
            **self.stats.as_dict(),
            # Slabs a pass left non-empty and that emptied later (mostly when the RCU
            # grace period freed the old copies of moved or evicted objects): an upper
            # bound on what the pass returned after it ended.
            "pages_returned_later": later,
            # One figure, its parts above: returned by the passes, and at most later.
            "pages_returned_total": self.stats.pages_returned + later,
            # The first of the errors user mobility callbacks raised (callback_errors
            # counts them all): the run goes on without the failed call.
            "errors": [str(e) for e in self.errors[:10]],
        }

    def after_shrink(self) -> simpy.Process | None:
        """At the end of a shrinker run, as in Lameter's series."""
        return self.trigger("shrink")

    def on_alloc_failure(self, order: int) -> simpy.Process | None:
        """A failed allocation of ``order`` (direct trigger for high orders)."""
        if order < self.config.failure_min_order:
            return None
        return self.trigger("alloc_failure")

    def start_periodic(self, interval: float, until: float | None = None) -> simpy.Process:
        """A pass every ``interval`` seconds (until ``until``)."""
        if interval <= 0:
            raise ValueError(f"interval: expected a time > 0, got {interval}")

        def loop() -> Generator[simpy.Event, Any, None]:
            while until is None or self.env.now + interval <= until:
                yield self.env.timeout(interval)
                yield from self.run_pass("periodic")

        return self.env.process(loop())

    def schedule(self, times: Iterable[float]) -> simpy.Process:
        """A pass at each of the given simulated times."""
        at = sorted(times)

        def loop() -> Generator[simpy.Event, Any, None]:
            for t in at:
                if t > self.env.now:
                    yield self.env.timeout(t - self.env.now)
                yield from self.run_pass("scheduled")

        return self.env.process(loop())


__all__ = [
    "DefragError",
    "DefragStats",
    "Defragmenter",
    "FreeMobility",
    "Mobility",
    "MoveMobility",
    "is_dentry_or_inode_cache",
]
