"""Compaction against the rules of Linux 6.18 mm/compaction.c, and the real anchor.

Small zones are fragmented through the allocator itself (fill, then free 3 of every 4
pages by allocation order), never by placing pages at chosen pfns. The anchor test runs
bench/anchor_gupta.py's recipe at the real Normal zone's size and compares the unusable
index with the kernel's own debugfs output in tests/data.
"""

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sim.buddy import (
    ALLOC_NO_WATERMARKS,
    OWNER_MOVABLE,
    OWNER_PINNED,
    OWNER_SLAB,
    OWNER_UNMOVABLE,
    PG_ALLOC,
    PG_BUDDY,
    PG_KIND,
    PG_ORDER,
    Zone,
)
from sim.compaction import (
    COMPACT_MAX_DEFER_SHIFT,
    CompactControl,
    Compactor,
    CompactResult,
)
from sim.config import CompactionSection
from sim.errors import FragsimError
from sim.metrics import fragmentation_index
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_UNMOVABLE

M, U = MIGRATE_MOVABLE, MIGRATE_UNMOVABLE
NOWM = ALLOC_NO_WATERMARKS
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests/data/compaction/gupta-12g-keep1of4"
R = CompactResult


def allocated_blocks(zone: Zone) -> dict[int, tuple[int, int]]:
    """pfn -> (order, owner) of every allocated block."""
    state, owner = zone.page_state_arrays()
    out = {}
    pfn = 0
    while pfn < zone.nr_pages:
        st_ = state[pfn]
        order = st_ & PG_ORDER
        if st_ & PG_KIND == PG_ALLOC:
            out[pfn] = (order, owner[pfn])
        pfn += 1 << order
    return out


def pages_per_owner(zone: Zone) -> Counter:
    counts: Counter = Counter()
    for order, tag in allocated_blocks(zone).values():
        counts[tag] += 1 << order
    return counts


def keep_one_of_four(
    nr_pages: int = 1 << 14, keep: int = 3, pinned_every: int = 0, unmovable_every: int = 0,
) -> Zone:
    """Fill a zone with order-0 pages on CPU 1 (without watermarks, so nothing large stays
    free), then free all but one page of each 4 on CPU 0. Every ``pinned_every``-th kept
    page is GUP-pinned; every ``unmovable_every``-th allocation is an UNMOVABLE page
    (which the allocator places by its own fallback rules)."""
    zone = Zone(nr_pages, cpus=2)
    pages = []
    i = 0
    while True:
        mt = U if unmovable_every and i % unmovable_every == unmovable_every - 1 else M
        pfn = zone.alloc(0, mt, cpu=1, alloc_flags=NOWM)
        if pfn is None:
            break
        pages.append((pfn, mt))
        i += 1
    kept = 0
    for i, (pfn, mt) in enumerate(pages):
        if mt == U:
            continue
        if i % 4 != keep:
            zone.free(pfn, 0, cpu=0)
            continue
        kept += 1
        if pinned_every and kept % pinned_every == 0:
            zone.set_owner(pfn, OWNER_PINNED)
    return zone


# --------------------------------------------------------------------------- what moves


def test_compaction_never_moves_pinned_or_unmovable_pages():
    zone = keep_one_of_four(pinned_every=5, unmovable_every=97)
    before = allocated_blocks(zone)
    fixed = {pfn: v for pfn, v in before.items() if v[1] in (OWNER_PINNED, OWNER_UNMOVABLE)}
    assert sum(v[1] == OWNER_PINNED for v in fixed.values()) > 100
    assert sum(v[1] == OWNER_UNMOVABLE for v in fixed.values()) > 100
    compactor = Compactor(zone)
    assert compactor.compact_memory(cpu=0) == R.COMPACT_COMPLETE
    assert compactor.stats.migrated > 1000  # the movable pages did move
    after = allocated_blocks(zone)
    for pfn, value in fixed.items():
        assert after.get(pfn) == value, f"pfn {pfn} {value} changed to {after.get(pfn)}"
    zone.check()


def test_compaction_conserves_pages_per_owner_and_passes_check():
    zone = keep_one_of_four(pinned_every=7, unmovable_every=50)
    before = pages_per_owner(zone)
    compactor = Compactor(zone)
    compactor.compact_memory(cpu=1)
    assert compactor.stats.migrated > 1000
    assert pages_per_owner(zone) == before
    zone.check()


