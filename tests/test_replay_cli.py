"""`fragsim replay` on the shipped real trace: the run layout and what defrag would do."""

import gzip
import json
from pathlib import Path

import pytest
from trace_helpers import dentry_alloc as alloc
from trace_helpers import dentry_free as free
from trace_helpers import page_alloc
from trace_helpers import trace_line as line

from sim.cli import main
from sim.procfs import parse_slabinfo
from sim.results import read_timeseries

EXAMPLE = Path(__file__).resolve().parent.parent / "configs/examples/tmpfs-churn-20k-keep10"


def replay_run(out):
    """The one run of a replay's summary.json, which has a run's layout."""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "replay" and list(summary["variants"]) == ["replay"]
    (run,) = summary["variants"]["replay"]["runs"]
    assert run["complete"] == summary["complete"]
    return run


def replay(tmp_path, name, *extra):
    out = tmp_path / name
    code = main(["replay", str(EXAMPLE / "trace.txt.xz"),
                 "--slabinfo", str(EXAMPLE / "before.slabinfo"),
                 "--buddyinfo", str(EXAMPLE / "before.buddyinfo"),
                 "--out", str(out), "--no-plots", *extra])
    return code, out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    out = {}
    for mode in ("none", "free", "move"):
        extra = [] if mode == "none" else [
            "--set", "defrag.enabled=true", "--set", f"caches.dentry.mobility={mode}",
            "--set", f"caches.shmem_inode_cache.mobility={mode}"]
        code, path = replay(tmp, mode, *extra)
        assert code == 0
        out[mode] = (path, replay_run(path))
    return out


def test_replay_writes_the_run_layout_with_kernel_format_files(runs):
    path, summary = runs["none"]
    for name in ("config.yaml", "timeseries.csv", "summary.json", "final/buddyinfo",
                 "final/pagetypeinfo", "final/slabinfo"):
        assert (path / name).is_file(), name
    entries = {e.name: e for e in parse_slabinfo((path / "final/slabinfo").read_text())}
    assert entries["dentry"].num_slabs == summary["caches"]["dentry"]["num_slabs_final"]
    trace = summary["trace"]
    assert trace["events"] == 372008 and trace["bad_lines"] == 0 and summary["complete"]
    assert trace["span_s"] == pytest.approx(0.77, abs=0.01)


def test_replayed_slab_counts_track_the_real_kernel(runs):
    _, summary = runs["none"]
    real = {e.name: e for e in parse_slabinfo((EXAMPLE / "after.slabinfo").read_text())}
    for name in ("dentry", "shmem_inode_cache"):
        cache = summary["caches"][name]
        assert abs(cache["slabs_allocated"] - 962) <= 0.15 * 962
        assert abs(cache["num_slabs_final"] - real[name].num_slabs) <= 0.20 * real[name].num_slabs


