"""sim.replay replays a kmem trace as the kernel ran it, and lands where the real 6.18
kernel landed: the slab pages it allocated, and the objects the trace leaves alive."""

import gzip
import lzma
from pathlib import Path

import pytest
import simpy
from trace_helpers import dentry_alloc, dentry_free

import sim
from sim.buddy import ALLOC_NO_WATERMARKS, OWNER_MOVABLE, Zone
from sim.config import DefragSection
from sim.defrag import Defragmenter
from sim.errors import FragsimError
from sim.ftrace import (
    EV_CACHE_ALLOC,
    EV_CACHE_FREE,
    EV_KFREE,
    EV_KMALLOC,
    EV_PAGE_ALLOC,
    EV_PAGE_FREE,
    EV_PAGE_FREE_BATCHED,
    RECORD_SIZE,
    TraceEvent,
    TraceReader,
)
from sim.gfp import (
    __GFP_COMP,
    __GFP_DMA,
    __GFP_RECLAIMABLE,
    __GFP_ZERO,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
    GFP_KERNEL_ACCOUNT,
    parse_gfp,
)
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE
from sim.procfs import parse_slabinfo
from sim.replay import (
    KMALLOC_MAX_CACHE_SIZE,
    Replayer,
    build_replay,
    describe_alloc_failure,
    is_slab_page,
    kmalloc_cache_name,
    replay_file,
)
from sim.slab import SlabCaches
from sim.snapshot import InitialPopulation, populate_from_slabinfo

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "configs" / "examples" / "tmpfs-churn-20k-keep10"
TRACE = EXAMPLE / "trace.txt.xz"
SNAP = ROOT / "tests" / "data" / "kmem-traces" / "tmpfs-churn-20k-keep10"
SLICE = ROOT / "tests" / "data" / "kmem-traces" / "slice.txt.gz"

# The two slab page signatures of the real trace (mm/slub.c allocate_slab).
SHMEM_SLAB_GFP = parse_gfp(
    "__GFP_IO|__GFP_FS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC")
DENTRY_SLAB_GFP = parse_gfp("GFP_KERNEL|__GFP_RECLAIMABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP")
READAHEAD_GFP = parse_gfp("GFP_NOFS|__GFP_HIGHMEM|__GFP_MOVABLE|__GFP_NOWARN|__GFP_NORETRY|"
                          "__GFP_COMP|__GFP_HARDWALL")


def ev(kind, ts=1.0, cpu=0, ptr="", pfn=-1, name=None, req=0, alloc=0, gfp=0, order=0, mt=0,
       accounted=False, lineno=0) -> TraceEvent:
    return TraceEvent(ts, cpu, kind, ptr, pfn, name, req, alloc, gfp, order, mt, accounted,
                      lineno)


def alloc(ptr, name, ts=1.0, cpu=0, size=192, lineno=0):
    return ev(EV_CACHE_ALLOC, ts, cpu, ptr, name=name, req=size, alloc=size, gfp=GFP_KERNEL,
              lineno=lineno)


def page_alloc(pfn, order, mt=MIGRATE_UNMOVABLE, lineno=0):
    """A replayed (not slab) mm_page_alloc."""
    gfp = GFP_HIGHUSER_MOVABLE if mt == MIGRATE_MOVABLE else GFP_KERNEL
    return ev(EV_PAGE_ALLOC, pfn=pfn, order=order, mt=mt, gfp=gfp, lineno=lineno)


def free(ptr, name, ts=1.0, cpu=0):
    return ev(EV_CACHE_FREE, ts, cpu, ptr, name=name)


def machine(slabinfo: str | None = None, pages: int = 1 << 14):
    zone = Zone(pages)
    caches = SlabCaches(zone)
    population = None
    if slabinfo:
        population = populate_from_slabinfo(caches, parse_slabinfo(slabinfo))
    return zone, caches, population


SMALL_SLABINFO = (
    "slabinfo - version: 2.1\n"
    "dentry                42     42    192   21    1 : tunables    0    0    0 : slabdata "
    "     2      2      0\n"
)


# ------------------------------------------------------------------ routing


@pytest.mark.parametrize("size, gfp, accounted, name", [
    (96, GFP_KERNEL, False, "kmalloc-96"),
    (192, GFP_KERNEL | __GFP_ZERO, False, "kmalloc-192"),
    (16, GFP_KERNEL_ACCOUNT, True, "kmalloc-cg-16"),
    (1024, GFP_KERNEL_ACCOUNT, True, "kmalloc-cg-1k"),
    (64, GFP_KERNEL | __GFP_RECLAIMABLE, False, "kmalloc-rcl-64"),
    # kmalloc_type: __GFP_RECLAIMABLE wins over __GFP_ACCOUNT, __GFP_DMA over both.
    (64, GFP_KERNEL_ACCOUNT | __GFP_RECLAIMABLE, True, "kmalloc-rcl-64"),
    (8192, GFP_KERNEL | __GFP_DMA | __GFP_RECLAIMABLE, False, "dma-kmalloc-8k"),
    (2048, GFP_KERNEL, False, "kmalloc-2k"),
])
def test_kmalloc_routing_follows_kmalloc_type(size, gfp, accounted, name):
    assert kmalloc_cache_name(size, gfp, accounted) == name
    # Every such name exists in the real 6.18 slabinfo.
    names = {e.name for e in parse_slabinfo((SNAP / "before.slabinfo").read_text())}
    assert name in names


