"""The SLUB model against the rules of Linux 6.18 mm/slub.c.

Geometry is checked against the real /proc/slabinfo in tests/data; allocation, free and
list placement against ``___slab_alloc``, ``get_partial_node``, ``__slab_free``,
``put_cpu_partial`` / ``__put_partials`` and ``discard_slab``; the numbers printed against
``get_slabinfo``; the shrinker against ``do_shrink_slab`` and ``dentry_lru_isolate``.
"""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.buddy import ALLOC_KSWAPD, ALLOC_NO_WATERMARKS, ALLOC_WMARK_LOW, OWNER_SLAB, Zone
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE
from sim.procfs import SlabinfoEntry, parse_slabinfo
from sim.slab import (
    CACHE_FLAGS,
    SLAB_RECLAIM_ACCOUNT,
    SLAB_TYPESAFE_BY_RCU,
    W_CPU,
    W_CPU_PARTIAL,
    W_FREED,
    W_FULL,
    W_NODE_PARTIAL,
    BadSlabFree,
    Slab,
    SlabCaches,
    SlabGeometry,
    cache_flags,
    cache_migratetype,
    calculate_order,
    cpu_partial_slabs_for,
    do_shrink_slab,
    min_partial_for,
    order_objects,
    slab_size,
)

DATA = Path(__file__).parent / "data"
SLABINFO = DATA / "kmem-traces" / "tmpfs-churn-20k-keep10" / "before.slabinfo"


def machine(nr_pages: int = 1 << 14, cpus: int = 2) -> tuple[Zone, SlabCaches]:
    zone = Zone(nr_pages, cpus=cpus)
    return zone, SlabCaches(zone)


def fill_cpu_slab(cache, cpu=0):
    """Allocate until the CPU slab is full; return the ids."""
    return [cache.alloc(cpu) for _ in range(cache.objects_per_slab)]


# --------------------------------------------------------------------------- geometry


def test_calculate_order_reproduces_every_cache_of_the_real_slabinfo():
    # slabinfo's objsize is s->size: metadata, free pointer and hardware alignment are
    # already in it, so calculate_order on a 2-CPU machine (the capture's) must give the
    # kernel's objperslab and pagesperslab for every cache. A mismatch would mean a boot
    # parameter (slub_min_objects, slub_max_order) or a cache created with its own order.
    entries = parse_slabinfo(SLABINFO.read_text())
    mismatches = []
    for e in entries:
        order = calculate_order(e.objsize, nr_cpus=2)
        if (1 << order, order_objects(order, e.objsize)) != (e.pagesperslab, e.objperslab):
            mismatches.append(e.name)
    assert len(entries) == 235
    assert mismatches == []


@pytest.mark.parametrize(
    "name, size, per_slab, pages",
    [
        ("dentry", 192, 21, 1),  # 1/16 leftover met at order 0
        ("shmem_inode_cache", 752, 21, 4),  # min_objects 12 forces order 2
        ("ext4_inode_cache", 1128, 14, 4),
        ("radix_tree_node", 584, 14, 2),
        ("kmalloc-8k", 8192, 4, 8),  # min_objects capped by max_objects at order 3
        ("task_struct", 5824, 5, 8),
        ("kvm_vcpu", 51472, 1, 16),  # above slub_max_order: the get_order(size) fallback
        ("kmalloc-8", 8, 512, 1),
    ],
)
def test_derived_geometry_of_well_known_caches(name, size, per_slab, pages):
    g = SlabGeometry.derived(size, nr_cpus=2)
    assert (g.objects_per_slab, g.pages_per_slab) == (per_slab, pages)


def test_min_objects_grows_with_the_cpu_count():
    # 4 * (fls(nr_cpus) + 1): 12 objects on 2 CPUs, 32 on 64 CPUs, so kmalloc-256 moves
    # from order 0 (16 objects) to order 1 (32 objects) on a large machine.
    assert SlabGeometry.derived(256, nr_cpus=2).order == 0
    assert SlabGeometry.derived(256, nr_cpus=64).order == 1
    assert SlabGeometry.derived(256, nr_cpus=64).objects_per_slab == 32


def test_geometry_from_a_slabinfo_line_and_the_fallback_order():
    e = SlabinfoEntry("shmem_inode_cache", 189, 189, 752, 21, 4)
    g = SlabGeometry.from_slabinfo(e)
    assert (g.size, g.objects_per_slab, g.order) == (752, 21, 2)
    # s->min: the smallest order holding one object, with what fits there.
    assert (g.min_order, g.min_objects) == (0, 5)


