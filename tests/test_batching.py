"""Batching is an implementation detail: a batched run equals a page-by-page one.

Workloads hand the engine runs of pages (``Machine.alloc_pages_batch``,
``free_pages_batch``; ``Zone.alloc_batch``/``free_batch`` inline the per-CPU fast
path) and draw vectors of random numbers where the per-page code drew scalars. With
``Machine(batched=False)`` every page goes through ``alloc_pages``/``free_pages`` one
call at a time, drawing as before. These tests hold the two to identical results, to
the last counter, under memory pressure (direct reclaim and compaction in the middle
of a batch), GUP-pinned pages, random CPUs and capped page caches; and the expiry
queue every workload uses to the (time, sequence) heap it replaced.
"""

from __future__ import annotations

import heapq
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# Every client under memory pressure: the scenario tests/test_golden.py pins.
from test_golden import PRESSURE

from sim.buddy import ALLOC_KSWAPD, ALLOC_WMARK_LOW, Zone
from sim.errors import FragsimError
from sim.experiment import load_config, validate_config
from sim.gfp import GFP_HIGHUSER_MOVABLE
from sim.machine import Machine
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_UNMOVABLE
from sim.results import TIMING_KEYS
from sim.runner import run_machine
from workloads.base import PageSet, Workload

# Wall-clock figures differ between any two runs.
WALL_KEYS = set(TIMING_KEYS)


def _values(values) -> list:
    # NaN (no THP attempt yet, an empty cache) never equals itself: name it.
    return ["nan" if isinstance(v, float) and math.isnan(v) else v
            for v in np.asarray(values).ravel().tolist()]


def _outcome(result):
    summary = {k: v for k, v in result.summary.items() if k not in WALL_KEYS}
    series = {key: _values(values) for key, values in result.series.items()}
    return summary, series, result.final, {
        name: {k: _values(v) for k, v in memmap.items()}
        for name, memmap in result.memmap.items()}


@pytest.fixture(scope="module")
def pressure_runs(tmp_path_factory):
    path = Path(tmp_path_factory.mktemp("batching")) / "pressure.yaml"
    path.write_text(PRESSURE)
    config = load_config(path)
    return [run_machine(config, config.seed, "default", batched=b) for b in (True, False)]


def test_pressure_scenario_reaches_the_paths_batching_must_respect(pressure_runs):
    summary = pressure_runs[0].summary
    engine = summary["engine"]
    # A batch is cut short by the slow path: direct reclaim evicting cached pages and
    # compaction migrating held ones, while earlier pages of the batch are in hand.
    assert engine["slowpath"] > 100
    assert engine["direct_reclaim"] > 10
    assert summary["compaction"]["migrated"] > 100
    assert summary["evictions"]["slab_objects"] > 0
    assert summary["workloads"]["capped-cache"]["cached_pages"] <= 6 << 8
    assert summary["workloads"]["anon-0"]["resident_pages"] == 16 << 8


def test_batched_and_page_by_page_runs_are_identical_under_pressure(pressure_runs):
    batched, per_page = (_outcome(r) for r in pressure_runs)
    assert batched[0] == per_page[0]
    assert batched[1] == per_page[1]
    assert batched[2] == per_page[2]
    assert batched[3] == per_page[3]


# The recipes of processes (tests/test_workload_recipes.py) under pressure: CPUs that
# move with time, frees by address, a fill until MemAvailable falls to a target, frees
# at a rate.
RECIPES = """
name: recipes-pressure
seed: 5
duration: 4s
sample_every: 500ms
machine: {memory: 96MiB, cpus: 3}
workloads:
  - kind: anon
    cpu: any
    migrate_every: 3ms
    size: 24MiB
    grow_rate: 64MiB
    churn_rate: 8MiB
    pinned_share: 0.1
    release: address
    shrink_at: 3s
    shrink_to: 8MiB
  - kind: anon
    name: anon-thp
    cpu: any
    migrate_every: 20ms
    size: 16MiB
    thp: always
    defrag: defer+madvise
    release: address
    churn_rate: 4MiB
    khugepaged: {scan_sleep: 200ms}
  - kind: fragment
    cpu: any
    migrate_every: 5ms
    fill_until_available: 8MiB
    fill_rate: 128MiB
    free_at: 2s
    free_rate: 32MiB
  - kind: page_cache
    cpu: any
    rate: 32MiB
  - kind: kernel_alloc
    cpu: any
    migrate_every: 1ms
    rate: 500
    orders: {0: 0.7, 1: 0.1, 2: 0.1, 3: 0.1}
    lifetime: {mean: 1s}
"""