def test_slab_pages_are_recognised_by_gfp_signature_and_migratetype():
    assert is_slab_page(SHMEM_SLAB_GFP, MIGRATE_UNMOVABLE)
    assert is_slab_page(DENTRY_SLAB_GFP, MIGRATE_RECLAIMABLE)
    assert is_slab_page(parse_gfp("GFP_NOWAIT|__GFP_NORETRY|__GFP_COMP"), MIGRATE_UNMOVABLE)
    assert not is_slab_page(READAHEAD_GFP, MIGRATE_MOVABLE)  # readahead: same flags, MOVABLE
    assert not is_slab_page(parse_gfp("GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP"),
                            MIGRATE_UNMOVABLE)
    assert not is_slab_page(GFP_HIGHUSER_MOVABLE | __GFP_COMP, MIGRATE_MOVABLE)


def test_kmalloc_goes_to_its_cache_and_kfree_frees_it():
    zone, caches, _ = machine()
    rep = Replayer(zone, caches)
    rep.feed([ev(EV_KMALLOC, ptr="a", req=150, alloc=192, gfp=GFP_KERNEL_ACCOUNT,
                 accounted=True),
              ev(EV_KMALLOC, ptr="b", req=40, alloc=64, gfp=GFP_KERNEL | __GFP_RECLAIMABLE)])
    rep.run()
    cg, rcl = caches["kmalloc-cg-192"], caches["kmalloc-rcl-64"]
    assert (cg.nr_live, rcl.nr_live) == (1, 1)
    assert rcl.migratetype == MIGRATE_RECLAIMABLE and cg.migratetype == MIGRATE_UNMOVABLE
    assert rep.stats.caches_created == ["kmalloc-cg-192", "kmalloc-rcl-64"]
    rep.apply(ev(EV_KFREE, ptr="a"))
    assert cg.nr_live == 0


def test_a_large_kmalloc_takes_pages_and_adopts_the_traced_page_allocation():
    zone, caches, _ = machine()
    rep = Replayer(zone, caches)
    before = zone.nr_free_pages
    # No page events traced: the kmalloc takes get_order(16 KiB) = order 2 itself.
    rep.feed([ev(EV_KMALLOC, ptr="big", req=9000, alloc=16384, gfp=GFP_KERNEL)])
    rep.run()
    assert rep.stats.large_kmallocs == 1 and rep.stats.large_kmallocs_adopted == 0
    assert zone.nr_free_pages + zone.pcp_pages == before - 4
    rep.apply(ev(EV_KFREE, ptr="big"))
    assert zone.nr_free_pages + zone.pcp_pages == before
    # With page events: __kmalloc_large_node's mm_page_alloc comes first; adopt it.
    rep.feed([ev(EV_PAGE_ALLOC, 2.0, pfn=0x5000, order=2, gfp=GFP_KERNEL | __GFP_COMP),
              ev(EV_KMALLOC, 2.0, ptr="big2", req=9000, alloc=16384, gfp=GFP_KERNEL),
              ev(EV_KFREE, 2.1, ptr="big2"),
              ev(EV_PAGE_FREE, 2.1, pfn=0x5000, order=2)])
    rep.run()
    st = rep.stats
    assert (st.large_kmallocs, st.large_kmallocs_adopted, st.large_kfrees) == (2, 1, 2)
    assert (st.page_allocs, st.page_frees, st.unknown_page_frees) == (1, 1, 0)
    assert zone.nr_free_pages + zone.pcp_pages == before
    assert KMALLOC_MAX_CACHE_SIZE == 8192


# ------------------------------------------------------------------ pairing


def test_objects_pair_by_ptr_and_unknown_frees_take_from_the_initial_population():
    zone, caches, population = machine(SMALL_SLABINFO)
    dentry = caches["dentry"]
    assert dentry.nr_live == 42 and population.count("dentry") == 42
    rep = Replayer(zone, caches, population=population)
    rep.feed([alloc("p1", "dentry"), alloc("p2", "dentry"), free("p1", "dentry"),
              free("old1", "dentry"), free("old2", "dentry")])
    rep.run()
    st = rep.stats
    assert (st.events, st.unknown_frees, st.unknown_frees_unmatched) == (5, 2, 0)
    assert dentry.nr_live == 42 + 2 - 1 - 2
    assert list(rep.objects) == ["p2"]
    report = rep.cache_stats()["dentry"]
    assert (report.allocs, report.frees, report.unknown_frees, report.initial_objects) == (
        2, 3, 2, 42)
    caches.check()


