"""Files as dentry -> inode -> page cache / XArray nodes, with tmpfs and disk pinning."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sim.buddy import OWNER_MOVABLE, Zone
from sim.compaction import PagePredicate
from sim.migratetype import MIGRATE_MOVABLE
from sim.objects import (
    XA_CHUNK_SHIFT,
    FileSystem,
    XaNodeCounts,
    _xa_height,
    xa_nodes_for,
    xa_nodes_for_folios,
)
from sim.slab import F_LRU, SlabCaches
from sim.vmscan import FileFolios, FileLru, MigrateOwners


def make_fs(fs: str = "disk", nr_pages: int = 1 << 14, rcu: bool = False, *,
            extents: bool = False, lsm: bool = False):
    """A file system on its own caches; ``extents``: ext4's extent_status entries (disk
    only), ``lsm``: an LSM blob per inode (tests/test_inode_extras.py)."""
    zone = Zone(nr_pages, cpus=2)
    caches = SlabCaches(zone)
    dcache = caches.create("dentry", 192, rcu_free=rcu)
    icache = caches.create("shmem_inode_cache" if fs == "tmpfs" else "ext4_inode_cache",
                           752 if fs == "tmpfs" else 1128, rcu_free=rcu)
    xa = caches.create("radix_tree_node", 584, rcu_free=rcu)
    es = caches.create("extent_status", 40) if extents and fs == "disk" else None
    blobs = caches.create("lsm_inode_cache", 32, rcu_free=rcu) if lsm else None
    fsys = FileSystem(zone, dcache, icache, xa, fs=fs, es_cache=es, lsm_cache=blobs)
    owners = []
    lru = FileLru(lambda pfn, owner: owners[owner](pfn), nr_pages=nr_pages)
    owners.append(fsys.evict_folio)
    fsys.attach_lru(lru, 0)
    return zone, caches, fsys


def test_xarray_nodes_exist_only_for_files_of_more_than_one_page():
    assert [xa_nodes_for(n) for n in (0, 1, 2, 64, 65, 4096, 4097)] == [0, 0, 1, 1, 3, 65, 68]
    zone, caches, fs = make_fs()
    fs.create(1)
    fs.create(0)
    assert caches["radix_tree_node"].nr_live == 0
    fid = fs.create(100)
    assert len(fs.files[fid].xa_nodes) == 3
    assert caches["radix_tree_node"].nr_live == 3


def test_page_cache_pages_are_movable_and_owned_by_the_lru():
    zone, caches, fs = make_fs()
    fid = fs.create(3)
    for pfn in fs.files[fid].pages:
        assert zone.owner_of(pfn) == OWNER_MOVABLE


def test_tmpfs_pins_every_live_files_dentry_and_inode():
    zone, caches, fs = make_fs("tmpfs")
    fid = fs.create(1)
    f = fs.files[fid]
    assert caches["dentry"].is_pinned(f.dentry)
    assert caches["shmem_inode_cache"].is_pinned(f.inode)
    assert caches["dentry"].nr_lru == 0
    assert not fs.reclaimable(caches["dentry"], f.dentry)
    assert not fs.reclaimable(caches["shmem_inode_cache"], f.inode)
    assert fs.shrink(priority=0).freed == 0


def test_a_closed_disk_files_dentry_is_unused_on_the_lru_and_its_inode_follows():
    zone, caches, fs = make_fs("disk")
    dcache, icache = caches["dentry"], caches["ext4_inode_cache"]
    fid = fs.create(2, keep_open=True)
    f = fs.files[fid]
    assert dcache.is_pinned(f.dentry) and dcache.nr_lru == 0
    fs.close(fid)
    assert not dcache.is_pinned(f.dentry) and dcache.flags_of(f.dentry) & F_LRU
    assert icache.nr_lru == 0  # held by its dentry
    fs.open(fid)
    fs.close(fid)  # a second dput of an LRU dentry: referenced, not moved
    res = dcache.shrink(1)
    assert res.rotated == 1 and f.dentry >= 0
    res = dcache.shrink(1)
    assert res.freed == 1 and f.dentry == -1
    # iput_final -> __inode_add_lru: unused, but its mapping holds page cache, so it is
    # not mapping_shrinkable and stays off the inode LRU (5.16+).
    assert icache.nr_lru == 0 and f.inode >= 0
    assert fs.stats.page_cache_evicted == 0  # pages go with the inode, not the dentry


def test_an_inode_with_page_cache_stays_off_the_inode_lru_until_reclaim_takes_its_pages():
    zone, caches, fs = make_fs("disk")
    icache = caches["ext4_inode_cache"]
    fid = fs.create(3)
    f = fs.files[fid]
    assert fs.lru.nr_pages == 3 and len(fs.lru) == 3  # disk page cache is on the file LRU
    assert fs.shrink(nr_to_scan=100).freed == 1  # only the dentry: the inode has pages
    assert f.dentry == -1 and f.inode >= 0 and icache.nr_lru == 0
    assert fs.lru.shrink(2) == 2  # LRU reclaim: two pages go, the inode still has one
    assert icache.nr_lru == 0 and f.nr_cached == 1
    assert fs.lru.shrink(1) == 1  # __remove_mapping of the last page -> inode_add_lru
    assert icache.nr_lru == 1 and f.nr_cached == 0
    assert fs.stats.page_cache_reclaimed == 3 and fs.stats.page_cache_evicted == 0
    res = fs.shrink(nr_to_scan=100)  # now the super block shrinker frees the inode
    assert res.freed == 1 and f.inode == -1 and fs.stats.inodes_evicted == 1
    assert res.page_cache_evicted == 0
    assert zone.nr_allocated_pages == sum(c.nr_pages for c in caches)
    zone.check()


def test_an_open_files_pages_are_reclaimed_but_its_inode_stays():
    zone, caches, fs = make_fs("disk")
    fid = fs.create(4, keep_open=True)
    assert fs.lru.shrink(10) == 4
    f = fs.files[fid]
    assert f.nr_cached == 0 and f.inode >= 0 and caches["ext4_inode_cache"].nr_lru == 0
    assert caches["radix_tree_node"].nr_live == 0  # no shadow entries are modelled


def test_tmpfs_pages_are_not_on_the_file_lru():
    zone, caches, fs = make_fs("tmpfs")
    fs.create(5)
    assert fs.lru is None


def test_large_folios_are_one_lru_entry_counted_as_their_pages():
    zone, caches, fs = make_fs("disk")
    fid = fs.create(1024, folios=[(0, 9), (512, 8), (768, 8)])
    f = fs.files[fid]
    assert f.nr_cached == 1024 and len(f.folios) == 3
    assert len(fs.lru) == 3 and fs.lru.nr_pages == 1024
    assert fs.lru.nr_by_order[9] == 1 and fs.lru.nr_by_order[8] == 2
    assert [zone.order_of(p) for p in f.folios] == [9, 8, 8]
    allocated = zone.nr_allocated_pages
    assert fs.lru.shrink(1) == 512  # the oldest folio goes whole
    assert zone.nr_allocated_pages == allocated - 512
    assert fs.lru.stats.scanned == 512
    zone.check()


def test_xarray_nodes_for_large_folios_are_one_entry_per_folio():
    # 1 GiB of order-9 folios: 64 level-1 nodes and the root, not 4161 nodes.
    assert xa_nodes_for_folios([(i, 9) for i in range(0, 1 << 18, 512)]) == 65
    assert xa_nodes_for(1 << 18) == 4161
    assert xa_nodes_for_folios([(0, 0)]) == 0
    assert xa_nodes_for_folios([(0, 2)]) == 1  # indices 0-3: one node, four slots


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=1, max_size=40))
def test_dense_order0_layouts_match_the_xarray_count(sizes):
    for n in sizes:
        assert xa_nodes_for_folios([(i, 0) for i in range(n)]) == xa_nodes_for(n)


def xa_node_keys(index: int, order: int, top: int) -> list[int]:
    """The XArray nodes a folio (index, order) needs in a tree whose last index is
    ``top``, by definition: one per level from the level its entry is stored at
    (order // 6) up to the root, none when ``top`` is 0 (one page, in ``xa_head``);
    each as ``(index >> shift) << 3 | level``."""
    return [(index >> (XA_CHUNK_SHIFT * (level + 1))) << 3 | level
            for level in range(order // XA_CHUNK_SHIFT, _xa_height(top) + 1)]


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(st.tuples(st.integers(0, 1 << 19), st.integers(0, 9), st.booleans()),
                    min_size=1, max_size=80))
def test_xarray_node_counts_are_the_counts_of_each_folios_node_keys(ops):
    """``XaNodeCounts`` against its definition, a dict of ``xa_node_keys`` -> folios
    that need the node: folios (aligned to their order) added and removed in any
    order, the tree's height growing with the last index (new counts then, as
    ``add_folio`` makes them); the nodes needed, each count, and ``missing`` agree."""
    folios: dict[int, int] = {}  # index -> order, no two overlapping
    top = 0
    counts = XaNodeCounts(0)
    for index, order, remove in ops:
        if remove and folios:
            gone = sorted(folios)[index % len(folios)]
            k = folios.pop(gone)
            counts.remove(gone, k)
        else:
            index &= ~((1 << order) - 1)
            if any(i < index + (1 << order) and index < i + (1 << k)
                   for i, k in folios.items()):
                continue
            new_top = max(top, index + (1 << order) - 1)
            if XaNodeCounts(new_top).height != counts.height:
                counts = XaNodeCounts(new_top)
                for i, k in folios.items():
                    counts.add(i, k)
            top = counts.top = new_top
            keys: dict[int, int] = {}
            for i, k in folios.items():
                for key in xa_node_keys(i, k, top):
                    keys[key] = keys.get(key, 0) + 1
            assert counts.missing(index, order) == sum(
                1 for key in xa_node_keys(index, order, top) if key not in keys)
            counts.add(index, order)
            folios[index] = order
        keys = {}
        for i, k in folios.items():
            for key in xa_node_keys(i, k, top):
                keys[key] = keys.get(key, 0) + 1
        assert counts.nr == len(keys)
        for key, n in keys.items():
            level = key & 7
            assert int(counts.levels[level][key >> 3]) == n
        held = sum(int(c) for level in counts.levels for c in level)
        assert held == sum(keys.values())


def test_evicting_an_inode_evicts_its_page_cache_and_counts_it():
    zone, caches, fs = make_fs("disk")
    icache = caches["ext4_inode_cache"]
    fid = fs.create(70)
    allocated = zone.nr_allocated_pages
    f = fs.files[fid]
    assert fs.reclaimable(icache, f.inode)  # its dentry is unused: alias pruning
    evicted = icache.evict(f.inode)
    assert evicted == 70 and fs.stats.page_cache_evicted == 70
    assert icache.stats.page_cache_evicted == 70
    assert fs.stats.dentries_evicted == 1 and fs.stats.inodes_evicted == 1
    assert zone.nr_allocated_pages == allocated - 70
    assert caches["radix_tree_node"].nr_live == 0
    assert fid in fs.files and fs.files[fid].linked  # the file still exists on disk
    assert fs.open(fid) and fs.stats.lookups == 1
    zone.check()


def test_deleting_a_file_truncates_and_does_not_count_as_eviction():
    zone, caches, fs = make_fs("tmpfs", rcu=True)
    allocated = zone.nr_allocated_pages
    fid = fs.create(5)
    fs.unlink(fid)
    assert fid not in fs.files
    assert fs.stats.page_cache_truncated == 5 and fs.stats.page_cache_evicted == 0
    # dentry and inode wait for RCU; the pages went at once.
    assert caches["dentry"].nr_rcu_pending == 1
    assert caches["shmem_inode_cache"].nr_rcu_pending == 1
    caches.rcu_advance(10.0)
    caches["dentry"].flush_cpu_slabs()
    caches["shmem_inode_cache"].flush_cpu_slabs()
    caches["radix_tree_node"].flush_cpu_slabs()
    assert caches["dentry"].nr_inuse == 0
    assert zone.nr_allocated_pages == allocated + sum(c.nr_pages for c in caches)


def test_an_open_deleted_file_lives_until_its_last_close():
    zone, caches, fs = make_fs("disk")
    fid = fs.create(1, keep_open=True)
    fs.unlink(fid)
    assert fid in fs.files and caches["dentry"].nr_live == 1
    fs.close(fid)
    assert fid not in fs.files and caches["dentry"].nr_live == 0


def test_unlinking_a_closed_disk_file_leaves_a_negative_dentry_on_the_lru():
    """``d_delete`` of the only user: the inode, its pages and its XArray nodes go, the
    dentry stays, referenced on the LRU (the unlink's ``dput`` found it there)."""
    zone, caches, fs = make_fs("disk", lsm=True)
    allocated = zone.nr_allocated_pages
    fid = fs.create(70)
    d = fs.files[fid].dentry
    fs.unlink(fid)
    assert fid not in fs.files
    assert fs.nr_dentry_negative == fs.stats.dentries_negative == 1
    assert fs.stats.page_cache_truncated == 70
    assert caches["dentry"].nr_live == 1
    assert caches["ext4_inode_cache"].nr_live == caches["lsm_inode_cache"].nr_live == 0
    assert caches["radix_tree_node"].nr_live == 0
    assert caches["dentry"].flags_of(d) & F_LRU
    assert fs.reclaimable(caches["dentry"], d)
    assert zone.nr_allocated_pages == allocated + sum(c.nr_pages for c in caches)
    # The shrinker's first pass clears the referenced bit, its second takes the name.
    assert fs.shrink(nr_to_scan=1).freed == 0
    assert fs.shrink(nr_to_scan=1).freed == 1
    assert fs.nr_dentry_negative == 0 and caches["dentry"].nr_live == 0
    assert fs.stats.dentries_evicted == 1 and fs.stats.inodes_evicted == 0
    zone.check()


def test_unlinking_a_file_whose_dentry_was_pruned_looks_it_up_again():
    """The unlink's lookup makes the dentry again (and gets the cached inode back), so
    the name is left negative all the same."""
    zone, caches, fs = make_fs("disk")
    cached, gone = fs.create(1), fs.create(0)
    fs.shrink(nr_to_scan=10)  # both dentries go; the page-less inode follows its dentry
    assert fs.files[cached].dentry < 0 and fs.files[gone].inode < 0
    assert caches["ext4_inode_cache"].nr_live == 1  # the one with page cache
    fs.unlink(cached)
    fs.unlink(gone)  # ext4_iget reads the inode in, and d_delete evicts it again
    assert fs.stats.lookups == 2 and fs.nr_dentry_negative == 2
    assert caches["dentry"].nr_live == 2 and caches["ext4_inode_cache"].nr_live == 0
    assert fs.stats.page_cache_truncated == 1
    zone.check()


def test_tmpfs_and_open_files_leave_no_negative_dentry():
    zone, caches, fs = make_fs("tmpfs")
    fs.unlink(fs.create(1))
    assert fs.nr_dentry_negative == 0 and caches["dentry"].nr_live == 0
    zone, caches, fs = make_fs("disk")
    fid = fs.create(1, keep_open=True)
    fs.unlink(fid)  # in use: unhashed (__d_drop), freed at the last dput
    fs.close(fid)
    assert fs.nr_dentry_negative == 0 and caches["dentry"].nr_live == 0


def test_super_block_shrinker_stops_without_gfp_fs_and_defers_its_share():
    """``super_cache_scan`` returns SHRINK_STOP to a reclaimer without __GFP_FS (such as
    readahead's, under ``memalloc_nofs_save``): nothing is scanned, the share is
    deferred, and the next reclaimer with __GFP_FS scans it."""
    zone, caches, fs = make_fs("disk")
    for _ in range(3000):
        fs.create(1)
    res = fs.shrink(priority=0, gfp_fs=False)
    assert res.scanned == res.freed == 0 and fs.stats.dentries_evicted == 0
    assert fs.nr_deferred == fs.count_objects() * 2  # delta, capped at 2 x freeable
    res = fs.shrink(priority=0)
    assert res.freed == 3000 == fs.stats.dentries_evicted
    zone.check()


def test_super_block_shrinker_prunes_dentries_first_then_inodes():
    zone, caches, fs = make_fs("disk")
    for _ in range(200):
        fs.create(0)
    res = fs.shrink(nr_to_scan=1000)
    # The dentries went in the first batches; their inodes (no page cache) joined the
    # inode LRU and were pruned in the later ones.
    assert fs.stats.dentries_evicted == 200
    assert fs.stats.inodes_evicted == res.freed - 200 > 0
    assert res.page_cache_evicted == 0
    zone.check()


def test_super_block_shrinker_leaves_inodes_with_page_cache():
    zone, caches, fs = make_fs("disk")
    for _ in range(200):
        fs.create(1)
    res = fs.shrink(nr_to_scan=1000)
    assert fs.stats.dentries_evicted == 200 == res.freed
    assert fs.stats.inodes_evicted == 0 and res.page_cache_evicted == 0
    zone.check()


def test_failed_create_leaves_nothing_allocated():
    zone, caches, fs = make_fs("disk", nr_pages=1 << 10)
    created = 0
    while fs.create(8) is not None:
        created += 1
    assert created > 0 and fs.stats.create_failed >= 1
    live = caches["dentry"].nr_live
    assert live == created == caches["ext4_inode_cache"].nr_live
    caches.check()
    zone.check()


def test_bad_fs_type_is_a_clear_error():
    zone = Zone(1 << 10)
    caches = SlabCaches(zone)
    with pytest.raises(ValueError, match="expected fs one of tmpfs, disk, got 'ext9'"):
        FileSystem(zone, caches.create("dentry", 192), caches.create("inode_cache", 600),
                   fs="ext9")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["set", "set", "set", "del", "get"]),
                          st.integers(-1, 300)), max_size=150))
