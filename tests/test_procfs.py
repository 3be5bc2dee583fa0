"""sim.procfs reads and writes the kernel's text formats byte for byte."""

from pathlib import Path

import pytest

from sim.errors import FragsimError
from sim.procfs import (
    PAGETYPEINFO_CAP,
    SlabinfoEntry,
    ZoneFree,
    derive_capped_counts,
    format_buddyinfo,
    format_pagetypeinfo,
    format_slabinfo,
    format_unusable_index,
    parse_buddyinfo,
    parse_pagetypeinfo,
    parse_slabinfo,
    parse_zoneinfo,
)

DATA = Path(__file__).parent / "data"
GUPTA = DATA / "compaction" / "gupta-12g-keep1of4"
TMPFS = DATA / "kmem-traces" / "tmpfs-churn-20k-keep10"


def data_files(suffix: str) -> list[Path]:
    files = sorted(DATA.rglob(f"*{suffix}"))
    assert files, f"no *{suffix} under {DATA}"
    return files


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(DATA)) for p in paths]


BUDDYINFO = data_files(".buddyinfo")
PAGETYPEINFO = data_files(".pagetypeinfo")
SLABINFO = data_files(".slabinfo")


# --- round trips of the real files ----------------------------------------------------


@pytest.mark.parametrize("path", BUDDYINFO, ids=ids(BUDDYINFO))
def test_buddyinfo_round_trips_byte_for_byte(path):
    text = path.read_text()
    assert format_buddyinfo(parse_buddyinfo(text, str(path))) == text


@pytest.mark.parametrize("path", PAGETYPEINFO, ids=ids(PAGETYPEINFO))
def test_pagetypeinfo_round_trips_byte_for_byte(path):
    text = path.read_text()
    assert format_pagetypeinfo(parse_pagetypeinfo(text, str(path))) == text


@pytest.mark.parametrize("path", SLABINFO, ids=ids(SLABINFO))
def test_slabinfo_round_trips_byte_for_byte(path):
    text = path.read_text()
    assert format_slabinfo(parse_slabinfo(text, str(path))) == text


def test_buddyinfo_gives_free_counts_per_order_for_each_zone():
    zones = parse_buddyinfo((GUPTA / "2-freed.buddyinfo").read_text())
    assert [(z.node, z.zone) for z in zones] == [(0, "DMA"), (0, "DMA32"), (0, "Normal")]
    normal = zones[2].nr_free
    assert normal == [784753, 784054, 75, 35, 17, 6, 4, 1, 6, 1, 21]


def test_pagetypeinfo_gives_pageblock_geometry_free_lists_and_block_counts():
    info = parse_pagetypeinfo((GUPTA / "2-freed.pagetypeinfo").read_text())
    assert (info.pageblock_order, info.pages_per_block) == (9, 512)
    assert info.migratetypes == ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")
    assert info.blocks[(0, "Normal")] == [109, 6211, 16, 0, 0]
    movable = info.free[(0, "Normal")][1]
    assert movable[:3] == [None, None, 42]  # ">100000" is None: the count is unknown
    assert info.free[(0, "Normal")][2][0] == 384
    assert info.mixed is None


def test_pagetypeinfo_writes_a_capped_count_as_the_kernel_does():
    info = parse_pagetypeinfo((GUPTA / "2-freed.pagetypeinfo").read_text())
    row = next(line for line in format_pagetypeinfo(info).splitlines() if "Normal, type" in line)
    assert row.startswith("Node    0, zone   Normal, type    Unmovable ")
    text = format_pagetypeinfo(info)
    assert "Movable >100000 >100000     42 " in text


def test_slabinfo_gives_cache_geometry_and_counts():
    entries = {e.name: e for e in parse_slabinfo((TMPFS / "after.slabinfo").read_text())}
    shmem = entries["shmem_inode_cache"]
    assert (shmem.active_objs, shmem.num_slabs, shmem.pagesperslab) == (3019, 931, 4)
    assert entries["dentry"].active_objs == 12087
    assert entries["dentry"].num_slabs == 1361


def test_slabinfo_keeps_names_longer_than_the_column():
    text = (TMPFS / "before.slabinfo").read_text()
    names = [e.name for e in parse_slabinfo(text)]
    assert "request_sock_subflow_v6" in names


# --- zoneinfo -------------------------------------------------------------------------