def test_free_mode_frees_nothing_on_tmpfs_and_move_reaches_the_minimum(runs):
    _, none = runs["none"]
    _, free = runs["free"]
    _, move = runs["move"]
    assert free["defrag"]["objects_evicted"] == 0
    for name in ("dentry", "shmem_inode_cache"):
        assert free["caches"][name]["num_slabs_final"] == none["caches"][name]["num_slabs_final"]
        live = move["caches"][name]["active_objs_final"]
        minimum = -(-live // 21)  # 21 objects per slab in both caches
        assert minimum <= move["caches"][name]["num_slabs_final"] <= 1.05 * minimum
    assert move["defrag"]["objects_moved"] > 0 and move["defrag"]["objects_moved_twice"] == 0
    assert "never implemented" in " ".join(move.get("notes", []))


def test_a_truncated_trace_writes_results_marked_incomplete(tmp_path):
    import lzma

    with lzma.open(EXAMPLE / "trace.txt.xz", "rt") as f:
        text = f.read()
    cut = tmp_path / "cut.txt.gz"
    with gzip.open(cut, "wt") as f:
        f.write(text)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    code = main(["replay", str(cut), "--slabinfo", str(EXAMPLE / "before.slabinfo"),
                 "--out", str(tmp_path / "out"), "--no-plots"])
    assert code == 1
    summary = replay_run(tmp_path / "out")
    assert summary["complete"] is False and summary["trace"]["error"]
    assert summary["trace"]["events"] > 0


# ------------------------------------------------------------------ bad input


SMALL_SLABINFO = (
    "slabinfo - version: 2.1\n"
    "dentry                42     42    192   21    1 : tunables    0    0    0 : slabdata"
    "      2      2      0\n"
)


def small_replay(tmp_path, lines, *extra, slabinfo=SMALL_SLABINFO):
    tmp_path.mkdir(parents=True, exist_ok=True)
    trace = tmp_path / "trace.txt"
    trace.write_text("\n".join(lines) + "\n")
    (tmp_path / "before.slabinfo").write_text(slabinfo)
    out = tmp_path / "out"
    code = main(["replay", str(trace), "--slabinfo", str(tmp_path / "before.slabinfo"),
                 "--out", str(out), "--no-plots", *extra])
    return code, trace, out


BAD_TRACE = [
    alloc("1.000000", "p1"),
    alloc("nan", "p2"),  # 2
    alloc("inf", "p3"),  # 3
    "this is not ftrace output",  # 4
    alloc("1.000100", "p4", size=1 << 30),  # 5
    line("1.000200", "mm_page_alloc", "page=00000000aa pfn=0x1000 order=11 migratetype=1 "
         "gfp_flags=GFP_HIGHUSER_MOVABLE"),  # 6
    free("1.000300", "p1"),
    free("1.000400", "p1"),  # 8
    alloc("0.500000", "p5"),  # 9: half a second back
    free("1.000500", "p4"),  # 10: its allocation was bad
    free("1.000600", "p1"),  # 11
    free("1.000700", "p1"),  # 12
    alloc("1.000800", "p6"),
    alloc("-1.000000", "p7"),  # 14: the 11th, not shown
]


def test_bad_lines_go_to_stderr_and_summary_json_and_exit_1(tmp_path, capsys):
    code, trace, out = small_replay(tmp_path, BAD_TRACE)
    assert code == 1
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert err[0].startswith(f"fragsim: {trace}: 11 bad line(s) skipped (")
    assert "3 duplicate_free" in err[0] and "4 timestamp" in err[0]
    assert err[0].endswith("(first 10 shown)")
    assert len(err) == 11 and "Traceback" not in captured.err
    assert [int(e.split(":")[2]) for e in err[1:]] == [2, 3, 4, 5, 6, 8, 9, 10, 11, 12]
    assert "duplicated free of ptr=p1: freed at line 7" in err[6]
    assert "11 bad lines" in captured.out
    summary = replay_run(out)
    t = summary["trace"]
    assert t["bad_lines"] == 11 and t["events"] == 3  # allocs of p1 and p6, free of p1
    assert t["bad_lines_by_kind"] == {"duplicate_free": 3, "free_of_bad_alloc": 1,
                                      "garbled": 1, "order": 1, "size": 1, "timestamp": 4}
    assert [b["line"] for b in t["first_bad_lines"]] == [2, 3, 4, 5, 6, 8, 9, 10, 11, 12]
    assert t["unknown_frees"] == 0 and t["span_s"] == pytest.approx(0.0008)
    series = (out / "timeseries.csv").read_text()
    assert "inf" not in series and "nan" not in series.lower()


def test_a_clean_small_trace_exits_0_with_nothing_on_stderr(tmp_path, capsys):
    code, _, out = small_replay(tmp_path, [alloc("1.0", "p1"), free("1.1", "p1")])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    assert "0 bad lines, 0 unknown frees, 0 failed allocations" in captured.out
    trace = replay_run(out)["trace"]
    assert trace["bad_lines"] == 0
    assert trace["alloc_failures"] == {
        "total": 0, "pages": 0, "pages_by_order": {}, "pages_by_migratetype": {},
        "objects": 0, "objects_by_cache": {}, "first": None}


@pytest.mark.parametrize("setting", [
    "duration=10s", "machine.cpus=4", "buddy.pcp=false", "defrag.interval=1s",
    "caches.dentry.size=256", "workloads.0.kind=anon"])
def test_replay_refuses_a_key_it_would_ignore(tmp_path, capsys, setting):
    code, _, out = small_replay(tmp_path, [alloc("1.0", "p1")], "--set", setting)
    err = capsys.readouterr().err.splitlines()
    key = setting.partition("=")[0]
    assert code == 2 and not out.exists()
    assert len(err) == 1 and err[0].startswith(f"fragsim: error: --set {setting}: {key}: ")


def test_a_mobility_needs_defrag_and_a_cache_that_exists(tmp_path, capsys):
    code, _, _ = small_replay(tmp_path, [alloc("1.0", "p1")],
                              "--set", "caches.dentry.mobility=move")
    err = capsys.readouterr().err
    assert code == 2 and "caches.dentry.mobility: expected --set defrag.enabled=true" in err
    code, _, _ = small_replay(tmp_path, [alloc("1.0", "p1")], "--set", "defrag.enabled=true",
                              "--set", "caches.dentryy.mobility=move")
    err = capsys.readouterr().err
    assert code == 2 and "caches.dentryy: expected a cache of the slabinfo or the trace" in err


def free_pages(out):
    buddy = (out / "final" / "buddyinfo").read_text().split()
    return sum(int(n) << order for order, n in enumerate(buddy[4:]))


def test_replay_applies_machine_memory(tmp_path):
    lines = [alloc("1.0", "p1"), free("1.1", "p1")]
    code, _, out = small_replay(tmp_path / "a", lines, "--set", "machine.memory=64MiB")
    assert code == 0 and 15000 < free_pages(out) <= 64 << 8
    code, _, out = small_replay(tmp_path / "b", lines, "--set", "machine.memory=2GiB")
    assert code == 0 and free_pages(out) > 1 << 18  # more than the default 1 GiB holds
    config = (out / "config.yaml").read_text()
    assert "machine.memory=2GiB" in config


def test_a_slabinfo_row_that_contradicts_itself_is_an_error_naming_the_line(tmp_path, capsys):
    bad = SMALL_SLABINFO.replace("42     42", "50     42")  # 50 objects in 2 x 21 slots
    code, _, out = small_replay(tmp_path, [alloc("1.0", "p1")], slabinfo=bad)
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and not out.exists() and len(err) == 1
    assert err[0] == (f"fragsim: error: {tmp_path / 'before.slabinfo'}:2: dentry: expected "
                      "active_objs <= num_slabs x objperslab (2 x 21 = 42), got 50")


def test_a_replays_summary_has_a_runs_layout_and_keys(tmp_path):
    from sim.experiment import validate_config
    from sim.runner import run_machine

    code, _, out = small_replay(tmp_path, [alloc("1.0", "p1"), alloc("1.1", "p2"),
                                           free("1.2", "p1")],
                                "--set", "defrag.enabled=true",
                                "--set", "caches.dentry.mobility=free")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    replayed = replay_run(out)
    assert summary["variants"]["replay"]["n"] == 1
    assert summary["variants"]["replay"]["mean"]["avail.9"] == replayed["avail"]["9"]
    ran = run_machine(validate_config({"duration": "100ms", "sample_every": "100ms",
                                       "machine": {"memory": "16MiB"},
                                       "workloads": [{"kind": "slab_churn",
                                                      "cache": "dentry", "rate": 100}]},
                                      "x.yaml"), 1, "default").summary
    for key in ("variant", "seed", "wall_s", "avail", "buddy", "defrag", "caches"):
        assert key in replayed, key
    assert set(ran["avail"]) == set(replayed["avail"])
    assert set(ran["buddy"]) == set(replayed["buddy"])
    assert set(ran["caches"]["dentry"]) <= set(replayed["caches"]["dentry"])
    assert {"pages_returned", "pages_returned_later", "pages_returned_total"} <= \
        set(replayed["defrag"])


# ------------------------------------------------------------------ allocation failures


def too_big_trace():
    """For a 16 MiB machine (4 096 pages, 8 pageblocks, low watermark 243): 12 order-9
    pages (7 fit), 40 order-3 (the last few fail at the low watermark), then 100 dentries
    (4 more slabs fit: 21 each)."""
    lines = ["# tracer: nop"]
    ts = 1.0
    for i in range(12):
        ts += 0.001
        lines.append(page_alloc(ts, 0x10000 + i * 512, 9))  # lines 2-13
    for i in range(40):
        ts += 0.001
        lines.append(page_alloc(ts, 0x20000 + i * 8, 3))
    for i in range(100):
        ts += 0.001
        lines.append(alloc(ts, f"d{i}"))
    return lines


def test_a_machine_too_small_for_its_trace_exits_1_naming_the_zone_and_first_line(
        tmp_path, capsys):
    code, trace, out = small_replay(tmp_path, too_big_trace(), "--set", "machine.memory=16MiB")
    captured = capsys.readouterr()
    assert code == 1
    err = captured.err.splitlines()
    assert len(err) == 1 and "Traceback" not in captured.err
    # The 8th order-9 page (line 9) is the first: 509 free pages, not an order-9 block
    # above the low watermark.
    assert err[0] == (
        f"fragsim: {trace}: 70 allocations failed, more than --max-failures 10; first at "
        "line 9 (mm_page_alloc, order 9 Unmovable): zone Normal had 509 free pages, below "
        "the 755 an order-9 allocation needs (low watermark 243 + 512 pages; min 195, high "
        "291)")
    assert "70 failed allocations (12 pages, 58 objects)" in captured.out
    # Nothing lost: the whole run layout, with the failures by kind.
    for name in ("config.yaml", "timeseries.csv", "summary.json", "final/buddyinfo",
                 "final/slabinfo"):
        assert (out / name).is_file(), name
    failures = replay_run(out)["trace"]["alloc_failures"]
    assert failures["total"] == 70 and failures["pages"] == 12 and failures["objects"] == 58
    assert failures["pages_by_order"] == {"3": 7, "9": 5}
    assert failures["pages_by_migratetype"] == {"Unmovable": 12}
    assert failures["objects_by_cache"] == {"dentry": 58}
    first = failures["first"]
    assert (first["line"], first["event"], first["order"], first["zone"]) == (
        9, "mm_page_alloc", 9, "Normal")
    assert (first["free_pages"], first["watermark_min"], first["watermark_low"],
            first["watermark_high"]) == (509, 195, 243, 291)
    assert "max_failures: 10" in (out / "config.yaml").read_text()


def test_max_failures_above_the_count_exits_0_and_still_reports_it(tmp_path, capsys):
    code, trace, out = small_replay(tmp_path, too_big_trace(), "--set", "machine.memory=16MiB",
                                    "--max-failures", "100")
    captured = capsys.readouterr()
    assert code == 0
    err = captured.err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"fragsim: {trace}: 70 allocations failed, within --max-failures 100; first at line 9 ")
    assert "70 failed allocations" in captured.out
    assert replay_run(out)["trace"]["alloc_failures"]["total"] == 70