def test_slab_size_adds_the_free_pointer_and_hardware_alignment():
    assert slab_size(13) == 16
    assert slab_size(16, freeptr_outside=True) == 24  # SLAB_TYPESAFE_BY_RCU or a ctor
    assert slab_size(600, hwcache_align=True) == 640
    assert slab_size(24, hwcache_align=True) == 32  # halved cache line for small objects


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 8192, "objects_per_slab": 1, "order": 0}, "cannot hold one object"),
        ({"size": 192, "objects_per_slab": 22, "order": 0}, "got 22"),
        ({"size": 192, "objects_per_slab": 0, "order": 0}, "got 0"),
        ({"size": 0, "objects_per_slab": 1, "order": 0}, "at least 1 byte"),
        ({"size": 64, "objects_per_slab": 1, "order": 11}, "order from 0 to 10"),
    ],
)
def test_bad_geometry_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SlabGeometry(**kwargs)


def test_slabinfo_line_with_pages_not_a_power_of_two_is_an_error():
    with pytest.raises(ValueError, match="bad_cache: expected pagesperslab a power of two"):
        SlabGeometry.from_slabinfo(SlabinfoEntry("bad_cache", 0, 0, 64, 64, 3))


def test_min_partial_and_cpu_partial_defaults():
    assert min_partial_for(192) == 5  # ilog2(192)/2 = 3, clamped up to MIN_PARTIAL
    assert min_partial_for(4096) == 6
    assert min_partial_for(1 << 22) == 10  # clamped down to MAX_PARTIAL
    # set_cpu_partial: 120 objects below 256 bytes, counted as half-full slabs.
    assert cpu_partial_slabs_for(192, 21) == 12
    assert cpu_partial_slabs_for(8192, 4) == 3  # 6 objects for >= PAGE_SIZE


# --------------------------------------------------------------------------- page type


def test_shmem_inode_cache_slabs_are_unmovable():
    zone, caches = machine()
    cache = caches.create("shmem_inode_cache", 752)
    assert cache.migratetype == MIGRATE_UNMOVABLE
    oid = cache.alloc()
    pfn = cache.slab_of(oid).pfn
    assert zone.pageblock_migratetype(pfn) == MIGRATE_UNMOVABLE
    assert zone.owner_of(pfn) == OWNER_SLAB + cache.cache_id


def test_dentry_slabs_are_reclaimable():
    zone, caches = machine()
    caches.create("shmem_inode_cache", 752)
    cache = caches.create("dentry", 192)
    assert cache.migratetype == MIGRATE_RECLAIMABLE
    pfn = cache.slab_of(cache.alloc()).pfn
    # The first RECLAIMABLE request claimed a MOVABLE pageblock for its type.
    assert zone.pageblock_migratetype(pfn) == MIGRATE_RECLAIMABLE
    assert zone.owner_of(pfn) == OWNER_SLAB + 1


def test_flags_table_decides_the_page_type_not_the_name():
    for name in ("dentry", "inode_cache", "ext4_inode_cache", "xfs_inode", "radix_tree_node",
                 "buffer_head", "kmalloc-rcl-64", "proc_inode_cache"):
        assert cache_migratetype(cache_flags(name)) == MIGRATE_RECLAIMABLE, name
    for name in ("shmem_inode_cache", "kmalloc-64", "kmalloc-cg-64", "task_struct",
                 "some_driver_cache"):
        assert cache_migratetype(cache_flags(name)) == MIGRATE_UNMOVABLE, name
    assert CACHE_FLAGS["sighand_cache"] & SLAB_TYPESAFE_BY_RCU
    zone, caches = machine()
    assert caches.create("my_cache", 64, flags=SLAB_RECLAIM_ACCOUNT).migratetype == (
        MIGRATE_RECLAIMABLE)


# --------------------------------------------------------------------------- allocation


def test_allocation_fills_the_cpu_slab_before_taking_another():
    zone, caches = machine()
    cache = caches.create("dentry", 192)
    ids = fill_cpu_slab(cache)
    slab = cache.slab_of(ids[0])
    assert all(cache.slab_of(o) is slab for o in ids)
    assert slab.where == W_CPU and slab.inuse == 21
    nxt = cache.alloc()
    assert cache.slab_of(nxt) is not slab
    assert slab.where == W_FULL  # get_freelist() found nothing: off every list


