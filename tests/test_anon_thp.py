"""Anonymous THP as Linux 6.18 faults and collapses it: the gfp table of
``vma_thp_gfp_mask``, huge page faults and their fallback, khugepaged's collapse, page
conservation under random operations, and two real 6.18.44 recordings
(tests/data/folio-orders/anon-256m-*.json) reproduced on a fresh machine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.buddy import ALLOC_NO_WATERMARKS, OWNER_MOVABLE, OWNER_NONE, OWNER_UNMOVABLE
from sim.experiment import validate_config
from sim.gfp import GFP_KERNEL, GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT, parse_gfp
from sim.huge_memory import (
    THP_DEFRAG,
    alloc_hugepage_khugepaged_gfpmask,
    alloc_pages_mpol_gfps,
    thp_vma_allowable,
    vma_thp_gfp_mask,
)
from sim.khugepaged import ScanResult
from sim.machine import Machine
from sim.memory import PTE_NONE, PTE_PMD
from sim.migratetype import MIGRATE_MOVABLE
from sim.results import TIMING_KEYS
from sim.runner import build_workloads, run_machine

FOLIO_ORDERS = Path(__file__).resolve().parent / "data" / "folio-orders"
HPAGE = 512  # HPAGE_PMD_NR with 4 KiB pages and pageblock_order 9

# mm/huge_memory.c vma_thp_gfp_mask (6.18), one row per /sys/kernel/mm/transparent_hugepage/
# defrag mode, written from the source as (not madvised, madvised):
#   always:        GFP_TRANSHUGE | (vma_madvised ? 0 : __GFP_NORETRY)
#   defer:         GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM
#   defer+madvise: GFP_TRANSHUGE_LIGHT | (vma_madvised ? __GFP_DIRECT_RECLAIM
#                                                      : __GFP_KSWAPD_RECLAIM)
#   madvise:       GFP_TRANSHUGE_LIGHT | (vma_madvised ? __GFP_DIRECT_RECLAIM : 0)
#   never:         GFP_TRANSHUGE_LIGHT
KERNEL_TABLE = {
    "always": ("GFP_TRANSHUGE|__GFP_NORETRY", "GFP_TRANSHUGE"),
    "defer": ("GFP_TRANSHUGE_LIGHT|__GFP_KSWAPD_RECLAIM",
              "GFP_TRANSHUGE_LIGHT|__GFP_KSWAPD_RECLAIM"),
    "defer+madvise": ("GFP_TRANSHUGE_LIGHT|__GFP_KSWAPD_RECLAIM",
                      "GFP_TRANSHUGE_LIGHT|__GFP_DIRECT_RECLAIM"),
    "madvise": ("GFP_TRANSHUGE_LIGHT", "GFP_TRANSHUGE_LIGHT|__GFP_DIRECT_RECLAIM"),
    "never": ("GFP_TRANSHUGE_LIGHT", "GFP_TRANSHUGE_LIGHT"),
}


def machine_with(memory: str = "64MiB", **anon) -> tuple[Machine, object]:
    """A machine (not started) with one anon workload of these parameters."""
    # one blank zone: these tests read the zone's own counters and free lists, and count
    # every allocated page as the workload's
    config = validate_config({"machine": {"memory": memory, "cpus": 2, "zones": ["Normal"],
                                          "boot": "none"},
                              "workloads": [{"kind": "anon", **anon}]}, "test")
    machine = Machine(config, 1)
    (workload,) = build_workloads(machine)
    return machine, workload


def fragment(machine: Machine) -> list[int]:
    """Every free page taken as an order-0 movable page, then every odd pfn freed: no free
    block above order 0 is left. Returns the pages still held (the even pfns)."""
    zone = machine.zone
    held = []
    while True:
        pfn = zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE, ALLOC_NO_WATERMARKS)
        if pfn is None:
            break
        held.append(pfn)
    for pfn in held:
        if pfn % 2:
            zone.free(pfn, 0, 0)
    zone.drain_all_pages()
    assert max(o for o in range(zone.max_order + 1) if zone.nr_free[o] or o == 0) == 0
    return [pfn for pfn in held if not pfn % 2]


def release(machine: Machine, held: list[int]) -> None:
    for pfn in held:
        machine.zone.free(pfn, 0, 0)
    machine.zone.drain_all_pages()


def zap(workload, vpages) -> None:
    """munmap of 4 KiB pages the workload maps by PTE."""
    pfns = [int(workload.vma.pte[v]) for v in vpages]
    workload.pages.remove_many(pfns)
    workload.vma.unmap_ptes(pfns)
    workload.machine.free_pages_batch(pfns, 0, lambda: 0)


def full_scan(workload) -> list[ScanResult]:
    """khugepaged's scans until its cursor has passed the whole VMA once."""
    scan = workload.khugepaged.scan
    results = []
    while True:
        results.append(scan.scan_mm_slot(1 << 30)[1])
        if not scan.in_mm:
            return results