def test_migrated_sources_are_freed_to_the_running_cpus_pcp_list():
    # mm/migrate.c migrate_folio_done -> folio_put: the source pages land on the per-CPU
    # list of the CPU compaction runs on; manual compaction never drains it.
    zone = keep_one_of_four()
    zone.drain_all_pages()
    compactor = Compactor(zone)
    compactor.compact_memory(cpu=1)
    assert zone.pcp[0].count == 0
    assert zone.pcp[1].count > 0
    assert compactor.stats.migrated > zone.pcp[1].count


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["alloc", "free", "pin", "compact"]),
                  st.integers(0, 3), st.integers(0, 2), st.integers(0, 10**6)),
        min_size=20, max_size=120,
    ),
    keep=st.integers(0, 3),
)
def test_every_entry_point_keeps_invariants_and_conserves_owners(ops, keep):
    zone = keep_one_of_four(nr_pages=1 << 13, keep=keep, unmovable_every=61)
    compactor = Compactor(zone)
    live = [pfn for pfn, (order, tag) in allocated_blocks(zone).items() if tag == OWNER_MOVABLE]
    for op, order, mt, seed in ops:
        if op == "alloc":
            pfn = zone.alloc(order, mt, cpu=seed % 2)
            if pfn is not None and mt == M:
                live.append(pfn)
        elif op == "free" and live:
            pfn = live.pop(seed % len(live))
            if zone.is_allocated(pfn) and zone.owner_of(pfn) == OWNER_MOVABLE:
                zone.free(pfn, zone.order_of(pfn), cpu=seed % 2)
        elif op == "pin" and live:
            pfn = live[seed % len(live)]
            if zone.is_allocated(pfn) and zone.owner_of(pfn) == OWNER_MOVABLE:
                zone.set_owner(pfn, OWNER_PINNED)
        elif op == "compact":
            before = pages_per_owner(zone)
            kind = seed % 4
            cpu = seed % 2
            if kind == 0:
                compactor.compact_memory(cpu)
            elif kind == 1:
                compactor.proactive_compact(cpu)
            elif kind == 2:
                compactor.kcompactd_do_work(order + 1, cpu)
            else:
                prio = ("async", "sync_light", "sync_full")[seed % 3]
                _, pfn = compactor.alloc_pages_direct_compact(
                    order + 1, mt, prio=prio, cpu=cpu, owner=OWNER_SLAB + 1
                )
                if pfn is not None:
                    before[OWNER_SLAB + 1] += 1 << (order + 1)
            assert pages_per_owner(zone) == before
            # Movable pages may have moved: refresh the list of live ones.
            live = [p for p, (_, tag) in allocated_blocks(zone).items() if tag == OWNER_MOVABLE]
    zone.check()


def test_slab_pages_go_to_the_defragmenter_only_with_slab_movable_on():
    def zone_with_slab_pages() -> tuple[Zone, list[int]]:
        zone = keep_one_of_four(nr_pages=1 << 13)
        kept = [p for p, (_, tag) in allocated_blocks(zone).items() if tag == OWNER_MOVABLE]
        slab = kept[::9]
        for pfn in slab:
            zone.set_owner(pfn, OWNER_SLAB + 3)
        return zone, slab

    asked, vacated = [], []

    def mobile(pfn: int) -> bool:
        asked.append(pfn)
        return True

    def vacate(zone: Zone):
        def hook(pfn: int) -> bool:
            vacated.append(pfn)
            zone.free(pfn, zone.order_of(pfn), cpu=0)
            return True
        return hook

    # Off (the default) or hooks unset: slab pages stay where they are.
    for kwargs in ({}, {"slab_movable": True}):
        zone, slab = zone_with_slab_pages()
        c = Compactor(zone, **kwargs)
        c.slab_page_mobile = mobile if not kwargs else None
        c.vacate_slab_page = vacate(zone) if not kwargs else None
        c.compact_memory()
        assert all(zone.owner_of(p) == OWNER_SLAB + 3 for p in slab)
        assert c.stats.slab_pages_vacated == 0 and not vacated
    zone, slab = zone_with_slab_pages()
    c = Compactor(zone, slab_movable=True, slab_page_mobile=mobile, vacate_slab_page=vacate(zone))
    c.compact_memory()
    assert vacated and set(vacated) <= set(slab) and set(asked) == set(vacated)
    assert c.stats.slab_pages_vacated == len(vacated)
    zone.check()