def test_max_failures_0_makes_one_failure_fatal(tmp_path, capsys):
    lines = [page_alloc(1.0, 0x10000 + i * 512, 9) for i in range(8)]  # the 8th fails
    code, trace, _ = small_replay(tmp_path / "a", lines, "--set", "machine.memory=16MiB",
                                  "--max-failures", "0")
    err = capsys.readouterr().err
    assert code == 1 and "1 allocation failed, more than --max-failures 0; first at line 8 " in err
    code, _, _ = small_replay(tmp_path / "b", lines, "--set", "machine.memory=16MiB")
    assert code == 0 and "1 allocation failed, within --max-failures 10" in capsys.readouterr().err


def test_a_negative_max_failures_is_refused(tmp_path, capsys):
    code, _, out = small_replay(tmp_path, [alloc("1.0", "p1")], "--max-failures", "-1")
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and not out.exists()
    assert err == ["fragsim: error: --max-failures: expected a number of at least 0, got -1"]


def test_a_replay_from_a_full_snapshot_replays_on_every_zone(tmp_path):
    """buddyinfo, pagetypeinfo, zoneinfo and slabinfo together: the machine `fragsim run`
    builds with machine.from (every zone, zoneinfo's watermarks and pagesets), the
    trace's pages allocated through the zonelist from each gfp's zone. The shared trace
    replays on it without an allocation failure, and every output lists every zone."""
    out = tmp_path / "zones"
    code = main(["replay", str(EXAMPLE / "trace.txt.xz"),
                 "--slabinfo", str(EXAMPLE / "before.slabinfo"),
                 "--buddyinfo", str(EXAMPLE / "before.buddyinfo"),
                 "--pagetypeinfo", str(EXAMPLE / "before.pagetypeinfo"),
                 "--zoneinfo", str(EXAMPLE / "before.zoneinfo"),
                 "--out", str(out), "--no-plots"])
    assert code == 0
    run = replay_run(out)
    assert run["trace"]["alloc_failures"]["pages"] == 0
    assert run["trace"]["alloc_failures"]["objects"] == 0
    assert set(run["buddy"]["zones"]) == {"DMA", "DMA32", "Normal"}
    zones = [line.split()[3] for line in (out / "final/buddyinfo").read_text().splitlines()]
    assert zones == ["DMA", "DMA32", "Normal"]
    series = read_timeseries(out / "timeseries.csv")[("replay", 0)]
    assert ("avail", "Normal/9") in series and ("avail", "DMA32/9") in series