def test_batched_and_page_by_page_runs_of_moving_processes_are_identical(tmp_path):
    path = tmp_path / "recipes.yaml"
    path.write_text(RECIPES)
    config = load_config(path)
    runs = [run_machine(config, config.seed, "default", batched=b) for b in (True, False)]
    assert _outcome(runs[0]) == _outcome(runs[1])
    summary = runs[0].summary
    assert summary["engine"]["slowpath"] > 100
    assert summary["compaction"]["migrated"] > 0
    assert summary["workloads"]["fragment-2"]["freed"] > 0


def test_batched_and_page_by_page_quickstart_runs_are_identical():
    config = load_config("configs/quickstart.yaml",
                         ["duration=3s", "machine.memory=128MiB", "workloads.0.files=20000"],
                         variant="defrag-on")
    runs = [run_machine(config, 7, "defrag-on", batched=b) for b in (True, False)]
    assert _outcome(runs[0]) == _outcome(runs[1])
    assert runs[0].summary["alloc_ops"] > 10_000


def test_machine_batches_stop_at_a_refusal_and_hand_back_its_cpu_and_owner():
    config = validate_config({}, "test", ["machine.memory=16MiB", "machine.cpus=2",
                                          "machine.zones=[Normal]", "machine.boot=none"])
    machine = Machine(config, 1)
    cpus = itertools.cycle([0, 1])
    got: list[int] = []
    # Far more pages than the zone can give without reclaim: the batch must stop.
    refused = machine.alloc_pages_batch(1 << 20, GFP_HIGHUSER_MOVABLE,
                                        lambda: next(cpus), 1, got)
    assert refused is not None
    cpu, owner = refused
    assert owner == 1 and cpu in (0, 1)
    assert len(got) == len(set(got)) > 0
    assert machine.zone.nr_alloc_calls == len(got) + 1
    machine.zone.check()


# ------------------------------------------------------------------ the zone's batches


ops_strategy = st.lists(
    st.tuples(st.sampled_from(["alloc", "free"]), st.integers(1, 300), st.integers(0, 2)),
    min_size=1, max_size=40)


def _zone_state(zone: Zone):
    state, owner = zone.page_state_arrays()
    pcp = [(p.count, p.high, p.free_count, p.alloc_factor, p.flags,
            [list(lst) for lst in p.lists]) for p in zone.pcp]
    return (bytes(state), bytes(owner), zone.nr_free, zone.nr_free_pages, pcp,
            zone.stats.as_dict(), zone.nr_alloc_calls, zone.nr_free_calls,
            zone.zone_below_high, zone.zone_boosted_watermark, zone.watermark_boost)


@settings(max_examples=40, deadline=None)
@given(ops=ops_strategy, seed=st.integers(0, 1000))
def test_zone_batches_equal_the_loops_of_single_calls(ops, seed):
    """Runs of alloc_batch/free_batch leave the zone exactly as the loops of alloc()
    and free() do, including refusals at the watermark and drains of the pcp lists."""
    zones = [Zone(4096, cpus=2, min_free_kbytes=1024) for _ in range(2)]
    held: list[list[int]] = [[], []]
    rngs = [np.random.default_rng(seed) for _ in range(2)]
    for kind, n, mt_pick in ops:
        mt = (MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, MIGRATE_MOVABLE)[mt_pick]
        results = []
        for batched, (zone, pages, rng) in enumerate(zip(zones, held, rngs, strict=True)):
            cpus = iter(rng.integers(2, size=n + 1).tolist())

            def cpu(cpus=cpus):
                return next(cpus)

            if kind == "alloc":
                got: list[int] = []
                if batched:
                    refused = zone.alloc_batch(n, mt, cpu, None, zone_fast_flags(), got)
                else:
                    refused = None
                    for _ in range(n):
                        c = cpu()
                        pfn = zone.alloc(0, mt, c, None, zone_fast_flags())
                        if pfn is None:
                            refused = (c, None)
                            break
                        got.append(pfn)
                pages.extend(got)
                results.append((got, refused))
            else:
                k = min(n, len(pages))
                victims = [pages.pop(int(i)) for i in rng.integers(0, np.arange(
                    len(pages), len(pages) - k, -1))] if k else []
                if batched:
                    zone.free_batch(victims, 0, cpu)
                else:
                    for pfn in victims:
                        zone.free(pfn, 0, cpu())
                results.append(victims)
        assert results[0] == results[1]
        assert _zone_state(zones[0]) == _zone_state(zones[1])
    for zone in zones:
        zone.check()