# --------------------------------------------------------------------------- termination


def test_manual_compaction_runs_until_the_scanners_meet_and_then_stops():
    zone = keep_one_of_four()
    movable = sum(tag == OWNER_MOVABLE for _, tag in allocated_blocks(zone).values())
    compactor = Compactor(zone)
    assert compactor.compact_memory() == R.COMPACT_COMPLETE
    # __compact_finished reset the cached positions when the scanners met.
    assert compactor.state.cached_migrate_pfn == [0, 0]
    assert compactor.state.cached_free_pfn == zone.nr_pages - zone.pageblock_nr_pages
    first = compactor.stats.migrated
    assert first > movable // 2
    # The movable pages now sit above the freed memory. A second pass only packs the holes
    # that the per-CPU list released behind the free scanner.
    assert compactor.compact_memory() == R.COMPACT_COMPLETE
    assert compactor.stats.migrated - first < first // 3
    assert zone.nr_free[zone.max_order] * (1 << zone.max_order) > zone.nr_free_pages // 2


def test_direct_compaction_stops_once_the_order_is_available():
    zone = keep_one_of_four()
    assert zone.zone_watermark_ok(9, zone.min_wmark) is False
    compactor = Compactor(zone)
    result, pfn = compactor.alloc_pages_direct_compact(9, M, prio="sync_light")
    assert result == R.COMPACT_SUCCESS and pfn is not None
    assert zone.is_allocated(pfn) and zone.order_of(pfn) == 9
    assert zone.owner_of(pfn) == OWNER_MOVABLE
    # It cleared a block or two, not the zone: a full compaction migrates ~3000 pages.
    assert 0 < compactor.stats.migrated <= 4 * 128
    assert compactor.state.cached_migrate_pfn[1] <= 4 * zone.pageblock_nr_pages
    assert compactor.stats.successes == 1 and compactor.stats.stalls == 1
    zone.check()


def test_direct_compaction_captures_the_block_it_frees():
    # compaction_capture: the order-4 block forms while the freed sources are drained
    # (check_drain), and is handed to the request before it reaches a free list.
    zone = keep_one_of_four()
    compactor = Compactor(zone)
    result, captured = compactor.try_to_compact_pages(4, M, prio="async", owner=OWNER_SLAB + 9)
    assert result == R.COMPACT_SUCCESS and captured is not None
    assert zone.order_of(captured) == 4 and zone.owner_of(captured) == OWNER_SLAB + 9
    assert all(zone.nr_free[o] == 0 for o in range(4, zone.max_order + 1))
    zone.check()


