"""The file LRU: age order, second chance, eviction through the owner, migration."""

from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.buddy import ALLOC_NO_WATERMARKS, Zone
from sim.gfp import (
    __GFP_DIRECT_RECLAIM,
    __GFP_RECLAIMABLE,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
    GFP_TRANSHUGE,
    GFP_TRANSHUGE_LIGHT,
    gfp_migratetype,
    parse_gfp,
)
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE
from sim.vmscan import FileLru, ReclaimStats


def make_lru():
    evicted = []
    lru = FileLru(lambda pfn, owner: evicted.append((pfn, owner)))
    for pfn in range(10):
        lru.add(pfn, owner=pfn % 3)
    return lru, evicted


def test_shrink_evicts_oldest_first_through_the_owner():
    lru, evicted = make_lru()
    assert lru.shrink(3) == 3
    assert evicted == [(0, 0), (1, 1), (2, 2)]
    assert len(lru) == 7 and 0 not in lru


def test_activated_pages_get_a_second_chance_and_referenced_ones_do_not():
    """folio_mark_accessed twice activates (a second chance); once only sets
    PG_referenced, and folio_check_references reclaims such an unmapped clean file folio
    (FOLIOREF_RECLAIM_CLEAN)."""
    lru, evicted = make_lru()
    for pfn in (0, 1, 0, 1, 2):
        lru.mark_accessed(pfn)
    assert lru.shrink(2) == 2
    assert [pfn for pfn, _ in evicted] == [2, 3]
    assert lru.stats.rotated == 2
    lru.shrink(8)
    assert [pfn for pfn, _ in evicted][-2:] == [0, 1]  # rotated to the newest end


def test_migrated_page_keeps_its_owner_under_the_new_pfn():
    lru, evicted = make_lru()
    lru.migrate(0, 100)
    assert 0 not in lru and 100 in lru
    lru.shrink(10)
    assert evicted[-1] == (100, 0)


def test_scan_limit_stops_a_list_of_referenced_pages():
    lru, evicted = make_lru()
    for pfn in list(range(10)) * 2:
        lru.mark_accessed(pfn)
    assert lru.shrink(5, max_scan=10) == 0
    assert lru.shrink(5) == 5


def test_a_batch_of_32_pages_takes_a_whole_2mib_folio():
    """``shrink_lruvec`` takes ``nr[lru]`` in batches of SWAP_CLUSTER_MAX pages, and each
    batch's ``isolate_lru_folios`` takes folios until it has scanned its pages: a share
    of 100 pages is four batches, so four 2 MiB folios (2 048 pages), where one scan of
    100 pages would stop after the first folio. Order-0 pages scan the share exactly."""
    evicted = []
    lru = FileLru(lambda pfn, owner: evicted.append(pfn), nr_pages=1 << 14)
    for k in range(8):
        lru.add(k << 9, owner=0, order=9)
    assert lru.shrink(1 << 20, max_scan=100, batch=32) == 4 << 9
    assert lru.stats.scanned == 4 << 9 and evicted == [0, 512, 1024, 1536]
    assert lru.shrink(1 << 20, max_scan=100) == 1 << 9  # one batch: one folio
    small, _ = make_lru()
    assert small.shrink(100, max_scan=7, batch=32) == 7
    # the reclaim target still ends the scan within a batch
    assert lru.shrink(1, max_scan=1000, batch=32) == 1 << 9


def test_gfp_strings_from_the_real_trace_parse():
    slub = parse_gfp("GFP_KERNEL|__GFP_RECLAIMABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP")
    assert slub & __GFP_RECLAIMABLE and gfp_migratetype(slub) == MIGRATE_RECLAIMABLE
    stripped = parse_gfp("__GFP_IO|__GFP_FS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC")
    assert not stripped & __GFP_DIRECT_RECLAIM and gfp_migratetype(stripped) == MIGRATE_UNMOVABLE
    assert gfp_migratetype(parse_gfp("GFP_HIGHUSER_MOVABLE|__GFP_COMP")) == MIGRATE_MOVABLE
    assert parse_gfp("GFP_KERNEL") == GFP_KERNEL and parse_gfp("0x0") == 0
    assert not GFP_TRANSHUGE_LIGHT & __GFP_DIRECT_RECLAIM and GFP_TRANSHUGE & __GFP_DIRECT_RECLAIM
    assert gfp_migratetype(GFP_HIGHUSER_MOVABLE) == MIGRATE_MOVABLE


# ------------------------------------------------------------------ against a reference