def zone_fast_flags() -> int:
    return ALLOC_WMARK_LOW | ALLOC_KSWAPD


# ------------------------------------------------------------------ the expiry queue


class _Probe(Workload):
    kind = "probe"


@settings(max_examples=60, deadline=None)
@given(
    tick=st.sampled_from([1e-6, 0.001, 0.01, 0.1, 0.3]),
    steps=st.lists(
        st.tuples(
            st.lists(st.one_of(st.floats(0, 5, allow_nan=False),
                               st.sampled_from([0.0, 0.01, 0.1, 1.0, 1e307, math.inf,
                                                -math.inf])),
                     max_size=12),
            st.floats(0, 1, allow_nan=False)),
        min_size=1, max_size=25),
)
def test_expiry_queue_pops_in_time_then_insertion_order(tick, steps):
    """The bucketed expiry queue gives what a heap of (when, sequence, item) gives."""
    config = validate_config({}, "test", ["machine.memory=16MiB"])
    probe = _Probe(Machine(config, 1), _Probe.Params(tick=tick))
    heap: list[tuple[float, int, int]] = []
    seq = itertools.count()
    now = 0.0
    item = 0
    for lifetimes, advance in steps:
        for life in lifetimes:
            when = now + life
            probe.expire_at(when, item)
            if when != math.inf:
                heapq.heappush(heap, (when, next(seq), item))
            item += 1
        now += advance
        expected = []
        while heap and heap[0][0] <= now:
            expected.append(heapq.heappop(heap)[2])
        assert probe.pop_expired(now) == expected
        assert probe.next_expiry() == (heap[0][0] if heap else math.inf)
        assert bool(probe._expiry) == bool(heap)


def test_expiry_queue_runs_match_single_pushes_and_refuse_unequal_lengths():
    from workloads.expiry import ExpiryQueue

    whens = [0.5, 0.25, math.inf, 0.25, 2.0, 0.26, -1.0]
    one, many = ExpiryQueue(0.1), ExpiryQueue(0.1)
    for i, when in enumerate(whens):
        one.push_many((when,), (i,))
    many.push_many(whens, list(range(len(whens))))
    for now in (0.0, 0.25, 0.3, 1.0, 5.0):
        assert one.pop_due(now) == many.pop_due(now)
    assert not many and many.next_due() == math.inf
    with pytest.raises(ValueError, match="as many times as items"):
        many.push_many([1.0, 2.0], [1])
    with pytest.raises(ValueError, match="width above 0"):
        ExpiryQueue(0.0)


def test_a_tick_of_zero_is_a_one_line_config_error():
    """Every rate-driven workload does its work per tick: with no tick it would never
    advance simulated time."""
    with pytest.raises(FragsimError) as err:
        validate_config({"workloads": [{"kind": "anon", "tick": 0}]}, "x.yaml")
    assert "tick" in str(err.value) and "\n" not in str(err.value)


def test_zone_batches_count_their_calls_even_when_a_page_raises():
    from sim.buddy import BadFree

    zones = [Zone(4096, cpus=1) for _ in range(2)]
    pfns = [zone.alloc(0, MIGRATE_MOVABLE) for zone in zones]
    assert pfns[0] == pfns[1]
    with pytest.raises(BadFree):
        zones[0].free_batch([pfns[0], pfns[0]], 0, lambda: 0)  # the second is a double free
    with pytest.raises(BadFree):
        for pfn in (pfns[1], pfns[1]):
            zones[1].free(pfn, 0, 0)
    assert zones[0].nr_free_calls == zones[1].nr_free_calls == 2

    # A long run reads its pages' state ahead (Zone._prefetch_page_state); a pfn it
    # cannot read is still reported by the loop, as a single free reports it.
    for bad in (-1, 1 << 70, 4096):
        zone = Zone(4096, cpus=1)
        run = [zone.alloc(0, MIGRATE_MOVABLE) for _ in range(20)]
        with pytest.raises(BadFree):
            zone.free_batch(run[:10] + [bad] + run[10:], 0, lambda: 0)
        assert zone.nr_free_calls == 11
        zone.check()

    cpu_then_fail = iter([0]).__next__  # StopIteration on the second page
    got: list[int] = []
    with pytest.raises(StopIteration):
        zones[0].alloc_batch(2, MIGRATE_MOVABLE, cpu_then_fail, None, zone_fast_flags(), got)
    assert len(got) == 1 and zones[0].nr_alloc_calls == 2  # the first alloc, and this one