def check_conservation(machine: Machine, workload, held: list[int]) -> None:
    """Every allocated page is the workload's: its data, its page tables (one Unmovable
    order-0 page per 2 MiB range that is not pmd_none) or ``held``."""
    zone = machine.zone
    zone.check()
    assert (zone.nr_allocated_pages
            == workload.resident + workload.page_tables + len(held))
    vma = workload.vma
    if vma is None:
        return
    assert vma.mapped_pages() == workload.resident
    tables = [pfn for pfn in workload._pgtable if pfn >= 0]
    assert len(tables) == workload.page_tables == sum(
        not vma.pmd_none(r) for r in range(vma.nr_ranges))
    for r, pfn in enumerate(workload._pgtable):
        assert (pfn >= 0) == (not vma.pmd_none(r))
        if pfn >= 0:
            assert zone.is_allocated(pfn) and zone.order_of(pfn) == 0
            assert zone.owner_of(pfn) == OWNER_UNMOVABLE
    for pfn in workload.pages.pfns:
        assert zone.is_allocated(pfn) and zone.order_of(pfn) == 0
        assert vma.pte[vma.rmap[pfn]] == pfn
    for pfn in workload.thps.pfns:
        assert zone.is_allocated(pfn) and zone.order_of(pfn) == 9
        assert vma.pmd[vma.rmap[pfn] >> 9] == pfn


# ------------------------------------------------------------------ the kernel's tables


@pytest.mark.parametrize("defrag", THP_DEFRAG)
@pytest.mark.parametrize("madvised", [False, True])
def test_vma_thp_gfp_mask_equals_the_kernels_table(defrag, madvised):
    assert vma_thp_gfp_mask(defrag, madvised) == parse_gfp(KERNEL_TABLE[defrag][madvised])


def test_the_table_covers_every_defrag_mode_and_an_unknown_one_is_refused():
    assert set(KERNEL_TABLE) == set(THP_DEFRAG)
    with pytest.raises(ValueError, match="defrag"):
        vma_thp_gfp_mask("sometimes", False)


def test_khugepaged_asks_for_direct_reclaim_and_compaction_only_with_its_defrag_on():
    assert alloc_hugepage_khugepaged_gfpmask(True) == GFP_TRANSHUGE
    assert alloc_hugepage_khugepaged_gfpmask(False) == GFP_TRANSHUGE_LIGHT


@pytest.mark.parametrize(("enabled", "madvised", "allowed"), [
    ("always", False, True), ("always", True, True), ("madvise", False, False),
    ("madvise", True, True), ("never", False, False), ("never", True, False)])
def test_a_vma_may_have_thps_under_always_or_when_madvised_under_madvise(
        enabled, madvised, allowed):
    assert thp_vma_allowable(enabled, madvised) is allowed


def test_the_fault_first_tries_the_local_node_without_retry_then_the_plain_mask_if_it_may_reclaim():
    # mm/mempolicy.c alloc_pages_mpol for a PMD-order folio under the default policy.
    light = vma_thp_gfp_mask("never", False)
    assert alloc_pages_mpol_gfps(light) == (parse_gfp(
        "GFP_TRANSHUGE_LIGHT|__GFP_THISNODE|__GFP_NORETRY"),)
    direct = vma_thp_gfp_mask("always", True)
    assert alloc_pages_mpol_gfps(direct) == (
        parse_gfp("GFP_TRANSHUGE|__GFP_THISNODE|__GFP_NORETRY"), GFP_TRANSHUGE)


# ------------------------------------------------------------------ faults


