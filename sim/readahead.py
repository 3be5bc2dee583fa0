"""Which page-cache folios a read(2) or a buffered write(2) allocates, after Linux 6.18
mm/readahead.c and the folio-order parts of mm/filemap.c.

Pure and synchronous: it knows nothing of SimPy, the zone or the rest of fragsim. The
page allocator is a callback, ``alloc(order) -> handle or None``, called once per folio
in the order the kernel calls ``filemap_alloc_folio``; ``None`` is a failed allocation,
and the handle, an int >= 0 (a pfn, say), is opaque here and handed back.

API
---
``Mapping(nr_pages=0, *, i_size=None, min_order=0, max_order=MAX_PAGECACHE_ORDER,
large_folios=True, ra_pages=32, io_pages=32, shmem=False)``
    One file's ``address_space`` plus the ``file_ra_state`` of its one open file
    (``mapping.ra``, a ``FileRaState``). ``i_size`` is in bytes (``nr_pages`` sets it to
    whole pages and reads it back rounded up). ``min_order``/``max_order`` are
    ``mapping_min/max_folio_order``: ext4 and xfs regular files in 6.18 call
    ``mapping_set_large_folios`` (0..MAX_PAGECACHE_ORDER); ``large_folios=False``, or
    tmpfs with the default ``huge=never``, gives max_order 0. ``ra_pages`` is
    ``bdi->ra_pages`` (read_ahead_kb / 4; the kernel default is 128 KiB = 32 pages),
    ``io_pages`` is ``bdi->io_pages`` (max_sectors_kb / 4). ``shmem=True`` is tmpfs:
    reads of a hole allocate nothing (``shmem_file_read_iter`` copies zeroes) and writes
    use shmem's gfp. Cache methods: ``lookup(index) -> head index or -1``,
    ``insert(index, order, handle, readahead=False)``, ``remove(index) -> (order,
    handle)`` (reclaim evicts a whole folio by its head index), ``folios()`` (``(index,
    order, handle)`` in index order), ``test_readahead(index)``, ``nr_cached`` (pages).
``read(mapping, pos, count, alloc, *, fadvise_sequential=False, alloc_fallback=None,
free=None) -> list[(index, order, handle)]``
    One ``filemap_read`` of ``count`` bytes at byte ``pos``: the folios it allocated.
    ``alloc_fallback`` is the allocation ``filemap_create_folio`` makes (order
    ``min_order``, the mapping's gfp without __GFP_NORETRY) when readahead could not
    allocate the page being read; it defaults to ``alloc``. ``free(handle, order)``, if
    given, receives the folios the kernel allocates and frees at once because
    ``filemap_add_folio`` finds a cached page in their range (-EEXIST); see Departures.
``write(mapping, pos, count, alloc, *, free=None) -> list[(index, order, handle)]``
    One ``generic_perform_write``: the folios its ``write_begin`` calls created for
    pages not yet cached. Extends ``i_size``. ``free`` as for ``read``.
``fadvise(mapping, advice)``
    ``generic_fadvise`` for "normal", "sequential" (``ra_pages`` doubled) and "random"
    (FMODE_RANDOM: every miss is a plain ``force_page_cache_ra``).
``readahead_gfp(order)``, ``create_folio_gfp(order)``, ``write_begin_gfp(order,
min_order=0, shmem=False)``
    The gfp flags the kernel allocates with on each path, spelled as the
    ``mm_page_alloc`` trace event prints them (``sim.gfp.parse_gfp`` reads them).
    Readahead always adds ``__GFP_NORETRY | __GFP_NOWARN`` (``readahead_gfp_mask``),
    at order 0 too; ``__filemap_get_folio`` adds them only above ``min_order``.

A failed allocation falls back as 6.18 does. In ``page_cache_ra_order`` the first
failure (``ra_alloc_folio`` -> -ENOMEM) ends the large-folio loop and the rest of the
window goes to ``do_page_cache_ra`` at ``min_order``, one folio at a time, until one of
those fails too; if the page being read is still missing, ``filemap_create_folio`` tries
once more and, failing, ends the read (-ENOMEM). ``__filemap_get_folio`` for a write tries
each lower order down to ``min_order``; failing at ``min_order`` ends the write early.

What it follows
---------------
mm/filemap.c: ``filemap_read`` (the loop, ``ra->prev_pos`` set at the end of the call),
``filemap_get_pages`` (sync readahead on a miss, async readahead when the last folio of
the batch has PG_readahead, ``filemap_create_folio``), ``filemap_get_read_batch`` (stops
after a PG_readahead folio; PAGEVEC_SIZE = 31), ``page_cache_next_miss``,
``page_cache_prev_miss``, ``__filemap_get_folio`` (FGP_CREAT: order from
``fgf_set_order(len)``, clamped to ``mapping_max_folio_order``, cut to the index's
alignment, retried one order lower down to ``min_order``), ``generic_perform_write``
(``chunk = mapping_max_folio_size``). include/linux/pagemap.h: ``MAX_PAGECACHE_ORDER`` =
min(MAX_XAS_ORDER = 2 * XA_CHUNK_SHIFT - 1 = 11, PREFERRED_MAX_PAGECACHE_ORDER =
HPAGE_PMD_ORDER = 9) = 9 on x86-64, ``filemap_get_order``, ``fgf_set_order``,
``write_begin_get_folio`` (ext4's ``ext4_da_write_begin`` and ``ext4_write_begin`` since
6.17), ``readahead_gfp_mask``, ``mapping_align_index``. mm/readahead.c:
``page_cache_sync_ra`` (start of file, oversized read or sequential miss -> initial
window; otherwise the cached history decides between a plain read of the request
and a window of the history's size), ``page_cache_async_ra`` (``ra->order += 2``, the
window end aligned to ``1 << min(order, ffs(max_pages) - 1)``), ``page_cache_ra_order``
(order = min(max_order, ra->order, ilog2(size)); a folio is cut to its index's alignment
and shrunk so as not to pass the last page of the window or of the file; PG_readahead on
the folio holding ``start + size - async_size``), ``ra_alloc_folio``,
``do_page_cache_ra``, ``page_cache_ra_unbounded``, ``force_page_cache_ra``,
``ractl_max_pages``, ``get_init_ra_size``, ``get_next_ra_size``. mm/fadvise.c:
``generic_fadvise``. include/linux/fs.h: ``struct file_ra_state`` (start, size,
async_size, ra_pages, order, mmap_miss, prev_pos).

Which source, and how its age was checked
-----------------------------------------
Read through the code search index (no kernel git tree on this machine):

- mm/readahead.c, the stored copy with id 14834876 (the index does not name its
  repository; its text is 27 168 characters). It is at least v6.16 and from September
  2025 or later: ``page_cache_ra_order(ractl, ra)`` takes the order from ``ra->order``
  (Ryan Roberts, "mm/readahead: Store folio order in struct file_ra_state", v6.16),
  ``ractl_alloc_folio`` sets dropbehind (uncached buffered I/O, v6.14), and it has the
  ``trace_page_cache_ra_*`` tracepoints of Jan Kara's "readahead: Add trace points",
  posted on 2025-09-09, just before the v6.18 merge window.
- mm/filemap.c, include/linux/pagemap.h, mm/fadvise.c and mm/readahead.c of
  Diangang/linux (filemap.c at 35ce50121a22, pagemap.h at 5235b7f4bc9f), a tree a
  little newer than 6.18: it has ``__filemap_get_folio_mpol`` and the three-argument
  ``filemap_alloc_folio`` (a NUMA mempolicy for guest_memfd), which the copy above
  still lacks. Its readahead.c has the same code as that copy in every function used
  here (``page_cache_sync_ra``, ``page_cache_async_ra``, ``page_cache_ra_order``,
  ``ra_alloc_folio``, ``page_cache_ra_unbounded``, ``get_*_ra_size``,
  ``ractl_max_pages``), so the two bracket 6.18. Its ``write_begin_get_folio`` is that
  of the 6.17 vfs series ("mm/pagemap: add write_begin_get_folio() helper function",
  b799474b9aeb); a recent fs/ext4/inode.c (stored copy 54970540278) calls it from
  ``ext4_da_write_begin`` and ``ext4_write_begin``.
- CachyOS/linux's and torvalds/linux's stored readahead.c are old: they still have
  ``try_context_readahead``, which 6.10 removed.
- ``struct file_ra_state`` with ``unsigned short order`` and ``mmap_miss``: the
  kernel-doc of a 6.16+ include/linux/fs.h and Ryan Roberts' series.

With these rules the model gives the recorded 6.18.44 page-cache histograms of
tests/data/folio-orders exactly, count for count, for every ext4 read and write
scenario, and in the recorded order (tests/test_readahead.py); the random preads match
when the -EEXIST allocations are counted (``free`` given).

Departures
----------
- I/O completes at once: a folio is uptodate when it is allocated, so
  ``filemap_update_page`` never waits and ``filemap_get_pages`` never drops a
  not-uptodate folio from its batch. That changes when the kernel copies, not which
  folios it allocates: a batch still ends at the first PG_readahead folio, and
  ``last_index`` is fixed for the whole call. ``->readahead`` reads every folio it is
  given (``read_pages`` never removes one).
- Without a ``free`` callback, a folio the kernel allocates and frees at once because
  ``filemap_add_folio`` finds another folio in its range (-EEXIST) is not allocated:
  the range is checked first and the kernel's next step taken (``page_cache_ra_order``
  falls back to ``do_page_cache_ra``; ``__filemap_get_folio`` tries the next lower
  order). With ``free``, it is allocated and handed straight to ``free``, as the kernel
  does; its allocation shows in a trace (5 of the 19 324 page-cache allocations of
  the random-pread recording are such) and may reclaim or compact, but it never holds
  memory.
- A folio in the reader's batch can be reclaimed by an allocation the same read makes
  (the caller's allocator may reclaim); the kernel's batch holds folio references that
  make ``__remove_mapping`` skip it. The read then reads that page again.
- One open file per mapping: ``file_ra_state`` (and FMODE_RANDOM) live on the Mapping,
  where the kernel keeps them per ``struct file``.
- Page faults (``filemap_fault``, ``do_sync_mmap_readahead``, ``mmap_miss``) are not
  modelled; ``ra.mmap_miss`` is only carried. Nor are IOCB_NOWAIT/NOIO/DONTCACHE,
  ``blk_cgroup_congested``, PG_writeback sharing the PG_readahead bit, the short-copy
  retry of ``generic_perform_write``, truncation, ``s_maxbytes``, or the
  xarray-node slab allocations that go with each folio.
- tmpfs (``shmem=True``): only ``huge=never`` (order 0); ``shmem_get_folio``'s own
  huge-order rules are not modelled, and its writes are treated as
  ``__filemap_get_folio`` at order 0 with shmem's gfp. Swapped-out shmem pages are
  not modelled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from librt.vecs import extend as vec_extend
from librt.vecs import vec
from mypy_extensions import i32, i64, u8

PAGE_SHIFT: Final = 12
PAGE_SIZE: Final = 1 << PAGE_SHIFT
HPAGE_PMD_ORDER: Final = 9
XA_CHUNK_SHIFT: Final = 6
# include/linux/pagemap.h: xas_split_alloc() cannot split above two xarray levels.
MAX_XAS_ORDER: Final = XA_CHUNK_SHIFT * 2 - 1
PREFERRED_MAX_PAGECACHE_ORDER: Final = HPAGE_PMD_ORDER  # CONFIG_TRANSPARENT_HUGEPAGE=y
MAX_PAGECACHE_ORDER: Final = min(MAX_XAS_ORDER, PREFERRED_MAX_PAGECACHE_ORDER)
# include/linux/mm.h: the default read_ahead_kb, 128 KiB; also bdi_init's io_pages.
VM_READAHEAD_PAGES: Final = (128 * 1024) // PAGE_SIZE
# include/linux/pagevec.h: the folios filemap_get_read_batch hands back at once.
PAGEVEC_SIZE: Final = 31
# chunk of force_page_cache_ra: "so that we don't pin too much memory at once"
FORCE_RA_CHUNK_PAGES: Final = (2 * 1024 * 1024) // PAGE_SIZE
_ULONG_MASK: Final = (1 << 64) - 1
# A Mapping's entry for a folio: its order in the low 4 bits, PG_readahead, the handle.
_ORDER_MASK: Final = 0xF
_PG_READAHEAD: Final = 0x10
_HANDLE_SHIFT: Final = 5

Alloc = Callable[[int], int | None]
Free = Callable[[int, int], None]  # (handle, order)
Folio = tuple[int, int, int]  # (head index, order, handle)

# The gfp flags of each path, as mm_page_alloc prints them on 6.18 for an ext4 file
# (mapping gfp GFP_HIGHUSER_MOVABLE). filemap_alloc_folio -> folio_alloc adds __GFP_COMP
# at every order. Readahead runs under memalloc_nofs_save, which clears __GFP_FS
# (GFP_HIGHUSER_MOVABLE without __GFP_FS prints as GFP_NOFS|__GFP_HIGHMEM|...).
_READAHEAD_GFP: Final = ("GFP_NOFS|__GFP_HIGHMEM|__GFP_MOVABLE|__GFP_NOWARN|__GFP_NORETRY"
                  "|__GFP_COMP|__GFP_HARDWALL")
_CREATE_FOLIO_GFP: Final = "GFP_HIGHUSER_MOVABLE|__GFP_COMP"
_WRITE_GFP: Final = "GFP_HIGHUSER_MOVABLE|__GFP_WRITE|__GFP_COMP"
_WRITE_GFP_LARGE: Final = "GFP_HIGHUSER_MOVABLE|__GFP_WRITE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP"
_SHMEM_GFP: Final = "GFP_HIGHUSER_MOVABLE|__GFP_COMP"


def readahead_gfp(order: int) -> str:
    """``readahead_gfp_mask``: the mapping's gfp | __GFP_NORETRY | __GFP_NOWARN, at
    every order (6.18 does not single out large folios here), under NOFS.

    ``order`` is taken so that every path's helper has one shape."""
    del order
    return _READAHEAD_GFP