def test_the_file_table_is_a_dict_of_files_by_id(script):
    """FileTable against a dict: the same file for every id after any sets and
    removals (places reused), the same length, and values in the dict's order when ids
    are set in increasing order, as a file system gives them."""
    from sim.objects import File, FileTable

    table, ref = FileTable(), {}
    for op, fid in script:
        if op == "set":
            if fid < 0:
                with pytest.raises(ValueError):
                    table[fid] = File(0, 0)
                continue
            f = File(fid, 0)
            table[fid] = f
            ref[fid] = f
        elif op == "del":
            if fid in ref:
                del table[fid]
                del ref[fid]
            else:
                with pytest.raises(KeyError):
                    del table[fid]
        assert (fid in table) == (fid in ref)
        assert table.get(fid) is ref.get(fid)
        assert len(table) == len(ref)
    assert sorted(map(id, table.unordered())) == sorted(map(id, ref.values()))
    # made in id order (a file system's ids only grow): values() is the dict's order
    table, ref = FileTable(), {}
    made = sorted({fid for _, fid in script if fid >= 0})
    for k, fid in enumerate(made):
        table[fid] = ref[fid] = File(fid, 0)
        if k % 3 == 2:  # some go again, freeing places the later ones reuse
            gone = made[k - 1]
            del table[gone]
            del ref[gone]
    assert [f.fid for f in table.values()] == list(ref) == list(table)
    assert bool(table) == bool(ref)


