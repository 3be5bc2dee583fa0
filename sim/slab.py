"""SLUB slab caches, following Linux 6.18 mm/slub.c (and mm/shrinker.c, fs/dcache.c).

Source read: mm/slub.c as of 6.8/6.9 (``__put_partials``, node-partial tracking in
PG_workingset; the newest copy available here), which is the CPU-slab + per-CPU-partial
design that 6.18 still uses for every cache without sheaves. 6.10 restructured the
``get_partial_node`` loop around ``slub_get_cpu_partial()`` with the same behaviour.
Checked function by function:

- Geometry: ``calculate_order`` with ``calc_slab_order`` (leftover 1/16 -> 1/8 -> 1/4 ->
  1/2 from the min_objects order up to ``slub_max_order`` = PAGE_ALLOC_COSTLY_ORDER, then
  ``get_order(size)``), ``order_objects``, ``oo_make``, ``s->min = get_order(size)``,
  ``kmem_cache_open`` (``min_partial = clamp(ilog2(size) / 2, MIN_PARTIAL, MAX_PARTIAL)``),
  ``set_cpu_partial`` + ``slub_set_cpu_partial`` (``cpu_partial_slabs =
  DIV_ROUND_UP(nr_objects * 2, objects_per_slab)``), and ``calculate_sizes`` /
  ``calculate_alignment`` for the bytes per object (:func:`slab_size`).
- Allocation: ``___slab_alloc``: the CPU slab, then ``slub_percpu_partial``, then
  ``get_partial_node`` (the first node-partial slab becomes the CPU slab and up to
  ``cpu_partial_slabs / 2 + 1`` more move to the CPU partial list), then ``new_slab`` /
  ``allocate_slab`` (first at the cache's order with ``__GFP_NORETRY`` and, when that order
  is above ``s->min``, ``__GFP_RECLAIM`` stripped; then at ``s->min`` with the normal flags).
  A CPU slab whose freelist runs dry leaves every list (``get_freelist`` -> full).
- Free: ``do_slab_free`` / ``__slab_free``: a free to a frozen (CPU) slab does no list
  work; a full slab goes to the freeing CPU's partial list (``put_cpu_partial`` with drain:
  a list already holding ``cpu_partial_slabs`` slabs is moved to the node list by
  ``__put_partials``, tail, empty slabs discarded while ``nr_partial >= min_partial``); a
  slab on the CPU partial list is left alone; a node-partial slab that becomes empty is
  discarded only if ``nr_partial >= min_partial`` (``discard_slab``). ``free_slab`` defers
  the page free by a grace period for SLAB_TYPESAFE_BY_RCU caches.
- ``flush_all`` / ``deactivate_slab`` (:meth:`SlabCache.flush_cpu_slabs`).
- ``get_slabinfo``: num_objs = total objects; active_objs = num_objs minus the free objects
  of node-partial slabs only (``count_partial(n, count_free)``); active_slabs = num_slabs.
- Shrinker: ``do_shrink_slab`` (mm/shrinker.c: ``delta = (freeable >> priority) * 4 /
  seeks``, ``total_scan = min(nr_deferred >> priority + delta, 2 * freeable)``, batches of
  SHRINK_BATCH = 128, the ``nr_deferred`` carry-over), ``vfs_pressure_ratio`` and a
  ``list_lru`` walk with the isolate rules of ``dentry_lru_isolate`` /
  ``inode_lru_isolate``: in-use entries are dropped from the LRU, referenced entries are
  rotated with the bit cleared, the rest are freed.

Where this departs from the kernel, and why:

- One NUMA node: one ``kmem_cache_node``, no ``get_any_partial``, no node mismatch.
- One free list per slab. The kernel splits a CPU slab's free objects between the
  lockless ``c->freelist`` and ``slab->freelist`` (remote frees); only the total matters
  for occupancy, so they are merged. ``deactivate_slab`` therefore always uses the head.
- Objects are integer ids, recycled LIFO, not addresses: an object's slab is found
  through a per-id table (the kernel's ``virt_to_slab`` of the address). Slot order
  inside a slab is LIFO as the kernel's freelist, and like it threaded through the free
  slots themselves (``Slab.slot_obj``, the free pointer's place);
  CONFIG_SLAB_FREELIST_RANDOM's shuffle is not modelled.
- No debug caches (no full list, no ``alloc_single_from_*``), no KASAN/KFENCE, no memcg
  accounting, no pfmemalloc. 6.18's opt-in per-CPU sheaves (a few caches such as
  maple_node and vm_area_struct) are not modelled: those caches behave as all others.
- Slab pages come from ``Zone.alloc`` with the fast path's alloc_flags. The slow path
  (the engine's) is reached through ``page_allocator``, which is told whether the attempt
  is the ``__GFP_NORETRY`` first one.
- RCU: one FIFO queue per cache with a fixed grace period, applied when the engine calls
  :meth:`SlabCache.rcu_advance`; no per-CPU callback lists, no ``blimit``.
- The list_lru is one list per cache (not per node / memcg). ``LRU_SKIP`` (lock
  contention; here: an object held by the defragmenter) rotates the entry instead, so a
  walk always progresses.
- Not kernel at all: ``hold``/``release``/``move_object``/``freeze``/``unfreeze`` serve
  sim/defrag.py, the historical slab-defragmentation protocol that was never merged.

The module is plain synchronous Python; time enters only through ``rcu_advance(now)`` and
``clock`` (a callable the engine points at ``env.now``).
"""

from __future__ import annotations

import fnmatch
import math
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final, Protocol

from librt.vecs import append as vec_append
from librt.vecs import pop as vec_pop
from librt.vecs import vec
from mypy_extensions import i16, i32, u8

from sim.buddy import (
    ALLOC_KSWAPD,
    ALLOC_WMARK_LOW,
    OWNER_SLAB,
    OWNER_SLAB_MAX,
    PAGE_ALLOC_COSTLY_ORDER,
    PageSpace,
)
from sim.migratetype import MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE
from sim.native import mypyc_attr
from sim.procfs import SlabinfoEntry, format_slabinfo

if TYPE_CHECKING:
    from sim.config import CacheConfig
    from sim.metrics import SampleRow

PAGE_SIZE: Final = 4096
MAX_PAGE_ORDER: Final = 10
MAX_OBJS_PER_PAGE: Final = 32767  # slab->objects is 15 bits
MIN_PARTIAL: Final = 5
MAX_PARTIAL: Final = 10
SLUB_MAX_ORDER: Final = PAGE_ALLOC_COSTLY_ORDER  # slub_max_order default
SHRINK_BATCH: Final = 128
# A scan_objects that cannot scan now (super_cache_scan without __GFP_FS) returns it.
SHRINK_STOP: Final = -1
DEFAULT_SEEKS: Final = 2
# The real tmpfs trace frees dentries and inodes from rcu_do_batch 45-150 ms after the
# unlink; 100 ms is the middle of that range.
DEFAULT_RCU_GRACE: Final = 0.1

# Cache flags (include/linux/slab.h). Only the names are the kernel's; the bit values are
# local (6.18 numbers them through an enum that depends on the config).
SLAB_HWCACHE_ALIGN: Final = 1 << 0
SLAB_CACHE_DMA: Final = 1 << 1
SLAB_PANIC: Final = 1 << 2
SLAB_TYPESAFE_BY_RCU: Final = 1 << 3
SLAB_ACCOUNT: Final = 1 << 4
SLAB_RECLAIM_ACCOUNT: Final = 1 << 5

# Well-known caches: their kmem_cache_create flags, and whether their objects are freed
# through call_rcu (slabinfo carries neither). Verified against kernel sources:
# fs/dcache.c dcache_init, fs/inode.c inode_init, fs/ext4/super.c init_inodecache,
# fs/xfs/xfs_super.c xfs_init_caches, fs/proc/inode.c proc_init_kmemcache,
# lib/radix-tree.c radix_tree_init, fs/buffer.c buffer_init, fs/ext4/extents_status.c
# ext4_init_es, mm/shmem.c shmem_init_inodecache (SLAB_PANIC|SLAB_ACCOUNT only: the
# trace shows its slabs as migratetype 0), kernel/fork.c (sighand_cache),
# mm/slab_common.c new_kmalloc_cache (KMALLOC_RECLAIM adds SLAB_RECLAIM_ACCOUNT),
# security/security.c security_init (lsm_inode_cache: SLAB_PANIC alone, so unmovable
# and not memcg-accounted).
CACHE_FLAGS: dict[str, int] = {
    "dentry": SLAB_RECLAIM_ACCOUNT | SLAB_PANIC | SLAB_ACCOUNT,
    "inode_cache": SLAB_RECLAIM_ACCOUNT | SLAB_PANIC | SLAB_ACCOUNT,
    "ext4_inode_cache": SLAB_RECLAIM_ACCOUNT | SLAB_ACCOUNT,
    "xfs_inode": SLAB_HWCACHE_ALIGN | SLAB_RECLAIM_ACCOUNT | SLAB_ACCOUNT,
    "proc_inode_cache": SLAB_RECLAIM_ACCOUNT | SLAB_ACCOUNT | SLAB_PANIC,
    "radix_tree_node": SLAB_PANIC | SLAB_RECLAIM_ACCOUNT,
    "buffer_head": SLAB_RECLAIM_ACCOUNT | SLAB_PANIC,
    "extent_status": SLAB_RECLAIM_ACCOUNT,
    "shmem_inode_cache": SLAB_PANIC | SLAB_ACCOUNT,
    "lsm_inode_cache": SLAB_PANIC,
    "sighand_cache": SLAB_HWCACHE_ALIGN | SLAB_PANIC | SLAB_TYPESAFE_BY_RCU | SLAB_ACCOUNT,
    "anon_vma": SLAB_TYPESAFE_BY_RCU | SLAB_PANIC | SLAB_ACCOUNT,
}
CACHE_FLAG_PATTERNS: tuple[tuple[str, int], ...] = (
    ("kmalloc-rcl-*", SLAB_RECLAIM_ACCOUNT),
    ("kmalloc-cg-*", SLAB_ACCOUNT),
    ("dma-kmalloc-*", SLAB_CACHE_DMA),
)
# Caches whose objects the kernel frees with call_rcu (d_free, i_callback via
# destroy_inode / free_inode, radix_tree_node_free, security_inode_free's
# inode_free_by_rcu). extent_status is not one: ext4_es_free_extent frees at once.
RCU_FREED_CACHES = frozenset({
    "dentry", "inode_cache", "ext4_inode_cache", "xfs_inode", "proc_inode_cache",
    "shmem_inode_cache", "radix_tree_node", "lsm_inode_cache",
})


