"""`fragsim replay` on the shipped real trace: the run layout and what defrag would do."""

import gzip
import json
from pathlib import Path

import pytest

from sim.cli import main
from sim.procfs import parse_slabinfo

EXAMPLE = Path(__file__).resolve().parent.parent / "configs/examples/tmpfs-churn-20k-keep10"


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
        out[mode] = (path, json.loads((path / "summary.json").read_text()))
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
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["complete"] is False and summary["trace"]["error"]
    assert summary["trace"]["events"] > 0