def test_by_oid_maps_ids_like_a_dict_of_ids_at_or_above_zero():
    from sim.objects import ByOid

    m = ByOid()
    assert m.get(5) is None and m.get(-1) is None
    m[5] = "five"
    m[2] = "two"
    assert (m.get(5), m[2], m.get(3), m.get(6)) == ("five", "two", None, None)
    del m[5]
    assert m.get(5) is None
    with pytest.raises(KeyError):
        del m[5]
    with pytest.raises(KeyError):
        m[3]
    m.discard(2)
    m.discard(99)  # nothing there: no error, as dict.pop(k, None)
    assert m.get(2) is None
    with pytest.raises(ValueError):
        m[-1] = "minus one"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["set", "set", "del", "discard", "get"]),
                          st.integers(-2, 400), st.integers(0, 3)), max_size=120))
def test_fs_by_oid_maps_ids_to_file_systems_like_a_dict(script):
    """FsByOid, a byte per id, against a dict of ids to the same objects: every lookup
    gives the identical file system, whichever of several, after any sets and removals."""
    from sim.objects import FsByOid

    zone = Zone(1 << 10)
    caches = SlabCaches(zone)
    dentry, inode = caches.create("dentry", 192), caches.create("inode_cache", 600)
    fss = [FileSystem(zone, dentry, inode) for _ in range(4)]
    m, ref = FsByOid(), {}
    for op, oid, k in script:
        if op == "set":
            if oid < 0:
                with pytest.raises(ValueError):
                    m[oid] = fss[k]
                continue
            m[oid] = fss[k]
            ref[oid] = fss[k]
        elif op == "del":
            if oid in ref:
                del m[oid]
                del ref[oid]
            else:
                with pytest.raises(KeyError):
                    del m[oid]
        elif op == "discard":
            m.discard(oid)
            ref.pop(oid, None)
        assert m.get(oid) is ref.get(oid)
    for oid in range(-2, 402):
        assert m.get(oid) is ref.get(oid)


