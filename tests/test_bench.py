"""The benchmarks' own logic, never their speed: the C buddy loop against its Python
twin on the same sequence, the zone's compiled loop against its interpreted one, the
C loop's one-line skip without a compiler, and how bench64 cuts
a run and reads its windows, and how peak_memory sorts a peak's allocations. Nothing
here asserts a time."""

import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import bench64  # noqa: E402
import bench_buddy  # noqa: E402
import peak_memory  # noqa: E402

# 5 000 pages: four MAX_ORDER blocks and a tail of smaller ones, like a real zone's end.
NR_PAGES = 5000


@pytest.fixture(scope="module")
def sequence():
    return bench_buddy.make_ops(NR_PAGES, 20_000, seed=3)


def test_the_c_loop_ends_as_the_python_references_on_the_same_sequence(sequence):
    ops, prefill, slots = sequence
    result = bench_buddy.run_c(NR_PAGES, ops, prefill, slots, repeat=2)
    if bench_buddy.c_compiler() is None:
        assert result == {"skipped": bench_buddy.NO_COMPILER}
        return
    check = bench_buddy.c_check(NR_PAGES, ops, prefill, result)
    assert result["failed"] == 0
    assert result["free_blocks"] == check["lifo_free_blocks"]
    assert check["lifo_equal"] and check["total_equal"] and check["ok"]
    assert len(result["rates"]) == 2


def test_the_compiled_loop_leaves_the_zone_as_the_interpreted_one(sequence):
    """What is compared with the C loop is the same work as the interpreter's loop:
    run_fragsim_compiled (sim.buddy.apply_ops) ends with the same free lists, pages on
    the per-CPU lists and call counts as run_fragsim."""
    ops, prefill, slots = sequence
    _, by_loop = bench_buddy.run_fragsim(NR_PAGES, ops, prefill, slots)
    _, by_apply = bench_buddy.run_fragsim_compiled(NR_PAGES, ops, prefill, slots)
    assert by_apply.nr_free_by_type() == by_loop.nr_free_by_type()
    assert [[lst.tolist() for lst in p.lists] for p in by_apply.pcp] == \
        [[lst.tolist() for lst in p.lists] for p in by_loop.pcp]
    assert (by_apply.nr_alloc_calls, by_apply.nr_free_calls) == \
        (by_loop.nr_alloc_calls, by_loop.nr_free_calls) == (
            sum(1 for k in ops[0] if k == bench_buddy.ALLOC),
            sum(1 for k in ops[0] if k == bench_buddy.FREE))


def test_the_python_twin_is_a_buddy_allocator(sequence):
    # LifoBuddy (what the C loop is checked against) keeps every page accounted for
    # and merges fully: after freeing what is left, the zone is its initial blocks.
    ops, prefill, _slots = sequence
    lifo = bench_buddy.run_lifo(NR_PAGES, ops, prefill)
    kinds, orders, _mts, _cpus, slot_of = ops
    live: dict[int, int] = {}
    replay = bench_buddy.LifoBuddy(NR_PAGES)
    for kind, order, slot in zip(kinds, orders, slot_of, strict=True):
        if kind == bench_buddy.ALLOC:
            live[slot] = (replay.alloc(order), order)
        else:
            replay.free(*live.pop(slot))
    assert bench_buddy.free_blocks(replay.free_lists) == bench_buddy.free_blocks(
        lifo.free_lists)
    assert replay.checksum() == lifo.checksum()
    free = sum(n << o for o, n in enumerate(bench_buddy.free_blocks(lifo.free_lists)))
    assert free + sum(1 << order for _pfn, order in live.values()) == NR_PAGES
    for pfn, order in live.values():
        replay.free(pfn, order)
    initial = [0] * 11
    for _pfn, order in bench_buddy.initial_blocks(NR_PAGES):
        initial[order] += 1
    assert bench_buddy.free_blocks(replay.free_lists) == initial


def test_the_ops_file_is_what_the_c_loop_reads(tmp_path, sequence):
    ops, prefill, slots = sequence
    path = tmp_path / "ops.bin"
    bench_buddy.write_ops(path, NR_PAGES, ops, prefill, slots)
    data = path.read_bytes()
    n = len(ops[0])
    assert data[:8] == b"FSBUDDY1"
    assert [int.from_bytes(data[8 * i:8 * i + 8], "little") for i in range(1, 6)] == [
        NR_PAGES, 10, n, prefill, slots]
    assert len(data) == 64 + n + n + 4 * n


def test_without_a_compiler_the_c_loop_is_skipped_with_one_line(monkeypatch, tmp_path,
                                                                sequence):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no cc, gcc, clang
    monkeypatch.delenv("CC", raising=False)
    assert bench_buddy.c_compiler() is None
    ops, prefill, slots = sequence
    result = bench_buddy.run_c(NR_PAGES, ops, prefill, slots)
    assert result == {"skipped": bench_buddy.NO_COMPILER}
    assert "\n" not in bench_buddy.NO_COMPILER
    import run

    rows = run._issue20_rows({"versus_c": run._versus_c({"c": result}, {}),
                              "bare": {"c": result}, "bench64": {"error": "not run"}})
    assert rows[0] == ("C buddy loop", bench_buddy.NO_COMPILER, "-", "-")
    assert run._notes({"bench64": {}, "bare": {"c": result}}) == [bench_buddy.NO_COMPILER]


