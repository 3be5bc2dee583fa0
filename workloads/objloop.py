"""The per-object loops of ``slab_churn`` (workloads/synthetic.py): one tick's
``kmem_cache_alloc`` and ``kmem_cache_free`` calls on a cache (a simulator structure,
not a kernel one); and ``fs_churn``'s (workloads/fs_churn.py): one tick's creates and
unlinks (``create_files``, ``unlink_files``).

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
from sim.slab import SlabCache

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