@pytest.mark.parametrize("shared", [False, True])
@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "add", "evict", "migrate", "unlink"]),
                          st.integers(0, 2), st.integers(0, 1000)), max_size=80))
@example([("add", 0, 0), ("add", 0, 0), ("add", 0, 0), ("migrate", 0, 0), ("evict", 0, 1),
          ("add", 0, 0), ("unlink", 0, 0), ("add", 1, 0)])
# 20 folios, then 11 evicted: the list is compacted (the survivors renumbered), then used
@example([("add", 0, 0)] * 20 + [("evict", 0, 7 * k) for k in range(12)]
         + [("add", 0, 0), ("migrate", 0, 3), ("evict", 0, 5), ("add", 0, 0)])
def test_the_page_cache_tables_keep_each_files_folios_in_the_order_added(shared, script):
    """The per-pfn tables (``page->mapping``) and each file's folio list against a dict
    per file: a folio added goes last, one evicted leaves, one compaction moved goes
    last under its new pfn (a dict's pop and insert), and a deleted file's are freed.
    ``shared``: the positions are kept in an index shared with other owners of pages
    (the machine's ``page_index``), who write their own values for pages the file
    system does not hold: before it takes a page and after it lets one go."""
    from sim.buddy import PageIndex

    zone, caches, fs = make_fs()
    index = PageIndex(zone.end_pfn)
    if shared:
        fs.share_page_index(index)
    fids = [fs.create(0) for _ in range(3)]
    model = {fid: {} for fid in fids}  # head pfn -> file index, in insertion order
    next_index = dict.fromkeys(fids, 0)
    for op, k, r in script:
        fid = fids[k]
        if fid not in fs.files:
            continue
        folios = model[fid]
        if op == "add":
            pfn = zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE)
            index[pfn] = r % 7  # what the page's last owner left there
            assert fs.add_folio(fid, pfn, next_index[fid], 0)
            folios[pfn] = next_index[fid]
            next_index[fid] += 1
        elif op == "evict" and folios:
            pfn = list(folios)[r % len(folios)]
            fs.lru.remove(pfn)
            fs.evict_folio(pfn)
            del folios[pfn]
            assert not fs.holds_page(pfn) and not zone.is_allocated(pfn)
            index[pfn] = r % 5  # its next owner's
        elif op == "migrate" and folios:
            old = list(folios)[r % len(folios)]
            new = zone.alloc(0, MIGRATE_MOVABLE, 0, OWNER_MOVABLE)
            index[new] = r % 3
            fs.lru.migrate(old, new)
            assert fs.migrate_page(old, new)
            zone.free(old, 0, 0)
            index[old] = r % 11
            folios[new] = folios.pop(old)
        elif op == "unlink":
            fs.unlink(fid)
            assert not any(fs.holds_page(pfn) or zone.is_allocated(pfn) for pfn in folios)
            for pfn in folios:
                index[pfn] = r % 13
            model[fid] = {}
        for fid2, want in model.items():
            if fid2 in fs.files:
                f = fs.files[fid2]
                assert list(f.folios.items()) == list(want.items())
                assert f.pages == list(want) and f.nr_cached == len(want)
        assert all(fs.holds_page(pfn) for want in model.values() for pfn in want)
    assert fs.lru.nr_pages == sum(len(want) for want in model.values())