def create_folio_gfp(order: int) -> str:
    """``filemap_create_folio``: the mapping's gfp as it is, no __GFP_NORETRY."""
    del order
    return _CREATE_FOLIO_GFP


def write_begin_gfp(order: int, min_order: int = 0, shmem: bool = False) -> str:
    """``__filemap_get_folio`` with FGP_WRITEBEGIN: __GFP_WRITE (the mapping can write
    back), plus __GFP_NORETRY | __GFP_NOWARN above ``min_order`` ("if (order >
    min_order) alloc_gfp |= __GFP_NORETRY | __GFP_NOWARN"). tmpfs allocates with the
    mapping's gfp alone (no __GFP_WRITE: shmem does not write back)."""
    if shmem:
        return _SHMEM_GFP
    return _WRITE_GFP_LARGE if order > min_order else _WRITE_GFP


def _ilog2(n: int) -> int:
    return n.bit_length() - 1


def _lowest_set_bit(n: int) -> int:
    """``__ffs``: the 0-based index of the lowest set bit (n > 0)."""
    return (n & -n).bit_length() - 1


def _roundup_pow_of_two(n: int) -> int:
    return 1 << (n - 1).bit_length()


class FileRaState:
    """``struct file_ra_state`` of 6.18, plus the file's FMODE_RANDOM bit.

    ``prev_pos`` is -1 until the first read, as ``file_ra_state_init`` sets it."""

    __slots__ = ("start", "size", "async_size", "ra_pages", "order", "mmap_miss",
                 "prev_pos", "fmode_random")

    def __init__(self, ra_pages: int) -> None:
        self.start = 0
        self.size = 0
        self.async_size = 0
        self.ra_pages = ra_pages
        self.order = 0
        self.mmap_miss = 0
        self.prev_pos = -1
        self.fmode_random = False

    def __repr__(self) -> str:
        return (f"FileRaState(start={self.start}, size={self.size}, "
                f"async_size={self.async_size}, ra_pages={self.ra_pages}, "
                f"order={self.order}, prev_pos={self.prev_pos})")


