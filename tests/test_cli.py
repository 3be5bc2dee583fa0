"""The fragsim command line: output bytes, exit codes and one-line errors."""

import io
import subprocess
import sys
from pathlib import Path

import pytest

import sim.cli
from sim import __version__
from sim.cli import main
from sim.errors import FragsimError

DATA = Path(__file__).parent / "data"
GUPTA = DATA / "compaction" / "gupta-12g-keep1of4"
REPO = Path(__file__).parent.parent
SNAPSHOTS = ["0-idle", "1-filled", "2-freed", "3-compacted", "4-released"]
INDEX_FILES = {"unusable": "unusable_index", "fragmentation": "extfrag_index"}


@pytest.mark.parametrize("index", INDEX_FILES)
@pytest.mark.parametrize("snapshot", SNAPSHOTS)
def test_extfrag_prints_the_kernels_debugfs_bytes(capsys, snapshot, index):
    status = main(["extfrag", str(GUPTA / f"{snapshot}.buddyinfo"), "--index", index])
    out, err = capsys.readouterr()
    assert status == 0
    assert out == (GUPTA / f"{snapshot}.{INDEX_FILES[index]}").read_text()
    assert err == ""


def test_extfrag_prints_the_unusable_index_by_default(capsys):
    assert main(["extfrag", str(GUPTA / "2-freed.buddyinfo")]) == 0
    assert capsys.readouterr().out == (GUPTA / "2-freed.unusable_index").read_text()


def test_extfrag_reads_stdin_for_a_dash(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO((GUPTA / "3-compacted.buddyinfo").read_text()))
    assert main(["extfrag", "-"]) == 0
    assert capsys.readouterr().out == (GUPTA / "3-compacted.unusable_index").read_text()


def test_missing_file_exits_2_with_one_line_on_stderr(capsys, tmp_path):
    missing = tmp_path / "no-such.buddyinfo"
    assert main(["extfrag", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"fragsim: error: {missing}: cannot read: No such file or directory\n"


def test_malformed_buddyinfo_exits_2_naming_file_and_line(capsys, tmp_path):
    bad = tmp_path / "bad.buddyinfo"
    lines = (GUPTA / "0-idle.buddyinfo").read_text().splitlines(keepends=True)
    bad.write_text(lines[0] + "Node 0, zone DMA32 1 2 x\n")
    assert main(["extfrag", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"fragsim: error: {bad}:2: expected a buddyinfo line")
    assert "Traceback" not in err


def test_error_message_is_printed_on_one_line_even_if_it_spans_several(capsys, monkeypatch):
    def parse_with_a_multiline_error(text, source):
        raise FragsimError(f"{source}: first\nsecond")

    monkeypatch.setattr(sim.cli, "parse_buddyinfo", parse_with_a_multiline_error)
    assert main(["extfrag", str(GUPTA / "0-idle.buddyinfo")]) == 2
    assert capsys.readouterr().err.endswith(": first second\n")


def test_extfrag_help_has_a_description_and_an_example(capsys):
    assert main(["extfrag", "--help"]) == 0
    out = capsys.readouterr().out
    assert "unusable_index" in out
    assert "Example:" in out
    assert "fragsim extfrag tests/data/compaction/gupta-12g-keep1of4/2-freed.buddyinfo" in out


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    assert "extfrag" in capsys.readouterr().out


def test_version_prints_the_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"fragsim {__version__}\n"


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_unknown_index_is_a_usage_error(capsys):
    assert main(["extfrag", str(GUPTA / "0-idle.buddyinfo"), "--index", "nope"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def run_fragsim(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_python_dash_m_sim_runs_the_cli():
    snapshot = GUPTA / "2-freed.buddyinfo"
    result = run_fragsim(
        sys.executable, "-m", "sim", "extfrag", str(snapshot), "--index", "fragmentation"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (GUPTA / "2-freed.extfrag_index").read_text()


def test_python_dash_m_sim_reports_bad_input_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.buddyinfo"
    bad.write_text("garbage\n")
    result = run_fragsim(sys.executable, "-m", "sim", "extfrag", str(bad))
    assert result.returncode == 2
    assert (
        result.stderr == f"fragsim: error: {bad}:1: expected a buddyinfo line "
        "'Node N, zone NAME COUNT...', got 'garbage'\n"
    )


def test_installed_console_script_runs():
    # The README installs the project into the venv that runs the tests.
    script = Path(sys.executable).parent / "fragsim"
    assert script.exists(), "fragsim is not installed next to this Python (pip install -e .)"
    result = run_fragsim(str(script), "extfrag", str(GUPTA / "4-released.buddyinfo"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (GUPTA / "4-released.unusable_index").read_text()
