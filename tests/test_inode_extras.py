"""What ext4 and the LSMs allocate per inode besides the inode (sim/objects.py): the
extent status tree's entries (extent_status) and the LSM inode blob (lsm_inode_cache)."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_objects import make_fs as make_objects_fs

from sim.buddy import Zone
from sim.config import load_config
from sim.experiment import validate_config
from sim.machine import Machine
from sim.migratetype import MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE
from sim.objects import FileSystem
from sim.procfs import parse_slabinfo
from sim.slab import SlabCaches, create_cache

REPO = Path(__file__).resolve().parent.parent
FILESERVER = REPO / "configs" / "real" / "fileserver-a"


def make_fs(fs: str = "disk", *, nr_pages: int = 1 << 14, rcu: bool = True):
    return make_objects_fs(fs, nr_pages, rcu, extents=True, lsm=True)


def live(caches: SlabCaches, name: str) -> int:
    return caches[name].nr_live if name in caches else 0


# ---------------------------------------------------------------- the caches


def test_the_caches_have_the_real_kernels_sizes_and_flags():
    """40-byte extent_status (102 a slab) and 32-byte lsm_inode_cache (128 a slab), as
    the real 6.18 file server's slabinfo shows them; extent_status is
    SLAB_RECLAIM_ACCOUNT (ext4_init_es), lsm_inode_cache SLAB_PANIC alone (unmovable),
    its blobs freed through call_rcu (inode_free_by_rcu)."""
    real = {e.name: e for e in parse_slabinfo((FILESERVER / "start.slabinfo").read_text())}
    caches = SlabCaches(Zone(1 << 12, cpus=2))
    for name in ("extent_status", "lsm_inode_cache"):
        cache = create_cache(caches, name, None, None, 100)
        assert (cache.size, cache.objects_per_slab, 1 << cache.order) == (
            real[name].objsize, real[name].objperslab, real[name].pagesperslab)
    assert caches["extent_status"].migratetype == MIGRATE_RECLAIMABLE
    assert not caches["extent_status"].rcu_free
    assert caches["lsm_inode_cache"].migratetype == MIGRATE_UNMOVABLE
    assert caches["lsm_inode_cache"].rcu_free


# ---------------------------------------------------------------- per file


@pytest.mark.parametrize("size, write_size", [
    (1, None), (2048, None), (4096, None), (4097, None), (1 << 20, None),
    (1 << 20, 4096), (300 << 10, 64 << 10)])
def test_a_written_ext4_file_has_two_extent_entries_and_one_lsm_blob(size, write_size):
    """ext4_da_map_blocks on the first block: the query finds no extent and caches the
    hole [0, EXT_MAX_BLOCKS) (ext4_ext_determine_insert_hole), then the delayed extent
    splits it; every later block of the write merges into the delayed extent, which
    writeback turns into one written extent. Two entries, whatever the size and the
    write(2) calls."""
    zone, caches, fs = make_fs()
    n = 25
    fids = [fs.create(size=size, write_size=write_size) for _ in range(n)]
    assert None not in fids
    assert live(caches, "extent_status") == 2 * n
    assert live(caches, "lsm_inode_cache") == n
    for fid in fids:
        f = fs.files[fid]
        assert f.extents is not None and len(f.extents) == 2 and f.lsm >= 0


def test_an_empty_file_and_a_file_already_on_disk_have_no_extent_entries():
    """No write, no block mapped: nothing in the extent status tree (an empty file;
    fragsim's directories; a file created with pages but not written, such as the
    page_cache workload's). Each inode still has its LSM blob."""
    zone, caches, fs = make_fs()
    fs.create(size=0)
    fs.create(0)
    fs.create(8)
    assert live(caches, "extent_status") == 0
    assert live(caches, "lsm_inode_cache") == 3


def test_tmpfs_inodes_get_an_lsm_blob_and_no_extent_status():
    """security_inode_alloc runs for every inode (inode_init_always_gfp), shmem's too;
    the extent status tree is ext4's."""
    zone, caches, fs = make_fs("tmpfs")
    for _ in range(30):
        fs.create(size=200)
    assert live(caches, "lsm_inode_cache") == 30
    assert "extent_status" not in caches
    with pytest.raises(ValueError, match="extent_status entries are ext4's"):
        FileSystem(zone, caches["dentry"], caches["shmem_inode_cache"], fs="tmpfs",
                   es_cache=caches.create("extent_status", 40))


def test_unlink_frees_the_extents_at_once_and_the_blob_after_rcu():
    """ext4_evict_inode -> ext4_clear_inode removes the whole extent status tree
    (ext4_es_free_extent: kmem_cache_free at once); destroy_inode ->
    security_inode_free hands the blob to call_rcu."""
    zone, caches, fs = make_fs()
    fids = [fs.create(size=2048) for _ in range(10)]
    for fid in fids:
        fs.unlink(fid)
    assert live(caches, "extent_status") == 0 and caches["extent_status"].nr_inuse == 0
    assert live(caches, "lsm_inode_cache") == 0
    assert caches["lsm_inode_cache"].nr_rcu_pending == 10
    caches.rcu_advance(10.0)
    assert caches["lsm_inode_cache"].nr_inuse == 0
    caches.check()


def test_an_inode_evicted_by_reclaim_takes_its_extents_and_blob_and_a_lookup_gets_a_blob():
    zone, caches, fs = make_fs()
    icache = caches["ext4_inode_cache"]
    fid = fs.create(size=2048)
    f = fs.files[fid]
    icache.evict(f.inode)
    assert f.extents is None and f.lsm == -1
    assert live(caches, "extent_status") == 0 and live(caches, "lsm_inode_cache") == 0
    # ext4_lookup -> ext4_iget: a new inode and blob; no block mapped yet, no extents.
    assert fs.open(fid)
    assert live(caches, "lsm_inode_cache") == 1 and live(caches, "extent_status") == 0


def test_the_es_shrinker_frees_the_data_entry_then_the_referenced_hole():
    """es_do_reclaim_extents in logical block order: the written extent goes on the
    first pass; the hole, referenced by ext4_da_map_blocks' lookup under i_data_sem,
    has its bit cleared and goes on the next. The inode and its blob stay."""
    zone, caches, fs = make_fs()
    es = caches["extent_status"]
    fids = [fs.create(size=2048) for _ in range(4)]
    assert es.count_objects() == 8
    res = es.shrink(8)
    assert (res.freed, res.rotated) == (4, 4)
    assert all(len(fs.files[fid].extents) == 1 for fid in fids)
    res = es.shrink(8)
    assert res.freed == 4 and es.nr_live == 0
    assert all(fs.files[fid].extents is None for fid in fids)
    assert fs.stats.extents_reclaimed == 8
    assert live(caches, "ext4_inode_cache") == 4 and live(caches, "lsm_inode_cache") == 4
    for fid in fids:  # nothing left to free twice
        fs.unlink(fid)
    caches.rcu_advance(10.0)
    assert es.nr_inuse == 0 and caches["lsm_inode_cache"].nr_inuse == 0


def test_the_es_shrinker_is_not_scaled_by_vfs_cache_pressure():
    """ext4_es_count returns es_stats_shk_cnt as it is."""
    zone = Zone(1 << 12, cpus=2)
    caches = SlabCaches(zone)
    es = caches.create("extent_status", 40, vfs_cache_pressure=500)
    fs = FileSystem(zone, caches.create("dentry", 192, vfs_cache_pressure=500),
                    caches.create("ext4_inode_cache", 1128, vfs_cache_pressure=500),
                    es_cache=es, vfs_cache_pressure=500)
    fs.create(size=100)
    assert es.count_objects() == 2


def test_a_failed_create_leaves_no_extent_entry_and_no_blob():
    zone, caches, fs = make_fs(nr_pages=1 << 10, rcu=False)
    created = 0
    while fs.create(size=8 << 12) is not None:
        created += 1
    assert created > 0 and fs.stats.create_failed >= 1
    assert live(caches, "extent_status") == 2 * created
    assert live(caches, "lsm_inode_cache") == created == live(caches, "ext4_inode_cache")
    caches.check()
    zone.check()


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["create", "unlink", "es_shrink", "sb_shrink",
                                               "open"]),
                              st.integers(0, 5000)), max_size=60),
       fs_type=st.sampled_from(["disk", "tmpfs"]))