def test_thp_never_faults_order_0_only_and_is_the_run_it_was_before():
    machine, workload = machine_with(size="8MiB", thp="never", madvise=True, defrag="always")
    assert workload._fault(2048) == 2048
    assert workload.vma is None and workload.khugepaged is None
    assert workload.summary()["resident_by_order"] == {"0": 2048, "9": 0}
    assert {machine.zone.order_of(p) for p in workload.pages.pfns} == {0}
    # The THP keys change nothing while THP is off: the same run as the defaults.
    base = {"duration": "2s", "machine": {"memory": "64MiB"}}
    anon = {"kind": "anon", "size": "16MiB", "grow_rate": "32MiB", "churn_rate": "8MiB",
            "pinned_share": 0.2}
    runs = [run_machine(validate_config({**base, "workloads": [{**anon, **extra}]}, "t"),
                        1, "default").summary
            for extra in ({}, {"thp": "never", "madvise": True, "defrag": "always"},
                          {"thp": "madvise", "madvise": False, "defrag": "always"})]
    for summary in runs:
        for key in TIMING_KEYS:
            summary.pop(key)
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize("thp", ["never", "always"])
def test_a_folio_compaction_moves_that_is_not_the_workloads_is_left_to_its_owner(thp):
    # Compaction offers each moved block to every owner in turn; a page-cache folio
    # (order 2 here, or a block of the PMD order without THP) is not an anon page.
    machine, workload = machine_with(size="4MiB", thp=thp)
    workload._fault(16)
    other = machine.alloc_pages(2, GFP_KERNEL, 0, OWNER_MOVABLE)
    assert workload.migrate_page(other, other + 4, 2) is False
    assert workload.migrate_page(other, other + 512, 9) is False
    assert workload.resident == (512 if thp == "always" else 16)


def test_thp_always_on_a_fresh_machine_maps_whole_aligned_ranges_by_thps_and_the_tail_by_pages():
    machine, workload = machine_with(size="10252KiB", thp="always", defrag="never")
    assert workload._fault(5 * HPAGE + 3) == 5 * HPAGE + 3  # 5 THPs, 3 pages
    vma = workload.vma
    assert workload.thp_stats.thp_fault_alloc == 5 and workload.thp_stats.thp_fault_fallback == 0
    assert [vma.pmd[r] >= 0 for r in range(vma.nr_ranges)] == [True] * 5 + [False]
    for r in range(5):
        head = vma.pmd[r]
        assert head % HPAGE == 0 and machine.zone.order_of(head) == 9
        assert (vma.range_ptes(r) == PTE_PMD).all()
    tail = vma.range_ptes(5)
    assert (tail >= 0).all() and len(tail) == 3
    assert workload.summary()["resident_by_order"] == {"0": 3, "9": 5 * HPAGE}
    assert workload.summary()["folio_allocs"] == {"0": 3, "9": 5}
    check_conservation(machine, workload, [])


def test_a_thp_fault_makes_the_whole_range_resident_and_the_budget_it_overdrew_is_paid_back():
    machine, workload = machine_with(size="8MiB", thp="always", defrag="never")
    workload._grow(10)
    assert workload.resident == HPAGE and workload._grow_debt == HPAGE - 10
    workload._grow(HPAGE - 10)
    assert workload.resident == HPAGE and workload._grow_debt == 0
    workload._grow(1)
    assert workload.resident == 2 * HPAGE


def test_without_a_free_order_9_block_defrag_never_falls_back_to_pages_without_compacting():
    machine, workload = machine_with(size="4MiB", thp="always", defrag="never")
    fragment(machine)
    assert workload._fault(2 * HPAGE) == 2 * HPAGE
    stats = workload.thp_stats
    assert (stats.thp_fault_alloc, stats.thp_fault_fallback) == (0, 2)
    assert workload.summary()["resident_by_order"] == {"0": 2 * HPAGE, "9": 0}
    assert machine.page_alloc.stats.direct_compact == 0
    assert machine.compactor.stats.stalls == machine.compactor.stats.runs == 0
    # The fallback gave each range a page table: no second THP attempt there.
    workload._free(HPAGE)
    workload._fault(HPAGE)
    assert stats.thp_fault_fallback == 2 and not len(workload.thps)


