"""Objects and references: files as a dentry, an inode (with its LSM blob and, on ext4,
its extent status entries), page-cache pages and XArray nodes.

Follows the reference rules of Linux 6.18 fs/dcache.c, fs/inode.c, mm/shmem.c,
lib/xarray.c, fs/ext4/extents_status.c and security/security.c closely enough for slab
reclaim:

- A positive dentry holds its inode (``d_inode`` keeps ``i_count`` at 1), so an inode is
  unused only once its dentry is gone (``dentry_unlink_inode`` -> ``iput``).
- ``fs="tmpfs"``: ``shmem_mknod`` takes a persistent ``dget``, so a live file's dentry is
  pinned for the file's life, and with it the inode. Nothing of a live tmpfs file can be
  reclaimed. ``fs="disk"`` (ext4-like): a closed file's dentry is unused and sits on the
  dentry LRU (``retain_dentry`` -> ``d_lru_add``; a second ``dput`` sets
  DCACHE_REFERENCED); once the dentry is pruned the inode goes on the inode LRU
  (``iput_final`` -> ``inode_add_lru``). Open files pin their dentry.
- Unlinking a closed file on a disk file system leaves its dentry negative
  (``vfs_unlink`` -> ``d_delete``: the only user, so ``dentry_unlink_inode`` drops the
  inode, which is evicted, and ``dput`` -> ``retain_dentry`` keeps the name hashed on
  the dentry LRU). Negative dentries go only when the super block shrinker (or the
  defragmenter) takes them: the real file server of the shared data kept all 204 930 of
  its dentries after deleting 180 000 of its 200 000 files. An open file's dentry is
  unhashed (``__d_drop``) and freed at the last close. tmpfs dentries are not kept
  (``simple_lookup`` gives them ``always_delete_dentry``).
- Page cache comes in folios (a head pfn and an order; sim/readahead.py decides the
  orders). On a disk file system every folio is on the file LRU (``folio_add_lru``) and
  reclaim evicts it whole (``shrink_folio_list`` -> ``__remove_mapping``). The inode LRU
  follows Weiner's 5.16 rule: ``__inode_add_lru`` skips an inode whose mapping is not
  ``mapping_shrinkable`` (it has page cache), so an unused inode with cached pages stays
  off the inode LRU, and ``__remove_mapping`` puts it there (``inode_add_lru``) when
  reclaim takes its last page. The super block shrinker therefore only finds inodes
  without page cache (``inode_lru_isolate`` drops any other from its list). tmpfs
  pages are shmem: swap-backed, off the file LRU, never reclaimed without swap.
- Evicting an inode by other means (the slab defragmenter's ``reclaim()``, as the
  historical inode callback did with ``invalidate_mapping_pages``) evicts its page
  cache and its XArray nodes; those evictions are counted apart from the LRU's, since a
  later read must refault them. Deleting a file truncates instead; that is not an
  eviction.
- XArray nodes exist only for files of more than one page (a one-page file lives in
  ``xa_head``), 64 slots per node (XA_CHUNK_SHIFT 6); a folio of order k is one
  multi-index entry in a node of level k // 6 (``xas_store`` with sibling entries), so a
  file of 2 MiB folios needs 64 times fewer nodes than one of 4 KiB pages.
- dentries and inodes are freed through ``call_rcu`` when their cache says so
  (sim/slab.py RCU_FREED_CACHES), as are XArray nodes (``radix_tree_node_free``).
- :meth:`FileSystem.shrink` is ``super_cache_scan``: one count over the dentry and inode
  LRUs, the scan split between them in proportion, dentries pruned first, in the super
  block shrinker's batches of 1024 (fs/super.c ``alloc_super``), so that light reclaim at
  DEF_PRIORITY leaves the dcache alone as the kernel's does.
- Every new inode, of every file system (tmpfs too), gets an LSM blob: ``alloc_inode``
  -> ``inode_init_always_gfp`` -> ``security_inode_alloc`` -> ``lsm_inode_alloc``, a
  ``kmem_cache_zalloc`` from ``lsm_inode_cache`` (created in ``security_init`` with
  SLAB_PANIC alone: unmovable slabs, 32 bytes on the kernel of the shared data). An inode
  failing it fails ``alloc_inode``. ``evict`` -> ``destroy_inode`` -> ``__destroy_inode``
  -> ``security_inode_free`` hands it to ``call_rcu`` (``inode_free_by_rcu``). The
  machine creates blobs when its kernel would (``slab.lsm_inode_blob``; a snapshot
  machine: when its slabinfo lists the cache). The real tmpfs capture's cache grew by
  one blob per file and directory (7 040 -> 27 136 objects for 20 000 files).
- ext4 (``es_cache``): a file written from offset 0 by buffered writes has two
  ``extent_status`` entries, whatever its size and however many ``write(2)`` calls.
  The first block's ``ext4_da_write_begin`` -> ``ext4_da_get_block_prep`` ->
  ``ext4_da_map_blocks`` finds the extent status tree empty; ``ext4_map_query_blocks``
  -> ``ext4_ext_map_blocks`` without EXT4_GET_BLOCKS_CREATE finds no extent and caches
  the hole [0, EXT_MAX_BLOCKS) (``ext4_ext_determine_insert_hole`` ->
  ``ext4_es_insert_extent``, EXTENT_STATUS_HOLE); the lookup again under ``i_data_sem``
  (``add_delayed``) finds that hole, setting its referenced bit, and
  ``ext4_insert_delayed_blocks`` -> ``ext4_es_insert_delayed_extent`` cuts the hole to
  [1, EXT_MAX_BLOCKS) and inserts the delayed extent [0, 1). Each later block merges into
  the delayed extent (``__es_insert_extent`` with ``ext4_es_can_be_merged``). Writeback
  (``mpage_map_one_extent`` -> ``ext4_map_blocks`` -> ``ext4_map_create_blocks`` ->
  ``ext4_es_insert_extent``, EXTENT_STATUS_WRITTEN) replaces the delayed entry by a
  written one: still two. The real file server's cache had room for 385 662 entries
  when the last of its 200 000 2 KiB files (and 200 directories, two each) was written,
  1.92 an inode beyond the 408 it started with: the shrinker below had already taken
  some (1.99 at 10 s). ``ext4_evict_inode`` ->
  ``ext4_clear_inode`` -> ``ext4_es_remove_extent(inode, 0, EXT_MAX_BLOCKS)`` frees them
  all, at once (``ext4_es_free_extent``: no RCU). The cache is SLAB_RECLAIM_ACCOUNT
  (``ext4_init_es``), 40 bytes.
- ext4's es shrinker matters here: with no file created or deleted between 50 s and 90
  s, the real capture's entries fell from 385 662 to 343 802 while its slabs stayed.
  Written and hole entries are reclaimable (``ext4_es_must_keep`` is true only for
  delayed ones); ``ext4_es_count`` is ``es_stats_shk_cnt`` (not scaled by
  vfs_cache_pressure) and ``ext4_es_scan`` -> ``__es_shrink`` walks ``s_es_list`` (inodes
  in the order they got a reclaimable entry), each inode's entries in logical block order
  (``es_do_reclaim_extents``): a referenced entry has its bit cleared and is passed, any
  other is freed, the inode stays. Here the entries are on the cache's own list_lru in
  the order they were made, each file's data entry before its referenced hole, and the
  cache's shrinker (sim/slab.py ``shrink_slab``: ``do_shrink_slab`` at DEFAULT_SEEKS in
  SHRINK_BATCH batches, as ``ext4_es_register_shrinker`` sets it up) walks it.

Departures: one LRU per cache rather than per super block (file systems sharing the
dentry cache share its LRU); no directories (every file's dentry is a leaf); no dirty
data or writeback; a read of an evicted page is not modelled (evictions are counted).
No workingset shadow entries: when reclaim takes a file's last folio its XArray nodes
go at once (the kernel keeps them for the shadows until the shadow shrinker,
``shadow_lru_isolate``, takes them), so ``mapping_shrinkable`` is "no page cache". A
file's XArray nodes are sized for its folios when they are added and shrink only when
the file has none left.

Departures of the extent status tree: as there is no writeback, a file's data entry is
written (reclaimable) from its creation, where the kernel keeps it delayed, out of the
shrinker's reach, until writeback (dirty_expire_centisecs, 30 s by default), and the
free and allocation that swap the delayed entry for the written one are left out. A
file's blocks are one extent (mballoc gave them contiguously; fragmented free space
gives more entries). Only files written through ``create(size=...)`` get entries: an
empty file has none, as in the kernel, but fragsim's page-less directories have none
either (the kernel's have two, from ``ext4_append``'s ``ext4_map_blocks`` with
EXT4_GET_BLOCKS_CREATE), and files created with pages but not written (already on disk,
such as the page_cache workload's) get none where the kernel caches one written entry
per on-disk extent as they are read (``ext4_map_query_blocks``; up to 128 MiB an extent,
so 8 for a 1 GiB file). An entry the shrinker took is never looked up again (no read of
a written file maps blocks here). One list of entries, not of inodes; inodes with
EXT4_STATE_EXT_PRECACHED are not passed over first.

Kernel source read: fs/ext4/extents_status.c at intel-lab-lkp/linux 2421fb34e199 (a 6.8
tree; ``ext4_init_es``, ``__es_insert_extent``, ``ext4_es_can_be_merged``,
``__es_shrink``, ``es_do_reclaim_extents``, ``ext4_es_count``/``ext4_es_scan``); the 6.18
fs/ext4/inode.c ``ext4_map_query_blocks``, ``ext4_map_create_blocks`` and
``ext4_da_map_blocks`` as the context of Zhang Yi's "ext4: pass out extent seq counter
when mapping blocks" (v3, linux-fsdevel, 10 Oct 2025, against 6.18-rc) shows them;
fs/ext4/extents.c ``ext4_ext_map_blocks`` -> ``ext4_ext_determine_insert_hole`` (6.13+
copies); fs/ext4/super.c ``ext4_clear_inode``; a 6.18 fs/inode.c (``alloc_inode``,
``destroy_inode``, ``__destroy_inode``) and a 6.12+ security/security.c
(``lsm_inode_alloc``, ``security_inode_alloc``, ``security_inode_free``,
``security_init``).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final

from librt.vecs import append as vec_append
from librt.vecs import extend as vec_extend
from librt.vecs import pop as vec_pop
from librt.vecs import vec
from mypy_extensions import i32, i64, u8

from sim import readahead
from sim.buddy import OWNER_MOVABLE, PageIndex, PageSpace
from sim.migratetype import MIGRATE_MOVABLE
from sim.slab import (
    DEFAULT_SEEKS,
    F_LRU,
    SHRINK_STOP,
    CompiledOwner,
    ShrinkResult,
    SlabCache,
    do_shrink_slab,
)

if TYPE_CHECKING:  # (sim.vmscan imports this module)
    from sim.vmscan import FileLru

# fs/super.c alloc_super: the super block shrinker's batch (s_shrink->batch = 1024), not
# SHRINK_BATCH: do_shrink_slab scans only once total_scan reaches it (or all freeable),
# so at DEF_PRIORITY a dcache of fewer than 2 M unused entries is never scanned.
SB_SHRINK_BATCH: Final = 1024

XA_CHUNK_SHIFT: Final = 6
XA_CHUNK_SIZE: Final = 1 << XA_CHUNK_SHIFT
FS_TYPES: Final = ("tmpfs", "disk")
_NO_FOLIOS: Final[list[tuple[int, int]]] = []  # (a layout _grow_xa_nodes does not read)


def xa_nodes_for(nr_pages: int) -> int:
    """XArray nodes that hold a dense mapping of ``nr_pages`` pages (0 for one page)."""
    if nr_pages <= 1:
        return 0
    nodes = 0
    level = nr_pages
    while level > 1:
        level = -(-level // XA_CHUNK_SIZE)
        nodes += level
    return nodes


def xa_nodes_for_folios(folios: Iterable[tuple[int, int]]) -> int:
    """XArray nodes that hold folios given as (index, order), each a multi-index entry
    stored in a node of level ``order // 6`` (0 when the file is one order-0 page at
    index 0, which lives in ``xa_head``)."""
    entries = list(folios)
    if not entries:
        return 0
    top = max(index + (1 << order) - 1 for index, order in entries)
    if top == 0:
        return 0  # a single page at index 0: xa_head
    # The tree's height: the root node's level covers index ``top``.
    height = 0
    while top >> (XA_CHUNK_SHIFT * (height + 1)):
        height += 1
    nodes = 0
    for level in range(height + 1):
        shift = XA_CHUNK_SHIFT * (level + 1)
        nodes += len({index >> shift for index, order in entries
                      if order // XA_CHUNK_SHIFT <= level})
    return nodes


def _xa_height(top: int) -> int:
    """The root node's level of an XArray whose last index is ``top`` (-1: no node)."""
    if top == 0:
        return -1
    height = 0
    while top >> (XA_CHUNK_SHIFT * (height + 1)):
        height += 1
    return height



