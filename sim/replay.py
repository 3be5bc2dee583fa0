"""Replay an ftrace kmem trace against the simulated zone and slab caches.

Synchronous and engine-independent: :class:`Replayer` applies
:class:`~sim.ftrace.TraceEvent` records to a :class:`~sim.buddy.Zone` and
:class:`~sim.slab.SlabCaches`; the engine wraps it in a SimPy process (see
:meth:`Replayer.events_until`). What each event does, with the kernel source it follows:

- ``kmem_cache_alloc`` / ``kmem_cache_free``: an object of the cache named by ``name=``
  (``kmem_cache_alloc`` without ``name=``, as before 6.18: the one cache of slabinfo with
  that ``bytes_alloc`` = ``s->size``, else a cache ``size-N``). A cache slabinfo did not
  list is created with ``calculate_order`` geometry and the flags table's page type.
- ``kmalloc`` is routed as mm/slab_common.c ``kmalloc_slab`` / ``kmalloc_type`` (6.18)
  route it: ``__GFP_DMA`` -> ``dma-kmalloc-N``, else ``__GFP_RECLAIMABLE`` ->
  ``kmalloc-rcl-N``, else ``accounted=true`` (``__GFP_ACCOUNT``) -> ``kmalloc-cg-N``,
  else ``kmalloc-N``, where N is ``bytes_alloc`` (the cache's object size; 1k, 2k, 4k, 8k
  for the page-sized ones). Above KMALLOC_MAX_CACHE_SIZE (8 KiB with SLUB)
  ``__kmalloc_large_node`` takes ``get_order(size)`` pages straight from the page
  allocator, ``gfp | __GFP_COMP``. That allocation also shows as an ``mm_page_alloc``
  event just before the ``kmalloc`` one (and its free as ``mm_page_free`` after the
  ``kfree``): when the trace has it, the ``kmalloc`` adopts that page instead of taking a
  second one; a trace without page events gets the page here.
- Objects are paired by the hashed ``ptr``. A free of a pointer the replay never saw
  allocated is an object from before the trace: an **unknown free**. It is counted and
  takes a random object of the same cache from the initial population
  (sim/snapshot.py); a ``kfree`` names no cache, so its unknown frees are only counted.
  ``kfree(NULL)`` is counted apart. A free of a pointer already freed and not allocated
  since is not an unknown free: sim/ftrace.py drops it as a bad line (``duplicate_free``,
  with its line number), and checks every event's sizes, order and time the same way
  (its "Bad lines"), each ``kmem_cache_alloc``'s size against its cache's.
- **Allocation failures**: an allocation the kernel made that the simulated machine
  cannot (its zone ran out, or holds no free block of the order) is counted: a page
  (``mm_page_alloc``, a large kmalloc's own) by order and migratetype, an object by
  cache (``page_alloc_failures_by_*``, ``object_alloc_failures_by_cache``). The first is
  kept with its trace line and the zone as it stood (``first_alloc_failure``: free
  pages, watermarks, buddyinfo; :func:`describe_alloc_failure` words it). The failed
  allocation is remembered, so that its free frees nothing (``frees_of_failed_allocs``,
  ``frees_of_failed_page_allocs``); a large kmalloc whose page was the refused
  ``mm_page_alloc`` just before it takes that failure over rather than asking again (one
  allocation in the kernel, one failure). A failed page's pfn is a kernel pfn the
  replay has no page for; the trace's own failed allocations (``page=NULL``) are counted
  apart (``trace_page_alloc_failures``).
- Page events: a ``mm_page_alloc`` whose gfp carries SLUB's ``__GFP_NOWARN |
  __GFP_NORETRY | __GFP_COMP`` (mm/slub.c ``allocate_slab``) **and** a migratetype other
  than MOVABLE is a slab page: not replayed, since the slab model allocates its own.
  Readahead pages carry the same flags but are MOVABLE. Every other page is allocated
  through ``page_allocator`` and paired by pfn; a free of a pfn never seen allocated is
  an unknown page free (counted, nothing freed). Slab pages are attributed to the cache
  of the next allocation on the same CPU whose slab order and page type match, so that
  a cache's simulated ``slabs_allocated`` can be set against the kernel's own.
  ``mm_page_free_batched`` repeats an ``mm_page_free`` of the same page
  (``free_unref_folios`` calls ``free_pages_prepare``, which traces ``mm_page_free``):
  it frees only a page still allocated, and the ``mm_page_free`` after it is then
  skipped.
- Time: a trace timestamp ``ts`` is simulated time ``start + (ts - first_ts) / speed``.
  RCU callbacks of the caches (moved objects' ghosts, SLAB_TYPESAFE_BY_RCU slab pages,
  and frees queued in ``rcu_frees="queue"`` mode) run every ``rcu_tick`` of simulated
  time.

Departures, and why:

- **RCU frees are applied at the trace's time** (``rcu_frees="trace"``, the default).
  The ``kmem_cache_free`` of a dentry or an inode is traced when the RCU callback runs
  (the real trace shows ``call_site=rcu_do_batch`` 45-150 ms after the unlink), so it
  is already delayed by a grace period; queueing it through ``free_rcu`` again would
  delay it twice. ``rcu_frees="queue"`` does that anyway (``free_rcu`` with the event's
  time as ``now``), for comparison with the synthetic workloads.
- **Holding.** Every object of a replayed cache is held by the trace until the trace
  frees it: the cache's owner (sim/slab.py's ObjectOwner) is a :class:`TraceHolder`
  whose ``reclaimable()`` is False, so the shrinker and free-mode defragmentation never
  evict one; ``move`` may relocate it, and object ids survive ``move_object``, so the
  trace's free finds it at its new place. (The owner, not ``get_ref``, because it costs
  nothing per allocation; the effect on ``reclaimable`` is the same.) A cache that
  already has an owner keeps it.
- **Fast path only** (the default ``page_allocator``, and the slab caches of
  :func:`build_replay`): ``Zone.alloc``, ``get_page_from_freelist``'s first attempt at
  the low watermark. There is no slow path: no retry at the min watermark, no
  compaction, no reclaim (``fragsim replay`` has no engine, and nothing on its machine
  is reclaimable: the trace holds every object). An allocation the kernel would have got
  at the min watermark or after compacting fails here: the zone "runs out" at its low
  watermark. kswapd does the one thing it would do on such a machine: woken after a
  fallback boosted the watermarks, it takes the boost off at once (``balance_pgdat``'s
  end; :func:`build_replay`), where the kernel's kswapd takes a moment; without it the
  boost, up to 1.5x the high watermark, would stay for the rest of the trace. Inside a
  full machine (``kind: trace``) the engine passes ``Machine.alloc_pages``, the whole
  slow path, and its own kswapd.
- A trace CPU beyond the simulated ones is folded onto them (``cpu % cpus``).
- **Reading** (no kernel counterpart): in the compiled build the parser's records
  (sim/ftrace.py ``RECORD_*``) are read where they lie, and the live objects are kept
  by pointer value in typed tables (sim/readahead.py ``FolioTable``), cache id and
  object id in one integer: no Python object per event. A pointer the kernel printed as
  16 hex digits is keyed by its value, any other spelling by its text, whichever way
  its line was read; a line the C scanner left to the Python parser comes as its event
  tuple and goes through the same handlers.
- A ``kmem_cache_alloc`` of a pointer that is still live (its free was not traced) frees
  the old object first, and counts it.
- The trace's own slab pages and the simulated ones are different pages: the simulated
  caches allocate where the simulated allocator puts them.
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import os
import random
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, Final

from librt.strings import read_f64_le, read_i16_le, read_i32_le, read_i64_le
from mypy_extensions import i64

from sim.buddy import (
    ALLOC_KSWAPD,
    ALLOC_WMARK_LOW,
    OWNER_MOVABLE,
    OWNER_RECLAIMABLE,
    OWNER_UNMOVABLE,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    BadFree,
    Zone,
)
from sim.errors import FragsimError
from sim.ftrace import (
    KIND_NAMES,
    RECORD_CPU,
    RECORD_KEY,
    RECORD_KIND,
    RECORD_LINENO,
    RECORD_SIZE,
    RECORD_TAIL,
    RECORD_TS,
    ParseStats,
    TraceEvent,
    TraceReader,
)
from sim.gfp import (
    __GFP_ACCOUNT,
    __GFP_COMP,
    __GFP_DMA,
    __GFP_NORETRY,
    __GFP_NOWARN,
    __GFP_RECLAIMABLE,
    gfp_migratetype,
)
from sim.migratetype import MIGRATE_MOVABLE, MIGRATETYPE_NAMES
from sim.mmzone import ZONE_NAMES, Node, gfp_zone
from sim.procfs import (
    Pagetypeinfo,
    SlabinfoEntry,
    ZoneFree,
    parse_buddyinfo,
    parse_pagetypeinfo,
    parse_slabinfo,
    parse_zoneinfo,
)
from sim.readahead import FolioTable
from sim.slab import BadSlabFree, CompiledOwner, SlabCache, SlabCaches, get_order
from sim.snapshot import (
    FillerPool,
    InitialPopulation,
    apply_zoneinfo_watermarks,
    node_from_snapshots,
    pick_zone,
    populate_from_slabinfo,
    read_machine_snapshot_files,
    start_from_snapshot,
    synthesize_zone,
)

# SLUB: KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1, KMALLOC_MAX_CACHE_SIZE = 1 << that (4 KiB pages).
KMALLOC_MAX_CACHE_SIZE = 8192
# mm/slub.c allocate_slab: alloc_gfp = (flags | __GFP_NOWARN | __GFP_NORETRY) & ~__GFP_NOFAIL,
# and slab folios are always compound.
SLAB_GFP_SIGNATURE: Final = __GFP_NOWARN | __GFP_NORETRY | __GFP_COMP
_GFP_COMP: Final = __GFP_COMP  # a double-underscore name would be mangled inside a class
NULL_PTR = "0000000000000000"
RCU_FREES = ("trace", "queue")
_OWNER_OF_MT: Final = (OWNER_UNMOVABLE, OWNER_MOVABLE, OWNER_RECLAIMABLE)

_LOW63: Final = (1 << 63) - 1
_HEX_DIGITS: Final = "0123456789abcdef"


def _ptr_key(ptr: str) -> tuple[i64, str | None]:
    """A pointer as the replay keys it: (its value, None) when it is 16 lowercase hex
    digits (the kernel's %p on 64 bits, which the C scanner keys by value; a value with
    the top bit set as a negative i64), else (0, its text)."""
    if len(ptr) == 16 and not ptr.strip(_HEX_DIGITS):
        value = int(ptr, 16)
        if value >= 1 << 63:
            value -= 1 << 64
        return value, None
    return 0, ptr


def _ptr_of(key: i64, text: str | None) -> object:
    """A pointer as a set's or dict's key (the slow paths')."""
    return int(key) if text is None else text


def _lists_of(events: Iterator[TraceEvent]) -> Generator[list[tuple], None, None]:
    """Events fed one by one, as batches."""
    while True:
        batch: list[tuple] = list(itertools.islice(events, 4096))
        if not batch:
            return
        yield batch


# page_allocator(order, gfp, cpu, owner) -> pfn or None: Machine.alloc_pages' signature.
PageAlloc = Callable[[int, int, int, "int | None"], "int | None"]
# page_free(pfn, order, cpu): Machine.free_pages'.
PageFree = Callable[[int, int, int], None]


def kmalloc_size_name(size: int) -> str:
    """kmalloc_info[] names: 8 .. 512, then 1k, 2k, 4k, 8k (include/linux/slab.h)."""
    return f"{size // 1024}k" if size >= 1024 and not size % 1024 else str(size)


def kmalloc_cache_name(bytes_alloc: int, gfp: int, accounted: bool) -> str:
    """The kmalloc cache ``kmalloc_slab`` picks: ``kmalloc_type`` (DMA, then RECLAIM, then
    CGROUP for accounted allocations, else NORMAL) and the size of ``bytes_alloc``."""
    size = kmalloc_size_name(bytes_alloc)
    if gfp & __GFP_DMA:
        return f"dma-kmalloc-{size}"
    if gfp & __GFP_RECLAIMABLE:
        return f"kmalloc-rcl-{size}"
    if accounted or gfp & __GFP_ACCOUNT:
        return f"kmalloc-cg-{size}"
    return f"kmalloc-{size}"


def migratetype_name(migratetype: int) -> str:
    """/proc/pagetypeinfo's name of a migratetype (a trace may print one we do not name)."""
    if 0 <= migratetype < len(MIGRATETYPE_NAMES):
        return MIGRATETYPE_NAMES[migratetype]
    return f"migratetype {migratetype}"


def is_slab_page(gfp: int, migratetype: int) -> bool:
    """SLUB's gfp signature on a non-MOVABLE page (see the module docstring)."""
    return (gfp & SLAB_GFP_SIGNATURE) == SLAB_GFP_SIGNATURE and migratetype != MIGRATE_MOVABLE


class TraceHolder(CompiledOwner):
    """The owner of replayed caches' objects: the trace holds every one of them until it
    frees it, so none is reclaimable (sim/slab.py ObjectOwner)."""

    def reclaimable(self, cache: SlabCache, oid: int) -> bool:
        return False

    def evict(self, cache: SlabCache, oid: int, cpu: int) -> int:
        raise ValueError(f"{cache.name}: object {oid} is held by the trace; it cannot be "
                         "evicted")


@dataclass
class ReplayStats:
    """Counters of one replay. Page events are counted both ways: ``slab_page_allocs``
    (not replayed) and ``page_allocs`` (replayed)."""

    events: int = 0
    first_ts: float | None = None  # trace clock
    last_ts: float | None = None
    unknown_frees: int = 0  # taken from the initial population
    unknown_frees_unmatched: int = 0  # cache unknown (kfree) or its population used up
    kfree_null: int = 0
    reallocs: int = 0  # allocation of a pointer still live: its free was missing
    object_alloc_failures: int = 0  # the simulated caches found no memory
    object_alloc_failures_by_cache: dict[str, int] = field(default_factory=dict)
    frees_of_failed_allocs: int = 0  # the free of an object that object_alloc_failures lost
    bad_frees: int = 0  # a free the slab model refused (double free)
    slab_page_allocs: int = 0
    slab_page_frees: int = 0
    slab_pages_by_type: dict[str, int] = field(default_factory=dict)  # "order-2 Unmovable"
    slab_pages_unattributed: int = 0
    page_allocs: int = 0  # replayed
    page_frees: int = 0  # replayed
    page_alloc_failures: int = 0  # the simulated zone refused a replayed page
    page_alloc_failures_by_order: dict[str, int] = field(default_factory=dict)  # "2"
    page_alloc_failures_by_migratetype: dict[str, int] = field(default_factory=dict)
    frees_of_failed_page_allocs: int = 0  # the free of a page page_alloc_failures lost
    page_reallocs: int = 0  # allocation of a pfn still allocated: its free was missing
    unknown_page_frees: int = 0
    trace_page_alloc_failures: int = 0  # mm_page_alloc events of a failed allocation
    page_free_batched: int = 0
    page_free_duplicates: int = 0  # mm_page_free after mm_page_free_batched of a page
    large_kmallocs: int = 0
    large_kmallocs_adopted: int = 0  # took the mm_page_alloc before them
    large_kfrees: int = 0
    rcu_queued: int = 0
    pages_migrated: int = 0  # replayed pages moved by compaction (migrate_page)
    caches_created: list[str] = field(default_factory=list)
    # The first allocation the simulated machine could not serve: its trace line, what
    # it asked for, and the zone as it stood (AllocFailure.as_dict).
    first_alloc_failure: dict[str, Any] | None = None

    @property
    def alloc_failures(self) -> int:
        """Allocations the trace made that the simulated machine could not: replayed
        pages (mm_page_alloc, large kmalloc) and slab objects."""
        return self.page_alloc_failures + self.object_alloc_failures

    def failure_summary(self) -> dict[str, Any]:
        """summary.json's ``trace.alloc_failures``: the counts by kind, and the first."""
        return {
            "total": self.alloc_failures,
            "pages": self.page_alloc_failures,
            "pages_by_order": dict(sorted(self.page_alloc_failures_by_order.items(),
                                          key=lambda kv: int(kv[0]))),
            "pages_by_migratetype": dict(sorted(self.page_alloc_failures_by_migratetype.items())),
            "objects": self.object_alloc_failures,
            "objects_by_cache": dict(sorted(self.object_alloc_failures_by_cache.items())),
            "first": self.first_alloc_failure,
        }

    @property
    def span_s(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return self.last_ts - self.first_ts

    def as_dict(self) -> dict[str, Any]:
        # By field, not __dict__: compiled (mypyc), an instance has none.
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["span_s"] = self.span_s
        return d


def describe_alloc_failure(first: dict[str, Any]) -> str:
    """A failed allocation and the zone it failed in, from ``first_alloc_failure``:
    ``line 4567 (mm_page_alloc, order 2 Unmovable): zone Normal had 1234 free pages,
    below its low watermark 1400 (min 1300, high 1500)``. The replay's allocations
    (``Zone.alloc``) check the low watermark, boost included, against NR_FREE_PAGES
    less the highatomic reserves' free pages and ``(1 << order) - 1``
    (``__zone_watermark_ok``); above it, the zone had no free block of the order."""
    what = first["event"] + (f" {first['cache']}" if first.get("cache") else "")
    order = first["order"]
    head = (f"line {first['line']} ({what}, order {order} {first['migratetype']}): "
            f"zone {first['zone']} had {first['free_pages']} free pages")
    reserved = first.get("free_highatomic", 0)
    if reserved:
        head += f" ({reserved} of them in highatomic reserves)"
    low = first["watermark_low"]
    marks = f"min {first['watermark_min']}, high {first['watermark_high']}"
    boost = first.get("watermark_boost", 0)
    if boost:
        marks += f", each with a boost of {boost}"
    usable = first["free_pages"] - reserved
    if usable <= low:
        return f"{head}, below its low watermark {low} ({marks})"
    if usable - ((1 << order) - 1) <= low:
        return (f"{head}, below the {low + (1 << order)} an order-{order} allocation needs "
                f"(low watermark {low} + {1 << order} pages; {marks})")
    return (f"{head}, above its low watermark {low} ({marks}), but no free block of order "
            f"{order} or above")


@dataclass
class CacheReplayStats:
    """One cache over the replay (slabinfo-style numbers are read from the cache)."""

    name: str
    allocs: int
    frees: int
    unknown_frees: int
    slabs_allocated: int  # SlabStats.alloc_slab during the replay
    slabs_freed: int  # SlabStats.free_slab during the replay
    trace_slab_pages: int  # the kernel's slab page allocations attributed to this cache
    initial_objects: int
    live_objects: int  # allocated and not dying
    nr_slabs: int
    active_objs: int  # get_slabinfo's
    num_objs: int

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Replayer:
    """Apply trace events to a zone and its slab caches.

    ``population`` is the initial population (sim/snapshot.populate_from_slabinfo) that
    unknown frees draw from. ``speed`` scales time: simulated = start + (ts - first) /
    speed. ``page_allocator(order, gfp, cpu, owner)`` and ``page_free(pfn, order, cpu)``
    default to the zone's fast path (``Zone.alloc`` / ``Zone.free``); the engine passes
    ``Machine.alloc_pages`` / ``free_pages`` for the slow path.

    In a SimPy process, with ``tick`` seconds per event::

        replayer.feed(TraceReader(path))
        while (t := replayer.next_time()) is not None:
            yield env.timeout(max(t - env.now, tick))
            replayer.events_until(env.now)
    """

    def __init__(
        self,
        zone: Zone | Node,
        caches: SlabCaches,
        *,
        population: InitialPopulation | None = None,
        speed: float = 1.0,
        start: float = 0.0,
        rcu_frees: str = "trace",
        rcu_tick: float = 0.01,
        seed: int = 0,
        page_allocator: PageAlloc | None = None,
        page_free: PageFree | None = None,
        hold: bool = True,
        zone_name: str = "Normal",
        node: Node | None = None,
    ) -> None:
        if not speed > 0 or not math.isfinite(speed):
            raise FragsimError(f"replay: speed: expected a number above 0, got {speed}")
        if rcu_frees not in RCU_FREES:
            raise FragsimError(f"replay: rcu_frees: expected {' or '.join(RCU_FREES)}, got "
                               f"{rcu_frees!r}")
        if not rcu_tick > 0:
            raise FragsimError(f"replay: rcu_tick: expected a time above 0, got {rcu_tick}")
        self.zone = zone
        self.zone_name = zone_name  # for messages: the zone the snapshots described
        # A node of several zones: page allocations walk its zonelist from the gfp's
        # zone (``zone`` is the node then).
        self.node = node if node is not None and node.multi_zone else None
        self.caches = caches
        self.speed = speed
        self.start = start
        self.now = start
        self.rcu_frees = rcu_frees
        self.rcu_tick = rcu_tick
        self.rng = random.Random(seed)
        self.hold = hold
        self.holder = TraceHolder()
        self.page_alloc: PageAlloc = page_allocator or self._zone_alloc
        self.page_free: PageFree = page_free or zone.free
        # The zone's own fast path, called directly (not through the callables).
        self._zone_pages = page_allocator is None
        self._zone_frees = page_free is None
        self.stats = ReplayStats()
        self.t0: float | None = None
        self.ncpu = zone.cpus

        # The live objects by pointer: its value (16 hex digits as the kernel's %p
        # prints it: sim/ftrace.py keys the pointer by it) -> cache id << 32 | object
        # id, in two tables (values >= 0, and those with the top bit set, that bit
        # cleared); any other spelling of a pointer by its text.
        self._objects = FolioTable()
        self._objects_high = FolioTable()
        self._objects_text: dict[str, int] = {}
        # Pointers (value or text: _ptr_of) whose allocation the simulation could not make.
        self._failed: set[object] = set()
        # kernel pfn -> (sim pfn, order); sim pfn -> kernel pfn.
        self._failed_pages: set[int] = set()  # kernel pfns of page allocations it could not
        self.pages: dict[int, tuple[int, int]] = {}
        self._kernel_pfn: dict[int, int] = {}
        self.slab_pages: dict[int, int] = {}  # kernel pfn -> order of trace slab pages
        self._batched_freed: set[int] = set()
        # Large kmallocs: ptr (_ptr_of) -> (kernel pfn or -1, sim pfn, order).
        self.large: dict[object, tuple[int, int, int]] = {}
        self._last_page: dict[int, tuple[int, int, int]] = {}  # trace cpu -> (pfn, order, gfp)
        self._adopted: set[int] = set()
        # Slab page attribution: trace cpu -> [(order, mt)] waiting for the next alloc.
        self._pending_slab: dict[int, list[tuple[int, int]]] = {}
        self.trace_slab_pages: dict[str, int] = {}
        self.unknown_frees_by_cache: dict[str, int] = {}

        self._initial: dict[str, list[int]] = {}
        if population is not None:
            self._initial = {name: list(oids) for name, oids in population.objects.items()}
        self._initial_count = {name: len(v) for name, v in self._initial.items()}
        self._cache_of: dict[str, SlabCache] = {}
        self._kmalloc_route: dict[tuple[int, int, bool], SlabCache | None] = {}
        self._by_size: dict[int, SlabCache] = {}
        self._base: dict[str, tuple[int, int, int, int]] = {}
        for cache in caches:
            self._adopt_cache(cache)

        self._queue_rcu = rcu_frees == "queue"
        # What is being read: the batches fed, and the one at hand from _pos (the C
        # scanner's records and their objects, or a list of event tuples), with the
        # tails the records name and, per tail, the id of its kmem_cache_alloc's cache
        # (-1 until an allocation looks it up).
        self._batches: Generator[Any, None, None] | None = None
        self._recs = b""
        self._rec_objects: list[tuple] = []
        self._evs: list[tuple] | None = None
        self._pos = 0
        self._n = 0
        self._tails: list[tuple] = []
        self._tail_cache: list[int] = []
        # Time, in trace time: the last event applied; while _run runs, its ``until``,
        # the timestamps of ``until`` and of the next RCU tick, and the earlier of them.
        self._last_ts = 0.0
        self._until = 0.0
        self._ts_until = 0.0
        self._ts_tick = 0.0
        self._limit = 0.0
        self._next_tick = start + rcu_tick

    # ------------------------------------------------------------------ set-up

    def _adopt_cache(self, cache: SlabCache) -> None:
        """Start tracking a cache: its counters now are the replay's baseline."""
        self._cache_of[cache.name] = cache
        if cache.name in self._base:
            return
        st = cache.stats
        self._base[cache.name] = (st.alloc_slab, st.free_slab, cache.nr_allocs, cache.nr_frees)
        if self.hold and cache.owner is None:
            cache.owner = self.holder

    def _zone_alloc(self, order: int, gfp: int, cpu: int, owner: int | None) -> int | None:
        pfn = self._zone_alloc_pfn(order, gfp, cpu, owner)
        return None if pfn < 0 else pfn

    def _zone_alloc_pfn(self, order: int, gfp: int, cpu: int, owner: int | None) -> int:
        """The default page allocator: ``get_page_from_freelist`` at the low watermark
        (the zone's ``alloc``, or the node's zonelist from the gfp's zone), -1 for
        none."""
        if self.node is not None:
            return self.node.alloc_pfn(order, gfp_migratetype(gfp), cpu, owner,
                                       ALLOC_WMARK_LOW | ALLOC_KSWAPD, gfp_zone(gfp))
        return self.zone.alloc_pfn(order, gfp_migratetype(gfp), cpu, owner,
                                   ALLOC_WMARK_LOW | ALLOC_KSWAPD)

    def cache_named(self, name: str, size: int = 0) -> SlabCache:
        """The cache called ``name``, created (``calculate_order`` geometry for ``size``,
        the flags table's page type) if neither slabinfo nor the trace made it yet."""
        cache = self._cache_of.get(name)
        if cache is not None:
            return cache
        try:
            cache = self.caches[name]
        except KeyError:
            if size < 1:
                raise FragsimError(f"replay: cache {name!r} is not in the slabinfo and the "
                                   "trace gives no object size for it") from None
            cache = self.caches.create(name, size)
            self.stats.caches_created.append(name)
        self._adopt_cache(cache)
        return cache

    def _cache_for_size(self, size: int) -> SlabCache:
        """``kmem_cache_alloc`` without ``name=`` (kernels before 6.18): the only
        non-kmalloc cache with ``s->size == size``, else a cache "size-N"."""
        cache = self._by_size.get(size)
        if cache is None:
            matches = [c for c in self.caches if c.size == size
                       and not c.name.startswith(("kmalloc-", "dma-kmalloc-"))]
            cache = matches[0] if len(matches) == 1 else self.cache_named(f"size-{size}", size)
            self._by_size[size] = cache
        return cache

    def _kmalloc_cache(self, bytes_alloc: int, gfp: int, accounted: bool) -> SlabCache | None:
        key = (bytes_alloc, gfp, accounted)
        if key in self._kmalloc_route:
            return self._kmalloc_route[key]
        cache = None
        if bytes_alloc <= KMALLOC_MAX_CACHE_SIZE:
            cache = self.cache_named(kmalloc_cache_name(bytes_alloc, gfp, accounted),
                                     bytes_alloc)
        self._kmalloc_route[key] = cache
        return cache

    # ------------------------------------------------------------------ time

    def sim_time(self, ts: float) -> float:
        """Simulated time of a trace timestamp."""
        if self.t0 is None:
            self.t0 = ts
        return self.start + (ts - self.t0) / self.speed

    def feed(self, events: Iterable[TraceEvent] | TraceReader) -> None:
        """Set the events to replay. A TraceReader is read by batches
        (``TraceReader.record_batches``): the C scanner's records where the compiled build
        parsed, read here without an object an event, else lists of plain tuples."""
        self.close()
        if isinstance(events, TraceReader):
            # A kmem_cache_alloc of a known cache with another size is a bad line.
            events.expect_cache_sizes({cache.name: cache.size for cache in self.caches})
            self._batches = events.record_batches()
        else:
            self._batches = _lists_of(iter(events))

    def feed_batches(self, batches: Iterable[Any]) -> None:
        """Set the events to replay as batches, as ``TraceReader.record_batches`` gives
        them (the C scanner's records, or lists of event tuples): a trace parsed
        beforehand (bench/bench_replay.py's "replay only")."""
        self.close()
        self._batches = (batch for batch in batches)

    def close(self) -> None:
        """Stop reading the fed trace (and end its parser process) before its end: for a
        run that stops while the trace still has events."""
        if self._batches is not None:
            self._batches.close()
            self._batches = None
        self._set_batch(None)

    def _set_batch(self, batch: Any) -> None:
        """Make ``batch`` the one read from its start: the C scanner's (records, objects,
        new tails), a list of event tuples, or None for none."""
        self._pos = 0
        if batch is None:
            self._recs = b""
            self._rec_objects = []
            self._evs = None
            self._n = 0
        elif type(batch) is tuple:
            records, objects, new_tails = batch
            self._tails.extend(new_tails)
            self._tail_cache.extend([-1] * len(new_tails))
            self._recs = records
            self._rec_objects = objects
            self._evs = None
            self._n = len(records) // RECORD_SIZE
        else:
            self._recs = b""
            self._rec_objects = []
            self._evs = batch
            self._n = len(batch)

    def _next_batch(self) -> bool:
        """Read the next batch fed; False when there is none."""
        while self._batches is not None:
            batch = next(self._batches, None)
            if batch is None:
                self._batches = None
                break
            self._set_batch(batch)
            if self._n:
                return True
        self._set_batch(None)
        return False

    def next_time(self) -> float | None:
        """Simulated time of the next event, or None when the trace is done."""
        if self._pos >= self._n and not self._next_batch():
            return None
        evs = self._evs
        ts = (read_f64_le(self._recs, self._pos * RECORD_SIZE) if evs is None
              else evs[self._pos][0])
        return self.sim_time(ts)

    def events_until(self, until: float) -> int:
        """Apply every fed event due at or before simulated time ``until``; returns how
        many. The first event due later is kept for the next call."""
        if self._pos >= self._n and self._batches is None:
            return 0
        # The loop makes no reference cycles: the cyclic collector would only walk the
        # heap (10-20 % of the replay time).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run(until)
        finally:
            if gc_was_enabled:
                gc.enable()

    def run(self) -> ReplayStats:
        """Apply every fed event."""
        self.events_until(math.inf)
        self.advance(self.now)
        return self.stats

    def apply(self, ev: TraceEvent) -> None:
        """Apply one event now (whatever its time)."""
        saved = (self._batches, self._recs, self._rec_objects, self._evs, self._pos, self._n)
        self._batches = None
        self._set_batch([ev])
        try:
            self._run(math.inf)
        finally:
            (self._batches, self._recs, self._rec_objects, self._evs, self._pos,
             self._n) = saved

    def advance(self, now: float) -> None:
        """Run the RCU callbacks due by ``now`` (simulated time)."""
        if now > self.now:
            self.now = now
        self.caches.rcu_advance(self.now)
        self._next_tick = self.now + self.rcu_tick

    # ------------------------------------------------------------------ the loop

    def _run(self, until: float) -> int:
        """Apply the events due by ``until``, batch after batch; returns how many.

        Time is compared in trace time: ``_limit`` is the trace timestamp of the earlier
        of ``until`` and the next RCU tick, so an event costs one comparison, and
        ``_late`` does the rest when an event passes it."""
        self._until = until
        self._limit = -math.inf
        if self.t0 is not None:  # t0 is the first event's trace time once started
            self._late_limits(self.t0)
        done = 0
        while self._pos < self._n or self._next_batch():
            start = self._pos
            stopped = self._run_records() if self._evs is None else self._run_events()
            done += self._pos - start
            if stopped:
                break
        stats = self.stats
        stats.events += done
        if done:
            stats.first_ts = self.t0
            stats.last_ts = self._last_ts
            now = self._sim_now(self._last_ts)
            if now > self.now:
                self.now = now
        return done

    def _late_limits(self, t0: float) -> None:
        speed = self.speed
        self._ts_until = t0 + (self._until - self.start) * speed
        self._ts_tick = t0 + (self._next_tick - self.start) * speed
        self._limit = min(self._ts_until, self._ts_tick)

    def _late(self, ts: float) -> bool:
        """An event at trace time ``ts`` passed ``_limit``: start the clock at the first
        event, run the RCU callbacks of a tick it reached; True if it is due after
        ``until`` (it stays for the next call)."""
        t0 = self.t0
        if t0 is None:
            t0 = self.t0 = ts
            self._late_limits(ts)
        if ts > self._ts_until:
            return True
        if ts >= self._ts_tick:
            self.now = now = self._sim_now(ts)
            self.caches.rcu_advance(now)
            self._next_tick = now + self.rcu_tick
            self._ts_tick = t0 + (self._next_tick - self.start) * self.speed
        self._limit = min(self._ts_until, self._ts_tick)
        return False

    def _run_records(self) -> bool:
        """The batch's records from ``_pos`` (the C scanner's: ``RECORD_*`` in
        sim/ftrace.py), each applied as ``_event`` applies its tuple; True if one is due
        after ``until``."""
        recs = self._recs
        tails = self._tails
        tail_cache = self._tail_cache
        ncpu = self.ncpu
        limit = self._limit
        i: i64 = self._pos
        n: i64 = self._n
        stopped = False
        last = self._last_ts
        while i < n:
            off: i64 = i * RECORD_SIZE
            ts = read_f64_le(recs, off + RECORD_TS)
            if ts > limit:
                if self._late(ts):
                    stopped = True
                    break
                limit = self._limit
            last = ts
            kind_type = i64(read_i16_le(recs, off + RECORD_KIND))
            key: i64 = read_i64_le(recs, off + RECORD_KEY)
            i += 1
            if kind_type >> 8:  # an event the Python parser read: its tuple
                self._event(self._rec_objects[key])
                continue
            kind = kind_type & 0xFF
            tcpu = i64(read_i16_le(recs, off + RECORD_CPU))
            cpu = tcpu % ncpu if tcpu >= ncpu else tcpu
            tail = i64(read_i32_le(recs, off + RECORD_TAIL))
            if kind == 0:  # EV_CACHE_ALLOC
                index = tail_cache[tail]
                if index < 0:
                    index = self._cache_index_of(tails[tail][0], tails[tail][2])
                    tail_cache[tail] = index
                self._cache_alloc(index, tcpu, cpu, key, None, 0,
                                  read_i64_le(recs, off + RECORD_LINENO))
            elif kind == 1:  # EV_CACHE_FREE
                self._cache_free(key, None, cpu, ts, tails[tail][0], False)
            elif kind == 4:  # EV_PAGE_ALLOC
                t = tails[tail]
                self._page_alloc(key, t[0], t[1], t[2], False, tcpu, cpu,
                                 read_i64_le(recs, off + RECORD_LINENO))
            elif kind == 5:  # EV_PAGE_FREE
                self._page_free_event(key, cpu)
            elif kind == 2:  # EV_KMALLOC
                t = tails[tail]
                self._kmalloc(t[2], t[3], t[4], tcpu, cpu, key, None,
                              read_i64_le(recs, off + RECORD_LINENO))
            elif kind == 3:  # EV_KFREE
                self._cache_free(key, None, cpu, ts, None, True)
            elif kind == 6:  # EV_PAGE_FREE_BATCHED
                self._page_free_batched(key, cpu)
        self._pos = i
        self._last_ts = last
        return stopped

    def _run_events(self) -> bool:
        """``_run_records`` for a batch of event tuples."""
        evs = self._evs
        assert evs is not None
        limit = self._limit
        i = self._pos
        n = self._n
        stopped = False
        last = self._last_ts
        while i < n:
            ev = evs[i]
            ts: float = ev[0]
            if ts > limit:
                if self._late(ts):
                    stopped = True
                    break
                limit = self._limit
            last = ts
            i += 1
            self._event(ev)
        self._pos = i
        self._last_ts = last
        return stopped

    def _event(self, ev: tuple) -> None:
        """Apply one event tuple (laid out as TraceEvent)."""
        kind = ev[2]
        tcpu = ev[1]
        ncpu = self.ncpu
        cpu = tcpu % ncpu if tcpu >= ncpu else tcpu
        lineno = ev[12] if len(ev) > 12 else 0  # 0: an event made by hand
        if kind < 4:
            key, text = _ptr_key(ev[3])
            if kind == 0:  # EV_CACHE_ALLOC
                self._cache_alloc(self._cache_index_of(ev[5], ev[7]), tcpu, cpu, key, text,
                                  0, lineno)
            elif kind == 1:  # EV_CACHE_FREE
                self._cache_free(key, text, cpu, ev[0], ev[5], False)
            elif kind == 2:  # EV_KMALLOC
                self._kmalloc(ev[7], ev[8], ev[11], tcpu, cpu, key, text, lineno)
            else:  # EV_KFREE
                self._cache_free(key, text, cpu, ev[0], None, True)
        elif kind == 4:  # EV_PAGE_ALLOC
            self._page_alloc(ev[4], ev[9], ev[10], ev[8], ev[3] == "null", tcpu, cpu, lineno)
        elif kind == 5:  # EV_PAGE_FREE
            self._page_free_event(ev[4], cpu)
        elif kind == 6:  # EV_PAGE_FREE_BATCHED
            self._page_free_batched(ev[4], cpu)

    # ------------------------------------------------------------------ the events

    def _cache_index_of(self, name: str | None, size: int) -> int:
        """The id (``SlabCache.cache_id``) of the cache a ``kmem_cache_alloc`` of
        ``name`` (of ``size`` bytes) allocates from: the cache of that name, made if need
        be; without a name, the one of that size (``_cache_for_size``)."""
        cache = self._cache_of.get(name) if name is not None else None
        if cache is None:
            cache = (self.cache_named(name, size) if name is not None
                     else self._cache_for_size(size))
        return cache.cache_id

    def _cache_alloc(self, index: int, tcpu: int, cpu: int, key: i64, text: str | None,
                     kind: int, lineno: int) -> None:
        """An object of cache ``index`` (its id) for the pointer ``key`` (or ``text``)."""
        cache = self.caches.by_id(index)
        if self._pending_slab:
            self._attribute(tcpu, cache)
        oid = cache.alloc_id(cpu)
        if oid < 0:
            self._alloc_failed(cache, cpu, key, text, kind, lineno)
            return
        value: i64 = (index << 32) | oid
        if text is None:
            table = self._objects if key >= 0 else self._objects_high
            k: i64 = key & _LOW63
            old = table.put(k, value)
        else:
            old = self._objects_text.get(text, -1)
            self._objects_text[text] = value
        if old >= 0:  # a pointer still live allocated again: the kernel freed it untraced
            self._realloc_free(old, cpu)

    def _object_pop(self, key: i64, text: str | None) -> i64:
        """The object (cache id << 32 | object id) the pointer names, let go; -1 if
        none."""
        if text is not None:
            return self._objects_text.pop(text, -1)
        if key >= 0:
            return self._objects.pop(key)
        return self._objects_high.pop(key & _LOW63)

    def _cache_free(self, key: i64, text: str | None, cpu: int, ts: float,
                    name: str | None, kfree: bool) -> None:
        """``kmem_cache_free`` of a ``name`` object, or ``kfree``, of the pointer."""
        value = self._object_pop(key, text)
        if value < 0:
            if kfree:
                self._kfree_other(key, text, cpu)
                return
            ptr = _ptr_of(key, text)
            if self._failed and ptr in self._failed:
                self._failed.discard(ptr)
                self.stats.frees_of_failed_allocs += 1
            else:
                self._unknown_free(name, cpu, self._sim_now(ts))
            return
        cache = self.caches.by_id(value >> 32)
        oid = value & 0xFFFFFFFF
        try:
            if self._queue_rcu and cache.rcu_free:
                cache.free_rcu(oid, cpu, self._sim_now(ts))
                self.stats.rcu_queued += 1
            else:
                cache.free(oid, cpu)
        except BadSlabFree:
            self.stats.bad_frees += 1

    def _alloc_page(self, order: int, gfp: int, cpu: int, owner: int | None) -> int:
        """A simulated page for the trace's: ``page_allocator``, or the zone's fast path
        called directly by default; -1 for none."""
        if self._zone_pages:
            return self._zone_alloc_pfn(order, gfp, cpu, owner)
        got = self.page_alloc(order, gfp, cpu, owner)
        return -1 if got is None else got

    def _free_sim_page(self, sim: int, order: int, cpu: int) -> None:
        """``page_free``, or the zone's ``free`` called directly by default."""
        if self._zone_frees:
            self.zone.free(sim, order, cpu)
        else:
            self.page_free(sim, order, cpu)

    def _sim_now(self, ts: float) -> float:
        """Simulated time of a trace timestamp, once the clock has started (as the loop
        computes it: ``sim_time`` divides by the speed, and its last bit may differ)."""
        t0 = self.t0 if self.t0 is not None else 0.0
        return self.start + (ts - t0) * (1.0 / self.speed)

    def _page_alloc(self, pfn: int, order: int, mt: int, gfp: int, null: bool, tcpu: int,
                    cpu: int, lineno: int) -> None:
        """``mm_page_alloc``."""
        stats = self.stats
        if null:
            stats.trace_page_alloc_failures += 1
        elif (gfp & SLAB_GFP_SIGNATURE) == SLAB_GFP_SIGNATURE and mt != 1:
            # A slab page (not MIGRATE_MOVABLE): the slab model allocates its own.
            stats.slab_page_allocs += 1
            self.slab_pages[pfn] = order
            lst = self._pending_slab.get(tcpu)
            if lst is None:
                self._pending_slab[tcpu] = [(order, mt)]
            else:
                lst.append((order, mt))
        else:
            pages = self.pages
            if pfn in pages:
                stats.page_reallocs += 1
                self._free_page(pfn, cpu)
            sim = self._alloc_page(order, gfp, cpu, _OWNER_OF_MT[mt] if mt < 3 else None)
            if sim < 0:
                self._page_alloc_failed(4, lineno, order, mt)
                self._failed_pages.add(pfn)  # its free frees nothing
                self._last_page[tcpu] = (pfn, order, gfp)  # a large kmalloc's?
                return
            if self._failed_pages:
                self._failed_pages.discard(pfn)
            stats.page_allocs += 1
            pages[pfn] = (sim, order)
            self._kernel_pfn[sim] = pfn
            self._last_page[tcpu] = (pfn, order, gfp)

    def _page_free_event(self, pfn: int, cpu: int) -> None:
        """``mm_page_free``."""
        stats = self.stats
        entry_p = self.pages.pop(pfn, None)
        if entry_p is not None:
            sim, order = entry_p
            del self._kernel_pfn[sim]
            self._adopted.discard(pfn)
            self._free_sim_page(sim, order, cpu)
            stats.page_frees += 1
        elif self.slab_pages.pop(pfn, None) is not None:
            stats.slab_page_frees += 1
        elif self._batched_freed and pfn in self._batched_freed:
            self._batched_freed.discard(pfn)
            stats.page_free_duplicates += 1
        elif self._failed_pages and pfn in self._failed_pages:
            self._failed_pages.discard(pfn)
            stats.frees_of_failed_page_allocs += 1
        else:
            stats.unknown_page_frees += 1

    def _page_free_batched(self, pfn: int, cpu: int) -> None:
        """``mm_page_free_batched``."""
        self.stats.page_free_batched += 1
        if pfn in self.pages:
            self._free_page(pfn, cpu)
            self._batched_freed.add(pfn)

    # ------------------------------------------------------------------ slow paths

    def _alloc_failed(self, cache: SlabCache, cpu: int, key: i64, text: str | None,
                      kind: int, lineno: int) -> None:
        """The simulated cache found no memory for an object the kernel allocated: its
        free will free nothing (rather than an object from the initial population)."""
        stats = self.stats
        stats.object_alloc_failures += 1
        by_cache = stats.object_alloc_failures_by_cache
        by_cache[cache.name] = by_cache.get(cache.name, 0) + 1
        if stats.first_alloc_failure is None:
            # allocate_slab's last attempt: s->min, the cache's page type.
            self._note_first_failure(kind, lineno, cache.min_order, cache.migratetype,
                                     cache.name)
        old = self._object_pop(key, text)
        if old >= 0:  # a live pointer allocated again: its free was missing
            self._realloc_free(old, cpu)
        self._failed.add(_ptr_of(key, text))

    def _page_alloc_failed(self, kind: int, lineno: int, order: int, mt: int) -> None:
        """The simulated zone refused a page the kernel allocated (``mm_page_alloc``, or
        a large kmalloc's own): its free will free nothing."""
        stats = self.stats
        stats.page_alloc_failures += 1
        by_order = stats.page_alloc_failures_by_order
        key = str(order)
        by_order[key] = by_order.get(key, 0) + 1
        by_mt = stats.page_alloc_failures_by_migratetype
        name = migratetype_name(mt)
        by_mt[name] = by_mt.get(name, 0) + 1
        if stats.first_alloc_failure is None:
            self._note_first_failure(kind, lineno, order, mt, None)

    def _note_first_failure(self, kind: int, lineno: int, order: int, mt: int,
                            cache: str | None) -> None:
        """The first failure's trace line and the zone as the failed attempt left it
        (a failed allocation changes no free list)."""
        zone: Zone
        name = self.zone_name
        if self.node is not None:
            # The zone the request's zonelist starts at (ALLOC_NOFRAGMENT aside, where
            # it ran out first); the others' free pages besides.
            zone = self.node.zonelist[0]
            name = ZONE_NAMES[zone.zone_idx]
        elif isinstance(self.zone, Zone):
            zone = self.zone
        else:  # a node of one zone
            zone = self.zone.zonelist[0]
        self.stats.first_alloc_failure = {
            "line": lineno,  # 0: an event made by hand
            "event": KIND_NAMES[kind],
            "cache": cache,
            "order": order,
            "migratetype": migratetype_name(mt),
            "zone": name,
            "free_pages": zone.nr_free_pages,  # NR_FREE_PAGES: what the watermarks see
            "free_highatomic": zone.nr_free_highatomic,
            "watermark_min": zone.wmark_pages(WMARK_MIN),  # the boost included
            "watermark_low": zone.wmark_pages(WMARK_LOW),
            "watermark_high": zone.wmark_pages(WMARK_HIGH),
            "watermark_boost": zone.watermark_boost,
            "nr_free": list(zone.nr_free),  # the zone's buddyinfo line
        }

    def _realloc_free(self, old: i64, cpu: int) -> None:
        """Free the object (cache id << 32 | object id) of a pointer allocated again."""
        self.stats.reallocs += 1
        try:
            self.caches.by_id(old >> 32).free(old & 0xFFFFFFFF, cpu)
        except BadSlabFree:
            self.stats.bad_frees += 1

    def _unknown_free(self, name: str | None, cpu: int, now: float) -> None:
        """A free of an object from before the trace: take one from the population."""
        stats = self.stats
        pool = self._initial.get(name) if name is not None else None
        if not pool:
            stats.unknown_frees_unmatched += 1
            return
        i = self.rng.randrange(len(pool))
        pool[i], pool[-1] = pool[-1], pool[i]
        oid = pool.pop()
        cache = self.cache_named(name)  # type: ignore[arg-type]
        stats.unknown_frees += 1
        self.unknown_frees_by_cache[name] = self.unknown_frees_by_cache.get(  # type: ignore[index]
            name, 0) + 1  # type: ignore[arg-type]
        try:
            if self._queue_rcu and cache.rcu_free:
                cache.free_rcu(oid, cpu, now)
                stats.rcu_queued += 1
            else:
                cache.free(oid, cpu)
        except BadSlabFree:
            stats.bad_frees += 1

    def _kfree_other(self, key: i64, text: str | None, cpu: int) -> None:
        """kfree of no traced object: NULL, a large kmalloc, or one from before."""
        stats = self.stats
        if key == 0 and text is None:  # NULL_PTR
            stats.kfree_null += 1
            return
        ptr = _ptr_of(key, text)
        big = self.large.pop(ptr, None)
        if big is None:
            if self._failed and ptr in self._failed:
                self._failed.discard(ptr)
                stats.frees_of_failed_allocs += 1
            else:
                stats.unknown_frees_unmatched += 1
            return
        stats.large_kfrees += 1
        kernel, sim, order = big
        if kernel < 0:
            self._free_sim_page(sim, order, cpu)
        # An adopted page is freed by the mm_page_free that follows the kfree.

    def _kmalloc(self, size: int, gfp: int, accounted: bool, tcpu: int, cpu: int, key: i64,
                 text: str | None, lineno: int) -> None:
        """``kmalloc`` of ``size`` (``bytes_alloc``) bytes for the pointer."""
        stats = self.stats
        cache = self._kmalloc_cache(size, gfp, accounted)
        if cache is not None:
            self._cache_alloc(cache.cache_id, tcpu, cpu, key, text, 2, lineno)
            return
        # __kmalloc_large_node: get_order(size) pages, gfp | __GFP_COMP.
        stats.large_kmallocs += 1
        ptr = _ptr_of(key, text)
        order = get_order(size, self.zone.page_size)
        last = self._last_page.get(tcpu)
        if (last is not None and last[1] == order and last[0] in self.pages
                and last[0] not in self._adopted and last[2] & _GFP_COMP):
            self._adopted.add(last[0])
            stats.large_kmallocs_adopted += 1
            sim, _ = self.pages[last[0]]
            self.large[ptr] = (last[0], sim, order)
            return
        if (last is not None and last[1] == order and last[2] & _GFP_COMP
                and self._failed_pages and last[0] in self._failed_pages):
            # Its page is the mm_page_alloc just before, which the simulated zone
            # refused (and counted): the kernel allocated one page, not two.
            del self._last_page[tcpu]
            stats.large_kmallocs_adopted += 1
            self._failed.add(ptr)  # its kfree frees nothing
            return
        gfp = gfp | _GFP_COMP
        mt = gfp_migratetype(gfp)
        new = self._alloc_page(order, gfp, cpu, _OWNER_OF_MT[mt])
        if new < 0:
            self._page_alloc_failed(2, lineno, order, mt)
            self._failed.add(ptr)  # its kfree frees nothing
            return
        self.large[ptr] = (-1, new, order)

    def _free_page(self, pfn: int, cpu: int) -> None:
        sim, order = self.pages.pop(pfn)
        del self._kernel_pfn[sim]
        self._adopted.discard(pfn)
        try:
            self._free_sim_page(sim, order, cpu)
        except BadFree:
            self.stats.bad_frees += 1
            return
        self.stats.page_frees += 1

    def _attribute(self, trace_cpu: int, cache: SlabCache) -> None:
        """Give waiting slab pages of this CPU to ``cache`` if its slabs are of that
        order (or its fallback order) and page type."""
        lst = self._pending_slab.get(trace_cpu)
        if not lst:
            return
        keep = []
        for order, mt in lst:
            if mt == cache.migratetype and order in (cache.order, cache.min_order):
                self.trace_slab_pages[cache.name] = self.trace_slab_pages.get(cache.name, 0) + 1
                key = f"order-{order} {MIGRATETYPE_NAMES[mt]}"
                by_type = self.stats.slab_pages_by_type
                by_type[key] = by_type.get(key, 0) + 1
            else:
                keep.append((order, mt))
        if len(keep) > 8:  # pages no allocation claimed
            self.stats.slab_pages_unattributed += len(keep) - 8
            keep = keep[-8:]
        if keep:
            self._pending_slab[trace_cpu] = keep
        else:
            del self._pending_slab[trace_cpu]

    # ------------------------------------------------------------------ engine hooks

    def migrate_page(self, old: int, new: int, order: int) -> bool:
        """Compaction moved the simulated block ``old`` to ``new``
        (``zone.on_migrate``): follow it if it is one of the trace's pages."""
        kernel = self._kernel_pfn.pop(old, None)
        if kernel is None:
            return False
        self._kernel_pfn[new] = kernel
        self.pages[kernel] = (new, order)
        for ptr, (k, sim, o) in list(self.large.items()):
            if sim == old:
                self.large[ptr] = (k, new, o)
        self.stats.pages_migrated += 1
        return True

    # ------------------------------------------------------------------ results

    @property
    def objects(self) -> dict[str, tuple[SlabCache, int]]:
        """The objects the trace holds (allocated in the trace, not freed): pointer as
        the trace printed it -> (cache, object id)."""
        values: dict[str, int] = {}
        for table, top in ((self._objects, 0), (self._objects_high, 1 << 63)):
            held = table.keys()
            for key in held:
                values[format(key | top, "016x")] = table.get(key)
        values.update(self._objects_text)
        return {text: (self.caches.by_id(value >> 32), value & 0xFFFFFFFF)
                for text, value in values.items()}

    def held_objects(self, cache: SlabCache) -> int:
        """Objects of ``cache`` the trace holds (allocated in the trace, not freed)."""
        return sum(1 for c, _ in self.objects.values() if c is cache)

    def cache_stats(self) -> dict[str, CacheReplayStats]:
        """Per cache: what the replay did to it, and how it stands now."""
        out = {}
        for cache in self.caches:
            base = self._base.get(cache.name, (0, 0, 0, 0))
            st = cache.stats
            entry = cache.slabinfo_entry()
            out[cache.name] = CacheReplayStats(
                name=cache.name,
                allocs=cache.nr_allocs - base[2],
                frees=cache.nr_frees - base[3],
                unknown_frees=self.unknown_frees_by_cache.get(cache.name, 0),
                slabs_allocated=st.alloc_slab - base[0],
                slabs_freed=st.free_slab - base[1],
                trace_slab_pages=self.trace_slab_pages.get(cache.name, 0),
                initial_objects=self._initial_count.get(cache.name, 0),
                live_objects=cache.nr_live,
                nr_slabs=cache.nr_slabs,
                active_objs=entry.active_objs,
                num_objs=entry.num_objs,
            )
        return out


# --------------------------------------------------------------------------- files


@dataclass
class ReplayResult:
    """What :func:`replay_file` built and did."""

    zone: Zone | Node  # the node when it has several zones
    caches: SlabCaches
    replayer: Replayer
    population: InitialPopulation | None
    parse: ParseStats
    wall_s: float  # parse + replay, set-up excluded
    setup_s: float

    @property
    def stats(self) -> ReplayStats:
        return self.replayer.stats

    @property
    def realtime_factor(self) -> float:
        """Trace span / wall time: above 1 is faster than real time."""
        return self.parse.span_s / self.wall_s if self.wall_s > 0 else math.inf

    def summary(self) -> dict[str, Any]:
        """The ``trace.*`` and per-cache numbers of the issue's summary.json."""
        return {
            "trace": {
                "events": self.parse.events,
                "bad_lines": self.parse.bad_lines,
                "bad_lines_by_kind": dict(sorted(self.parse.bad_by_kind.items())),
                "first_bad_lines": self.parse.as_dict()["first_bad_lines"],
                "unknown_frees": self.stats.unknown_frees,
                "alloc_failures": self.stats.failure_summary(),
                "span_s": self.parse.span_s,
                "complete": self.parse.complete,
                "error": self.parse.error,
                "replay": self.stats.as_dict(),
            },
            "wall_s": self.wall_s,
            "caches": {name: c.as_dict() for name, c in self.replayer.cache_stats().items()},
        }


def _read(source: str | os.PathLike[str] | None) -> tuple[str, str] | None:
    if source is None:
        return None
    name = os.fspath(source)
    try:
        with open(name, encoding="utf-8", errors="replace") as f:
            return f.read(), name
    except OSError as err:
        raise FragsimError(f"{name}: cannot read: {err.strerror}") from None


@dataclass
class ReplaySetup:
    """A machine built from snapshots, and the replayer that will drive it."""

    zone: Zone | Node  # the node when it has several zones
    caches: SlabCaches
    population: InitialPopulation | None
    replayer: Replayer
    setup_s: float
    zone_name: str = "Normal"  # the snapshot's zone (buddyinfo's name), else "Normal"
    node: Node | None = None  # a full snapshot's node of every zone (``zone`` is it then)

    @property
    def zones(self) -> list[tuple[str, Zone]]:
        """(name, zone) in pfn order: the snapshot's zones, or the one zone."""
        if self.node is None:
            return [(self.zone_name, self.zone)]  # type: ignore[list-item]
        return [(ZONE_NAMES[z.zone_idx], z)
                for z in sorted(self.node.zonelist, key=lambda z: z.zone_start_pfn)]


def build_replay(
    *,
    slabinfo: str | os.PathLike[str] | list[SlabinfoEntry] | None = None,
    buddyinfo: str | os.PathLike[str] | list[ZoneFree] | None = None,
    pagetypeinfo: str | os.PathLike[str] | Pagetypeinfo | None = None,
    zoneinfo: str | os.PathLike[str] | None = None,
    zone_name: str | None = None,
    nr_pages: int | None = None,
    speed: float = 1.0,
    occupancy: str = "even",
    rcu_frees: str = "trace",
    seed: int = 0,
    zone_options: dict[str, Any] | None = None,
) -> ReplaySetup:
    """The zone (synthesized from buddyinfo, pagetypeinfo and zoneinfo's managed pages,
    or an empty one of ``nr_pages``, default 1 GiB), the caches (from slabinfo), and a
    Replayer over them."""
    t_setup = time.perf_counter()
    options = dict(zone_options or {})
    entries = slabinfo if isinstance(slabinfo, list) else None
    if entries is None and slabinfo is not None:
        text, name = _read(slabinfo)  # type: ignore[misc, arg-type]
        entries = parse_slabinfo(text, name)
    filler = None
    picked = "Normal"
    if buddyinfo is not None and zoneinfo is not None and nr_pages is None \
            and zone_name is None and not isinstance(buddyinfo, list):
        # A full snapshot: every zone, as `fragsim run`'s machine.from builds it.
        snap = read_machine_snapshot_files(
            buddyinfo, zoneinfo,  # type: ignore[arg-type]
            pagetypeinfo if not isinstance(pagetypeinfo, Pagetypeinfo) else None)
        fillers: dict[int, FillerPool] = {}
        node = node_from_snapshots(snap.buddyinfo, snap.zoneinfo, snap.pagetypeinfo,
                                   sources=(snap.sources["buddyinfo"],
                                            snap.sources["zoneinfo"]),
                                   spread=seed, fillers=fillers, **options)
        apply_zoneinfo_watermarks(node, snap.zoneinfo)
        snap.slabinfo = entries
        zone = node if node.multi_zone else node.zonelist[0]
        for z in node.zonelist:
            z.on_wakeup_kswapd = functools.partial(_kswapd_finds_nothing_to_reclaim, z)
        boxed: list[Replayer] = []
        caches = SlabCaches(zone, clock=lambda: boxed[0].now if boxed else 0.0)
        population = start_from_snapshot(node, caches, snap, fillers, occupancy)
        replayer = Replayer(zone, caches, population=population, speed=speed,
                            rcu_frees=rcu_frees, seed=seed, zone_name="Normal", node=node)
        boxed.append(replayer)
        return ReplaySetup(zone, caches, population, replayer,
                           time.perf_counter() - t_setup, "Normal", node)
    if buddyinfo is not None:
        if isinstance(buddyinfo, list):
            rows = buddyinfo
        else:
            text, name = _read(buddyinfo)  # type: ignore[misc]
            rows = parse_buddyinfo(text, name)
        ptinfo = pagetypeinfo if isinstance(pagetypeinfo, Pagetypeinfo) else None
        if ptinfo is None and pagetypeinfo is not None:
            text, name = _read(pagetypeinfo)  # type: ignore[misc, arg-type]
            ptinfo = parse_pagetypeinfo(text, name)
        managed = None
        if zoneinfo is not None:
            text, name = _read(zoneinfo)  # type: ignore[misc]
            managed = {z.zone: z.managed for z in parse_zoneinfo(text, name)}
        picked_zone = pick_zone(rows, ptinfo, zone_name, managed_pages=managed)
        picked = picked_zone.name
        zone, filler = synthesize_zone(picked_zone.nr_free,
                                       nr_pages or picked_zone.nr_pages,
                                       free_by_type=picked_zone.free_by_type,
                                       pageblock_counts=picked_zone.pageblock_counts,
                                       **options)
    else:
        zone = Zone(nr_pages or (1 << 18), **options)
    zone.on_wakeup_kswapd = functools.partial(_kswapd_finds_nothing_to_reclaim, zone)
    clock_box: list[Replayer] = []
    caches = SlabCaches(zone, clock=lambda: clock_box[0].now if clock_box else 0.0)
    population = None
    if entries is not None:
        population = populate_from_slabinfo(caches, entries, occupancy, filler=filler)
    if filler is not None:
        filler.finish()
    replayer = Replayer(zone, caches, population=population, speed=speed,
                        rcu_frees=rcu_frees, seed=seed, zone_name=picked)
    clock_box.append(replayer)
    return ReplaySetup(zone, caches, population, replayer, time.perf_counter() - t_setup,
                       picked)


def _kswapd_finds_nothing_to_reclaim(zone: Zone, order: int) -> None:
    """kswapd on the replay's machine: rmqueue wakes it after a fallback boosted the
    watermarks (ZONE_BOOSTED_WATERMARK); ``balance_pgdat`` reclaims the boost, finds
    nothing (the trace holds every object), and takes the boost off at its end
    (``zone->watermark_boost -= min(zone->watermark_boost, zone_boosts[i])``). At once:
    the replay has no clock for kswapd's run."""
    zone.watermark_boost = 0


def replay_file(path: str | os.PathLike[str], **options: Any) -> ReplayResult:
    """Build the machine from snapshots (:func:`build_replay`'s options), then stream
    and replay the trace at ``path``. Set-up time is kept apart from the replay's."""
    setup = build_replay(**options)
    reader = TraceReader(path)
    t0 = time.perf_counter()
    setup.replayer.feed(reader)
    setup.replayer.run()
    wall = time.perf_counter() - t0
    return ReplayResult(setup.zone, setup.caches, setup.replayer, setup.population,
                        reader.stats, wall, setup.setup_s)
