"""A machine of several zones (issue 18, item 2): the engine on a sim/mmzone.py ``Node``.

Every client (slab caches, file systems and the file LRU, workloads, compaction's
migrations) holds node pfns; each zone's buddy allocator keeps its own. These tests run
whole workloads on a node of three zones and check that every page any owner holds is
an allocated block of the zone its node pfn falls in, with the owner's tag, after
allocation across zones, reclaim and compaction in zones that do not start at pfn 0;
and that every per-zone output lists every zone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.buddy import OWNER_MOVABLE
from sim.errors import FragsimError
from sim.experiment import validate_config
from sim.machine import Machine
from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_TYPES
from sim.mmzone import ZONE_DMA, ZONE_DMA32, ZONE_NORMAL
from sim.procfs import (
    buddyinfo_of,
    format_buddyinfo,
    pagetypeinfo_of_zones,
    parse_buddyinfo,
    parse_pagetypeinfo,
    parse_slabinfo,
    parse_zoneinfo,
)
from sim.runner import build_workloads, run_machine

MIB = 1 << 20
# 16 MiB DMA, 48 MiB DMA32, 64 MiB Normal: 128 MiB in three zones, the upper two
# starting at node pfns 4096 and 16384.
ZONES = [{"DMA": "16MiB"}, {"DMA32": "48MiB"}, {"Normal": "64MiB"}]


def config(workloads: list[dict], duration: str = "6s", zones=None) -> object:
    return validate_config({
        "name": "zones", "seed": 3, "duration": duration, "sample_every": "500ms",
        "machine": {"memory": "128MiB", "cpus": 2, "zones": ZONES if zones is None else zones},
        "workloads": workloads}, "test")


MIXED = [
    {"kind": "fs_churn", "fs": "disk", "files": 20000, "create_rate": 20000,
     "delete_rate": 20000, "max_bytes": "12KiB", "keep": 0.3},
    {"kind": "page_cache", "start": "1s", "rate": "64MiB", "file_size": "16MiB"},
    {"kind": "kernel_alloc", "rate": 300, "orders": {0: 0.7, 1: 0.1, 3: 0.2},
     "lifetime": {"dist": "exponential", "mean": "2s"}},
    {"kind": "anon", "size": "24MiB", "grow_rate": "24MiB", "churn_rate": "8MiB",
     "shrink_at": "3s", "shrink_to": "8MiB"},
    {"kind": "compact_memory", "at": ["4s", "5.5s"]},
    {"kind": "thp_probe"},
]


def run_to_end(cfg) -> Machine:
    machine = Machine(cfg, cfg.seed)
    machine.start(build_workloads(machine))
    machine.env.run(until=cfg.duration)
    return machine


@pytest.fixture(scope="module")
def mixed() -> Machine:
    return run_to_end(config(MIXED))


def test_the_node_has_the_three_zones_at_their_node_pfns(mixed):
    node = mixed.node
    assert mixed.multi_zone and mixed.zone is node
    assert [(name, z.zone_start_pfn, z.nr_pages) for name, z in mixed.zones] == [
        ("DMA", 0, 4096), ("DMA32", 4096, 12288), ("Normal", 16384, 16384)]
    assert node.end_pfn == 32768 == node.nr_pages


def test_every_zones_buddy_and_every_cache_keep_their_invariants(mixed):
    mixed.node.check()
    mixed.caches.check()


def held_pages(machine: Machine) -> dict[int, tuple[int, int]]:
    """Every block an owner says it holds: node pfn -> (order, expected owner tag or -1
    for 'movable')."""
    held: dict[int, tuple[int, int]] = {}
    for fsys in machine.filesystems:
        for f in fsys.files.values():
            for pfn in f.folios:
                held[pfn] = (-1, OWNER_MOVABLE)
    for cache in machine.caches:
        for pfn, slab in cache._slab_at.items():
            held[pfn] = (slab.order, cache.owner_tag)
    return held


def test_every_page_an_owner_holds_is_allocated_in_the_zone_its_node_pfn_names(mixed):
    node = mixed.node
    held = held_pages(mixed)
    assert len(held) > 1000
    zones_used = set()
    for pfn, (order, owner) in held.items():
        zone = node.page_zone(pfn)
        local = pfn - zone.zone_start_pfn
        assert zone.is_allocated(local), pfn
        assert order < 0 or zone.order_of(local) == order, pfn
        assert zone.owner_of(local) == owner, pfn
        zones_used.add(zone.zone_idx)
    # Normal first, then DMA32 once Normal is at its watermark (and its NOFRAGMENT
    # pass): owners hold pages in both.
    assert {ZONE_NORMAL, ZONE_DMA32} <= zones_used
    # The file LRU's folios are the files' own folios, by node pfn.
    files = [pfn for fsys in mixed.filesystems if fsys.lru is not None
             for f in fsys.files.values() for pfn in f.folios]
    assert files and all(pfn in mixed.lru for pfn in files)
    assert len(mixed.lru) == len(files)


def test_a_folios_slot_and_lru_place_are_read_only_where_the_owners_tables_name_it(mixed):
    """The file systems' slots and the LRU's positions are the words the free lists
    link free blocks with (``page_links``, as ``struct page``): at a pfn they do not
    hold, the words are a free list's links or another owner's. After a run with
    reclaim and compaction, each still holds exactly the folios its own tables list,
    and every free block's head is held by none."""
    node = mixed.node
    free_heads = {zone.zone_start_pfn + pfn for _, zone in mixed.zones
                  for order in range(zone.max_order + 1) for mt in range(MIGRATE_TYPES)
                  for pfn in zone.free_blocks(order, mt)}
    assert len(free_heads) > 100
    lru_folios = set()
    for fsys in mixed.filesystems:
        folios = {pfn for f in fsys.files.values() for pfn in f.folios}
        assert folios and {pfn for pfn in range(node.end_pfn) if fsys.holds_page(pfn)} == folios
        assert not folios & free_heads
        if fsys.lru is not None:
            lru_folios |= folios
    assert {pfn for pfn in range(node.end_pfn) if pfn in mixed.lru} == lru_folios
    # the words at the free heads are links: many would name a slot or a queue place
    nxt, prv = node.page_links()
    assert sum(0 <= nxt[pfn] < 1000 for pfn in free_heads) > 10


