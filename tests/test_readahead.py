"""The page-cache folio model (sim/readahead.py) against Linux 6.18.44 and its source.

Known results: every recorded scenario of tests/data/folio-orders, replayed from an
empty cache with an allocator that never fails, gives the recorded page-cache folios,
order by order and count by count, and in the recorded order for the first and last
events of the trace slices; ``get_init_ra_size`` reproduces the table in its own kernel
comment. Properties: folios never overlap, are aligned, stay within the mapping's orders
and cover what was read or written. Fallback: what 6.18 does when the allocator refuses
large orders (readahead gives up the window's large folios at the first refusal,
``__filemap_get_folio`` steps down one order at a time).
"""

from __future__ import annotations

import collections
import gzip
import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.gfp import parse_gfp
from sim.readahead import (
    MAX_PAGECACHE_ORDER,
    PAGE_SIZE,
    FolioTable,
    Mapping,
    create_folio_gfp,
    fadvise,
    get_init_ra_size,
    get_next_ra_size,
    read,
    readahead_gfp,
    write,
    write_begin_gfp,
)

DATA = Path(__file__).parent / "data" / "folio-orders"
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
# bdi->io_pages of the recording's virtio disk is not recorded. 6.18's default
# max_sectors_kb is 4096 (BLK_DEF_MAX_SECTORS_CAP, raised from 1280 KiB in 6.17), so
# io_pages = 1024. Any value up to ra_pages (2048) gives the same folios: ractl_max_pages
# only looks at io_pages for a request larger than ra_pages.
IO_PAGES = 1024

EXT4_SCENARIOS = [
    "issue-cat-1g",
    "seq-read-1g-128k-fadv-seq",
    "seq-read-1g-1m",
    "seq-read-1g-64k",
    "seq-read-1g-16k",
    "seq-read-16m-128k",
    "issue-dd-write-512m-bs1m",
    "issue-dd-write-512m-bs4k",
    "issue-small-files-2000x2k",
    "issue-pread-random-20000x4k",
]
TMPFS_SCENARIOS = ["tmpfs-write-1g-1m", "tmpfs-read-1g-1m"]
# GFP_HIGHUSER_MOVABLE|__GFP_COMP is also the flag set of the child's own copy-on-write
# pages (baseline-null, a child that only exits, has 2 of them; the ext4 readers 1).
# tmpfs folios carry the same flags, so the recording counts 262 148-262 149 where the
# file is 262 144 pages.
HARNESS_PAGES_WITH_SAME_FLAGS = {"tmpfs-write-1g-1m": range(0, 6)}