def test_full_slab_that_gets_a_free_goes_to_the_freeing_cpus_partial_list():
    zone, caches = machine()
    cache = caches.create("dentry", 192)
    ids = fill_cpu_slab(cache, cpu=0)
    cache.alloc(0)  # the first slab is now full
    slab = cache.slab_of(ids[0])
    cache.free(ids[0], cpu=1)
    assert slab.where == W_CPU_PARTIAL and slab.cpu == 1
    assert cache.cpu_partial_slabs_of(1) == [slab]
    assert cache.nr_partial == 0


def test_cpu_partial_overflow_moves_the_list_to_the_node_partial_tail():
    zone, caches = machine()
    cache = caches.create("dentry", 192, cpu_partial_slabs=2)
    slabs = []
    for _ in range(4):  # four full slabs
        ids = fill_cpu_slab(cache)
        slabs.append((cache.slab_of(ids[0]), ids))
    cache.alloc()  # the fourth is full too
    for _slab, ids in slabs[:3]:
        cache.free(ids[0])
    # The third put_cpu_partial found 2 slabs (= cpu_partial_slabs): they went to the
    # node list in head-first order (the most recent first), and the third stays.
    assert cache.cpu_partial_slabs_of(0) == [slabs[2][0]]
    assert cache.node_partial_slabs() == [slabs[1][0], slabs[0][0]]
    assert cache.stats.cpu_partial_drain == 1


def test_overflow_discards_empty_slabs_once_nr_partial_reaches_min_partial():
    zone, caches = machine()
    cache = caches.create("dentry", 192, cpu_partial_slabs=1, min_partial=0)
    ids = fill_cpu_slab(cache)
    other = fill_cpu_slab(cache)
    cache.alloc()
    slab = cache.slab_of(ids[0])
    for oid in ids:  # the slab empties on CPU 1's partial list: exempt, kept
        cache.free(oid, cpu=1)
    assert slab.where == W_CPU_PARTIAL and slab.inuse == 0
    cache.free(other[0], cpu=1)  # overflow: the empty slab is discarded, not listed
    assert slab.where == W_FREED
    assert cache.cpu_partial_slabs_of(1) == [cache.slab_of(other[1])]
    zone.check()


def test_allocation_order_is_cpu_slab_cpu_partial_node_partial_new_slab():
    zone, caches = machine()
    cache = caches.create("dentry", 192, cpu_partial_slabs=0)
    full = [fill_cpu_slab(cache) for _ in range(3)]
    last = cache.alloc()  # a fourth slab is the CPU slab
    for ids in full:
        cache.free(ids[0])  # no CPU partial lists: to the node partial tail
    node = cache.node_partial_slabs()
    assert node == [cache.slab_of(ids[1]) for ids in full]
    cpu_slab = cache.slab_of(last)
    for _ in range(20):
        assert cache.slab_of(cache.alloc()) is cpu_slab
    # The CPU slab is full: the node list head is next, then the following ones.
    assert cache.slab_of(cache.alloc()) is node[0]
    assert cache.slab_of(cache.alloc()) is node[1]
    assert cache.slab_of(cache.alloc()) is node[2]
    before = cache.nr_slabs
    cache.alloc()
    assert cache.nr_slabs == before + 1  # nothing partial left: a new slab


def test_get_partial_node_also_refills_the_cpu_partial_list():
    zone, caches = machine()
    cache = caches.create("dentry", 192, cpu_partial_slabs=4)
    cache_nodes = []
    for _ in range(8):
        ids = fill_cpu_slab(cache)
        cache_nodes.append(ids)
    cache.alloc()
    for ids in cache_nodes:
        cache.free(ids[0], cpu=1)  # CPU 1's list overflows into the node list
    cache.flush_cpu_slabs(1)
    assert cache.nr_partial == 8
    # CPU 0's slab is full; the next allocation takes the node head as CPU slab and
    # moves cpu_partial_slabs / 2 + 1 = 3 more to CPU 0's partial list.
    for _ in range(20):
        cache.alloc()
    cache.alloc()
    assert len(cache.cpu_partial_slabs_of(0)) == 3
    assert cache.nr_partial == 4