def test_compactions_page_cache_question_and_migration_owners_in_zone_pfns():
    """The compiled hooks the engine gives compaction (sim/vmscan.py): ``FileFolios``
    answers ``holds_page`` at node pfn ``pfn + start``; ``MigrateOwners`` moves the LRU's
    entry first, then asks the owners in order until one owns the block."""
    zone, caches, fs = make_fs("disk")
    fid = fs.create(3)
    head = fs.files[fid].pages[0]
    start = 64
    folios = FileFolios([fs], start)
    assert all(folios.holds(pfn - start) == fs.holds_page(pfn)
               for pfn in range(start, zone.nr_pages))
    assert folios.holds(head - start) and not FileFolios([], start).holds(head - start)
    assert PagePredicate(lambda pfn: pfn == 7).holds(7) and not PagePredicate().holds(7)

    calls = []

    def owner(name, answer):
        return lambda old, new, order: calls.append((name, old, new, order)) or answer

    migrate = MigrateOwners(fs.lru, start, [owner("a", False), fs, owner("b", True)])
    new = zone.nr_pages - 1  # the page's new place (the zone's part is not asked here)
    assert not fs.holds_page(new)
    migrate(head - start, new - start, 0)  # a page-cache folio: the file system owns it
    assert calls == [("a", head, new, 0)]
    assert fs.holds_page(new) and not fs.holds_page(head)
    assert new in fs.lru and head not in fs.lru
    calls.clear()
    migrate(head - start, new - 1 - start, 0)  # no longer ours: the last owner takes it
    assert calls == [("a", head, new - 1, 0), ("b", head, new - 1, 0)]
    assert fs.holds_page(new)