class FolioTable:
    """A mapping's folios, head index -> entry (both >= 0; -1 answers "none"): the
    XArray's one entry per folio, as an open-addressing hash table over two typed
    vectors (linear probing; a removal moves the later entries of its run back, Knuth's
    algorithm R, so no tombstones). A folio costs 16-24 bytes and no int object, where a
    dict entry and its two ints cost about 100; tests/test_readahead.py holds it to a
    dict. A simulator structure, not a kernel one."""

    __slots__ = ("_keys", "_vals", "_n", "_mask")

    def __init__(self) -> None:
        self._keys: vec[i64] = vec[i64]()
        self._vals: vec[i64] = vec[i64]()
        self._n = 0
        self._mask: i64 = -1  # capacity - 1 (a power of two), -1 with no table

    def __len__(self) -> int:
        return self._n

    def _home(self, key: i64) -> i64:
        """The key's slot, were it alone: a multiplicative hash of its bits (head
        indexes are multiples of their folio's size, so their low bits are poor)."""
        x: i64 = (key ^ (key >> 17) ^ (key >> 31)) & 0x7FFFFFFF
        return ((x * 0x9E3779B1) >> 20) & self._mask

    def _find(self, key: i64) -> i64:
        """The slot holding ``key``, or -1."""
        mask = self._mask
        if mask < 0:
            return -1
        keys = self._keys
        i = self._home(key)
        while True:
            k: i64 = keys[i]
            if k == key:
                return i
            if k < 0:
                return -1
            i = (i + 1) & mask

    def get(self, key: int) -> int:
        """The entry of the folio headed at ``key``, or -1."""
        i = self._find(key)
        return -1 if i < 0 else int(self._vals[i])

    def set(self, key: int, value: int) -> None:
        """Enter (or replace) the folio headed at ``key``."""
        if key < 0 or value < 0:
            raise ValueError(f"expected a key and a value >= 0, got {key}, {value}")
        i = self._find(key)
        if i >= 0:
            self._vals[i] = value
            return
        if (self._n + 1) * 3 > (self._mask + 1) * 2:
            self._grow()
        keys = self._keys
        mask = self._mask
        i = self._home(key)
        while int(keys[i]) >= 0:
            i = (i + 1) & mask
        keys[i] = key
        self._vals[i] = value
        self._n += 1

    def put(self, key: int, value: int) -> int:
        """``set``, returning the entry it replaced, or -1 (one probe where ``get``
        then ``set`` take two)."""
        if key < 0 or value < 0:
            raise ValueError(f"expected a key and a value >= 0, got {key}, {value}")
        mask = self._mask
        if mask >= 0:
            keys = self._keys
            i = self._home(key)
            while True:
                k: i64 = keys[i]
                if k == key:
                    old = int(self._vals[i])
                    self._vals[i] = value
                    return old
                if k < 0:
                    break
                i = (i + 1) & mask
            if (self._n + 1) * 3 <= (mask + 1) * 2:
                keys[i] = key
                self._vals[i] = value
                self._n += 1
                return -1
        self.set(key, value)
        return -1

    def _grow(self) -> None:
        old_keys, old_vals = self._keys, self._vals
        size: i64 = max(8, 2 * (self._mask + 1))
        self._keys = vec[i64]([-1] * size)
        self._vals = vec[i64]([0] * size)
        self._mask = size - 1
        keys, vals, mask = self._keys, self._vals, self._mask
        for j in range(len(old_keys)):
            k: i64 = old_keys[j]
            if k >= 0:
                i = self._home(k)
                while int(keys[i]) >= 0:
                    i = (i + 1) & mask
                keys[i] = k
                vals[i] = old_vals[j]

    def pop(self, key: int) -> int:
        """Remove the folio headed at ``key``; its entry, or -1 when there is none."""
        i = self._find(key)
        if i < 0:
            return -1
        value = int(self._vals[i])
        self._n -= 1
        if not self._n:  # the last one: no table until the next
            self._keys = vec[i64]()
            self._vals = vec[i64]()
            self._mask = -1
            return value
        keys, vals, mask = self._keys, self._vals, self._mask
        while True:  # algorithm R: close the gap at i
            keys[i] = -1
            j = i
            while True:
                j = (j + 1) & mask
                k: i64 = keys[j]
                if k < 0:
                    return value
                h = self._home(k)
                # the entry at j stays if its home is cyclically in (i, j]
                if (i <= j and i < h <= j) or (i > j and (h > i or h <= j)):
                    continue
                keys[i] = k
                vals[i] = vals[j]
                i = j
                break

    def keys(self) -> list[int]:
        """The head indexes, in table order (sort them for index order)."""
        return [int(k) for k in self._keys if int(k) >= 0]