def test_first_slab_attempt_has_no_reclaim_then_falls_back_to_the_minimum_order():
    calls = []

    def page_allocator(order, mt, cpu, owner, alloc_flags, noretry):
        calls.append((order, alloc_flags, noretry))
        if noretry:
            return None  # the opportunistic high-order attempt fails
        return zone.alloc(order, mt, cpu, owner, alloc_flags)

    zone = Zone(1 << 14, cpus=2)
    caches = SlabCaches(zone, page_allocator=page_allocator)
    cache = caches.create("shmem_inode_cache", 752)
    oid = cache.alloc()
    assert calls == [(2, ALLOC_WMARK_LOW, True), (0, ALLOC_WMARK_LOW | ALLOC_KSWAPD, False)]
    slab = cache.slab_of(oid)
    assert (slab.order, slab.objects) == (0, 5)
    assert cache.stats.order_fallback == 1
    assert cache.slabinfo_entry().num_objs == 5


def test_fragmented_zone_gives_a_minimum_order_slab():
    zone = Zone(1 << 12, cpus=1, pcp=False)
    pfns = []
    while (pfn := zone.alloc(0, MIGRATE_MOVABLE, alloc_flags=ALLOC_NO_WATERMARKS)) is not None:
        pfns.append(pfn)
    for pfn in pfns[::2]:  # every other page: no free block above order 0
        zone.free(pfn, 0)
    assert max(o for o in range(11) if zone.nr_free[o]) == 0
    cache = SlabCaches(zone).create("shmem_inode_cache", 752)
    slab = cache.slab_of(cache.alloc())
    assert (slab.order, slab.objects) == (0, 5)
    cache.check()
    zone.check()


def test_allocation_fails_cleanly_when_the_zone_is_exhausted():
    zone = Zone(1 << 10, cpus=1, pcp=False)
    while zone.alloc(0, MIGRATE_MOVABLE, alloc_flags=ALLOC_NO_WATERMARKS) is not None:
        pass
    cache = SlabCaches(zone).create("dentry", 192)
    assert cache.alloc() is None
    assert cache.stats.alloc_failed == 1
    assert cache.nr_slabs == 0
    # alloc_id, the compiled callers' form, says the same with -1, and counts it too
    assert cache.alloc_id() == -1
    assert cache.stats.alloc_failed == 2


def test_alloc_id_and_alloc_hand_out_the_same_objects():
    """alloc is alloc_id with None for -1: two caches fed the same calls agree."""
    _, caches_a = machine()
    _, caches_b = machine()
    a = caches_a.create("dentry", 192)
    b = caches_b.create("dentry", 192)
    got_a = [a.alloc(cpu % 2) for cpu in range(100)]
    got_b = [b.alloc_id(cpu % 2) for cpu in range(100)]
    assert got_a == got_b and min(got_b) >= 0
    for oid in got_a[::3]:
        a.free(oid)
        b.free(oid)
    assert [a.alloc() for _ in range(40)] == [b.alloc_id() for _ in range(40)]
    a.check()
    b.check()


# --------------------------------------------------------------------------- free


def test_empty_slab_is_kept_while_nr_partial_is_below_min_partial():
    zone, caches = machine()
    cache = caches.create("dentry", 192, cpu_partial_slabs=0)
    slabs = [fill_cpu_slab(cache) for _ in range(3)]
    cache.alloc()
    for ids in slabs:
        cache.free(ids[0])  # three node-partial slabs, below min_partial (5)
    ids = slabs[0]
    slab = cache.slab_of(ids[1])
    for oid in ids[1:]:
        cache.free(oid)
    assert slab.inuse == 0 and slab.where == W_NODE_PARTIAL
    assert cache.nr_partial == 3 < cache.min_partial


def test_freed_slab_returns_pages_to_buddy_when_the_partial_list_is_full():
    zone, caches = machine()
    cache = caches.create("shmem_inode_cache", 752, cpu_partial_slabs=0)  # order 2
    slabs = [fill_cpu_slab(cache) for _ in range(7)]
    cache.alloc()
    for ids in slabs:
        cache.free(ids[0])
    assert cache.nr_partial == 7 >= cache.min_partial
    allocated = zone.nr_allocated_pages
    slab = cache.slab_of(slabs[0][1])
    for oid in slabs[0][1:]:
        cache.free(oid)
    assert slab.where == W_FREED
    assert zone.nr_allocated_pages == allocated - 4
    assert cache.nr_slabs == 7 and cache.stats.pages_freed == 4
    zone.check()
    cache.check()


