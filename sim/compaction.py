"""Memory compaction of one zone, following Linux 6.18 mm/compaction.c.

Kernel functions followed (6.18.15 mm/compaction.c; mm/page_alloc.c and mm/migrate.c of the
same era for the parts they own):

- ``compact_zone`` with ``compact_finished``/``__compact_finished``, the migrate scanner
  (``isolate_migratepages``, ``fast_find_migrateblock``, ``isolate_migratepages_block``,
  ``suitable_migration_source``, ``skip_isolation_on_order``) and the free scanner
  (``isolate_freepages``, ``fast_isolate_freepages``, ``fast_isolate_around``,
  ``isolate_freepages_block``, ``suitable_migration_target``), ``compaction_alloc`` (per-order
  isolated lists, larger blocks split with the upper halves put back at the list heads),
  ``release_free_list``, pageblock skip bits (``isolation_suitable``, ``test_and_set_skip``,
  ``update_pageblock_skip``, ``update_cached_migrate``, ``__reset_isolation_suitable``),
  cached scanner positions and ``compact_scanners_met``.
- ``compaction_suit_allocation_order``, ``compaction_suitable`` (watermark + ``compact_gap``,
  the fragmentation-index gate above PAGE_ALLOC_COSTLY_ORDER), ``defer_compaction``,
  ``compaction_deferred``, ``compaction_defer_reset``, ``compaction_restarting``.
- Callers: ``try_to_compact_pages``/``compact_zone_order`` and ``__alloc_pages_direct_compact``
  (mm/page_alloc.c) for direct compaction with ``compaction_capture``; ``kcompactd_do_work``;
  the proactive step of ``kcompactd`` (``should_proactive_compact_node``,
  ``fragmentation_score_*``, ``fragmentation_score_wmark``, ``compact_node(pgdat, true)``);
  ``compact_nodes`` for /proc/sys/vm/compact_memory.
- ``__isolate_free_page`` and the capturing ``__free_one_page`` live in sim/buddy.py's
  compaction-support section, as they do in mm/page_alloc.c, with ``Zone.migrate_page``
  (mm/migrate.c ``migrate_folio_move``/``migrate_folio_done``), which calls
  ``zone.on_migrate(old, new, order)`` so that whoever tracks a page by pfn follows it.

Where the kernel and ../shared/DESIGN.md differ, this follows the kernel:

- **Freed source pages.** DESIGN says they go to the free-list tail. In 6.18 a migrated
  source is released by ``migrate_folio_done`` -> ``folio_put`` -> ``free_frozen_pages``:
  onto the running CPU's per-CPU list, merged only when that list overflows ``high``
  (``free_pcppages_bulk``, where ``buddy_merge_likely`` picks head or tail) or is drained.
  FPI_TO_TAIL is used by ``__putback_isolated_page`` (page isolation), not by compaction.
- **Per-CPU lists are not drained first.** ``compact_nodes`` and ``compact_zone`` call
  ``lru_add_drain[_all]``, which empties the LRU add caches, not the per-CPU page lists.
  The page lists are drained by direct compaction only when the migrate scanner leaves a
  ``cc->order``-aligned block it migrated from (``lru_add_drain_cpu_zone`` ->
  ``drain_local_pages``), and by kcompactd after a compaction that did not succeed
  (``drain_all_pages``). Manual compaction drains nothing: the last sources it frees stay
  on the per-CPU list, and their buddies stay unmerged. The real anchor shows exactly that.
- **Proactive watermarks.** 6.18 ``fragmentation_score_wmark`` has
  ``wmark_low = 100 - proactiveness`` (no ``max(.., 5)``) and a leeway of
  ``min(10, wmark_low / 2)``, not DESIGN's fixed +10.
- **Skip bits are reset** only by ``__reset_isolation_suitable``: when a deferred compaction
  restarts (``compaction_restarting``), or by kswapd going to sleep
  (``reset_isolation_suitable``, exposed for the engine), and only after a direct
  compaction's scanners met (``compact_blockskip_flush``). Manual and proactive compaction
  ignore the bits but still set them.
- **"Never isolate a free block of order >= the target order".** The kernel checks that only
  for a pageblock's first page (``suitable_migration_target``); ``isolate_freepages_block``
  then takes every free block in the pageblock. A free block of pageblock order or more
  always starts a pageblock, so full compaction never isolates one.

Departures of the model, and why:

- One zone (pfn 0..N-1) stands for the node: ``fragmentation_score_node`` weighs it against
  itself. ``COMPACTION_HPAGE_ORDER`` is the zone's pageblock order (HPAGE_PMD_ORDER = 9 on
  x86-64). ``kswapd_is_running`` is a callback the engine sets.
- Every allocated MOVABLE-owner block is an LRU folio that migrates without fail: no dirty
  or writeback pages, no mappings needing __GFP_FS, no unevictable pages, no
  ``too_many_isolated`` throttling, no lock contention or signals (so never
  COMPACT_CONTENDED except for the kernel's -ENOMEM case). A PINNED owner fails isolation as
  the kernel's "pinned anonymous page" check does. UNMOVABLE, RECLAIMABLE and free pages on a
  per-CPU list are not LRU pages and fail isolation. Every allocated block of order > 0 is a
  compound page. Isolation leaves a folio on the file LRU (the kernel's takes it off), so
  kswapd, reclaiming beside a direct compaction between a batch's isolation and its
  migration, may free a source: ``_migrate_pages`` skips it, as ``migrate_folio_unmap``
  does a folio "freed from under us". A page-cache folio allocated and not yet in its
  file is PINNED (sim/page_alloc.py ``FolioAlloc``): it does not move.
- Slab pages (owner OWNER_SLAB + id) stand where the kernel has ``page_has_movable_ops``:
  with ``slab_movable`` on and both hooks set, a slab page whose cache is mobile
  (``slab_page_mobile(pfn)``) is handed to ``vacate_slab_page(pfn)``, which moves or frees
  its objects and frees the page itself; no migration target is taken for it. Otherwise a
  slab page fails isolation. Its cost belongs to the defragmenter.
- The migration batch is ``migrate_pages_batch``: targets are taken for every isolated page
  first (in ``cc->migratepages`` order, the last isolated first), then the pages move. A
  large folio that finds no target is split into base pages (``try_split_folio``) and the
  batch goes on; the pieces move after it, one pass, and their failure is not an error
  (mm/migrate.c ``migrate_pages``). The engine decides which blocks may be split
  (``split_folio``: the machine's own movable memory, e.g. a snapshot's, not a folio a
  page owner tracks by its head); without the hook nothing is split. A page that cannot
  be split and finds no target (-ENOMEM) ends the batch; the rest are put back.
- No CMA, ``defrag_mode`` off, no hugetlb, no ``alloc_contig``. Highatomic pageblocks
  (sim/buddy.py) get nothing of their own here, as in the kernel: not MOVABLE, they are
  migration targets only at COMPACT_PRIO_SYNC_FULL (``ignore_block_suitable``), never
  async direct compaction's sources, and a capture may take a page freed into one.
- Time: compaction is instantaneous in the allocator; the simulated seconds it would take
  are charged from ``CompactionSection``'s costs (sim/config.py) per page scanned, isolated
  and migrated and reported per run (``last_run.time_s``) and in total (``stats.time_s``),
  for the engine to spend. A direct compaction hands its time so far to the engine's
  ``concurrent`` hook before each ``compact_finished`` and before each batch's
  ``migrate_pages`` (sim/machine.py: kswapd reclaiming on another CPU meanwhile), with
  its capture control removed for the call: the kernel's ``current->capture_control``
  catches only the compacting task's own frees. The call before ``migrate_pages``
  matters: a kswapd woken before the compaction has begun ``balance_pgdat`` by the
  time the first batch's isolation is done, and its ZONE_RECLAIM_ACTIVE caps
  ``pcp->high`` (``nr_pcp_high``), so the batch's freed sources overflow the per-CPU
  list into the buddy (``free_pcppages_bulk``), where a merged block is captured
  (``compaction_capture``). Without it the first batch was freed under the uncapped
  ``pcp->high`` and a capture waited for the second batch: the traced file server's
  successful compactions migrated a median 32 pages where the twin's migrated 489
  (configs/real/fileserver-c/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, Final

from librt.vecs import append as vec_append
from librt.vecs import vec
from mypy_extensions import i32, i64

from sim.buddy import (
    ALLOC_WMARK_MASK,
    ALLOC_WMARK_MIN,
    DEFAULT_OWNER,
    OWNER_MOVABLE,
    OWNER_PINNED,
    OWNER_SLAB,
    PAGE_ALLOC_COSTLY_ORDER,
    PG_ALLOC,
    PG_BUDDY,
    PG_KIND,
    PG_ORDER,
    PG_TAIL,
    PfnList,
    Zone,
)
from sim.config import CompactionSection
from sim.metrics import fragmentation_index, fragmentation_score_node, fragmentation_score_zone
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIGRATE_UNMOVABLE

COMPACT_CLUSTER_MAX: Final = 32  # SWAP_CLUSTER_MAX: pages isolated per migration batch
COMPACT_MAX_DEFER_SHIFT: Final = 6  # skip at most 1 << 6 = 64 compaction attempts
HPAGE_FRAG_CHECK_INTERVAL_S: Final = 0.5  # kcompactd's proactive check period (500 ms)

# -ENOMEM from migrate_pages: compaction_alloc found no target.
ENOMEM: Final = -12

# cc->fast_start_pfn: 0 in the kernel means "not set", ULONG_MAX "do not use". pfn 0 is a
# real pfn here, so "not set" is -1.
_FAST_START_UNSET: Final = -1
_FAST_START_OFF: Final = 1 << 62

# Who asks for direct compaction. Only "default" may compact: SLUB's first high-order
# attempt strips __GFP_RECLAIM (and adds __GFP_NORETRY), and GFP_TRANSHUGE_LIGHT (THP faults
# in the default "madvise" defrag mode) has no __GFP_DIRECT_RECLAIM, so the kernel's slow
# path never reaches __alloc_pages_direct_compact for them.
DIRECT_COMPACT_CALLERS = ("default", "slub_first_attempt", "transhuge_light")


class CompactResult(IntEnum):
    """``enum compact_result``, in the kernel's order (callers take the max)."""

    COMPACT_NOT_SUITABLE_ZONE = 0
    COMPACT_SKIPPED = 1
    COMPACT_DEFERRED = 2
    COMPACT_NO_SUITABLE_PAGE = 3
    COMPACT_CONTINUE = 4
    COMPACT_COMPLETE = 5
    COMPACT_PARTIAL_SKIPPED = 6
    COMPACT_CONTENDED = 7
    COMPACT_SUCCESS = 8