class Mapping:
    """One file's page cache (``struct address_space``) and its open file's readahead
    state. Folios are naturally aligned: a folio of order ``o`` starts at an index that
    is a multiple of ``2**o``."""

    __slots__ = ("i_size", "min_order", "max_order", "ra_pages", "io_pages", "shmem",
                 "ra", "nr_cached", "_folio", "_nr_by_order", "_cached")

    def __init__(self, nr_pages: int = 0, *, i_size: int | None = None,
                 min_order: int = 0, max_order: int = MAX_PAGECACHE_ORDER,
                 large_folios: bool = True, ra_pages: int = VM_READAHEAD_PAGES,
                 io_pages: int = VM_READAHEAD_PAGES, shmem: bool = False) -> None:
        if nr_pages < 0 or (i_size is not None and i_size < 0):
            raise ValueError("a file size cannot be negative")
        if not 0 <= min_order <= MAX_PAGECACHE_ORDER:
            raise ValueError(f"min_order must be in 0..{MAX_PAGECACHE_ORDER}, got {min_order}")
        if max_order < 0:
            raise ValueError(f"max_order cannot be negative, got {max_order}")
        if ra_pages < 0 or io_pages < 0:
            raise ValueError("ra_pages and io_pages cannot be negative")
        if not large_folios:
            max_order = 0
        # mapping_set_folio_order_range: clamp to MAX_PAGECACHE_ORDER, max >= min
        self.min_order = min_order
        self.max_order = max(min(max_order, MAX_PAGECACHE_ORDER), min_order)
        self.i_size = i_size if i_size is not None else nr_pages * PAGE_SIZE
        self.ra_pages = ra_pages
        self.io_pages = io_pages
        self.shmem = shmem
        self.ra = FileRaState(ra_pages)
        self.nr_cached = 0
        # Cached folios: head index -> handle << _HANDLE_SHIFT | PG_readahead << 4 |
        # order, one int (the XArray's one entry per folio); handles are ints >= 0.
        self._folio = FolioTable()
        # Folios by order: ``lookup`` tries only the orders cached.
        self._nr_by_order: vec[i32] = vec[i32]([0] * (MAX_PAGECACHE_ORDER + 1))
        # One bit per page, set while a folio holds it (bit i & 7 of byte i >> 3): "is
        # anything cached here?" without a look-up. Grown on demand, dropped when the
        # mapping has no page left.
        self._cached: vec[u8] = vec[u8]()

    @property
    def nr_pages(self) -> int:
        """i_size in pages, rounded up."""
        return (self.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT

    @nr_pages.setter
    def nr_pages(self, value: int) -> None:
        self.i_size = value * PAGE_SIZE

    @property
    def large_folio_support(self) -> bool:
        """``mapping_large_folio_support``."""
        return self.max_order > 0

    def __repr__(self) -> str:
        return (f"Mapping(i_size={self.i_size}, orders={self.min_order}..{self.max_order}, "
                f"ra_pages={self.ra_pages}, io_pages={self.io_pages}, "
                f"folios={len(self._folio)}, pages={self.nr_cached})")

    # ---------------------------------------------------------------- the cache

    def lookup(self, index: int) -> int:
        """Head index of the folio holding page ``index``, or -1 (``xa_load``).

        A folio of order o holding ``index`` starts at ``index`` with its low o bits
        cleared, so it is found by one look-up per order cached."""
        cached = self._cached
        byte = index >> 3
        if index < 0 or byte >= len(cached) or not int(cached[byte]) >> (index & 7) & 1:
            return -1
        folio = self._folio
        nr_by_order = self._nr_by_order
        for order in range(self.max_order + 1):
            if not nr_by_order[order]:
                continue
            head = index & ~((1 << order) - 1)
            entry = folio.get(head)
            if entry >= 0 and entry & _ORDER_MASK >= order:
                return head
        return -1

    def range_cached(self, index: int, nr_pages: int) -> bool:
        """True if any page of [index, index + nr_pages) is cached. The range must be
        aligned to its size, a power of two: it is then whole bytes of the page bitmap,
        or bits of one byte."""
        if nr_pages <= 0 or nr_pages & (nr_pages - 1) or index < 0 or index & (nr_pages - 1):
            raise ValueError(f"expected a range aligned to its size, a power of two, got "
                             f"[{index}, {index + nr_pages})")
        cached = self._cached
        byte = index >> 3
        if nr_pages < 8:
            return (byte < len(cached)
                    and int(cached[byte]) >> (index & 7) & ((1 << nr_pages) - 1) != 0)
        end = min(byte + (nr_pages >> 3), len(cached))
        while byte < end:
            if cached[byte]:
                return True
            byte += 1
        return False

    def _mark(self, index: int, nr_pages: int, on: bool) -> None:
        """Set (``on``) or clear the bitmap's bits of an aligned range of pages."""
        end = (index + nr_pages + 7) >> 3
        if end > len(self._cached):
            self._cached = vec_extend(self._cached, bytes(max(end, 2 * len(self._cached))
                                                          - len(self._cached)))
        cached = self._cached
        byte = index >> 3
        if nr_pages >= 8:
            value = 0xFF if on else 0
            for k in range(byte, byte + (nr_pages >> 3)):
                cached[k] = value
            return
        bits = ((1 << nr_pages) - 1) << (index & 7)
        if on:
            cached[byte] = int(cached[byte]) | bits
        else:
            cached[byte] = int(cached[byte]) & ~bits & 0xFF

    def insert(self, index: int, order: int, handle: int, readahead: bool = False) -> None:
        """Add a folio (``filemap_add_folio``). It must be aligned and overlap none."""
        if index < 0 or order < 0 or index & ((1 << order) - 1):
            raise ValueError(f"a folio of order {order} cannot start at index {index}")
        if not self.min_order <= order <= self.max_order:
            raise ValueError(f"order {order} is outside this mapping's folio orders "
                             f"{self.min_order}..{self.max_order}")
        if handle < 0:
            raise ValueError(f"expected a handle >= 0, got {handle}")
        if self.range_cached(index, 1 << order):
            raise ValueError(f"[{index}, {index + (1 << order)}) overlaps a cached folio")
        self._insert(index, order, handle, readahead)

    def _insert(self, index: int, order: int, handle: int, readahead: bool) -> None:
        """``insert`` of a folio its caller has found room for."""
        flags = _PG_READAHEAD if readahead else 0
        self._folio.set(index, handle << _HANDLE_SHIFT | flags | order)
        self._nr_by_order[order] += 1
        self._mark(index, 1 << order, True)
        self.nr_cached += 1 << order

    def remove(self, index: int) -> tuple[int, int]:
        """Evict the folio whose head is ``index``; return its (order, handle)."""
        entry = self._folio.pop(index)
        if entry < 0:
            raise KeyError(f"no folio starts at index {index}")
        order = entry & _ORDER_MASK
        self._nr_by_order[order] -= 1
        self.nr_cached -= 1 << order
        if self.nr_cached:
            self._mark(index, 1 << order, False)
        else:
            self._cached = vec[u8]()
        return order, entry >> _HANDLE_SHIFT

    def folios(self) -> Iterator[Folio]:
        """Every cached folio as (head index, order, handle), in index order."""
        folio = self._folio
        for index in sorted(folio.keys()):
            entry = folio.get(index)
            yield index, entry & _ORDER_MASK, entry >> _HANDLE_SHIFT

    def _entry(self, head: int) -> int:
        """The entry of the folio whose head is ``head`` (KeyError when none is)."""
        entry = self._folio.get(head)
        if entry < 0:
            raise KeyError(head)
        return entry

    def folio_order(self, head: int) -> int:
        return self._entry(head) & _ORDER_MASK

    def order_or_none(self, head: int) -> int:
        """The order of the folio whose head is ``head``, or -1 when none is."""
        entry = self._folio.get(head)
        return -1 if entry < 0 else entry & _ORDER_MASK

    def handle_of(self, head: int) -> int:
        """The handle (the caller's pfn) of the folio whose head is ``head``."""
        return self._entry(head) >> _HANDLE_SHIFT

    def set_handle(self, head: int, handle: int) -> None:
        """The folio whose head is ``head`` now has ``handle`` (compaction moved it)."""
        if handle < 0:
            raise ValueError(f"expected a handle >= 0, got {handle}")
        entry = self._entry(head)
        self._folio.set(head, handle << _HANDLE_SHIFT | entry & ((1 << _HANDLE_SHIFT) - 1))

    def test_readahead(self, head: int) -> bool:
        """``folio_test_readahead`` of the folio whose head is ``head``."""
        entry = self._folio.get(head)
        return entry >= 0 and bool(entry & _PG_READAHEAD)

    def clear_readahead(self, head: int) -> None:
        """``folio_clear_readahead`` of the folio whose head is ``head``."""
        entry = self._folio.get(head)
        if entry >= 0 and entry & _PG_READAHEAD:
            self._folio.set(head, entry & ~_PG_READAHEAD)

    def __len__(self) -> int:
        return len(self._folio)


# -------------------------------------------------------------------- fadvise

FADVISE: Final = ("normal", "sequential", "random")


def fadvise(mapping: Mapping, advice: str) -> None:
    """``generic_fadvise`` for POSIX_FADV_NORMAL, SEQUENTIAL and RANDOM."""
    ra = mapping.ra
    if advice == "normal":
        ra.ra_pages = mapping.ra_pages
        ra.fmode_random = False
    elif advice == "sequential":
        ra.ra_pages = mapping.ra_pages * 2
        ra.fmode_random = False
    elif advice == "random":
        ra.fmode_random = True
    else:
        raise ValueError(f"advice must be one of {', '.join(FADVISE)}, got {advice!r}")


# -------------------------------------------------------------------- readahead

def _alloc_add(mapping: Mapping, index: int, order: int, readahead: bool, alloc: Alloc,
               free: Free | None, allocated: list[Folio]) -> bool:
    """``filemap_alloc_folio`` then ``filemap_add_folio``. False if the allocation
    failed (-ENOMEM) or a cached page lies in the folio's range (-EEXIST): the kernel
    then frees the new folio, which ``free`` gets; without ``free`` it is not made."""
    if mapping.range_cached(index, 1 << order):
        if free is not None:
            handle = alloc(order)
            if handle is not None:
                free(handle, order)
        return False
    handle = alloc(order)
    if handle is None:
        return False
    # Checked above: the allocation (reclaim, compaction) can only have taken folios.
    mapping._insert(index, order, handle, readahead)
    allocated.append((index, order, handle))
    return True


class _Readahead:
    """The state of one read(2): the mapping, the allocator and what was allocated.
    Its methods are the kernel functions of the same name, ``ractl`` reduced to the
    index each passes on."""

    __slots__ = ("mapping", "alloc", "free", "allocated")

    def __init__(self, mapping: Mapping, alloc: Alloc, free: Free | None) -> None:
        self.mapping = mapping
        self.alloc = alloc
        self.free = free
        self.allocated: list[Folio] = []

    def _add(self, index: int, order: int, readahead: bool) -> bool:
        """``filemap_alloc_folio`` + ``filemap_add_folio``; False on -ENOMEM or -EEXIST."""
        return _alloc_add(self.mapping, index, order, readahead, self.alloc, self.free,
                          self.allocated)

    def page_cache_ra_unbounded(self, index: int, nr_to_read: int,
                                lookahead_size: int) -> int:
        """Allocate min-order folios for [index, index + nr_to_read), skipping cached
        pages; stop at the first failed allocation. Returns the index readahead got to
        (``readahead_index`` after the last ``read_pages``)."""
        m = self.mapping
        min_nrpages = 1 << m.min_order
        start = index & ~(min_nrpages - 1)  # mapping_align_index
        mark = -1
        if lookahead_size <= nr_to_read:
            ra_folio_index = -(-(index + nr_to_read - lookahead_size) // min_nrpages) \
                * min_nrpages
            mark = ra_folio_index - start
        nr_to_read += index - start
        i = 0
        while i < nr_to_read:
            if m.lookup(start + i) != -1:
                # "Page already present? Kick off the current batch ... before
                # continuing with the next batch."
                i += min_nrpages
                continue
            if not self._add(start + i, m.min_order, i == mark):
                break
            i += min_nrpages
        return start + i

    def do_page_cache_ra(self, index: int, nr_to_read: int, lookahead_size: int) -> int:
        """Readahead clamped to the page holding the file's last byte."""
        isize = self.mapping.i_size
        if isize == 0:
            return index
        end_index = (isize - 1) >> PAGE_SHIFT
        if index > end_index:
            return index
        # Don't read past the page containing the last byte of the file
        if nr_to_read > end_index - index:
            nr_to_read = end_index - index + 1
        return self.page_cache_ra_unbounded(index, nr_to_read, lookahead_size)

    def force_page_cache_ra(self, index: int, nr_to_read: int) -> None:
        """FMODE_RANDOM or readahead off: read just the request, in 2 MiB chunks."""
        m = self.mapping
        max_pages = max(m.io_pages, m.ra.ra_pages)
        nr_to_read = min(nr_to_read, max_pages)
        while nr_to_read:
            this_chunk = min(FORCE_RA_CHUNK_PAGES, nr_to_read)
            index = self.do_page_cache_ra(index, this_chunk, 0)
            nr_to_read -= this_chunk

    def page_cache_ra_order(self, start: int) -> None:
        """Allocate the window [ra.start, ra.start + ra.size) in folios of up to
        ``ra.order``, each cut to its index's alignment and to the window and file
        end; on the first failure the rest goes to ``do_page_cache_ra``."""
        m = self.mapping
        ra = m.ra
        index = start
        min_order = m.min_order
        # (i_size - 1) >> PAGE_SHIFT, an unsigned pgoff_t: ULONG_MAX for an empty file
        limit = (m.i_size - 1) >> PAGE_SHIFT if m.i_size else _ULONG_MASK
        mark = index + ra.size - ra.async_size
        if not m.large_folio_support:
            ra.order = 0
        else:
            limit = min(limit, index + ra.size - 1)
            # two min()s of two: compiled, a comparison each (min of three is a call)
            new_order = min(min(m.max_order, ra.order), _ilog2(ra.size))
            new_order = max(new_order, min_order)
            ra.order = new_order
            index &= ~((1 << min_order) - 1)  # mapping_align_index
            failed = False
            while index <= limit:
                order = new_order
                # Align with smaller pages if needed
                if index & ((1 << order) - 1):
                    order = _lowest_set_bit(index)
                # Don't allocate pages past EOF
                while order > min_order and index + (1 << order) - 1 > limit:
                    order -= 1
                # ra_alloc_folio: PG_readahead on the folio holding the mark
                marked = index == (mark & ~((1 << order) - 1))
                if not self._add(index, order, marked):  # -ENOMEM or -EEXIST
                    failed = True
                    break
                index += 1 << order
            # "If there were already pages in the page cache, then we may have left
            # some gaps. Let the regular readahead code take care of this."
            if not failed:
                return
        if ra.size > index - start:
            self.do_page_cache_ra(index, ra.size - (index - start), ra.async_size)

    def ractl_max_pages(self, req_size: int) -> int:
        """The window limit: ra_pages, or up to io_pages for a request above it."""
        m = self.mapping
        max_pages = m.ra.ra_pages
        if req_size > max_pages and m.io_pages > max_pages:
            max_pages = min(req_size, m.io_pages)
        return max_pages

    def page_cache_sync_ra(self, index: int, req_count: int) -> None:
        """A read missed the cache at ``index``: decide the window and read it."""
        m = self.mapping
        ra = m.ra
        do_forced_ra = ra.fmode_random
        # "Even if readahead is disabled, issue this request as readahead as we'll
        # need it to satisfy the requested range."
        if not ra.ra_pages:
            req_count = 1
            do_forced_ra = True
        if do_forced_ra:  # be dumb
            self.force_page_cache_ra(index, req_count)
            return
        max_pages = self.ractl_max_pages(req_count)
        prev_index = (ra.prev_pos & _ULONG_MASK) >> PAGE_SHIFT
        # A start of file, oversized read, or sequential cache miss:
        # trivial case: (index - prev_index) == 1; unaligned reads: == 0
        if not index or req_count > max_pages or ((index - prev_index) & _ULONG_MASK) <= 1:
            ra.start = index
            ra.size = get_init_ra_size(req_count, max_pages)
            ra.async_size = ra.size - req_count if ra.size > req_count else ra.size >> 1
        else:
            # the traces (cached history pages) a sequential stream would leave behind
            miss = page_cache_prev_miss(m, index - 1, max_pages)
            contig_count = index - miss - 1
            # Standalone, small random read. Read as is, and do not pollute the
            # readahead state.
            if contig_count <= req_count:
                self.do_page_cache_ra(index, req_count, 0)
                return
            # File cached from the beginning: a strong indication of long-run stream
            if miss == -1:
                contig_count *= 2
            ra.start = index
            ra.size = min(contig_count + req_count, max_pages)
            ra.async_size = 1
        ra.order = 0
        self.page_cache_ra_order(ra.start)

    def page_cache_async_ra(self, index: int, req_count: int) -> None:
        """A read reached the PG_readahead folio at ``index``: push the window on,
        ramp its size and its folio order (+2) up."""
        m = self.mapping
        ra = m.ra
        if not ra.ra_pages:  # no readahead
            return
        m.clear_readahead(index)  # folio_clear_readahead
        max_pages = self.ractl_max_pages(req_count)
        nr = 1 << m.folio_order(index)
        expected = (ra.start + ra.size - ra.async_size) & ~(nr - 1)
        if index == expected:
            # the expected callback index: assume sequential access
            ra.start += ra.size
            # "In the case of MADV_HUGEPAGE, the actual size might exceed the
            # readahead window."
            ra.size = max(ra.size, get_next_ra_size(ra.size, max_pages))
        else:
            # Hit a marked folio without valid readahead state (interleaved reads):
            # the cached run after it is taken as the old async_size.
            start = page_cache_next_miss(m, index + 1, max_pages)
            if not start or start - index > max_pages:
                return
            ra.start = start
            ra.size = start - index + req_count
            ra.size = get_next_ra_size(ra.size, max_pages)
        ra.order += 2
        align = 1 << min(ra.order, (max_pages & -max_pages).bit_length() - 1)
        end = ra.start + ra.size
        aligned_end = end & ~(align - 1)
        if aligned_end > ra.start:
            ra.size -= end - aligned_end
        ra.async_size = ra.size
        self.page_cache_ra_order(ra.start)

    def filemap_create_folio(self, index: int, alloc: Alloc) -> bool:
        """Readahead left the page being read uncached: one min-order folio with the
        mapping's own gfp."""
        m = self.mapping
        index &= ~((1 << m.min_order) - 1)
        handle = alloc(m.min_order)
        if handle is None:
            return False
        m.insert(index, m.min_order, handle)
        self.allocated.append((index, m.min_order, handle))
        return True


def get_init_ra_size(size: int, max_pages: int) -> int:
    """The first window: the request rounded up to a power of two, then x4 if small
    (<= max/32), x2 if medium (<= max/4), else max."""
    newsize = _roundup_pow_of_two(size)
    if newsize <= max_pages // 32:
        return newsize * 4
    if newsize <= max_pages // 4:
        return newsize * 2
    return max_pages


def get_next_ra_size(cur: int, max_pages: int) -> int:
    """The next window: x4 below max/16, x2 up to max/2, then max."""
    if cur < max_pages // 16:
        return 4 * cur
    if cur <= max_pages // 2:
        return 2 * cur
    return max_pages


def page_cache_next_miss(mapping: Mapping, index: int, max_scan: int) -> int:
    """The first uncached index in [index, index + max_scan), else index + max_scan."""
    i = index
    end = index + max_scan
    while i < end:
        head = mapping.lookup(i)
        if head == -1:
            return i
        i = head + (1 << mapping.folio_order(head))
    return end


def page_cache_prev_miss(mapping: Mapping, index: int, max_scan: int) -> int:
    """The highest uncached index in [index - max_scan + 1, index]; -1 (the kernel's
    ULONG_MAX) if the scan ran below index 0. If every page scanned is cached the
    kernel returns the last index it looked at, index - max_scan + 1."""
    i = index
    while max_scan:
        max_scan -= 1
        if i < 0:
            return -1
        head = mapping.lookup(i)
        if head == -1:
            return i
        if not max_scan:
            return i
        i -= 1
    return i


# -------------------------------------------------------------------- read(2)

def _get_read_batch(mapping: Mapping, index: int, max_index: int) -> list[int]:
    """``filemap_get_read_batch``: heads of the contiguous cached folios from the one
    holding ``index``, at most PAGEVEC_SIZE, ending after a PG_readahead folio."""
    batch: list[int] = []
    head = mapping.lookup(index)
    while head != -1:
        batch.append(head)
        if len(batch) == PAGEVEC_SIZE or mapping.test_readahead(head):
            break
        index = head + (1 << mapping.folio_order(head))
        if index > max_index:
            break
        head = mapping.lookup(index)
    return batch


def read(mapping: Mapping, pos: int, count: int, alloc: Alloc, *,
         fadvise_sequential: bool = False, alloc_fallback: Alloc | None = None,
         free: Free | None = None) -> list[Folio]:
    """The folios one read(2) of ``count`` bytes at byte ``pos`` allocates
    (``filemap_read``), in allocation order. ``fadvise_sequential`` applies
    POSIX_FADV_SEQUENTIAL to the file first, as cat does."""
    if pos < 0 or count < 0:
        raise ValueError("pos and count cannot be negative")
    if fadvise_sequential:
        fadvise(mapping, "sequential")
    if not count:
        return []
    ra = mapping.ra
    if mapping.shmem:
        # shmem_file_read_iter copies cached pages and zeroes for holes; it allocates
        # nothing and keeps no readahead state that matters here.
        ra.prev_pos = min(pos + count, max(pos, mapping.i_size))
        return []
    ractl = _Readahead(mapping, alloc, free)
    min_nrbytes = PAGE_SIZE << mapping.min_order
    end = pos + count
    # "last_index" is the index of the folio beyond the end of the read; it is the
    # same for every filemap_get_pages of this call (ki_pos + iter->count == end).
    last_index = -(-end // min_nrbytes) * min_nrbytes >> PAGE_SHIFT
    ki_pos = pos
    last_pos = ra.prev_pos
    while ki_pos < mapping.i_size:
        index = ki_pos >> PAGE_SHIFT
        batch = _get_read_batch(mapping, index, last_index - 1)
        if not batch:
            ractl.page_cache_sync_ra(index, last_index - index)
            batch = _get_read_batch(mapping, index, last_index - 1)
        if not batch:
            if not ractl.filemap_create_folio(index, alloc_fallback or alloc):
                break  # -ENOMEM
            batch = [mapping.lookup(index)]
        last = batch[-1]
        if mapping.test_readahead(last):
            ractl.page_cache_async_ra(last, last_index - last)
        end_offset = min(mapping.i_size, end)
        for head in batch:
            folio_pos = head << PAGE_SHIFT
            if end_offset < folio_pos:
                break
            order = mapping.order_or_none(head)
            if order < 0:
                # Reclaimed by an allocation this read made (see Departures): the
                # next pass reads it again.
                break
            folio_end = folio_pos + (PAGE_SIZE << order)
            ki_pos = max(ki_pos, min(end_offset, folio_end))
            last_pos = ki_pos
        if ki_pos >= end:
            break
    ra.prev_pos = last_pos
    return ractl.allocated


# -------------------------------------------------------------------- write(2)

def filemap_get_order(size: int) -> int:
    """The folio order ``fgf_set_order`` asks for a write of ``size`` bytes."""
    shift = _ilog2(size) if size > 0 else 0
    return 0 if shift <= PAGE_SHIFT else shift - PAGE_SHIFT


def _write_begin(mapping: Mapping, pos: int, length: int, alloc: Alloc,
                 free: Free | None, allocated: list[Folio]) -> int:
    """``write_begin_get_folio`` -> ``__filemap_get_folio(FGP_WRITEBEGIN |
    fgf_set_order(len))``: the head of the folio holding ``pos``, created if need be;
    -1 if no order down to min_order could be allocated."""
    index = pos >> PAGE_SHIFT
    head = mapping.lookup(index)
    if head != -1:
        return head
    min_order = mapping.min_order
    order = max(min_order, filemap_get_order(length))
    index &= ~((1 << min_order) - 1)  # mapping_align_index
    order = min(order, mapping.max_order)
    # If we're not aligned, allocate a smaller folio
    if index & ((1 << order) - 1):
        order = _lowest_set_bit(index)
    while True:
        if _alloc_add(mapping, index, order, False, alloc, free, allocated):
            return index
        if order <= min_order:
            # -ENOMEM (-EEXIST cannot happen at the index's own min-order folio)
            return -1
        order -= 1


def write(mapping: Mapping, pos: int, count: int, alloc: Alloc, *,
          free: Free | None = None) -> list[Folio]:
    """The folios one buffered write(2) of ``count`` bytes at byte ``pos`` creates
    (``generic_perform_write``), in allocation order. Extends ``i_size``."""
    if pos < 0 or count < 0:
        raise ValueError("pos and count cannot be negative")
    allocated: list[Folio] = []
    chunk = PAGE_SIZE << mapping.max_order  # mapping_max_folio_size
    left = count
    while left:
        offset = pos & (chunk - 1)
        nbytes = min(chunk - offset, left)
        head = _write_begin(mapping, pos, nbytes, alloc, free, allocated)
        if head == -1:
            break  # -ENOMEM: a short write
        folio_end = (head << PAGE_SHIFT) + (PAGE_SIZE << mapping.folio_order(head))
        nbytes = min(nbytes, folio_end - pos)
        pos += nbytes
        left -= nbytes
        # write_end: i_size_write when the write passes the end of the file
        if pos > mapping.i_size:
            mapping.i_size = pos
    return allocated