class XaNodeCounts:
    """The XArray nodes a file's cached folios need, each with the number of folios
    under it, for a file that folios are added to one at a time (``add_folio``), held
    by level. A folio of order k at index i needs one node per level from k // 6 up to
    the root (none when the tree is one page, in ``xa_head``). The node at level L that
    covers page index i is entry ``i >> (XA_CHUNK_SHIFT * (L + 1))`` of level L's typed
    vector (grown as indexes come), and ``nr`` is the number of nodes any folio needs.
    ``top`` is the last index the folios cover, which decides the tree's height: keys
    do not depend on it otherwise, so a new height means new counts (``add_folio``).
    In place of a dict of node keys -> count: no int object and no hashing per node
    (tests/test_objects.py holds it to that dict)."""

    __slots__ = ("levels", "nr", "top", "height")

    def __init__(self, top: int) -> None:
        self.top = top
        self.height = _xa_height(top)
        self.levels: list[vec[i32]] = [vec[i32]() for _ in range(self.height + 1)]
        self.nr = 0

    def missing(self, index: int, order: int) -> int:
        """The nodes the folio (index, order) needs that no folio counted needs."""
        n = 0
        level = order // XA_CHUNK_SHIFT
        while level <= self.height:
            counts = self.levels[level]
            pos = index >> (XA_CHUNK_SHIFT * (level + 1))
            if pos >= len(counts) or not counts[pos]:
                n += 1
            level += 1
        return n

    def add(self, index: int, order: int) -> None:
        """Count the folio (index, order) under each node it needs."""
        level = order // XA_CHUNK_SHIFT
        while level <= self.height:
            counts = self.levels[level]
            pos = index >> (XA_CHUNK_SHIFT * (level + 1))
            if pos >= len(counts):
                while len(counts) <= pos:
                    counts = vec_append(counts, 0)
                self.levels[level] = counts
            c = int(counts[pos])
            if not c:
                self.nr += 1
            counts[pos] = c + 1
            level += 1

    def remove(self, index: int, order: int) -> None:
        """The folio (index, order) is gone: its nodes count one folio fewer (KeyError
        when one was not counted)."""
        level = order // XA_CHUNK_SHIFT
        while level <= self.height:
            counts = self.levels[level]
            pos = index >> (XA_CHUNK_SHIFT * (level + 1))
            c = int(counts[pos]) - 1 if pos < len(counts) else -1
            if c < 0:
                raise KeyError(f"no folio counted under the level-{level} node {pos}")
            counts[pos] = c
            if not c:
                self.nr -= 1
            level += 1


def first_write_layout(size: int, max_order: int) -> list[tuple[int, int]]:
    """The folios one ``write(2)`` of ``size`` bytes at offset 0 of an empty file
    creates when every allocation succeeds: sim/readahead.py ``write`` (the
    ``generic_perform_write`` loop, ``fgf_set_order`` of each chunk, cut to the index's
    alignment) without its Mapping, since nothing is cached yet; a test holds the two
    equal."""
    page_shift = readahead.PAGE_SHIFT
    chunk = readahead.PAGE_SIZE << max_order
    layout: list[tuple[int, int]] = []
    pos = 0
    left = size
    while left:
        nbytes = min(chunk - (pos & (chunk - 1)), left)
        index = pos >> page_shift
        shift = nbytes.bit_length() - 1
        order = min(0 if shift <= page_shift else shift - page_shift, max_order)
        if index & ((1 << order) - 1):
            order = (index & -index).bit_length() - 1
        layout.append((index, order))
        n = min(nbytes, ((index + (1 << order)) << page_shift) - pos)
        pos += n
        left -= n
    return layout


_WRITE_LAYOUTS: Final[dict[tuple[int, int, bool, bool], tuple[list[tuple[int, int]], int]]] = {}
# One write(2) of the whole file, by its size, for each (large_folios, shmem): an int key,
# where the general memo hashes a tuple made for each lookup.
_ONE_WRITE_LAYOUTS: Final[list[dict[int, tuple[list[tuple[int, int]], int]]]] = [{}, {}, {}, {}]


