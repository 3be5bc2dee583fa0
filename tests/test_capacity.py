"""Capacity search: bracketing, bisection, the warnings and the report, on toy metrics and a
small real config."""

import json
import math
from pathlib import Path

import pytest
import yaml
from matplotlib.image import imread

from sim.capacity import (
    Target,
    differences,
    find_capacity,
    format_report,
    grid_values,
    max_probes,
    parse_range,
    parse_target,
    plan_capacity,
    run_capacity,
    warnings_of,
)
from sim.cli import main
from sim.errors import FragsimError

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "configs" / "capacity").glob("*.yaml"))
MiB = 1 << 20

# A fixed 24 MiB of anonymous memory plus kernel churn: the time-averaged number of free
# 2 MiB blocks grows with memory; about 20 ms a run.
TINY = {
    "name": "tiny-capacity",
    "seed": 1,
    "duration": "500ms",
    "sample_every": "100ms",
    # one blank zone: the per-CPU lists' effect the capacity test shows is a lone zone's
    "machine": {"memory": "64MiB", "cpus": 2, "zones": ["Normal"], "boot": "none"},
    "workloads": [
        {"kind": "anon", "size": "24MiB", "grow_rate": "1GiB", "churn_rate": "16MiB"},
        {"kind": "kernel_alloc", "rate": 2000, "orders": {0: 0.9, 3: 0.1},
         "lifetime": {"dist": "exponential", "mean": "200ms"}},
        {"kind": "thp_probe", "interval": "50ms", "hold": "20ms"},
    ],
}


def tiny_config(tmp_path, **changes) -> Path:
    data = yaml.safe_load(yaml.safe_dump(TINY))
    data.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def toy(metric_of):
    """An evaluator from ``metric_of(setting, value) -> [per-seed values]``, counting calls."""
    calls = []

    def evaluate(requests):
        calls.append([(r.setting, r.value) for r in requests])
        return [list(metric_of(r.setting, r.value)) for r in requests]

    evaluate.calls = calls
    return evaluate


def one_line_error(call) -> str:
    with pytest.raises(FragsimError) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


# ------------------------------------------------------------------ parsing


def test_targets_parse_metric_op_value():
    assert parse_target("thp_success_rate>=0.9") == Target("thp_success_rate", ">=", 0.9)
    assert parse_target(" evictions.page_cache_pages < 1e4 ") == Target(
        "evictions.page_cache_pages", "<", 1e4)
    assert Target("m", ">=", 0.9).met(0.9) and not Target("m", ">", 0.9).met(0.9)
    assert Target("m", "<=", 3).met(2) and not Target("m", "<", 3).met(3)
    assert not Target("m", ">=", 0).met(math.nan)


@pytest.mark.parametrize("text", ["thp_success_rate=0.9", "0.9<=x", "x >= lots", ""])
def test_bad_targets_are_one_line_errors(text):
    assert one_line_error(lambda: parse_target(text)).startswith(
        "--target: expected METRIC OP VALUE such as thp_success_rate>=0.9")


def test_ranges_take_units_and_must_be_ordered():
    assert parse_range("256MiB..4GiB") == (256 * MiB, 4 << 30, "size")
    assert parse_range("10..90") == (10, 90, "number")
    assert parse_range("1s..1min") == (1.0, 60.0, "duration")
    assert one_line_error(lambda: parse_range("4GiB")).startswith("--range: expected LO..HI")
    assert one_line_error(lambda: parse_range("4GiB..1GiB")) == (
        "--range: expected LO below HI, got '4GiB..1GiB'")
    assert "same unit kind" in one_line_error(lambda: parse_range("1GiB..10s"))
    assert "KB" in one_line_error(lambda: parse_range("1KB..2KB"))


def test_the_grid_runs_from_lo_to_hi_in_steps():
    assert grid_values(0, 10, 3) == [0, 3, 6, 9, 10]
    assert grid_values(256 * MiB, 512 * MiB, 64 * MiB) == [m * MiB for m in (256, 320, 384,
                                                                              448, 512)]


# ------------------------------------------------------------------ the search, on toys