def test_double_free_and_unknown_ids_are_clear_errors():
    zone, caches = machine()
    cache = caches.create("dentry", 192)
    oid = cache.alloc()
    cache.free(oid)
    with pytest.raises(BadSlabFree, match="dentry: double free of object"):
        cache.free(oid)
    with pytest.raises(BadSlabFree, match="never allocated"):
        cache.free(12345)
    other = cache.alloc()
    cache.free_rcu(other)
    with pytest.raises(BadSlabFree, match="waits for an RCU free"):
        cache.free(other)


# --------------------------------------------------------------------------- RCU


def test_rcu_pending_object_keeps_its_slab_non_empty_until_the_grace_period_ends():
    zone, caches = machine()
    cache = caches.create("dentry", 192, rcu_grace=0.05, cpu_partial_slabs=0, min_partial=0)
    ids = fill_cpu_slab(cache)
    cache.alloc()
    slab = cache.slab_of(ids[0])
    for oid in ids[1:]:
        cache.free(oid)
    cache.free_rcu(ids[0], now=1.0)  # the last object, freed through call_rcu
    assert slab.inuse == 1 and slab.where == W_NODE_PARTIAL
    assert cache.nr_live == 1  # the cache's own object count + 1 fresh one
    assert cache.rcu_advance(1.049) == 0
    assert slab.inuse == 1
    assert cache.rcu_advance(1.05) == 1
    assert slab.where == W_FREED
    zone.check()


def test_rcu_frees_run_in_fifo_batches():
    zone, caches = machine()
    cache = caches.create("dentry", 192, rcu_grace=0.1)
    ids = [cache.alloc() for _ in range(10)]
    for i, oid in enumerate(ids):
        cache.free_rcu(oid, now=i * 0.01)
    assert cache.rcu_advance(0.125) == 3  # queued at 0.00, 0.01, 0.02
    assert cache.rcu_advance(1.0, limit=4) == 4
    assert cache.nr_rcu_pending == 3
    assert [cache.is_allocated(o) for o in ids] == [False] * 7 + [True] * 3


def test_typesafe_by_rcu_slab_pages_return_after_a_grace_period():
    zone, caches = machine()
    cache = caches.create("sighand_cache", 2112, rcu_grace=0.2, cpu_partial_slabs=0,
                          min_partial=0)
    assert cache.typesafe_by_rcu
    ids = fill_cpu_slab(cache)
    cache.alloc()
    allocated = zone.nr_allocated_pages
    for oid in ids:
        cache.free(oid)  # objects are reusable at once; the page is not
    assert cache.nr_slabs == 1 and zone.nr_allocated_pages == allocated
    cache.rcu_advance(0.2)
    assert zone.nr_allocated_pages == allocated - 8
    zone.check()


# --------------------------------------------------------------------------- slabinfo


def test_slabinfo_counts_free_slots_of_cpu_slabs_as_active():
    zone, caches = machine()
    cache = caches.create("dentry", 192)
    cache.alloc()
    e = cache.slabinfo_entry()
    # get_slabinfo subtracts only node-partial free objects: the CPU slab's 20 free
    # slots count as active.
    assert (e.active_objs, e.num_objs, e.active_slabs, e.num_slabs) == (21, 21, 1, 1)
    cache.flush_cpu_slabs()
    e = cache.slabinfo_entry()
    assert (e.active_objs, e.num_objs) == (1, 21)


def test_slabinfo_counts_cpu_partial_slots_as_active():
    zone, caches = machine()
    cache = caches.create("dentry", 192)
    ids = fill_cpu_slab(cache) + fill_cpu_slab(cache)
    cache.alloc()
    for oid in ids[:10] + ids[21:30]:  # two slabs on CPU 0's partial list
        cache.free(oid)
    e = cache.slabinfo_entry()
    assert (e.active_objs, e.num_objs, e.num_slabs) == (63, 63, 3)
    cache.flush_cpu_slabs()
    assert cache.slabinfo_entry().active_objs == 63 - 19 - 20