def test_unknown_frees_beyond_the_population_and_null_kfrees_are_counted():
    zone, caches, population = machine(SMALL_SLABINFO)
    rep = Replayer(zone, caches, population=population)
    frees = [free(f"old{i}", "dentry") for i in range(45)]
    rep.feed([*frees, ev(EV_KFREE, ptr="0000000000000000"), ev(EV_KFREE, ptr="never")])
    rep.run()
    st = rep.stats
    assert (st.unknown_frees, st.unknown_frees_unmatched, st.kfree_null) == (42, 3 + 1, 1)
    assert caches["dentry"].nr_live == 0


def test_an_unnamed_kmem_cache_alloc_finds_its_cache_by_object_size():
    # Kernels before 6.18 print no name= on kmem_cache_alloc: s->size picks the cache.
    zone, caches, population = machine(SMALL_SLABINFO)
    rep = Replayer(zone, caches, population=population)
    rep.feed([alloc("a", None), alloc("b", None, size=1000), free("a", None)])
    rep.run()
    assert caches["dentry"].nr_allocs - 42 == 1  # the one 192-byte cache of the slabinfo
    assert caches["size-1000"].nr_live == 1 and rep.stats.caches_created == ["size-1000"]
    assert caches["dentry"].nr_live == 42


def test_an_allocation_of_a_live_pointer_frees_the_old_object_first():
    # maple_node frees go through untraced bulk paths in 6.18: the trace reuses a ptr.
    zone, caches, _ = machine()
    rep = Replayer(zone, caches)
    rep.feed([alloc("m", "maple_node", size=256), alloc("m", "maple_node", size=256)])
    rep.run()
    assert rep.stats.reallocs == 1 and caches["maple_node"].nr_live == 1


def test_pages_pair_by_pfn_and_slab_pages_are_not_replayed():
    zone, caches, _ = machine()
    rep = Replayer(zone, caches)
    start = zone.nr_allocated_pages
    rep.feed([
        ev(EV_PAGE_ALLOC, pfn=100, order=0, mt=MIGRATE_MOVABLE, gfp=GFP_HIGHUSER_MOVABLE),
        ev(EV_PAGE_ALLOC, pfn=104, order=2, mt=MIGRATE_UNMOVABLE, gfp=SHMEM_SLAB_GFP),
        ev(EV_PAGE_ALLOC, pfn=108, order=0, mt=MIGRATE_MOVABLE, gfp=READAHEAD_GFP),
        alloc("s", "shmem_inode_cache", size=752),
        ev(EV_PAGE_FREE, pfn=104, order=2),  # a slab page
        ev(EV_PAGE_FREE, pfn=100, order=0),
        ev(EV_PAGE_FREE, pfn=999, order=0),  # allocated before the trace
        ev(EV_PAGE_ALLOC, pfn=0, order=9, mt=MIGRATE_MOVABLE, ptr="null"),  # failed
    ])
    rep.run()
    st = rep.stats
    assert (st.slab_page_allocs, st.slab_page_frees) == (1, 1)
    assert (st.page_allocs, st.page_frees, st.unknown_page_frees) == (2, 1, 1)
    assert st.trace_page_alloc_failures == 1
    assert st.slab_pages_by_type == {"order-2 Unmovable": 1}
    assert rep.cache_stats()["shmem_inode_cache"].trace_slab_pages == 1
    # One readahead page and the simulated shmem slab (order 3: 21 x 752 bytes... or 2).
    shmem = caches["shmem_inode_cache"]
    assert zone.nr_allocated_pages == start + 1 + shmem.nr_pages
    sim_pfn, order = rep.pages[108]
    assert zone.owner_of(sim_pfn) == OWNER_MOVABLE and order == 0


def test_mm_page_free_batched_does_not_free_a_page_twice():
    zone, caches, _ = machine()
    rep = Replayer(zone, caches)
    page = dict(mt=MIGRATE_MOVABLE, gfp=GFP_HIGHUSER_MOVABLE)
    rep.feed([
        ev(EV_PAGE_ALLOC, pfn=1, **page), ev(EV_PAGE_ALLOC, pfn=2, **page),
        # 6.x: free_pages_prepare traces mm_page_free, then the batched event follows.
        ev(EV_PAGE_FREE, pfn=1), ev(EV_PAGE_FREE_BATCHED, pfn=1),
        # 4.x order: the batched event first, then mm_page_free.
        ev(EV_PAGE_FREE_BATCHED, pfn=2), ev(EV_PAGE_FREE, pfn=2),
    ])
    rep.run()
    st = rep.stats
    assert (st.page_frees, st.page_free_batched, st.page_free_duplicates) == (2, 2, 1)
    assert st.unknown_page_frees == 0 and not rep.pages


