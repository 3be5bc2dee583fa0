"""Slab defragmentation scenarios (issue 3, section 5): what get/reclaim buys, and at what cost.

Every scenario builds a fresh machine (one 1 GiB zone, 2 CPUs, caches as
``calculate_order`` derives them), populates it, frees a random 90 %, lets RCU finish,
and then runs one thing: a defrag pass (``move`` or ``free``) or the LRU shrinker.
Numbers are for the dentry cache (192-byte slots, 21 per order-0 slab) unless a row says
otherwise. ``ideal`` is ceil(live / objects_per_slab).

- ``move``: a dentry-like cache, objects allocated round-robin on both CPUs, a random
  90 % freed through RCU. One ``move`` pass (the "if dentries were movable" what-if).
- ``free`` on a disk fs: files (dentry, ext4 inode, one page-cache page) created open,
  a random 90 % deleted, the rest closed in random order (so the dentry LRU order is
  unrelated to slab placement) except a pinned share kept open. One ``free`` pass over
  dentry and ext4_inode_cache, as the historical patches did.
- ``shrinker``: the same file system; rounds of ``shrink_node`` (32 pages of file LRU
  reclaim, then a super block shrinker scan of 128) until the shrinker has freed as many
  objects as the ``free`` pass evicted. Since 5.16 an inode with page cache is not on
  the inode LRU: its pages must go through the file LRU first.
- ``tmpfs``: the same files on tmpfs (every live dentry and inode pinned; inodes in
  shmem_inode_cache), then ``free`` or ``move``.

    python bench/scenarios_slab.py                 # 100 000 objects
    python bench/scenarios_slab.py --objects 20000 --json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.buddy import Zone  # noqa: E402
from sim.config import DefragSection
from sim.defrag import Defragmenter  # noqa: E402
from sim.objects import FileSystem  # noqa: E402
from sim.slab import SlabCache, SlabCaches  # noqa: E402
from sim.vmscan import SWAP_CLUSTER_MAX, FileLru  # noqa: E402

KEEP = 0.10  # share of objects / files that survive
ZONE_PAGES = 1 << 18  # 1 GiB


def make_machine(nr_pages: int = ZONE_PAGES, cpus: int = 2
                 ) -> tuple[simpy.Environment, Zone, SlabCaches]:
    env = simpy.Environment()
    zone = Zone(nr_pages, cpus=cpus)
    caches = SlabCaches(zone, clock=lambda: env.now)
    return env, zone, caches


def cache_numbers(cache: SlabCache) -> dict[str, int]:
    live = cache.nr_live
    return {
        "live": live,
        "num_slabs": cache.nr_slabs,
        "ideal_slabs": math.ceil(live / cache.objects_per_slab),
        "slab_pages": cache.nr_pages,
    }


def run_pass(env: simpy.Environment, defrag: Defragmenter, caches: SlabCaches) -> None:
    env.process(defrag.run_pass())
    env.run()
    for cache in caches:  # let every RCU free of the pass complete
        cache.rcu_barrier()


def scenario_move(n: int = 100_000, keep: float = KEEP, seed: int = 1) -> dict:
    """A dentry-like cache, a random (1 - keep) freed, one move pass."""
    env, zone, caches = make_machine()
    cache = caches.create("dentry", 192)
    rng = random.Random(seed)
    oids = [cache.alloc(i % zone.cpus) for i in range(n)]
    rng.shuffle(oids)
    for i, oid in enumerate(oids[int(n * keep):]):
        cache.free_rcu(oid, i % zone.cpus)
    cache.rcu_barrier()
    before = cache_numbers(cache)
    pages0 = zone.nr_allocated_pages
    defrag = Defragmenter(env, caches, {"dentry": "move"})
    t = time.perf_counter()
    run_pass(env, defrag, caches)
    wall = time.perf_counter() - t
    zone.check()
    cache.check()
    after = cache_numbers(cache)
    st = defrag.stats
    return {
        "scenario": "move (dentry-like cache)", "before": before, "after": after,
        "moved": st.objects_moved, "evicted": st.objects_evicted, "busy": st.objects_busy,
        "moved_twice": st.objects_moved_twice, "new_slab_pages": st.new_slab_pages,
        "pages_returned_net": pages0 - zone.nr_allocated_pages,
        "cpu_time_s": st.cpu_time, "longest_freeze_s": st.longest_freeze,
        "wall_s": wall, "notes": defrag.notes,
    }


def build_fs(fs_type: str, n: int, keep: float, pinned_share: float, seed: int
             ) -> tuple[simpy.Environment, Zone, SlabCaches, FileSystem]:
    """n one-page files created open; a random (1 - keep) deleted; of the survivors,
    ``pinned_share`` stay open and the rest are closed in random order."""
    env, zone, caches = make_machine()
    dcache = caches.create("dentry", 192)
    inode_name = "shmem_inode_cache" if fs_type == "tmpfs" else "ext4_inode_cache"
    icache = caches.create(inode_name, 752 if fs_type == "tmpfs" else 1128)
    xa = caches.create("radix_tree_node", 584)
    fs = FileSystem(zone, dcache, icache, xa, fs=fs_type)
    fs.attach_lru(FileLru(lambda pfn, owner: fs.evict_folio(pfn), nr_pages=zone.nr_pages), 0)
    rng = random.Random(seed)
    fids = []
    for i in range(n):
        fid = fs.create(1, i % zone.cpus, keep_open=True)
        if fid is None:
            raise RuntimeError("the zone is too small for the scenario")
        fids.append(fid)
    rng.shuffle(fids)
    kept = int(n * keep)
    for i, fid in enumerate(fids[kept:]):
        fs.unlink(fid, i % zone.cpus)
        fs.close(fid, i % zone.cpus)
    survivors = fids[:kept]
    rng.shuffle(survivors)
    pinned = int(round(kept * pinned_share))
    for i, fid in enumerate(survivors[pinned:]):
        fs.close(fid, i % zone.cpus)
    for cache in caches:
        cache.rcu_barrier()
    return env, zone, caches, fs


def scenario_free(fs_type: str = "disk", n: int = 100_000, keep: float = KEEP,
                  pinned_share: float = 0.0, seed: int = 1, mobility: str = "free",
                  max_slabs_per_pass: int = 0) -> dict:
    env, zone, caches, fs = build_fs(fs_type, n, keep, pinned_share, seed)
    dcache = caches["dentry"]
    icache = next(c for c in caches if c.name.endswith("inode_cache"))
    before = {c.name: cache_numbers(c) for c in (dcache, icache)}
    pages0 = {c.name: c.nr_pages for c in (dcache, icache)}
    cfg = DefragSection(max_slabs_per_pass=max_slabs_per_pass)
    defrag = Defragmenter(env, caches, {dcache.name: mobility, icache.name: mobility}, cfg)
    t = time.perf_counter()
    run_pass(env, defrag, caches)
    wall = time.perf_counter() - t
    zone.check()
    caches.check()
    st = defrag.stats
    return {
        "scenario": f"{mobility} on {fs_type}", "pinned_share": pinned_share,
        "before": before,
        "after": {c.name: cache_numbers(c) for c in (dcache, icache)},
        "pages_returned_net": {c.name: pages0[c.name] - c.nr_pages for c in (dcache, icache)},
        "evicted": st.objects_evicted, "moved": st.objects_moved, "busy": st.objects_busy,
        "refused": st.slabs_refused, "page_cache_evicted": st.page_cache_evicted,
        "dentries_evicted": fs.stats.dentries_evicted,
        "inodes_evicted": fs.stats.inodes_evicted, "new_slab_pages": st.new_slab_pages,
        "cpu_time_s": st.cpu_time, "longest_freeze_s": st.longest_freeze, "wall_s": wall,
        "notes": defrag.notes,
    }


def scenario_shrinker(n: int = 100_000, keep: float = KEEP, objects_to_free: int = 0,
                      pinned_share: float = 0.0, seed: int = 1) -> dict:
    """The super block shrinker, scanning until it has freed ``objects_to_free``."""
    env, zone, caches, fs = build_fs("disk", n, keep, pinned_share, seed)
    dcache = caches["dentry"]
    icache = caches["ext4_inode_cache"]
    pages0 = {c.name: c.nr_pages for c in (dcache, icache)}
    freed = scanned = 0
    t = time.perf_counter()
    lru = fs.lru
    while freed < objects_to_free and (dcache.nr_lru or icache.nr_lru or len(lru)):
        if len(lru):
            lru.shrink(SWAP_CLUSTER_MAX)  # shrink_node: the file LRU, then the shrinkers
        if not (dcache.nr_lru or icache.nr_lru):
            continue
        left = objects_to_free - freed
        if left > 1:
            res = fs.super_cache_scan(min(128, left - 1))
        else:  # the last object: one LRU entry, so that exactly objects_to_free go
            res = (dcache if dcache.nr_lru else icache).shrink(1)
        freed += res.freed
        scanned += res.scanned
    for cache in caches:
        cache.rcu_barrier()
    wall = time.perf_counter() - t
    zone.check()
    caches.check()
    return {
        "scenario": "LRU shrinker on disk", "pinned_share": pinned_share,
        "freed": freed, "scanned": scanned,
        "after": {c.name: cache_numbers(c) for c in (dcache, icache)},
        "pages_returned_net": {c.name: pages0[c.name] - c.nr_pages for c in (dcache, icache)},
        "page_cache_evicted": fs.stats.page_cache_evicted,
        "page_cache_reclaimed": fs.stats.page_cache_reclaimed,
        "dentries_evicted": fs.stats.dentries_evicted,
        "inodes_evicted": fs.stats.inodes_evicted, "wall_s": wall,
    }


def run_all(n: int = 100_000, seed: int = 1) -> list[dict]:
    rows = [scenario_move(n, seed=seed)]
    free0 = scenario_free("disk", n, seed=seed)
    rows.append(free0)
    rows.append(scenario_shrinker(n, objects_to_free=free0["evicted"], seed=seed))
    budget = max(1, n // 100)  # a pass limited to the sparsest 1 % of n slabs
    limited = scenario_free("disk", n, seed=seed, max_slabs_per_pass=budget)
    limited["scenario"] += f" (max_slabs_per_pass {budget})"
    rows.append(limited)
    rows.append(scenario_shrinker(n, objects_to_free=limited["evicted"], seed=seed))
    for share in (0.5, 0.9, 1.0):
        rows.append(scenario_free("disk", n, pinned_share=share, seed=seed))
    rows.append(scenario_free("tmpfs", n, seed=seed, mobility="free"))
    rows.append(scenario_free("tmpfs", n, seed=seed, mobility="move"))
    return rows


def table(rows: list[dict]) -> str:
    head = ("| scenario | pinned | evicted / moved | dentry slabs after (ideal) | "
            "dentry pages returned | inode pages returned | page cache dropped |")
    out = [head, "|" + "---|" * 7]
    for r in rows:
        after = r["after"]["dentry"] if "dentry" in r["after"] else r["after"]
        ret = r["pages_returned_net"]
        dret = ret["dentry"] if isinstance(ret, dict) else ret
        iret = next((v for k, v in ret.items() if k != "dentry"), "-") if isinstance(
            ret, dict) else "-"
        work = r.get("freed", r.get("evicted", 0))
        if r.get("moved"):
            work = f"{r.get('evicted', 0)} / {r['moved']}"
        out.append(
            f"| {r['scenario']} | {r.get('pinned_share', '-')} | {work} | "
            f"{after['num_slabs']} ({after['ideal_slabs']}) | {dret} | {iret} | "
            f"{r.get('page_cache_evicted', 0)}"
            + (f" + {r['page_cache_reclaimed']} by the LRU" if r.get("page_cache_reclaimed")
               else "") + " |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the raw rows as JSON")
    args = ap.parse_args()
    rows = run_all(args.objects, args.seed)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(table(rows))
        for r in rows:
            for note in r.get("notes", []):
                print(f"note ({r['scenario']}): {note}")


if __name__ == "__main__":
    main()