def test_compaction_migrated_pages_inside_the_zones_above_pfn_0_and_owners_followed(mixed):
    """The compactions of zones starting at node pfn 4096 and 16384 moved pages; the
    owner checks above pass after them, so each move reached its owner in node pfns."""
    by_zone = {idx: c.stats.migrated for idx, c in mixed.compactors.items()}
    assert by_zone[ZONE_NORMAL] + by_zone[ZONE_DMA32] > 0
    assert mixed.compactor.stats.migrated == sum(by_zone.values())
    assert set(by_zone) == {ZONE_DMA, ZONE_DMA32, ZONE_NORMAL}


def test_lowmem_reserve_keeps_dma_for_dma_requests(mixed):
    """Normal requests reach DMA only down to its watermark plus lowmem_reserve[Normal]
    (the kernel's setup_per_zone_lowmem_reserve ratio 256 of DMA32 + Normal)."""
    dma = mixed.node.node_zones[ZONE_DMA]
    assert dma.lowmem_reserve[ZONE_NORMAL] == (12288 + 16384) // 256
    assert dma.nr_free_pages + dma.pcp_pages >= dma.min_wmark


@pytest.fixture(scope="module")
def result():
    cfg = config(MIXED, duration="3s")
    return run_machine(cfg, cfg.seed, "default")