def test_bench64_cuts_the_run_after_the_fill_and_the_windows(tmp_path):
    # A tiny machine with the file waves left out: the cut and the windows, not speed.
    record = bench64.measure(["machine.memory=128MiB", "workloads.0.rate=32MiB",
                              "workloads.1.size=32MiB", "workloads.1.grow_rate=64MiB",
                              "workloads.2.steps=[]"], settle=1.0, steady=10.0,
                             max_fill=20.0)
    full = record["full_s"]
    assert full is not None and 0 < full < 20
    times = [m["t"] for m in record["marks"]]
    assert times == sorted(times) and times[-1] == pytest.approx(full + 11)
    assert record["marks"][-1]["pgsteal_kswapd"] + record["marks"][-1]["pgsteal_direct"] > 0
    a = bench64.analyse(record)
    assert a["fill"]["to_s"] == a["settle"]["from_s"] == full
    assert a["steady"]["from_s"] == full + 1 and a["steady"]["to_s"] == full + 11
    assert len(a["steady"]["wave_sim_s_per_cpu_s"]) == 1
    assert a["bytes_per_page"] == a["peak_rss_bytes"] / 32768
    assert a["days_per_sim_week"] == pytest.approx(7 / a["steady"]["sim_s_per_cpu_s"])
    with pytest.raises(SystemExit, match="multiple of 10"):
        bench64.measure([], settle=0.0, steady=15.0, max_fill=1.0)


def test_bench64_windows_and_the_extrapolation_are_arithmetic_on_the_marks():
    def marks(full, per_s_fill, per_s_full, end):
        out, cpu = [], 2.0
        for t in range(end + 1):
            out.append({"t": float(t), "cpu_s": cpu, "maxrss_kib": 1000 * t, "alloc_ops": 10 * t,
                        **{k: (t > full) * t for k in bench64.COUNTERS}})
            cpu += per_s_fill if t < full else per_s_full
        return out

    def record(gib, full):
        pages = gib << 18
        return {"marks": marks(full, 0.5, 2.0, full + 40), "full_s": float(full),
                "pages": pages, "memory_bytes": gib << 30, "settle_s": 10.0,
                "steady_s": 30.0, "peak_rss_bytes": 100 + 20 * pages}

    a = bench64.analyse(record(64, 50))
    assert a["build_cpu_s"] == 2.0 and a["full_s"] == 50.0
    assert a["fill"]["sim_s_per_cpu_s"] == pytest.approx(2.0)
    assert a["steady"]["sim_s_per_cpu_s"] == pytest.approx(0.5)
    assert a["steady"]["wave_sim_s_per_cpu_s"] == pytest.approx([0.5, 0.5, 0.5])
    assert a["days_per_sim_week"] == pytest.approx(14.0)
    assert a["week_speedup_needed"] == pytest.approx(336.0)
    assert "error" not in a
    import run

    guess = run.extrapolate([a, bench64.analyse(record(128, 100))], 256)
    assert guess["peak_rss_bytes"] == pytest.approx(100 + 20 * (256 << 18))
    assert guess["marginal_bytes_per_page"] == pytest.approx(20.0)
    assert guess["full_s"] == pytest.approx(200.0)
    never = record(64, 50)
    never["full_s"] = None
    assert bench64.analyse(never)["error"].startswith("memory not full after")
    assert math.isnan(bench64._window(never["marks"], 3, 3)["sim_s_per_cpu_s"])



def test_peak_memory_sorts_an_allocation_by_its_stacks_first_part_first():
    part = peak_memory.part_of
    zones, index, slot, lru_pos, fs_churn, page_cache = (p[0] for p in peak_memory.PARTS[:6])
    assert part("snapshot.py:synthesize_zone", []) == zones
    # a node's link words, made as the machine builds its node
    share = ["vec_alloc", "CPyDef_sim___mmzone___Node____share_links"]
    assert part("machine.py:build_node", share) == zones
    assert part("machine.py:page_index", ["vec_alloc"]) == index
    # a read's allocation is the page cache's, unless it is the slot vector growing,
    # which is told by its native frame whatever the Python frame says
    grow = ["vec_alloc", "VecI32_FromIterable",
            "CPyDef_sim___objects___FileSystem____page_cache_grow"]
    assert part("page_cache.py:_read_one", grow) == slot
    assert part("page_cache.py:_read_one", ["CPyDef_sim___vmscan___FileLru____grow"]) == lru_pos
    assert part("page_cache.py:_read_one", ["VecI64_New"]) == page_cache
    assert part("base.py:_main", ["CPyDef_workloads___objloop___create_files"]) == fs_churn
    assert part("daemons.py:rcu_tick", ["PyList_Append"]) == peak_memory.REST


def test_peak_memory_without_memray_says_so_in_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "memray", None)  # import memray raises ImportError
    assert peak_memory.main(["--settle", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install memray" in err