@pytest.mark.parametrize("defrag", ["always", "madvise", "defer+madvise"])
def test_without_a_free_order_9_block_a_madvised_fault_compacts_directly(defrag):
    machine, workload = machine_with(size="2MiB", thp="madvise", madvise=True, defrag=defrag)
    fragment(machine)
    workload._fault(1)
    assert machine.page_alloc.stats.direct_compact >= 1
    assert machine.compactor.stats.stalls >= 1
    stats = workload.thp_stats
    assert stats.thp_fault_alloc + stats.thp_fault_fallback == 1


def test_a_fault_that_falls_back_tries_the_zone_twice_when_it_may_reclaim():
    machine, workload = machine_with(size="2MiB", thp="always", defrag="always", madvise=True,
                                     khugepaged={"enabled": False})
    held = fragment(machine)
    # Pin the held pages (unmovable): compaction can free no 2 MiB block.
    for pfn in held:
        machine.zone.set_owner(pfn, OWNER_UNMOVABLE)
    workload._fault(1)
    assert workload.thp_stats.thp_fault_fallback == 1
    assert machine.page_alloc.failures_by_order[9] == 2  # __GFP_NORETRY first, then plain


def test_a_free_that_lands_in_a_thp_zaps_its_whole_range_and_a_refault_tries_a_thp_again():
    machine, workload = machine_with(size="4MiB", thp="always", defrag="never")
    workload._fault(2 * HPAGE)
    assert workload._free(1) == HPAGE
    assert len(workload.thps) == 1 and workload.resident == HPAGE
    empty = [r for r in range(2) if workload.vma.pmd_none(r)]
    assert len(empty) == 1
    assert workload._fault(1) == HPAGE
    assert workload.thp_stats.thp_fault_alloc == 3
    check_conservation(machine, workload, [])