def load(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


class Recorder:
    """An allocator that never fails: the order and gfp of every allocation, in order,
    and the folios handed back to free (-EEXIST)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []
        self.freed: list[int] = []

    def alloc_with(self, gfp_of):
        def alloc(order: int) -> int:
            self.events.append((order, gfp_of(order)))
            return len(self.events)
        return alloc

    def free(self, handle: object, order: int) -> None:
        self.freed.append(order)

    def by_gfp(self) -> dict[str, collections.Counter]:
        hist: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for order, gfp in self.events:
            hist[gfp][order] += 1
        return hist


def sequential_read(m: Mapping, size: int, read_size: int, rec: Recorder,
                    fadvise_sequential: bool = False) -> None:
    """read(2) after read(2) to the end, and the one that returns 0, as cat does."""
    alloc = rec.alloc_with(readahead_gfp)
    fallback = rec.alloc_with(create_folio_gfp)
    for pos in range(0, size + read_size, read_size):
        read(m, pos, read_size, alloc, fadvise_sequential=fadvise_sequential,
             alloc_fallback=fallback, free=rec.free)


def sequential_write(m: Mapping, size: int, write_size: int, rec: Recorder) -> None:
    alloc = rec.alloc_with(lambda o: write_begin_gfp(o, m.min_order, m.shmem))
    for pos in range(0, size, write_size):
        write(m, pos, write_size, alloc, free=rec.free)


def replay(doc: dict) -> tuple[Recorder, list[Mapping]]:
    """Run one recorded scenario through the model, as record.py ran it."""
    p = doc["params"]
    name = doc["scenario"]
    rec = Recorder()
    if doc["fs"]["fstype"] == "tmpfs":
        m = Mapping(0, shmem=True, large_folios=False, ra_pages=0)
        if name.startswith("tmpfs-read"):
            # the file written by tmpfs-write stays in memory
            sequential_write(m, p["file_size"], p["read_size"], Recorder())
            sequential_read(m, p["file_size"], p["read_size"], rec)
        else:
            sequential_write(m, p["file_size"], p["write_size"], rec)
        return rec, [m]
    ra_pages = doc["fs"]["read_ahead_kb"] * KiB // doc["page_size"]
    if "write_size" in p:  # dd into a new file
        m = Mapping(0, ra_pages=ra_pages, io_pages=IO_PAGES)
        sequential_write(m, p["file_size"], p["write_size"], rec)
        return rec, [m]
    if p["tool"] == "python write":  # small files, one write each
        files = [Mapping(0, ra_pages=ra_pages, io_pages=IO_PAGES) for _ in range(p["count"])]
        for m in files:
            sequential_write(m, p["file_size"], p["file_size"], rec)
        return rec, files
    m = Mapping(i_size=p["file_size"], ra_pages=ra_pages, io_pages=IO_PAGES)
    if p["pattern"].startswith("random"):
        # record.py's pread_prepare, offset for offset
        rng = random.Random(p["seed"])
        size, rsize = p["file_size"], p["read_size"]
        offsets = [rng.randrange(size // rsize) * rsize for _ in range(p["count"])]
        alloc = rec.alloc_with(readahead_gfp)
        for off in offsets:
            read(m, off, rsize, alloc, alloc_fallback=rec.alloc_with(create_folio_gfp),
                 free=rec.free)
        return rec, [m]
    sequential_read(m, p["file_size"], p["read_size"], rec,
                    fadvise_sequential=bool(p.get("fadvise")))
    return rec, [m]


@pytest.fixture(scope="module")
def replayed() -> dict[str, tuple[dict, Recorder, list[Mapping]]]:
    cache: dict[str, tuple[dict, Recorder, list[Mapping]]] = {}

    def get(name: str):
        if name not in cache:
            doc = load(name)
            rec, mappings = replay(doc)
            cache[name] = (doc, rec, mappings)
        return cache[name]
    return get


def recorded_page_cache(run: dict, gfps) -> collections.Counter:
    """The recorded allocations with the page-cache flag sets the model used."""
    hist: collections.Counter = collections.Counter()
    for gfp in gfps:
        for order, n in run["by_gfp_flags"].get(gfp, {}).items():
            hist[int(order)] += n
    return hist


def byte_shares(hist: collections.Counter) -> dict[int, float]:
    total = sum(n << order for order, n in hist.items())
    return {order: (n << order) / total for order, n in hist.items()} if total else {}


# ---------------------------------------------------------------- the recordings

@pytest.mark.parametrize("name", EXT4_SCENARIOS + TMPFS_SCENARIOS)
def test_byte_shares_by_order_match_the_recording(name, replayed):
    doc, rec, _ = replayed(name)
    model = collections.Counter(order for order, _ in rec.events)
    for run in doc["runs"]:
        real = recorded_page_cache(run, rec.by_gfp())
        model_share, real_share = byte_shares(model), byte_shares(real)
        for order in set(model_share) | set(real_share):
            assert model_share.get(order, 0.0) == pytest.approx(
                real_share.get(order, 0.0), abs=0.05), (name, run["run"], order)


@pytest.mark.parametrize("name", EXT4_SCENARIOS + TMPFS_SCENARIOS)
def test_folio_counts_by_order_and_flags_match_the_recording(name, replayed):
    doc, rec, _ = replayed(name)
    for gfp, model in rec.by_gfp().items():
        for run in doc["runs"]:
            real = recorded_page_cache(run, [gfp])
            if name in HARNESS_PAGES_WITH_SAME_FLAGS:
                assert set(real) == set(model) == {0}
                assert real[0] - model[0] in HARNESS_PAGES_WITH_SAME_FLAGS[name]
            else:
                assert real == model, (name, run["run"], gfp)
    if name == "tmpfs-read-1g-1m":
        assert rec.events == []  # reading the tmpfs file back allocates nothing


def test_a_one_gib_cat_climbs_to_order_9_in_windows_of_one_order(replayed):
    doc, rec, (m,) = replayed("issue-cat-1g")
    assert collections.Counter(o for o, _ in rec.events) == {
        9: 497, 8: 15, 7: 1, 6: 32, 4: 64, 2: 128, 0: 128}
    assert m.nr_cached == m.nr_pages == GiB // PAGE_SIZE
    # fadvise(SEQUENTIAL) doubled the window; the ramp ends at PMD-sized folios
    assert (m.ra.ra_pages, m.ra.size, m.ra.order) == (4096, 4096, MAX_PAGECACHE_ORDER)


def test_random_preads_read_one_page_each_and_a_few_neighbours(replayed):
    """Two cached pages right before a miss make page_cache_sync_ra read a window of 3
    (async_size 1); a window running into a cached page makes the kernel allocate a
    folio and free it at once (-EEXIST): 5 of the 19 324 recorded allocations."""
    doc, rec, (m,) = replayed("issue-pread-random-20000x4k")
    p = doc["params"]
    rng = random.Random(p["seed"])
    distinct = {rng.randrange(p["file_size"] // PAGE_SIZE) for _ in range(p["count"])}
    assert len(rec.events) == 19324 == sum(
        doc["runs"][0]["by_gfp_flags"][readahead_gfp(0)].values())
    assert rec.freed == [0] * 5
    assert len(m) == m.nr_cached == 19324 - 5 > len(distinct) == 19228
    assert all(order == 0 for _, order, _ in m.folios())


def _slice_orders(name: str, gfp: str) -> tuple[list[int], list[int]]:
    """Orders of the page-cache events in raw/<name>.slice.txt.gz: those before the
    "events left out" line, and those after it."""
    head: list[int] = []
    tail: list[int] = []
    part = head
    with gzip.open(DATA / "raw" / f"{name}.slice.txt.gz", "rt") as f:
        for line in f:
            if "events left out" in line:
                part = tail
            m = re.search(r"order=(\d+) migratetype=\S+ gfp_flags=(\S+)", line)
            if m and m.group(2) == gfp:
                part.append(int(m.group(1)))
    return head, tail


@pytest.mark.parametrize("name", [n for n in EXT4_SCENARIOS
                                  if n.startswith(("seq-read", "issue-cat"))])
def test_readahead_allocates_in_the_recorded_order(name, replayed):
    _, rec, _ = replayed(name)
    head, tail = _slice_orders(name, readahead_gfp(0))
    model = [order for order, _ in rec.events]
    assert len(head) + len(tail) > 30  # (cat's first 150 events are its exec)
    assert model[:len(head)] == head
    assert model[len(model) - len(tail):] == tail


def test_the_gfp_helpers_print_as_the_trace_does():
    cat = load("issue-cat-1g")["runs"][0]["by_gfp_flags"]
    dd_1m = load("issue-dd-write-512m-bs1m")["runs"][0]["by_gfp_flags"]
    dd_4k = load("issue-dd-write-512m-bs4k")["runs"][0]["by_gfp_flags"]
    assert set(cat[readahead_gfp(0)]) >= {"0", "9"}  # one flag set at every order
    assert set(dd_1m[write_begin_gfp(8)]) == {"8"}
    assert set(dd_4k[write_begin_gfp(0)]) == {"0"}
    for gfp in (readahead_gfp(0), create_folio_gfp(0), write_begin_gfp(0),
                write_begin_gfp(8), write_begin_gfp(0, shmem=True)):
        assert parse_gfp(gfp)
    assert "__GFP_NORETRY" in readahead_gfp(0)
    assert "__GFP_NORETRY" not in create_folio_gfp(0) + write_begin_gfp(2, min_order=2)


@pytest.mark.parametrize("io_pages", [32, 320, 1024, 2048])
def test_io_pages_up_to_ra_pages_change_nothing(io_pages):
    rec = Recorder()
    m = Mapping(i_size=16 * MiB, ra_pages=2048, io_pages=io_pages)
    sequential_read(m, 16 * MiB, 128 * KiB, rec)
    assert collections.Counter(o for o, _ in rec.events) == {
        8: 8, 7: 1, 6: 16, 4: 32, 2: 64, 0: 128}


# ---------------------------------------------------------------- kernel formulas

def test_initial_window_is_the_table_in_get_init_ra_size_comment():
    # "for 128k (32 page) max ra: 1-2 page = 16k, 3-4 page 32k, 5-8 page = 64k,
    #  > 8 page = 128k initial"
    pages = {req: get_init_ra_size(req, 32) * PAGE_SIZE // KiB for req in range(1, 33)}
    assert {pages[r] for r in (1, 2)} == {16}
    assert {pages[r] for r in (3, 4)} == {32}
    assert {pages[r] for r in range(5, 9)} == {64}
    assert {pages[r] for r in range(9, 33)} == {128}


def test_next_window_quadruples_then_doubles_then_stays_at_max():
    assert [get_next_ra_size(s, 2048) for s in (64, 128, 1024, 1025, 2048)] == [
        256, 256, 2048, 2048, 2048]


def test_max_pagecache_order_is_the_pmd_order_on_x86_64():
    assert MAX_PAGECACHE_ORDER == 9


def test_a_read_starting_mid_file_reads_only_the_request_without_history():
    rec = Recorder()
    m = Mapping(i_size=GiB, ra_pages=2048)
    read(m, 100 * MiB, 16 * KiB, rec.alloc_with(readahead_gfp))
    assert [o for o, _ in rec.events] == [0] * 4  # "Standalone, small random read"
    assert m.ra.size == 0  # "do not pollute the readahead state"


def test_folios_stop_at_the_page_holding_the_last_byte():
    rec = Recorder()
    m = Mapping(i_size=5 * MiB + 100, ra_pages=2048)
    sequential_read(m, m.i_size, MiB, rec)
    last_page = (m.i_size - 1) // PAGE_SIZE
    assert max(i + (1 << o) - 1 for i, o, _ in m.folios()) == last_page
    assert m.nr_cached == last_page + 1


# ---------------------------------------------------------------- fallback

def refusing_above(k: int, attempts: list[int]):
    handles = iter(range(1, 1 << 30))

    def alloc(order: int):
        attempts.append(order)
        return next(handles) if order <= k else None
    return alloc


def test_a_refused_readahead_folio_sends_the_rest_of_its_window_to_order_0():
    """page_cache_ra_order: ra_alloc_folio -ENOMEM ends the loop and do_page_cache_ra
    reads the rest of the window at min_order; no lower large order is tried."""
    attempts: list[int] = []
    m = Mapping(i_size=GiB, ra_pages=2048)
    alloc = refusing_above(4, attempts)
    for pos in range(0, GiB + 128 * KiB, 128 * KiB):
        read(m, pos, 128 * KiB, alloc, fadvise_sequential=True)
    hist = collections.Counter(o for _, o, _ in m.folios())
    # windows of order 0, 2 and 4 as in the recording; from the order-6 window on
    # (page 1664) every window is one refused attempt, then order-0 pages
    assert hist == {4: 64, 2: 128, 0: 128 + (GiB // PAGE_SIZE - 1664)}
    assert m.nr_cached == GiB // PAGE_SIZE
    refused = [o for o in attempts if o > 4]
    assert refused[:3] == [6, 7, 9] and set(refused) <= {6, 7, 9}
    assert all(a <= 4 or b == 0 for a, b in zip(attempts, attempts[1:], strict=False))


def test_a_refused_write_folio_is_retried_one_order_lower():
    """__filemap_get_folio: "do { ... } while (order-- > min_order)"."""
    attempts: list[int] = []
    m = Mapping(0)
    folios = write(m, 0, MiB, refusing_above(4, attempts))
    assert attempts[:5] == [8, 7, 6, 5, 4]
    assert [o for _, o, _ in folios] == [4] * 16
    assert m.i_size == MiB and m.nr_cached == 256


def test_readahead_that_cannot_allocate_leaves_the_page_to_filemap_create_folio():
    rec = Recorder()
    m = Mapping(i_size=MiB, ra_pages=32)
    folios = read(m, 0, 16 * KiB, lambda order: None,
                  alloc_fallback=rec.alloc_with(create_folio_gfp))
    assert [(i, o) for i, o, _ in folios] == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert {gfp for _, gfp in rec.events} == {create_folio_gfp(0)}


def test_a_read_that_cannot_allocate_at_all_allocates_nothing():
    m = Mapping(i_size=MiB, ra_pages=32)
    assert read(m, 0, 64 * KiB, lambda order: None) == []
    assert len(m) == 0


# ---------------------------------------------------------------- order 0 mappings

@pytest.mark.parametrize("kind", ["large_folios=False", "tmpfs"])
def test_a_mapping_without_large_folios_gets_order_0_only(kind):
    rec = Recorder()
    if kind == "tmpfs":
        m = Mapping(0, shmem=True, large_folios=False)
        sequential_write(m, 64 * MiB, MiB, rec)
    else:
        m = Mapping(i_size=64 * MiB, ra_pages=2048, large_folios=False)
        sequential_read(m, 64 * MiB, MiB, rec, fadvise_sequential=True)
        sequential_write(m, 64 * MiB, MiB, rec)  # over cached pages: nothing new
    assert m.max_order == 0
    assert {o for o, _ in rec.events} == {0}
    assert len(rec.events) == m.nr_cached == 64 * MiB // PAGE_SIZE


def test_a_write_into_a_cached_range_fills_only_the_gaps():
    rec = Recorder()
    m = Mapping(0)
    write(m, 8 * PAGE_SIZE, PAGE_SIZE, rec.alloc_with(write_begin_gfp), free=rec.free)
    write(m, 0, MiB, rec.alloc_with(write_begin_gfp), free=rec.free)
    assert m.nr_cached == 256
    # order 8 at index 0 would hold page 8: tried (and freed), then 7, 6, 5, 4, 3
    assert rec.freed == [8, 7, 6, 5, 4]
    orders = {i: o for i, o, _ in m.folios()}
    assert orders[0] == 3 and orders[8] == 0


# ---------------------------------------------------------------- properties

@st.composite
def mappings(draw):
    min_order = draw(st.integers(0, 2))
    return Mapping(i_size=draw(st.integers(0, 3 * MiB)), min_order=min_order,
                   max_order=draw(st.integers(min_order, MAX_PAGECACHE_ORDER)),
                   ra_pages=draw(st.sampled_from([0, 4, 32, 128, 512])),
                   io_pages=draw(st.sampled_from([32, 256])))


operations = st.lists(st.tuples(
    st.sampled_from(["read", "read", "write", "fadvise"]),
    st.integers(0, 4 * MiB), st.integers(0, 512 * KiB),
    st.sampled_from(["normal", "sequential", "random"])), min_size=1, max_size=25)


def _check_folios(m: Mapping, refused_above: int) -> None:
    pages = set()
    for index, order, _ in m.folios():
        assert index % (1 << order) == 0
        assert m.min_order <= order <= min(m.max_order, max(refused_above, m.min_order))
        span = set(range(index, index + (1 << order)))
        assert not span & pages
        pages |= span
    assert len(pages) == m.nr_cached


def _covered(m: Mapping, first: int, last: int) -> bool:
    return all(m.lookup(i) != -1 for i in range(first, last + 1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=mappings(), ops=operations, refuse_above=st.sampled_from([9, 9, 4, 0]))
def test_folios_never_overlap_are_aligned_and_cover_what_was_read_or_written(
        m, ops, refuse_above):
    k = max(refuse_above, m.min_order)  # min_order folios always succeed
    handles = iter(range(1, 1 << 30))

    def alloc(order):
        return next(handles) if order <= k else None
    for op, pos, count, advice in ops:
        before = m.i_size
        if op == "fadvise":
            fadvise(m, advice)
            continue
        if op == "read":
            folios = read(m, pos, count, alloc)
            end = min(pos + count, before)
            if end > pos:
                assert _covered(m, pos // PAGE_SIZE, (end - 1) // PAGE_SIZE)
            if m.min_order == 0 and before:
                last_page = (before - 1) // PAGE_SIZE
                assert all(i + (1 << o) - 1 <= last_page for i, o, _ in folios)
        else:
            folios = write(m, pos, count, alloc)
            assert m.i_size == max(before, pos + count if count else before)
            if count:
                assert _covered(m, pos // PAGE_SIZE, (pos + count - 1) // PAGE_SIZE)
        assert all(m.lookup(i) == i for i, _, _ in folios)
        _check_folios(m, k)


@settings(max_examples=100, deadline=None)
@given(inserts=st.lists(st.tuples(st.integers(0, 2047), st.integers(0, 9)), max_size=40),
       removes=st.lists(st.integers(0, 39), max_size=20))
def test_lookup_finds_the_folio_holding_every_page(inserts, removes):
    """lookup, range_cached (which looks only at the orders cached), the handles, the
    PG_readahead bits and ``set_handle`` against a page-by-page model."""
    m = Mapping(i_size=8 * MiB)
    heads = []
    for index, order in inserts:
        index &= ~((1 << order) - 1)
        if not m.range_cached(index, 1 << order):
            m.insert(index, order, len(heads), readahead=index % 3 == 0)
            heads.append(index)
    for r in removes:
        if r < len(heads) and heads[r] is not None:
            assert m.remove(heads[r])[1] == r
            heads[r] = None
    owner = {}
    for index, order, handle in m.folios():
        assert heads[handle] == index
        for i in range(index, index + (1 << order)):
            owner[i] = index
    assert all(m.lookup(i) == owner.get(i, -1) for i in range(2048))
    assert m.nr_cached == len(owner)
    for order in range(10):
        n = 1 << order
        for start in range(0, 2048, n):
            assert m.range_cached(start, n) == any(i in owner for i in range(start, start + n))
    for handle, head in enumerate(heads):
        if head is not None:
            assert m.test_readahead(head) == (head % 3 == 0)
            m.set_handle(head, handle + 1000)  # compaction moved it: the bit stays
            assert m.handle_of(head) == handle + 1000
            assert m.test_readahead(head) == (head % 3 == 0)
            m.clear_readahead(head)
            assert not m.test_readahead(head) and m.handle_of(head) == handle + 1000


def test_insert_refuses_overlapping_or_misaligned_folios():
    m = Mapping(i_size=MiB)
    m.insert(8, 3, 1)
    with pytest.raises(ValueError):
        m.insert(12, 2, 2)
    with pytest.raises(ValueError):
        m.insert(0, 4, 3)
    with pytest.raises(ValueError):
        m.insert(2, 2, 4)
    with pytest.raises(ValueError):
        Mapping(large_folios=False).insert(0, 1, 5)
    with pytest.raises(ValueError):
        m.insert(0, 0, -1)  # a handle is an int >= 0 (a pfn)
    for index, nr_pages in ((4, 8), (0, 3), (-8, 8), (0, 0)):  # aligned to a power of two
        with pytest.raises(ValueError):
            m.range_cached(index, nr_pages)
    assert m.remove(8) == (3, 1) and len(m) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["set", "put", "pop", "get"]),
                          st.one_of(st.integers(0, 64), st.integers(0, 1 << 40),
                                    st.integers(0, 4096).map(lambda k: k * 32)),
                          st.integers(0, 1 << 45)), max_size=400))
def test_folio_table_is_a_dict_of_entries(ops):
    """FolioTable against a dict: keys that collide (multiples of a folio
    size, small and huge indexes), entries set again, removals that move runs back, the
    table emptied and filled again."""
    table = FolioTable()
    model: dict[int, int] = {}
    for op, key, value in ops:
        if op == "set":
            table.set(key, value)
            model[key] = value
        elif op == "put":
            assert table.put(key, value) == model.get(key, -1)
            model[key] = value
        elif op == "pop":
            assert table.pop(key) == model.pop(key, -1)
        else:
            assert table.get(key) == model.get(key, -1)
        assert len(table) == len(model)
    assert sorted(table.keys()) == sorted(model)
    assert all(table.get(k) == v for k, v in model.items())
    for key in list(model):
        assert table.pop(key) == model.pop(key)
    assert len(table) == 0 and table.keys() == [] and table.get(0) == -1


def test_folio_table_refuses_negative_keys_and_entries():
    table = FolioTable()
    with pytest.raises(ValueError):
        table.set(-1, 0)
    with pytest.raises(ValueError):
        table.set(0, -1)
    with pytest.raises(ValueError):
        table.put(-1, 0)
    assert len(table) == 0