def test_extent_entries_and_blobs_are_conserved(ops, fs_type):
    """Whatever runs, every extent_status entry belongs to one live inode's tree and
    every inode has one blob; once every file is gone and RCU has run, none is left."""
    zone, caches, fs = make_fs(fs_type)
    fids: list[int] = []
    for op, arg in ops:
        if op == "create":
            fid = fs.create(size=arg)
            if fid is not None:
                fids.append(fid)
        elif op == "unlink" and fids:
            fs.unlink(fids.pop(arg % len(fids)))
        elif op == "es_shrink" and "extent_status" in caches:
            caches["extent_status"].shrink(arg % 7 + 1)
        elif op == "sb_shrink":
            fs.shrink(nr_to_scan=arg % 300 + 1)
        elif op == "open" and fids:
            fid = fids[arg % len(fids)]
            if fs.open(fid):
                fs.close(fid)
        files = fs.files.values()
        assert live(caches, "extent_status") == sum(len(f.extents or ()) for f in files)
        assert all(f.extents is None or f.inode >= 0 for f in files)
        assert live(caches, "lsm_inode_cache") == sum(f.inode >= 0 for f in files)
        assert all((f.lsm >= 0) == (f.inode >= 0) for f in files)
    for fid in fids:
        fs.unlink(fid)
    caches.rcu_advance(1e9)
    assert live(caches, "extent_status") == 0
    assert caches["lsm_inode_cache"].nr_inuse == 0
    caches.check()