@pytest.mark.parametrize("budget", [None, 3])
def test_a_refused_write_folio_falls_back_to_smaller_ones_or_leaves_nothing(budget):
    """``create(size=...)``: a folio of the write plan refused sends the rest of the
    file through readahead's write path, one order lower at a time, around the folios
    already allocated (here the plan is orders 8, 4, 1 and 0, and orders 3 and 4 are
    refused); when the allocator runs dry on the way (``budget`` folios in all) the
    file is given up and every folio allocated for it, before the refusal and after
    it, is freed."""
    zone, caches, fs = make_fs("disk", nr_pages=1 << 14)
    given = []

    def alloc_folio(order: int, cpu: int) -> int | None:
        if order in (3, 4) or (budget is not None and len(given) >= budget):
            return None
        pfn = zone.alloc(order, MIGRATE_MOVABLE, cpu, OWNER_MOVABLE)
        given.append(pfn)
        return pfn

    fs.alloc_folio = alloc_folio
    fid = fs.create(size=(1 << 20) + (64 << 10) + 3 * 4096)
    zone.drain_all_pages()
    if budget is None:
        f = fs.files[fid]
        orders = sorted(zone.order_of(p) for p in f.folios)
        assert f.nr_cached == 275 and len(given) == len(orders)
        assert orders[-1] == 8 and orders[-2] == 2  # order 4's 16 pages as order 2s
        assert sorted(f.folios) == sorted(given)
    else:
        assert fid is None and len(given) == budget and not fs.files
        assert not any(zone.is_allocated(p) for p in given)  # all freed again
    zone.check()
    caches.check()