def test_zoneinfo_gives_watermarks_sizes_and_per_cpu_lists():
    zones = parse_zoneinfo((GUPTA / "zoneinfo-after-run").read_text(), "zoneinfo-after-run")
    assert [z.zone for z in zones] == ["DMA", "DMA32", "Normal", "Movable", "Device"]
    normal = zones[2]
    assert normal.managed == 3244032
    assert (normal.min, normal.low, normal.high) == (13631, 17038, 20445)
    assert (normal.present, normal.spanned, normal.start_pfn) == (5505024, 5505024, 1048576)
    cpu1 = normal.pcp[1]
    assert cpu1["cpu"] == 1
    assert (cpu1["count"], cpu1["high"], cpu1["high_max"], cpu1["batch"]) == (
        115915,
        116205,
        202752,
        63,
    )
    assert normal.stats["nr_free_pages"] == 3061776


def test_zoneinfo_unpopulated_zone_has_no_per_cpu_lists():
    zones = parse_zoneinfo((GUPTA / "zoneinfo-after-run").read_text())
    movable = zones[3]
    assert (movable.zone, movable.present, movable.min) == ("Movable", 0, 32)
    assert movable.pcp == []
    assert movable.start_pfn is None


def test_zoneinfo_node_stats_belong_to_the_first_populated_zone():
    zones = parse_zoneinfo((GUPTA / "zoneinfo-after-run").read_text())
    assert zones[0].node_stats["nr_slab_reclaimable"] == 5769
    assert zones[1].node_stats == {}
    assert "nr_slab_reclaimable" not in zones[0].stats


# --- several nodes --------------------------------------------------------------------


def two_node_text(text: str) -> str:
    """The same file as if node 1 were a copy of node 0."""
    return text + text.replace("Node    0,", "Node    1,").replace("Node 0,", "Node 1,")


def test_buddyinfo_of_several_nodes_round_trips():
    text = two_node_text((GUPTA / "3-compacted.buddyinfo").read_text())
    zones = parse_buddyinfo(text)
    assert [z.node for z in zones] == [0, 0, 0, 1, 1, 1]
    assert format_buddyinfo(zones) == text


def test_pagetypeinfo_of_several_nodes_repeats_its_header_per_node_and_round_trips():
    text = two_node_text((GUPTA / "2-freed.pagetypeinfo").read_text())
    info = parse_pagetypeinfo(text)
    assert info.blocks[(1, "Normal")] == [109, 6211, 16, 0, 0]
    assert format_pagetypeinfo(info) == text
    assert text.count("Page block order: 9\n") == 2


def test_unusable_index_lines_do_not_depend_on_other_zones():
    zones = parse_buddyinfo(two_node_text((GUPTA / "2-freed.buddyinfo").read_text()))
    node1_alone = format_unusable_index(zones[3:])
    assert format_unusable_index(zones).endswith(node1_alone)


def test_pagetypeinfo_with_page_owner_mixed_block_counts_round_trips():
    text = (GUPTA / "0-idle.pagetypeinfo").read_text()
    # "%-23s" of the 23-character "Number of mixed blocks " adds no padding.
    mixed = (
        "\nNumber of mixed blocks "
        "   Unmovable      Movable  Reclaimable   HighAtomic      Isolate \n"
        "Node 0, zone   Normal            3           17            2            0            0 \n"
    )
    info = parse_pagetypeinfo(text + mixed)
    assert info.mixed == {(0, "Normal"): [3, 17, 2, 0, 0]}
    assert format_pagetypeinfo(info) == text + mixed


def test_format_buddyinfo_of_a_hand_built_zone():
    zones = [ZoneFree(2, "Normal", [1, 22, 333, 4444, 55555, 666666])]
    assert format_buddyinfo(zones) == (
        "Node 2, zone   Normal      1     22    333   4444  55555 666666 \n"
    )


def test_format_slabinfo_of_a_hand_built_cache_has_the_kernel_header():
    entry = SlabinfoEntry("dentry", 12087, 57162, 192, 42, 2, 0, 0, 0, 1361, 1361, 0)
    text = format_slabinfo([entry])
    assert text.startswith("slabinfo - version: 2.1\n# name            <active_objs>")
    assert text.endswith(
        "dentry             12087  57162    192   42    2 : tunables    0    0    0"
        " : slabdata   1361   1361      0\n"
    )


# --- capped pagetypeinfo counts -------------------------------------------------------


