"""Objects and references: files as a dentry, an inode, page-cache pages and XArray nodes.

Follows the reference rules of Linux 6.18 fs/dcache.c, fs/inode.c, mm/shmem.c and
lib/xarray.c closely enough for slab reclaim:

- A positive dentry holds its inode (``d_inode`` keeps ``i_count`` at 1), so an inode is
  unused only once its dentry is gone (``dentry_unlink_inode`` -> ``iput``).
- ``fs="tmpfs"``: ``shmem_mknod`` takes a persistent ``dget``, so a live file's dentry is
  pinned for the file's life, and with it the inode. Nothing of a live tmpfs file can be
  reclaimed. ``fs="disk"`` (ext4-like): a closed file's dentry is unused and sits on the
  dentry LRU (``retain_dentry`` -> ``d_lru_add``; a second ``dput`` sets
  DCACHE_REFERENCED); once the dentry is pruned the inode goes on the inode LRU
  (``iput_final`` -> ``inode_add_lru``). Open files pin their dentry.
- Evicting an inode evicts its page cache (``inode_lru_isolate`` ->
  ``invalidate_mapping_pages``; ``evict`` -> ``truncate_inode_pages_final``) and its
  XArray nodes; those evictions are counted, since a later read must refault them.
  Deleting a file truncates instead; that is not an eviction.
- XArray nodes exist only for files of more than one page (a one-page file lives in
  ``xa_head``), 64 slots per node (XA_CHUNK_SHIFT 6).
- dentries and inodes are freed through ``call_rcu`` when their cache says so
  (sim/slab.py RCU_FREED_CACHES), as are XArray nodes (``radix_tree_node_free``).
- :meth:`FileSystem.shrink` is ``super_cache_scan``: one count over the dentry and inode
  LRUs, the scan split between them in proportion, dentries pruned first.

Departures: one LRU per cache rather than per super block (file systems sharing the
dentry cache share its LRU); no directories (every file's dentry is a leaf); no dirty
data or writeback; a read of an evicted page is not modelled (evictions are counted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Final

from sim.buddy import OWNER_MOVABLE, Zone
from sim.migratetype import MIGRATE_MOVABLE
from sim.slab import (
    DEFAULT_SEEKS,
    F_LRU,
    ShrinkResult,
    SlabCache,
    do_shrink_slab,
)

XA_CHUNK_SHIFT: Final = 6
XA_CHUNK_SIZE: Final = 1 << XA_CHUNK_SHIFT
FS_TYPES: Final = ("tmpfs", "disk")


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


@dataclass
class FsStats:
    files_created: int = 0
    create_failed: int = 0
    files_unlinked: int = 0
    lookups: int = 0  # an evicted file opened again: dentry and inode allocated anew
    dentries_evicted: int = 0
    inodes_evicted: int = 0
    page_cache_evicted: int = 0  # pages evicted with their inode by reclaim
    page_cache_truncated: int = 0  # pages freed because their file was deleted

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class File:
    """One file: its in-memory objects (-1 when not cached) and state.

    A plain class rather than a dataclass: mypyc compiles this ``__init__``, where a
    dataclass's would be generated, interpreted code (one call per file created).
    """

    __slots__ = ("fid", "nr_pages", "dentry", "inode", "pages", "xa_nodes", "open_count",
                 "linked")

    def __init__(self, fid: int, nr_pages: int) -> None:
        self.fid = fid
        self.nr_pages = nr_pages
        self.dentry = -1
        self.inode = -1
        self.pages: list[int] = []
        self.xa_nodes: list[int] = []
        self.open_count = 0
        self.linked = True

    def __repr__(self) -> str:
        return (f"File(fid={self.fid}, nr_pages={self.nr_pages}, dentry={self.dentry}, "
                f"inode={self.inode}, pages={self.pages}, xa_nodes={self.xa_nodes}, "
                f"open_count={self.open_count}, linked={self.linked})")


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
        if oid >= len(of):
            of.extend([None] * (oid + 1 - len(of)))
        of[oid] = value

    def __delitem__(self, oid: int) -> None:
        if self.get(oid) is None:
            raise KeyError(oid)
        self._of[oid] = None

    def discard(self, oid: int) -> None:
        if 0 <= oid < len(self._of):
            self._of[oid] = None


class CacheOwners:
    """The owner (``sim.slab.ObjectOwner``) of one cache shared by several file systems:
    dispatches by object id; objects of no file system get the cache's default rules."""

    def __init__(self) -> None:
        self.by_oid = ByOid()  # object id -> FileSystem

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

    def __init__(self, zone: Zone, dentry_cache: SlabCache, inode_cache: SlabCache,
                 xa_cache: SlabCache | None = None, *, fs: str = "disk",
                 vfs_cache_pressure: int = 100,
                 alloc_page: Callable[[int], int | None] | None = None) -> None:
        if fs not in FS_TYPES:
            raise ValueError(f"expected fs one of {', '.join(FS_TYPES)}, got {fs!r}")
        self.zone = zone
        # alloc_page(cpu) -> pfn: a page-cache page. The engine passes its full
        # allocation path (slow path, kswapd); alone, the zone's fast path is used.
        self.alloc_page = alloc_page or (
            lambda cpu: zone.alloc(0, MIGRATE_MOVABLE, cpu, OWNER_MOVABLE))
        self.fs = fs
        self.dcache = dentry_cache
        self.icache = inode_cache
        self.xa_cache = xa_cache
        self.vfs_cache_pressure = vfs_cache_pressure
        self.files: dict[int, File] = {}
        self._next_fid = 0
        self._dentry_owner = _owners(dentry_cache)
        self._inode_owner = _owners(inode_cache)
        self._xa_owner = _owners(xa_cache) if xa_cache is not None else None
        self._by_dentry = ByOid()  # dentry id -> File
        self._by_inode = ByOid()  # inode id -> File
        self._page_file: dict[int, File] = {}  # pfn -> file, for page migration
        self.nr_deferred = 0  # the super block shrinker's nr_deferred
        self.stats = FsStats()

    # ------------------------------------------------------------------ files

    def create(self, nr_pages: int = 0, cpu: int = 0, *, keep_open: bool = False) -> int | None:
        """Create a file of ``nr_pages`` pages; returns its id, or None (and nothing
        allocated) when an allocation fails."""
        if nr_pages < 0:
            raise ValueError(f"expected nr_pages >= 0, got {nr_pages}")
        f = File(self._next_fid, nr_pages)
        if not self._instantiate(f, cpu):
            self.stats.create_failed += 1
            return None
        for _ in range(nr_pages):
            pfn = self.alloc_page(cpu)
            if pfn is None:
                self._rollback(f, cpu)
                return None
            f.pages.append(pfn)
        if self.xa_cache is not None:
            for _ in range(xa_nodes_for(nr_pages)):
                oid = self.xa_cache.alloc(cpu)
                if oid is None:
                    self._rollback(f, cpu)
                    return None
                f.xa_nodes.append(oid)
                self._xa_owner.by_oid[oid] = self  # type: ignore[union-attr]
        for pfn in f.pages:
            self._page_file[pfn] = f
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

    def _instantiate(self, f: File, cpu: int) -> bool:
        """d_alloc + new_inode (or iget of a still cached inode): a dentry holding an
        inode, not yet published."""
        d = self.dcache.alloc(cpu)
        if d is None:
            return False
        i = f.inode
        if i >= 0:
            self.icache.lru_del(i)  # iget: a cached, unused inode is in use again
        else:
            new = self.icache.alloc(cpu)
            if new is None:
                self.dcache.free(d, cpu)
                return False
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
        # Nothing was published: free at once, no RCU.
        for pfn in f.pages:
            self.zone.free(pfn, 0, cpu)
        for oid in f.xa_nodes:
            self.xa_cache.free(oid, cpu)  # type: ignore[union-attr]
            del self._xa_owner.by_oid[oid]  # type: ignore[union-attr]
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
        if f.dentry < 0:
            if not self._instantiate(f, cpu):
                return False
            self.dcache.set_published(f.dentry, True)
            self.icache.set_published(f.inode, True)
            self.stats.lookups += 1
        self.dcache.get_ref(f.dentry)
        f.open_count += 1
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
        """Delete a file; its objects go when the last opener closes it."""
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
        self._destroy(f, cpu)

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
            self.icache.lru_add(f.inode)  # iput_final: an unused, cached inode

    def _free_inode(self, f: File, cpu: int) -> int:
        """``evict``: page cache and XArray nodes, then the inode (RCU). Returns pages."""
        zone = self.zone
        for pfn in f.pages:
            zone.free(pfn, 0, cpu)
            del self._page_file[pfn]
        pages = len(f.pages)
        f.pages = []
        xa = self.xa_cache
        for oid in f.xa_nodes:
            del self._xa_owner.by_oid[oid]  # type: ignore[union-attr]
            if xa.rcu_free:  # type: ignore[union-attr]
                xa.free_rcu(oid, cpu)  # type: ignore[union-attr]
            else:
                xa.free(oid, cpu)  # type: ignore[union-attr]
        f.xa_nodes = []
        i = f.inode
        self.icache.lru_del(i)
        if self.icache.rcu_free:
            self.icache.free_rcu(i, cpu)
        else:
            self.icache.free(i, cpu)
        self._forget_inode(f)
        return pages

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

    def migrate_page(self, old_pfn: int, new_pfn: int) -> bool:
        """Re-point a page-cache page that compaction moved; False if not ours."""
        f = self._page_file.pop(old_pfn, None)
        if f is None:
            return False
        f.pages[f.pages.index(old_pfn)] = new_pfn
        self._page_file[new_pfn] = f
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
        return False

    def evict(self, cache: SlabCache, oid: int, cpu: int) -> int:
        """Free an unused object and what it alone kept. Returns page-cache pages evicted."""
        if cache is self.dcache:
            f = self._by_dentry[oid]
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
               cpu: int = 0) -> ShrinkResult:
        """The super block shrinker: ``do_shrink_slab`` at ``priority``, or one scan of
        ``nr_to_scan`` objects in batches of 128."""
        total = ShrinkResult()

        def scan(n: int) -> int:
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
            nr_deferred=self.nr_deferred)
        return total

    @property
    def live_files(self) -> int:
        return sum(1 for f in self.files.values() if f.linked)