class CompactPriority(IntEnum):
    """``enum compact_priority``: lower is harder."""

    COMPACT_PRIO_SYNC_FULL = 0  # MIN_COMPACT_PRIORITY
    COMPACT_PRIO_SYNC_LIGHT = 1  # MIN_COMPACT_COSTLY_PRIORITY, DEF_COMPACT_PRIORITY
    COMPACT_PRIO_ASYNC = 2  # INIT_COMPACT_PRIORITY


class MigrateMode(IntEnum):
    """``enum migrate_mode``"""

    MIGRATE_ASYNC = 0
    MIGRATE_SYNC_LIGHT = 1
    MIGRATE_SYNC = 2


PRIORITIES = {
    "sync_full": CompactPriority.COMPACT_PRIO_SYNC_FULL,
    "sync_light": CompactPriority.COMPACT_PRIO_SYNC_LIGHT,
    "async": CompactPriority.COMPACT_PRIO_ASYNC,
}

# kcompactd, compact_node and compact_memory compact with GFP_KERNEL, and compact_zone sets
# cc->migratetype = gfp_migratetype(GFP_KERNEL): kcompactd's compact_finished therefore asks
# for an UNMOVABLE block, or a fallback an UNMOVABLE request would claim.
_GFP_KERNEL_MIGRATETYPE: Final = MIGRATE_UNMOVABLE
_ASYNC: Final = MigrateMode.MIGRATE_ASYNC
_SYNC_LIGHT: Final = MigrateMode.MIGRATE_SYNC_LIGHT
_SYNC: Final = MigrateMode.MIGRATE_SYNC
# The results this module returns or compares, by static names: compiled,
# ``CompactResult.X`` through a module global is a look-up in the module's dict and
# another through the enum's metaclass at each use.
_SKIPPED: Final = CompactResult.COMPACT_SKIPPED
_DEFERRED: Final = CompactResult.COMPACT_DEFERRED
_CONTINUE: Final = CompactResult.COMPACT_CONTINUE
_COMPLETE: Final = CompactResult.COMPACT_COMPLETE
_PARTIAL_SKIPPED: Final = CompactResult.COMPACT_PARTIAL_SKIPPED
_CONTENDED: Final = CompactResult.COMPACT_CONTENDED
_SUCCESS: Final = CompactResult.COMPACT_SUCCESS


def compact_gap(order: int) -> int:
    """mm/internal.h ``compact_gap``: free pages compaction needs beyond the watermark."""
    return 2 << order


@dataclass
class CompactionStats:
    """Counters, named after /proc/vmstat's compact_* and pgmigrate_* where it has one."""

    runs: int = 0  # compact_zone calls that started scanning
    stalls: int = 0  # compact_stall: direct compactions that ran or were deferred
    successes: int = 0  # compact_success: direct compaction, then the allocation succeeded
    failures: int = 0  # compact_fail: direct compaction, and the allocation still failed
    deferred: int = 0  # direct or kcompactd requests skipped by compaction_deferred
    defer_calls: int = 0  # defer_compaction() calls (the backoff growing)
    skipped: int = 0  # COMPACT_SKIPPED: watermark, fragindex gate or a caller that may not
    migrate_scanned: int = 0  # compact_migrate_scanned
    free_scanned: int = 0  # compact_free_scanned
    isolated: int = 0  # compact_isolated: pages isolated by either scanner
    migrated: int = 0  # pgmigrate_success
    migrate_failed: int = 0  # pgmigrate_fail
    folios_split: int = 0  # large folios split after finding no target (nr_split)
    slab_pages_vacated: int = 0  # slab pages emptied through the defragmenter's hook
    kcompactd_wakes: int = 0  # kcompactd_wake
    proactive_runs: int = 0  # proactive compact_node() passes
    time_s: float = 0.0  # simulated compaction time, from CompactionSection's costs

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class CompactRun:
    """What one compact_zone() did: its result and its share of the counters."""

    result: CompactResult
    order: int
    mode: MigrateMode
    migrate_scanned: int = 0
    free_scanned: int = 0
    isolated: int = 0
    migrated: int = 0
    migrate_failed: int = 0
    slab_pages_vacated: int = 0
    time_s: float = 0.0


@dataclass
class CaptureControl:
    """``struct capture_control``: the block a direct compaction caught while it was freed.

    ``owner`` is the owner tag the captured block gets (the allocation it is for).
    """

    order: int
    migratetype: int
    owner: int
    page: int | None = None


@dataclass
class ProactiveStep:
    """One wake-up of kcompactd's proactive loop."""

    ran: bool
    score_before: int
    score_after: int
    next_check_s: float  # 0.5 s, or 32 s (<< COMPACT_MAX_DEFER_SHIFT) if the score did not fall
    result: CompactResult | None = None


@dataclass
class CompactControl:
    """``struct compact_control``"""

    order: int
    migratetype: int = MIGRATE_MOVABLE
    mode: MigrateMode = _ASYNC
    alloc_flags: int = ALLOC_WMARK_MIN
    direct_compaction: bool = False
    whole_zone: bool = False
    ignore_skip_hint: bool = False
    ignore_block_suitable: bool = False
    proactive_compaction: bool = False
    cpu: int = 0  # the CPU compaction runs on: where migrated sources are freed
    gfp_fs: bool = True  # cc->gfp_mask has __GFP_FS; without it only anon folios migrate
    # cc->highest_zoneidx: the request's classzone, whose lowmem_reserve the watermark
    # checks keep (-1: this zone's own, no reserve).
    highest_zoneidx: int = -1
    search_order: int = 0
    migrate_pfn: int = 0
    free_pfn: int = 0
    fast_start_pfn: int = _FAST_START_UNSET
    fast_search_fail: int = 0
    finish_pageblock: bool = False
    nr_freepages: int = 0
    nr_migratepages: int = 0
    freepages: list[PfnList] = field(default_factory=list)  # per order, isolated blocks
    migratepages: list[int] = field(default_factory=list)  # isolated sources, oldest first
    total_migrate_scanned: int = 0
    total_free_scanned: int = 0
    slab_vacated: int = 0


@dataclass
class ZoneCompactState:
    """The compaction fields of ``struct zone``."""

    cached_migrate_pfn: list[int]  # compact_cached_migrate_pfn[ASYNC, SYNC]
    cached_free_pfn: int
    # compact_init_*: set by __reset_isolation_suitable. The kernel's boot value 0 lies
    # below a Normal zone's start; -1 plays that part here.
    init_migrate_pfn: int = -1
    init_free_pfn: int = 0
    considered: int = 0  # compact_considered
    defer_shift: int = 0  # compact_defer_shift
    order_failed: int = 0  # compact_order_failed
    blockskip_flush: bool = False  # compact_blockskip_flush


def _validate_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}: expected an integer from {low} to {high}, got {value!r}")
    return value


class PagePredicate:
    """A yes-or-no question compaction asks of a page by its zone pfn, with the engine's
    answer: ``PagePredicate(fn)`` asks ``fn(pfn)``. The migrate scanner asks
    ``is_file_folio`` of every movable page it passes, so the engine's answer there is a
    compiled subclass (sim/vmscan.py ``FileFolios``) whose ``holds`` the compiled
    scanner calls with a C integer: no int object and no Python frame per page."""

    def __init__(self, fn: Callable[[int], bool] | None = None) -> None:
        self.fn = fn

    def holds(self, pfn: int) -> bool:
        fn = self.fn
        return fn is not None and bool(fn(pfn))


class PageOwner:
    """An owner of allocated movable pages that compaction's moves are told of in
    compiled code (sim/vmscan.py ``MigrateOwners``): ``migrate_page(old, new, order)``
    is True when the block at node pfn ``old`` was its own, and it now has it at
    ``new``. A workload's anonymous memory is one (workloads/pageset.py
    ``AnonPages``); compaction moves one of its pages at a time, so a call of an
    interpreted callable each time cost more than the move's own bookkeeping."""

    def migrate_page(self, old: int, new: int, order: int) -> bool:
        raise NotImplementedError