class OrderedDictLru:
    """The LRU as an OrderedDict of folio head pfn -> owner, an order per folio and the
    sets of PG_referenced and of activated pfns: the plain statement of the semantics
    the queue-and-arrays FileLru must keep. A folio is scanned and evicted whole and
    counts its pages."""

    def __init__(self, evict):
        self.pages: OrderedDict[int, int] = OrderedDict()
        self.orders: dict[int, int] = {}
        self.referenced: set[int] = set()
        self.active: set[int] = set()
        self.evict = evict
        self.stats = ReclaimStats()

    @property
    def nr_pages(self):
        return sum(1 << self.orders[pfn] for pfn in self.pages)

    def add(self, pfn, owner, order=0):
        self.pages[pfn] = owner
        self.orders[pfn] = order
        self.referenced.discard(pfn)
        self.active.discard(pfn)

    def mark_accessed(self, pfn):
        if pfn in self.pages:
            if pfn in self.referenced or pfn in self.active:
                self.referenced.discard(pfn)
                self.active.add(pfn)
            else:
                self.referenced.add(pfn)

    def remove(self, pfn):
        self.referenced.discard(pfn)
        self.active.discard(pfn)
        return self.pages.pop(pfn)

    def migrate(self, old, new):
        owner = self.pages.pop(old)
        order = self.orders[old]
        referenced, active = old in self.referenced, old in self.active
        self.referenced.discard(old)
        self.active.discard(old)
        self.referenced.discard(new)  # the folio's state is the moved one's
        self.active.discard(new)
        self.pages[new] = owner
        self.orders[new] = order
        if referenced:
            self.referenced.add(new)
        if active:
            self.active.add(new)

    def shrink(self, nr_to_reclaim, max_scan=None):
        limit = 2 * self.nr_pages if max_scan is None else max_scan
        evicted = scanned = 0
        while evicted < nr_to_reclaim and scanned < limit and self.pages:
            pfn, owner = self.pages.popitem(last=False)
            nr = 1 << self.orders[pfn]
            scanned += nr
            self.stats.folios_scanned += 1
            if pfn in self.active:  # activated: a second chance, state cleared
                self.active.discard(pfn)
                self.pages[pfn] = owner
                self.stats.rotated += nr
                continue
            evicted += nr
            self.stats.folios_evicted += 1
            self.referenced.discard(pfn)  # PG_referenced alone: FOLIOREF_RECLAIM_CLEAN
            self.evict(pfn, owner)
        self.stats.scanned += scanned
        self.stats.evicted += evicted
        return evicted


pfn_st = st.integers(0, 40)
order_st = st.sampled_from([0, 0, 0, 2, 9, 10])
# owners up to the largest FileLru keeps (the word of its queue entries: order, state, owner)
owner_st = st.sampled_from([0, 1, 2, 3, 511])
lru_ops = st.lists(st.one_of(
    st.tuples(st.just("add"), pfn_st, owner_st, order_st),
    st.tuples(st.just("add_many"), st.lists(pfn_st, max_size=8), owner_st, order_st),
    st.tuples(st.just("add_many"), st.lists(pfn_st, min_size=4, max_size=16), owner_st,
              order_st),
    st.tuples(st.just("access"), pfn_st),
    st.tuples(st.just("remove"), pfn_st),
    st.tuples(st.just("migrate"), pfn_st, pfn_st),
    # (16 or more to reclaim: the scan reads its entries ahead, FileLru._prefetch)
    st.tuples(st.just("shrink"), st.integers(0, 24), st.one_of(st.none(), st.integers(0, 20))),
), min_size=10, max_size=120)


@settings(max_examples=300, deadline=None)
@given(ops=lru_ops, batched=st.booleans(), zone_sized=st.booleans(),
       scribble=st.one_of(st.none(), st.randoms(use_true_random=False)))