def test_direct_compaction_without_gfp_fs_moves_anonymous_folios_only():
    """isolate_migratepages_block: "Only allow to migrate anonymous pages in GFP_NOFS
    context": with every movable page page cache, a NOFS direct compaction isolates
    nothing; with half of them anonymous it moves those alone."""
    def every(pfn: int) -> bool:
        return True

    def every_other_group(pfn: int) -> bool:  # of the kept pages (one in four), half
        return (pfn // 4) % 2 == 0

    for is_file, expect_moves in ((every, False), (every_other_group, True)):
        zone = keep_one_of_four()
        compactor = Compactor(zone, is_file_folio=is_file)
        moved = []
        zone.on_migrate = lambda old, new, order, moved=moved: moved.append(old)
        compactor.try_to_compact_pages(4, M, prio="sync_light", gfp_fs=False)
        assert bool(moved) == expect_moves
        assert not any(is_file(pfn) for pfn in moved)
        zone.check()
    zone = keep_one_of_four()
    compactor = Compactor(zone, is_file_folio=lambda pfn: True)
    result, _ = compactor.try_to_compact_pages(4, M, prio="sync_light")  # with __GFP_FS
    assert compactor.stats.migrated > 0


def test_async_direct_compaction_takes_only_source_blocks_of_its_migratetype():
    # An UNMOVABLE request in async mode scans only UNMOVABLE pageblocks: here there are
    # none, so nothing is isolated, while sync-light moves pages.
    zone = keep_one_of_four()
    compactor = Compactor(zone)
    result, _ = compactor.try_to_compact_pages(2, U, prio="async")
    assert result == R.COMPACT_PARTIAL_SKIPPED
    assert compactor.stats.migrated == 0 and compactor.stats.isolated == 0
    result, _ = compactor.try_to_compact_pages(2, U, prio="sync_light")
    assert compactor.stats.migrated > 0


def test_proactive_compaction_stops_at_the_low_score_watermark():
    zone = keep_one_of_four(nr_pages=1 << 15)
    compactor = Compactor(zone, CompactionSection(proactiveness=20))
    assert (compactor.fragmentation_score_wmark(True),
            compactor.fragmentation_score_wmark(False)) == (80, 90)
    assert compactor.fragmentation_score_node() > 90
    assert compactor.should_proactive_compact()
    step = compactor.proactive_compact()
    assert step.ran and step.result == R.COMPACT_SUCCESS
    assert step.score_after < step.score_before and step.next_check_s == 0.5
    assert compactor.fragmentation_score_zone() <= 80
    # It stopped there: a manual compaction still finds plenty to do.
    migrated = compactor.stats.migrated
    compactor.compact_memory()
    assert compactor.stats.migrated - migrated > migrated // 2
    assert not compactor.should_proactive_compact()
    assert compactor.proactive_compact().ran is False


def test_proactive_watermarks_follow_618_leeway_not_a_fixed_ten():
    zone = Zone(1 << 12)
    assert [Compactor(zone, CompactionSection(proactiveness=p)).fragmentation_score_wmark(False)
            for p in (0, 20, 90, 96, 100)] == [100, 90, 15, 6, 0]
    assert Compactor(zone, CompactionSection(proactiveness=96)).fragmentation_score_wmark(True) == 4


# --------------------------------------------------------------------------- gates


def test_deferral_follows_defer_shift():
    # Every kept page pinned: compaction can move nothing, each sync run fails and defers.
    zone = keep_one_of_four(pinned_every=1)
    compactor = Compactor(zone)
    skipped_before_run = []
    for _ in range(COMPACT_MAX_DEFER_SHIFT + 2):
        skips = 0
        while True:
            result, pfn = compactor.try_to_compact_pages(2, M, prio="sync_light")
            assert pfn is None
            if result != R.COMPACT_DEFERRED:
                break
            skips += 1
        # The scanners met without success (PARTIAL_SKIPPED: not a whole-zone run).
        assert result == R.COMPACT_PARTIAL_SKIPPED
        skipped_before_run.append(skips)
    # After k failures, 2**k - 1 attempts are skipped, up to 63 at defer_shift 6.
    assert skipped_before_run == [0, 1, 3, 7, 15, 31, 63, 63]
    assert compactor.state.defer_shift == COMPACT_MAX_DEFER_SHIFT
    assert compactor.stats.deferred == sum(skipped_before_run)
    # An order that succeeded raises compact_order_failed: orders below it are not
    # deferred, the failing order still is; an allocation success resets the backoff.
    compactor.compaction_defer_reset(1, alloc_success=False)
    assert compactor.state.order_failed == 2
    assert compactor.compaction_deferred(1) is False
    assert compactor.compaction_deferred(2) is True
    compactor.compaction_defer_reset(2, alloc_success=True)
    assert compactor.state.defer_shift == 0 and compactor.compaction_deferred(2) is False


def test_async_failures_do_not_defer():
    zone = keep_one_of_four(pinned_every=1)
    compactor = Compactor(zone)
    for _ in range(3):
        result, _ = compactor.try_to_compact_pages(2, M, prio="async")
        assert result == R.COMPACT_PARTIAL_SKIPPED
    assert compactor.state.defer_shift == 0 and compactor.stats.deferred == 0


def order_k_holes(k: int, nr_pages: int = 1 << 14) -> Zone:
    """Every other order-k block free, the others allocated: free memory is plentiful
    but no free block is larger than order k (the buddies are taken)."""
    zone = Zone(nr_pages, pcp=False, min_free_kbytes=256)
    blocks = []
    while (pfn := zone.alloc(k, M, alloc_flags=NOWM)) is not None:
        blocks.append(pfn)
    for pfn in blocks[::2]:
        zone.free(pfn, k)
    return zone


def test_fragmentation_index_gate_applies_only_above_order_3():
    # Free memory in order-3 blocks, an order-4 request: fragindex 500, i.e. "lack of
    # memory" by extfrag_threshold 500, so a costly request skips compaction.
    zone = order_k_holes(3)
    assert 0 <= fragmentation_index(zone.nr_free, 4) <= 500
    compactor = Compactor(zone)
    assert compactor.compaction_suit_allocation_order(4, 0, False) == R.COMPACT_SKIPPED
    result, pfn = compactor.try_to_compact_pages(4, M, prio="sync_light")
    assert (result, pfn, compactor.stats.runs) == (R.COMPACT_SKIPPED, None, 0)
    # A lower threshold lets it through.
    lower = Compactor(zone, CompactionSection(extfrag_threshold=400))
    assert lower.compaction_suit_allocation_order(4, 0, False) == R.COMPACT_CONTINUE
    # The same shape one order down (order-2 holes, an order-3 request) has the same
    # index, but order 3 is not costly: no gate.
    zone = order_k_holes(2)
    assert 0 <= fragmentation_index(zone.nr_free, 3) <= 500
    compactor = Compactor(zone)
    assert compactor.compaction_suit_allocation_order(3, 0, False) == R.COMPACT_CONTINUE
    result, pfn = compactor.try_to_compact_pages(3, M, prio="sync_light")
    assert compactor.stats.runs == 1 and result == R.COMPACT_SUCCESS and pfn is not None


def test_fragmentation_index_of_minus_1000_passes_the_gate():
    zone = order_k_holes(5)
    assert fragmentation_index(zone.nr_free, 4) == -1000
    assert Compactor(zone).compaction_suitable(4, zone.min_wmark)


def test_compaction_needs_free_pages_above_watermark_plus_compact_gap():
    zone = keep_one_of_four(nr_pages=1 << 13, keep=3)
    compactor = Compactor(zone)
    free = zone.nr_free_pages
    # __compaction_suitable: free > mark + 2 << order (+ low - min above order 3).
    assert compactor.compaction_suitable(2, free - (2 << 2) - 1)
    assert not compactor.compaction_suitable(2, free - (2 << 2))


def test_slub_first_attempt_and_thp_light_never_compact():
    zone = keep_one_of_four()
    compactor = Compactor(zone)
    for caller in ("slub_first_attempt", "transhuge_light"):
        assert compactor.alloc_pages_direct_compact(9, M, caller=caller) == (
            R.COMPACT_SKIPPED, None)
    assert compactor.stats.runs == 0 and compactor.stats.stalls == 0


# --------------------------------------------------------------------------- skip bits


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.integers(0, 6), st.sampled_from(
    [OWNER_MOVABLE, OWNER_PINNED, OWNER_SLAB, OWNER_UNMOVABLE]), st.booleans()),
    min_size=1, max_size=120), seed=st.integers(0, 2**16))