class Compactor:
    """Compaction of one zone: the per-zone state, the counters, and the entry points.

    - ``alloc_pages_direct_compact`` / ``try_to_compact_pages``: direct compaction for a
      failed allocation of ``(order, migratetype)`` (the engine's slow path);
    - ``proactive_compact`` / ``should_proactive_compact``: kcompactd's periodic step;
    - ``kcompactd_do_work``: kcompactd woken by kswapd for an order;
    - ``compact_memory``: ``echo 1 > /proc/sys/vm/compact_memory``.
    """

    def __init__(
        self,
        zone: Zone,
        cfg: CompactionSection | None = None,
        *,
        slab_movable: bool = False,
        slab_page_mobile: Callable[[int], bool] | None = None,
        vacate_slab_page: Callable[[int], bool] | None = None,
        kswapd_is_running: Callable[[], bool] | None = None,
        split_folio: Callable[[int, int], bool] | None = None,
        is_file_folio: PagePredicate | Callable[[int], bool] | None = None,
    ) -> None:
        self.zone = zone
        # The sysctls and costs: config's section, the one definition of each.
        self.cfg = cfg = cfg if cfg is not None else CompactionSection.model_validate({})
        self.proactiveness = cfg.proactiveness
        self.extfrag_threshold = cfg.extfrag_threshold
        self.slab_movable = slab_movable
        # The defragmenter's hooks (sim/defrag.py sets them): is this slab page's cache
        # mobile, and empty this slab page now (True when the page was freed).
        self.slab_page_mobile = slab_page_mobile
        self.vacate_slab_page = vacate_slab_page
        self.kswapd_is_running = kswapd_is_running or (lambda: False)
        # The engine's hook for a large folio that found no target (sim/machine.py):
        # split the block at this zone pfn of this order into order-0 pages (True), or
        # refuse (a folio whose owner keeps it whole). None: never split.
        self.split_folio = split_folio
        # The engine's hook: does the folio at this zone pfn have a mapping (page cache)?
        # A direct compaction without __GFP_FS leaves those (isolate_migratepages_block).
        # None: every movable folio is anonymous. A callable is asked through a
        # PagePredicate.
        self.is_file_folio: PagePredicate | None = (
            is_file_folio if is_file_folio is None or isinstance(is_file_folio, PagePredicate)
            else PagePredicate(is_file_folio))
        # The engine's hook for what runs on other CPUs while a direct compaction takes
        # its time (sim/machine.py: an awake kswapd's reclaim), called with the
        # simulated seconds this compaction has taken so far. None: nothing overlaps.
        self.concurrent: Callable[[float], None] | None = None
        self.stats = CompactionStats()
        self.last_run: CompactRun | None = None
        self.state = ZoneCompactState(cached_migrate_pfn=[0, 0], cached_free_pfn=0)
        self._reset_cached_positions()
        self._state, self._owner = zone.page_state_arrays()
        # The pageblocks' skip hints and migratetypes, read (and the hints written) in
        # place: the scanners test them once per pageblock, millions of times a run.
        self._skip = zone.pageblock_skip_bits()
        self._pageblock_mt = zone.pageblock_migratetypes()
        self._pb = zone.pageblock_nr_pages
        self._pb_order = zone.pageblock_order
        self._max_order = zone.max_order
        self._end_pfn = zone.nr_pages

    # ------------------------------------------------------------------ validation

    def _check_order(self, order: int, low: int = 1) -> int:
        return _validate_int("compaction order", order, low, self.zone.max_order)

    def _check_cpu(self, cpu: int) -> int:
        return _validate_int("cpu", cpu, 0, self.zone.cpus - 1)

    @staticmethod
    def _check_migratetype(migratetype: int) -> int:
        return _validate_int("migratetype", migratetype, 0, MIGRATE_PCPTYPES - 1)

    @staticmethod
    def _priority(prio: str | CompactPriority) -> CompactPriority:
        if isinstance(prio, CompactPriority):
            return prio
        if prio not in PRIORITIES:
            raise ValueError(
                f"compaction priority: expected one of {', '.join(PRIORITIES)}, got {prio!r}"
            )
        return PRIORITIES[prio]

    # ------------------------------------------------------------------ deferral

    def defer_compaction(self, order: int) -> None:
        """``defer_compaction``: skip the next 1 << defer_shift attempts at >= order."""
        st = self.state
        st.considered = 0
        st.defer_shift = min(st.defer_shift + 1, COMPACT_MAX_DEFER_SHIFT)
        if order < st.order_failed:
            st.order_failed = order
        self.stats.defer_calls += 1

    def compaction_deferred(self, order: int) -> bool:
        """``compaction_deferred``: True if this attempt should be skipped."""
        st = self.state
        if order < st.order_failed:
            return False
        defer_limit = 1 << st.defer_shift
        st.considered += 1
        if st.considered >= defer_limit:
            st.considered = defer_limit
            return False
        return True

    def compaction_defer_reset(self, order: int, alloc_success: bool) -> None:
        """``compaction_defer_reset``: after a success (expected or real) at ``order``."""
        st = self.state
        if alloc_success:
            st.considered = 0
            st.defer_shift = 0
        if order >= st.order_failed:
            st.order_failed = order + 1

    def compaction_restarting(self, order: int) -> bool:
        """``compaction_restarting``: retrying after the maximum number of deferrals."""
        st = self.state
        if order < st.order_failed:
            return False
        return (
            st.defer_shift == COMPACT_MAX_DEFER_SHIFT
            and st.considered >= 1 << st.defer_shift
        )

    # ------------------------------------------------------------------ suitability

    def compaction_suitable(self, order: int, watermark: int,
                            highest_zoneidx: int = -1) -> bool:
        """``compaction_suitable``: enough free pages to migrate into, and (for costly
        orders) a failure that the fragmentation index blames on fragmentation. The
        watermark keeps ``lowmem_reserve[highest_zoneidx]`` (``__compaction_suitable``
        passes the classzone to ``__zone_watermark_ok``)."""
        zone = self.zone
        mark = watermark + compact_gap(order)
        if order > PAGE_ALLOC_COSTLY_ORDER:
            mark += zone.low_wmark - zone.min_wmark
        if not zone.zone_watermark_ok(0, mark, 0, highest_zoneidx):
            return False
        if order > PAGE_ALLOC_COSTLY_ORDER:
            # 0..extfrag_threshold: failure due to lack of memory; -1000: the order is
            # free already (a watermark failed), so compaction may still help.
            fragindex = fragmentation_index(zone.nr_free, order)
            if 0 <= fragindex <= self.extfrag_threshold:
                return False
        return True

    def compaction_suit_allocation_order(
        self, order: int, alloc_flags: int, is_async: bool, highest_zoneidx: int = -1
    ) -> CompactResult:
        """``compaction_suit_allocation_order``: SUCCESS if the allocation would succeed
        now, SKIPPED if compaction is unlikely to help, else CONTINUE. Every watermark
        check keeps the zone's ``lowmem_reserve[highest_zoneidx]``: a lower zone asked
        on behalf of a higher classzone must keep its reserve, as the allocation that
        follows must (-1: this zone's own classzone, no reserve)."""
        zone = self.zone
        watermark = zone.wmark_pages(alloc_flags & ALLOC_WMARK_MASK)
        if zone.zone_watermark_ok(order, watermark, alloc_flags, highest_zoneidx):
            return _SUCCESS
        # Without CONFIG_CMA ALLOC_CMA is 0, so this costly async check always applies.
        if order > PAGE_ALLOC_COSTLY_ORDER and is_async and not zone.zone_watermark_ok(
            0, watermark + compact_gap(order), 0, highest_zoneidx
        ):
            return _SKIPPED
        if not self.compaction_suitable(order, watermark, highest_zoneidx):
            return _SKIPPED
        return _CONTINUE

    # ------------------------------------------------------------------ proactive scoring

    def fragmentation_score_zone(self) -> int:
        return fragmentation_score_zone(self.zone.nr_free, self.zone.pageblock_order)

    def fragmentation_score_node(self) -> int:
        zone = self.zone
        return fragmentation_score_node([(zone.nr_pages, zone.nr_free)], zone.pageblock_order)

    def fragmentation_score_wmark(self, low: bool) -> int:
        """6.18 ``fragmentation_score_wmark``: low = 100 - proactiveness, high adds
        min(10, low / 2)."""
        wmark_low = 100 - self.proactiveness
        if low:
            return wmark_low
        return min(wmark_low + min(10, wmark_low // 2), 100)

    def should_proactive_compact(self) -> bool:
        """``should_proactive_compact_node``"""
        if not self.proactiveness or self.kswapd_is_running():
            return False
        return self.fragmentation_score_node() > self.fragmentation_score_wmark(False)

    # ------------------------------------------------------------------ entry points

    def try_to_compact_pages(
        self,
        order: int,
        migratetype: int = MIGRATE_MOVABLE,
        *,
        prio: str | CompactPriority = "async",
        alloc_flags: int = ALLOC_WMARK_MIN,
        caller: str = "default",
        cpu: int = 0,
        owner: int | None = None,
        gfp_fs: bool = True,
        highest_zoneidx: int = -1,
    ) -> tuple[CompactResult, int | None]:
        """``try_to_compact_pages`` for this zone: (result, captured pfn or None).
        ``highest_zoneidx``: the request's classzone (``ac->highest_zoneidx``), whose
        lowmem reserve the watermark checks keep (-1: this zone's own).

        ``caller`` is "default", or "slub_first_attempt" / "transhuge_light", which may not
        compact (COMPACT_SKIPPED at once). A captured block is allocated to ``owner``
        (default: the migratetype's owner).
        """
        self._check_order(order)
        self._check_migratetype(migratetype)
        self._check_cpu(cpu)
        priority = self._priority(prio)
        if caller not in DIRECT_COMPACT_CALLERS:
            raise ValueError(
                f"direct compaction caller: expected one of {', '.join(DIRECT_COMPACT_CALLERS)}"
                f", got {caller!r}"
            )
        if caller != "default":
            self.stats.skipped += 1
            return _SKIPPED, None
        if owner is None:
            owner = DEFAULT_OWNER[migratetype]
        rc = _SKIPPED
        if priority > CompactPriority.COMPACT_PRIO_SYNC_FULL and self.compaction_deferred(order):
            self.stats.deferred += 1
            return max(_DEFERRED, rc), None
        status, captured = self._compact_zone_order(
            order, migratetype, priority, alloc_flags, cpu, owner, gfp_fs, highest_zoneidx
        )
        rc = max(status, rc)
        if status == _SUCCESS:
            # Expected to succeed, not certain: the allocation resets with True.
            self.compaction_defer_reset(order, False)
        elif priority != CompactPriority.COMPACT_PRIO_ASYNC and status in (
            _COMPLETE,
            _PARTIAL_SKIPPED,
        ):
            self.defer_compaction(order)
        return rc, captured

    def alloc_pages_direct_compact(
        self,
        order: int,
        migratetype: int = MIGRATE_MOVABLE,
        *,
        prio: str | CompactPriority = "async",
        alloc_flags: int = ALLOC_WMARK_MIN,
        caller: str = "default",
        cpu: int = 0,
        owner: int | None = None,
        gfp_fs: bool = True,
    ) -> tuple[CompactResult, int | None]:
        """``__alloc_pages_direct_compact``: compact, then take the captured block or try
        the free lists once (``get_page_from_freelist`` with ``alloc_flags``).

        Returns (result, pfn of the allocated block or None). Counts compact_stall,
        compact_success and compact_fail as the kernel does.
        """
        result, page = self.try_to_compact_pages(
            order, migratetype, prio=prio, alloc_flags=alloc_flags, caller=caller, cpu=cpu,
            owner=owner, gfp_fs=gfp_fs,
        )
        if result == _SKIPPED:
            return result, None
        self.stats.stalls += 1
        if page is None:
            page = self.zone.alloc(order, migratetype, cpu, owner, alloc_flags)
        self.direct_compact_done(order, page is not None)
        return result, page

    def direct_compact_done(self, order: int, got_page: bool,
                            counted_by: Compactor | None = None) -> None:
        """The end of ``__alloc_pages_direct_compact``: a page came from this zone
        (``compaction_defer_reset(zone, order, true)``, the skip bits kept) and
        compact_success counted, or compact_fail; the counts go to ``counted_by``'s
        stats (a zonelist's preferred zone; this zone by default)."""
        stats = (counted_by or self).stats
        if got_page:
            self.state.blockskip_flush = False
            self.compaction_defer_reset(order, True)
            stats.successes += 1
        else:
            stats.failures += 1

    def compact_memory(self, cpu: int = 0) -> CompactResult:
        """``echo 1 > /proc/sys/vm/compact_memory``: ``compact_node(pgdat, false)``.

        Order -1, MIGRATE_SYNC, the whole zone, skip hints ignored; it runs until the
        scanners meet. ``cpu`` is the CPU of the writing task.
        """
        self._check_cpu(cpu)
        # compact_nodes: lru_add_drain_all() empties the LRU add caches (not modelled).
        cc = CompactControl(
            order=-1, migratetype=_GFP_KERNEL_MIGRATETYPE, mode=_SYNC, ignore_skip_hint=True,
            whole_zone=True, cpu=cpu, alloc_flags=ALLOC_WMARK_MIN,
        )
        return self._compact_zone(cc)

    def proactive_compact(self, cpu: int = 0) -> ProactiveStep:
        """One timeout of kcompactd's loop: compact if the score is above wmark_high.

        ``compact_node(pgdat, true)``: order -1, MIGRATE_SYNC_LIGHT, skip hints ignored,
        stopping when the zone's score is at most wmark_low. The next check is in 0.5 s,
        or 0.5 s << COMPACT_MAX_DEFER_SHIFT when the node's score did not fall.
        """
        self._check_cpu(cpu)
        score = self.fragmentation_score_node()
        if not self.should_proactive_compact():
            return ProactiveStep(False, score, score, HPAGE_FRAG_CHECK_INTERVAL_S)
        self.stats.proactive_runs += 1
        result = self.compact_zone_proactive(cpu)
        after = self.fragmentation_score_node()
        timeout = HPAGE_FRAG_CHECK_INTERVAL_S
        if after >= score:
            timeout *= 1 << COMPACT_MAX_DEFER_SHIFT
        return ProactiveStep(True, score, after, timeout, result)

    def compact_zone_proactive(self, cpu: int = 0) -> CompactResult:
        """``compact_node(pgdat, true)``'s compaction of this zone: order -1,
        MIGRATE_SYNC_LIGHT, skip hints ignored, until the zone's score is at most
        wmark_low (``__compact_finished``)."""
        cc = CompactControl(
            order=-1, migratetype=_GFP_KERNEL_MIGRATETYPE, mode=_SYNC_LIGHT,
            ignore_skip_hint=True, whole_zone=True, proactive_compaction=True, cpu=cpu,
            alloc_flags=ALLOC_WMARK_MIN,
        )
        return self._compact_zone(cc)

    def kcompactd_node_suitable(self, order: int, highest_zoneidx: int = -1) -> bool:
        """``kcompactd_node_suitable``: ``wakeup_kcompactd`` wakes kcompactd only when
        compaction for ``order`` would go ahead on the zone:
        ``compaction_suit_allocation_order(zone, pgdat->kcompactd_max_order,
        highest_zoneidx, ALLOC_WMARK_MIN, false, true) == COMPACT_CONTINUE``, with the
        node's ``kcompactd_highest_zoneidx`` as the classzone."""
        return (self.compaction_suit_allocation_order(order, ALLOC_WMARK_MIN, False,
                                                      highest_zoneidx)
                == _CONTINUE)

    def kcompactd_do_work(self, order: int, cpu: int = 0) -> CompactResult:
        """``kcompactd_do_work`` after ``wakeup_kcompactd(order)`` (kswapd, boosts)."""
        self._check_order(order)
        self._check_cpu(cpu)
        self.stats.kcompactd_wakes += 1
        if self.compaction_deferred(order):
            self.stats.deferred += 1
            return _DEFERRED
        ret = self.compaction_suit_allocation_order(order, ALLOC_WMARK_MIN, False)
        if ret != _CONTINUE:
            if ret == _SKIPPED:
                self.stats.skipped += 1
            return ret
        cc = CompactControl(
            order=order, search_order=order, migratetype=_GFP_KERNEL_MIGRATETYPE,
            mode=_SYNC_LIGHT, alloc_flags=ALLOC_WMARK_MIN, cpu=cpu,
        )
        status = self._compact_zone(cc)
        if status == _SUCCESS:
            self.compaction_defer_reset(order, False)
        elif status in (_PARTIAL_SKIPPED, _COMPLETE):
            # Buddy pages may be stranded on the per-CPU lists; the deferral below
            # rate-limits this.
            self.zone.drain_all_pages()
            self.defer_compaction(order)
        return status

    def report(self) -> dict[str, float]:
        """The compaction counters, for a run's summary (``compaction``)."""
        return self.stats.as_dict()

    def reset_isolation_suitable(self) -> None:
        """``__reset_isolation_suitable``: clear stale skip bits (kswapd calls it before
        sleeping), if a direct compaction's scanners met since the last reset."""
        st = self.state
        if not st.blockskip_flush:
            return
        st.blockskip_flush = False
        pb = self._pb
        migrate_pfn = 0
        free_pfn = self._end_pfn - 1
        reset_migrate = free_pfn
        reset_free = migrate_pfn
        source_set = free_set = False
        while migrate_pfn < free_pfn:
            if self._reset_isolation_pfn(migrate_pfn, True, source_set) and (
                migrate_pfn < reset_migrate
            ):
                source_set = True
                reset_migrate = migrate_pfn
                st.init_migrate_pfn = reset_migrate
                st.cached_migrate_pfn = [reset_migrate, reset_migrate]
            if self._reset_isolation_pfn(free_pfn, free_set, True) and free_pfn > reset_free:
                free_set = True
                reset_free = free_pfn
                st.init_free_pfn = reset_free
                st.cached_free_pfn = reset_free
            migrate_pfn += pb
            free_pfn -= pb
        if reset_migrate >= reset_free:
            # No suitable block was reset: leave no distance between the scanners.
            st.cached_migrate_pfn = [migrate_pfn, migrate_pfn]
            st.cached_free_pfn = free_pfn

    # ------------------------------------------------------------------ helpers

    def _pageblock_start(self, pfn: int) -> int:
        return pfn & ~(self._pb - 1)

    def _pageblock_end(self, pfn: int) -> int:
        return (pfn | (self._pb - 1)) + 1

    def _head_of(self, pfn: i64) -> i64:
        """The head pfn of the block containing ``pfn`` (``compound_head``)."""
        # i64 (mypy_extensions): compiled, C integer arithmetic (plain ints interpreted).
        state = self._state
        top: i64 = self._max_order
        order: i64 = 0
        while order <= top:
            head = pfn & ~((1 << order) - 1)
            st: i64 = int(state[head])
            if st & PG_KIND != PG_TAIL:
                return head if head + (1 << (st & PG_ORDER)) > pfn else pfn
            order += 1
        return pfn

    def _pageblock_skip_persistent(self, pfn: i64) -> bool:
        """A compound page of pageblock order or more covers this pfn: always skip."""
        st: i64 = int(self._state[self._head_of(pfn)])
        return st & PG_KIND == PG_ALLOC and (st & PG_ORDER) >= self._pb_order

    def _reset_isolation_pfn(self, pfn: int, check_source: bool, check_target: bool) -> bool:
        """``__reset_isolation_pfn``: clear the skip bit if a sample of the block (every
        8th page) holds an LRU page (source) or a free page (target)."""
        if self._pageblock_skip_persistent(pfn):
            return False
        block = pfn >> self._pb_order
        if check_source and check_target and not self._skip[block]:
            return True
        if not check_source and check_target and (
            int(self._pageblock_mt[block]) != MIGRATE_MOVABLE
        ):
            return False
        # i64: C integer arithmetic when compiled (every pageblock of the zone, 64 pages
        # of each, at each reset).
        page: i64 = self._pageblock_start(pfn)
        end_pfn: i64 = min(self._pageblock_end(pfn) - 1, self._end_pfn - 1)
        state, owner = self._state, self._owner
        top: i64 = self._max_order
        while page <= end_pfn:
            st: i64 = int(state[page])
            if check_target and st & PG_KIND == PG_BUDDY:
                self._skip[block] = 0  # clear_pageblock_skip
                return True
            if check_source:
                # _is_lru(page), its compound_head (_head_of) written out: this loop
                # samples 64 pages of every pageblock of the zone at each reset, and a
                # call per sample was most of its cost. The same steps, in order.
                head: i64 = page
                head_st: i64 = st
                if st & PG_KIND == PG_TAIL:
                    o: i64 = 1
                    while o <= top:
                        h: i64 = page & ~((1 << o) - 1)
                        h_st: i64 = int(state[h])
                        if h_st & PG_KIND != PG_TAIL:
                            if h + (1 << (h_st & PG_ORDER)) > page:
                                head = h
                                head_st = h_st
                            break
                        o += 1
                if head_st & PG_KIND == PG_ALLOC:
                    tag: i64 = int(owner[head])
                    if tag in (OWNER_MOVABLE, OWNER_PINNED):
                        self._skip[block] = 0  # clear_pageblock_skip
                        return True
            page += 1 << PAGE_ALLOC_COSTLY_ORDER
        return False

    def _reset_cached_positions(self) -> None:
        st = self.state
        st.cached_migrate_pfn = [0, 0]
        st.cached_free_pfn = (self.zone.nr_pages - 1) & ~(self.zone.pageblock_nr_pages - 1)

    def _isolation_suitable(self, cc: CompactControl, pfn: int) -> bool:
        return cc.ignore_skip_hint or not self._skip[pfn >> self._pb_order]

    def _test_and_set_skip(self, cc: CompactControl, pfn: int) -> bool:
        if cc.ignore_skip_hint:
            return False
        block = pfn >> self._pb_order
        if self._skip[block]:
            return True
        self._skip[block] = 1
        return False

    def _update_cached_migrate(self, cc: CompactControl, pfn: int) -> None:
        st = self.state
        pfn = self._pageblock_end(pfn)
        if pfn > st.cached_migrate_pfn[0]:
            st.cached_migrate_pfn[0] = pfn
        if cc.mode != _ASYNC and pfn > st.cached_migrate_pfn[1]:
            st.cached_migrate_pfn[1] = pfn

    def _update_pageblock_skip(self, pfn: int, cached_pfn: int) -> None:
        self._skip[pfn >> self._pb_order] = 1
        if cached_pfn < self.state.cached_free_pfn:
            self.state.cached_free_pfn = cached_pfn

    def _scanners_met(self, cc: CompactControl) -> bool:
        shift = self.zone.pageblock_order
        return (cc.free_pfn >> shift) <= (cc.migrate_pfn >> shift)

    @staticmethod
    def _skip_isolation_on_order(order: int, target_order: int, pageblock_order: int) -> bool:
        """``skip_isolation_on_order``: folios at or above the target order (unless full
        compaction), and folios of pageblock order or more, are not isolated."""
        if target_order != -1 and order >= target_order:
            return True
        return order >= pageblock_order

    # ------------------------------------------------------------------ compact_zone

    def _compact_zone_order(
        self, order: int, migratetype: int, prio: CompactPriority, alloc_flags: int,
        cpu: int, owner: int, gfp_fs: bool = True, highest_zoneidx: int = -1,
    ) -> tuple[CompactResult, int | None]:
        """``compact_zone_order``: a direct compaction with a capture control installed."""
        full = prio == CompactPriority.COMPACT_PRIO_SYNC_FULL
        cc = CompactControl(
            order=order, search_order=order, migratetype=migratetype,
            mode=_ASYNC if prio == CompactPriority.COMPACT_PRIO_ASYNC else _SYNC_LIGHT,
            alloc_flags=alloc_flags, direct_compaction=True, whole_zone=full,
            ignore_skip_hint=full, ignore_block_suitable=full, cpu=cpu, gfp_fs=gfp_fs,
            highest_zoneidx=highest_zoneidx,
        )
        capc = CaptureControl(order, migratetype, owner)
        self.zone.set_capture_control(capc)
        try:
            ret = self._compact_zone(cc, capc)
        finally:
            self.zone.set_capture_control(None)
        if capc.page is not None:
            ret = _SUCCESS
        return ret, capc.page

    def _compact_zone(
        self, cc: CompactControl, capc: CaptureControl | None = None
    ) -> CompactResult:
        stats = self.stats
        before = (stats.migrate_scanned, stats.free_scanned, stats.isolated, stats.migrated,
                  stats.migrate_failed, stats.slab_pages_vacated)
        ret = self._compact_zone_inner(cc, capc)
        stats.migrate_scanned += cc.total_migrate_scanned
        stats.free_scanned += cc.total_free_scanned
        stats.slab_pages_vacated += cc.slab_vacated
        costs = self.cfg
        run = CompactRun(
            ret, cc.order, cc.mode,
            migrate_scanned=stats.migrate_scanned - before[0],
            free_scanned=stats.free_scanned - before[1],
            isolated=stats.isolated - before[2],
            migrated=stats.migrated - before[3],
            migrate_failed=stats.migrate_failed - before[4],
            slab_pages_vacated=stats.slab_pages_vacated - before[5],
        )
        run.time_s = (
            run.migrate_scanned * costs.migrate_scan_cost
            + run.free_scanned * costs.free_scan_cost
            + run.isolated * costs.isolate_cost
            + run.migrated * costs.migrate_cost
        )
        stats.time_s += run.time_s
        self.last_run = run
        return ret

    def _compact_zone_inner(self, cc: CompactControl, capc: CaptureControl | None) -> CompactResult:
        zone = self.zone
        st = self.state
        start_pfn = 0
        end_pfn = self._end_pfn
        sync = cc.mode != _ASYNC
        cc.total_migrate_scanned = cc.total_free_scanned = 0
        cc.nr_migratepages = cc.nr_freepages = 0
        cc.freepages = [PfnList() for _ in range(zone.max_order + 1)]
        cc.migratepages = []

        if cc.order != -1:
            ret = self.compaction_suit_allocation_order(
                cc.order, cc.alloc_flags, cc.mode == _ASYNC, cc.highest_zoneidx
            )
            if ret != _CONTINUE:
                if ret == _SKIPPED:
                    self.stats.skipped += 1
                return ret
        self.stats.runs += 1

        # Clear stale skip bits if compaction is retried after the longest deferral.
        if self.compaction_restarting(cc.order):
            self.reset_isolation_suitable()

        cc.fast_start_pfn = _FAST_START_UNSET
        if cc.whole_zone:
            cc.migrate_pfn = start_pfn
            cc.free_pfn = self._pageblock_start(end_pfn - 1)
        else:
            cc.migrate_pfn = st.cached_migrate_pfn[1 if sync else 0]
            cc.free_pfn = st.cached_free_pfn
            if cc.free_pfn < start_pfn or cc.free_pfn >= end_pfn:
                cc.free_pfn = self._pageblock_start(end_pfn - 1)
                st.cached_free_pfn = cc.free_pfn
            if cc.migrate_pfn < start_pfn or cc.migrate_pfn >= end_pfn:
                cc.migrate_pfn = start_pfn
                st.cached_migrate_pfn = [start_pfn, start_pfn]
            if cc.migrate_pfn <= st.init_migrate_pfn:
                cc.whole_zone = True

        last_migrated_pfn = -1  # the kernel's 0: no block migrated from yet
        # Async and sync keep separate cached migrate pfns; keep them in step until a
        # block with isolation candidates is found.
        update_cached = not sync and st.cached_migrate_pfn[0] == st.cached_migrate_pfn[1]
        # lru_add_drain(): the LRU add caches are not modelled.

        pb_shift = zone.pageblock_order
        concurrent = self.concurrent if cc.direct_compaction else None
        stats = self.stats
        isolated0, migrated0 = stats.isolated, stats.migrated
        # The costs, read once: compiled, each read of the pydantic section is a look-up
        # through its __getattr__ hook, and other_cpus runs at every round.
        costs = self.cfg
        scan_cost: float = costs.migrate_scan_cost
        free_cost: float = costs.free_scan_cost
        isolate_cost: float = costs.isolate_cost
        migrate_cost: float = costs.migrate_cost

        def other_cpus() -> None:
            # What other CPUs did while this compaction took its time so far. Their
            # frees are not this task's to capture (current->capture_control).
            assert concurrent is not None
            zone.set_capture_control(None)
            concurrent(cc.total_migrate_scanned * scan_cost
                       + cc.total_free_scanned * free_cost
                       + (stats.isolated - isolated0) * isolate_cost
                       + (stats.migrated - migrated0) * migrate_cost)
            zone.set_capture_control(capc)

        while True:
            if concurrent is not None:
                other_cpus()
            ret = self._compact_finished(cc)
            if ret != _CONTINUE:
                break
            iteration_start_pfn = cc.migrate_pfn
            # A second pass over the block last migrated from: finish it this time.
            cc.finish_pageblock = (
                last_migrated_pfn >= 0
                and last_migrated_pfn >> pb_shift == iteration_start_pfn >> pb_shift
            )
            migrated_now = False
            while True:  # the kernel's "rescan:" label
                if not self._isolate_migratepages(cc):
                    if update_cached:
                        st.cached_migrate_pfn[1] = st.cached_migrate_pfn[0]
                    break
                update_cached = False
                last_migrated_pfn = max(start_pfn, self._pageblock_start(cc.migrate_pfn - 1))
                if concurrent is not None:
                    # The batch's sources are freed after its isolation took its time:
                    # a kswapd woken before this compaction has begun balance_pgdat
                    # (ZONE_RECLAIM_ACTIVE, which caps pcp->high) by then.
                    other_cpus()
                err = self._migrate_pages(cc)
                migrated_now = True
                cc.nr_migratepages = 0
                if err:
                    if err == ENOMEM and not self._scanners_met(cc):
                        ret = _CONTENDED
                        return self._compact_zone_out(cc, ret)
                    # A partial failure in a block that fast_find_migrateblock may
                    # revisit: scan the rest of the block now, so it gets marked skip.
                    if (
                        cc.migrate_pfn & (self._pb - 1)
                        and not cc.ignore_skip_hint
                        and not cc.finish_pageblock
                        and cc.mode < _SYNC
                    ):
                        cc.finish_pageblock = True
                        if cc.order == pb_shift:
                            last_migrated_pfn = -1
                        continue
                break
            if migrated_now and capc is not None and capc.page is not None:
                ret = _SUCCESS
                break
            # check_drain: once the migrate scanner has left the cc->order-aligned block
            # it migrated from, drain this CPU's per-CPU list so the freed sources merge
            # and compact_finished (or the capture) can see the result.
            if cc.order > 0 and last_migrated_pfn >= 0:
                current_block_start = cc.migrate_pfn & ~((1 << cc.order) - 1)
                if last_migrated_pfn < current_block_start:
                    # A block caught here is noticed after the next migration batch, or
                    # by compact_zone_order if the scanners meet first, as in the kernel.
                    zone.drain_pages(cc.cpu)
                    last_migrated_pfn = -1
        return self._compact_zone_out(cc, ret)

    def _compact_zone_out(self, cc: CompactControl, ret: CompactResult) -> CompactResult:
        """``compact_zone``'s out: label: release unused isolated free pages."""
        if cc.nr_freepages > 0:
            high_pfn = self._release_free_list(cc)
            cc.nr_freepages = 0
            free_pfn = self._pageblock_start(high_pfn)
            # Only go back, never forward: compact_finished may have reset it.
            if free_pfn > self.state.cached_free_pfn:
                self.state.cached_free_pfn = free_pfn
        return ret

    def _release_free_list(self, cc: CompactControl) -> int:
        """``release_free_list``: free every isolated block (``__free_pages``: per-CPU list
        for the orders it takes, buddy lists otherwise); return the highest pfn."""
        high_pfn = 0
        zone = self.zone
        for order, blocks in enumerate(cc.freepages):
            while blocks:
                pfn = blocks.popleft()
                zone.free(pfn, order, cc.cpu)
                high_pfn = max(high_pfn, pfn)
        return high_pfn

    def _compact_finished(self, cc: CompactControl) -> CompactResult:
        """``compact_finished``: ``__compact_finished`` with NO_SUITABLE_PAGE -> CONTINUE."""
        zone = self.zone
        if self._scanners_met(cc):
            self._reset_cached_positions()
            # kswapd may clear the skip bits when it next sleeps; kcompactd does not set
            # this, the decision should follow an allocation request.
            if cc.direct_compaction:
                self.state.blockskip_flush = True
            return _COMPLETE if cc.whole_zone else _PARTIAL_SKIPPED
        if cc.proactive_compaction:
            if self.kswapd_is_running():
                return _PARTIAL_SKIPPED
            if self.fragmentation_score_zone() > self.fragmentation_score_wmark(True):
                return _CONTINUE
            return _SUCCESS
        if cc.order == -1:
            return _CONTINUE
        # Always finish a pageblock, so that it is as free as possible.
        if cc.migrate_pfn & (self._pb - 1):
            return _CONTINUE
        mt = cc.migratetype
        for order in range(cc.order, zone.max_order + 1):
            if not zone.free_area_empty(order, mt):
                return _SUCCESS
            # A fallback that would claim a whole block is as good: movable pages are
            # fine anywhere, and the non-movable case finished its pageblock above.
            if zone.find_suitable_fallback(order, mt, True) >= 0:
                return _SUCCESS
        return _CONTINUE

    # ------------------------------------------------------------------ migrate scanner

    def _suitable_migration_source(self, cc: CompactControl, pfn: int) -> bool:
        if self._pageblock_skip_persistent(pfn):
            return False
        if cc.mode != _ASYNC or not cc.direct_compaction:
            return True
        block_mt = int(self._pageblock_mt[pfn >> self._pb_order])
        if cc.migratetype == MIGRATE_MOVABLE:
            return block_mt == MIGRATE_MOVABLE  # is_migrate_movable(): MOVABLE (no CMA)
        return block_mt == cc.migratetype

    def _freelist_scan_limit(self, cc: CompactControl) -> int:
        return (COMPACT_CLUSTER_MAX >> min(63, cc.fast_search_fail)) + 1

    def _update_fast_start_pfn(self, cc: CompactControl, pfn: int) -> None:
        if cc.fast_start_pfn == _FAST_START_OFF:
            return
        if cc.fast_start_pfn == _FAST_START_UNSET:
            cc.fast_start_pfn = pfn
        cc.fast_start_pfn = min(cc.fast_start_pfn, pfn)

    def _reinit_migrate_pfn(self, cc: CompactControl) -> int:
        if cc.fast_start_pfn in (_FAST_START_UNSET, _FAST_START_OFF):
            return cc.migrate_pfn
        cc.migrate_pfn = cc.fast_start_pfn
        cc.fast_start_pfn = _FAST_START_OFF
        return cc.migrate_pfn

    def _fast_find_migrateblock(self, cc: CompactControl) -> int:
        """``fast_find_migrateblock``: for costly orders, start at a MOVABLE pageblock in
        the first part of the search space that already has free pages."""
        pfn = cc.migrate_pfn
        if cc.ignore_skip_hint or cc.finish_pageblock:
            return pfn
        # A continuation of a block cut short by COMPACT_CLUSTER_MAX.
        if pfn != 0 and pfn != self._pageblock_start(pfn):
            return pfn
        if cc.order <= PAGE_ALLOC_COSTLY_ORDER:
            return pfn
        if cc.direct_compaction and cc.migratetype != MIGRATE_MOVABLE:
            return pfn
        zone = self.zone
        limit = self._freelist_scan_limit(cc)
        nr_scanned = 0
        # First half of the search space when starting, else the first eighth, so that a
        # block chosen now is unlikely to become a migration target later.
        distance = (cc.free_pfn - cc.migrate_pfn) >> 1
        if cc.migrate_pfn != 0:
            distance >>= 2
        high_pfn = self._pageblock_start(cc.migrate_pfn + distance)
        found = False
        order = cc.order - 1
        while order >= PAGE_ALLOC_COSTLY_ORDER and not found and nr_scanned < limit:
            if zone.nr_free_at(order):
                head = zone.free_list_sentinel(order, MIGRATE_MOVABLE)
                nxt = zone.free_list_link(head)
                while nxt != head:
                    freepage = nxt
                    nxt = zone.free_list_link(freepage)
                    nr_scanned += 1
                    if nr_scanned - 1 >= limit:
                        zone.move_freelist_tail(order, MIGRATE_MOVABLE, freepage)
                        break
                    if freepage < high_pfn:
                        if self._skip[freepage >> self._pb_order]:
                            continue
                        zone.move_freelist_tail(order, MIGRATE_MOVABLE, freepage)
                        self._update_fast_start_pfn(cc, freepage)
                        pfn = self._pageblock_start(freepage)
                        cc.fast_search_fail = 0
                        found = True
                        break
            order -= 1
        cc.total_migrate_scanned += nr_scanned
        if not found:
            cc.fast_search_fail += 1
            pfn = self._reinit_migrate_pfn(cc)
        return pfn

    def _isolate_migratepages(self, cc: CompactControl) -> bool:
        """``isolate_migratepages``: True (ISOLATE_SUCCESS) if pages were isolated."""
        low_pfn: i64 = self._fast_find_migrateblock(cc)
        block_start_pfn: i64 = self._pageblock_start(low_pfn)
        # fast_find_migrateblock checked the skip bit of a block it found.
        fast_find_block = low_pfn != cc.migrate_pfn and not cc.fast_search_fail
        block_end_pfn: i64 = self._pageblock_end(low_pfn)
        pb: i64 = self._pb
        # The skip test (isolation_suitable) in place: the loop passes over every
        # skipped pageblock up to the free scanner, millions of times a run.
        skip, pb_order, ignore_skip = self._skip, self._pb_order, cc.ignore_skip_hint
        while block_end_pfn <= cc.free_pfn:
            # The skip bit is checked once per block: COMPACT_CLUSTER_MAX brings the
            # scanner back to a block several times.
            if (
                (not low_pfn & (pb - 1) or low_pfn == 0)
                and not fast_find_block
                and not ignore_skip and skip[block_start_pfn >> pb_order]
            ):
                pass
            elif not self._suitable_migration_source(cc, block_start_pfn):
                # Async direct compaction takes only blocks of its own migratetype.
                self._update_cached_migrate(cc, block_end_pfn)
            else:
                self._isolate_migratepages_block(cc, low_pfn, block_end_pfn)
                break
            fast_find_block = False
            cc.migrate_pfn = low_pfn = block_end_pfn
            block_start_pfn = block_end_pfn
            block_end_pfn += pb
            if not ignore_skip:
                # The blocks marked skip from here in one tight loop: the test above for a
                # block after the first (aligned, not fast_find_block's).
                free_pfn: i64 = cc.free_pfn
                while block_end_pfn <= free_pfn and skip[block_start_pfn >> pb_order]:
                    block_start_pfn = block_end_pfn
                    block_end_pfn += pb
                cc.migrate_pfn = low_pfn = block_start_pfn
        return cc.nr_migratepages > 0

    def _isolate_migratepages_block(self, cc: CompactControl, low_pfn: int, end_pfn: int) -> None:
        """``isolate_migratepages_block`` for one pageblock from ``low_pfn``."""
        zone = self.zone
        state, owner = self._state, self._owner
        # i64: C integer arithmetic when compiled (the loop runs once per pfn scanned).
        low: i64 = low_pfn
        end: i64 = end_pfn
        pb_mask: i64 = self._pb - 1
        pb_order: i64 = zone.pageblock_order
        target_order: i64 = cc.order
        nr_scanned: i64 = 0
        nr_isolated: i64 = 0
        migratepages = cc.migratepages
        skip_on_failure = cc.direct_compaction and cc.mode == _ASYNC
        next_skip_pfn: i64 = 0
        if skip_on_failure:
            next_skip_pfn = (low | ((1 << target_order) - 1)) + 1  # block_end_pfn(low, order)
        valid_page: i64 = -1
        skip_updated = False
        aborted = False
        # The defragmenter's hooks, None unless compaction may move slab pages.
        page_mobile = self.slab_page_mobile if self.slab_movable else None
        vacate_page = self.vacate_slab_page if self.slab_movable else None
        # "Only allow to migrate anonymous pages in GFP_NOFS context because those do not
        # depend on fs locks."
        file_folio = None if cc.gfp_fs else self.is_file_folio
        cc.migrate_pfn = low_pfn

        while low < end:
            if skip_on_failure and low >= next_skip_pfn:
                # Everything in the previous order-aligned block was isolated: migrate
                # it now, and hopefully the allocation succeeds.
                if nr_isolated:
                    break
                next_skip_pfn = (low | ((1 << target_order) - 1)) + 1
            nr_scanned += 1
            if valid_page < 0 and (not low & pb_mask or low == 0):
                if not self._isolation_suitable(cc, low):
                    low = end
                    aborted = True
                    break
                valid_page = low
            st: i64 = int(state[low])
            kind = st & PG_KIND
            order = st & PG_ORDER
            if kind == PG_BUDDY:
                # Free: skip it whole (order read without the zone lock in the kernel).
                if order:
                    low += (1 << order) - 1
                    nr_scanned += (1 << order) - 1
                low += 1
                continue
            if kind == PG_ALLOC:
                if order and self._skip_isolation_on_order(order, target_order, pb_order):
                    # A compound page too large to be worth moving: skip it whole.
                    low += (1 << order) - 1
                    nr_scanned += (1 << order) - 1
                else:
                    tag: i64 = int(owner[low])
                    if tag == OWNER_MOVABLE and (file_folio is None
                                                 or not file_folio.holds(low)):
                        # The first LRU page takes the lru lock: mark the block skip now,
                        # and give up if another pass already marked it.
                        if not skip_updated and valid_page >= 0:
                            skip_updated = True
                            if self._test_and_set_skip(cc, valid_page) and not cc.finish_pageblock:
                                low = end
                                aborted = True
                                break
                        migratepages.append(low)
                        nr_pages = 1 << order
                        cc.nr_migratepages += nr_pages
                        nr_isolated += nr_pages
                        nr_scanned += nr_pages - 1
                        low += nr_pages - 1
                        if cc.nr_migratepages >= COMPACT_CLUSTER_MAX and not cc.finish_pageblock:
                            low += 1
                            break
                        low += 1
                        continue
                    # page_has_movable_ops: the defragmenter vacates a mobile slab page;
                    # it is freed, and no migration target is needed.
                    if (
                        tag >= OWNER_SLAB and page_mobile is not None
                        and vacate_page is not None and page_mobile(low)
                        and vacate_page(low)
                    ):
                        cc.slab_vacated += 1
                        low += 1 << order
                        continue
                    # PINNED (the kernel's pinned-anon check), UNMOVABLE, RECLAIMABLE,
                    # immobile slab pages: not isolated.
            # PG_PCP (free but not PageBuddy) and PG_TAIL (inside a block): not LRU.
            # isolate_fail:
            if not skip_on_failure:
                low += 1
                continue
            # The cc->order block cannot become free: release what was taken from it and
            # move to the next one.
            if nr_isolated:
                migratepages.clear()
                cc.nr_migratepages = 0
                nr_isolated = 0
            if low < next_skip_pfn:
                low = next_skip_pfn - 1
                next_skip_pfn += 1 << target_order
            low += 1

        if not aborted and low > end:
            low = end
        # Mark the block skip once it has been scanned to the end and nothing (or, on the
        # second pass, anything) was isolated from it.
        if low == end and (not nr_isolated or cc.finish_pageblock):
            if valid_page >= 0 and not skip_updated:
                self._skip[valid_page >> self._pb_order] = 1
            self._update_cached_migrate(cc, low)
        cc.total_migrate_scanned += nr_scanned
        if nr_isolated:
            self.stats.isolated += nr_isolated
        cc.migrate_pfn = int(low)

    def _migrate_pages(self, cc: CompactControl) -> int:
        """``migrate_pages`` with ``compaction_alloc``: 0, ENOMEM if targets ran out, or
        the number of large folios split whose pieces did not all move.

        As ``migrate_pages_batch`` does, a target is taken for every page first (the list
        is walked from its head: the page isolated last comes first), then the pages
        move and their sources are freed on this CPU's per-CPU list. A large folio that
        finds no target (-ENOMEM) is split (``try_split_folio``, when ``split_folio``
        allows) and the batch goes on; its base pages move after the batch, one pass
        (``migrate_pages``: ``split_folios`` with MIGRATE_ASYNC, their failure not
        returned), and only an -ENOMEM of a page that cannot be split ends the batch and
        is returned (then the split pages are put back unmoved, as ``migrate_pages``
        does when ``rc < 0``).
        """
        zone = self.zone
        state, owner = self._state, self._owner
        sources = cc.migratepages[::-1]
        cc.migratepages = []
        pair_src: vec[i32] = vec[i32]()  # the (source, target) pairs, unboxed
        pair_dst: vec[i32] = vec[i32]()
        split: list[int] = []
        nr_split = 0
        err = 0
        for src in sources:
            st: i64 = int(state[src])
            if st & PG_KIND != PG_ALLOC or int(owner[src]) != OWNER_MOVABLE:
                # Freed from under us (migrate_folio_unmap: "Folio was freed from under
                # us. So we are done."). A direct compaction hands its time to kswapd
                # between isolating a batch and migrating it (other_cpus), and kswapd's
                # reclaim may take a source meanwhile: the kernel's isolation takes a
                # folio off the LRU, here it stays there. A source freed so is skipped
                # (nothing else allocates before it moves: the free scanner's own
                # targets carry no owner).
                continue
            order = st & PG_ORDER
            dst = self._compaction_alloc(cc, order)
            if dst < 0:
                self.stats.migrate_failed += 1 << order
                if order and self.split_folio is not None and self.split_folio(src, order):
                    split.extend(range(src, src + (1 << order)))
                    nr_split += 1
                    self.stats.folios_split += 1
                    continue
                err = ENOMEM
                break
            pair_src = vec_append(pair_src, src)
            pair_dst = vec_append(pair_dst, dst)
        # The rest (after -ENOMEM) are put back on the LRU: their state never changed.
        migrated = 0
        cpu = cc.cpu
        for k in range(len(pair_src)):
            src = int(pair_src[k])
            order = int(state[src]) & PG_ORDER
            zone.migrate_page(src, int(pair_dst[k]), cpu)
            migrated += 1 << order
        if split and not err:
            moved = 0
            for src in split:
                dst = self._compaction_alloc(cc, 0)
                if dst < 0:
                    break
                zone.migrate_page(src, dst, cpu)
                moved += 1
            migrated += moved
            self.stats.migrate_failed -= moved
            if moved == len(split):
                nr_split = 0
        self.stats.migrated += migrated
        return err or nr_split

    # ------------------------------------------------------------------ free scanner

    def _compaction_alloc(self, cc: CompactControl, order: int) -> int:
        """``compaction_alloc``: the smallest isolated block of at least ``order``, split;
        isolate more free pages once if there is none. -1 if none."""
        freepages = cc.freepages
        max_order = self.zone.max_order
        has_isolated_pages = False
        while True:
            for start_order in range(order, max_order + 1):
                if freepages[start_order]:
                    break
            else:
                if has_isolated_pages:
                    return -1
                self._isolate_freepages(cc)
                has_isolated_pages = True
                continue
            pfn = freepages[start_order].popleft()
            if start_order > order:
                pieces = self.zone.split_isolated_page(pfn, start_order, order)
                # the pieces from order start_order - 1 down to order
                for i in range(len(pieces)):
                    freepages[start_order - 1 - i].appendleft(pieces[i])
            cc.nr_freepages -= 1 << order
            cc.nr_migratepages -= 1 << order
            return pfn

    def _suitable_migration_target(self, cc: CompactControl, pfn: int) -> bool:
        st: i64 = int(self._state[pfn])
        if st & PG_KIND == PG_BUDDY:
            # A large free block at the pageblock start: leave the pageblock alone.
            order = cc.order if cc.order > 0 else self._pb_order
            if st & PG_ORDER >= order:
                return False
        if cc.ignore_block_suitable:
            return True
        return int(self._pageblock_mt[pfn >> self._pb_order]) == MIGRATE_MOVABLE

    def _next_free_target(self, cc: CompactControl, start: i64, low: i64) -> i64:
        """The first pageblock from ``start`` down to ``low`` (pageblock starts) that
        ``_suitable_migration_target`` and ``_isolation_suitable`` both accept, or the
        block below ``low`` when none does: the free scanner's passes over the blocks
        it skips, in C integers (most blocks are skipped: tens a call). The two tests
        inline; tests/test_compaction.py holds this to them."""
        state = self._state
        pb_mt = self._pageblock_mt
        skip = self._skip
        shift: i64 = self._pb_order
        pb: i64 = self._pb
        big: i64 = cc.order if cc.order > 0 else shift  # a free block this large: skip
        check_mt = not cc.ignore_block_suitable
        check_skip = not cc.ignore_skip_hint
        pfn: i64 = start
        while pfn >= low:
            st: i64 = int(state[pfn])
            if not (st & PG_KIND == PG_BUDDY and st & PG_ORDER >= big) and (
                    not check_mt or int(pb_mt[pfn >> shift]) == MIGRATE_MOVABLE) and (
                    not check_skip or not skip[pfn >> shift]):
                return pfn
            pfn -= pb
        return pfn

    def _isolate_freepages_block(
        self, cc: CompactControl, start_pfn: int, end_pfn: int, stride: int
    ) -> tuple[int, int]:
        """``isolate_freepages_block`` (not strict): (pages isolated, where it stopped)."""
        zone = self.zone
        state = self._state
        freepages = cc.freepages
        # i64: C integer arithmetic when compiled (the loop runs once per pfn scanned).
        blockpfn: i64 = start_pfn
        end: i64 = end_pfn
        step: i64 = stride
        nr_scanned: i64 = 0
        total_isolated: i64 = 0
        while blockpfn < end:
            nr_scanned += 1
            st: i64 = int(state[blockpfn])
            kind = st & PG_KIND
            if kind == PG_ALLOC:
                order = st & PG_ORDER
                # A compound page: skip it whole if it ends within the range.
                if order and blockpfn + (1 << order) <= end:
                    blockpfn += (1 << order) - 1
                    nr_scanned += (1 << order) - 1
                blockpfn += step
                continue
            if kind != PG_BUDDY:
                blockpfn += step
                continue
            order = st & PG_ORDER
            isolated: i64 = zone.isolate_free_page(blockpfn)
            if not isolated:
                break  # the zone is at its min watermark
            nr_scanned += isolated - 1
            total_isolated += isolated
            cc.nr_freepages += isolated
            freepages[order].append(blockpfn)
            if cc.nr_migratepages <= cc.nr_freepages:
                blockpfn += isolated
                break
            blockpfn += isolated - 1
            blockpfn += step
        if blockpfn > end:
            blockpfn = end
        cc.total_free_scanned += nr_scanned
        self.stats.isolated += total_isolated
        return int(total_isolated), int(blockpfn)

    def _isolate_freepages(self, cc: CompactControl) -> None:
        """``isolate_freepages``: from ``cc.free_pfn`` down to the migrate scanner's block,
        until there are as many free pages as pages to migrate."""
        self._fast_isolate_freepages(cc)
        if cc.nr_freepages:
            return
        pb: i64 = self._pb
        isolate_start_pfn: i64 = cc.free_pfn
        block_start_pfn: i64 = self._pageblock_start(isolate_start_pfn)
        block_end_pfn: i64 = min(block_start_pfn + pb, self._end_pfn)
        low_pfn: i64 = self._pageblock_end(cc.migrate_pfn)
        stride = COMPACT_CLUSTER_MAX if cc.mode == _ASYNC else 1
        while block_start_pfn >= low_pfn:
            # suitable_migration_target and isolation_suitable: the blocks they refuse
            # passed in one loop (the kernel's ``continue``s), the scanner's place
            # where those leave it.
            found: i64 = self._next_free_target(cc, block_start_pfn, low_pfn)
            if found != block_start_pfn:
                block_start_pfn = found
                block_end_pfn = found + pb
                isolate_start_pfn = found
                if found < low_pfn:
                    break
            nr_isolated, isolate_start_pfn = self._isolate_freepages_block(
                cc, isolate_start_pfn, block_end_pfn, stride
            )
            if isolate_start_pfn == block_end_pfn:
                self._update_pageblock_skip(block_start_pfn, block_start_pfn - pb)
            if cc.nr_freepages >= cc.nr_migratepages:
                if isolate_start_pfn >= block_end_pfn:
                    # Restart at the next block down: this one is used up.
                    isolate_start_pfn = block_start_pfn - pb
                break
            if isolate_start_pfn < block_end_pfn:
                break  # isolation failed early (watermark): do not go on
            # Async scans sparsely until it finds free pages.
            stride = 1 if nr_isolated else min(COMPACT_CLUSTER_MAX, stride << 1)
            block_end_pfn = block_start_pfn
            block_start_pfn -= pb
            isolate_start_pfn = block_start_pfn
        cc.free_pfn = isolate_start_pfn

    def _next_search_order(self, cc: CompactControl, order: int) -> int:
        order -= 1
        if order < 0:
            order = cc.order - 1
        if order == cc.search_order:
            cc.search_order -= 1
            if cc.search_order < 0:
                cc.search_order = cc.order - 1
            return -1
        return order

    def _fast_isolate_freepages(self, cc: CompactControl) -> None:
        """``fast_isolate_freepages``: take a free block below the target order from the
        MOVABLE free lists, preferably in the top quarter of the search space."""
        if cc.order <= 0:
            return  # full compaction
        zone = self.zone
        # i64: C integer arithmetic when compiled; the free lists' links read in place
        # (free_list_links), a walk of up to a few hundred entries a call.
        prev_links = zone.free_list_links()[1]
        lb: i64 = zone.free_list_base()
        pb: i64 = self._pb
        limit: i64 = max(1, self._freelist_scan_limit(cc) >> 1)
        nr_scanned: i64 = 0
        highest: i64 = -1
        page: i64 = -1
        scan_start = False
        if cc.free_pfn >= self.state.init_free_pfn:
            limit = pb >> 1
            scan_start = True
        distance: i64 = cc.free_pfn - cc.migrate_pfn
        low_pfn: i64 = self._pageblock_start(cc.free_pfn - (distance >> 2))
        min_pfn: i64 = self._pageblock_start(cc.free_pfn - (distance >> 1))
        low_pfn = max(low_pfn, min_pfn)
        cc.search_order = min(cc.order - 1, cc.search_order)
        order: i64 = cc.search_order
        while page < 0 and order >= 0:
            if zone.nr_free_at(order):
                order_scanned: i64 = 0
                high_pfn: i64 = -1
                freepage: i64 = -1  # the list head itself: moving it changes nothing
                head: i64 = zone.free_list_sentinel(order, MIGRATE_MOVABLE)
                nxt: i64 = int(prev_links[lb + head])
                while nxt != head:
                    pfn = nxt
                    nxt = int(prev_links[lb + pfn])
                    order_scanned += 1
                    nr_scanned += 1
                    freepage = pfn
                    if pfn >= highest:
                        highest = pfn & ~(pb - 1)  # pageblock_start_pfn
                    if pfn >= low_pfn:
                        cc.fast_search_fail = 0
                        cc.search_order = order
                        page = pfn
                        break
                    if pfn >= min_pfn and pfn > high_pfn:
                        high_pfn = pfn
                        limit >>= 1  # a candidate: shorten the scan
                    if order_scanned >= limit:
                        break
                else:
                    freepage = -1
                if page < 0 and high_pfn >= 0:
                    page = freepage = high_pfn
                # Reorder so that a future search skips the pages just looked at.
                if freepage >= 0:
                    zone.move_freelist_head(order, MIGRATE_MOVABLE, freepage)
                if page >= 0:
                    nr_isolated = zone.isolate_free_page(page)
                    if nr_isolated:
                        nr_scanned += nr_isolated - 1
                        cc.nr_freepages += nr_isolated
                        cc.freepages[order].append(page)
                        self.stats.isolated += nr_isolated
                    else:
                        order = cc.search_order + 1  # isolation failed: end the search
                        page = -1
                if cc.nr_freepages >= cc.nr_migratepages:
                    break
                if order_scanned >= limit:
                    limit = max(1, limit >> 1)
            order = self._next_search_order(cc, order)
        if page < 0:
            cc.fast_search_fail += 1
            if scan_start:
                # Use the highest block seen above min_pfn; failing that, direct
                # compaction pessimistically starts the linear scan at min_pfn.
                if highest >= min_pfn:
                    page = highest
                    cc.free_pfn = highest
                elif cc.direct_compaction and 0 <= min_pfn < self._end_pfn:
                    page = min_pfn
                    if not self._suitable_migration_target(cc, page):
                        page = -1
                    cc.free_pfn = min_pfn
        if highest >= 0 and highest >= self.state.cached_free_pfn:
            self.state.cached_free_pfn = highest - pb
        cc.total_free_scanned += nr_scanned
        if page < 0:
            return
        self._fast_isolate_around(cc, page)

    def _fast_isolate_around(self, cc: CompactControl, pfn: int) -> None:
        """``fast_isolate_around``: fill up from the rest of the found page's block."""
        if cc.nr_freepages >= cc.nr_migratepages:
            return
        if cc.direct_compaction and cc.mode == _ASYNC:
            return
        start_pfn = self._pageblock_start(pfn)
        end_pfn = min(self._pageblock_end(pfn), self._end_pfn)
        _, start_pfn = self._isolate_freepages_block(cc, start_pfn, end_pfn, 1)
        # The block is full or nearly: skip it in the future.
        if start_pfn == end_pfn:
            self._skip[pfn >> self._pb_order] = 1


def compact_memory(zone: Zone, cpu: int = 0, **kwargs: object) -> Compactor:
    """One manual compaction of ``zone`` (``echo 1 > /proc/sys/vm/compact_memory``) with a
    fresh Compactor; returns it, for its ``stats`` and ``last_run``."""
    compactor = Compactor(zone, **kwargs)  # type: ignore[arg-type]
    compactor.compact_memory(cpu)
    return compactor


__all__ = [
    "COMPACT_CLUSTER_MAX",
    "COMPACT_MAX_DEFER_SHIFT",
    "DIRECT_COMPACT_CALLERS",
    "PRIORITIES",
    "CaptureControl",
    "CompactControl",
    "CompactPriority",
    "CompactResult",
    "CompactRun",
    "CompactionStats",
    "Compactor",
    "MigrateMode",
    "ProactiveStep",
    "ZoneCompactState",
    "compact_gap",
    "compact_memory",
]


class _NodeCompactStats:
    """A node's compaction counters: every ``CompactionStats`` field summed over its zones
    (the kernel's compact_* counters are global vm events)."""

    def __init__(self, compactors: list[Compactor]) -> None:
        self._compactors = compactors

    # -> Any, not float: mypyc 2.4 generates a __getattr__ wrapper that returns a C
    # double where the slot wants an object (the compile fails).
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in CompactionStats.__dataclass_fields__:
            raise AttributeError(name)
        return sum(getattr(c.stats, name) for c in self._compactors)

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in CompactionStats.__dataclass_fields__}


class NodeCompactor:
    """A node's compaction as kcompactd and kswapd see it (mm/compaction.c
    ``kcompactd_node_suitable``, ``kcompactd_do_work``, ``fragmentation_score_node``,
    ``compact_node``, ``reset_isolation_suitable(pgdat)``): one ``Compactor`` per zone
    (sim/mmzone.py), lowest zone first, each keeping its own scanners, skip bits and
    deferral.

    Departure: kcompactd's ``highest_zoneidx`` (``kcompactd_highest_zoneidx``) is the
    node's highest zone; wakeups do not narrow it.
    """

    def __init__(self, compactors: list[Compactor]) -> None:
        if not compactors:
            raise ValueError("expected at least one zone's compactor")
        self.compactors = sorted(compactors, key=lambda c: c.zone.zone_idx)
        first = self.compactors[0]
        self.proactiveness = first.proactiveness
        self.kswapd_is_running = first.kswapd_is_running
        self.stats = _NodeCompactStats(self.compactors)

    def report(self) -> dict[str, float]:
        """The compaction counters of every zone, summed, for a run's summary."""
        return self.stats.as_dict()

    def fragmentation_score_node(self) -> int:
        """``fragmentation_score_node``: the zones' scores weighted by present pages."""
        zones = [c.zone for c in self.compactors]
        return fragmentation_score_node([(z.nr_pages, z.nr_free) for z in zones],
                                        zones[0].pageblock_order)

    def should_proactive_compact(self) -> bool:
        """``should_proactive_compact_node``"""
        if not self.proactiveness or self.kswapd_is_running():
            return False
        return (self.fragmentation_score_node()
                > self.compactors[0].fragmentation_score_wmark(False))

    def proactive_compact(self, cpu: int = 0) -> ProactiveStep:
        """``Compactor.proactive_compact`` for the node: on a node score above
        wmark_high, ``compact_node(pgdat, true)`` compacts every zone in turn."""
        score = self.fragmentation_score_node()
        if not self.should_proactive_compact():
            return ProactiveStep(False, score, score, HPAGE_FRAG_CHECK_INTERVAL_S)
        self.compactors[0].stats.proactive_runs += 1
        result = max(c.compact_zone_proactive(cpu) for c in self.compactors)
        after = self.fragmentation_score_node()
        timeout = HPAGE_FRAG_CHECK_INTERVAL_S
        if after >= score:
            timeout *= 1 << COMPACT_MAX_DEFER_SHIFT
        return ProactiveStep(True, score, after, timeout, result)

    def kcompactd_node_suitable(self, order: int) -> bool:
        """``kcompactd_node_suitable``: some zone would compact for ``order``, each
        checked against the node's highest zone as the classzone (its lowmem reserve
        kept); ``kcompactd_do_work`` then checks each zone as its own classzone."""
        top = self.compactors[-1].zone.zone_idx
        return any(c.kcompactd_node_suitable(order, top) for c in self.compactors)

    def kcompactd_do_work(self, order: int, cpu: int = 0) -> CompactResult:
        """``kcompactd_do_work``: each zone bottom-up, skipping deferred and unsuitable
        ones (``Compactor.kcompactd_do_work`` does a zone); the results' max."""
        return max(c.kcompactd_do_work(order, cpu) for c in self.compactors)

    def reset_isolation_suitable(self) -> None:
        """``reset_isolation_suitable(pgdat)``: every zone's stale skip bits."""
        for c in self.compactors:
            c.reset_isolation_suitable()

    def compact_memory(self, cpu: int = 0) -> CompactResult:
        """``compact_nodes``: ``compact_node(pgdat, false)``, every zone."""
        return max(c.compact_memory(cpu) for c in self.compactors)
