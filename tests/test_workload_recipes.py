"""Workloads as people write them: where a process runs over time (``cpu: any``), and
the recipe parameters ``free_rate`` (fragment), ``release`` (anon) and
``fill_until_available`` (anon, fragment), with MemAvailable as the kernel's
``si_mem_available`` computes it."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from sim import metrics
from sim.buddy import WMARK_LOW, Zone
from sim.errors import FragsimError
from sim.experiment import validate_config
from sim.machine import Machine
from sim.memory import PTE_NONE
from sim.runner import build_workloads, run_machine
from workloads.base import CpuSchedule

PAGE = 4096


def started(workloads: list[dict], memory: str = "512MiB", cpus: int = 2,
            seed: int = 1) -> Machine:
    """A started machine (not yet run) with these workloads."""
    # one zone: these tests read the zone's own per-CPU lists and counters
    config = validate_config({"machine": {"memory": memory, "cpus": cpus, "zones": ["Normal"]},
                              "workloads": workloads}, "test")
    machine = Machine(config, seed)
    machine.start(build_workloads(machine))
    return machine


# ------------------------------------------------------------------ cpu: any


def test_a_process_without_migrate_every_stays_on_the_cpu_it_started_on():
    schedule = CpuSchedule(np.random.default_rng(3), 4, None)
    first = schedule.cpu
    assert {schedule.cpu_at(t) for t in np.linspace(0, 1e6, 1000)} == {first}
    assert schedule.migrations == 0


def test_a_single_cpu_machine_has_nowhere_to_move_a_process():
    schedule = CpuSchedule(np.random.default_rng(3), 1, 0.001)
    assert {schedule.cpu_at(t) for t in np.linspace(0, 100, 1000)} == {0}


def test_migrations_come_every_migrate_every_on_average_each_to_another_cpu_uniformly():
    """Holding times exponential with the mean asked (the sample mean of 20 000 is
    within 5 standard errors of it), never a move to the same CPU, and every other CPU
    equally likely: the counts of each (from, to) pair agree with a uniform choice."""
    ncpu, mean, moves = 4, 0.01, 20_000
    schedule = CpuSchedule(np.random.default_rng(11), ncpu, mean)
    holds, pairs = [], collections.Counter()
    last = 0.0
    for _ in range(moves):
        when, before = schedule.next_migration, schedule.cpu
        holds.append(when - last)
        last = when
        after = schedule.cpu_at(when)
        assert after != before
        pairs[before, after] += 1
    assert schedule.migrations == moves
    assert abs(np.mean(holds) - mean) < 5 * mean / np.sqrt(moves)
    # Each CPU is left about moves / ncpu times, to each other CPU a third of those.
    expected = moves / (ncpu * (ncpu - 1))
    assert len(pairs) == ncpu * (ncpu - 1)
    assert all(abs(n - expected) < 5 * np.sqrt(expected) for n in pairs.values())


def test_the_cpu_a_process_runs_on_over_time_is_fixed_by_the_seed():
    def cpus(seed: int) -> list[int]:
        machine = started([{"kind": "kernel_alloc", "name": "k", "cpu": "any",
                            "migrate_every": "5ms"}], memory="64MiB", cpus=4, seed=seed)
        (workload,) = machine.workloads
        out = []
        for t in np.arange(0.01, 2.0, 0.01):
            machine.env.run(until=t)
            out.append(workload.cpu())
        return out

    assert cpus(1) == cpus(1)
    assert cpus(1) != cpus(2)
    assert set(cpus(1)) == {0, 1, 2, 3}


def test_where_a_process_runs_does_not_change_what_it_draws():
    """The schedule has a random stream of its own: the same workload pinned and moved
    allocates the same orders at the same times."""
    def allocated(cpu) -> dict:
        extra = {"migrate_every": "1ms"} if cpu == "any" else {}
        machine = started([{"kind": "kernel_alloc", "name": "k", "cpu": cpu, "rate": 2000,
                            "orders": {0: 0.5, 1: 0.5}, **extra}], memory="64MiB", cpus=4)
        machine.env.run(until=1.0)
        return machine.workloads[0].summary()

    assert allocated(0) == allocated("any") == allocated(3)


def test_migrate_every_without_cpu_any_is_refused():
    with pytest.raises(FragsimError, match="migrate_every: expected only with cpu: any"):
        validate_config({"workloads": [{"kind": "anon", "cpu": 1,
                                        "migrate_every": "1ms"}]}, "test")


# ------------------------------------------------------------------ per-CPU lists

FILL_AND_FREE = {"kind": "fragment", "fill": 0.5, "fill_rate": "1GiB", "keep_one_in": 4,
                 "free_at": "1s", "free_rate": "256MiB"}


def test_a_process_pinned_on_cpu_1_leaves_its_freed_fill_on_cpu_1s_list():
    """The fill's refills raise CPU 1's high towards high_max (nr_pcp_alloc); the frees
    then fill CPU 1's list up to it; CPU 0 never sees a page."""
    machine = started([{**FILL_AND_FREE, "cpu": 1}])
    machine.env.run(until=1.9)  # the 192 MiB of frees end at 1.75 s
    fragment = machine.workloads[0]
    assert fragment.freed == 3 * (fragment.summary()["allocated"] // 4)
    cpu0, cpu1 = machine.zone.pcp
    assert cpu1.high > cpu1.high_min
    assert cpu1.count > cpu1.high_min
    assert cpu0.count == 0


def test_a_process_moved_every_millisecond_spreads_its_freed_fill_over_every_cpu():
    machine = started([{**FILL_AND_FREE, "cpu": "any", "migrate_every": "1ms"}], cpus=4)
    machine.env.run(until=1.9)
    counts = [pcp.count for pcp in machine.zone.pcp]
    assert all(pcp.high > pcp.high_min for pcp in machine.zone.pcp)
    assert min(counts) > 0
    assert max(counts) < 0.5 * sum(counts)
    assert machine.workloads[0].schedule.migrations > 1000


def test_decay_lowers_each_cpus_high_by_its_own_pageset():
    """decay_pcp_high runs for every CPU's pageset, each from its own high and count."""
    zone = Zone(1 << 16, cpus=2)
    pages = [zone.alloc(0, 1, cpu=1) for _ in range(20_000)]
    for pfn in pages:
        zone.free(pfn, 0, cpu=1)
    cpu0, cpu1 = zone.pcp
    high, count = cpu1.high, cpu1.count
    assert high > cpu1.high_min and cpu0.count == 0
    zone.vmstat_refresh()
    assert cpu1.high == max(count - (cpu1.batch << 5), high - (high >> 3), cpu1.high_min)
    assert cpu0.count == 0 and cpu0.high in (0, cpu0.high_min)


@pytest.mark.parametrize("wakes", [None, "0.5s"])
def test_an_idle_cpu_keeps_its_raised_pageset_until_something_wakes_it(wakes):
    """vmstat's decay_pcp_high is deferrable work: on a CPU nothing wakes, a pageset the
    frees raised stays as it was; a process that wakes there every 0.5 s (wakes_every,
    as fragsim run --real's own counterparts poll) lets it run each second, draining at
    most batch << CONFIG_PCP_BATCH_SCALE_MAX pages a refresh (the real machine's CPUs
    drained 2 016 a second: configs/real/gupta-here)."""
    extra = {} if wakes is None else {"wakes_every": wakes}
    machine = started([{**FILL_AND_FREE, "cpu": 1, **extra}])
    machine.env.run(until=3.0)  # the frees end at 1.75 s, and a refresh after them ran
    cpu1 = machine.zone.pcp[1]
    before = cpu1.count
    assert before > cpu1.high_min
    machine.env.run(until=7.0)
    if wakes is None:
        assert cpu1.count == before
    else:
        drained = before - cpu1.count
        assert 0 < drained <= 4 * (cpu1.batch << 5) + cpu1.batch


def test_wakes_every_is_one_process_s_cpu():
    with pytest.raises(FragsimError, match="wakes_every: expected only with cpu: any or a CPU"):
        validate_config({"workloads": [{"kind": "anon", "cpu": "round_robin",
                                        "wakes_every": "1s"}]}, "test")


# ------------------------------------------------------------------ fragment: free_rate


@pytest.mark.parametrize("free_rate", [None, "16MiB"])
def test_free_rate_spreads_the_frees_over_time_in_allocation_order(free_rate):
    fragment = {"kind": "fragment", "fill": "64MiB", "fill_rate": "4GiB", "free_at": "1s",
                "keep_one_in": 4, "cpu": 0}
    if free_rate:
        fragment["free_rate"] = free_rate
    machine = started([fragment], memory="256MiB")
    (workload,) = machine.workloads
    to_free = 3 * (64 << 20) // PAGE // 4
    per_tick = (16 << 20) * 0.01 / PAGE
    for t in (1.5, 2.0, 3.0, 4.5):
        machine.env.run(until=t)
        if free_rate is None:
            assert workload.freed == to_free
            continue
        expected = min(to_free, (16 << 20) * (t - 1.0) / PAGE)
        assert abs(workload.freed - expected) <= 2 * per_tick + 1
        # in allocation order: the first slots are gone, the later ones still held
        freed_slots = workload.freed * 4 // 3
        held = [machine.zone.is_allocated(pfn) for pfn in workload.handles]
        assert not any(held[i] for i in range(freed_slots - 4) if i % 4 != 3)
        assert all(held[freed_slots + 4:])
    assert workload.freed == to_free
    done = workload.summary()["freed_at_s"]
    assert done == pytest.approx(1.0 if free_rate is None else 4.0, abs=0.02)


# ------------------------------------------------------------------ anon: release


@pytest.mark.parametrize("thp", ["never", "always"])
def test_release_address_frees_the_lowest_addresses_first(thp):
    machine = started([{"kind": "anon", "size": "8MiB", "release": "address", "thp": thp,
                        "khugepaged": {"enabled": False}}], memory="64MiB")
    (anon,) = machine.workloads
    anon._grow(2048)
    vma = anon.vma
    assert vma.mapped_pages() == 2048
    step = 512 if thp == "always" else 100
    for k in range(1, 4):
        freed = anon._free(1 if thp == "always" else step)
        assert freed == step
        mapped = np.flatnonzero(vma._pte != PTE_NONE)
        assert mapped.tolist() == list(range(k * step, 2048))
    machine.zone.check()


def test_release_random_frees_pages_from_everywhere():
    machine = started([{"kind": "anon", "size": "8MiB", "thp": "always", "release": "random",
                        "khugepaged": {"enabled": False}}], memory="64MiB")
    (anon,) = machine.workloads
    anon._grow(2048)
    for _ in range(2):
        anon._free(1)
    ranges = {r for r in range(4) if anon.vma.pmd[r] < 0}
    assert len(ranges) == 2 and ranges != {0, 1}  # seed 1 does not pick the lowest two


def test_an_anon_process_that_exits_unmaps_in_address_order():
    machine = started([{"kind": "anon", "size": "16MiB", "release": "address",
                        "stop": "500ms", "cpu": 1}], memory="64MiB")
    freed: list[int] = []
    free_batch = machine.free_pages_batch

    def recording(pfns, order, cpu):
        freed.extend(pfns)
        free_batch(pfns, order, cpu)

    machine.free_pages_batch = recording
    (anon,) = machine.workloads
    machine.env.run(until=0.45)
    by_address = [int(p) for p in anon.vma._pte if p >= 0]
    machine.env.run(until=1.0)
    assert anon.resident == 0
    assert freed == by_address


# ------------------------------------------------------------------ fill_until_available


@pytest.mark.parametrize("kind, extra", [("anon", {}), ("anon", {"thp": "always"}),
                                         ("fragment", {"free_at": "10s"})])
def test_fill_until_available_stops_within_one_tick_of_the_target(kind, extra):
    target = 32 << 20
    rate = 1 << 30
    key = "grow_rate" if kind == "anon" else "fill_rate"
    machine = started([{"kind": kind, "fill_until_available": target, key: rate,
                        "cpu": "any", **extra}])
    tick_pages = rate * 0.01 / PAGE
    available = []
    for t in np.arange(0.01, 1.5, 0.01):
        machine.env.run(until=t)
        available.append(machine.mem_available())
    assert available[0] > target // PAGE + 10 * tick_pages  # a long way to go at first
    end = available[-1]
    assert target // PAGE - tick_pages < end <= target // PAGE
    assert available[-50:] == [end] * 50  # and then it stays there


def test_fill_until_available_with_a_size_stops_at_whichever_comes_first():
    machine = started([{"kind": "anon", "fill_until_available": "32MiB", "size": "64MiB"}])
    machine.env.run(until=1.0)
    assert machine.workloads[0].resident == 64 << 8
    assert machine.mem_available() > 32 << 8


def test_fragment_fill_until_available_ends_when_the_allocator_gives_no_more():
    # dentries in use count as reclaimable slab (half of their pages, less the low
    # watermark), so MemAvailable stays above 0 after the allocator refuses.
    machine = started([{"kind": "fragment", "fill_until_available": 0, "free_at": "10s",
                        "slab_share": 1.0, "slab_cache": "dentry", "cpu": 0}],
                      memory="64MiB")
    machine.env.run(until=5.0)
    summary = machine.workloads[0].summary()
    assert summary["failed"] > 0 and summary["filled_at_s"] < 1.0
    assert machine.mem_available() > 0


# ------------------------------------------------------------------ MemAvailable


def test_si_mem_available_is_the_kernels_formula_on_a_hand_built_case():
    # mm/show_mem.c: free - totalreserve, plus page cache and reclaimable slab, each
    # less min(half of it, the low watermarks).
    assert metrics.si_mem_available(10_000, 1_200, 800, 3_000, 100) == (
        10_000 - 1_200 + (3_000 - 800) + (100 - 50))
    assert metrics.si_mem_available(10_000, 1_200, 800, 1_000, 2_000) == (
        10_000 - 1_200 + (1_000 - 500) + (2_000 - 800))
    assert metrics.si_mem_available(10_000, 1_200, 800, 0, 0, 7) == 10_000 - 1_200 + 4
    assert metrics.si_mem_available(1_000, 1_200, 800, 101, 0) == 0  # never negative


def test_totalreserve_is_the_high_watermark_without_the_boost():
    zone = Zone(1 << 16, cpus=2)
    assert metrics.totalreserve_pages(zone) == zone.high_wmark
    zone.watermark_boost = 1000
    assert metrics.totalreserve_pages(zone) == zone.high_wmark
    assert zone.wmark_pages(WMARK_LOW) == zone.low_wmark + 1000


def test_mem_available_counts_the_file_lru_and_reclaimable_slabs_but_not_tmpfs():
    config = validate_config({
        "duration": "2s", "machine": {"memory": "128MiB", "zones": ["Normal"]},
        "workloads": [{"kind": "page_cache", "rate": "16MiB", "limit": "24MiB"},
                      {"kind": "fs_churn", "fs": "tmpfs", "files": 2000, "max_bytes": "8KiB",
                       "keep": 1.0}]}, "test")
    machine = Machine(config, 1)
    machine.start(build_workloads(machine))
    machine.env.run(until=2.0)
    zone = machine.zone
    caches = {cache.name: cache.nr_pages for cache in machine.caches}
    reclaimable = sum(n for name, n in caches.items()
                      if name in ("dentry", "ext4_inode_cache", "radix_tree_node"))
    assert caches["shmem_inode_cache"] > 0 and reclaimable > 0 and machine.lru.nr_pages > 0
    low = zone.wmark_pages(WMARK_LOW)
    file_pages = machine.lru.nr_pages
    expected = (zone.nr_free_pages - zone.high_wmark
                + file_pages - min(file_pages // 2, low)
                + reclaimable - min(reclaimable // 2, low))
    assert machine.mem_available() == expected


def test_samples_carry_mem_available():
    config = validate_config({"duration": "1s", "sample_every": "250ms",
                              "machine": {"memory": "64MiB"},
                              "workloads": [{"kind": "anon", "size": "32MiB"}]}, "test")
    result = run_machine(config, 1, "default")
    series = result.get("mem_available")
    assert len(series) == 5 and series[-1] < series[0] - (30 << 8)


# ------------------------------------------------------------------ fs_churn: steady state


@pytest.mark.parametrize("fs", ["disk", "tmpfs"])
def test_steady_fs_churn_holds_rate_times_lifetime_files_and_releases_them_all(fs):
    """With a fixed lifetime L and create rate R, from L on exactly R x L files are live
    (creates are deterministic: R x tick a tick); after ``stop`` every file expires, and
    each one's inode and page cache go back, and its dentry too on tmpfs: the caches
    hold the directories alone, and the file system's table holds nothing else. On a
    disk file system each deleted file leaves its name as a negative dentry (``d_delete``
    of a closed file), until the shrinker takes it: then the dentries are the
    directories' again."""
    rate, life = 1000, 0.5
    machine = started([{"kind": "fs_churn", "fs": fs, "create_rate": rate,
                        "lifetime": {"dist": "fixed", "mean": f"{life}s"},
                        "min_bytes": 1, "max_bytes": "6KiB", "open_share": 0.2,
                        "dir_size": 50, "stop": "2s"}])
    machine.env.run(until=1.505)
    fsys = machine.filesystems[0]
    assert fsys.live_files - _dirs(fsys) == rate * life
    machine.env.run(until=2.0 + life + 0.1)
    assert fsys.stats.files_unlinked == rate * 2.0
    assert fsys.live_files == _dirs(fsys) == len(fsys.files)
    # a directory per dir_size live files, the pool no larger than the peak needs
    assert _dirs(fsys) == pytest.approx(rate * life / 50, abs=1)
    caches = {c.name: c.nr_live for c in machine.caches}
    negative = rate * 2.0 if fs == "disk" else 0
    assert fsys.nr_dentry_negative == fsys.stats.dentries_negative == negative
    assert caches["dentry"] == _dirs(fsys) + negative
    icache = "shmem_inode_cache" if fs == "tmpfs" else "ext4_inode_cache"
    assert caches[icache] == _dirs(fsys)
    assert machine.lru.nr_pages == 0
    if fs == "disk":
        # the oldest on the LRU: a scan of twice their number takes every negative one
        # (a first pass clears the referenced bit unlink's dput set)
        fsys.shrink(nr_to_scan=int(4 * negative))
        assert fsys.nr_dentry_negative == 0
        assert machine.env.run(until=machine.env.now + 0.1) is None  # the RCU grace
        assert {c.name: c.nr_live for c in machine.caches}["dentry"] <= _dirs(fsys)


def _dirs(fsys) -> int:
    """Directories: the page-less files (every regular file here has a page)."""
    return sum(1 for f in fsys.files.values() if f.linked and f.nr_pages == 0)


def test_steady_fs_churn_population_settles_and_stays():
    """Exponential lifetimes: the live population settles near rate x mean and the
    file system's table stops growing (a long run's memory stays flat)."""
    rate, mean = 2000, 0.5
    machine = started([{"kind": "fs_churn", "fs": "disk", "create_rate": rate,
                        "lifetime": {"dist": "exponential", "mean": f"{mean}s"},
                        "max_bytes": "4KiB", "dir_size": 0}], memory="256MiB")
    sizes = []
    for t in np.arange(3.0, 8.01, 0.5):
        machine.env.run(until=t)
        sizes.append(len(machine.filesystems[0].files))
    # Poisson-like population of mean rate x mean: within 5 standard deviations
    expected = rate * mean
    assert all(abs(n - expected) < 5 * expected ** 0.5 for n in sizes), sizes


@pytest.mark.parametrize("key,value", [("files", 5000), ("keep", 0.5),
                                       ("delete_rate", 10), ("delete_after", "1s")])
def test_steady_fs_churn_refuses_the_create_then_delete_keys(key, value):
    with pytest.raises(FragsimError, match=f"{key}: expected no {key} with lifetime"):
        validate_config({"machine": {"memory": "64MiB"},
                         "workloads": [{"kind": "fs_churn", key: value,
                                        "lifetime": {"mean": "1s"}}]}, "test")


# ------------------------------------------------------------------ paced_from


def test_a_workload_paced_from_an_earlier_time_catches_up_then_keeps_pace():
    """fs_churn at R files/s, started at 1 s, paced from 0 with catch_up 2: it creates at
    2R until it is on pace, at 2 s (2R x 1 s = R x 2 s), and at R after; unpaced, the
    same workload is R x 1 s behind for good."""
    rate = 1000

    def created_at(times, **pace):
        machine = started([{"kind": "fs_churn", "fs": "disk", "files": 10 * rate,
                            "create_rate": rate, "start": "1s", "min_bytes": 1,
                            "max_bytes": 1, "dir_size": 0, **pace}])
        out = []
        for t in times:
            machine.env.run(until=t - 0.0005)  # the ticks before t: the work through t
            out.append(machine.workloads[0].created)
        return out

    times = [1.5, 2.0, 3.0, 4.0]
    paced = created_at(times, paced_from="0s", catch_up=2)
    assert paced == pytest.approx([1000, 2000, 3000, 4000], abs=1)
    assert created_at(times) == pytest.approx([500, 1000, 2000, 3000], abs=1)


def test_page_cache_paced_from_reads_its_backlog_at_catch_up_times_the_rate():
    machine = started([{"kind": "page_cache", "rate": "64MiB", "read_size": "1MiB",
                        "file_size": "16MiB", "start": "1s", "paced_from": "0s",
                        "catch_up": 4}], memory="1GiB")
    machine.env.run(until=1.25 - 0.0005)
    assert machine.workloads[0].loop.reads == pytest.approx(64, abs=1)  # 4 x 64 MiB/s x 0.25 s
    machine.env.run(until=2.0 - 0.0005)
    assert machine.workloads[0].loop.reads == pytest.approx(128, abs=1)  # on pace since 1.33 s


@pytest.mark.parametrize("given, message", [
    ({"paced_from": "0s"}, "catch_up: expected with paced_from"),
    ({"catch_up": 2}, "paced_from: expected with catch_up"),
    ({"paced_from": "0s", "catch_up": 1}, "catch_up: expected a number above 1"),
])
def test_paced_from_and_catch_up_go_together(given, message):
    with pytest.raises(FragsimError, match=message):
        validate_config({"workloads": [{"kind": "page_cache", **given}]}, "x.yaml")
    with pytest.raises(FragsimError, match="paced_from|catch_up"):
        validate_config({"workloads": [{"kind": "anon", **given}]}, "x.yaml")