def test_reset_isolation_pfn_samples_as_the_kernel_defines_it(ops, seed):
    """``__reset_isolation_pfn`` on every pageblock, each way it is called, against its
    definition from the zone's blocks: no pageblock-order compound page at ``pfn``; then,
    every 8th page of the block from its start, an LRU page (``PageLRU`` of its compound
    head: an allocated movable or pinned block covering it) for the source, or a free
    buddy head for the target; a cleared skip bit exactly when it answers True."""
    import random

    rnd = random.Random(seed)
    zone = Zone(1 << 9, max_order=6, pageblock_order=5, cpus=2, pcp=False)
    held = []
    for order, tag, free_one in ops:
        if free_one and held:
            pfn, k = held.pop(rnd.randrange(len(held)))
            zone.free(pfn, k, cpu=0)
            continue
        pfn = zone.alloc(order, M if tag in (OWNER_MOVABLE, OWNER_PINNED) else U, cpu=0,
                         alloc_flags=NOWM)
        if pfn is not None:
            zone.set_owner(pfn, tag)
            held.append((pfn, order))
    compactor = Compactor(zone)
    state, owner = zone.page_state_arrays()
    pb = zone.pageblock_nr_pages
    cover = {}  # pfn -> (head, state) of the block holding it
    pfn = 0
    while pfn < zone.nr_pages:
        size = 1 << (state[pfn] & PG_ORDER)
        for p in range(pfn, pfn + size):
            cover[p] = (pfn, state[pfn])
        pfn += size

    def lru(p):
        head, st_ = cover[p]
        return st_ & PG_KIND == PG_ALLOC and owner[head] in (OWNER_MOVABLE, OWNER_PINNED)

    def expected(pfn, source, target):
        head, st_ = cover[pfn]
        if st_ & PG_KIND == PG_ALLOC and st_ & PG_ORDER >= zone.pageblock_order:
            return False
        block = pfn // pb
        if source and target and not zone.pageblock_skip(pfn):
            return True
        if not source and target and zone.pageblock_migratetype(pfn) != M:
            return False
        return any((source and lru(p)) or (target and state[p] & PG_KIND == PG_BUDDY)
                   for p in range(block * pb, (block + 1) * pb, 8))

    for pfn in [b * pb for b in range(zone.nr_pageblocks)] + [
            b * pb + pb - 1 for b in range(zone.nr_pageblocks)]:
        for source, target, skip in ((True, False, True), (False, True, True),
                                     (True, True, True), (True, True, False)):
            if skip:
                zone.set_pageblock_skip(pfn)
            else:
                zone.clear_pageblock_skip(pfn)
            want = expected(pfn, source, target)
            assert compactor._reset_isolation_pfn(pfn, source, target) == want
            # cleared exactly when it answered True (or it was clear already)
            assert zone.pageblock_skip(pfn) == (skip and not want)


