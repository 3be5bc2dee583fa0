"""``page_cache``: file reads through 6.18's readahead, into page-cache folios.

The workload reads ``rate`` bytes per second in ``read(2)`` calls of ``read_size``
bytes from files of ``file_size`` bytes on a file system (``fs``). Which folios each
read allocates, and of which order, is sim/readahead.py's (``filemap_read`` and
mm/readahead.c of Linux 6.18): a sequential reader's folios ramp up to 2 MiB
(MAX_PAGECACHE_ORDER 9) on ext4 and xfs, which set large folios; random 4 KiB reads
get order-0 folios; tmpfs (``huge=never``, its default) and ``large_folios: false``
give order 0 only.

- ``pattern: sequential`` reads each file from start to end, then opens the next, new
  file (a stream: ``cat`` of one file after another).
- ``pattern: random`` reads ``read_size`` at random aligned offsets of one file of
  ``file_size`` (``pread`` at random positions).
- ``reread``: this share of the reads goes instead to a folio of an earlier file still
  in the cache (``folio_mark_accessed``: a folio read before is activated, and gets a
  second trip round the LRU).
- Every read marks the folios it reads accessed as ``filemap_read`` does: once each in
  a sequential stream (PG_referenced, which does not keep an unmapped clean folio from
  reclaim), so a stream read once is reclaimed in one pass of the LRU.
- ``limit``: the reads that would add page cache beyond this size are skipped.
- ``files``: the data set is this many files, read in turn and then from the first
  again (each reopened: ``open(2)`` looks up an evicted dentry and inode again, and a
  new ``struct file`` starts its readahead state afresh, ``file_ra_state_init``), so a
  long run holds a bounded set of files. Without it every file is new: a stream that
  never comes back, whose files (their records, and their dentries and inodes until
  the shrinker takes them) add up over a long run.

Each file is a dentry and an inode with its LSM blob (sim/objects.py; already on disk,
its extents are not looked up: no extent_status entry); on a disk file system its folios
are on the file LRU and reclaim evicts them whole (``shrink_folio_list``). Readahead
allocates with ``readahead_gfp_mask`` (``__GFP_NORETRY | __GFP_NOWARN``, at every
order); the page being read, when readahead could not allocate it, with the mapping's
plain mask (``filemap_create_folio``).

Departures: reads complete at once (no I/O time); a file being read is open, so its
dentry is pinned until the reader moves on; rereads do not open the file; a file's
``read_ahead_kb`` is the workload's (the kernel's is the block device's).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sim import readahead
from sim.gfp import __GFP_FS, __GFP_NORETRY, __GFP_NOWARN, GFP_HIGHUSER_MOVABLE
from sim.page_alloc import FolioAlloc
from sim.units import Size
from workloads.base import PacedParams, Workload
from workloads.draws import ScalarDraws
from workloads.objloop import ReadLoop

# mm/readahead.c readahead_gfp_mask: the mapping's mask plus __GFP_NORETRY | __GFP_NOWARN,
# allocated under memalloc_nofs_save (page_cache_ra_unbounded, page_cache_ra_order), which
# takes __GFP_FS away: the mm_page_alloc event prints GFP_NOFS|__GFP_HIGHMEM|... (see
# sim/readahead.py). Its reclaim cannot run the super block shrinkers, and its direct
# compaction cannot move page cache.
GFP_READAHEAD = (GFP_HIGHUSER_MOVABLE & ~__GFP_FS) | __GFP_NORETRY | __GFP_NOWARN
FS_KINDS = {"ext4": ("disk", "ext4_inode_cache"), "xfs": ("disk", "xfs_inode"),
            "disk": ("disk", "ext4_inode_cache"), "tmpfs": ("tmpfs", "shmem_inode_cache")}


class PageCache(Workload):
    """File reads into the page cache; see the module docstring."""

    kind = "page_cache"

    class Params(PacedParams):
        rate: Size = Field(64 << 20, description="bytes read per second")
        reread: float = Field(0.1, ge=0, le=1,
                              description="share of reads that hit an earlier file's cache")
        limit: Size | None = Field(None, description="stop growing the cache at this size")
        pattern: Literal["sequential", "random"] = Field(
            "sequential", description="sequential: each file start to end, then a new "
            "one; random: random offsets of one file")
        read_size: Size = Field(128 << 10, description="bytes per read(2) (cat: 128 KiB)")
        file_size: Size = Field(1 << 30, description="size of each file read")
        fs: Literal["ext4", "xfs", "tmpfs", "disk"] = Field(
            "ext4", description="file system of the files (disk is ext4)")
        large_folios: bool = Field(True, description="false: the pre-folio what-if, order 0")
        read_ahead_kb: int = Field(128, ge=0, description="the device's read_ahead_kb")
        max_sectors_kb: int | None = Field(
            None, ge=0, description="the device's max_sectors_kb (bdi->io_pages: a read "
            "larger than the readahead window may read up to it); null: read_ahead_kb")
        fadvise: Literal["normal", "sequential", "random"] = Field(
            "normal", description="posix_fadvise advice on each file (cat: sequential)")
        files: int | None = Field(
            None, ge=1, description="sequential: a data set of this many files, read in "
            "turn and then again from the first (null: every file new)")

        @model_validator(mode="after")
        def _sizes(self):
            if self.read_size <= 0:
                raise ValueError("read_size: expected more than 0 bytes")
            if self.file_size <= 0:
                raise ValueError("file_size: expected more than 0 bytes")
            if self.files is not None and self.pattern != "sequential":
                raise ValueError(f"files: expected only with pattern: sequential (random "
                                 f"reads one file), got pattern: {self.pattern}")
            return self

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        p = params
        fs, icache = FS_KINDS[p.fs]
        self.fsys = machine.filesystem(fs, inode_cache=icache, large_folios=p.large_folios)
        self.files_read = 0
        self.allocated_by_order = [0] * (readahead.MAX_PAGECACHE_ORDER + 1)
        pa = machine.page_alloc
        alloc = FolioAlloc(pa, GFP_READAHEAD, GFP_READAHEAD)
        fallback = FolioAlloc(pa, GFP_HIGHUSER_MOVABLE, GFP_HIGHUSER_MOVABLE)
        self._carry = 0.0
        # The reads and their state (the file being read, the files that may hold page
        # cache, the counts), compiled (workloads/objloop.py): the generator's scalar
        # draws, the same values at a tenth of the cost (workloads/draws.py), given back
        # to it before anything else draws from it (``cpu: random``'s choice of CPU,
        # and whatever comes after each tick).
        self.draws = ScalarDraws(self.rng)
        self.loop = ReadLoop(
            self.fsys, self.draws, alloc, fallback, machine.free_pages,
            self.allocated_by_order, self.cpu, self._open_next, reread=p.reread,
            read_size=p.read_size, file_size=p.file_size,
            random_pattern=p.pattern == "random", cpu_draws=p.cpu == "random",
            limit=None if p.limit is None else p.limit // readahead.PAGE_SIZE)
        self._dataset: list[int] = []  # files: the data set's files, in reading order
        self._next = 0  # files: the data set's next file once all exist

    # ------------------------------------------------------------------ files

    def _new_file(self, cpu: int) -> int:
        """A file of ``file_size`` on disk with nothing cached, opened for reading."""
        p = self.params
        fsys = self.fsys
        mapping = readahead.Mapping(
            i_size=p.file_size, large_folios=fsys.large_folios,
            ra_pages=p.read_ahead_kb // 4,
            io_pages=(p.read_ahead_kb if p.max_sectors_kb is None else p.max_sectors_kb) // 4,
            shmem=fsys.fs == "tmpfs")
        if p.fadvise != "normal":
            readahead.fadvise(mapping, p.fadvise)
        fid = fsys.create(-(-p.file_size // readahead.PAGE_SIZE), cpu, keep_open=True,
                          folios=[], mapping=mapping)
        if fid is None:
            return -1
        self.loop.may_cache(fid)
        self.files_read += 1
        return fid

    def _open_next(self, cpu: int) -> int:
        """The next file to read from its start, opened: a new one, or with ``files``
        the data set's next once it has them all; -1 if that fails."""
        p = self.params
        if p.files is None or len(self._dataset) < p.files:
            fid = self._new_file(cpu)
            if fid >= 0 and p.files is not None:
                self._dataset.append(fid)
            return fid
        fid = self._dataset[self._next]
        self._next = (self._next + 1) % p.files
        if not self.fsys.open(fid, cpu):
            return -1
        mapping = self.fsys.files[fid].mapping
        mapping.ra = readahead.FileRaState(mapping.ra_pages)  # a new struct file
        if p.fadvise != "normal":
            readahead.fadvise(mapping, p.fadvise)
        self.loop.may_cache(fid)
        self.files_read += 1
        return fid

    # ------------------------------------------------------------------ process

    def run(self):
        p = self.params
        env = self.env
        read_size = p.read_size
        loop, draws = self.loop, self.draws
        while self.active():
            self._carry += self.paced(p.rate) / read_size
            n = int(self._carry)
            self._carry -= n
            loop.read_many(n)
            draws.release()
            yield env.timeout(p.tick)

    def summary(self) -> dict[str, Any]:
        loop = self.loop
        return {"cached_pages": loop.cached_pages(), "read": loop.read, "reads": loop.reads,
                "hits": loop.hits, "files_read": self.files_read, "failed": loop.failed,
                "folios_allocated_by_order": {str(o): n for o, n in
                                              enumerate(self.allocated_by_order) if n}}