def test_free_mode_defrag_evicts_no_traced_object_and_move_mode_relocates_them():
    zone, caches, population = machine(SMALL_SLABINFO)
    rep = Replayer(zone, caches, population=population)
    # 210 dentries in 10 slabs, then 9 of every 10 freed: sparse slabs, all held.
    rep.feed([alloc(f"p{i}", "dentry", ts=i * 1e-3) for i in range(210)]
             + [free(f"p{i}", "dentry", ts=1.0) for i in range(210) if i % 10])
    rep.run()
    dentry = caches["dentry"]
    live = dentry.nr_live
    assert live == 42 + 21
    dentry.flush_cpu_slabs()  # the sparse slabs onto the node partial list
    env = simpy.Environment()
    config = DefragSection(max_partial=0, used_ratio=30, cost_free=0, cost_move=0, cost_get=0)
    defrag = Defragmenter(env, caches, {"dentry": "free"}, config)
    env.process(defrag.run_pass())
    env.run()
    assert defrag.stats.slabs_considered > 0
    assert defrag.stats.objects_evicted == 0 and dentry.nr_live == live

    moving = Defragmenter(env, caches, {"dentry": "move"}, config)
    env.process(moving.run_pass())
    env.run()
    assert moving.stats.objects_moved > 0
    dentry.rcu_barrier()  # the moved objects' old copies
    # Object ids survive the move: the trace frees every survivor where it now is.
    rep.feed([free(f"p{i}", "dentry", ts=2.0) for i in range(0, 210, 10)])
    rep.run()
    assert rep.stats.bad_frees == 0 and not rep.objects
    assert dentry.nr_live == 42
    caches.check()


def test_compaction_moving_a_traced_page_is_followed():
    zone, caches, _ = machine()
    rep = Replayer(zone, caches)
    rep.apply(ev(EV_PAGE_ALLOC, pfn=7, mt=MIGRATE_MOVABLE, gfp=GFP_HIGHUSER_MOVABLE))
    sim, order = rep.pages[7]
    target = zone.alloc(0, MIGRATE_MOVABLE, owner=0)
    zone.on_migrate = rep.migrate_page
    zone.migrate_page(sim, target, 0)
    assert rep.pages[7] == (target, 0) and rep.stats.pages_migrated == 1
    rep.apply(ev(EV_PAGE_FREE, 2.0, pfn=7))
    assert not zone.is_allocated(target) and rep.stats.page_frees == 1
    assert not rep.migrate_page(12345, 1, 0)  # not a traced page


# ------------------------------------------------------------------ time


def test_speed_scales_time_and_events_until_applies_in_order():
    zone, caches, _ = machine()
    rep = Replayer(zone, caches, speed=2.0, start=10.0)
    rep.feed([alloc(f"p{i}", "dentry", ts=100.0 + i * 0.1) for i in range(10)])
    assert rep.next_time() == 10.0
    assert rep.events_until(10.2) == 5  # ts 100.0 .. 100.4 -> 10.0 .. 10.2
    assert rep.next_time() == pytest.approx(10.25)
    assert rep.now == pytest.approx(10.2)
    assert rep.events_until(10.2) == 0
    assert rep.events_until(100.0) == 5
    assert rep.next_time() is None and rep.stats.events == 10
    assert rep.stats.span_s == pytest.approx(0.9)


def test_a_simpy_process_replays_the_trace_in_simulated_time():
    zone, caches, population = machine(SMALL_SLABINFO)
    rep = Replayer(zone, caches, population=population, speed=0.5)
    events = [alloc(f"p{i}", "dentry", ts=5.0 + i * 0.01) for i in range(50)]
    events += [free(f"p{i}", "dentry", ts=6.0 + i * 0.01) for i in range(0, 50, 2)]
    rep.feed(events)
    env = simpy.Environment()
    seen = []

    def replay(env, tick=0.05):
        while (t := rep.next_time()) is not None:
            yield env.timeout(max(t - env.now, tick))
            seen.append(rep.events_until(env.now))

    env.process(replay(env))
    env.run()
    assert sum(seen) == 75 and len(seen) > 5
    assert env.now == pytest.approx((6.48 - 5.0) / 0.5, abs=0.06)
    assert caches["dentry"].nr_live == 42 + 25


def test_a_replay_stopped_early_ends_the_parser_process():
    zone, caches, _ = machine(pages=1 << 16)
    rep = Replayer(zone, caches)
    reader = TraceReader(SLICE, parallel=True)
    rep.feed(reader)
    first = rep.next_time()
    assert rep.events_until(first + 0.001) > 0
    rep.close()  # the run ends before the trace does
    assert rep.next_time() is None and rep.events_until(1e9) == 0