def write_layout(size: int, write_size: int, large_folios: bool, shmem: bool
                 ) -> tuple[list[tuple[int, int]], int]:
    """The folios, as (index, order), that writing ``size`` bytes from offset 0 in
    ``write(2)`` calls of ``write_size`` bytes creates when every allocation succeeds
    (sim/readahead.py ``write``), and the XArray nodes they need. Memoized (one
    write(2) by its size alone): a file system creates many files of the same sizes.
    The lists returned are shared: callers read them only."""
    if write_size >= size:  # one write(2): the layout depends on the size alone
        one = _ONE_WRITE_LAYOUTS[2 * large_folios + shmem]
        known = one.get(size)
        if known is None:
            if len(one) >= 1 << 16:
                one.clear()
            direct = first_write_layout(size, readahead.MAX_PAGECACHE_ORDER if large_folios
                                        and not shmem else 0)
            known = one[size] = (direct, xa_nodes_for_folios(direct))
        return known
    key = (size, write_size, large_folios, shmem)
    known = _WRITE_LAYOUTS.get(key)
    if known is not None:
        return known
    if len(_WRITE_LAYOUTS) >= 1 << 16:
        _WRITE_LAYOUTS.clear()
    m = readahead.Mapping(max_order=readahead.MAX_PAGECACHE_ORDER,
                          large_folios=large_folios and not shmem, shmem=shmem)
    count = [0]

    def alloc(order: int) -> int:
        count[0] += 1
        return count[0]

    layout: list[tuple[int, int]] = []
    pos = 0
    while pos < size:
        n = min(write_size, size - pos)
        layout.extend((index, order) for index, order, _ in readahead.write(m, pos, n, alloc))
        pos += n
    result = (layout, xa_nodes_for_folios(layout))
    _WRITE_LAYOUTS[key] = result
    return result


@dataclass
class FsStats:
    files_created: int = 0
    create_failed: int = 0
    files_unlinked: int = 0
    lookups: int = 0  # an evicted file opened again: dentry and inode allocated anew
    dentries_evicted: int = 0
    dentries_negative: int = 0  # dentries unlink left negative (d_delete)
    inodes_evicted: int = 0
    page_cache_evicted: int = 0  # pages evicted with their inode (defragmenter)
    page_cache_reclaimed: int = 0  # pages the file LRU reclaimed (shrink_folio_list)
    page_cache_truncated: int = 0  # pages freed because their file was deleted
    extents_reclaimed: int = 0  # extent_status entries the es shrinker freed

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class File:
    """One file: its in-memory objects (-1 when not cached) and state.

    Its cached folios are two typed vectors, in the order they were added: the head
    pfn (-1 once the folio has left) and the file index it holds; the file system's
    per-pfn vectors give each head pfn's file and position (``page->mapping`` and, here,
    the position rather than ``page->index``). A folio's order is the zone's.

    A plain class rather than a dataclass: mypyc compiles this ``__init__``, where a
    dataclass's would be generated, interpreted code (one call per file created).
    """

    __slots__ = ("fid", "nr_pages", "dentry", "inode", "_folios", "nr_folios",
                 "slot", "nr_cached", "_xa_nodes", "xa_counts", "open_count",
                 "linked", "mapping", "lsm", "_es0", "_es1")

    def __init__(self, fid: int, nr_pages: int) -> None:
        self.fid = fid
        self.nr_pages = nr_pages  # the file's size in pages (i_size)
        self.dentry = -1
        self.inode = -1
        # Cached folios, in the order added, two entries each in one typed vector:
        # head pfn (-1: gone since) and file index; folio k at 2k and 2k + 1 (one
        # buffer a file, where a vector each cost a second one).
        self._folios: vec[i32] = vec[i32]()
        self.nr_folios = 0  # live folios in _folios
        self.slot = -1  # this file's slot in its file system's table while it has folios
        self.nr_cached = 0  # pages in those folios (mapping->nrpages)
        # Its XArray nodes' object ids (a typed vector, as most files have one or none:
        # a list and its int objects cost three times as much).
        self._xa_nodes: vec[i32] = vec[i32]()
        # The XArray nodes the cached folios need, with the number of folios that need
        # each; kept for files that folios are added to one at a time (add_folio).
        self.xa_counts: XaNodeCounts | None = None
        self.open_count = 0
        self.linked = True
        self.mapping: readahead.Mapping | None = None  # for files read through it
        self.lsm = -1  # the inode's LSM blob (lsm_inode_cache), -1 when none
        # The inode's extent_status entries (ext4), in logical block order: at most two
        # (the data extent and the hole a write leaves), -1 where none, the first taken
        # before the second. Two ints, not a typed vector: that was a buffer of its own
        # for every file (45 MiB of a 256 GiB file server's).
        self._es0 = -1
        self._es1 = -1

    @property
    def folios(self) -> dict[int, int]:
        """The cached folios, head pfn -> file index, in the order they were added (a
        new dict: a copy)."""
        fo = self._folios
        return {int(fo[k]): int(fo[k + 1]) for k in range(0, len(fo), 2) if int(fo[k]) >= 0}

    @property
    def xa_nodes(self) -> list[int]:
        """Its XArray nodes' object ids (a new list: a copy)."""
        return [int(oid) for oid in self._xa_nodes]

    @property
    def extents(self) -> list[int] | None:
        """Its extent_status entries' object ids in logical block order (a new list),
        or None when it has none."""
        if self._es0 < 0:
            return None
        return [self._es0] if self._es1 < 0 else [self._es0, self._es1]

    @property
    def pages(self) -> list[int]:
        """The cached folios' head pfns, in the order they were added."""
        fo = self._folios
        return [int(fo[k]) for k in range(0, len(fo), 2) if int(fo[k]) >= 0]

    def __repr__(self) -> str:
        return (f"File(fid={self.fid}, nr_pages={self.nr_pages}, dentry={self.dentry}, "
                f"inode={self.inode}, lsm={self.lsm}, extents={self.extents}, "
                f"folios={self.folios}, xa_nodes={self.xa_nodes}, "
                f"open_count={self.open_count}, linked={self.linked})")