def test_skip_bits_are_set_by_direct_compaction_and_ignored_by_manual():
    # The kept (pinned) page is the first of each 4, so every 8th-page sample that
    # __reset_isolation_pfn takes in the lower half finds an LRU page.
    zone = keep_one_of_four(pinned_every=1, keep=0)
    pb = zone.pageblock_nr_pages
    compactor = Compactor(zone)
    compactor.try_to_compact_pages(2, M, prio="sync_light")
    skipped = {b for b in range(zone.nr_pageblocks) if zone.pageblock_skip(b * pb)}
    # Every scanned block isolated nothing and was marked (the last one is the free
    # scanner's, which the migrate scanner never enters).
    assert skipped == set(range(zone.nr_pageblocks - 1))
    assert compactor.state.blockskip_flush  # a direct compaction's scanners met
    # A second direct compaction skips the marked blocks: it scans almost nothing.
    scanned = compactor.stats.migrate_scanned
    compactor.try_to_compact_pages(2, M, prio="async")
    assert compactor.stats.migrate_scanned - scanned == 0
    # Manual compaction ignores them (ignore_skip_hint): it scans every block.
    scanned = compactor.stats.migrate_scanned
    compactor.compact_memory()
    assert compactor.stats.migrate_scanned - scanned >= (zone.nr_pageblocks - 1) * pb // 2
    # kswapd going to sleep: the lower half's blocks show an LRU page and are cleared.
    compactor.state.blockskip_flush = True
    compactor.reset_isolation_suitable()
    cleared = {b for b in range(zone.nr_pageblocks) if not zone.pageblock_skip(b * pb)}
    assert set(range(zone.nr_pageblocks // 2)) <= cleared
    assert not compactor.state.blockskip_flush
    # Without a flush pending, nothing is reset.
    zone.set_pageblock_skip(0)
    compactor.reset_isolation_suitable()
    assert zone.pageblock_skip(0)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda z: Compactor(z).try_to_compact_pages(0), "compaction order"),
        (lambda z: Compactor(z).try_to_compact_pages(11), "compaction order"),
        (lambda z: Compactor(z).try_to_compact_pages(4, prio="fast"), "priority"),
        (lambda z: Compactor(z).try_to_compact_pages(4, caller="thp"), "caller"),
        (lambda z: Compactor(z).try_to_compact_pages(4, 3), "migratetype"),
        (lambda z: Compactor(z).compact_memory(cpu=2), "cpu"),
        (lambda z: Compactor(z).kcompactd_do_work(-1), "compaction order"),
    ],
)
def test_bad_names_thresholds_and_orders_raise_one_line_errors(make, message):
    with pytest.raises(ValueError) as excinfo:
        make(Zone(1 << 12))
    text = str(excinfo.value)
    assert message in text and "\n" not in text and "expected" in text