def test_rcu_queue_mode_delays_rcu_freed_caches_by_a_grace_period():
    zone, caches, population = machine(SMALL_SLABINFO)
    rep = Replayer(zone, caches, population=population, rcu_frees="queue")
    dentry = caches["dentry"]
    rep.feed([alloc("a", "dentry", ts=0.0), free("a", "dentry", ts=0.01),
              alloc("b", "dentry", ts=0.05)])
    rep.run()
    assert dentry.nr_rcu_pending == 1 and rep.stats.rcu_queued == 1
    rep.advance(0.2)
    assert dentry.nr_rcu_pending == 0 and dentry.nr_live == 42 + 1
    with pytest.raises(FragsimError, match="rcu_frees"):
        Replayer(zone, caches, rcu_frees="later")
    with pytest.raises(FragsimError, match="speed"):
        Replayer(zone, caches, speed=0)


# ------------------------------------------------------------------ the real kernel


def trace_counts(name: str, text: str) -> tuple[int, int]:
    """kmem_cache_alloc and kmem_cache_free lines of a cache: a plain text count."""
    return text.count(f" name={name} bytes_req="), text.count(f" name={name}\n")


@pytest.fixture(scope="module")
def real():
    assert TRACE.exists(), "configs/examples/tmpfs-churn-20k-keep10/trace.txt.xz is missing"
    result = replay_file(TRACE, slabinfo=EXAMPLE / "before.slabinfo",
                         buddyinfo=EXAMPLE / "before.buddyinfo",
                         pagetypeinfo=EXAMPLE / "before.pagetypeinfo")
    text = lzma.decompress(TRACE.read_bytes()).decode()
    after = {e.name: e for e in parse_slabinfo((EXAMPLE / "after.slabinfo").read_text())}
    before = {e.name: e for e in parse_slabinfo((EXAMPLE / "before.slabinfo").read_text())}
    return result, text, before, after


def test_the_real_trace_replays_completely_and_consistently(real):
    result, _, _, _ = real
    assert result.parse.events == result.stats.events == 372008
    assert result.parse.bad_lines == 0 and result.parse.complete
    assert result.stats.object_alloc_failures == result.stats.page_alloc_failures == 0
    assert result.stats.bad_frees == 0
    result.zone.check()
    result.caches.check()


def test_page_events_are_classed_as_the_kernel_allocated_them(real):
    st = real[0].stats
    # 962 order-2 UNMOVABLE slab pages (shmem_inode_cache, first attempt at its order:
    # __GFP_RECLAIM stripped, __GFP_NOMEMALLOC added) and 962 order-0 RECLAIMABLE ones
    # (dentry). The same gfp string also allocated 3 order-3 pages: task_struct slabs.
    assert st.slab_pages_by_type["order-2 Unmovable"] == 962
    assert st.slab_pages_by_type["order-0 Reclaimable"] == 962
    assert st.slab_pages_by_type["order-3 Unmovable"] == 3
    assert st.slab_page_allocs == 2527 and st.slab_pages_unattributed == 0
    assert st.slab_page_allocs + st.page_allocs == 29786  # every mm_page_alloc, one way
    caches = real[0].replayer.cache_stats()
    assert caches["shmem_inode_cache"].trace_slab_pages == 962
    assert caches["dentry"].trace_slab_pages == 962
    assert caches["task_struct"].trace_slab_pages == 3


@pytest.mark.parametrize("name", ["shmem_inode_cache", "dentry"])
def test_slabs_allocated_are_within_15_percent_of_the_kernels_slab_pages(real, name):
    stats = real[0].replayer.cache_stats()[name]
    assert stats.slabs_allocated == pytest.approx(962, rel=0.15)
    assert stats.slabs_allocated == pytest.approx(stats.trace_slab_pages, rel=0.15)


@pytest.mark.parametrize("name", ["shmem_inode_cache", "dentry"])
def test_final_slabs_are_within_20_percent_of_the_kernels_after_slabinfo(real, name):
    result, _, _, after = real
    assert result.caches[name].nr_slabs == pytest.approx(after[name].num_slabs, rel=0.20)


@pytest.mark.parametrize("name", ["shmem_inode_cache", "dentry"])
def test_live_objects_equal_the_traces_net_count_and_the_kernel_shows_the_rcu_tail(real, name):
    result, text, before, after = real
    allocs, frees = trace_counts(name, text)
    net = before[name].active_objs + allocs - frees
    cache = result.caches[name]
    assert cache.nr_live == cache.nr_inuse == net  # no RCU pending: frees at trace time
    # The kernel's after.slabinfo was read after RCU callbacks pending when tracing
    # stopped had run: it shows fewer objects than the trace's net count.
    assert after[name].active_objs < net
    tail = net - after[name].active_objs
    assert 1500 < tail < 3000


def test_the_summary_has_the_issues_keys(real):
    summary = real[0].summary()
    trace = summary["trace"]
    assert trace["events"] == 372008 and trace["bad_lines"] == 0
    assert trace["span_s"] == pytest.approx(0.770218)
    assert trace["unknown_frees"] == real[0].stats.unknown_frees
    shmem = summary["caches"]["shmem_inode_cache"]
    assert {"slabs_allocated", "slabs_freed"} <= set(shmem)
    assert summary["wall_s"] > 0