@settings(max_examples=50, deadline=None)
@given(runs=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=12),
       seed=st.integers(0, 100), order=st.sampled_from([0, 0, 3]))
def test_page_set_runs_equal_single_calls(runs, seed, order):
    """add_many / pop_random_many / choice_many / remove_many against add / pop_random /
    choice / remove, for order-0 pages and for heads of order-3 blocks."""
    one, many = PageSet(4096, order), PageSet(4096, order)
    rngs = [np.random.default_rng(seed), np.random.default_rng(seed)]
    fresh = iter((np.random.default_rng(seed + 1).permutation(4096 >> order) << order
                  ).tolist())
    for n_add, n_pop in runs:
        pfns = [next(fresh) for _ in range(n_add)]
        for pfn in pfns:
            one.add(pfn)
        many.add_many(pfns)
        k = min(n_pop, len(one))
        assert [one.pop_random(rngs[0]) for _ in range(k)] == many.pop_random_many(rngs[1], k)
        if len(one):
            assert [one.choice(rngs[0]) for _ in range(3)] == many.choice_many(rngs[1], 3)
        gone = list(one.pfns)[::3]  # evictions: a run of pfns removed by value
        for pfn in gone:
            one.remove(pfn)
        many.remove_many(gone)
        assert one.pfns == many.pfns and one.where == many.where
        assert all(one.where[pfn >> order] == i for i, pfn in enumerate(one.pfns))


def test_a_page_set_of_huge_pages_keeps_4_bytes_per_block_and_knows_heads_only():
    """Order 9: the map has an entry per 2 MiB block; a pfn inside a held block is not
    held (only its head is); migration moves the entry to the new block."""
    held = PageSet(1 << 20, 9)
    assert len(held.where) == (1 << 20) >> 9
    held.add(512 * 7)
    assert 512 * 7 in held and 512 * 7 + 1 not in held and 512 * 8 not in held
    assert not held.migrate(512 * 7 + 5, 512 * 9)  # not a head held here
    assert held.migrate(512 * 7, 512 * 9)
    assert 512 * 9 in held and 512 * 7 not in held and list(held.pfns) == [512 * 9]
    held.remove(512 * 9)
    assert len(held) == 0 and set(held.where) == {-1}


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 1 << 20)),
                      min_size=1, max_size=8),
       seed=st.integers(0, 100))
def test_page_set_long_runs_equal_single_calls(steps, seed):
    """Long runs of removals from a large set (hundreds of pages, as a workload's
    churn gives them) leave exactly what the single calls leave, in the same order."""
    one, many = PageSet(1 << 16), PageSet(1 << 16)
    rngs = [np.random.default_rng(seed), np.random.default_rng(seed)]
    pfns = np.random.default_rng(seed + 1).permutation(1 << 16)[:20_000].tolist()
    for pfn in pfns:
        one.add(pfn)
    many.add_many(pfns)
    for k, pick in steps:
        k = min(k, len(one))
        assert [one.pop_random(rngs[0]) for _ in range(k)] == many.pop_random_many(rngs[1], k)
        gone = np.random.default_rng(pick).permutation(list(one.pfns))[:k].tolist()
        for pfn in gone:
            one.remove(pfn)
        many.remove_many(gone)
        assert one.pfns == many.pfns and one.where == many.where
        assert all(one.where[pfn] == i for i, pfn in enumerate(one.pfns))


@settings(max_examples=30, deadline=None)
@given(orders=st.dictionaries(st.integers(0, 10), st.floats(0, 5, allow_nan=False),
                              min_size=1, max_size=5).filter(lambda d: sum(d.values()) > 0),
       sizes=st.lists(st.integers(0, 300), min_size=1, max_size=5), seed=st.integers(0, 99))
def test_kernel_alloc_draws_the_orders_generator_choice_draws(orders, sizes, seed):
    """draw_orders keeps Generator.choice(orders, n, p=weights)'s draws, without its
    per-call validation."""
    from workloads.synthetic import KernelAlloc

    config = validate_config({}, "test", ["machine.memory=16MiB"])
    work = KernelAlloc(Machine(config, 1), KernelAlloc.Params(orders=orders))
    work.rng = np.random.default_rng(seed)
    rng = np.random.default_rng(seed)
    keys = sorted(orders)
    weights = np.array([orders[o] for o in keys], dtype=float)
    for n in sizes:
        expected = rng.choice(keys, size=n, p=weights / weights.sum()).tolist()
        assert work.draw_orders(n) == expected
    assert work.rng.random() == rng.random()  # as many draws taken