@pytest.mark.parametrize(("threshold", "lo", "hi", "step"), [
    (37, 0, 100, 1), (1, 0, 100, 1), (100, 0, 100, 1), (300, 128, 1024, 64), (1000, 128, 1024, 64),
])
def test_bisection_finds_the_smallest_passing_grid_value_of_a_monotone_metric(
        threshold, lo, hi, step):
    evaluate = toy(lambda s, v: [1.0 if v >= threshold else 0.0])
    [answer] = find_capacity(["only"], lo, hi, step, Target("m", ">=", 0.5), evaluate)
    grid = grid_values(lo, hi, step)
    expected = min(v for v in grid if v >= threshold)
    assert answer.status == "found" and answer.answer == expected
    low, high = answer.interval
    assert high == expected and low == grid[grid.index(expected) - 1]  # one step apart
    assert low < threshold <= high
    assert len(answer.probes) <= max_probes(lo, hi, step)
    assert answer.non_monotone == [] and answer.disagreements == []


def test_settings_are_bisected_in_lockstep_rounds():
    evaluate = toy(lambda s, v: [1.0 if v >= (30, 70)[s] else 0.0])
    answers = find_capacity(["a", "b"], 0, 100, 1, Target("m", ">=", 0.5), evaluate)
    assert [a.answer for a in answers] == [30, 70]
    assert len(evaluate.calls[0]) == 2 * 5  # LO, HI and 3 scan points, both settings at once
    assert all({s for s, _ in call} == {0, 1} for call in evaluate.calls)


def test_a_range_that_does_not_bracket_is_reported_per_setting():
    evaluate = toy(lambda s, v: [(0.95, 0.2, v / 100)[s]])
    met, never, found = find_capacity(["met", "never", "found"], 0, 100, 5,
                                      Target("m", ">=", 0.5), evaluate)
    assert (met.status, met.answer, met.interval) == ("met_at_lo", 0, (-math.inf, 0))
    assert (never.status, never.answer, never.interval) == ("not_met_at_hi", None,
                                                            (100, math.inf))
    assert (found.status, found.answer) == ("found", 50)
    assert len(met.probes) == len(never.probes) == 5  # no bisection for them
    texts = [d.text for d in differences([found, met, never], 5, "number", "k")]
    # found needs more than 45 (its threshold is in (45, 50]), met at most 0, never over 100.
    outside = " of k against found (an answer lies outside the range)"
    assert texts == ["met saves more than 45" + outside, "never costs more than 50" + outside]


def test_seed_disagreement_is_warned_with_the_probe_and_widens_the_difference():
    # Seed 2 needs 10 more than seed 1; the mean passes in between.
    evaluate = toy(lambda s, v: [1.0 if v >= 40 + 20 * s else 0.0,
                                 1.0 if v >= 50 + 20 * s else 0.0,
                                 1.0 if v >= 40 + 20 * s else 0.0])
    target = Target("m", ">=", 0.5)
    base, other = find_capacity(["base", "other"], 0, 100, 1, target, evaluate)
    assert (base.answer, other.answer) == (40, 60)
    assert base.per_seed_answers == [40, 50, 40] and base.seed_spread == 5
    warnings = warnings_of([base, other], "k", "number", target)
    assert "base: seeds disagree at k=40: 2 of 3 pass (1, 0, 1)" in warnings
    [difference] = differences([base, other], 1, "number", "k")
    assert difference.saves == -20 and difference.step_part == 1
    # Each seed's own threshold is bisected to the step too, not read off coarse probes.
    assert other.per_seed_answers == [60, 70, 60] and other.seed_spread == 5
    assert difference.seed_part == pytest.approx(math.hypot(5, 5))
    assert difference.text.startswith("other costs 20 of k ± 8.07 against base")


def test_a_metric_that_is_not_monotone_is_caught_by_the_first_round_scan():
    # Passes in [20, 30] (where the scan probes 25) and from 60 up.
    evaluate = toy(lambda s, v: [1.0 if 20 <= v <= 30 or v >= 60 else 0.0])
    target = Target("m", ">=", 0.5)
    [answer] = find_capacity(["x"], 0, 100, 1, target, evaluate)
    assert answer.answer == 60 and answer.interval == (59, 60)
    assert (answer.non_monotone[0][0].value, answer.non_monotone[0][1].value) == (25, 50)
    [warning] = warnings_of([answer], "k", "number", target)
    assert warning.startswith("x: m is not monotone in k on the probes run")
    assert "passes at 25 (1) but fails at 50 (0)" in warning


# ------------------------------------------------------------------ real runs