def test_file_lru_behaves_as_an_ordered_dict_with_a_referenced_set(ops, batched, zone_sized,
                                                                   scribble):
    """``scribble``: the positions are shared (``share_positions``, as a machine shares
    them with the free lists' links), and after every step the entry of each pfn not
    on the list is overwritten with anything, as a free list's link would be."""
    got, want = [], []
    lru = FileLru(lambda pfn, owner: got.append((pfn, owner)),
                  (lambda pfns, owners: got.extend(zip(pfns, owners, strict=True)))
                  if batched else None, nr_pages=41 if zone_sized else 0)
    lru.COMPACT_AFTER = 2  # compact often
    # a zone's pages, all allocated: their link words are the holder's
    zone = Zone(512, cpus=1, pcp=False)
    assert zone.alloc(9, alloc_flags=ALLOC_NO_WATERMARKS) == 0
    words = zone.page_links()[1]
    if scribble is not None:
        lru.share_positions(zone)
    ref = OrderedDictLru(lambda pfn, owner: want.append((pfn, owner)))
    for op in ops:
        if scribble is not None:
            for pfn in range(41):
                if pfn not in ref.pages:
                    words[pfn] = scribble.randrange(-2, 60)
        if op[0] == "add":
            lru.add(op[1], op[2], op[3])
            ref.add(op[1], op[2], op[3])
        elif op[0] == "add_many":
            lru.add_many(op[1], op[2], op[3])
            for pfn in op[1]:
                ref.add(pfn, op[2], op[3])
        elif op[0] == "access":
            lru.mark_accessed(op[1])
            ref.mark_accessed(op[1])
        elif op[0] == "remove":
            if op[1] in ref.pages:
                assert lru.remove(op[1]) == ref.remove(op[1])
            else:
                with pytest.raises(KeyError):
                    lru.remove(op[1])
        elif op[0] == "migrate":
            if op[1] in ref.pages:
                lru.migrate(op[1], op[2])
                ref.migrate(op[1], op[2])
            else:
                with pytest.raises(KeyError):
                    lru.migrate(op[1], op[2])
        else:
            assert lru.shrink(op[1], op[2]) == ref.shrink(op[1], op[2])
            assert got == want
        assert len(lru) == len(ref.pages)
        assert lru.nr_pages == ref.nr_pages
        assert sum(lru.nr_by_order) == len(ref.pages)
        assert [pfn for pfn in range(-1, 45) if pfn in lru] == sorted(ref.pages)
        assert all(lru.order_of(pfn) == ref.orders[pfn] for pfn in ref.pages)
        assert lru.stats == ref.stats
    # Drain both: the whole remaining order, with owners, must agree.
    lru.shrink(10**6, 10**6)
    ref.shrink(10**6, 10**6)
    assert got == want


def test_the_lru_keeps_up_to_512_owners_and_refuses_more():
    lru = FileLru(lambda pfn, owner: None)
    lru.add(7, 511, 10)
    lru.mark_accessed(7)
    lru.mark_accessed(7)
    assert lru.order_of(7) == 10 and lru.remove(7) == 511
    with pytest.raises(ValueError, match="owner 512: expected 0 to 511"):
        lru.add(8, 512)


def test_compaction_keeps_the_order_of_the_pages_left():
    got, want = [], []
    lru = FileLru(lambda pfn, owner: got.append((pfn, owner)))
    lru.COMPACT_AFTER = 2
    ref = OrderedDictLru(lambda pfn, owner: want.append((pfn, owner)))
    for both in (lru, ref):
        for pfn in range(20):
            both.add(pfn, pfn % 4)
        for pfn in list(range(0, 20, 3)) * 2:  # activated: they rotate
            both.mark_accessed(pfn)
        both.remove(7)
        both.shrink(8)  # consumes over half the queue: a compaction follows
    assert lru._head == 0 and len(lru._queue) == len(lru)  # it compacted
    for both in (lru, ref):
        both.add(7, 1)
        both.shrink(100)
    assert got == want and len(got) == 20


def test_folios_above_the_reclaim_zone_are_passed_over_and_put_back_as_the_newest():
    """isolate_lru_folios for a lower sc->reclaim_idx: a folio from skip_from up counts
    as scanned (total_scan) and skipped (PGSCAN_SKIP) but not towards its batch, keeps
    its access state, and goes back as the newest at the batch's end."""
    evicted = []
    lru = FileLru(lambda pfn, owner: evicted.append(pfn), nr_pages=64)
    for pfn in (40, 1, 41, 2, 42, 3):  # pfns from 32 up stand for the higher zone
        lru.add(pfn, owner=0)
    lru.mark_accessed(41)
    assert lru.shrink(10, max_scan=2, batch=32, skip_from=32) == 2
    assert evicted == [1, 2] and sum(lru.stats.skipped_by_zone) == 2
    assert lru.stats.scanned == 4
    assert lru.shrink(10, max_scan=10, batch=32) == 4  # no skipping: age order
    assert evicted == [1, 2, 42, 3, 40, 41]  # 40 and 41 went back as the newest
    assert lru.stats.rotated == 0  # 41 was only PG_referenced


def test_a_batch_passes_over_at_most_swap_cluster_max_skipped_folios():
    from sim.vmscan import SWAP_CLUSTER_MAX_SKIPPED
    n = SWAP_CLUSTER_MAX_SKIPPED + 10
    evicted = []
    lru = FileLru(lambda pfn, owner: evicted.append(pfn), nr_pages=n + 1)
    for pfn in range(1, n + 1):
        lru.add(pfn, owner=0)
    lru.add(0, owner=0)  # the one eligible folio, the newest
    # One batch: it passes over SWAP_CLUSTER_MAX_SKIPPED folios, then takes the next.
    assert lru.shrink(1, max_scan=1, batch=32, skip_from=1) == 1
    assert evicted == [SWAP_CLUSTER_MAX_SKIPPED + 1]
    assert sum(lru.stats.skipped_by_zone) == SWAP_CLUSTER_MAX_SKIPPED