# ------------------------------------------------------------------ bad input


def test_a_truncated_trace_replays_what_it_has_and_is_marked_incomplete(tmp_path):
    data = SLICE.read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(data[: len(data) // 2])
    result = replay_file(cut, slabinfo=SNAP / "before.slabinfo")
    assert not result.parse.complete and "ends early" in result.parse.error
    assert 0 < result.stats.events == result.parse.events
    assert result.summary()["trace"]["complete"] is False
    result.caches.check()


def test_snapshots_of_another_version_or_missing_are_one_line_errors(tmp_path):
    old = tmp_path / "old.slabinfo"
    old.write_text("slabinfo - version: 2.0\nfoo 1 1 1 1 1\n")
    with pytest.raises(FragsimError, match="version 2.1") as err:
        replay_file(SLICE, slabinfo=old)
    assert "\n" not in str(err.value)
    with pytest.raises(FragsimError, match="cannot read"):
        replay_file(SLICE, buddyinfo=tmp_path / "none")
    empty = tmp_path / "empty.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(FragsimError, match="empty file"):
        replay_file(empty)


def test_population_objects_are_not_traced_pointers():
    population = InitialPopulation({"dentry": [1, 2, 3]})
    assert population.total == 3 and population.count("inode_cache") == 0


# ------------------------------------------------------------------ bad lines, not wrong numbers


def write_trace(tmp_path, lines):
    path = tmp_path / "trace.txt"
    path.write_text("\n".join(lines) + "\n")
    slabinfo = tmp_path / "before.slabinfo"
    slabinfo.write_text(SMALL_SLABINFO)
    return path, slabinfo


def test_duplicated_frees_are_bad_lines_and_take_nothing_from_the_population(tmp_path):
    # Issue 16: 3 321 duplicated frees took filp's objects from the initial population.
    lines = [dentry_alloc(1.0, "p1"), dentry_free(1.1, "p1")]
    lines += [dentry_free(1.2 + i / 1000, "p1") for i in range(30)]
    lines += [dentry_free(2.0, "old1")]  # an object from before the trace: taken
    path, slabinfo = write_trace(tmp_path, lines)
    result = replay_file(path, slabinfo=slabinfo, nr_pages=1 << 14)
    assert result.stats.unknown_frees == 1
    assert result.caches["dentry"].nr_live == 42 - 1
    trace = result.summary()["trace"]
    assert trace["bad_lines"] == 30 and trace["bad_lines_by_kind"] == {"duplicate_free": 30}
    assert [b["line"] for b in trace["first_bad_lines"]] == list(range(3, 13))
    assert "freed at line 2" in trace["first_bad_lines"][0]["reason"]


def test_an_allocation_of_another_size_than_the_slabinfos_is_a_bad_line(tmp_path):
    lines = [dentry_alloc(1.0, "p1", size=256), dentry_alloc(1.1, "p2"),
             dentry_free(1.2, "p1"), dentry_free(1.3, "p2")]
    path, slabinfo = write_trace(tmp_path, lines)
    result = replay_file(path, slabinfo=slabinfo, nr_pages=1 << 14)
    assert result.parse.bad_by_kind == {"size": 1, "free_of_bad_alloc": 1}
    assert [b.lineno for b in result.parse.first_bad] == [1, 3]
    assert "expected the cache's object size, 192" in result.parse.first_bad[0].reason
    assert result.stats.unknown_frees == 0 and result.caches["dentry"].nr_live == 42


def test_the_free_of_an_object_the_simulation_could_not_allocate_frees_nothing():
    zone, caches, population = machine(SMALL_SLABINFO, pages=1 << 12)
    while zone.alloc(0, MIGRATE_UNMOVABLE, alloc_flags=0) is not None:
        pass  # no page left for a new dentry slab (both slabs are full)
    rep = Replayer(zone, caches, population=population)
    rep.feed([alloc("p1", "dentry"), free("p1", "dentry"),
              ev(EV_KMALLOC, ptr="big", req=20000, alloc=20480, gfp=GFP_KERNEL),
              ev(EV_KFREE, ptr="big")])
    rep.run()
    st = rep.stats
    assert st.object_alloc_failures == 1 and st.page_alloc_failures == 1
    assert st.frees_of_failed_allocs == 2
    assert st.unknown_frees == st.unknown_frees_unmatched == 0
    assert caches["dentry"].nr_live == 42


# ------------------------------------------------------------------ allocation failures


def exhausted_machine():
    """SMALL_SLABINFO's two full dentry slabs in a 16 MiB zone with no free page left."""
    zone, caches, population = machine(SMALL_SLABINFO, pages=1 << 12)
    while zone.alloc(0, MIGRATE_UNMOVABLE, alloc_flags=ALLOC_NO_WATERMARKS) is not None:
        pass
    zone.watermark_boost = 0  # the fallbacks' boost: not the test's
    return zone, caches, population


def test_failed_allocations_are_counted_by_order_migratetype_and_cache():
    zone, caches, population = exhausted_machine()
    rep = Replayer(zone, caches, population=population)
    rep.feed([page_alloc(0x100, 2, lineno=7), page_alloc(0x200, 0, MIGRATE_MOVABLE),
              page_alloc(0x300, 2), alloc("d1", "dentry"), alloc("d2", "dentry"),
              ev(EV_KMALLOC, ptr="k", req=100, alloc=128, gfp=GFP_KERNEL),
              ev(EV_KMALLOC, ptr="big", req=20000, alloc=20480, gfp=GFP_KERNEL)])
    rep.run()
    st = rep.stats
    assert (st.alloc_failures, st.page_alloc_failures, st.object_alloc_failures) == (7, 4, 3)
    assert st.page_alloc_failures_by_order == {"2": 2, "0": 1, "3": 1}  # big: order 3
    assert st.page_alloc_failures_by_migratetype == {"Unmovable": 3, "Movable": 1}
    assert st.object_alloc_failures_by_cache == {"dentry": 2, "kmalloc-128": 1}
    failures = st.failure_summary()
    assert failures["total"] == 7 and list(failures["pages_by_order"]) == ["0", "2", "3"]
    first = failures["first"]
    assert first["line"] == 7 and first["event"] == "mm_page_alloc" and first["cache"] is None
    assert (first["order"], first["migratetype"], first["zone"]) == (2, "Unmovable", "Normal")
    assert first["free_pages"] == zone.nr_free_pages == 0
    assert (first["watermark_min"], first["watermark_low"], first["watermark_high"]) == (
        zone.min_wmark, zone.low_wmark, zone.high_wmark)
    assert first["nr_free"] == [0] * 11


def test_the_first_failure_is_worded_with_its_line_and_the_zones_watermarks():
    zone, caches, population = exhausted_machine()
    rep = Replayer(zone, caches, population=population, zone_name="DMA32")
    rep.feed([alloc("d1", "dentry", lineno=12), page_alloc(0x100, 2, lineno=13)])
    rep.run()
    first = rep.stats.first_alloc_failure
    assert (first["line"], first["cache"], first["order"]) == (12, "dentry", 0)
    assert describe_alloc_failure(first) == (
        f"line 12 (kmem_cache_alloc dentry, order 0 Reclaimable): zone DMA32 had 0 free "
        f"pages, below its low watermark {zone.low_wmark} (min {zone.min_wmark}, high "
        f"{zone.high_wmark})")
    # Enough free pages in all, none in one block of the order: fragmentation.
    above = dict(first, free_pages=10_000, order=4, nr_free=[10_000] + [0] * 10)
    assert describe_alloc_failure(above).endswith(
        f"above its low watermark {zone.low_wmark} (min {zone.min_wmark}, high "
        f"{zone.high_wmark}), but no free block of order 4 or above")
    # Above the watermark, but not by the block's size (__zone_watermark_ok's order term).
    short = dict(first, free_pages=zone.low_wmark + 100, order=9)
    assert f"below the {zone.low_wmark + 512} an order-9 allocation needs" in \
        describe_alloc_failure(short)


def test_the_free_of_a_page_the_simulation_could_not_allocate_is_not_an_unknown_free():
    zone, caches, population = exhausted_machine()
    rep = Replayer(zone, caches, population=population)
    rep.feed([page_alloc(0x100, 1), ev(EV_PAGE_FREE, pfn=0x100, order=1),
              ev(EV_PAGE_FREE, pfn=0x999, order=0)])
    rep.run()
    st = rep.stats
    assert st.page_alloc_failures == st.frees_of_failed_page_allocs == 1
    assert st.unknown_page_frees == 1 and st.page_frees == 0


def test_a_large_kmalloc_whose_traced_page_failed_is_one_failure_not_two():
    zone, caches, population = exhausted_machine()
    rep = Replayer(zone, caches, population=population)
    rep.feed([ev(EV_PAGE_ALLOC, pfn=0x5000, order=2, gfp=GFP_KERNEL | __GFP_COMP),
              ev(EV_KMALLOC, ptr="big", req=9000, alloc=16384, gfp=GFP_KERNEL),
              ev(EV_KFREE, ptr="big"), ev(EV_PAGE_FREE, pfn=0x5000, order=2)])
    rep.run()
    st = rep.stats
    assert st.page_alloc_failures == 1 and st.large_kmallocs_adopted == 1
    assert st.frees_of_failed_allocs == st.frees_of_failed_page_allocs == 1
    assert st.unknown_page_frees == st.unknown_frees_unmatched == 0


def test_a_replays_kswapd_takes_a_fallbacks_watermark_boost_off():
    """Without kswapd the boost of a fallback would stay: the zone would refuse every
    allocation at low + boost (here 512 pages more) for the rest of the trace."""
    setup = build_replay(nr_pages=1 << 12)
    zone = setup.zone
    events = [page_alloc(0x10000 + i * 512, 9) for i in range(7)]  # 7 of 8 pageblocks
    events.append(page_alloc(0x30000, 0, MIGRATE_MOVABLE))  # splits the last one
    # Unmovable order 3 from a Movable pageblock: try_to_claim_block boosts the marks.
    events += [page_alloc(0x20000 + i * 8, 3, lineno=100 + i) for i in range(60)]
    setup.replayer.feed(events)
    setup.replayer.run()
    st = setup.replayer.stats
    assert zone.stats.watermark_boosts == zone.stats.kswapd_wakeups == 1
    assert zone.watermark_boost == 0
    # Order-3 blocks come until the low watermark refuses: free - 7 <= low.
    first = st.first_alloc_failure
    assert first["watermark_boost"] == 0 and first["watermark_low"] == zone.low_wmark
    assert first["free_pages"] - 7 <= zone.low_wmark < first["free_pages"] + 8 - 7
    assert st.page_allocs == 8 + first["line"] - 100


# ------------------------------------------------------------------ records and tuples


def _replay_both_ways(path, snaps, rcu_frees="trace"):
    """The same trace replayed from its TraceReader (the C scanner's records in the
    compiled build, read without a tuple an event) and from its events as tuples."""
    out = []
    for records in (True, False):
        setup = build_replay(slabinfo=snaps / "before.slabinfo",
                             buddyinfo=snaps / "before.buddyinfo",
                             pagetypeinfo=snaps / "before.pagetypeinfo", rcu_frees=rcu_frees)
        rep = setup.replayer
        rep.feed(TraceReader(path) if records else list(TraceReader(path, parallel=False)))
        st = rep.run()
        out.append((st.as_dict(), {n: c.as_dict() for n, c in rep.cache_stats().items()},
                    list(setup.zone.nr_free), sorted(rep.objects), rep.now))
    return out


@pytest.mark.parametrize("rcu_frees", ["trace", "queue"])
def test_records_replay_as_their_event_tuples(rcu_frees):
    """The compiled build replays the parser's records as they come (sim/replay.py
    ``_run_records``); a list of event tuples goes through ``_run_events``. Both must
    leave the machine, the counters and the live pointers alike."""
    snaps = ROOT / "tests" / "data" / "kmem-traces" / "tmpfs-churn-20k-keep10"
    by_records, by_tuples = _replay_both_ways(SLICE, snaps, rcu_frees)
    assert by_records == by_tuples
    assert by_records[0]["events"] > 3000 and len(by_records[3]) > 100


def test_pointers_of_every_spelling_pair_whichever_way_they_are_read(tmp_path):
    """A pointer is keyed by its value when the kernel's %p printed it (16 lowercase hex
    digits, the top bit set or not) and by its text otherwise; a line the C scanner
    leaves to the Python parser (a tab before ptr=, say) and one it reads whole must
    still pair when they name the same pointer."""
    head = "  python3-1  [000] .....  4728.77{:04d}: "
    alloc_line = ("kmem_cache_alloc: call_site=x+0x1/0x2 ptr={} name=dentry bytes_req=192 "
                  "bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=true")
    free_line = "kmem_cache_free: call_site=y+0x1/0x2 ptr={} name=dentry"
    # The scanner learns a tail from the first lines that have it (objects); then it
    # reads the high pointer's and 72e3bdd0's allocations itself.
    kept = ["00000000deadbeef", "0000000011111111"]
    high, low, text = "ffff888100000040", "0000000072e3bdd0", "p-text"
    lines = [alloc_line.format(ptr) for ptr in (*kept, high, low, text)]
    lines += [free_line.format(high).replace(" ptr=", "\tptr="),  # left to Python
              free_line.format(low), free_line.format(text)]
    path = tmp_path / "ptrs.txt"
    path.write_text("".join(head.format(i) + line + "\n" for i, line in enumerate(lines)))
    if sim.NATIVE:  # the pointers come both ways: records, and tuples the parser read
        batches = list(TraceReader(path, parallel=False).record_batches())
        assert [len(b[0]) // RECORD_SIZE for b in batches] == [8]
        assert [ev[3] for ev in batches[0][1]] == [*kept, text, high, text]
    snaps = ROOT / "tests" / "data" / "kmem-traces" / "tmpfs-churn-20k-keep10"
    by_records, by_tuples = _replay_both_ways(path, snaps)
    assert by_records == by_tuples
    stats, _, _, live, _ = by_records
    assert (stats["events"], stats["unknown_frees"], stats["unknown_frees_unmatched"]) == (
        8, 0, 0)
    assert live == sorted(kept)