def test_slabinfo_text_round_trips_through_the_procfs_parser():
    zone, caches = machine()
    caches.create_from_slabinfo(parse_slabinfo(SLABINFO.read_text())[:5])
    dentry = caches.create("dentry", 192)
    for _ in range(30):
        dentry.alloc()
    parsed = parse_slabinfo(caches.format_slabinfo())
    assert [e.name for e in parsed][-1] == "dentry"
    assert parsed[-1] == dentry.slabinfo_entry()
    assert parsed[0].objperslab == 13 and parsed[0].pagesperslab == 1  # btrfs_delayed_node


# --------------------------------------------------------------------------- shrinker


def test_shrinker_frees_unused_objects_and_gives_referenced_a_second_chance():
    zone, caches = machine()
    cache = caches.create("dentry", 192, rcu_free=False)
    ids = [cache.alloc() for _ in range(6)]
    for oid in ids:
        cache.lru_add(oid)
    cache.mark_referenced(ids[0])
    cache.get_ref(ids[1])  # in use again: only taken off the LRU
    res = cache.shrink(4)
    assert (res.scanned, res.freed, res.rotated, res.removed) == (4, 2, 1, 1)
    assert not cache.is_allocated(ids[2]) and not cache.is_allocated(ids[3])
    assert cache.is_allocated(ids[0]) and cache.is_allocated(ids[1])
    assert cache.lru_order() == [ids[4], ids[5], ids[0]]  # rotated to the tail, bit cleared
    res = cache.shrink(10)
    assert res.freed == 3 and cache.nr_lru == 0


def test_do_shrink_slab_scans_freeable_shifted_by_priority_in_batches():
    scans = []

    def scan(n):
        scans.append(n)
        return n // 2

    # seeks 2: delta = (freeable >> priority) * 4 / 2.
    freed, scanned, deferred = do_shrink_slab(1 << 20, 12, scan)
    assert scans == [128] * 4 and (freed, scanned, deferred) == (256, 512, 0)
    scans.clear()
    # Too little work for a batch: deferred to the next call.
    freed, scanned, deferred = do_shrink_slab(5000, 10, scan)
    assert scans == [] and deferred == 8
    _, _, deferred = do_shrink_slab(5000, 10, scan, nr_deferred=deferred)
    assert deferred == 16
    # A cache smaller than a batch under full pressure is still scanned
    # (total_scan >= freeable), up to twice its size.
    scans.clear()
    do_shrink_slab(50, 0, scan)
    assert scans == [100]
    # 100 objects at priority 0: 200 to scan, one batch, the rest (72) deferred.
    scans.clear()
    _, _, deferred = do_shrink_slab(100, 0, scan)
    assert scans == [128] and deferred == 72


def test_vfs_cache_pressure_scales_the_shrinker_count():
    zone, caches = machine()
    cache = caches.create("dentry", 192, vfs_cache_pressure=200)
    for oid in [cache.alloc() for _ in range(10)]:
        cache.lru_add(oid)
    assert cache.count_objects() == 20


# --------------------------------------------------------------------------- properties


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["alloc", "free", "free_rcu", "rcu", "pin",
                                           "unpin", "flush"]),
                          st.integers(0, 1), st.integers(0, 10**6)),
                min_size=1, max_size=400))
def test_random_allocs_frees_and_rcu_conserve_objects_and_pages(ops):
    zone = Zone(1 << 12, cpus=2)
    caches = SlabCaches(zone)
    cache = caches.create("dentry", 192, rcu_grace=0.5)
    live: set[int] = set()
    pending: set[int] = set()
    now = 0.0
    for op, cpu, r in ops:
        now += 0.1
        if op == "alloc":
            oid = cache.alloc(cpu)
            if oid is not None:
                assert oid not in live and oid not in pending
                live.add(oid)
        elif op in ("free", "free_rcu") and live:
            oid = sorted(live)[r % len(live)]
            live.remove(oid)
            if op == "free":
                cache.free(oid, cpu)
            else:
                cache.free_rcu(oid, cpu, now=now)
                pending.add(oid)
        elif op == "rcu":
            cache.rcu_advance(now)
            pending = {o for o in pending if cache.is_allocated(o)}
        elif op == "pin" and live:
            cache.get_ref(sorted(live)[r % len(live)])
        elif op == "unpin" and live:
            oid = sorted(live)[r % len(live)]
            if cache.refcount(oid):
                cache.put_ref(oid)
        elif op == "flush":
            cache.flush_cpu_slabs(cpu)
        assert cache.nr_live == len(live)
        assert cache.nr_inuse == len(live) + len(pending)
    cache.check()
    zone.check()
    slab_pages = sum(s.pages for s in cache.slabs())
    assert slab_pages == cache.nr_pages
    # Everything freed and drained: the cache holds at most min_partial empty slabs
    # plus CPU slabs, and the zone gets back every other page.
    for oid in list(live):
        cache.free(oid)
    cache.rcu_barrier()
    cache.flush_cpu_slabs()
    assert cache.nr_inuse == 0
    assert cache.nr_slabs <= cache.min_partial
    assert zone.nr_allocated_pages == cache.nr_pages
    zone.check()