@pytest.mark.parametrize(("setting", "value"), [
    ("proactiveness", 101), ("extfrag_threshold", -1), ("migrate_cost", -1e-6)])
def test_bad_sysctls_and_costs_are_refused_by_the_config_section(setting, value):
    # The sysctls and costs have one definition: sim/config.py's CompactionSection.
    with pytest.raises(ValidationError, match=setting):
        Compactor(Zone(1 << 12), CompactionSection(**{setting: value}))
    with pytest.raises(FragsimError, match=f"compaction.{setting}: expected"):
        load_config_text({"compaction": {setting: value}})


def load_config_text(data):
    from sim.experiment import validate_config

    return validate_config(data, "x.yaml")


# --------------------------------------------------------------------------- the anchor


def load_anchor():
    spec = importlib.util.spec_from_file_location("anchor_gupta", ROOT / "bench/anchor_gupta.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_gupta_anchor_unusable_index_within_005_of_the_real_kernel_at_every_order():
    anchor = load_anchor()
    run = anchor.run_anchor(keep=3)
    real_freed = anchor.real_unusable_index("2-freed")
    real_compacted = anchor.real_unusable_index("3-compacted")
    assert len(real_freed) == len(run.freed) == 11
    for order in range(11):
        assert abs(run.freed[order] / 1000 - real_freed[order]) <= 0.05, ("2-freed", order)
        assert abs(run.compacted[order] / 1000 - real_compacted[order]) <= 0.05, (
            "3-compacted", order)
    # The frees leave exactly the real deficit on CPU 0's per-CPU list (see the script).
    assert run.pcp_after_free == 6624
    assert run.result == R.COMPACT_COMPLETE
    run.zone.check()


def test_free_scanner_stride_starves_on_a_layout_whose_kept_pages_are_32_aligned():
    # 6.18 isolate_freepages doubles its stride (to COMPACT_CLUSTER_MAX) over pageblocks
    # that yield nothing. Keeping the first page of each 4 in a fresh zone puts a kept page
    # at every multiple of 32, so the sampled pfns are never free: nothing compacts. This
    # is why the anchor keeps another page of the 4 (bench/anchor_gupta.py explains).
    for keep, moved in ((0, False), (1, True)):
        zone = Zone(1 << 16, cpus=2)
        pages = [zone.alloc(0, M, cpu=1) for _ in range(int(0.85 * (1 << 16)))]
        for i, pfn in enumerate(pages):
            if i % 4 != keep:
                zone.free(pfn, 0, cpu=0)
        compactor = Compactor(zone)
        compactor.compact_memory()
        assert (compactor.stats.migrated > 5000) is moved, keep


def test_migration_tells_the_zone_hook_where_each_block_went():
    zone = keep_one_of_four(nr_pages=1 << 13)
    moves = []
    zone.on_migrate = lambda old, new, order: moves.append((old, new, order))
    owners_before = {p: t for p, (_, t) in allocated_blocks(zone).items()}
    compactor = Compactor(zone)
    compactor.compact_memory()
    assert len(moves) == compactor.stats.migrated
    after = allocated_blocks(zone)
    for old, new, order in moves:
        assert after[new] == (order, owners_before[old])


def test_moving_the_tail_to_the_tail_or_the_head_to_the_head_changes_nothing():
    # mm/compaction.c move_freelist_{head,tail} do nothing for list_is_first/last.
    from sim.buddy import Zone

    zone = Zone(4096, pcp=False)
    blocks = zone.free_blocks(10, 1)
    zone.move_freelist_tail(10, 1, blocks[-1])
    zone.move_freelist_head(10, 1, blocks[0])
    assert zone.free_blocks(10, 1) == blocks
    zone.move_freelist_tail(10, 1, blocks[0])
    assert zone.free_blocks(10, 1) == blocks[1:] + blocks[:1]
    zone.check()


# --------------------------------------------------------------------------- large folios


def _large_folio_without_target() -> tuple[Zone, int]:
    """An order-3 movable block in the lower half; the upper half's free memory is only
    order-0 and order-1 holes (3 of 4 pages freed), so no order-3 target exists."""
    zone = Zone(1 << 12, pcp=False)
    big = zone.alloc(3, M, 0, OWNER_MOVABLE, ALLOC_NO_WATERMARKS)
    assert big is not None and big < 1 << 11
    pages = []
    while (pfn := zone.alloc(0, M, 0, OWNER_MOVABLE, ALLOC_NO_WATERMARKS)) is not None:
        pages.append(pfn)
    for pfn in pages:
        if pfn >= 1 << 11 and pfn % 4 != 3:
            zone.free(pfn, 0)
    assert not any(zone.nr_free[3:])
    return zone, big


def test_a_large_folio_without_a_target_is_split_and_moved_not_an_abort():
    """mm/migrate.c migrate_pages_batch: -ENOMEM on a large folio splits it
    (try_split_folio) and the batch goes on; the base pages move after it."""
    zone, big = _large_folio_without_target()
    without = Compactor(zone).compact_memory()
    assert without == R.COMPACT_CONTENDED  # no hook: nothing may be split
    zone, big = _large_folio_without_target()

    def split(pfn: int, order: int) -> bool:
        zone.split_folio(pfn, order)
        return True

    compactor = Compactor(zone, split_folio=split)
    assert compactor.compact_memory() != R.COMPACT_CONTENDED
    assert compactor.stats.folios_split >= 1
    assert all(zone.owner_of(p) != OWNER_MOVABLE or not zone.is_allocated(p)
               for p in range(big, big + 8))
    zone.check()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blocks=st.lists(st.tuples(st.sampled_from(["free", "alloc0", "alloc_big", "unmovable"]),
                              st.booleans()), min_size=4, max_size=24),
    order=st.sampled_from([-1, 0, 1, 3, 9]),
    ignore_block_suitable=st.booleans(),
    ignore_skip_hint=st.booleans(),
    start=st.integers(0, 23),
    low=st.integers(0, 23),
)
def test_the_free_scanners_skip_loop_is_its_two_tests(blocks, order, ignore_block_suitable,
                                                      ignore_skip_hint, start, low):
    """``_next_free_target`` passes over pageblocks in one loop: the first block from
    ``start`` down to ``low`` that ``_suitable_migration_target`` and
    ``_isolation_suitable`` both accept, or the block below ``low``. Pageblocks of every
    kind: free at pageblock order, holding small allocations, a large free block at
    their start, of another migratetype, with the skip bit set or not."""
    zone = Zone(len(blocks) * 512, cpus=1, pcp=False)
    pb = zone.pageblock_nr_pages
    held = [zone.alloc(0, MIGRATE_MOVABLE, alloc_flags=ALLOC_NO_WATERMARKS)
            for _ in range(zone.nr_pages)]  # every page, one at a time
    assert sorted(held) == list(range(zone.nr_pages))
    for b, (kind, _) in enumerate(blocks):
        base = b * pb
        if kind == "free":
            for pfn in range(base, base + pb):
                zone.free(pfn, 0)
        elif kind == "alloc_big":  # a free order-3 block at its start, the rest held
            for pfn in range(base, base + 8):
                zone.free(pfn, 0)
        elif kind == "unmovable":
            zone.set_pageblock_migratetype(base, MIGRATE_UNMOVABLE)
    compactor = Compactor(zone)
    for b, (_, skip) in enumerate(blocks):
        if skip:
            zone.set_pageblock_skip(b * pb)
    cc = CompactControl(order=order, ignore_block_suitable=ignore_block_suitable,
                        ignore_skip_hint=ignore_skip_hint)
    start_pfn, low_pfn = start % len(blocks) * pb, low % len(blocks) * pb
    want = start_pfn
    while want >= low_pfn and not (compactor._suitable_migration_target(cc, want)
                                   and compactor._isolation_suitable(cc, want)):
        want -= pb
    assert compactor._next_free_target(cc, start_pfn, low_pfn) == want
