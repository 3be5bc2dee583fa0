"""The per-object loops of ``slab_churn`` (workloads/synthetic.py): one tick's
``kmem_cache_alloc`` and ``kmem_cache_free`` calls on a cache (a simulator structure,
not a kernel one); ``fs_churn``'s (workloads/fs_churn.py): one tick's creates and
unlinks (``create_files``, ``unlink_files``); and ``page_cache``'s
(workloads/page_cache.py): one tick's reads (``ReadLoop``).

They sit in their own module so that mypyc compiles them with the allocator's hot
modules (sim/native.py): the workload classes cannot be compiled (mypyc refuses their
nested pydantic ``Params``). The loops do exactly what the interpreted ones did, in
the same order, drawing the CPU of each operation from ``cpu()`` in turn.

A queued object is one int, ``generation << GEN_SHIFT | oid``, rather than a tuple:
the generation tells a due object from a later one that reused its id after an
eviction.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Final

from sim.objects import FileSystem
from sim.page_alloc import FolioAlloc
from sim.slab import SlabCache
from workloads.draws import ScalarDraws

GEN_SHIFT: Final = 32
OID_MASK: Final = (1 << GEN_SHIFT) - 1


class LiveObjects:
    """The objects a workload holds in one cache, each with the generation it was
    allocated in: an ``array('q')`` indexed by object id (0: not held), so that a
    hundred thousand objects cost no Python objects."""

    def __init__(self) -> None:
        self._gen = array("q")
        self._count = 0
        self.last_gen = 0  # the generation of the latest allocation

    def __len__(self) -> int:
        return self._count

    def __contains__(self, oid: int) -> bool:
        return 0 <= oid < len(self._gen) and self._gen[oid] != 0

    def discard(self, oid: int) -> None:
        """Forget ``oid`` (evicted by the cache): its queued expiry does nothing."""
        if oid in self:
            self._gen[oid] = 0
            self._count -= 1

    def alloc_many(self, cache: SlabCache, n: int, cpu: Callable[[], int], now: float,
                   lifetimes: list[float], unused: list[bool] | None,
                   whens: list[float], items: list[int]) -> None:
        """Allocate ``n`` objects; each one allocated gets the next generation, goes on
        the cache's LRU where ``unused`` says so, and appends its expiry time to
        ``whens`` and its queue item to ``items`` (the failures are ``n`` less the
        items appended)."""
        gens = self._gen
        gen = start = self.last_gen
        for i in range(n):
            oid = cache.alloc_id(cpu())
            if oid < 0:
                continue
            if oid > OID_MASK:
                raise OverflowError(f"object id {oid} does not fit in {GEN_SHIFT} bits")
            if oid >= len(gens):
                gens.frombytes(bytes(gens.itemsize * (oid + 1 - len(gens))))
            gen += 1
            gens[oid] = gen
            if unused is not None and unused[i]:
                cache.lru_add(oid)
            whens.append(now + lifetimes[i])
            items.append(gen << GEN_SHIFT | oid)
        self._count += gen - start
        self.last_gen = gen

    def free_due(self, cache: SlabCache, due: list[int], cpu: Callable[[], int]) -> int:
        """Free each due object still held in the generation it was queued in, taking
        it off the cache's LRU first. Returns the number freed."""
        gens = self._gen
        freed = 0
        for item in due:
            oid = item & OID_MASK
            if gens[oid] != item >> GEN_SHIFT:
                continue
            gens[oid] = 0
            if cache.nr_lru and cache.is_allocated(oid):
                cache.lru_del(oid)
            cache.free(oid, cpu())
            freed += 1
        self._count -= freed
        return freed


def create_files(fsys: FileSystem, cpu: Callable[[], int], first: int, n: int,
                 sizes: list[int], opened: list[bool], dir_size: int,
                 write_size: int | None, created: list[int], dirs: list[int]) -> int:
    """``fs_churn``'s creates of its files ``first`` to ``first + n - 1``: file j is
    ``sizes[j]`` bytes, written in ``write_size`` calls and held open when
    ``opened[j]``, on the CPU ``cpu()`` gives for it; before it, at every
    ``dir_size``-th file, a directory (a page-less file) on the same CPU. The ids
    made go on ``created`` and ``dirs``; returns the creates that failed."""
    failed = 0
    for j in range(first, first + n):
        c = cpu()
        if dir_size and j % dir_size == 0:
            d = fsys.create(0, c)
            if d is None:
                failed += 1
            else:
                dirs.append(d)
        fid = fsys.create(cpu=c, keep_open=opened[j], size=sizes[j], write_size=write_size)
        if fid is None:
            failed += 1
            continue
        created.append(fid)
    return failed