# --------------------------------------------------------------------------- the slab's own lists


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 10**6)), max_size=120),
       st.integers(1, 40))
def test_a_slabs_free_slots_are_a_stack_threaded_through_its_free_slots(ops, objects):
    """``Slab.freelist`` and the links in ``slot_obj`` hand out slots as the stack they
    replaced did (SLUB's freelist through the free objects): the lowest first at the
    start, then the last freed first. ``free`` lists the stack bottom to top, and a
    slot's entry is below 0 exactly when it is free."""
    slab = Slab(0, 0, objects)
    stack = list(range(objects - 1, -1, -1))  # the top is the next handed out
    held: list[int] = []
    for take, r in ops:
        if take and stack:
            slot = slab.pop_free()
            assert slot == stack.pop()
            slab.slot_obj[slot] = 1000 + slot  # the caller's object id
            held.append(slot)
        elif held:
            slot = held.pop(r % len(held))
            slab.push_free(slot)
            stack.append(slot)
        assert slab.free == stack and slab.nr_free == len(stack)
        assert [s for s in range(objects) if slab.slot_obj[s] < 0] == sorted(stack)


def test_a_cache_reuses_a_discarded_slabs_place_and_finds_each_objects_slab():
    """An object's slab is its place in the cache's table; a discarded slab's place
    goes to the next new slab, and every object still finds its own."""
    zone = Zone(1 << 12, cpus=1)
    cache = SlabCaches(zone).create("dentry", 192, min_partial=0, cpu_partial_slabs=0)
    per = cache.objects_per_slab
    first = [cache.alloc_id(0) for _ in range(3 * per)]
    slabs = [cache.slab_of(oid) for oid in first]
    places = sorted({s.sid for s in slabs})
    assert places == [0, 1, 2]
    middle = slabs[per]
    for oid in first[per:2 * per]:
        cache.free(oid, 0)
    assert cache.slab_of(first[per]) is None and middle.sid not in {
        cache.slab_of(o).sid for o in first[:per] + first[2 * per:]}
    later = [cache.alloc_id(0) for _ in range(2 * per)]
    reused = {cache.slab_of(oid).sid for oid in later}
    assert middle.sid in reused  # the freed place, taken by a new slab
    for oid in first[:per] + first[2 * per:] + later:
        slab = cache.slab_of(oid)
        assert oid in cache.objects_of(slab)
    cache.check()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["alloc", "alloc", "add", "del", "free"]),
                          st.integers(0, 10**6)), max_size=200),
       st.integers(0, 300))
def test_the_lru_links_grow_at_the_first_object_put_on_the_list(ops, before):
    """The list_lru's links cover the ids made so far only once an object is put on the
    list: a cache that never uses it keeps none, and one that starts late (``before``
    objects first) keeps its list in order against a plain list."""
    zone = Zone(1 << 13, cpus=1)
    cache = SlabCaches(zone).create("dentry", 192)
    live = [cache.alloc_id(0) for _ in range(before)]
    assert len(cache._lru_next) == 0 == len(cache._lru_prev)
    model: list[int] = []
    for op, r in ops:
        if op == "alloc":
            oid = cache.alloc_id(0)
            if oid >= 0:
                live.append(oid)
        elif op == "add" and live:
            oid = live[r % len(live)]
            cache.lru_add(oid)
            if oid not in model:
                model.append(oid)
        elif op == "del" and model:
            oid = model.pop(r % len(model))
            cache.lru_del(oid)
        elif op == "free" and live:
            oid = live.pop(r % len(live))
            if oid in model:
                model.remove(oid)
                cache.lru_del(oid)
            cache.free(oid, 0)
        assert cache.lru_order() == model
    if model:
        assert len(cache._lru_next) >= max(model) + 1
    cache.check()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["alloc", "alloc", "free", "free_rcu", "rcu"]),
                          st.integers(0, 10**6)), max_size=300))
