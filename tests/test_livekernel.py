"""``fragsim snapshot``: the live kernel's memory files, copied whole, never over
anything, with what was skipped said (sim/livekernel.py)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

from sim import livekernel
from sim.cli import main
from sim.livekernel import LiveKernel, take_snapshot
from sim.procfs import parse_buddyinfo, parse_zoneinfo


def mounts() -> str:
    return Path("/proc/self/mounts").read_text()


def test_a_snapshot_of_this_machine_holds_its_memory_files(tmp_path):
    before = mounts()
    out = tmp_path / "snap"
    report = take_snapshot(out)
    manifest = json.loads((out / "snapshot.json").read_text())
    assert manifest["kernel_release"] == platform.release()
    assert manifest["taken"] == report.taken and manifest["skipped"] == report.skipped
    for name in ("buddyinfo", "zoneinfo", "meminfo", "vmstat", "sys/vm/min_free_kbytes"):
        assert name in report.taken and (out / name).stat().st_size > 0
    zones = parse_buddyinfo((out / "buddyinfo").read_text(), "buddyinfo")
    zoneinfo = {z.zone for z in parse_zoneinfo((out / "zoneinfo").read_text(), "zoneinfo")}
    assert zones and {z.zone for z in zones} <= zoneinfo
    for queue in Path("/sys/block").glob("*/queue/read_ahead_kb"):  # each disk's, as it is
        copy = out / "block" / queue.parent.parent.name / "read_ahead_kb"
        assert copy.read_text() == queue.read_text()
    if os.geteuid() == 0:  # root: the root-only files and debugfs's extfrag indices too
        for name in ("pagetypeinfo", "slabinfo", "extfrag/unusable_index",
                     "extfrag/extfrag_index"):
            assert name in report.taken, report.skipped
    assert mounts() == before  # a debugfs mounted for the read is gone again
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".snap.")]


def test_files_a_kernel_lacks_are_skipped_and_said(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "buddyinfo").write_text("Node 0, zone   Normal      1      2      3\n")
    kernel = LiveKernel(proc=proc, sys_mm=tmp_path / "mm", debugfs=tmp_path / "debug",
                        sys_block=tmp_path / "block")
    report = take_snapshot(tmp_path / "snap", kernel)
    assert report.taken == ["buddyinfo"]
    assert report.skipped["pagetypeinfo"] == "not present on this kernel"
    assert report.skipped["thp/enabled"] == "not present on this kernel"
    assert "extfrag/unusable_index" in report.skipped
    assert (tmp_path / "snap" / "buddyinfo").read_text().startswith("Node 0, zone")


def test_a_snapshot_never_writes_over_anything(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["snapshot", str(mine)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["snapshot", str(afile)]) == 2
    assert afile.read_text() == "x"


def test_a_snapshot_stopped_halfway_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real_copy = livekernel._copy

    def copy_then_stop(src, dst, name, report):
        calls.append(name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_copy(src, dst, name, report)

    monkeypatch.setattr(livekernel, "_copy", copy_then_stop)
    with pytest.raises(KeyboardInterrupt):
        take_snapshot(tmp_path / "snap")
    assert list(tmp_path.iterdir()) == []


def fake_damon(mm: Path, state: str = "on", sz_applied: int = 4096) -> Path:
    """A kdamond's sysfs tree as mm/damon/sysfs.c lays it out: one paddr context with
    one pageout scheme (this project's machine runs one like it), and a second kdamond
    that is off."""
    kd = mm / "damon" / "admin" / "kdamonds" / "0"
    files = {
        "state": state,
        "contexts/0/operations": "paddr",
        "contexts/0/monitoring_attrs/intervals/sample_us": "500000",
        "contexts/0/monitoring_attrs/intervals/aggr_us": "5000000",
        "contexts/0/monitoring_attrs/intervals/update_us": "60000000",
        "contexts/0/targets/0/regions/0/start": "16777216",
        "contexts/0/targets/0/regions/0/end": "3221225472",
        "contexts/0/schemes/0/action": "pageout",
        "contexts/0/schemes/0/quotas/bytes": "134217728",
        "contexts/0/schemes/0/quotas/ms": "50",
        "contexts/0/schemes/0/quotas/reset_interval_ms": "1000",
        "contexts/0/schemes/0/ops_filters/0/type": "anon",
        "contexts/0/schemes/0/ops_filters/0/matching": "Y",
        "contexts/0/schemes/0/ops_filters/0/allow": "N",
    }
    for what, (low, high) in {"sz": (0, 2**64 - 1), "nr_accesses": (0, 1),
                              "age": (12, 2**32 - 1)}.items():
        files[f"contexts/0/schemes/0/access_pattern/{what}/min"] = str(low)
        files[f"contexts/0/schemes/0/access_pattern/{what}/max"] = str(high)
    for name in livekernel.DAMON_STATS:
        files[f"contexts/0/schemes/0/stats/{name}"] = str(sz_applied if name == "sz_applied"
                                                         else 1)
    files["../1/state"] = "off"
    for rel, text in files.items():
        path = (kd / rel).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return kd


def test_damon_schemes_that_run_are_read_with_their_settings_and_counters(tmp_path):
    kd = fake_damon(tmp_path / "mm")
    kernel = LiveKernel(proc=tmp_path / "proc", sys_mm=tmp_path / "mm")
    (scheme,) = livekernel.damon_schemes(kernel)
    # The counters are refreshed first: update_schemes_stats written to the kdamond.
    assert (kd / "state").read_text() == "update_schemes_stats" and scheme["stats_refreshed"]
    assert (scheme["kdamond"], scheme["context"], scheme["scheme"]) == (0, 0, 0)
    assert scheme["operations"] == "paddr" and scheme["action"] == "pageout"
    assert scheme["regions"] == [[16777216, 3221225472]]
    assert scheme["intervals_us"] == {"sample_us": 500000, "aggr_us": 5000000,
                                      "update_us": 60000000}
    assert scheme["access_pattern"]["age_min"] == 12
    assert scheme["access_pattern"]["nr_accesses_max"] == 1
    assert scheme["quotas"] == {"bytes": 134217728, "ms": 50, "reset_interval_ms": 1000}
    assert scheme["filters"] == [{"kind": "ops_filters", "type": "anon", "matching": "Y",
                                  "allow": "N"}]
    assert scheme["stats"]["sz_applied"] == 4096
    # A kdamond that is off, or no DAMON at all, gives nothing.
    (kd / "state").write_text("off\n")
    assert livekernel.damon_schemes(kernel) == []
    assert livekernel.damon_schemes(LiveKernel(sys_mm=tmp_path / "none")) == []


def test_a_snapshot_keeps_the_damon_schemes_and_a_recording_says_what_they_did(tmp_path):
    from sim.record import damon_activity, damon_notes

    kernel = LiveKernel(proc=tmp_path / "proc", sys_mm=tmp_path / "mm",
                        debugfs=tmp_path / "debug", sys_block=tmp_path / "block")
    fake_damon(tmp_path / "mm", sz_applied=1 << 20)
    report = take_snapshot(tmp_path / "start", kernel)
    assert livekernel.DAMON_JSON in report.taken
    fake_damon(tmp_path / "mm", sz_applied=(1 << 20) + (300 << 20))
    take_snapshot(tmp_path / "final", kernel)
    (done,) = damon_activity(tmp_path)
    assert done["action"] == "pageout" and done["sz_applied"] == 300 << 20
    assert done["nr_applied"] == 0
    (note,) = damon_notes({"damon": [done]})
    assert "paged out 300MiB" in note and "fragsim does not model it" in note
    assert damon_notes({"damon": [dict(done, sz_applied=0)]}) == []
    # Without DAMON in one of the snapshots there is nothing to say.
    (tmp_path / "final" / livekernel.DAMON_JSON).unlink()
    assert damon_activity(tmp_path) == []