def test_capped_count_is_buddyinfo_total_minus_the_other_migratetypes():
    buddy = {
        (z.node, z.zone): z for z in parse_buddyinfo((GUPTA / "2-freed.buddyinfo").read_text())
    }
    info = parse_pagetypeinfo((GUPTA / "2-freed.pagetypeinfo").read_text())
    key = (0, "Normal")
    derived = derive_capped_counts(info.free[key], buddy[key].nr_free)
    movable = derived[1]
    assert movable[0] == 784753 - 0 - 384 == 784369
    assert movable[1] == 784054 - 0 - 135
    assert [sum(per_type[o] for per_type in derived) for o in range(11)] == buddy[key].nr_free


def test_uncapped_counts_are_left_as_they_are():
    info = parse_pagetypeinfo((GUPTA / "0-idle.pagetypeinfo").read_text())
    free = info.free[(0, "Normal")]
    assert derive_capped_counts(free, [sum(c) for c in zip(*free, strict=True)]) == free


def test_several_capped_lists_at_one_order_share_the_remainder_evenly():
    free = [[None, 1], [None, 2], [5, 3]]
    derived = derive_capped_counts(free, [200_006, 6])
    assert [derived[0][0], derived[1][0]] == [100_001, 100_000]
    assert derived[2] == [5, 3]


def test_capped_count_below_the_cap_means_the_files_disagree():
    with pytest.raises(FragsimError, match="disagree at order 0"):
        derive_capped_counts([[None], [7]], [PAGETYPEINFO_CAP])


# --- bad input ------------------------------------------------------------------------


def test_malformed_buddyinfo_line_names_file_and_line_number():
    text = (GUPTA / "0-idle.buddyinfo").read_text().splitlines(keepends=True)
    text[1] = "Node 0, zone    DMA32      1      2   four\n"
    with pytest.raises(FragsimError) as excinfo:
        parse_buddyinfo("".join(text), "x.buddyinfo")
    message = str(excinfo.value)
    assert message.startswith("x.buddyinfo:2: expected a buddyinfo line")
    assert message.endswith("got 'Node 0, zone    DMA32      1      2   four'")


def test_buddyinfo_zones_must_list_the_same_orders():
    text = "Node 0, zone DMA 1 2 3\nNode 0, zone Normal 1 2\n"
    with pytest.raises(FragsimError, match=r"^b:2: expected 3 free counts"):
        parse_buddyinfo(text, "b")


def test_long_bad_line_is_shortened_and_the_message_stays_on_one_line():
    with pytest.raises(FragsimError) as excinfo:
        parse_buddyinfo("Node 0, zone DMA " + "x" * 500 + "\n", "b")
    message = str(excinfo.value)
    assert "\n" not in message
    assert len(message) < 200
    assert message.endswith("...'")


@pytest.mark.parametrize(
    "parse", [parse_buddyinfo, parse_pagetypeinfo, parse_slabinfo, parse_zoneinfo]
)
@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_empty_input_is_an_error(parse, text):
    with pytest.raises(FragsimError, match=r"^empty.txt: expected .*, got an empty file$"):
        parse(text, "empty.txt")


def test_truncated_pagetypeinfo_is_an_error_at_the_end_of_the_file():
    lines = (GUPTA / "1-filled.pagetypeinfo").read_text().splitlines(keepends=True)
    with pytest.raises(FragsimError, match=r"^p:15: expected .*got the end of the file$"):
        parse_pagetypeinfo("".join(lines[:14]), "p")


def test_malformed_pagetypeinfo_row_names_file_and_line_number():
    lines = (GUPTA / "1-filled.pagetypeinfo").read_text().splitlines(keepends=True)
    lines[5] = lines[5].replace("     0 ", "  zero ", 1)
    with pytest.raises(FragsimError, match=r"^p:6: expected 11 free counts, got 'Node"):
        parse_pagetypeinfo("".join(lines), "p")


def test_buddyinfo_given_as_pagetypeinfo_is_an_error_at_line_1():
    text = (GUPTA / "1-filled.buddyinfo").read_text()
    with pytest.raises(FragsimError, match=r"^p:1: expected 'Page block order: N', got 'Node 0"):
        parse_pagetypeinfo(text, "p")


def test_slabinfo_of_another_version_is_rejected_naming_file_and_version():
    text = (TMPFS / "before.slabinfo").read_text().replace("version: 2.1", "version: 2.0", 1)
    with pytest.raises(FragsimError) as excinfo:
        parse_slabinfo(text, "old.slabinfo")
    assert str(excinfo.value) == "old.slabinfo:1: expected slabinfo version 2.1, got version 2.0"