def test_the_cache_hands_out_each_slabs_slots_last_freed_first(ops):
    """Through the cache's own paths (``alloc_id`` and ``free`` pop and push a slab's
    freelist inline; ``rcu_advance`` frees through ``Slab.push_free``), every slab
    hands out its slots as a stack per slab would: the lowest first in a new slab,
    then the last freed first. A slab's model starts with it and ends when it is
    discarded (its pfn may come back as another slab)."""
    zone = Zone(1 << 12, cpus=1)
    cache = SlabCaches(zone).create("dentry", 192, rcu_grace=0.0)
    stacks: dict[int, list[int]] = {}  # slab pfn -> its free slots, the next one last
    live: list[int] = []
    pending: list[tuple[int, object, int]] = []  # (oid, slab, slot), in call_rcu order
    now = 0.0

    def freed(slab, slot: int) -> None:
        if slab.where == W_FREED:
            stacks.pop(slab.pfn, None)
        else:
            stacks[slab.pfn].append(slot)

    for op, r in ops:
        now += 0.1
        if op == "alloc":
            oid = cache.alloc_id(0)
            if oid < 0:
                continue
            slab = cache.slab_of(oid)
            stack = stacks.setdefault(slab.pfn, list(range(slab.objects - 1, -1, -1)))
            assert cache.objects_of(slab).count(oid) == 1
            assert slab.slot_obj[stack.pop()] == oid
            live.append(oid)
        elif op in ("free", "free_rcu") and live:
            oid = live.pop(r % len(live))
            slab = cache.slab_of(oid)
            slot = list(slab.slot_obj).index(oid)
            if op == "free":
                cache.free(oid, 0)
                freed(slab, slot)
            else:
                cache.free_rcu(oid, 0, now=now)
                pending.append((oid, slab, slot))
        elif op == "rcu":
            cache.rcu_advance(now)
            for oid, slab, slot in pending:  # FIFO: freed in the order queued
                assert not cache.is_allocated(oid)
                freed(slab, slot)
            pending = []
        for slab in cache.slabs():
            assert slab.free == stacks[slab.pfn]
    cache.check()


@pytest.mark.parametrize("where", ["out", "cycle"])
def test_check_finds_a_freelist_link_out_of_the_slab_or_into_a_cycle(where):
    """A free slot whose link leaves the slab (slot 998) or goes back to the slot
    before it (a cycle) is a miscount that ``check`` reports as corruption."""
    from sim.slab import SlabCorrupt

    zone = Zone(1 << 10, cpus=1)
    cache = SlabCaches(zone).create("dentry", 192)
    oid = cache.alloc_id(0)
    slab = cache.slab_of(oid)
    free = slab.free  # the next one handed out last
    assert len(free) == slab.objects - 1 >= 2
    cache.check()
    target = 998 if where == "out" else free[-1]
    slab.slot_obj[free[-2]] = -target - 2  # the second on the list links to ``target``
    with pytest.raises(SlabCorrupt):
        cache.check()


def test_a_slab_of_the_most_objects_slub_allows_keeps_every_objects_slot():
    """A slab holds at most MAX_OBJS_PER_PAGE (32767: ``slab->objects`` is 15 bits)
    objects, and each object's slot is kept in 16 bits: the last slot of the largest
    slab reads back, and the object's free gives that slot back."""
    from sim.slab import MAX_OBJS_PER_PAGE

    zone = Zone(1 << 12, cpus=1)
    geometry = SlabGeometry(8, MAX_OBJS_PER_PAGE, 6)
    cache = SlabCaches(zone).create("tiny", geometry=geometry)
    oids = [cache.alloc_id(0) for _ in range(MAX_OBJS_PER_PAGE)]
    slab = cache.slab_of(oids[-1])
    assert slab.objects == MAX_OBJS_PER_PAGE and slab.nr_free == 0
    assert all(cache.slab_of(oid) is slab for oid in oids)
    assert slab.slot_obj[MAX_OBJS_PER_PAGE - 1] == oids[-1]
    cache.free(oids[-1], 0)
    assert slab.free == [MAX_OBJS_PER_PAGE - 1]
    cache.check()