# ---------------------------------------------------------------- the machine


def _machine(*overrides: str) -> Machine:
    config = load_config("configs/quickstart.yaml",
                         ["machine.memory=64MiB", "machine.boot=none", *overrides])
    return Machine(config, seed=1)


def test_the_machine_gives_ext4_extent_entries_and_every_inode_a_blob():
    machine = _machine()
    ext4 = machine.filesystem("disk")
    shmem = machine.filesystem("tmpfs")
    xfs = machine.filesystem("disk", inode_cache="xfs_inode")
    assert ext4.es_cache is machine.caches["extent_status"]
    assert shmem.es_cache is None and xfs.es_cache is None
    blobs = machine.caches["lsm_inode_cache"]
    assert ext4.lsm_cache is blobs and shmem.lsm_cache is blobs and xfs.lsm_cache is blobs


def test_lsm_inode_blob_false_is_a_kernel_without_inode_blobs():
    machine = _machine("slab.lsm_inode_blob=false")
    assert machine.filesystem("disk").lsm_cache is None
    assert "lsm_inode_cache" not in machine.caches


def _snapshot_machine(snapshot: Path) -> Machine:
    config = validate_config({
        "name": "from", "seed": 1, "duration": "1s", "machine": {"from": str(snapshot)},
        "workloads": [{"kind": "thp_probe", "start": "10s"}]}, "x.yaml")
    return Machine(config, config.seed)


def test_a_snapshot_machine_has_blobs_only_if_its_slabinfo_lists_the_cache(tmp_path):
    machine = _snapshot_machine(FILESERVER / "start")
    fsys = machine.filesystem("disk")
    assert fsys.lsm_cache is machine.caches["lsm_inode_cache"]
    assert fsys.es_cache is machine.caches["extent_status"]
    # The same snapshot without the cache in its slabinfo: a kernel with no inode blob.
    for path in FILESERVER.glob("start.*"):
        text = path.read_text()
        if path.suffix == ".slabinfo":
            text = "".join(line for line in text.splitlines(keepends=True)
                           if not line.startswith("lsm_inode_cache "))
        (tmp_path / path.name).write_text(text)
    machine = _snapshot_machine(tmp_path / "start")
    assert machine.filesystem("disk").lsm_cache is None
    assert "lsm_inode_cache" not in machine.caches