def test_live_objects_free_only_the_generation_they_queued():
    """slab_churn's compiled loops: an object evicted and its id reused by a later
    allocation is not freed by the first allocation's expiry."""
    from sim.slab import SlabCache, SlabGeometry
    from workloads.objloop import GEN_SHIFT, LiveObjects

    zone = Zone(1024, cpus=1)
    cache = SlabCache("test", SlabGeometry.derived(256, 1), zone)
    live = LiveObjects()
    whens: list[float] = []
    items: list[int] = []
    live.alloc_many(cache, 3, lambda: 0, 1.0, [1.0, 2.0, 3.0], [False, True, False],
                    whens, items)
    assert whens == [2.0, 3.0, 4.0] and len(live) == 3 and cache.nr_lru == 1
    oids = [item & ((1 << GEN_SHIFT) - 1) for item in items]
    assert [item >> GEN_SHIFT for item in items] == [1, 2, 3]
    # The cache evicts the second object; its id comes back for the next allocation.
    live.discard(oids[1])
    cache.evict(oids[1])
    assert oids[1] not in live and len(live) == 2
    again: list[int] = []
    live.alloc_many(cache, 1, lambda: 0, 1.5, [9.0], None, [], again)
    assert again[0] & ((1 << GEN_SHIFT) - 1) == oids[1] and again[0] >> GEN_SHIFT == 4
    # All three first expiries come due: the reused id stays allocated.
    assert live.free_due(cache, items, lambda: 0) == 2
    assert len(live) == 1 and oids[1] in live and cache.is_allocated(oids[1])
    assert cache.nr_lru == 0 and cache.nr_inuse == 1
    assert live.free_due(cache, again, lambda: 0) == 1 and len(live) == 0
    cache.check()


def test_expiry_queue_buckets_that_share_a_ring_slot_keep_their_order():
    """Buckets k and k + RING_SLOTS share a slot: the later one goes to the dict, a
    partly due bucket is put back, and negative times work like any other."""
    from workloads.expiry import RING_SLOTS, ExpiryQueue

    q = ExpiryQueue(1.0)
    far = float(RING_SLOTS)
    times = [0.5, far + 0.5, far + 0.7, -2.5, 2 * far + 0.1, far + 0.2, -far - 0.5]
    q.push_many(times, list(range(len(times))))
    assert q.next_due() == -far - 0.5
    assert q.pop_due(-1.0) == [6, 3]
    assert q.pop_due(far + 0.6) == [0, 5, 1]
    assert q.next_due() == far + 0.7 and q
    q.push_many([far + 0.65], [7])  # into the bucket put back
    assert q.pop_due(2 * far) == [7, 2]
    assert q.pop_due(math.inf) == [4] and not q and q.next_due() == math.inf


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from("aarmwc"), st.integers(0, 2),
                              st.integers(0, 255), st.integers(-3, 300)), max_size=120))
def test_page_sets_sharing_one_map_with_other_owners_hold_what_they_hold(ops):
    """Two order-0 sets keep their maps in one shared index (the machine's
    ``page_index``), and a third owner (a file system keeping its folios' places there)
    writes any value for the pages it holds. Each set still holds exactly its pages,
    by membership, removal and migration, against a model of who owns each page."""
    from sim.buddy import PageIndex

    n = 256
    index = PageIndex(n)
    sets = [PageSet(0), PageSet(0)]
    for s in sets:
        s.share_where(index)
    owner: dict[int, int] = {}  # pfn -> 0 or 1 (a set), 2 (the other owner)
    for op, who, pfn, value in ops:
        if op == "a" and pfn not in owner:  # a free page allocated by ``who``
            owner[pfn] = who
            if who == 2:
                index[pfn] = value  # the other owner writes its own value
            else:
                sets[who].add(pfn)
        elif op == "r" and owner.get(pfn) == who:  # ``who`` frees its page
            del owner[pfn]
            if who < 2:
                sets[who].remove(pfn)
        elif op == "w" and owner.get(pfn) == 2:
            index[pfn] = value  # the other owner moves its own entry
        elif op == "m" and pfn in owner:  # compaction moves the page to a free pfn
            new = next((p for p in range(n) if p not in owner), None)
            if new is not None:
                moved = [s.migrate(pfn, new) for s in sets]
                assert moved == [owner[pfn] == 0, owner[pfn] == 1]
                if owner[pfn] == 2:
                    index[new] = value
                owner[new] = owner.pop(pfn)
        for k, s in enumerate(sets):
            assert {p for p in range(n) if p in s} == {p for p, o in owner.items() if o == k}
            assert len(s) == sum(o == k for o in owner.values())
