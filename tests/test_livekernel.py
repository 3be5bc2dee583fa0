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
