"""The documentation: docs/config.md is what the schema gives, the docs' examples run,
and the README and docs/ point only at files in the repository."""

import re
from pathlib import Path

import pytest

from sim.cli import main
from sim.configdoc import config_reference, missing_meanings

REPO = Path(__file__).resolve().parent.parent
CONFIG_MD = REPO / "docs" / "config.md"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# A path in backticks that names a file or folder of the repository.
REPO_PATH = re.compile(r"`((?:sim|workloads|configs|tests|bench|docs)/[\w./-]*)`")
WRITTEN_BY_COMMANDS = {"bench/results.json"}  # git-ignored output the docs name


def test_docs_config_md_is_current(capsys):
    status = main(["config-reference", "--check", str(CONFIG_MD)])
    assert status == 0, capsys.readouterr().err


def test_check_names_the_stale_file_and_the_fix_in_one_line(capsys, tmp_path):
    stale = tmp_path / "config.md"
    stale.write_text(config_reference().replace("| `seed` |", "| `the_seed` |"))
    assert main(["config-reference", "--check", str(stale)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"fragsim: error: {stale}:")
    assert f"fragsim config-reference > {stale}" in err


def test_check_of_a_missing_file_fails_in_one_line(capsys, tmp_path):
    assert main(["config-reference", "--check", str(tmp_path / "none.md")]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_config_reference_prints_the_reference(capsys):
    assert main(["config-reference"]) == 0
    assert capsys.readouterr().out == config_reference()


def test_config_reference_is_deterministic():
    assert config_reference() == config_reference()


def test_config_reference_help_has_an_example(capsys):
    assert main(["config-reference", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example:" in out and "fragsim config-reference > docs/config.md" in out


def test_every_key_has_a_meaning():
    # A field without a description in the schema takes one from sim.configdoc.MEANINGS.
    assert missing_meanings() == []


def test_the_reference_has_every_section_and_workload_kind():
    from sim.config import ExperimentConfig
    from workloads import BUILTIN

    text = config_reference()
    for name in ExperimentConfig.model_fields:
        assert f"`{name}" in text, name
    for kind in BUILTIN:
        assert f"### kind: {kind}\n" in text, kind
    for key in ("machine.memory", "defrag.used_ratio", "caches.NAME.mobility",
                "workloads[].rate", "workloads[].lifetime.mean", "sweep.grid",
                "capacity.target", "measure_from"):
        assert f"| `{key}` |" in text, key


def test_sizes_and_durations_are_shown_with_units():
    text = config_reference()
    assert "| `machine.memory` | size (bytes) | `1GiB` |" in text
    assert "| `measure_from` | duration (s) | `0s` | >= 0 |" in text
    assert "| `defrag.cost_free` | duration (s) | `2us` |" in text
    assert "| `buddy.free_list_order` | string | `lifo` | lifo, fifo, address |" in text


@pytest.mark.parametrize("doc", [d for d in DOCS if d.name != "README.md"],
                         ids=lambda d: d.name)
def test_docs_python_examples_run(doc):
    for block in re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S):
        exec(compile(block, str(doc), "exec"), {})


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_docs_point_only_at_files_in_the_repository(doc):
    text = doc.read_text()
    assert "../shared" not in text and "DESIGN.md" not in text
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "#")):
            continue
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO) and path.exists(), f"{doc.name}: {target}"
    for target in set(REPO_PATH.findall(text)) - WRITTEN_BY_COMMANDS:
        assert (REPO / target).exists(), f"{doc.name}: {target}"