def test_capacity_on_a_small_real_config_brackets_bisects_and_writes_its_files(tmp_path):
    path = tiny_config(tmp_path)
    out = tmp_path / "out"
    result = run_capacity(path, "machine.memory", "16MiB..128MiB", "avail9_time_avg>=10",
                          ["buddy.pcp=true,false"], seeds=2, step_text="8MiB", out=out, jobs=2)
    pcp_on, pcp_off = result.answers
    for answer in result.answers:
        assert answer.status == "found"
        by_value = {p.value: p for p in answer.probes}
        assert by_value[answer.answer].mean >= 10 > by_value[answer.interval[0]].mean
        assert answer.answer - answer.interval[0] == 8 * MiB
        assert by_value[16 * MiB].passed is False and by_value[128 * MiB].passed is True
    # Per-CPU lists hide free pages from the buddy lists: without them less memory does.
    assert pcp_off.answer < pcp_on.answer
    data = json.loads((out / "capacity.json").read_text())
    assert data["vary"] == "machine.memory" and data["target"]["text"] == "avail9_time_avg >= 10"
    assert [s["label"] for s in data["settings"]] == ["buddy.pcp=true", "buddy.pcp=false"]
    assert data["settings"][1]["answer"] == pcp_off.answer
    assert data["differences"][0]["saves"] == pcp_on.answer - pcp_off.answer
    assert data["differences"][0]["text"].startswith("buddy.pcp=false saves ")
    image = imread(out / "capacity.png")
    assert image.shape[0] > 300 and image[..., :3].std() > 0.02
    report = format_report(result)
    assert "smallest machine.memory in 16MiB..128MiB (step 8MiB) with avail9_time_avg >= 10" \
        in report
    assert "buddy.pcp=false saves" in report


def test_cli_capacity_prints_the_table_and_says_when_a_range_does_not_bracket(tmp_path, capsys):
    path = tiny_config(tmp_path)
    argv = ["capacity", str(path), "--vary", "machine.memory", "--target",
            "avail9_time_avg>=10", "--seeds", "1", "--jobs", "1", "--no-plots"]
    assert main([*argv, "--range", "16MiB..96MiB", "--step", "16MiB",
                 "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "setting  smallest machine.memory" in out and "results in" in out
    assert main([*argv, "--range", "96MiB..128MiB", "--out", str(tmp_path / "b")]) == 1
    assert "<= 96MiB (met at LO)" in capsys.readouterr().out
    assert main([*argv, "--range", "16MiB..32MiB", "--out", str(tmp_path / "c")]) == 1
    assert "> 32MiB (not met at HI)" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "expected"), [
    (["--vary", "machine.memroy"], "--vary machine.memroy=16MiB (base): machine.memroy: "
                                   "unknown key; did you mean 'memory'?"),
    (["--target", "avail9_time_agv>=10"], "--target: avail9_time_agv: unknown metric (a summary "
                                          "field such as thp_success_rate or avail9_time_avg); "
                                          "did you mean 'avail9_time_avg'?"),
    (["--step", "10s"], "--step: expected a size like the range, got '10s'"),
    (["--compare", "buddy.pcp"], "--compare: expected KEY=V1,V2 such as "
                                 "defrag.enabled=false,true, got 'buddy.pcp'"),
])
def test_cli_capacity_bad_input_is_one_line_with_status_2(tmp_path, capsys, args, expected):
    path = tiny_config(tmp_path)
    argv = {"--vary": "machine.memory", "--range": "16MiB..64MiB",
            "--target": "avail9_time_avg>=10"}
    argv.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for kv in argv.items() for x in kv]
    assert main(["capacity", str(path), *flat, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip("\n").endswith(expected)


def test_a_missing_option_names_where_it_could_come_from(tmp_path):
    path = tiny_config(tmp_path)
    assert one_line_error(lambda: plan_capacity(path, "machine.memory", "16MiB..64MiB")) == (
        f"--target: expected a value (on the command line or in {path}'s capacity: section), "
        "got none")


def test_the_capacity_section_gives_the_defaults_and_flags_override_it(tmp_path):
    path = tiny_config(tmp_path, capacity={
        "vary": "machine.memory", "range": "16MiB..64MiB", "step": "8MiB",
        "target": "avail9_time_avg>=10", "compare": {"buddy.pcp": [True, False]}, "seeds": 2})
    plan = plan_capacity(path)
    assert (plan["lo"], plan["hi"], plan["step"]) == (16 * MiB, 64 * MiB, 8 * MiB)
    assert [s.label for s in plan["settings"]] == ["buddy.pcp=true", "buddy.pcp=false"]
    assert plan["seeds"] == [1, 2]
    plan = plan_capacity(path, step_text="4MiB", seeds=1)
    assert plan["step"] == 4 * MiB and plan["seeds"] == [1]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_capacity_configs_are_complete_and_valid(example):
    plan = plan_capacity(example)
    assert plan["vary"] and plan["target"] and len(plan["settings"]) >= 2
    assert plan["lo"] < plan["hi"] and plan["step"] > 0