def cache_flags(name: str) -> int:
    """The kmem_cache_create flags of a well-known cache; 0 for an unknown one."""
    flags = CACHE_FLAGS.get(name)
    if flags is not None:
        return flags
    for pattern, pflags in CACHE_FLAG_PATTERNS:
        if fnmatch.fnmatchcase(name, pattern):
            return pflags
    return 0


def cache_migratetype(flags: int) -> int:
    """Page type of a cache's slabs: ``s->allocflags |= __GFP_RECLAIMABLE`` for
    SLAB_RECLAIM_ACCOUNT caches (calculate_sizes), UNMOVABLE for every other."""
    return MIGRATE_RECLAIMABLE if flags & SLAB_RECLAIM_ACCOUNT else MIGRATE_UNMOVABLE


# --------------------------------------------------------------------------- geometry


def get_order(size: int, page_size: int = PAGE_SIZE) -> int:
    """``get_order``: the smallest order whose block holds ``size`` bytes."""
    pages = -(-size // page_size)
    return max(0, (pages - 1).bit_length())


def order_objects(order: int, size: int, page_size: int = PAGE_SIZE) -> int:
    return (page_size << order) // size


def calc_slab_order(size: int, min_order: int, max_order: int, fract_leftover: int,
                    page_size: int = PAGE_SIZE) -> int:
    """``calc_slab_order``: the first order from min_order whose leftover is at most
    1/fract_leftover of the slab; max_order + 1 when none is."""
    order = min_order
    while order <= max_order:
        slab_bytes = page_size << order
        if slab_bytes % size <= slab_bytes // fract_leftover:
            break
        order += 1
    return order


def calculate_order(size: int, nr_cpus: int = 2, *, page_size: int = PAGE_SIZE,
                    slub_min_objects: int = 0, slub_min_order: int = 0,
                    slub_max_order: int = SLUB_MAX_ORDER,
                    max_page_order: int = MAX_PAGE_ORDER) -> int:
    """``calculate_order`` for an object slot of ``size`` bytes (``s->size``)."""
    if size < 1:
        raise ValueError(f"expected an object size of at least 1 byte, got {size}")
    min_objects = slub_min_objects
    if not min_objects:
        # num_present_cpus(), or nr_cpu_ids when that reads 1; here both are nr_cpus.
        min_objects = 4 * (nr_cpus.bit_length() + 1)  # 4 * (fls(nr_cpus) + 1)
    max_objects = max(order_objects(slub_max_order, size, page_size), 1)
    min_objects = min(min_objects, max_objects)
    min_order = max(slub_min_order, get_order(min_objects * size, page_size))
    if order_objects(min_order, size, page_size) > MAX_OBJS_PER_PAGE:
        return get_order(size * MAX_OBJS_PER_PAGE, page_size) - 1
    fraction = 16
    while fraction > 1:
        order = calc_slab_order(size, min_order, slub_max_order, fraction, page_size)
        if order <= slub_max_order:
            return order
        fraction //= 2
    order = get_order(size, page_size)
    if order <= max_page_order:
        return order
    raise ValueError(
        f"an object of {size} bytes needs order {order}, above the largest order "
        f"{max_page_order}"
    )


def slab_size(object_size: int, *, hwcache_align: bool = False, align: int = 8,
              freeptr_outside: bool = False, cache_line: int = 64) -> int:
    """``s->size`` from ``calculate_sizes`` / ``calculate_alignment`` without debugging.

    ``freeptr_outside`` is the case of SLAB_TYPESAFE_BY_RCU caches and caches with a
    constructor: the free pointer cannot overlay the object, so a word is added.
    /proc/slabinfo's objsize column already is this number.
    """
    if hwcache_align:
        ralign = cache_line
        while object_size <= ralign // 2:
            ralign //= 2
        align = max(align, ralign)
    align = max(align, 8)
    align = -(-align // 8) * 8
    size = -(-object_size // 8) * 8
    if freeptr_outside:
        size += 8
    return -(-size // align) * align


def min_partial_for(size: int) -> int:
    """``s->min_partial``: clamp(ilog2(size) / 2, MIN_PARTIAL, MAX_PARTIAL)."""
    return max(MIN_PARTIAL, min(MAX_PARTIAL, (size.bit_length() - 1) // 2))


def cpu_partial_objects(size: int, page_size: int = PAGE_SIZE) -> int:
    """``set_cpu_partial``: the per-CPU partial target in objects."""
    if size >= page_size:
        return 6
    if size >= 1024:
        return 24
    if size >= 256:
        return 52
    return 120


def cpu_partial_slabs_for(size: int, objects_per_slab: int, page_size: int = PAGE_SIZE) -> int:
    """``slub_set_cpu_partial``: slabs, assuming they are half full."""
    return -(-cpu_partial_objects(size, page_size) * 2 // objects_per_slab)


@dataclass(frozen=True)
class SlabGeometry:
    """Bytes per object slot (``s->size``), objects per slab and slab order (``s->oo``),
    and the fallback order that holds one object (``s->min``)."""

    size: int
    objects_per_slab: int
    order: int
    page_size: int = PAGE_SIZE
    min_order: int = field(init=False)
    min_objects: int = field(init=False)

    def __post_init__(self) -> None:
        size, order, per_slab = self.size, self.order, self.objects_per_slab
        if size < 1:
            raise ValueError(f"expected an object size of at least 1 byte, got {size}")
        if not 0 <= order <= MAX_PAGE_ORDER:
            raise ValueError(f"expected a slab order from 0 to {MAX_PAGE_ORDER}, got {order}")
        slab_bytes = self.page_size << order
        fits = slab_bytes // size
        if fits < 1:
            raise ValueError(
                f"a slab of order {order} ({slab_bytes} bytes) cannot hold one object of "
                f"{size} bytes"
            )
        if not 1 <= per_slab <= min(fits, MAX_OBJS_PER_PAGE):
            raise ValueError(
                f"expected 1 to {min(fits, MAX_OBJS_PER_PAGE)} objects of {size} bytes in a "
                f"slab of order {order} ({slab_bytes} bytes), got {per_slab}"
            )
        min_order = min(get_order(size, self.page_size), order)
        object.__setattr__(self, "min_order", min_order)
        object.__setattr__(
            self, "min_objects",
            min(order_objects(min_order, size, self.page_size), per_slab),
        )

    @property
    def pages_per_slab(self) -> int:
        return 1 << self.order

    @classmethod
    def derived(cls, size: int, nr_cpus: int = 2, *, page_size: int = PAGE_SIZE,
                slub_min_objects: int = 0, slub_min_order: int = 0,
                slub_max_order: int = SLUB_MAX_ORDER) -> SlabGeometry:
        """The geometry ``calculate_sizes`` gives a slot of ``size`` bytes."""
        order = calculate_order(size, nr_cpus, page_size=page_size,
                                slub_min_objects=slub_min_objects,
                                slub_min_order=slub_min_order, slub_max_order=slub_max_order)
        return cls(size, order_objects(order, size, page_size), order, page_size)

    @classmethod
    def from_slabinfo(cls, entry: SlabinfoEntry, page_size: int = PAGE_SIZE) -> SlabGeometry:
        """objsize, objperslab and pagesperslab of one /proc/slabinfo row."""
        pages = entry.pagesperslab
        if pages < 1 or pages & (pages - 1):
            raise ValueError(
                f"slabinfo {entry.name}: expected pagesperslab a power of two, got {pages}"
            )
        try:
            return cls(entry.objsize, entry.objperslab, pages.bit_length() - 1, page_size)
        except ValueError as err:
            raise ValueError(f"slabinfo {entry.name}: {err}") from None


# --------------------------------------------------------------------------- slabs

# Where a slab is (the kernel's frozen bit, PG_workingset and the list it is on).
W_CPU: Final = 0  # a CPU's active slab: frozen, on no list
W_CPU_PARTIAL: Final = 1  # on a CPU partial list: not frozen, exempt from list management
W_NODE_PARTIAL: Final = 2  # on the node partial list
W_FULL: Final = 3  # no free object, on no list
W_FROZEN: Final = 4  # frozen by the defragmenter: serves no allocation, objects only leave
W_FREED: Final = 5  # given back to the page allocator
WHERE_NAMES: Final = ("cpu", "cpu_partial", "node_partial", "full", "frozen", "freed")

# Object flag bits (one byte per object id).
F_LRU: Final = 0x01  # on the cache's LRU list (unused)
F_REFERENCED: Final = 0x02  # DCACHE_REFERENCED / I_REFERENCED: second chance in the shrinker
F_UNPUBLISHED: Final = 0x04  # allocated but not yet reachable (not in the tree / hash)
F_RCU: Final = 0x08  # freed through call_rcu, waiting for the grace period
F_HELD: Final = 0x10  # pinned by a defragmenter get()
F_DEFERRED: Final = 0x20  # freed while held: applied when the hold is dropped
F_GHOST: Final = 0x40  # the old copy of a moved object, waiting for an RCU grace period


@mypyc_attr(native_class=False)  # a subclass of a builtin type
class BadSlabFree(ValueError):
    """A free of an object id that is not allocated in this cache."""


@mypyc_attr(native_class=False)  # a subclass of a builtin type
class SlabCorrupt(AssertionError):
    """``SlabCache.check()`` found a broken invariant."""


# A new slab's slot array by its object count, as an array to copy (a buffer copy, where
# a vec built from a range makes and reads an int object per slot).
_SLOT_LISTS: Final[dict[int, array]] = {}


def _slot_list(objects: int) -> array:
    """A new slab's ``slot_obj``: every slot free, each linked to the next (the lowest
    handed out first). A free slot's entry is its link to the next free one, ``n`` as
    ``-n - 2``: below 0, and -1 (next -1) ends the list; ``-entry - 2`` reads it back."""
    slots = _SLOT_LISTS.get(objects)
    if slots is None:
        slots = array("i", [-s - 3 for s in range(objects)])  # slot s links to s + 1
        if objects:
            slots[-1] = -1  # the last ends the list
        _SLOT_LISTS[objects] = slots
    return slots


class Slab:
    """``struct slab``: one slab page (block of 2**order pages) of a cache.

    A plain class rather than a dataclass: mypyc compiles this ``__init__``, where a
    dataclass's would be generated, interpreted code (one call per slab created).
    """

    __slots__ = ("pfn", "order", "objects", "inuse", "where", "cpu", "freelist", "nr_free",
                 "slot_obj", "defragged", "sid")

    def __init__(self, pfn: int, order: int, objects: int) -> None:
        self.pfn = pfn
        self.order = order
        self.objects = objects
        self.inuse = 0
        self.where = W_FULL
        self.cpu = 0  # owning CPU while W_CPU or W_CPU_PARTIAL
        # Per slot, its object id (>= 0), or, for a free slot, the link to the next free
        # one (``_slot_list``: below 0). The free slots are a LIFO list from
        # ``freelist`` (-1: none), threaded through the free slots themselves as SLUB
        # threads ``slab->freelist`` through the free objects' free pointers: the
        # first handed out is the last freed, and at first the lowest.
        self.slot_obj: vec[i32] = vec[i32](_slot_list(objects))
        self.freelist = 0 if objects else -1
        self.nr_free = objects
        self.defragged = False  # unfrozen non-empty by the defragmenter
        self.sid = -1  # its place in its cache's table of slabs (SlabCache._slabs)

    def __repr__(self) -> str:
        return (f"Slab(pfn={self.pfn}, order={self.order}, objects={self.objects}, "
                f"inuse={self.inuse}, where={WHERE_NAMES[self.where]}, cpu={self.cpu})")

    @property
    def pages(self) -> int:
        return 1 << self.order

    @property
    def free(self) -> list[int]:
        """The free slot numbers, the next one handed out last."""
        slots: list[int] = []
        slot = self.freelist
        # A link out of the slab, or a cycle, ends the walk: check() then finds the
        # count wrong.
        while 0 <= slot < self.objects and len(slots) <= self.objects:
            slots.append(slot)
            slot = -int(self.slot_obj[slot]) - 2
        slots.reverse()
        return slots

    def pop_free(self) -> int:
        """The next free slot, off the freelist (its entry in ``slot_obj`` is then the
        caller's to set)."""
        slot = self.freelist
        self.freelist = -int(self.slot_obj[slot]) - 2
        self.nr_free -= 1
        return slot

    def push_free(self, slot: int) -> None:
        """``slot`` freed: the head of the freelist."""
        self.slot_obj[slot] = -self.freelist - 2
        self.freelist = slot
        self.nr_free += 1


@dataclass
class SlabStats:
    """Event counters of one cache (CONFIG_SLUB_STATS names where the kernel has one)."""

    alloc_slab: int = 0  # ALLOC_SLAB: new slabs from the page allocator
    order_fallback: int = 0  # ORDER_FALLBACK
    alloc_failed: int = 0  # no object: both page allocations failed
    free_slab: int = 0  # FREE_SLAB: slabs given back
    defragged_pages_freed: int = 0  # pages of slabs the defragmenter left non-empty, freed later
    pages_allocated: int = 0
    pages_freed: int = 0
    cpu_partial_drain: int = 0  # CPU_PARTIAL_DRAIN
    rcu_queued: int = 0
    rcu_applied: int = 0
    frees_deferred: int = 0  # frees of held objects, applied at release
    objects_moved: int = 0
    objects_evicted: int = 0  # by the shrinker or a defrag callback
    page_cache_evicted: int = 0  # page-cache pages evicted with them
    shrink_scanned: int = 0
    shrink_freed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class ShrinkResult:
    """What one shrinker call did."""

    scanned: int = 0
    freed: int = 0  # objects evicted (RCU-delayed caches give their slots back later)
    rotated: int = 0  # referenced or busy: second chance
    removed: int = 0  # in use: dropped from the LRU, not freed
    pages_returned: int = 0  # slab pages given back during the call
    page_cache_evicted: int = 0

    def add(self, other: ShrinkResult) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class ObjectOwner(Protocol):
    """Who holds references to a cache's objects (sim/objects.py's FileSystem).

    ``reclaimable`` says whether the object is unused, so that the shrinker or free-mode
    defragmentation may free it; ``evict`` frees it and whatever only it kept alive, and
    returns the page-cache pages evicted with it.
    """

    def reclaimable(self, cache: SlabCache, oid: int) -> bool: ...

    def evict(self, cache: SlabCache, oid: int, cpu: int) -> int: ...


class CompiledOwner:
    """A compiled ``ObjectOwner`` (sim/objects.py ``CacheOwners``, sim/replay.py
    ``TraceHolder``): the cache calls its methods with C integers, where any other owner
    (a workload's, a test's) is called as the protocol says, through Python."""

    def reclaimable(self, cache: SlabCache, oid: int) -> bool:
        raise NotImplementedError

    def evict(self, cache: SlabCache, oid: int, cpu: int) -> int:
        raise NotImplementedError


# page_allocator(order, migratetype, cpu, owner, alloc_flags, noretry) -> pfn or None
PageAllocator = Callable[[int, int, int, int, int, bool], "int | None"]


def _zero_clock() -> float:
    return 0.0


def do_shrink_slab(freeable: int, priority: int, scan: Callable[[int], int], *,
                   seeks: int = DEFAULT_SEEKS, batch: int = SHRINK_BATCH,
                   nr_deferred: int = 0) -> tuple[int, int, int]:
    """mm/shrinker.c ``do_shrink_slab``: scan ``freeable``'s share for ``priority`` in
    batches; ``scan(n)`` scans n objects and returns how many it freed, or SHRINK_STOP:
    the scan ends there, nothing counted, and the share is deferred to a later call.

    Returns (freed, scanned, next nr_deferred).
    """
    if freeable <= 0:
        return 0, 0, nr_deferred
    if seeks:
        delta = (freeable >> priority) * 4 // seeks
    else:
        delta = freeable // 2
    total_scan = min((nr_deferred >> priority) + delta, 2 * freeable)
    freed = scanned = 0
    while total_scan >= batch or total_scan >= freeable:
        nr_to_scan = min(batch, total_scan)
        if nr_to_scan <= 0:
            break
        ret = scan(nr_to_scan)
        if ret == SHRINK_STOP:
            break
        freed += ret
        total_scan -= nr_to_scan
        scanned += nr_to_scan
    next_deferred = min(max(nr_deferred + delta - scanned, 0), 2 * freeable)
    return freed, scanned, next_deferred


# --------------------------------------------------------------------------- the cache


class SlabCache:
    """One ``struct kmem_cache`` with one node, ``cpus`` CPUs and its own list_lru.

    ``alloc(cpu)`` returns an object id or None; ``free(oid, cpu)`` frees it at once,
    ``free_rcu(oid, cpu)`` after the grace period (``call_rcu``).
    """

    def __init__(
        self,
        name: str,
        geometry: SlabGeometry,
        zone: PageSpace,
        *,
        cache_id: int = 0,
        flags: int | None = None,
        rcu_free: bool | None = None,
        rcu_grace: float = DEFAULT_RCU_GRACE,
        cpus: int | None = None,
        cpu_partial_slabs: int | None = None,
        min_partial: int | None = None,
        page_allocator: PageAllocator | None = None,
        vfs_cache_pressure: int = 100,
        seeks: int = DEFAULT_SEEKS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not 0 <= cache_id <= OWNER_SLAB_MAX - OWNER_SLAB:
            raise ValueError(
                f"expected a cache id from 0 to {OWNER_SLAB_MAX - OWNER_SLAB}, got {cache_id}"
            )
        if rcu_grace < 0:
            raise ValueError(f"expected rcu_grace >= 0 seconds, got {rcu_grace}")
        self.name = name
        self.geometry = geometry
        self.size = geometry.size
        self.objects_per_slab = geometry.objects_per_slab
        self.order = geometry.order
        self.min_order = geometry.min_order
        self.min_objects = geometry.min_objects
        self.zone = zone
        self.cache_id = cache_id
        self.owner_tag = OWNER_SLAB + cache_id
        self.flags = cache_flags(name) if flags is None else flags
        self.migratetype = cache_migratetype(self.flags)
        self.typesafe_by_rcu = bool(self.flags & SLAB_TYPESAFE_BY_RCU)
        self.rcu_free = (name in RCU_FREED_CACHES) if rcu_free is None else rcu_free
        self.rcu_grace = rcu_grace
        self.cpus = zone.cpus if cpus is None else cpus
        self.cpu_partial_slabs = (
            cpu_partial_slabs_for(self.size, self.objects_per_slab, geometry.page_size)
            if cpu_partial_slabs is None else cpu_partial_slabs
        )
        self.min_partial = min_partial_for(self.size) if min_partial is None else min_partial
        self.page_allocator = page_allocator
        self.vfs_cache_pressure = vfs_cache_pressure
        self.seeks = seeks
        self.clock = clock or _zero_clock
        self.owner: CompiledOwner | ObjectOwner | None = None

        self._cpu_slab: list[Slab | None] = [None] * self.cpus
        self._cpu_partial: list[list[Slab]] = [[] for _ in range(self.cpus)]
        self._node_partial: OrderedDict[Slab, None] = OrderedDict()
        self._slab_at: dict[int, Slab] = {}  # head pfn -> slab
        # The slabs by place (sid), places reused (a stack of the free ones): an
        # object's slab is a 4-byte place, not an 8-byte reference, per object id.
        self._slabs: list[Slab | None] = []
        self._free_sids: vec[i32] = vec[i32]()
        # Per object id: its slab's place in _slabs (-1 when free), slot, flags and
        # reference count, in typed vectors (librt.vecs), which grow in ``_new_id``.
        # A vector that grows may move: no local alias of one is kept across a call
        # that can allocate an object.
        self._obj_slab: vec[i32] = vec[i32]()  # the slab's place in _slabs, -1: free
        self._obj_slot: vec[i16] = vec[i16]()  # < MAX_OBJS_PER_PAGE: 15 bits
        self._flags: vec[u8] = vec[u8]()
        self._ref: vec[i32] = vec[i32]()
        # Object ids free for reuse, a stack (the newest first): the first
        # ``_nr_free_ids`` entries of a vector that never shrinks.
        self._free_ids: vec[i32] = vec[i32]()
        self._nr_free_ids = 0
        # The list_lru: a doubly linked list through the object ids, oldest first, in
        # two more per-object vectors (-1 ends it), grown at the first object put on
        # the list past their end (``_lru_grow``). F_LRU marks its members.
        self._lru_next: vec[i32] = vec[i32]()
        self._lru_prev: vec[i32] = vec[i32]()
        self._lru_head = -1
        self._lru_tail = -1
        self._nr_lru = 0
        # call_rcu queue, FIFO: enqueue times, object ids and CPUs, entries
        # [_rcu_head, _rcu_tail) of three vectors (``_rcu_push``; emptied, or compacted
        # once mostly consumed, so they stay the size of the queue).
        self._rcu_time: vec[float] = vec[float]()
        self._rcu_oid: vec[i32] = vec[i32]()
        self._rcu_cpu: vec[i32] = vec[i32]()
        self._rcu_head = 0
        self._rcu_tail = 0
        # SLAB_TYPESAFE_BY_RCU: slab pages waiting for a grace period (rcu_free_slab).
        self._rcu_pages: deque[tuple[float, int, int, int]] = deque()

        self.nr_slabs = 0
        self.total_objects = 0
        self.nr_pages = 0
        self.nr_inuse = 0  # occupied slots: live, RCU-pending, deferred and ghost objects
        self.nr_deferred = 0
        self.nr_allocs = 0
        self.nr_frees = 0
        self.nr_deferred_shrink = 0  # the shrinker's nr_deferred
        self.stats = SlabStats()

    def __repr__(self) -> str:
        return (f"<SlabCache {self.name} size={self.size} {self.objects_per_slab}/slab "
                f"order={self.order} slabs={self.nr_slabs} inuse={self.nr_inuse}>")

    # ------------------------------------------------------------------ allocation

    def alloc(self, cpu: int = 0) -> int | None:
        """``slab_alloc_node``: an object from this CPU's slab, else the slow path; None
        when no slab page could be had."""
        oid = self.alloc_id(cpu)
        return None if oid < 0 else oid

    def alloc_id(self, cpu: int = 0) -> int:
        """``alloc``, with -1 for None: compiled, an ``int | None`` result is a Python
        int made for every object, an ``int`` one a C integer."""
        slab = self._cpu_slab[cpu]
        if slab is None or not slab.nr_free:
            slab = self._alloc_slowpath(cpu)
            if slab is None:
                return -1
        slot = slab.freelist  # slab.pop_free(), inlined
        slab.freelist = -int(slab.slot_obj[slot]) - 2
        slab.nr_free -= 1
        slab.inuse += 1
        oid = self._pop_free_id()
        if oid >= 0:
            self._obj_slab[oid] = slab.sid
            self._obj_slot[oid] = slot
        else:
            oid = self._new_id(slab, slot)
        slab.slot_obj[slot] = oid
        self.nr_inuse += 1
        self.nr_allocs += 1
        return oid

    def _pop_free_id(self) -> int:
        """The newest freed object id, taken for reuse; -1 when there is none."""
        n = self._nr_free_ids
        if not n:
            return -1
        self._nr_free_ids = n - 1
        return int(self._free_ids[n - 1])

    def _push_free_id(self, oid: int) -> None:
        """A freed object id, to be reused first."""
        n = self._nr_free_ids
        if n < len(self._free_ids):
            self._free_ids[n] = oid
        else:
            self._free_ids = vec_append(self._free_ids, oid)
        self._nr_free_ids = n + 1

    def _new_id(self, slab: Slab, slot: int) -> int:
        """A new object id, past every one so far, for ``slot`` of ``slab``: every
        per-object vector grows by one entry."""
        oid = len(self._obj_slab)
        self._obj_slab = vec_append(self._obj_slab, slab.sid)
        self._obj_slot = vec_append(self._obj_slot, slot)
        self._flags = vec_append(self._flags, 0)
        self._ref = vec_append(self._ref, 0)
        return oid

    def _alloc_slowpath(self, cpu: int) -> Slab | None:
        """``___slab_alloc`` from the point where the CPU freelist is empty."""
        slab = self._cpu_slab[cpu]
        if slab is not None:
            # get_freelist() found no free object: the slab is unfrozen and, being
            # full, goes on no list.
            slab.where = W_FULL
            self._cpu_slab[cpu] = None
        plist = self._cpu_partial[cpu]
        if plist:
            slab = plist.pop()  # slub_percpu_partial: the list head
        else:
            slab = self._get_partial_node(cpu)
            if slab is None:
                slab = self._new_slab(cpu)
                if slab is None:
                    return None
        slab.where = W_CPU
        slab.cpu = cpu
        self._cpu_slab[cpu] = slab
        return slab

    def _get_partial_node(self, cpu: int) -> Slab | None:
        """``get_partial_node``: the head slab for the CPU, and a few more for its
        partial list, until more than cpu_partial_slabs / 2 were taken."""
        np = self._node_partial
        if not np:
            return None
        first, _ = np.popitem(last=False)
        if self.cpu_partial_slabs:
            limit = self.cpu_partial_slabs // 2
            taken = 0
            while np and taken <= limit:
                slab, _ = np.popitem(last=False)
                self._put_cpu_partial(slab, cpu, drain=False)
                taken += 1
        return first

    def _new_slab(self, cpu: int) -> Slab | None:
        """``allocate_slab``: the cache's order without reclaim, then ``s->min``."""
        order = self.order
        objects = self.objects_per_slab
        mt = self.migratetype
        # __GFP_NORETRY always; __GFP_RECLAIM (hence ALLOC_KSWAPD) stripped only when
        # there is a smaller order to fall back to.
        flags = ALLOC_WMARK_LOW if order > self.min_order else ALLOC_WMARK_LOW | ALLOC_KSWAPD
        pfn = self._alloc_pages(order, mt, cpu, flags, True)
        if pfn is None:
            order = self.min_order
            objects = self.min_objects
            pfn = self._alloc_pages(order, mt, cpu, ALLOC_WMARK_LOW | ALLOC_KSWAPD, False)
            if pfn is None:
                self.stats.alloc_failed += 1
                return None
            self.stats.order_fallback += 1
        slab = Slab(pfn, order, objects)
        self._slab_at[pfn] = slab
        if len(self._free_sids):
            self._free_sids, top = vec_pop(self._free_sids)
            slab.sid = int(top)
            self._slabs[slab.sid] = slab
        else:
            slab.sid = len(self._slabs)
            self._slabs.append(slab)
        self.nr_slabs += 1
        self.total_objects += objects
        self.nr_pages += 1 << order
        self.stats.alloc_slab += 1
        self.stats.pages_allocated += 1 << order
        return slab

    def _alloc_pages(self, order: int, mt: int, cpu: int, alloc_flags: int,
                     noretry: bool) -> int | None:
        if self.page_allocator is not None:
            return self.page_allocator(order, mt, cpu, self.owner_tag, alloc_flags, noretry)
        return self.zone.alloc(order, mt, cpu, self.owner_tag, alloc_flags)

    # ------------------------------------------------------------------ free

    def free(self, oid: int, cpu: int = 0) -> None:
        """``kmem_cache_free``: give the object back now."""
        try:
            slab = self.slab_of(oid)
        except TypeError:
            slab = None
        if slab is None:
            raise BadSlabFree(self._describe_bad_free(oid))
        flags = self._flags
        if int(flags[oid]):
            if not self._may_free_now(oid):
                return
            flags[oid] = 0
        # _free_object and _release_slot, unrolled for the common case.
        slot = int(self._obj_slot[oid])
        self._obj_slab[oid] = -1
        self._ref[oid] = 0
        self._push_free_id(oid)
        self.nr_inuse -= 1
        self.nr_frees += 1
        head = slab.freelist  # slab.push_free(slot), inlined
        slab.slot_obj[slot] = -head - 2
        slab.freelist = slot
        slab.nr_free += 1
        inuse = slab.inuse - 1
        slab.inuse = inuse
        where = slab.where
        if where == W_FULL or (where == W_NODE_PARTIAL and not inuse):
            self._after_free(slab, cpu)

    def free_rcu(self, oid: int, cpu: int = 0, now: float | None = None) -> None:
        """``call_rcu``: free the object once a grace period has passed.

        Until then it still occupies its slot, so its slab is not empty.
        """
        try:
            slab = self.slab_of(oid)
        except TypeError:
            slab = None
        fl = int(self._flags[oid]) if slab is not None else 0
        if slab is None or fl & (F_RCU | F_DEFERRED):
            raise BadSlabFree(self._describe_bad_free(oid))
        if fl & F_LRU:
            self._lru_unlink(oid)
        self._flags[oid] = (fl & ~(F_LRU | F_REFERENCED)) | F_RCU
        self._rcu_push(self.clock() if now is None else now, oid, cpu)
        self.stats.rcu_queued += 1

    def _rcu_push(self, when: float, oid: int, cpu: int) -> None:
        """An object freed at ``when`` on ``cpu`` joins the call_rcu queue's tail."""
        tail = self._rcu_tail
        if tail == len(self._rcu_oid):
            head = self._rcu_head
            if head and head >= tail >> 1:
                # Mostly consumed: move the live entries down rather than grow.
                times, oids, cpus = self._rcu_time, self._rcu_oid, self._rcu_cpu
                for i in range(head, tail):
                    times[i - head] = times[i]
                    oids[i - head] = oids[i]
                    cpus[i - head] = cpus[i]
                tail -= head
                self._rcu_head = 0
        if tail < len(self._rcu_oid):
            self._rcu_time[tail] = when
            self._rcu_oid[tail] = oid
            self._rcu_cpu[tail] = cpu
        else:
            self._rcu_time = vec_append(self._rcu_time, when)
            self._rcu_oid = vec_append(self._rcu_oid, oid)
            self._rcu_cpu = vec_append(self._rcu_cpu, cpu)
        self._rcu_tail = tail + 1

    def _may_free_now(self, oid: int) -> bool:
        """A free of a flagged object: defer it if the defragmenter holds the object."""
        fl = int(self._flags[oid])
        if fl & (F_RCU | F_DEFERRED):
            raise BadSlabFree(self._describe_bad_free(oid))
        if fl & F_HELD:
            # get() made the object stable: the free waits until reclaim drops it.
            self._flags[oid] = fl | F_DEFERRED
            self.nr_deferred += 1
            self.stats.frees_deferred += 1
            return False
        if fl & F_LRU:
            self._lru_unlink(oid)
        return True

    def _free_object(self, slab: Slab, oid: int, cpu: int) -> None:
        slot = int(self._obj_slot[oid])
        self._obj_slab[oid] = -1
        self._flags[oid] = 0
        self._ref[oid] = 0
        self._push_free_id(oid)
        self.nr_inuse -= 1
        self.nr_frees += 1
        self._release_slot(slab, slot, cpu)

    def _release_slot(self, slab: Slab, slot: int, cpu: int) -> None:
        slab.push_free(slot)
        slab.inuse -= 1
        self._after_free(slab, cpu)

    def _after_free(self, slab: Slab, cpu: int) -> None:
        """``__slab_free`` after a slot was given back: the list work, which depends on
        where the slab is."""
        where = slab.where
        if where == W_FULL:
            if self.cpu_partial_slabs:
                self._put_cpu_partial(slab, cpu, drain=True)
            elif not slab.inuse and len(self._node_partial) >= self.min_partial:
                self._discard_slab(slab, cpu)
            else:
                self._add_partial(slab, tail=True)
        elif (where == W_NODE_PARTIAL and not slab.inuse
              and len(self._node_partial) >= self.min_partial):
            del self._node_partial[slab]
            self._discard_slab(slab, cpu)
        # W_CPU and W_FROZEN: frozen, no list work. W_CPU_PARTIAL: exempt from lists.

    def _put_cpu_partial(self, slab: Slab, cpu: int, drain: bool) -> None:
        """``put_cpu_partial``: push on the CPU's partial list; with ``drain``, a full
        list first goes to the node list (``__put_partials``)."""
        plist = self._cpu_partial[cpu]
        slab.where = W_CPU_PARTIAL
        slab.cpu = cpu
        if drain and len(plist) >= self.cpu_partial_slabs:
            self._cpu_partial[cpu] = [slab]
            self._put_partials(plist, cpu)
            self.stats.cpu_partial_drain += 1
        else:
            plist.append(slab)

    def _put_partials(self, plist: list[Slab], cpu: int) -> None:
        """``__put_partials``, head (the most recent) first."""
        np = self._node_partial
        for slab in reversed(plist):
            if not slab.inuse and len(np) >= self.min_partial:
                self._discard_slab(slab, cpu)
            else:
                self._add_partial(slab, tail=True)

    def _add_partial(self, slab: Slab, tail: bool) -> None:
        self._node_partial[slab] = None
        if not tail:
            self._node_partial.move_to_end(slab, last=False)
        slab.where = W_NODE_PARTIAL

    def _discard_slab(self, slab: Slab, cpu: int) -> None:
        """``discard_slab``: the slab leaves the cache; its pages go back to the zone
        now, or after a grace period for SLAB_TYPESAFE_BY_RCU (``rcu_free_slab``)."""
        del self._slab_at[slab.pfn]
        self._slabs[slab.sid] = None
        self._free_sids = vec_append(self._free_sids, slab.sid)
        slab.where = W_FREED
        self.nr_slabs -= 1
        self.total_objects -= slab.objects
        self.nr_pages -= 1 << slab.order
        self.stats.free_slab += 1
        if slab.defragged:
            self.stats.defragged_pages_freed += 1 << slab.order
        if self.typesafe_by_rcu:
            self._rcu_pages.append((self.clock(), slab.pfn, slab.order, cpu))
        else:
            self.zone.free(slab.pfn, slab.order, cpu)
            self.stats.pages_freed += 1 << slab.order

    def flush_cpu_slabs(self, cpu: int | None = None) -> None:
        """``flush_all`` (or one CPU): deactivate the CPU slabs, drain the partial lists."""
        for c in range(self.cpus) if cpu is None else (cpu,):
            slab = self._cpu_slab[c]
            if slab is not None:
                self._cpu_slab[c] = None
                self._deactivate_slab(slab, c)
            plist = self._cpu_partial[c]
            if plist:
                self._cpu_partial[c] = []
                self._put_partials(plist, c)

    def _deactivate_slab(self, slab: Slab, cpu: int) -> None:
        if not slab.inuse and len(self._node_partial) >= self.min_partial:
            self._discard_slab(slab, cpu)
        elif slab.nr_free:
            self._add_partial(slab, tail=False)
        else:
            slab.where = W_FULL

    # ------------------------------------------------------------------ RCU

    def rcu_advance(self, now: float, limit: int | None = None) -> int:
        """Run the RCU callbacks whose grace period has ended by ``now`` (FIFO), at most
        ``limit`` of them. Returns the number of object frees applied."""
        grace = self.rcu_grace
        done = 0
        flags = self._flags
        # The queue's vectors and head are read afresh each time round: a free may
        # queue another callback, which may move them (``_rcu_push``).
        while True:
            head = self._rcu_head
            tail = self._rcu_tail
            if (head == tail or not self._rcu_time[head] + grace <= now
                    or (limit is not None and done >= limit)):
                break
            oid = int(self._rcu_oid[head])
            cpu = int(self._rcu_cpu[head])
            head += 1
            if head == tail:  # emptied: the next callback starts the vectors again
                head = 0
                self._rcu_tail = 0
            self._rcu_head = head
            fl = int(flags[oid]) & ~F_RCU
            flags[oid] = fl
            done += 1
            if fl & F_HELD:
                flags[oid] = fl | F_DEFERRED
                self.nr_deferred += 1
                self.stats.frees_deferred += 1
                continue
            slab = self.slab_of(oid)
            assert slab is not None  # a live object has a slab
            self._free_object(slab, oid, cpu)
        self.stats.rcu_applied += done
        pages = self._rcu_pages
        while pages and pages[0][0] + grace <= now:
            _, pfn, order, cpu = pages.popleft()
            self.zone.free(pfn, order, cpu)
            self.stats.pages_freed += 1 << order
        return done

    def rcu_barrier(self) -> int:
        """Apply every pending RCU free now (``rcu_barrier`` after the wait)."""
        return self.rcu_advance(math.inf)

    @property
    def nr_rcu_pending(self) -> int:
        return self._rcu_tail - self._rcu_head

    # ------------------------------------------------------------------ object state

    def is_allocated(self, oid: int) -> bool:
        return 0 <= oid < len(self._obj_slab) and self._obj_slab[oid] >= 0

    def is_live(self, oid: int) -> bool:
        """Allocated and not dying (RCU-pending, free deferred, or a moved-out ghost)."""
        return (self.is_allocated(oid)
                and not int(self._flags[oid]) & (F_RCU | F_DEFERRED | F_GHOST))

    @property
    def nr_live(self) -> int:
        return self.nr_inuse - (self._rcu_tail - self._rcu_head) - self.nr_deferred

    def slab_of(self, oid: int) -> Slab | None:
        """The slab holding object ``oid``, None when it is free or was never made."""
        if not 0 <= oid < len(self._obj_slab):
            return None
        sid = int(self._obj_slab[oid])
        return self._slabs[sid] if sid >= 0 else None

    def flags_of(self, oid: int) -> int:
        return int(self._flags[oid])

    def refcount(self, oid: int) -> int:
        return int(self._ref[oid])

    def get_ref(self, oid: int) -> None:
        """Pin the object (dget / __iget / an open file)."""
        self._ref[oid] += 1

    def put_ref(self, oid: int) -> int:
        ref = int(self._ref[oid]) - 1
        if ref < 0:
            raise ValueError(f"{self.name}: reference count of object {oid} below zero")
        self._ref[oid] = ref
        return ref

    def is_pinned(self, oid: int) -> bool:
        return int(self._ref[oid]) > 0

    def set_published(self, oid: int, published: bool = True) -> None:
        if published:
            self._flags[oid] = int(self._flags[oid]) & ~F_UNPUBLISHED
        else:
            self._flags[oid] = int(self._flags[oid]) | F_UNPUBLISHED

    def lru_add(self, oid: int) -> None:
        """``list_lru_add``: the object is unused and may be reclaimed (tail = newest).
        Only a live object: one that is free, or freed through RCU, or moved out, is on
        no list (ValueError)."""
        if not self.is_live(oid):
            raise ValueError(f"{self.name}: object {oid} is not live: not put on the LRU")
        fl = int(self._flags[oid])
        if not fl & F_LRU:
            self._flags[oid] = fl | F_LRU
            self._lru_link(oid)

    def lru_del(self, oid: int) -> None:
        if oid < 0:
            raise KeyError(oid)
        fl = int(self._flags[oid])
        if fl & F_LRU:
            self._flags[oid] = fl & ~F_LRU
            self._lru_unlink(oid)

    def _lru_link(self, oid: int) -> None:
        """The object at the list's tail (the newest); the caller sets F_LRU."""
        if oid >= len(self._lru_next):
            self._lru_grow()
        tail = self._lru_tail
        self._lru_prev[oid] = tail
        self._lru_next[oid] = -1
        if tail >= 0:
            self._lru_next[tail] = oid
        else:
            self._lru_head = oid
        self._lru_tail = oid
        self._nr_lru += 1

    def _lru_grow(self) -> None:
        """The LRU's links cover every object id made so far. They are grown here, at
        the first link past their end, and not with the other per-object vectors: the
        caches no shrinker scans (XArray nodes, LSM blobs) never put an object on the
        list and keep none, and only members' links are ever read."""
        nxt, prev = self._lru_next, self._lru_prev
        for _ in range(len(nxt), len(self._flags)):
            nxt = vec_append(nxt, -1)
            prev = vec_append(prev, -1)
        self._lru_next, self._lru_prev = nxt, prev

    def _lru_unlink(self, oid: int) -> None:
        """The object off the list; the caller clears F_LRU."""
        prev = int(self._lru_prev[oid])
        nxt = int(self._lru_next[oid])
        if prev >= 0:
            self._lru_next[prev] = nxt
        else:
            self._lru_head = nxt
        if nxt >= 0:
            self._lru_prev[nxt] = prev
        else:
            self._lru_tail = prev
        self._nr_lru -= 1

    def lru_order(self) -> list[int]:
        """The objects on the LRU, oldest first."""
        out = []
        oid = self._lru_head
        while oid >= 0:
            out.append(oid)
            oid = int(self._lru_next[oid])
        return out

    def mark_referenced(self, oid: int) -> None:
        self._flags[oid] = int(self._flags[oid]) | F_REFERENCED

    @property
    def nr_lru(self) -> int:
        return self._nr_lru

    def reclaimable(self, oid: int) -> bool:
        """Unused, so that the shrinker or free-mode defragmentation may free it."""
        if not self.is_allocated(oid):
            return False
        if int(self._flags[oid]) & (F_RCU | F_DEFERRED | F_GHOST | F_UNPUBLISHED):
            return False
        owner = self.owner
        if isinstance(owner, CompiledOwner):
            return owner.reclaimable(self, oid)
        if owner is not None:
            # bool(): a user's owner may answer with any truth value (np.bool_, 1).
            return bool(owner.reclaimable(self, oid))
        return self.default_reclaimable(oid)

    def default_reclaimable(self, oid: int) -> bool:
        """Without an owner: unpinned and on the LRU."""
        return int(self._ref[oid]) == 0 and bool(int(self._flags[oid]) & F_LRU)

    def evict(self, oid: int, cpu: int = 0) -> int:
        """Free an unused object through its owner (dentry -> inode -> page cache).

        Returns the page-cache pages evicted with it.
        """
        self.stats.objects_evicted += 1
        owner = self.owner
        if isinstance(owner, CompiledOwner):
            evicted = owner.evict(self, oid, cpu)  # compiled, a native call
        elif owner is not None:
            evicted = owner.evict(self, oid, cpu)
        else:
            return self.default_evict(oid, cpu)
        self.stats.page_cache_evicted += evicted
        return evicted

    def default_evict(self, oid: int, cpu: int = 0) -> int:
        """Without an owner: off the LRU and freed (through RCU if the cache does that)."""
        self.lru_del(oid)
        if self.rcu_free:
            self.free_rcu(oid, cpu)
        else:
            self.free(oid, cpu)
        return 0

    # ------------------------------------------------------------------ shrinker

    def shrink(self, nr_to_scan: int, cpu: int = 0) -> ShrinkResult:
        """Walk ``nr_to_scan`` LRU entries from the oldest (``list_lru_shrink_walk`` with
        the ``dentry_lru_isolate`` rules)."""
        res = ShrinkResult()
        flags, ref = self._flags, self._ref
        pages0 = self.stats.pages_freed
        pc0 = self.stats.page_cache_evicted
        while res.scanned < nr_to_scan and self._lru_head >= 0:
            oid = self._lru_head
            res.scanned += 1
            fl = int(flags[oid])
            if int(ref[oid]):
                # In use again: taken off the LRU, not freed (LRU_REMOVED).
                self._lru_unlink(oid)
                flags[oid] = fl & ~F_LRU
                res.removed += 1
            elif fl & (F_REFERENCED | F_HELD):
                # Second chance (LRU_ROTATE); a held object is busy and rotates too.
                self._lru_unlink(oid)
                self._lru_link(oid)
                flags[oid] = fl & ~F_REFERENCED
                res.rotated += 1
            else:
                self.evict(oid, cpu)
                if int(self._flags[oid]) & F_LRU:  # an owner that did not take it off
                    self.lru_del(oid)
                res.freed += 1
                flags, ref = self._flags, self._ref  # the owner may have allocated
        res.pages_returned = self.stats.pages_freed - pages0
        res.page_cache_evicted = self.stats.page_cache_evicted - pc0
        self.stats.shrink_scanned += res.scanned
        self.stats.shrink_freed += res.freed
        return res

    def count_objects(self) -> int:
        """The shrinker's ``count_objects``: ``vfs_pressure_ratio(list_lru_count)``."""
        return self._nr_lru * self.vfs_cache_pressure // 100

    def shrink_slab(self, priority: int, cpu: int = 0) -> ShrinkResult:
        """``do_shrink_slab`` of this cache's own shrinker at ``priority`` (12 is
        DEF_PRIORITY, 0 the most pressure)."""
        total = ShrinkResult()

        def scan(n: int) -> int:
            r = self.shrink(n, cpu)
            total.add(r)
            return r.freed

        _, _, self.nr_deferred_shrink = do_shrink_slab(
            self.count_objects(), priority, scan, seeks=self.seeks,
            nr_deferred=self.nr_deferred_shrink)
        return total

    # ------------------------------------------------------------------ defragmentation

    @property
    def nr_partial(self) -> int:
        return len(self._node_partial)

    def node_partial_slabs(self) -> list[Slab]:
        """The node partial list, head first."""
        return list(self._node_partial)

    def cpu_partial_slabs_of(self, cpu: int) -> list[Slab]:
        """A CPU's partial list, head first."""
        return self._cpu_partial[cpu][::-1]

    def cpu_slab(self, cpu: int) -> Slab | None:
        return self._cpu_slab[cpu]

    def slabs(self) -> Iterator[Slab]:
        return iter(list(self._slab_at.values()))

    def slab_at(self, pfn: int) -> Slab | None:
        return self._slab_at.get(pfn)

    def candidate_slabs(self, used_ratio: int) -> list[Slab]:
        """Node-partial slabs with ``inuse <= used_ratio% * objects``."""
        return [s for s in self._node_partial if s.inuse * 100 <= used_ratio * s.objects]

    def objects_of(self, slab: Slab) -> list[int]:
        """The object ids in a slab, ghosts included, in slot order."""
        return [oid for oid in slab.slot_obj if oid >= 0]

    def freeze(self, slab: Slab) -> None:
        """Take a slab off every list and freeze it: no allocation is served from it and
        its objects can only leave."""
        where = slab.where
        if where == W_NODE_PARTIAL:
            del self._node_partial[slab]
        elif where == W_CPU_PARTIAL:
            self._cpu_partial[slab.cpu].remove(slab)
        elif where == W_CPU:
            self._cpu_slab[slab.cpu] = None
        elif where != W_FULL:
            raise ValueError(
                f"{self.name}: cannot freeze the slab at pfn {slab.pfn}: it is "
                f"{WHERE_NAMES[where]}"
            )
        slab.where = W_FROZEN

    def unfreeze(self, slab: Slab, cpu: int = 0) -> int:
        """Unfreeze after reclaim: an empty slab goes back to the page allocator at once,
        a partial one to the node list tail. Returns the pages given back."""
        if slab.where != W_FROZEN:
            raise ValueError(f"{self.name}: the slab at pfn {slab.pfn} is not frozen")
        if not slab.inuse:
            pages = 1 << slab.order
            self._discard_slab(slab, cpu)
            return pages
        slab.defragged = True  # its freed-later pages are counted apart (RCU ghosts)
        if slab.nr_free:
            self._add_partial(slab, tail=True)
        else:
            slab.where = W_FULL
        return 0

    def hold(self, oid: int) -> None:
        """Make an object stable for reclaim (a get() reference): a free waits."""
        if not self.is_allocated(oid):
            raise ValueError(f"{self.name}: object {oid} is not allocated")
        self._flags[oid] = int(self._flags[oid]) | F_HELD

    def is_held(self, oid: int) -> bool:
        return self.is_allocated(oid) and bool(int(self._flags[oid]) & F_HELD)

    def release(self, oid: int, cpu: int = 0) -> bool:
        """Drop a get() reference; a free that came meanwhile is applied now, once.

        Returns whether a deferred free was applied.
        """
        if not self.is_allocated(oid):
            return False
        fl = int(self._flags[oid])
        if not fl & F_HELD:
            return False
        self._flags[oid] = fl & ~(F_HELD | F_DEFERRED)
        if fl & F_DEFERRED:
            self.nr_deferred -= 1
            if fl & F_LRU:
                self._lru_unlink(oid)
            slab = self.slab_of(oid)
            assert slab is not None  # a live object has a slab
            self._free_object(slab, oid, cpu)
            return True
        return False

    def move_object(self, oid: int, cpu: int = 0) -> bool:
        """Move an object to a slot allocated the normal way (``kmem_cache_alloc``), keeping
        its id: copy, re-point, free the original. The original slot of an RCU-freed
        cache stays taken by a ghost until a grace period has passed.

        Returns False when no slot could be allocated elsewhere.
        """
        src = self.slab_of(oid)
        if src is None or int(self._flags[oid]) & (F_RCU | F_DEFERRED | F_GHOST):
            raise ValueError(f"{self.name}: object {oid} is not a live object")
        dst = self._cpu_slab[cpu]
        if dst is None or not dst.nr_free:
            dst = self._alloc_slowpath(cpu)
            if dst is None:
                return False
        if dst is src:
            return False
        new_slot = dst.pop_free()
        dst.inuse += 1
        dst.slot_obj[new_slot] = oid
        old_slot = int(self._obj_slot[oid])
        self._obj_slab[oid] = dst.sid
        self._obj_slot[oid] = new_slot
        self.nr_inuse += 1
        self.stats.objects_moved += 1
        if self.rcu_free:
            # RCU readers may still see the old copy: it is freed after a grace period.
            ghost = self._pop_free_id()
            if ghost >= 0:
                self._obj_slab[ghost] = src.sid
                self._obj_slot[ghost] = old_slot
                self._ref[ghost] = 0
            else:
                ghost = self._new_id(src, old_slot)
            src.slot_obj[old_slot] = ghost
            self._flags[ghost] = F_GHOST | F_RCU
            self._rcu_push(self.clock(), ghost, cpu)
            self.stats.rcu_queued += 1
        else:
            self.nr_inuse -= 1
            self._release_slot(src, old_slot, cpu)
        return True

    # ------------------------------------------------------------------ reporting

    def slabinfo_entry(self) -> SlabinfoEntry:
        """``get_slabinfo`` + ``cache_show``."""
        free_on_partial = sum(s.objects - s.inuse for s in self._node_partial)
        return SlabinfoEntry(
            name=self.name,
            active_objs=self.total_objects - free_on_partial,
            num_objs=self.total_objects,
            objsize=self.size,
            objperslab=self.objects_per_slab,
            pagesperslab=1 << self.order,
            active_slabs=self.nr_slabs,
            num_slabs=self.nr_slabs,
        )

    def occupancy(self) -> float:
        """Occupied share of all slots (1.0 for an empty cache)."""
        return self.nr_inuse / self.total_objects if self.total_objects else 1.0

    def sparse_slab_pages(self, used_ratio: int = 30) -> int:
        """Pages held by slabs with ``inuse <= used_ratio%`` of their objects."""
        return sum(s.pages for s in self._slab_at.values()
                   if s.inuse * 100 <= used_ratio * s.objects)

    def _describe_bad_free(self, oid: object) -> str:
        if not isinstance(oid, int) or not 0 <= oid < len(self._obj_slab):
            return f"{self.name}: free of object {oid!r}, which this cache never allocated"
        if self._obj_slab[oid] < 0:
            return f"{self.name}: double free of object {oid}: it is already free"
        fl = int(self._flags[oid])
        if fl & F_RCU:
            return f"{self.name}: double free of object {oid}: it waits for an RCU free"
        return f"{self.name}: double free of object {oid}: its free is already deferred"

    def check(self) -> None:
        """Verify the cache's invariants; raise SlabCorrupt on the first broken one."""
        zone = self.zone
        inuse = objects = pages = 0
        seen_oids: set[int] = set()
        for pfn, slab in self._slab_at.items():
            if slab.pfn != pfn or slab.where == W_FREED:
                raise SlabCorrupt(f"{self.name}: slab map entry {pfn} is stale")
            if not zone.is_allocated(pfn) or zone.order_of(pfn) != slab.order:
                raise SlabCorrupt(f"{self.name}: slab at pfn {pfn} is not an allocated block")
            if zone.owner_of(pfn) != self.owner_tag:
                raise SlabCorrupt(f"{self.name}: slab at pfn {pfn} has owner {zone.owner_of(pfn)}")
            occupied = [o for o in slab.slot_obj if o >= 0]
            if (len(occupied) != slab.inuse or slab.nr_free != slab.objects - slab.inuse
                    or len(slab.slot_obj) != slab.objects or len(slab.free) != slab.nr_free):
                raise SlabCorrupt(f"{self.name}: slab at pfn {pfn} miscounts its objects")
            if sorted(slab.free) != [i for i, o in enumerate(slab.slot_obj) if o < 0]:
                raise SlabCorrupt(f"{self.name}: slab at pfn {pfn} free slots disagree")
            for slot, slot_oid in enumerate(slab.slot_obj):
                oid = int(slot_oid)
                if oid < 0:
                    continue
                if self.slab_of(oid) is not slab or int(self._obj_slot[oid]) != slot:
                    raise SlabCorrupt(f"{self.name}: object {oid} is not where slot {slot} "
                                      f"of pfn {pfn} says")
                seen_oids.add(oid)
            if slab.where == W_NODE_PARTIAL and slab not in self._node_partial:
                raise SlabCorrupt(f"{self.name}: slab at pfn {pfn} is marked node-partial")
            if slab.where == W_CPU and self._cpu_slab[slab.cpu] is not slab:
                raise SlabCorrupt(f"{self.name}: slab at pfn {pfn} is marked cpu slab")
            if slab.where == W_CPU_PARTIAL and slab not in self._cpu_partial[slab.cpu]:
                raise SlabCorrupt(f"{self.name}: slab at pfn {pfn} is marked cpu partial")
            if slab.where == W_FULL and slab.nr_free:
                raise SlabCorrupt(f"{self.name}: slab at pfn {pfn} is 'full' with free slots")
            inuse += slab.inuse
            objects += slab.objects
            pages += slab.pages
        for slab in self._node_partial:
            if slab.where != W_NODE_PARTIAL or not slab.nr_free:
                raise SlabCorrupt(f"{self.name}: node partial list holds a slab that is "
                                  f"{WHERE_NAMES[slab.where]} with {len(slab.free)} free")
        if inuse != self.nr_inuse or objects != self.total_objects or pages != self.nr_pages:
            raise SlabCorrupt(f"{self.name}: counters disagree with the slabs")
        if len(self._slab_at) != self.nr_slabs:
            raise SlabCorrupt(f"{self.name}: nr_slabs {self.nr_slabs}, map {len(self._slab_at)}")
        allocated = {i for i, sid in enumerate(self._obj_slab) if sid >= 0}
        if allocated != seen_oids:
            raise SlabCorrupt(f"{self.name}: {len(allocated ^ seen_oids)} objects are lost")
        on_lru = self.lru_order()
        if len(on_lru) != self._nr_lru:
            raise SlabCorrupt(f"{self.name}: LRU counts {self._nr_lru}, links {len(on_lru)}")
        for oid in on_lru:
            if oid not in allocated or not int(self._flags[oid]) & F_LRU:
                raise SlabCorrupt(f"{self.name}: LRU holds object {oid} wrongly")
        if sum(1 for oid in allocated if int(self._flags[oid]) & F_LRU) != len(on_lru):
            raise SlabCorrupt(f"{self.name}: an object flagged F_LRU is not on the LRU")
        for i in range(self._rcu_head, self._rcu_tail):
            oid = int(self._rcu_oid[i])
            if oid not in allocated or not int(self._flags[oid]) & F_RCU:
                raise SlabCorrupt(f"{self.name}: RCU queue holds object {oid} wrongly")
        deferred = sum(1 for oid in allocated if int(self._flags[oid]) & F_DEFERRED)
        if deferred != self.nr_deferred:
            raise SlabCorrupt(f"{self.name}: {deferred} deferred frees, counter "
                              f"{self.nr_deferred}")


# --------------------------------------------------------------------------- registry


class SlabCaches:
    """All caches of one machine, keyed by name; cache ids index the page owner tags."""

    def __init__(self, zone: PageSpace, *, page_allocator: PageAllocator | None = None,
                 rcu_grace: float = DEFAULT_RCU_GRACE,
                 clock: Callable[[], float] | None = None) -> None:
        self.zone = zone
        self.page_allocator = page_allocator
        self.rcu_grace = rcu_grace
        self.clock = clock or _zero_clock
        self._by_name: dict[str, SlabCache] = {}
        self._by_id: list[SlabCache] = []
        # Per cache id, the keys of its sampled values (``sample``), made once and kept
        # as the tuples made (sim/metrics.py SampleKey).
        self._sample_keys: list[tuple[Any, Any, Any, Any] | None] = []
        # Called with every new cache, whoever creates it (the engine sets its mobility).
        self.on_create: Callable[[SlabCache], None] | None = None

    def create(self, name: str, size: int | None = None, *,
               geometry: SlabGeometry | None = None, **options: object) -> SlabCache:
        """A cache of ``size``-byte slots (geometry as ``calculate_order`` derives it for
        this zone's CPUs) or of an explicit ``geometry``. ``options`` go to SlabCache."""
        if name in self._by_name:
            raise ValueError(f"a slab cache named {name!r} already exists")
        if geometry is None:
            if size is None:
                raise ValueError(f"cache {name!r}: expected an object size or a geometry")
            geometry = SlabGeometry.derived(size, self.zone.cpus, page_size=self.zone.page_size)
        options.setdefault("page_allocator", self.page_allocator)
        options.setdefault("rcu_grace", self.rcu_grace)
        options.setdefault("clock", self.clock)
        cache = SlabCache(name, geometry, self.zone, cache_id=len(self._by_id),
                          **options)  # type: ignore[arg-type]
        self._by_name[name] = cache
        self._by_id.append(cache)
        if self.on_create is not None:
            self.on_create(cache)
        return cache

    def create_from_slabinfo(self, entries: Iterable[SlabinfoEntry]) -> list[SlabCache]:
        """One cache per slabinfo row, with that row's geometry (no objects yet)."""
        return [self.create(e.name, geometry=SlabGeometry.from_slabinfo(e, self.zone.page_size))
                for e in entries]

    def __getitem__(self, name: str) -> SlabCache:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[SlabCache]:
        return iter(self._by_id)

    def sample(self, row: SampleRow) -> None:
        """Add sim/metrics.py ``cache_metrics``' values to ``row``: for each cache with
        slabs or allocations, its live objects, slabs, pages and occupancy. Compiled
        here: interpreted, a sample of a replay's 235 caches took 75 us, and
        ``fragsim replay`` samples about 400 times."""
        keys = self._sample_keys
        for cache in self._by_id:
            if cache.nr_slabs or cache.nr_allocs:
                while len(keys) <= cache.cache_id:
                    keys.append(None)
                k = keys[cache.cache_id]
                if k is None:  # the same key objects every sample
                    name = cache.name
                    k = keys[cache.cache_id] = (("slab_objects", name), ("slab_slabs", name),
                                                ("slab_pages", name), ("slab_occupancy", name))
                row.add(k[0], cache.nr_live)
                row.add(k[1], cache.nr_slabs)
                row.add(k[2], cache.nr_pages)
                row.add(k[3], cache.occupancy())

    def __len__(self) -> int:
        return len(self._by_id)

    def by_id(self, cache_id: int) -> SlabCache:
        return self._by_id[cache_id]

    def cache_of_pfn(self, pfn: int) -> SlabCache | None:
        """The cache whose slab starts at ``pfn`` (from the zone's owner tag)."""
        if not self.zone.is_allocated(pfn):
            return None
        cid = self.zone.owner_of(pfn) - OWNER_SLAB
        if not 0 <= cid < len(self._by_id):
            return None
        cache = self._by_id[cid]
        return cache if cache.slab_at(pfn) is not None else None

    def rcu_advance(self, now: float) -> int:
        return sum(c.rcu_advance(now) for c in self._by_id)

    def slabinfo_entries(self) -> list[SlabinfoEntry]:
        return [c.slabinfo_entry() for c in self._by_id]

    def report(self) -> dict[str, dict[str, int]]:
        """Per cache, for a run's summary: active objects and slabs as slabinfo counts
        them, pages, and the slabs allocated and freed over the run."""
        return {c.name: {"active_objs": c.slabinfo_entry().active_objs,
                         "num_slabs": c.nr_slabs, "pages": c.nr_pages,
                         "slabs_allocated": c.stats.alloc_slab,
                         "slabs_freed": c.stats.free_slab}
                for c in self}

    def format_slabinfo(self) -> str:
        return format_slabinfo(self.slabinfo_entries())

    def check(self) -> None:
        for cache in self._by_id:
            cache.check()


# ------------------------------------------------------------------ caches by name

# Slot sizes (slabinfo objsize) of well-known caches on the real 6.18 x86-64 kernel of
# the shared data (tests/data/kmem-traces/tmpfs-churn-20k-keep10/before.slabinfo; the
# same in configs/real/fileserver-a/start.slabinfo). lsm_inode_cache's is that kernel's
# LSMs' inode blob (blob_sizes.lbs_inode), 32 bytes, 128 a slab.
KNOWN_CACHE_SIZES: Final = {
    "dentry": 192, "shmem_inode_cache": 752, "ext4_inode_cache": 1128, "xfs_inode": 1024,
    "inode_cache": 624, "radix_tree_node": 584, "buffer_head": 104, "filp": 192,
    "extent_status": 40, "lsm_inode_cache": 32,
}


def kmalloc_size(name: str) -> int | None:
    """The slot size in a kmalloc cache's name: kmalloc-256, kmalloc-rcl-96, kmalloc-cg-8k."""
    if not name.startswith("kmalloc-"):
        return None
    tail = name.rsplit("-", 1)[-1]
    scale = 1024 if tail.endswith("k") else 1
    digits = tail.rstrip("k")
    return int(digits) * scale if digits.isdigit() else None


def explicit_geometry(size: int, objects_per_slab: int | None, order: int | None,
                      page_size: int) -> SlabGeometry:
    """A geometry from ``caches:`` keys: the missing one of objects/order is derived."""
    if order is None:
        assert objects_per_slab is not None  # the config asks for one of the two
        order = 0
        while (page_size << order) // size < objects_per_slab:
            order += 1
    if objects_per_slab is None:
        objects_per_slab = (page_size << order) // size
    return SlabGeometry(size, objects_per_slab, order, page_size)


def create_cache(caches: SlabCaches, name: str, size: int | None, spec: CacheConfig | None,
                 vfs_cache_pressure: int) -> SlabCache:
    """The cache ``name`` (``kmem_cache_create``), its slot size from ``caches.NAME``
    of the config (``spec``), else ``size``, else the well-known caches' table or the
    kmalloc name; geometry from ``calculate_order`` unless the spec gives
    ``objects_per_slab`` or ``order``; the spec's rcu_free, min_partial and
    cpu_partial_slabs when set."""
    if spec is not None and spec.size:
        size = spec.size
    size = size or KNOWN_CACHE_SIZES.get(name) or kmalloc_size(name)
    options: dict[str, object] = {}
    geometry = None
    if spec is not None:
        if spec.objects_per_slab is not None or spec.order is not None:
            if size is None:
                raise ValueError(f"caches.{name}: expected a size with objects_per_slab/order")
            geometry = explicit_geometry(size, spec.objects_per_slab, spec.order,
                                         caches.zone.page_size)
        if spec.rcu_free is not None:
            options["rcu_free"] = spec.rcu_free
        if spec.min_partial is not None:
            options["min_partial"] = spec.min_partial
        if spec.cpu_partial_slabs is not None:
            options["cpu_partial_slabs"] = spec.cpu_partial_slabs
    if size is None and geometry is None:
        raise ValueError(f"caches.{name}: expected a size (no workload gave one)")
    options["vfs_cache_pressure"] = vfs_cache_pressure
    return caches.create(name, size, geometry=geometry, **options)