class Negative:
    """What a negative dentry stands for: a name without a file (``d_delete`` ->
    ``dentry_unlink_inode``). One instance, ``NEGATIVE``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEGATIVE"


NEGATIVE: Final = Negative()


class ByOid:
    """What each object id of a cache stands for (a file, or the file system that
    holds it), or None: a list indexed by id, as ids are dense (``SlabCache`` reuses
    freed ones), so a lookup costs no hashing and no int object."""

    __slots__ = ("_of",)

    def __init__(self) -> None:
        self._of: list[Any] = []

    def get(self, oid: int) -> Any:
        of = self._of
        return of[oid] if 0 <= oid < len(of) else None

    def __getitem__(self, oid: int) -> Any:
        value = self.get(oid)
        if value is None:
            raise KeyError(oid)
        return value

    def __setitem__(self, oid: int, value: Any) -> None:
        if oid < 0:
            raise ValueError(f"expected an object id >= 0, got {oid}")
        of = self._of
        if oid >= len(of):  # by a quarter at least: a cache's ids grow one at a time
            of.extend([None] * (max(oid + 1, len(of) + (len(of) >> 2) + 64) - len(of)))
        of[oid] = value

    def __delitem__(self, oid: int) -> None:
        if self.get(oid) is None:
            raise KeyError(oid)
        self._of[oid] = None

    def discard(self, oid: int) -> None:
        if 0 <= oid < len(self._of):
            self._of[oid] = None


class FileTable:
    """A file system's files by id: ``files[fid]``, ``get``, ``in``, ``del``, ``len`` and
    ``values`` (in the order the files were made, as a dict's). The ids are keys of a
    sim/readahead.py ``FolioTable`` whose values are places in a list of the files,
    places reused: 30-60 bytes a file and no int object, where a dict entry and its int
    key cost about 80 (a file server keeps a million files). Iterating it gives the ids
    in that order too. tests/test_objects.py holds it to a dict. A simulator structure,
    not a kernel one."""

    __slots__ = ("_place", "_files", "_free")

    def __init__(self) -> None:
        self._place = readahead.FolioTable()  # fid -> place in _files
        self._files: list[File | None] = []
        self._free: vec[i32] = vec[i32]()  # places free for reuse, a stack

    def __len__(self) -> int:
        return len(self._place)

    def get(self, fid: int) -> File | None:
        place = self._place.get(fid) if fid >= 0 else -1
        return None if place < 0 else self._files[place]

    def __getitem__(self, fid: int) -> File:
        f = self.get(fid)
        if f is None:
            raise KeyError(fid)
        return f

    def __contains__(self, fid: int) -> bool:
        return fid >= 0 and self._place.get(fid) >= 0

    def __setitem__(self, fid: int, f: File) -> None:
        if fid < 0:
            raise ValueError(f"expected a file id >= 0, got {fid}")
        place = self._place.get(fid)
        if place >= 0:
            self._files[place] = f
            return
        if len(self._free):
            self._free, top = vec_pop(self._free)
            place = int(top)
            self._files[place] = f
        else:
            place = len(self._files)
            self._files.append(f)
        self._place.set(fid, place)

    def __delitem__(self, fid: int) -> None:
        place = self._place.pop(fid) if fid >= 0 else -1
        if place < 0:
            raise KeyError(fid)
        self._files[place] = None
        self._free = vec_append(self._free, place)

    def values(self) -> list[File]:
        """The files, in the order they were made (ids are given in that order)."""
        files = self.unordered()
        files.sort(key=_fid_of)
        return files

    def __iter__(self) -> Iterator[int]:
        """The ids, in the order the files were made (a dict's keys)."""
        return iter([f.fid for f in self.values()])

    def unordered(self) -> list[File]:
        """The files in no particular order, for what does not depend on it (a count)."""
        return [f for f in self._files if f is not None]


def _fid_of(f: File) -> int:
    return f.fid


class FsByOid:
    """Which file system each object id of a cache belongs to, or None: ``ByOid``'s
    ``get``, set, ``del`` and ``discard``, with a byte per id (the file system's place
    among those seen, 0 for none) instead of an 8-byte reference: the ids of a cache are
    many (the dentries of a file server run to millions), its file systems few (at most
    255)."""

    __slots__ = ("_of", "_fs")

    def __init__(self) -> None:
        self._of: vec[u8] = vec[u8]()
        self._fs: list[FileSystem] = []

    def get(self, oid: int) -> FileSystem | None:
        of = self._of
        if 0 <= oid < len(of):
            k = int(of[oid])
            if k:
                return self._fs[k - 1]
        return None

    def __setitem__(self, oid: int, fs: FileSystem) -> None:
        if oid < 0:
            raise ValueError(f"expected an object id >= 0, got {oid}")
        fss = self._fs
        k = 0
        for i in range(len(fss)):  # noqa: SIM110 (a loop: no generator per object)
            if fss[i] is fs:
                k = i + 1
                break
        if not k:
            if len(fss) >= 255:
                raise ValueError("expected at most 255 file systems on one cache")
            fss.append(fs)
            k = len(fss)
        n = len(self._of)
        if oid >= n:  # by a quarter at least: a cache's ids grow one at a time
            self._of = vec_extend(self._of, bytes(max(oid + 1, n + (n >> 2) + 64) - n))
        self._of[oid] = k

    def __delitem__(self, oid: int) -> None:
        if self.get(oid) is None:
            raise KeyError(oid)
        self._of[oid] = 0

    def discard(self, oid: int) -> None:
        if 0 <= oid < len(self._of):
            self._of[oid] = 0


def _push_folio(got: vec[i64], pfn: int, index: int, order: int) -> vec[i64]:
    """``create``'s folios: (head pfn, index, order) appended."""
    got = vec_append(got, pfn)
    got = vec_append(got, index)
    return vec_append(got, order)


class FolioSource:
    """A compiled ``FileSystem.alloc_folio`` (sim/page_alloc.py ``FolioAlloc``): called
    as ``folio_pfn(order, cpu)``, natively when compiled, with -1 for no folio. Any
    other callable ``alloc_folio(order, cpu) -> pfn or None`` is called as one."""

    def folio_pfn(self, order: int, cpu: int) -> int:
        raise NotImplementedError


class CacheOwners(CompiledOwner):
    """The owner (``sim.slab.ObjectOwner``) of one cache shared by several file systems:
    dispatches by object id; objects of no file system get the cache's default rules."""

    def __init__(self) -> None:
        self.by_oid = FsByOid()  # object id -> FileSystem

    def reclaimable(self, cache: SlabCache, oid: int) -> bool:
        fs = self.by_oid.get(oid)
        return cache.default_reclaimable(oid) if fs is None else fs.reclaimable(cache, oid)

    def evict(self, cache: SlabCache, oid: int, cpu: int) -> int:
        fs = self.by_oid.get(oid)
        return cache.default_evict(oid, cpu) if fs is None else fs.evict(cache, oid, cpu)


def _owners(cache: SlabCache) -> CacheOwners:
    if cache.owner is None:
        cache.owner = CacheOwners()
    if not isinstance(cache.owner, CacheOwners):
        raise ValueError(f"cache {cache.name} already has an owner of another kind")
    return cache.owner


class FileSystem:
    """Creates, opens, closes and unlinks files through the slab caches and the zone."""

    def __init__(self, zone: PageSpace, dentry_cache: SlabCache, inode_cache: SlabCache,
                 xa_cache: SlabCache | None = None, *, fs: str = "disk",
                 vfs_cache_pressure: int = 100,
                 alloc_folio: FolioSource | Callable[[int, int], int | None] | None = None,
                 large_folios: bool = True, es_cache: SlabCache | None = None,
                 lsm_cache: SlabCache | None = None) -> None:
        if fs not in FS_TYPES:
            raise ValueError(f"expected fs one of {', '.join(FS_TYPES)}, got {fs!r}")
        self.zone = zone
        # alloc_folio(order, cpu) -> head pfn: a page-cache folio. The engine passes its
        # full allocation path (slow path, kswapd); alone, the zone's fast path is used.
        self.alloc_folio: FolioSource | Callable[[int, int], int | None] = alloc_folio or (
            lambda order, cpu: zone.alloc(order, MIGRATE_MOVABLE, cpu, OWNER_MOVABLE))
        self.fs = fs
        # mapping_max_folio_order: ext4 (6.16+) and xfs set large folios; tmpfs with
        # huge=never (the default) does not. False is the pre-folio what-if.
        self.large_folios = large_folios and fs == "disk"
        self.dcache = dentry_cache
        self.icache = inode_cache
        self.xa_cache = xa_cache
        self.vfs_cache_pressure = vfs_cache_pressure
        self.files = FileTable()
        self._next_fid = 0
        self._dentry_owner = _owners(dentry_cache)
        self._inode_owner = _owners(inode_cache)
        self._xa_owner = _owners(xa_cache) if xa_cache is not None else None
        # ext4's extent status tree (disk only; the caller passes it for ext4 alone) and
        # the LSM inode blob (every inode, when the kernel's LSMs ask for one).
        if es_cache is not None and fs != "disk":
            raise ValueError(f"extent_status entries are ext4's: expected fs disk, got {fs!r}")
        self.es_cache = es_cache
        self.lsm_cache = lsm_cache
        self._es_owner = _owners(es_cache) if es_cache is not None else None
        if es_cache is not None:
            # ext4_es_count: es_stats_shk_cnt as it is, not vfs_pressure_ratio'd.
            es_cache.vfs_cache_pressure = 100
        self._by_dentry = ByOid()  # dentry id -> File
        self._by_inode = ByOid()  # inode id -> File
        self._by_extent = ByOid()  # extent_status id -> File
        # The page cache's tables, as the kernel's ``page->mapping`` and ``index``: per
        # pfn (typed vectors over the zone, grown on demand, or the machine's, shared
        # with other owners), the slot of the file whose folio is headed there and the
        # folio's position in that file's list; the slots hold the files that have page
        # cache, reused once one has none. The per-pfn entries are trusted only where
        # the file's list names the pfn back (``holds_page``): at another pfn they are
        # another owner's, or the free lists' links (``share_page_slots``).
        self._page_slot: vec[i32] = vec[i32]()
        self._page_pos: vec[i32] = vec[i32]()
        self._page_size = 0  # pfns those vectors cover
        self._pos_shared = False  # _page_pos is the machine's page_index (share_page_index)
        self._slot_shared = False  # _page_slot is the machine's (share_page_slots)
        self._slots: list[File | None] = []
        self._free_slots: list[int] = []
        # The file LRU a disk file system's folios go on (sim/vmscan.py FileLru) and
        # this file system's owner id there; set by ``attach_lru``.
        self.lru: FileLru | None = None
        self.lru_owner = -1
        self.nr_deferred = 0  # the super block shrinker's nr_deferred
        self.nr_dentry_negative = 0  # dentry-state's nr_negative: deleted files' dentries
        self.stats = FsStats()

    def attach_lru(self, lru: FileLru, owner: int) -> None:
        """Put this disk file system's page cache on ``lru`` as ``owner`` (its evict
        callbacks are ``evict_folio``/``evict_folios``). tmpfs pages never go there."""
        self.lru = lru if self.fs == "disk" else None
        self.lru_owner = owner

    # ------------------------------------------------------------------ files

    def create(self, nr_pages: int = 0, cpu: int = 0, *, keep_open: bool = False,
               folios: list[tuple[int, int]] | None = None, size: int | None = None,
               write_size: int | None = None,
               mapping: readahead.Mapping | None = None) -> int | None:
        """Create a file and return its id, or None (and nothing allocated) when an
        allocation fails. Its page cache is, in order of precedence:

        - ``size`` bytes written from offset 0 in ``write(2)`` calls of ``write_size``
          bytes (default: one call), with the folio orders 6.18's buffered write gives
          them (sim/readahead.py ``write``); a short write (no order-0 page) fails;
        - ``folios``, as (index, order) pairs, allocated as given;
        - one order-0 folio for each of ``nr_pages`` pages.

        ``mapping`` (a sim/readahead.py Mapping) is kept for later reads of the file."""
        if nr_pages < 0 or (size is not None and size < 0):
            raise ValueError(f"expected a file size >= 0, got {size if size else nr_pages}")
        if size is not None:
            nr_pages = -(-size // self.zone.page_size)
        f = File(self._next_fid, nr_pages)
        if not self._instantiate(f, cpu):
            self.stats.create_failed += 1
            return None
        # The folios allocated, (head pfn, index, order) at 3k, 3k + 1, 3k + 2: C
        # integers, where a list of tuples made four objects a folio.
        got: vec[i64] = vec[i64]()
        want_nodes = -1
        if size is not None:
            chunk = write_size or size
            shmem = self.fs == "tmpfs"
            plan, want_nodes = write_layout(size, chunk, self.large_folios, shmem)
            failed_at = -1
            for k, (index, order) in enumerate(plan):
                pfn = self._alloc_folio_pfn(order, cpu)
                if pfn < 0:
                    failed_at = k
                    break
                got = _push_folio(got, pfn, index, order)
            if failed_at >= 0:
                # The write path's fallback: replay the writes through sim/readahead.py
                # from the write(2) call of the refused folio, its first allocation
                # refused again without asking the allocator twice.
                want_nodes = -1
                ok, got = self._write_fallback(got, plan[failed_at], size, chunk, shmem, cpu)
                if not ok:
                    self._free_folios(got, cpu)
                    self._rollback(f, cpu)
                    return None
            # The folios allocated, as (index, order): the plan itself when it all was.
            layout = plan if failed_at < 0 else [
                (int(got[k + 1]), int(got[k + 2])) for k in range(0, len(got), 3)]
        else:
            layout = [(i, 0) for i in range(nr_pages)] if folios is None else folios
            for index, order in layout:
                pfn = self._alloc_folio_pfn(order, cpu)
                if pfn < 0:
                    self._free_folios(got, cpu)
                    self._rollback(f, cpu)
                    return None
                got = _push_folio(got, pfn, index, order)
        f.mapping = mapping
        if (not self._grow_xa_nodes(f, layout, cpu, want_nodes)
                or (size and self.es_cache is not None and not self._alloc_extents(f, cpu))):
            self._free_folios(got, cpu)
            self._rollback(f, cpu)
            return None
        for k in range(0, len(got), 3):
            self._add_folio(f, int(got[k]), int(got[k + 1]), int(got[k + 2]))
        self._next_fid += 1
        self.files[f.fid] = f
        self.stats.files_created += 1
        # d_instantiate + unlock_new_inode: now reachable.
        self.dcache.set_published(f.dentry, True)
        self.icache.set_published(f.inode, True)
        if self.fs == "tmpfs":
            self.dcache.get_ref(f.dentry)  # shmem_mknod: dget, held while linked
        if keep_open:
            self.dcache.get_ref(f.dentry)
            f.open_count = 1
        elif self.fs == "disk":
            self.dcache.lru_add(f.dentry)
        return f.fid

    def _add_folio(self, f: File, pfn: int, index: int, order: int) -> None:
        """``filemap_add_folio``: in the mapping and, on a disk file system, on the
        file LRU as the newest (``folio_add_lru``)."""
        self._page_cache_add(f, pfn, index)
        # Movable from now on: an owner follows it (sim/page_alloc.py FolioAlloc
        # allocates page-cache folios held until here).
        self.zone.set_owner(pfn, OWNER_MOVABLE)
        f.nr_cached += 1 << order
        if self.lru is not None:
            self.lru.add(pfn, self.lru_owner, order)

    def add_folio(self, fid: int, pfn: int, index: int, order: int, cpu: int = 0) -> bool:
        """A folio read into file ``fid`` (readahead, sim/readahead.py): into the mapping
        and onto the LRU, with the XArray nodes it needs. False (nothing kept) when an
        XArray node cannot be allocated."""
        f = self.files[fid]
        counts = f.xa_counts
        top = max(counts.top if counts is not None else 0, index + (1 << order) - 1)
        if counts is None or _xa_height(top) != counts.height:
            # The tree grows a level (rare): every folio's path, from scratch.
            counts = XaNodeCounts(top)
            fo = f._folios
            for k in range(0, len(fo), 2):
                p = int(fo[k])
                if p >= 0:
                    counts.add(int(fo[k + 1]), self.zone.order_of(p))
        counts.top = top
        f.xa_counts = counts
        want = counts.nr + counts.missing(index, order)
        if not self._grow_xa_nodes(f, _NO_FOLIOS, cpu, want):
            return False
        counts.add(index, order)
        self._add_folio(f, pfn, index, order)
        return True

    def read(self, fid: int, pos: int, count: int, alloc: Callable[[int], int | None],
             alloc_fallback: Callable[[int], int | None],
             free: Callable[[int, int, int], object], allocated_by_order: list[int],
             cpu: int = 0) -> tuple[int, bool]:
        """One read(2) of ``count`` bytes at byte ``pos`` of file ``fid``, which has a
        Mapping (``filemap_read``): the folios sim/readahead.py allocates (``alloc``,
        ``alloc_fallback``: the readahead and ``filemap_create_folio`` allocations) go
        into the file with the XArray nodes they need, one that gets none is freed
        again (``free(pfn, order, cpu)``), and the folios read are marked accessed
        (``mark_read``). Counts each folio kept in ``allocated_by_order``; returns the
        pages newly cached and whether the page at ``pos`` is cached after it (False:
        -ENOMEM, not even the page being read)."""
        f = self.files[fid]
        mapping = f.mapping
        assert mapping is not None
        prev_pos = mapping.ra.prev_pos
        before = mapping.nr_cached
        for index, order, pfn in readahead.read(mapping, pos, count, alloc,
                                                alloc_fallback=alloc_fallback):
            if self.add_folio(fid, pfn, index, order, cpu):
                allocated_by_order[order] += 1
            else:  # no XArray node for it: the folio is dropped again
                mapping.remove(index)
                free(pfn, order, cpu)
        read = mapping.nr_cached - before
        if self.lru is not None:
            self.mark_read(mapping, pos, count, prev_pos)
        return read, mapping.shmem or mapping.lookup(pos >> readahead.PAGE_SHIFT) >= 0

    def mark_read(self, mapping: readahead.Mapping, pos: int, count: int,
                  prev_pos: int) -> None:
        """``filemap_read``'s ``folio_mark_accessed`` of the folios it copies from: each
        folio of [pos, pos + count) once, the first one only if the previous read did
        not end in it ("When a read accesses the same folio several times, only mark it
        as accessed the first time": ``pos_same_folio(iocb->ki_pos, last_pos - 1)``). A
        sequential stream so marks each folio once (PG_referenced: no protection from
        reclaim); a later read of it activates it."""
        lru = self.lru
        assert lru is not None
        end = min(pos + count, mapping.i_size)
        if end <= pos:
            return
        page_shift = readahead.PAGE_SHIFT
        index = pos >> page_shift
        last = (end - 1) >> page_shift
        first = True
        while index <= last:
            head = mapping.lookup(index)
            if head < 0:
                index += 1
                first = False
                continue
            order = mapping.folio_order(head)
            if not (first and prev_pos > 0
                    and (pos >> (page_shift + order))
                    == ((prev_pos - 1) >> (page_shift + order))):
                lru.mark_accessed(mapping.handle_of(head))
            first = False
            index = head + (1 << order)

    def _write_fallback(self, got: vec[i64], refused: tuple[int, int], size: int,
                        chunk: int, shmem: bool, cpu: int) -> tuple[bool, vec[i64]]:
        """Finish a file's writes through ``readahead.write`` after the folio
        ``refused`` (index, order) could not be allocated; ``got`` holds the folios
        allocated before it (as ``create`` keeps them) and the rest are added to it.
        Returns (False on a short write, ``got``)."""
        m = readahead.Mapping(max_order=readahead.MAX_PAGECACHE_ORDER,
                              large_folios=self.large_folios, shmem=shmem)
        for k in range(0, len(got), 3):
            m.insert(int(got[k + 1]), int(got[k + 2]), int(got[k]))
        index0 = refused[0]
        pos = (index0 * self.zone.page_size) // chunk * chunk  # its write(2) call
        m.i_size = pos
        refuse = [True]

        def alloc(order: int) -> int | None:
            if refuse[0]:
                refuse[0] = False
                return None  # the allocation that already failed
            pfn = self._alloc_folio_pfn(order, cpu)
            return None if pfn < 0 else pfn

        while pos < size:
            n = min(chunk, size - pos)
            for head, head_order, handle in readahead.write(m, pos, n, alloc):
                got = _push_folio(got, int(handle), head, head_order)  # type: ignore[call-overload]
            pos += n
            if m.i_size < pos:
                return False, got
        return True, got

    def _alloc_folio_pfn(self, order: int, cpu: int) -> int:
        """``alloc_folio(order, cpu)``, -1 for None: a FolioSource (the engine's) is
        called natively when compiled, with no Python int made for the pfn."""
        source = self.alloc_folio
        if isinstance(source, FolioSource):
            return source.folio_pfn(order, cpu)
        pfn = source(order, cpu)
        return -1 if pfn is None else pfn

    def _free_folios(self, got: vec[i64], cpu: int) -> None:
        """Free the folios ``create`` allocated for a file it gives up."""
        for k in range(0, len(got), 3):
            self.zone.free(int(got[k]), int(got[k + 2]), cpu)

    def _grow_xa_nodes(self, f: File, layout: list[tuple[int, int]], cpu: int,
                       want: int = -1) -> bool:
        """Allocate XArray nodes until the file has those ``layout`` needs (``want``,
        when the caller knows it)."""
        if self.xa_cache is None:
            return True
        if want < 0:
            want = xa_nodes_for_folios(layout)
        xa = self.xa_cache
        owner = self._xa_owner
        assert owner is not None  # (narrowed: compiled, an Optional's attribute is generic)
        while len(f._xa_nodes) < want:
            oid = xa.alloc_id(cpu)
            if oid < 0:
                return False
            f._xa_nodes = vec_append(f._xa_nodes, oid)
            owner.by_oid[oid] = self
        return True

    def _free_xa_nodes(self, f: File, cpu: int) -> None:
        f.xa_counts = None
        if not len(f._xa_nodes):
            return
        nodes = f._xa_nodes
        xa = self.xa_cache
        owner = self._xa_owner
        assert xa is not None and owner is not None
        for k in range(len(nodes)):
            oid = int(nodes[k])
            del owner.by_oid[oid]
            if xa.rcu_free:
                xa.free_rcu(oid, cpu)
            else:
                xa.free(oid, cpu)
        f._xa_nodes = vec[i32]()

    def _alloc_extents(self, f: File, cpu: int) -> bool:
        """The extent status tree a buffered write from offset 0 leaves a new ext4 file
        with (see the module docstring): the hole ``ext4_ext_determine_insert_hole``
        caches, then the file's data extent (delayed, written at once here, as fragsim
        has no writeback). Both go on the es shrinker's list, data first (logical block
        order); the hole is referenced (``ext4_da_map_blocks``' second lookup found it).
        False when the data entry cannot be allocated (the kernel's ``__GFP_NOFAIL``
        retry, here a failed create); a hole that cannot be allocated is not cached."""
        es = self.es_cache
        assert es is not None
        hole = es.alloc_id(cpu)  # GFP_ATOMIC; -ENOMEM (-1) leaves the hole uncached
        data = es.alloc_id(cpu)
        if data < 0:
            if hole >= 0:
                es.free(hole, cpu)
            return False
        f._es0 = data
        f._es1 = hole
        owner = self._es_owner
        assert owner is not None
        for k in range(2):
            oid = data if k == 0 else hole
            if oid >= 0:
                self._by_extent[oid] = f
                owner.by_oid[oid] = self
                es.lru_add(oid)
        if hole >= 0:
            es.mark_referenced(hole)
        return True

    def _free_extents(self, f: File, cpu: int) -> None:
        """``ext4_clear_inode`` -> ``ext4_es_remove_extent(inode, 0, EXT_MAX_BLOCKS)``:
        every entry freed at once (``ext4_es_free_extent``: no RCU)."""
        if f._es0 < 0:
            return
        es = self.es_cache
        owner = self._es_owner
        assert es is not None and owner is not None
        for k in range(2):
            oid = f._es0 if k == 0 else f._es1
            if oid >= 0:
                self._by_extent.discard(oid)
                owner.by_oid.discard(oid)
                es.free(oid, cpu)
        f._es0 = f._es1 = -1

    def _free_lsm(self, f: File, cpu: int, rcu: bool) -> None:
        """``security_inode_free``: the LSM blob, through ``call_rcu``
        (``inode_free_by_rcu``) when ``rcu`` and the cache frees that way."""
        blob = f.lsm
        if blob < 0:
            return
        lsm = self.lsm_cache
        assert lsm is not None
        if rcu and lsm.rcu_free:
            lsm.free_rcu(blob, cpu)
        else:
            lsm.free(blob, cpu)
        f.lsm = -1

    def _instantiate(self, f: File, cpu: int) -> bool:
        """d_alloc + new_inode (or iget of a still cached inode): a dentry holding an
        inode, not yet published. A new inode gets its LSM blob
        (``inode_init_always_gfp`` -> ``security_inode_alloc``)."""
        d = self.dcache.alloc_id(cpu)
        if d < 0:
            return False
        i = f.inode
        if i >= 0:
            self.icache.lru_del(i)  # iget: a cached, unused inode is in use again
        else:
            new = self.icache.alloc_id(cpu)
            if new < 0:
                self.dcache.free(d, cpu)
                return False
            if self.lsm_cache is not None:
                blob = self.lsm_cache.alloc_id(cpu)
                if blob < 0:  # alloc_inode fails: the inode goes again
                    self.icache.free(new, cpu)
                    self.dcache.free(d, cpu)
                    return False
                f.lsm = blob
            i = new
            self.icache.set_published(i, False)
            self._by_inode[i] = f
            self._inode_owner.by_oid[i] = self
        self.dcache.set_published(d, False)
        self.icache.get_ref(i)  # the dentry's reference (d_inode)
        f.dentry, f.inode = d, i
        self._by_dentry[d] = f
        self._dentry_owner.by_oid[d] = self
        return True

    def _rollback(self, f: File, cpu: int) -> None:
        # Nothing was published: free at once, no RCU. The caller freed the folios.
        nodes = f._xa_nodes
        for k in range(len(nodes)):
            self.xa_cache.free(int(nodes[k]), cpu)  # type: ignore[union-attr]
            del self._xa_owner.by_oid[int(nodes[k])]  # type: ignore[union-attr]
        self._free_extents(f, cpu)
        self._free_lsm(f, cpu, rcu=False)
        self.dcache.free(f.dentry, cpu)
        self.icache.free(f.inode, cpu)
        self._forget_dentry(f)
        self._forget_inode(f)
        self.stats.create_failed += 1

    def open(self, fid: int, cpu: int = 0) -> bool:
        """Open a file; an evicted one is looked up again. False if that lookup fails."""
        f = self.files[fid]
        if not f.linked:
            raise ValueError(f"file {fid} is unlinked")
        if f.dentry < 0 and not self._lookup(f, cpu):
            return False
        self.dcache.get_ref(f.dentry)
        f.open_count += 1
        return True

    def _lookup(self, f: File, cpu: int) -> bool:
        """A path walk to a file whose dentry was pruned: ``d_alloc_parallel`` and the
        file system's lookup (``iget`` of the inode, read in if it is not cached), both
        published at once. False when an allocation fails."""
        if not self._instantiate(f, cpu):
            return False
        self.dcache.set_published(f.dentry, True)
        self.icache.set_published(f.inode, True)
        self.stats.lookups += 1
        return True

    def close(self, fid: int, cpu: int = 0) -> None:
        f = self.files[fid]
        if f.open_count <= 0:
            raise ValueError(f"file {fid} is not open")
        f.open_count -= 1
        if self.dcache.put_ref(f.dentry):
            return
        if not f.linked:
            self._destroy(f, cpu)
        elif self.dcache.flags_of(f.dentry) & F_LRU:
            self.dcache.mark_referenced(f.dentry)
        else:
            self.dcache.lru_add(f.dentry)

    def unlink(self, fid: int, cpu: int = 0) -> None:
        """Delete a file (``vfs_unlink`` -> ``d_delete``). Open, its dentry is unhashed
        and its objects go when the last opener closes it. Closed, on a disk file system
        its dentry stays as a negative one (``_make_negative``); on tmpfs it goes."""
        f = self.files[fid]
        if not f.linked:
            raise ValueError(f"file {fid} is already unlinked")
        f.linked = False
        self.stats.files_unlinked += 1
        if f.dentry >= 0:
            if self.fs == "tmpfs":
                self.dcache.put_ref(f.dentry)  # the persistent reference
            if f.open_count:
                return
        if self.fs == "disk" and self._make_negative(f, cpu):
            return
        self._destroy(f, cpu)

    def _make_negative(self, f: File, cpu: int) -> bool:
        """``vfs_unlink`` of a closed file on a disk file system. The lookup finds the
        dentry, or makes it again (``d_alloc_parallel`` + ``ext4_lookup`` ->
        ``ext4_iget``, the inode too when it is not cached). ``d_delete`` finds itself
        the only user and turns the dentry negative (``dentry_unlink_inode``: ``iput``
        evicts the inode, its nlink 0), and the unlink's ``dput`` -> ``retain_dentry``
        keeps it, hashed, on the dentry LRU: referenced when it was on it already,
        added when not (``d_lru_add``). ext4 without casefolding or encryption has no
        ``d_delete`` operation, and ``fs.dentry-negative`` is 0 by default. False when
        the lookup's allocations fail: the kernel's unlink fails with -ENOMEM, fragsim
        deletes the file without a dentry."""
        if f.dentry < 0 and not self._lookup(f, cpu):
            return False
        d = f.dentry
        dcache = self.dcache
        self.icache.put_ref(f.inode)  # the dentry's reference (d_inode), dropped
        self.stats.page_cache_truncated += self._free_inode(f, cpu)
        self._by_dentry[d] = NEGATIVE
        f.dentry = -1
        del self.files[f.fid]
        if dcache.flags_of(d) & F_LRU:
            dcache.mark_referenced(d)
        else:
            dcache.lru_add(d)
        self.nr_dentry_negative += 1
        self.stats.dentries_negative += 1
        return True

    def _kill_negative(self, d: int, cpu: int) -> None:
        """``__dentry_kill`` of a negative dentry: off the LRU and freed (RCU)."""
        dcache = self.dcache
        dcache.lru_del(d)
        if dcache.rcu_free:
            dcache.free_rcu(d, cpu)
        else:
            dcache.free(d, cpu)
        self._by_dentry.discard(d)
        self._dentry_owner.by_oid.discard(d)
        self.nr_dentry_negative -= 1

    def _destroy(self, f: File, cpu: int) -> None:
        """The last reference of a deleted file: dentry killed, inode evicted and its
        pages truncated (not counted as evictions)."""
        if f.dentry >= 0:
            self._kill_dentry(f, cpu)
        if f.inode >= 0:
            self.stats.page_cache_truncated += self._free_inode(f, cpu)
        del self.files[f.fid]

    def _kill_dentry(self, f: File, cpu: int) -> None:
        """``__dentry_kill``: off the LRU, freed (RCU), the inode reference dropped."""
        d = f.dentry
        self.dcache.lru_del(d)
        if self.dcache.rcu_free:
            self.dcache.free_rcu(d, cpu)
        else:
            self.dcache.free(d, cpu)
        self._forget_dentry(f)
        if not self.icache.put_ref(f.inode) and f.linked and self.fs == "disk":
            self._inode_add_lru(f)  # iput_final

    def _inode_add_lru(self, f: File) -> None:
        """``__inode_add_lru``: an unused inode joins the inode LRU only when its mapping
        is ``mapping_shrinkable`` (no page cache; 5.16+)."""
        if f.nr_cached == 0 and not self.icache.refcount(f.inode):
            self.icache.lru_add(f.inode)

    def _free_inode(self, f: File, cpu: int) -> int:
        """``evict``: page cache and XArray nodes, the extent status tree
        (``ext4_evict_inode`` -> ``ext4_clear_inode``), then ``destroy_inode``: the LSM
        blob and the inode (both RCU). Returns pages."""
        pages = self._drop_page_cache(f, cpu)
        self._free_extents(f, cpu)
        self._free_lsm(f, cpu, rcu=True)
        i = f.inode
        self.icache.lru_del(i)
        if self.icache.rcu_free:
            self.icache.free_rcu(i, cpu)
        else:
            self.icache.free(i, cpu)
        self._forget_inode(f)
        return pages

    def _drop_page_cache(self, f: File, cpu: int) -> int:
        """``truncate_inode_pages_final`` / ``invalidate_mapping_pages``: every folio
        off the LRU and freed, then the XArray nodes. Returns pages."""
        zone = self.zone
        lru = self.lru
        fo = f._folios
        for k in range(0, len(fo), 2):
            pfn = int(fo[k])
            if pfn < 0:
                continue
            if lru is not None and pfn in lru:
                lru.remove(pfn)
            zone.free(pfn, zone.order_of(pfn), cpu)
        pages = f.nr_cached
        mapping = f.mapping
        if mapping is not None:
            for k in range(0, len(fo), 2):
                if int(fo[k]) >= 0:
                    mapping.remove(int(fo[k + 1]))
        if f.slot >= 0:
            self._release_slot(f)
        f.nr_cached = 0
        self._free_xa_nodes(f, cpu)
        return pages

    def evict_folio(self, pfn: int) -> None:
        """The file LRU reclaimed this folio (``__remove_mapping`` then
        ``free_unref_folios``; the LRU has already let it go)."""
        self._remove_mapping(pfn, 0)

    def evict_folios(self, pfns: list[int]) -> None:
        """``evict_folio`` for each in turn."""
        for pfn in pfns:
            self._remove_mapping(pfn, 0)

    def _remove_mapping(self, pfn: int, cpu: int) -> None:
        """``__remove_mapping``: the folio leaves its file; once the mapping is empty the
        inode is shrinkable and, unused, goes on the inode LRU (``inode_add_lru``)."""
        f = self._file_of(pfn)
        index = self._page_cache_del(f, pfn)
        order = self.zone.order_of(pfn)
        f.nr_cached -= 1 << order
        counts = f.xa_counts
        if counts is not None:
            counts.remove(index, order)
        if f.mapping is not None:
            f.mapping.remove(index)
        self.zone.free(pfn, order, cpu)
        self.stats.page_cache_reclaimed += 1 << order
        if f.nr_cached == 0:
            self._free_xa_nodes(f, cpu)  # no shadow entries (see the module docstring)
            if f.inode >= 0 and f.linked:
                self._inode_add_lru(f)

    # ------------------------------------------------------------------ page tables

    def _file_of(self, pfn: int) -> File:
        """The file whose folio is headed at ``pfn`` (KeyError: none of ours)."""
        if not self.holds_page(pfn):
            raise KeyError(pfn)
        f = self._slots[int(self._page_slot[pfn])]
        assert f is not None
        return f

    def _page_cache_add(self, f: File, pfn: int, index: int) -> None:
        """The folio headed at ``pfn``, holding file index ``index``, is ``f``'s newest."""
        if pfn >= self._page_size:
            self._page_cache_grow(pfn + 1)
        slot = f.slot
        if slot < 0:
            if self._free_slots:
                slot = self._free_slots.pop()
                self._slots[slot] = f
            else:
                slot = len(self._slots)
                self._slots.append(f)
            f.slot = slot
        self._page_slot[pfn] = slot
        fo = f._folios
        self._page_pos[pfn] = int(len(fo)) >> 1
        fo = vec_append(fo, pfn)
        f._folios = vec_append(fo, index)
        f.nr_folios += 1

    def _page_cache_unlink(self, f: File, pfn: int) -> int:
        """The folio headed at ``pfn`` off ``f``'s list and the page table; returns its
        file index."""
        at = int(self._page_pos[pfn]) << 1
        f._folios[at] = -1
        f.nr_folios -= 1
        return int(f._folios[at + 1])

    def _page_cache_del(self, f: File, pfn: int) -> int:
        """The folio headed at ``pfn`` leaves ``f``'s list; returns its file index."""
        index = self._page_cache_unlink(f, pfn)
        if not f.nr_folios:
            self._release_slot(f)
        else:
            self._compact_folios(f)
        return index

    def _release_slot(self, f: File) -> None:
        """``f`` has no folio left: its lists emptied, its slot free for another."""
        f._folios = vec[i32]()
        f.nr_folios = 0
        self._slots[f.slot] = None
        self._free_slots.append(f.slot)
        f.slot = -1

    def _compact_folios(self, f: File) -> None:
        """Drop the entries of folios that left, once they are most of ``f``'s list,
        keeping the order of the rest (so a whole file's drop costs its folios)."""
        fo = f._folios
        if len(fo) < 32 or 4 * f.nr_folios >= len(fo):
            return
        new: vec[i32] = vec[i32](capacity=2 * f.nr_folios)
        page_pos = self._page_pos
        for k in range(0, len(fo), 2):
            pfn = int(fo[k])
            if pfn >= 0:
                page_pos[pfn] = int(len(new)) >> 1
                new = vec_append(new, pfn)
                new = vec_append(new, int(fo[k + 1]))
        f._folios = new

    def share_page_index(self, index: PageIndex) -> None:
        """Keep each folio's position in its file's list in ``index``, one entry a pfn
        of the zone, shared with the machine's other owners of pages (sim/machine.py
        ``page_index``; the kernel's ``struct page`` has one ``index`` whoever owns the
        page). This file system reads an entry only where its own slot table says it
        holds the folio, so what others write for their pages does not matter. Before
        the first folio only."""
        if self._page_size or len(index) < self.zone.end_pfn:
            raise ValueError("share_page_index: before the first folio, over the zone")
        self._page_pos = index.index
        self._pos_shared = True

    def share_page_slots(self) -> None:
        """Keep each folio's file slot in the first of the zone's ``page_links`` words,
        one a pfn, shared with the free lists and the other file systems (the kernel's
        ``struct page`` keeps ``mapping`` in the words a free page's buddy list links
        use). Nothing is written there but at a folio this file system holds; what is
        read is trusted only when the file's list names the pfn (``holds_page``).
        Before the first folio only."""
        words = self.zone.page_links()[0]
        if self._page_size or len(words) < self.zone.end_pfn:
            raise ValueError("share_page_slots: before the first folio, over the zone")
        self._page_slot = words
        self._slot_shared = True

    def _page_cache_grow(self, size: int) -> None:
        """Cover pfns below ``size`` (the whole zone at the first folio)."""
        size = max(size, 2 * self._page_size, self.zone.end_pfn)
        extra = size - self._page_size
        none = array("i", [-1]) * extra
        if self._pos_shared and size > len(self._page_pos):
            raise IndexError(f"pfn beyond the shared page index ({len(self._page_pos)})")
        if self._slot_shared and size > len(self._page_slot):
            raise IndexError(f"pfn beyond the shared page slots ({len(self._page_slot)})")
        if not self._page_size:  # the first: exactly the zone, no spare capacity
            if not self._slot_shared:
                self._page_slot = vec[i32](none, capacity=size)
            if not self._pos_shared:
                self._page_pos = vec[i32](none, capacity=size)
        else:
            if not self._slot_shared:
                self._page_slot = vec_extend(self._page_slot, none)
            if not self._pos_shared:
                self._page_pos = vec_extend(self._page_pos, none)
        self._page_size = size

    def _forget_dentry(self, f: File) -> None:
        self._by_dentry.discard(f.dentry)
        self._dentry_owner.by_oid.discard(f.dentry)
        f.dentry = -1

    def _forget_inode(self, f: File) -> None:
        self._by_inode.discard(f.inode)
        self._inode_owner.by_oid.discard(f.inode)
        f.inode = -1

    def _evict_inode(self, f: File, cpu: int) -> int:
        evicted = self._free_inode(f, cpu)
        self.stats.inodes_evicted += 1
        self.stats.page_cache_evicted += evicted
        return evicted

    def holds_page(self, pfn: int) -> bool:
        """Whether ``pfn`` heads one of this file system's page-cache folios: its
        slot names a file whose list has the pfn at its position (the per-pfn entries
        of a pfn not held are anyone's: another owner's, or the free lists' links)."""
        if not 0 <= pfn < self._page_size:
            return False
        slot = int(self._page_slot[pfn])
        if not 0 <= slot < len(self._slots):
            return False
        f = self._slots[slot]
        if f is None:
            return False
        at = int(self._page_pos[pfn]) << 1
        fo = f._folios
        return 0 <= at < len(fo) and int(fo[at]) == pfn

    def migrate_page(self, old_pfn: int, new_pfn: int) -> bool:
        """Re-point a page-cache page that compaction moved; False if not ours."""
        if not self.holds_page(old_pfn):
            return False
        f = self._file_of(old_pfn)
        # Out of the file's list and in again as its newest, in one step: a file whose
        # only folio moves keeps its slot.
        index = self._page_cache_unlink(f, old_pfn)
        self._page_cache_add(f, new_pfn, index)
        self._compact_folios(f)
        m = f.mapping
        if m is not None:  # the mapping's slot now points at the new folio
            m.set_handle(index, new_pfn)
        return True

    # ------------------------------------------------------------------ ObjectOwner

    def reclaimable(self, cache: SlabCache, oid: int) -> bool:
        """Unused: a dentry nobody holds; an inode whose dentry is gone or unused (it can
        be pruned first, as ``d_prune_aliases``); never a live file's XArray node."""
        if cache is self.dcache:
            f = self._by_dentry.get(oid)
            return f is not None and not cache.refcount(oid)
        if cache is self.icache:
            f = self._by_inode.get(oid)
            if f is None:
                return False
            if f.dentry < 0:
                return not cache.refcount(oid)
            return not self.dcache.refcount(f.dentry)
        if cache is self.es_cache:
            # Every entry fragsim keeps is written or a hole: never delayed, so the es
            # shrinker may take it (ext4_es_must_keep is false).
            return self._by_extent.get(oid) is not None
        return False

    def evict(self, cache: SlabCache, oid: int, cpu: int) -> int:
        """Free an unused object and what it alone kept. Returns page-cache pages evicted."""
        if cache is self.dcache:
            f = self._by_dentry[oid]
            if f is NEGATIVE:
                self._kill_negative(oid, cpu)
            else:
                self._kill_dentry(f, cpu)
            self.stats.dentries_evicted += 1
            return 0
        if cache is self.icache:
            f = self._by_inode[oid]
            if f.dentry >= 0:  # d_prune_aliases
                self._kill_dentry(f, cpu)
                self.stats.dentries_evicted += 1
                self.dcache.stats.objects_evicted += 1
            return self._evict_inode(f, cpu)
        if cache is self.es_cache:
            # es_do_reclaim_extents: rb_erase + ext4_es_free_extent, the inode kept; the
            # other entry, if any, stays first.
            ef: File = self._by_extent[oid]
            if ef._es0 == oid:
                ef._es0 = ef._es1
                ef._es1 = -1
            elif ef._es1 == oid:
                ef._es1 = -1
            self._by_extent.discard(oid)
            self._es_owner.by_oid.discard(oid)  # type: ignore[union-attr]
            cache.free(oid, cpu)
            self.stats.extents_reclaimed += 1
            return 0
        raise ValueError(f"{cache.name}: object {oid} cannot be evicted on its own")

    # ------------------------------------------------------------------ shrinker

    def count_objects(self) -> int:
        """``super_cache_count``: both LRUs, scaled by vfs_cache_pressure."""
        return (self.dcache.nr_lru + self.icache.nr_lru) * self.vfs_cache_pressure // 100

    def super_cache_scan(self, nr_to_scan: int, cpu: int = 0) -> ShrinkResult:
        """Split the scan between the dentry and inode LRUs in proportion, dentries first."""
        dentries = self.dcache.nr_lru
        inodes = self.icache.nr_lru
        total = dentries + inodes + 1
        res = self.dcache.shrink(nr_to_scan * dentries // total + 1, cpu)
        res.add(self.icache.shrink(nr_to_scan * inodes // total + 1, cpu))
        return res

    def shrink(self, priority: int | None = None, nr_to_scan: int | None = None,
               cpu: int = 0, gfp_fs: bool = True) -> ShrinkResult:
        """The super block shrinker: ``do_shrink_slab`` at ``priority`` in batches of
        ``SB_SHRINK_BATCH`` (fs/super.c ``alloc_super``: ``s_shrink->batch = 1024``), or
        one scan of ``nr_to_scan`` objects in batches of 128. Without ``gfp_fs`` (a
        reclaimer whose gfp mask lacks __GFP_FS, such as readahead's) ``super_cache_scan``
        returns SHRINK_STOP ("Deadlock avoidance"): nothing is scanned and the share is
        deferred."""
        total = ShrinkResult()

        def scan(n: int) -> int:
            if not gfp_fs:
                return SHRINK_STOP
            r = self.super_cache_scan(n, cpu)
            total.add(r)
            return r.freed

        if nr_to_scan is not None:
            while nr_to_scan > 0 and (self.dcache.nr_lru or self.icache.nr_lru):
                scan(min(128, nr_to_scan))
                nr_to_scan -= 128
            return total
        if priority is None:
            raise ValueError("expected a priority or nr_to_scan")
        _, _, self.nr_deferred = do_shrink_slab(
            self.count_objects(), priority, scan, seeks=DEFAULT_SEEKS,
            batch=SB_SHRINK_BATCH, nr_deferred=self.nr_deferred)
        return total

    @property
    def live_files(self) -> int:
        return sum(1 for f in self.files.unordered() if f.linked)