def test_malformed_slabinfo_row_names_file_and_line_number():
    lines = (TMPFS / "before.slabinfo").read_text().splitlines(keepends=True)
    lines[9] = lines[9].replace(": slabdata", ": slabinfo")
    with pytest.raises(FragsimError, match=r"^s:10: expected a slabinfo row"):
        parse_slabinfo("".join(lines), "s")


@pytest.mark.parametrize("counts, message", [
    # active_objs num_objs ... active_slabs num_slabs: 2 slabs of 21 objects hold 42.
    (("43", "42", "2", "2"), "active_objs <= num_slabs x objperslab (2 x 21 = 42), got 43"),
    (("40", "63", "2", "2"), "num_objs <= num_slabs x objperslab (2 x 21 = 42), got 63"),
    (("10", "21", "0", "0"), "active_objs <= num_slabs x objperslab (0 x 21 = 0), got 10"),
])
def test_a_slabinfo_row_that_contradicts_itself_is_an_error_naming_the_line(counts, message):
    active, num, active_slabs, slabs = counts
    text = ("slabinfo - version: 2.1\n"
            "# name            <active_objs> <num_objs> ...\n"
            "kmalloc-64            42     42     64   64    1 : tunables    0    0    0 : "
            "slabdata      1      1      0\n"
            f"dentry             {active} {num}    192   21    1 : tunables    0    0    0 : "
            f"slabdata {active_slabs} {slabs}      0\n")
    with pytest.raises(FragsimError) as excinfo:
        parse_slabinfo(text, "s")
    assert str(excinfo.value) == f"s:4: dentry: expected {message}"
    # Fewer objects than the slabs hold (fallback-order slabs) are not a contradiction.
    fine = text.replace(f"{active} {num} ", "30 40 ").replace(f"{active_slabs} {slabs} ", "2 2 ")
    assert parse_slabinfo(fine, "s")[1].num_objs == 40


def test_zoneinfo_line_before_any_zone_is_an_error():
    with pytest.raises(FragsimError, match=r"^z:1: expected a zone header"):
        parse_zoneinfo("  pages free     3840\n", "z")


def test_zoneinfo_zone_without_its_watermarks_is_an_error():
    text = "Node 0, zone      DMA\n  pages free     3840\n        boost    0\n"
    with pytest.raises(FragsimError, match=r"^z:1: expected min, low, .* in node 0 zone DMA"):
        parse_zoneinfo(text, "z")


def test_garbled_zoneinfo_line_names_file_and_line_number():
    lines = (GUPTA / "zoneinfo-after-run").read_text().splitlines(keepends=True)
    lines[60] = "        min  !!\n"
    with pytest.raises(FragsimError, match=r"^z:61: expected a zoneinfo line"):
        parse_zoneinfo("".join(lines), "z")


def test_simulated_zone_snapshot_formats_like_the_kernel_and_parses_back():
    from sim.buddy import Zone
    from sim.procfs import buddyinfo_of, pagetypeinfo_of

    zone = Zone(3 * 1024 + 512, cpus=1, pcp=False)
    for mt in (0, 1, 2, 1):
        zone.alloc(0, mt, alloc_flags=4)  # ALLOC_NO_WATERMARKS
    buddy_text = format_buddyinfo([buddyinfo_of(zone)])
    assert buddy_text.startswith("Node 0, zone   Normal ")
    assert parse_buddyinfo(buddy_text)[0].nr_free == zone.nr_free
    info = parse_pagetypeinfo(format_pagetypeinfo(pagetypeinfo_of(zone)))
    per_type = info.free[(0, "Normal")]
    assert [sum(row[o] for row in per_type) for o in range(11)] == zone.nr_free
    assert info.blocks[(0, "Normal")] == zone.pageblock_counts()
    assert sum(info.blocks[(0, "Normal")]) == 7


def test_simulated_pagetypeinfo_caps_long_lists_as_the_kernel_does():
    from sim.buddy import Zone
    from sim.procfs import pagetypeinfo_of

    zone = Zone(1 << 18, cpus=1, pcp=False)
    pfns = [zone.alloc(0, 1, alloc_flags=4) for _ in range(1 << 18)]
    for pfn in pfns[::2]:  # 131072 isolated free pages on the Movable order-0 list
        zone.free(pfn, 0)
    text = format_pagetypeinfo(pagetypeinfo_of(zone))
    assert "type      Movable >100000 " in text
    info = parse_pagetypeinfo(text)
    derived = derive_capped_counts(info.free[(0, "Normal")], zone.nr_free)
    assert derived[1][0] == 1 << 17