def test_replay_from_a_snapshot_prefix_is_the_full_snapshot_replay(tmp_path):
    """--from PREFIX takes PREFIX.slabinfo, .buddyinfo, .pagetypeinfo and .zoneinfo:
    the same machine and the same end as naming the four files."""
    out = tmp_path / "from"
    code = main(["replay", str(EXAMPLE / "trace.txt.xz"), "--from", str(EXAMPLE / "before"),
                 "--out", str(out), "--no-plots"])
    assert code == 0
    run = replay_run(out)
    assert set(run["buddy"]["zones"]) == {"DMA", "DMA32", "Normal"}
    assert run["trace"]["alloc_failures"]["total"] == 0


def test_replay_from_and_a_file_of_its_own_is_one_line(capsys):
    code = main(["replay", str(EXAMPLE / "trace.txt.xz"), "--from", str(EXAMPLE / "before"),
                 "--buddyinfo", str(EXAMPLE / "before.buddyinfo")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--buddyinfo: expected it or --from" in err


@pytest.mark.parametrize("gap, n", [(0.01, 6000), (0.00001, 40000)])
def test_a_replay_keeps_about_a_hundred_evenly_spaced_samples_whatever_its_span(
        tmp_path, gap, n):
    """A trace's span is known only at its end: the replay samples every millisecond
    and halves its samples each time 200 are kept. Before, the step came from the first
    two events' gap (x 1000, at least 1 ms): 7 samples for this 60 s trace, and one a
    millisecond for any dense one, 3.6 million for an hour."""
    lines = []
    for i in range(n // 2):  # an allocation and its free, ``gap`` apart
        lines += [alloc(f"{1 + 2 * i * gap:.6f}", f"p{i}"),
                  free(f"{1 + (2 * i + 1) * gap:.6f}", f"p{i}")]
    code, _, out = small_replay(tmp_path, lines)
    assert code == 0
    series = read_timeseries(out / "timeseries.csv")[("replay", 0)]
    times = series[next(iter(series))][0]
    assert 100 <= len(times) <= 201
    steps = {round(b - a, 9) for a, b in zip(times[:-2], times[1:-1], strict=True)}
    assert len(steps) == 1  # evenly spaced, but for the last
    end = (n - 1) * gap  # the last event's time: the last sample is the first after it
    assert end <= times[-1] < end + steps.pop() + 1e-9