def unlink_files(fsys: FileSystem, cpu: Callable[[], int], fids: list[int]) -> None:
    """``fs_churn``'s unlinks of ``fids`` in turn, each on the CPU ``cpu()`` gives."""
    for fid in fids:
        fsys.unlink(fid, cpu())


class ReadLoop:
    """``page_cache``'s reads (workloads/page_cache.py): one tick's ``read(2)`` calls
    (``read_many(n)``), and the state they keep from tick to tick: the file being read and
    the position in it, the files that may hold page cache (for rereads), and the
    counts. The workload keeps what happens once per file: ``open_next(cpu)`` opens
    the next file to read (and calls ``may_cache``), -1 if that fails."""

    def __init__(self, fsys: FileSystem, draws: ScalarDraws, alloc: FolioAlloc,
                 fallback: FolioAlloc, free: Callable[[int, int, int], object],
                 allocated_by_order: list[int], cpu: Callable[[], int],
                 open_next: Callable[[int], int], *, reread: float, read_size: int,
                 file_size: int, random_pattern: bool, cpu_draws: bool,
                 limit: int | None) -> None:
        self.fsys = fsys
        self.draws = draws
        self.alloc = alloc
        self.fallback = fallback
        self.free = free
        self.allocated_by_order = allocated_by_order
        self.cpu = cpu
        self.open_next = open_next
        self.reread = reread
        self.read_size = read_size
        self.file_size = file_size
        self.slots = max(1, file_size // read_size)
        self.random_pattern = random_pattern
        self.cpu_draws = cpu_draws  # the CPU is drawn from the generator: release first
        self.limit = limit  # pages
        self.file = -1  # the file being read (sequential), or the one file (random)
        self.pos = 0
        self.cached_files: list[int] = []  # files that may hold page cache, for rereads
        self.cached_set: set[int] = set()  # the same, for membership
        self.read = self.failed = self.hits = self.reads = 0

    def may_cache(self, fid: int) -> None:
        if fid not in self.cached_set:
            self.cached_set.add(fid)
            self.cached_files.append(fid)

    def cached_pages(self) -> int:
        files = self.fsys.files
        total = 0
        for fid in self.cached_files:
            f = files.get(fid)
            if f is not None:
                total += f.nr_cached
        return total

    def read_many(self, n: int) -> None:
        """``n`` reads in turn: a share ``reread`` of them (drawn) marks a folio of an
        earlier file accessed instead, one that would grow the cache past ``limit`` is
        skipped, and the others read the next ``read_size`` bytes of the file being
        read (or, ``random_pattern``, at a drawn aligned offset of it)."""
        draws = self.draws
        reread = self.reread
        read_size = self.read_size
        limit = self.limit
        for _ in range(n):
            self.reads += 1
            if reread and self.cached_files and draws.random() < reread and self._reread():
                self.hits += 1
                continue
            if limit is not None and self.cached_pages() >= limit:
                continue
            if self.cpu_draws:
                draws.release()
            cpu = self.cpu()
            if self.file < 0:
                self.file = self.open_next(cpu)
                self.pos = 0
                if self.file < 0:
                    self.failed += 1
                    continue
            if self.random_pattern:
                self._read_one(self.file, draws.integers(self.slots) * read_size, cpu)
                continue
            self._read_one(self.file, self.pos, cpu)
            self.pos += read_size
            if self.pos >= self.file_size:  # EOF: close, the next read opens a new file
                self.fsys.close(self.file, cpu)
                self.file = -1

    def _read_one(self, fid: int, pos: int, cpu: int) -> None:
        """One read(2) (sim/objects.py ``FileSystem.read``): missing folios read ahead,
        then the folios read marked accessed."""
        # alloc_pages(order, GFP_READAHEAD or, for filemap_create_folio,
        # GFP_HIGHUSER_MOVABLE, cpu, OWNER_MOVABLE), compiled (sim/page_alloc.py).
        alloc, fallback = self.alloc, self.fallback
        alloc.cpu = fallback.cpu = cpu
        read, ok = self.fsys.read(fid, pos, self.read_size, alloc.on_cpu, fallback.on_cpu,
                                  self.free, self.allocated_by_order, cpu)
        self.read += read
        if not ok:
            self.failed += 1  # -ENOMEM: not even the page being read

    def _reread(self) -> bool:
        """Mark a random cached folio of an earlier file accessed; False if none."""
        files = self.cached_files
        fsys = self.fsys
        draws = self.draws
        while files:
            k = draws.integers(len(files))
            fid = files[k]
            f = fsys.files.get(fid)
            if f is None or not f.nr_cached:
                files[k] = files[-1]
                files.pop()
                self.cached_set.discard(fid)
                continue
            mapping = f.mapping
            assert mapping is not None
            head = mapping.lookup(draws.integers(mapping.nr_pages))
            if head >= 0 and fsys.lru is not None:
                fsys.lru.mark_accessed(mapping.handle_of(head))
            return True
        return False