def test_samples_carry_every_zone_and_the_node_is_their_sum(result):
    series = result.series
    for order in range(11):
        zone_sum = sum(series[("nr_free", f"{z}/{order}")] for z in ("DMA", "DMA32", "Normal"))
        assert np.array_equal(series[("nr_free", str(order))], zone_sum)
        zone_avail = sum(series[("avail", f"{z}/{order}")] for z in ("DMA", "DMA32", "Normal"))
        assert np.array_equal(series[("avail", str(order))], zone_avail)
    for z in ("DMA", "DMA32", "Normal"):
        assert (("free_pages", z) in series and ("fragmentation_score", z) in series
                and ("pageblocks", f"{z}/Movable") in series)
    blocks = sum(series[("pageblocks", f"{z}/{t}")] for z in ("DMA", "DMA32", "Normal")
                 for t in ("Unmovable", "Movable", "Reclaimable"))
    # every pageblock of the node is typed one of the three or HIGHATOMIC
    assert np.all(blocks + series[("highatomic_pageblocks", "")] == 32768 // 512)


def test_the_final_files_print_every_zone(result):
    buddy = parse_buddyinfo(result.final["buddyinfo"])
    assert [z.zone for z in buddy] == ["DMA", "DMA32", "Normal"]
    info = parse_zoneinfo(result.final["zoneinfo"])
    assert [(z.zone, z.managed) for z in info] == [
        ("DMA", 4096), ("DMA32", 12288), ("Normal", 16384)]
    for name in ("pagetypeinfo", "unusable_index", "extfrag_index"):
        text = result.final[name]
        assert all(f"zone {z:>8}" in text for z in ("DMA", "DMA32", "Normal")), name
    assert result.summary["buddy"]["zones"].keys() == {"DMA", "DMA32", "Normal"}


def test_one_zone_normal_writes_no_per_zone_keys():
    cfg = config(MIXED[:1], duration="1s", zones=["Normal"])
    res = run_machine(cfg, cfg.seed, "default")
    assert not [k for (_, k) in res.series if "/" in k or k in ("DMA", "DMA32", "Normal")]
    assert [z.zone for z in parse_buddyinfo(res.final["buddyinfo"])] == ["Normal"]


# --------------------------------------------------------------------------- machine.from

SNAP = Path(__file__).parent.parent / "configs/real/fileserver-a/start"


def from_config(snapshot=SNAP, workloads=None, **machine) -> object:
    return validate_config({
        "name": "from", "seed": 2, "duration": "1s",
        "machine": {"from": str(snapshot), **machine},
        "workloads": workloads or [{"kind": "thp_probe", "start": "10s"}]}, "x.yaml")


@pytest.fixture(scope="module")
def from_machine() -> Machine:
    cfg = from_config()
    return Machine(cfg, cfg.seed)


def test_machine_from_takes_memory_zones_and_cpus_from_the_snapshot():
    cfg = from_config()
    zoneinfo = parse_zoneinfo(Path(f"{SNAP}.zoneinfo").read_text())
    assert cfg.machine.cpus == len(zoneinfo[0].pcp) == 2
    assert [next(iter(z)) for z in cfg.machine.zones] == ["DMA", "DMA32", "Normal"]
    assert cfg.machine.memory == sum(next(iter(z.values())) for z in cfg.machine.zones)


def test_a_machine_from_a_snapshot_prints_its_buddyinfo_pagetypeinfo_and_pagesets(
        from_machine):
    """At t = 0, byte for byte: every zone's buddyinfo line, every pagetypeinfo free
    count and pageblock count; each CPU's pageset count, high and batch as zoneinfo
    prints them; every slab cache's slabinfo objects and slabs."""
    m = from_machine
    real_buddy = Path(f"{SNAP}.buddyinfo").read_text()
    ours = format_buddyinfo([buddyinfo_of(z, name=n) for n, z in m.zones])
    assert ours == real_buddy
    real_pt = parse_pagetypeinfo(Path(f"{SNAP}.pagetypeinfo").read_text())
    ours_pt = pagetypeinfo_of_zones(m.zones)
    assert ours_pt.free == real_pt.free
    assert ours_pt.blocks == real_pt.blocks
    zoneinfo = {z.zone: z for z in parse_zoneinfo(Path(f"{SNAP}.zoneinfo").read_text())}
    for name, zone in m.zones:
        real = zoneinfo[name]
        assert (zone.min_wmark, zone.low_wmark, zone.high_wmark) == (
            real.min, real.low, real.high)
        assert zone.lowmem_reserve[:len(real.protection)] == real.protection
        for entry in real.pcp:
            pcp = zone.pcp[entry["cpu"]]
            assert (pcp.count, pcp.high, pcp.batch) == (
                entry["count"], entry["high"], entry["batch"]), (name, entry)
    real_slabs = {e.name: e for e in parse_slabinfo(Path(f"{SNAP}.slabinfo").read_text())}
    ours_slabs = {e.name: e for e in parse_slabinfo(m.caches.format_slabinfo())}
    assert ours_slabs.keys() == real_slabs.keys()
    for name, e in real_slabs.items():
        assert (ours_slabs[name].active_objs, ours_slabs[name].num_slabs) == (
            e.active_objs, e.num_slabs), name
    m.node.check()
    m.caches.check()


def test_the_snapshot_layout_is_spread_over_the_zone_not_packed(from_machine):
    """The unmovable and reclaimable pageblocks and the free blocks lie over the whole
    Normal zone (a packed layout puts them all in its first pageblocks), and another
    seed lays them out differently with the same counts."""
    normal = from_machine.node.node_zones[ZONE_NORMAL]
    types = [normal.pageblock_migratetype(b << 9) for b in range(normal.nr_pageblocks)]
    others = [b for b, t in enumerate(types) if t != MIGRATE_MOVABLE]
    assert len(others) > 10
    assert others[0] < normal.nr_pageblocks // 10 and others[-1] > normal.nr_pageblocks * 9 // 10
    small = [pfn for pfn in normal.free_blocks(0, MIGRATE_MOVABLE)]
    assert len(small) > 100 and max(small) - min(small) > normal.nr_pages // 2
    cfg = from_config()
    other = Machine(cfg, 5).node.node_zones[ZONE_NORMAL]
    assert other.nr_free == normal.nr_free
    assert sorted(other.free_blocks(0, MIGRATE_MOVABLE)) != sorted(small)


def test_a_machine_from_a_snapshot_runs_workloads_on_every_zone():
    cfg = from_config(workloads=[
        {"kind": "fs_churn", "fs": "disk", "files": 5000, "create_rate": 20000,
         "max_bytes": "64KiB"},
        {"kind": "anon", "size": "1GiB", "grow_rate": "2GiB"},
        {"kind": "thp_probe"}])
    res = run_machine(cfg, cfg.seed, "default")
    assert res.summary["thp_attempts"] > 0
    assert ("avail", "Normal/9") in res.series


@pytest.mark.parametrize("machine, message", [
    ({"memory": "1GiB"}, "machine.from: expected no memory beside it"),
    ({"cpus": 8}, "machine.from: expected no cpus beside it"),
])
def test_machine_from_with_sizes_of_its_own_is_one_line(machine, message):
    with pytest.raises(FragsimError, match=message):
        from_config(**machine)


def test_a_snapshot_missing_its_zoneinfo_is_one_line_naming_the_file(tmp_path):
    for name in ("buddyinfo", "pagetypeinfo"):
        (tmp_path / name).write_text(Path(f"{SNAP}.{name}").read_text())
    with pytest.raises(FragsimError, match=r"zoneinfo: cannot read: no such file"):
        from_config(tmp_path)


def test_a_snapshot_whose_pagetypeinfo_lacks_a_buddyinfo_zone_is_one_line(tmp_path):
    for name in ("buddyinfo", "zoneinfo"):
        (tmp_path / name).write_text(Path(f"{SNAP}.{name}").read_text())
    text = Path(f"{SNAP}.pagetypeinfo").read_text()
    (tmp_path / "pagetypeinfo").write_text(
        "".join(line for line in text.splitlines(True) if "DMA32" not in line))
    with pytest.raises(FragsimError, match=r"pagetypeinfo: expected zone DMA32 of node 0"):
        from_config(tmp_path)


def test_samples_carry_the_kernels_vmstat_counters_counted_from_zero(result):
    """The ``vmstat`` series use /proc/vmstat's names and agree with the summary's own
    counters at the end; every counter only grows."""
    series, summary = result.series, result.summary
    end = {key: values[-1] for (metric, key), values in series.items() if metric == "vmstat"}
    assert end["pgsteal_kswapd"] + end["pgsteal_direct"] == \
        summary["evictions"]["page_cache_pages_lru"]
    assert end["pgsteal_kswapd"] > 0
    comp = summary["compaction"]
    assert (end["compact_stall"], end["compact_success"], end["pgmigrate_success"]) == (
        comp["stalls"], comp["successes"], comp["migrated"])
    assert end["thp_fault_alloc"] + end["thp_fault_fallback"] == summary["thp_attempts"]
    assert end["slabs_scanned"] == summary["engine"]["shrinker_scanned"]
    for (metric, key), values in series.items():
        if metric == "vmstat":
            assert np.all(np.diff(values) >= 0), key


def test_a_zone_is_as_large_as_the_pageblocks_pagetypeinfo_counts():
    """tests/data's tmpfs capture ran on a VM whose balloon held most of Normal: 5.5 M
    pages present, 131 072 managed, and pagetypeinfo counts 256 pageblocks (only online
    ones). The machine has that zone, and prints those counts back."""
    before = Path(__file__).parent / "data/kmem-traces/tmpfs-churn-20k-keep10/before"
    m = Machine(from_config(before), 1)
    assert [(name, z.nr_pages) for name, z in m.zones] == [
        ("DMA", 4096), ("DMA32", 782336), ("Normal", 131072)]
    real = parse_pagetypeinfo(Path(f"{before}.pagetypeinfo").read_text())
    assert pagetypeinfo_of_zones(m.zones).blocks == real.blocks


# --------------------------------------------------------------------------- machine.boot


def boot_machine(boot: str, memory: str = "4GiB") -> Machine:
    cfg = validate_config({"name": "boot", "machine": {"memory": memory, "boot": boot},
                           "workloads": [{"kind": "thp_probe", "start": "10s"}]}, "x.yaml")
    return Machine(cfg, 3)


def test_a_fresh_machine_starts_with_an_idle_kernels_footprint():
    """machine.boot idle-6.18 (the default): every zone holds the real idle machine's
    shares, 1.5 % of its pages in use (a little more on small zones, whose free memory
    is rounded to whole blocks), 0.77 % of its pageblocks Unmovable and 0.25 %
    Reclaimable, spread over the zone, and free memory mostly in order-10 blocks."""
    from sim.snapshot import boot_footprint

    fp = boot_footprint("idle-6.18")
    assert fp.used == pytest.approx(0.0148, abs=0.0005)
    m = boot_machine("idle-6.18")
    for name, zone in m.zones:
        used = 1 - zone.nr_free_pages / zone.nr_pages
        assert fp.used - 0.001 <= used <= fp.used + 0.006, name
        nb = zone.nr_pageblocks
        counts = zone.pageblock_counts()
        assert counts[0] == round(fp.blocks[0] * nb) and counts[2] == round(fp.blocks[2] * nb)
        assert zone.nr_free[10] << 10 > zone.nr_free_pages // 2
    dma32 = m.node.node_zones[ZONE_DMA32]
    unmovable = [b for b in range(dma32.nr_pageblocks)
                 if dma32.pageblock_migratetype(b << 9) != MIGRATE_MOVABLE]
    assert len(unmovable) >= 10 and unmovable[-1] - unmovable[0] > dma32.nr_pageblocks // 2
    m.node.check()


def test_boot_none_is_a_blank_machine_and_a_snapshot_gives_its_own_footprint():
    assert all(z.nr_free_pages == z.nr_pages for _, z in boot_machine("none").zones)
    before = Path(__file__).parent / "data/kmem-traces/tmpfs-churn-20k-keep10/before"
    from sim.snapshot import boot_footprint

    fp = boot_footprint(str(before))
    assert fp.used > 0.08  # that machine had 8.7 % of its memory in use
    m = boot_machine(str(before))
    used = 1 - m.node.nr_free_pages / m.node.nr_pages
    assert used == pytest.approx(fp.used, abs=0.01)


def test_a_boot_footprint_that_cannot_be_read_is_one_line(tmp_path):
    with pytest.raises(FragsimError, match=r"buddyinfo: cannot read: no such file"):
        boot_machine(str(tmp_path / "nothing"))
# --------------------------------------------------------------------------- online, pagesets

GUPTA = Path(__file__).parent.parent / "configs/real/gupta-12g/0-idle"


def test_a_zoneinfo_managing_more_than_pagetypeinfo_counts_online_is_one_line():
    """configs/real/gupta-12g: 0-idle's pagetypeinfo counts 448 Normal pageblocks, the
    after-run zoneinfo manages 6 336."""
    with pytest.raises(FragsimError, match=r"0-idle.zoneinfo: zone Normal of node 0 manages "
                       r"3244032 pages, more than the 448 pageblocks \(229376 pages\) .*"
                       r"0-idle.pagetypeinfo counts online"):
        from_config(GUPTA, pagesets="empty")


def test_online_managed_onlines_what_pagetypeinfo_lacks_free_and_movable_above_it():
    cfg = from_config(GUPTA, online="managed", pagesets="empty")
    m = Machine(cfg, 1)
    normal = m.node.node_zones[ZONE_NORMAL]
    real = parse_buddyinfo(Path(f"{GUPTA}.buddyinfo").read_text())
    idle = next(z.nr_free for z in real if z.zone == "Normal")
    assert normal.nr_pages == normal.managed_pages == 3244032
    assert list(normal.nr_free) == idle[:10] + [idle[10] + 5888 // 2]
    # 1-filled's pageblock counts: 0-idle's, with every onlined pageblock MOVABLE
    assert normal.pageblock_counts()[:3] == [109, 6211, 16]
    assert {normal.pageblock_migratetype(b << 9) for b in range(448, 6336)} == {MIGRATE_MOVABLE}
    assert [pcp.count for pcp in normal.pcp] == [0, 0]
    assert [pcp.high for pcp in normal.pcp] == [8519, 8519]
    m.node.check()


def test_pagesets_the_free_lists_cannot_hold_are_one_line():
    with pytest.raises(FragsimError, match=r"zone Normal: the pagesets hold 121138 free pages, "
                       r"more than the zone's allocated memory in MOVABLE pageblocks"):
        Machine(from_config(GUPTA, online="managed"), 1)


def test_kswapd_for_a_lower_zone_reclaims_only_that_zones_page_cache():
    """balance_pgdat with highest_zoneidx DMA32 (rmqueue's wake for a boosted DMA32
    passes zone_idx(zone)): shrink_node passes over the Normal folios (PGSCAN_SKIP)
    and reclaims DMA32's."""
    machine = Machine(config([{"kind": "page_cache", "rate": "512MiB",
                                "file_size": "16MiB", "stop": "0.4s"}]), 3)
    machine.start(build_workloads(machine))
    machine.env.run(until=0.5)
    reclaim, lru = machine.reclaim, machine.lru
    start = {name: z.zone_start_pfn for name, z in machine.zones}
    normal = [p for p in range(start["Normal"], machine.zone.end_pfn) if p in lru]
    dma32 = [p for p in range(start["DMA32"], start["Normal"]) if p in lru]
    assert normal and dma32
    before = lru.stats.skipped_by_zone[ZONE_NORMAL]
    reclaim.shrink_node(1 << 20, 0, reclaim_idx=ZONE_DMA32)  # the whole list's share
    assert all(p in lru for p in normal)  # none reclaimed
    assert sum(p not in lru for p in dma32) > 0
    skipped = lru.stats.skipped_by_zone
    assert skipped[ZONE_NORMAL] > before
    # every page passed over is a Normal one, and the vmstat series says so
    assert sum(skipped) == skipped[ZONE_NORMAL]
    vmstat = machine.vmstat()
    assert vmstat["pgskip_normal"] == skipped[ZONE_NORMAL]
    assert vmstat["pgskip_dma32"] == vmstat["pgskip_dma"] == 0
    assert reclaim.skip_from(ZONE_DMA32) == start["Normal"]
    assert reclaim.skip_from(ZONE_NORMAL) == reclaim.skip_from(-1) == -1