def test_a_migrated_page_stays_mapped_where_it_was_and_compaction_keeps_the_tables_whole():
    machine, workload = machine_with(size="4MiB", thp="always", defrag="never")
    held = fragment(machine)
    workload._fault(2 * HPAGE)  # order-0 pages (the faults fell back)
    zone, vma = machine.zone, workload.vma
    src = workload.pages.pfns[0]
    v = vma.rmap[src]
    dst = zone.free_blocks(0, MIGRATE_MOVABLE)[0]
    assert zone.isolate_free_page(dst) == 1
    zone.migrate_page(src, dst, 0)  # mm/migrate.c, as compaction_alloc's target
    assert vma.pte[v] == dst and vma.rmap[dst] == v and vma.rmap[src] == -1
    assert dst in workload.pages and src not in workload.pages
    release(machine, held[: len(held) // 2])
    machine.compactor.compact_memory()
    assert machine.compactor.stats.migrated > 0
    check_conservation(machine, workload, held[len(held) // 2:])


def test_a_migrated_thp_stays_mapped_by_its_pmd():
    # Compaction never isolates a folio of pageblock order; the page tables follow one
    # moved anyway.
    machine, workload = machine_with(size="4MiB", thp="always")
    workload._fault(1)
    zone, vma = machine.zone, workload.vma
    (head,) = workload.thps.pfns
    # A free order-9 block taken as compaction_alloc hands one out: allocated, no owner.
    target = zone.alloc(9, MIGRATE_MOVABLE, 0, OWNER_NONE, ALLOC_NO_WATERMARKS)
    zone.migrate_page(head, target, 0)
    assert vma.pmd[0] == target and vma.rmap[target] == 0 and vma.rmap[head] == -1
    assert target in workload.thps and head not in workload.thps
    check_conservation(machine, workload, [])


# ------------------------------------------------------------------ khugepaged


def _ranges_of_pages(max_ptes_none: int, pinned_share: float = 0.0):
    """A machine whose workload maps 4 ranges by 4 KiB pages (its faults fell back), with
    the fragmentation gone so that khugepaged's allocations can succeed."""
    machine, workload = machine_with(size="8MiB", thp="always", defrag="never",
                                     pinned_share=pinned_share,
                                     khugepaged={"max_ptes_none": max_ptes_none})
    held = fragment(machine)
    workload._fault(4 * HPAGE)
    release(machine, held)
    assert workload.thp_stats.thp_fault_fallback == 4
    return machine, workload


def test_khugepaged_collapses_a_range_with_at_most_max_ptes_none_holes_and_not_one_with_more():
    machine, workload = _ranges_of_pages(max_ptes_none=64)
    zap(workload, range(0, 64))  # range 0: 64 holes
    zap(workload, range(HPAGE, HPAGE + 65))  # range 1: 65 holes
    zap(workload, range(3 * HPAGE, 4 * HPAGE))  # range 3: a page table, no page
    resident = workload.resident
    results = full_scan(workload)
    vma = workload.vma
    assert [vma.pmd[r] >= 0 for r in range(4)] == [True, False, True, False]
    assert ScanResult.SCAN_EXCEED_NONE_PTE in results
    stats = workload.thp_stats
    assert (stats.thp_collapse_alloc, stats.thp_collapse_alloc_failed) == (2, 0)
    assert stats.pages_collapsed == 2 and stats.full_scans == 1
    # The 64 holes of range 0 became zeroed subpages of its THP.
    assert workload.resident == resident + 64
    assert workload.summary()["folio_allocs"]["9"] == 2
    check_conservation(machine, workload, [])


def test_khugepaged_by_default_collapses_a_range_with_one_page_but_not_an_empty_one():
    machine, workload = _ranges_of_pages(max_ptes_none=511)
    zap(workload, range(1, HPAGE))  # range 0: one page left
    zap(workload, range(HPAGE, 2 * HPAGE))  # range 1: none
    full_scan(workload)
    vma = workload.vma
    assert [vma.pmd[r] >= 0 for r in range(4)] == [True, False, True, True]
    assert (vma.range_ptes(1) == PTE_NONE).all()
    check_conservation(machine, workload, [])


def test_khugepaged_leaves_a_range_with_a_pinned_page_alone():
    machine, workload = _ranges_of_pages(max_ptes_none=511, pinned_share=1.0)
    scan = workload.khugepaged.scan
    assert scan.hpage_collapse_scan_pmd(0) == (ScanResult.SCAN_PAGE_COUNT, False)
    assert workload.thp_stats.thp_collapse_alloc == 0


def test_khugepaged_scans_pages_to_scan_ptes_a_wakeup_and_returns_after_a_collapse():
    machine, workload = _ranges_of_pages(max_ptes_none=511)
    scan = workload.khugepaged.scan
    progress, result = scan.scan_mm_slot(4096)
    assert (progress, result) == (1 + HPAGE, ScanResult.SCAN_SUCCEED)  # the collapse ends it
    machine2, thps = machine_with(size="16MiB", thp="always")
    thps._fault(16 * HPAGE)
    # PMD-mapped ranges count their HPAGE_PMD_NR too: 8 of them fill 4096.
    assert thps.khugepaged.scan.scan_mm_slot(4096) == (1 + 8 * HPAGE,
                                                       ScanResult.SCAN_PMD_MAPPED)


def test_a_failed_collapse_allocation_sleeps_alloc_sleep_once_and_the_second_ends_the_scan():
    machine, workload = machine_with(size="8MiB", thp="always", defrag="never",
                                     khugepaged={"defrag": False})
    fragment(machine)
    workload._fault(4 * HPAGE)
    env = simpy.Environment()
    workload.khugepaged.env = env
    env.process(workload.khugepaged.do_scan())
    env.run()
    assert env.now == 60.0
    assert workload.khugepaged.alloc_sleeps == 1
    assert workload.thp_stats.thp_collapse_alloc_failed == 2
    assert workload.khugepaged.scan.address == 2  # the failed ranges are passed over


def test_khugepaged_runs_only_when_thp_is_enabled_for_the_vma():
    assert machine_with(thp="madvise", madvise=False)[1].khugepaged is None
    assert machine_with(thp="never")[1].khugepaged is None
    assert machine_with(thp="always", khugepaged={"enabled": False})[1].khugepaged is None
    assert machine_with(thp="madvise", madvise=True)[1].khugepaged is not None


def test_a_run_with_khugepaged_collapses_what_fell_back_on_a_fragmented_machine():
    # A filler takes every page it can, then frees 24 of its 64 MiB at random: no free
    # 2 MiB block is left, so the THP workload's faults fall back (defrag never does not
    # compact). khugepaged (GFP_TRANSHUGE: it compacts) collapses them. The per-CPU
    # lists are off: with them, whether async compaction finds a pageblock without a
    # page on a per-CPU list (skip_on_failure) depends on how far pcp->high fell during
    # the filler's frees (ZONE_BELOW_HIGH), and an idle CPU keeps its pages; since the
    # filler's page tables moved that trajectory, every pageblock held one and the
    # collapse never got its block.
    config = validate_config({
        "duration": "8s", "sample_every": "1s",
        "machine": {"memory": "64MiB", "zones": ["Normal"], "boot": "none"},
        "buddy": {"min_free_kbytes": 256, "pcp": False}, "compaction": {"proactiveness": 0},
        "workloads": [
            {"kind": "anon", "name": "filler", "size": "64MiB", "grow_rate": "512MiB",
             "shrink_at": "1s", "shrink_to": "40MiB", "stop": "4s"},
            {"kind": "anon", "name": "thp", "start": "2s", "size": "4MiB",
             "grow_rate": "64MiB", "thp": "always", "defrag": "never",
             "khugepaged": {"scan_sleep": "1s"}}]}, "t")
    result = run_machine(config, 1, "default")
    anon = result.summary["workloads"]["thp"]
    assert anon["thp_fault_alloc"] == 0 and anon["thp_fault_fallback"] == 2
    assert anon["thp_collapse_alloc"] == 2 and anon["khugepaged_pages_collapsed"] == 2
    assert anon["resident_by_order"] == {"0": 0, "9": 2 * HPAGE}
    assert result.get("anon_pages_order0", "thp")[-1] == 0
    assert result.get("thp_collapse_alloc", "thp")[-1] == 2


def test_a_thp_run_under_pressure_is_the_same_batched_and_page_by_page():
    # tests/test_batching.py's rule holds for the THP paths too.
    config = validate_config({
        "duration": "4s", "sample_every": "500ms", "machine": {"memory": "48MiB"},
        "workloads": [
            {"kind": "anon", "size": "40MiB", "grow_rate": "64MiB", "churn_rate": "16MiB",
             "pinned_share": 0.1, "thp": "always", "defrag": "defer+madvise",
             "khugepaged": {"scan_sleep": "200ms", "alloc_sleep": "1s"}},
            {"kind": "kernel_alloc", "rate": 2000, "lifetime": {"mean": "1s"}},
            {"kind": "page_cache", "rate": "16MiB"}]}, "t")
    runs = [run_machine(config, 2, "default", batched=b) for b in (True, False)]
    for result in runs:
        for key in TIMING_KEYS:
            result.summary.pop(key)
    assert runs[0].summary == runs[1].summary
    anon = runs[0].summary["workloads"]["anon-0"]
    assert anon["thp_fault_alloc"] and anon["thp_fault_fallback"]
    for key, series in runs[0].series.items():
        assert np.array_equal(series, runs[1].series[key], equal_nan=True), key


# ------------------------------------------------------------------ conservation

OPS = st.lists(st.tuples(st.sampled_from(["grow", "churn", "free", "scan", "scan", "kernel",
                                          "kfree", "compact"]),
                         st.integers(1, 1500)), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=OPS, thp=st.sampled_from([("always", False), ("madvise", True), ("never", False)]),
       defrag=st.sampled_from(THP_DEFRAG), pinned=st.sampled_from([0.0, 0.3]),
       max_ptes_none=st.sampled_from([0, 64, 511]), first=st.integers(0, 4 * HPAGE),
       keep=st.floats(0, 1), seed=st.integers(0, 3),
       release=st.sampled_from(["random", "address"]))
def test_pages_are_conserved_under_random_grow_churn_free_and_collapse(
        ops, thp, defrag, pinned, max_ptes_none, first, keep, seed, release):
    """Faults into a fragmented zone first (so that ranges fall back to 4 KiB pages),
    then some of the fragmentation goes, then random operations; after each, every page
    is in exactly one place and the VMA maps exactly the workload's pages, whether frees
    pick random pages or the lowest addresses (release)."""
    machine, workload = machine_with(
        memory="16MiB", size="8MiB", thp=thp[0], madvise=thp[1], defrag=defrag,
        pinned_share=pinned, khugepaged={"max_ptes_none": max_ptes_none}, release=release)
    target = workload.params.size // 4096
    rng = np.random.default_rng(seed)
    held = fragment(machine)
    for pfn in held:  # unmovable: compaction cannot undo it, nor move the test's pages
        machine.zone.set_owner(pfn, OWNER_UNMOVABLE)
    workload._grow(first)
    freed = rng.random(len(held)) >= keep
    for pfn in np.asarray(held)[freed].tolist():
        machine.free_pages(pfn, 0, 0)
    held = np.asarray(held)[~freed].tolist()
    check_conservation(machine, workload, held)
    for op, n in ops:
        if op == "grow":
            workload._grow(min(n, target - workload.resident))
        elif op == "churn":
            workload._churn(n, target)
        elif op == "free":
            workload._free(n)
        elif op == "scan" and workload.khugepaged is not None:
            workload.khugepaged.scan.scan_mm_slot(n * 8)
        elif op == "kernel":  # n kernel pages, of which every fourth is kept
            got = []
            for _ in range(n):
                pfn = machine.alloc_pages(0, GFP_KERNEL, 0, OWNER_UNMOVABLE)
                if pfn is None:
                    break
                got.append(pfn)
            for i, pfn in enumerate(got):
                if i % 4:
                    machine.free_pages(pfn, 0, 0)
                else:
                    held.append(pfn)
        elif op == "kfree":
            for _ in range(min(n, len(held))):
                machine.free_pages(held.pop(int(rng.integers(len(held)))), 0, 1)
        elif op == "compact":
            machine.compactor.compact_memory()
        check_conservation(machine, workload, held)
    workload._free_all()
    assert workload.resident == 0
    check_conservation(machine, workload, held)


# ------------------------------------------------------------------ real data


def _selected(text: str) -> str:
    """'always [madvise] never' -> 'madvise' (a sysfs choice file)."""
    return re.search(r"\[(\S+)\]", text).group(1)


def _movable(doc: dict, baseline: dict) -> list[dict[str, int]]:
    """Per run: the Movable folio-order histogram less the harness's own (baseline-null,
    the same run index): the allocations of the scenario's work itself."""
    out = []
    for run, base in zip(doc["runs"], baseline["runs"], strict=True):
        noise = base["by_migratetype"].get("Movable", {})
        hist = {o: n - noise.get(o, 0) for o, n in run["by_migratetype"]["Movable"].items()}
        out.append({o: n for o, n in hist.items() if n})
    return out


@pytest.mark.parametrize("scenario", ["anon-256m-madv-hugepage", "anon-256m-no-madvise"])
def test_a_fresh_machine_faults_the_folio_orders_the_real_618_kernel_did(scenario):
    doc = json.loads((FOLIO_ORDERS / f"{scenario}.json").read_text())
    baseline = json.loads((FOLIO_ORDERS / "baseline-null.json").read_text())
    thp = doc["machine"]["thp"]
    enabled, defrag = _selected(thp["enabled"]), _selected(thp["defrag"])
    madvised = doc["params"]["madvise"] == "MADV_HUGEPAGE"
    assert thp["hpage_pmd_size"] == HPAGE * 4096 and doc["page_size"] == 4096
    config = validate_config({
        "duration": "1s", "sample_every": "500ms", "machine": {"memory": "1GiB"},
        "workloads": [{"kind": "anon", "size": doc["params"]["size"], "grow_rate": "1GiB",
                       "thp": enabled, "madvise": madvised, "defrag": defrag,
                       "free_at_stop": False}]}, scenario)
    result = run_machine(config, 1, "default").summary
    anon = result["workloads"]["anon-0"]
    simulated = {o: n for o, n in anon["folio_allocs"].items() if n}
    for recorded in _movable(doc, baseline):
        assert simulated == recorded
    for run in doc["runs"]:
        vmstat = run["vmstat_delta_systemwide"]
        assert anon["thp_fault_alloc"] == vmstat["thp_fault_alloc"]
        assert anon["thp_fault_fallback"] == vmstat["thp_fault_fallback"]
        assert result["compaction"]["stalls"] == vmstat["compact_stall"] == 0
    # The huge page faults' gfp mask, as the kernel logged it.
    huge = [flags for flags, orders in doc["runs"][0]["by_gfp_flags"].items() if "9" in orders]
    if madvised:
        assert huge == ["GFP_TRANSHUGE|__GFP_NORETRY|__GFP_THISNODE"]
        assert alloc_pages_mpol_gfps(vma_thp_gfp_mask(defrag, madvised))[0] == \
            parse_gfp(huge[0])
    else:
        assert huge == []
