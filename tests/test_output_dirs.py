"""Sweep and capacity directories: fragsim writes only into its own."""

import json

import pytest

from sim.cli import main
from sim.errors import FragsimError
from sim.results import MARKER, output_directory


def test_a_new_directory_is_created_marked_and_reused(tmp_path):
    out = tmp_path / "sweep"
    with output_directory(out, "sweep") as path:
        (path / "sweep.csv").write_text("x")
    assert json.loads((out / MARKER).read_text())["kind"] == "sweep"
    with output_directory(out, "sweep"):  # a resumed sweep
        pass
    assert (out / "sweep.csv").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]  # the lock is gone


def test_a_users_directory_or_another_kind_is_refused_and_untouched(tmp_path):
    mine = tmp_path / "paper"
    mine.mkdir()
    (mine / "sweep.csv").write_text("my own table")
    (mine / "notes.md").write_text("notes")
    with pytest.raises(FragsimError, match="not a fragsim sweep directory"), \
            output_directory(mine, "sweep"):
        pass
    assert (mine / "sweep.csv").read_text() == "my own table"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.md", "sweep.csv"]
    with output_directory(tmp_path / "study", "capacity"):
        pass
    with pytest.raises(FragsimError, match="capacity directory, not a fragsim sweep directory"), \
            output_directory(tmp_path / "study", "sweep"):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(FragsimError, match="is a file"), output_directory(tmp_path / "file",
                                                                          "sweep"):
        pass


def test_a_sweep_written_before_the_marker_is_recognised(tmp_path):
    old = tmp_path / "old"
    (old / "points").mkdir(parents=True)
    (old / "sweep.json").write_text("{}")
    (old / "metric.png").write_bytes(b"png")
    with output_directory(old, "sweep"):
        pass
    assert (old / MARKER).is_file()


def test_a_second_writer_is_refused_while_the_first_holds_it(tmp_path):
    with output_directory(tmp_path / "s", "sweep"), \
            pytest.raises(FragsimError, match="another fragsim"), \
            output_directory(tmp_path / "s", "sweep"):
        pass


def test_fragsim_sweep_and_capacity_refuse_a_users_directory(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("1,2")
    assert main(["sweep", "configs/sweeps/pcp_on_off.yaml", "--out", str(mine)]) == 2
    assert main(["capacity", "configs/capacity/thp_memory.yaml", "--out", str(mine)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("not a fragsim" in line for line in err)
    assert [p.name for p in mine.iterdir()] == ["data.csv"]
