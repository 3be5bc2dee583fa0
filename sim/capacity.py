"""What-if capacity: the smallest value of a key (machine.memory, say) that meets a target.

``fragsim capacity CONFIG --vary machine.memory --range 128MiB..1GiB --step 32MiB
--target "thp_success_rate>=0.9" --compare defrag.enabled=false,true --seeds 3``

The search, for every compared setting (the experiment's variants x ``--compare``
values) in lockstep, so that each round's runs go to the executor together:

1. **Bracket.** Probe LO, HI and three evenly spaced points between them (one round).
   HI failing ("not met at HI") and every probe passing ("met at LO": the answer is LO
   or less) are reported as such, per setting, and not bisected.
2. **Bisect** on the grid LO, LO + step, ..., HI, between the highest failing probe and
   the next passing one, until they are one grid step apart. The answer is the passing
   one: the smallest value from which the target holds at every probe above. The same
   rounds bisect each seed's own threshold (its metric alone against the target) to the
   step, so that seed disagreement is measured, not guessed from coarse probes.

A probe passes when the target holds for the metric's **mean over seeds** (a summary
field flattened as sim.runner does: ``thp_success_rate``, ``avail9_time_avg``,
``evictions.page_cache_pages``...). Bisection assumes pass/fail is monotone in the key;
the probes that ran are checked for it (a probe passing below one that fails is listed;
bisection alone never probes outside its bracket, so the interior points of the first
round are what can catch it), and a probe whose seeds disagree about pass/fail is
listed too.

**The difference and its ±.** Each answer ``a`` says the true threshold lies in
``(a - step, a]``. A seed's own answer is the smallest probed value from which that seed
passes at every probe above (bisected to the step as well); the half-range of those over
the seeds is the setting's seed spread. The difference between two settings ("defrag
saves 128MiB") is the difference of their answers, ± one step (the grid) + the two seed
spreads combined in quadrature. With an unbounded answer (met at LO, not met at HI) the
difference is reported as a strict bound.

The search itself is pure (``find_capacity`` takes an ``evaluate`` function), so tests
drive it with a toy metric; ``run_capacity`` wires it to real runs, capacity.json and a
plot of the probes.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim import __version__
from sim.config import _one_line, apply_override, load_yaml, parse_override
from sim.errors import FragsimError
from sim.experiment import validate_config
from sim.results import output_directory, write_json
from sim.units import (
    SIZE_UNITS,
    TIME_UNITS,
    format_quantity,
    parse_duration,
    parse_size,
)

CAPACITY_KEY = "capacity"
SCAN_POINTS = 3  # interior probes of the first round, besides LO and HI
OPS = (">=", "<=", ">", "<")
_TARGET = re.compile(r"^\s*([A-Za-z_][\w.\[\]-]*)\s*(>=|<=|>|<)\s*(\S+)\s*$")


class CapacitySection(BaseModel):
    """An optional ``capacity:`` section of an experiment YAML: the command's defaults."""

    model_config = ConfigDict(extra="forbid")
    vary: str | None = Field(None, description="the key to size, e.g. machine.memory")
    range: str | None = Field(None, description="LO..HI, e.g. 128MiB..1GiB")
    step: str | int | float | None = Field(None, description="the grid, e.g. 32MiB")
    target: str | None = Field(None, description='"METRIC OP VALUE", e.g. thp_success_rate>=0.9')
    compare: dict[str, list[Any]] = Field(default_factory=dict,
                                          description="KEY: [values] to compare")
    seeds: int | None = Field(None, ge=1, le=1000)


# ------------------------------------------------------------------ parsing


@dataclass(frozen=True)
class Target:
    """``metric op value``; NaN never meets a target."""

    metric: str
    op: str
    value: float

    def met(self, x: float) -> bool:
        if x != x:
            return False
        return {">=": x >= self.value, "<=": x <= self.value, ">": x > self.value,
                "<": x < self.value}[self.op]

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


def parse_target(text: str) -> Target:
    match = _TARGET.match(text or "")
    if match:
        try:
            return Target(match.group(1), match.group(2), float(match.group(3)))
        except ValueError:
            pass
    raise FragsimError(f"--target: expected METRIC OP VALUE such as thp_success_rate>=0.9 "
                       f"(OP one of {', '.join(OPS)}), got {text!r}")


def _unit_of(text: str) -> str:
    match = re.fullmatch(r"\s*[0-9.eE+-]+\s*([A-Za-zµ]*)\s*", text)
    return match.group(1) if match else ""


def parse_quantity(text: Any, what: str) -> tuple[float, str]:
    """(value, kind): kind ``size`` (bytes), ``duration`` (seconds) or ``number``."""
    if isinstance(text, bool):
        raise FragsimError(f"{what}: expected a number, a size or a duration, got {text!r}")
    if isinstance(text, int | float):
        return text, "number"
    text = str(text).strip()
    unit = _unit_of(text)
    try:
        if unit in SIZE_UNITS:
            return parse_size(text), "size"
        if unit in TIME_UNITS:
            return parse_duration(text), "duration"
        if not unit:
            number = float(text)
            return (int(number) if number.is_integer() and "." not in text
                    and "e" not in text.lower() else number), "number"
    except ValueError as err:
        raise FragsimError(f"{what}: {err}") from None
    raise FragsimError(f"{what}: expected a number, a size (256MiB) or a duration (10s), "
                       f"got {text!r}")


def parse_range(text: str) -> tuple[float, float, str]:
    """``LO..HI`` -> (lo, hi, kind); both ends of one kind, LO < HI."""
    lo_text, sep, hi_text = str(text).partition("..")
    if not sep:
        raise FragsimError(f"--range: expected LO..HI such as 256MiB..4GiB, got {text!r}")
    lo, lo_kind = parse_quantity(lo_text, "--range")
    hi, hi_kind = parse_quantity(hi_text, "--range")
    if lo_kind != hi_kind:
        raise FragsimError(f"--range: expected both ends in the same unit kind, got "
                           f"{lo_kind} {lo_text.strip()!r} and {hi_kind} {hi_text.strip()!r}")
    if not lo < hi:
        raise FragsimError(f"--range: expected LO below HI, got {text!r}")
    return lo, hi, lo_kind


# ------------------------------------------------------------------ the search (pure)


@dataclass(frozen=True)
class ProbeRequest:
    """Evaluate ``setting`` at ``value``: one metric value per seed comes back."""

    setting: int
    value: float


Evaluate = Callable[[Sequence[ProbeRequest]], list[list[float]]]


@dataclass
class Probe:
    value: float
    per_seed: list[float]
    mean: float
    ci95: float
    passed: bool
    seeds_passing: int


@dataclass
class SettingAnswer:
    """The answer for one compared setting, with the probes that led to it."""

    label: str
    status: str  # found | met_at_lo | not_met_at_hi
    answer: float | None
    interval: tuple[float, float]  # the true threshold lies in (low, high]
    probes: list[Probe]
    per_seed_answers: list[float | None]
    seed_spread: float
    disagreements: list[Probe] = field(default_factory=list)
    non_monotone: list[tuple[Probe, Probe]] = field(default_factory=list)


def _mean_ci(values: list[float]) -> tuple[float, float]:
    from sim.stats import mean_ci

    return mean_ci(values)


def grid_values(lo: float, hi: float, step: float) -> list[float]:
    """LO, LO + step, ..., HI (the last gap may be shorter)."""
    count = max(1, math.ceil((hi - lo) / step - 1e-9))
    values = [lo + k * step for k in range(count)] + [hi]
    if all(isinstance(v, int) for v in (lo, hi, step)):
        values = [int(v) for v in values]
    return values


def find_capacity(labels: Sequence[str], lo: float, hi: float, step: float, target: Target,
                  evaluate: Evaluate, on_round: Callable[[int], None] | None = None,
                  scan: int = SCAN_POINTS) -> list[SettingAnswer]:
    """Bracket (LO, HI and ``scan`` evenly spaced interior points in one round), then
    bisect every setting to the step; see the module docstring.

    The answer is the smallest grid value from which the target holds at every probe
    above it: bisection runs between the highest failing probe and the next passing one.
    Plain bisection only ever probes inside its bracket, so its probes cannot contradict
    each other; the interior scan is what lets a non-monotone metric show.
    """
    grid = grid_values(lo, hi, step)
    last = len(grid) - 1
    probes: list[dict[int, Probe]] = [{} for _ in labels]

    def run(requests: list[tuple[int, int]]) -> None:
        if on_round is not None:
            on_round(len(requests))
        outcomes = evaluate([ProbeRequest(s, grid[k]) for s, k in requests])
        for (s, k), values in zip(requests, outcomes, strict=True):
            values = [float(v) for v in values]
            mean, ci = _mean_ci(values)
            probes[s][k] = Probe(grid[k], values, mean, ci, target.met(mean),
                                 sum(target.met(v) for v in values))

    first = sorted({0, last} | {round(last * i / (scan + 1)) for i in range(1, scan + 1)})
    run([(s, k) for s in range(len(labels)) for k in first])

    def bracket(s: int, passed: Callable[[Probe], bool]) -> tuple[int, int] | None:
        """(highest failing probe, next probe above it), or None when nothing fails or HI
        fails: the bracket of the smallest value from which every probe above passes."""
        failing = [k for k, p in probes[s].items() if not passed(p)]
        if not failing or max(failing) == last:
            return None
        a = max(failing)
        return a, min(k for k in probes[s] if k > a)

    def mean_passes(p: Probe) -> bool:
        return p.passed

    def seed_passes(j: int) -> Callable[[Probe], bool]:
        return lambda p: target.met(p.per_seed[j])

    while True:
        # One round: the midpoint of the mean's bracket and of every seed's own bracket,
        # for every setting at once (a seed's threshold is resolved to the step too).
        todo = []
        for s in range(len(labels)):
            seeds = len(next(iter(probes[s].values())).per_seed)
            mids = set()
            for passed in [mean_passes, *(seed_passes(j) for j in range(seeds))]:
                bounds = bracket(s, passed)
                if bounds is not None and bounds[1] - bounds[0] > 1:
                    mids.add((bounds[0] + bounds[1]) // 2)
            todo.extend((s, k) for k in sorted(mids))
        if not todo:
            break
        run(todo)
    answers = []
    for s, label in enumerate(labels):
        ordered = [probes[s][k] for k in sorted(probes[s])]
        bounds = bracket(s, mean_passes)
        if not probes[s][last].passed:
            status, answer, interval = "not_met_at_hi", None, (grid[last], math.inf)
        elif bounds is None:
            status, answer, interval = "met_at_lo", grid[0], (-math.inf, grid[0])
        else:
            status, answer, interval = "found", grid[bounds[1]], (grid[bounds[0]],
                                                                   grid[bounds[1]])
        per_seed = _per_seed_answers(ordered, target)
        known = [v for v in per_seed if v is not None]
        spread = (max(known) - min(known)) / 2 if len(known) > 1 else 0.0
        if known and len(known) < len(per_seed):  # a seed never passes: at least to HI + step
            spread = max(spread, (grid[last] + step - min(known)) / 2)
        answers.append(SettingAnswer(
            label, status, answer, interval, ordered, per_seed, spread,
            disagreements=[p for p in ordered if 0 < p.seeds_passing < len(p.per_seed)],
            non_monotone=[(a, b) for a, b in itertools.combinations(ordered, 2)
                          if a.passed and not b.passed]))
    return answers


def _per_seed_answers(ordered: list[Probe], target: Target) -> list[float | None]:
    seeds = len(ordered[0].per_seed) if ordered else 0
    out: list[float | None] = []
    for j in range(seeds):
        answer = None
        for probe in reversed(ordered):
            if not target.met(probe.per_seed[j]):
                break
            answer = probe.value
        out.append(answer)
    return out


@dataclass
class Difference:
    """How much less of the key ``setting`` needs than ``baseline`` (negative: more)."""

    baseline: str
    setting: str
    saves: float | None
    step_part: float
    seed_part: float
    interval: tuple[float, float]
    text: str


def differences(answers: list[SettingAnswer], step: float, kind: str,
                key: str) -> list[Difference]:
    """Each setting against the first; see the module docstring for the ±."""
    out = []
    if len(answers) < 2:
        return out
    base = answers[0]
    for other in answers[1:]:
        low = base.interval[0] - other.interval[1]
        high = base.interval[1] - other.interval[0]
        seed_part = math.hypot(base.seed_spread, other.seed_spread)
        fmt = lambda v: format_quantity(v, kind, 3)  # noqa: E731
        if base.status == "found" and other.status == "found":
            saves = base.answer - other.answer
            step_part = max(base.answer - base.interval[0], other.answer - other.interval[0])
            verb = "saves" if saves >= 0 else "costs"
            text = (f"{other.label} {verb} {fmt(abs(saves))} of {key} ± "
                    f"{fmt(step_part + seed_part)} against {base.label} (± {fmt(step_part)} "
                    f"from the step, ± {fmt(seed_part)} from seed disagreement)")
        else:
            saves, step_part = None, step
            if math.isinf(low) and math.isinf(high):
                text = (f"{other.label} against {base.label}: no difference can be given "
                        f"(neither answer is bounded on both sides)")
            else:
                # The thresholds lie in (low, high] intervals: the bounds are strict.
                if math.isinf(high):
                    claim = f"saves more than {fmt(low)}" if low >= 0 else \
                        f"costs less than {fmt(-low)}"
                else:
                    claim = f"saves less than {fmt(high)}" if high >= 0 else \
                        f"costs more than {fmt(-high)}"
                text = (f"{other.label} {claim} of {key} against {base.label} (an answer "
                        f"lies outside the range)")
        out.append(Difference(base.label, other.label, saves, step_part, seed_part,
                              (low, high), text))
    return out


def warnings_of(answers: list[SettingAnswer], key: str, kind: str, target: Target) -> list[str]:
    out = []
    fmt = lambda v: format_quantity(v, kind)  # noqa: E731
    for answer in answers:
        if answer.non_monotone:
            shown = answer.non_monotone[:4]
            pairs = "; ".join(f"passes at {fmt(a.value)} ({a.mean:.3g}) but fails at "
                              f"{fmt(b.value)} ({b.mean:.3g})" for a, b in shown)
            if len(answer.non_monotone) > len(shown):
                pairs += f"; and {len(answer.non_monotone) - len(shown)} more pairs"
            out.append(f"{answer.label}: {target.metric} is not monotone in {key} on the "
                       f"probes run, so bisection may have missed the smallest value: {pairs}")
        for probe in answer.disagreements:
            values = ", ".join(f"{v:.3g}" for v in probe.per_seed)
            out.append(f"{answer.label}: seeds disagree at {key}={fmt(probe.value)}: "
                       f"{probe.seeds_passing} of {len(probe.per_seed)} pass ({values})")
        for probe in answer.probes:
            if probe.mean != probe.mean:
                out.append(f"{answer.label}: {target.metric} is NaN at {key}="
                           f"{fmt(probe.value)} (counted as failing)")
    return out


# ------------------------------------------------------------------ real runs


@dataclass(frozen=True)
class Setting:
    """One compared arm: a variant of the experiment and/or ``--compare`` values."""

    label: str
    variant: str | None
    overrides: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class ProbeTask:
    """One run of a probe (picklable, for the executor)."""

    raw: dict[str, Any]
    source: str
    variant: str | None
    overrides: tuple[str, ...]
    seed: int
    metric: str


def run_probe(task: ProbeTask) -> float:
    """Run one probe x seed and return its metric (NaN if the summary lacks it)."""
    from sim.runner import run_machine
    from sim.sweep import flatten_summary

    config = validate_config(task.raw, task.source, task.overrides, task.variant)
    result = run_machine(config, task.seed, task.variant or "default")
    return flatten_summary(result.summary).get(task.metric, math.nan)


def _with(raw: dict[str, Any], changes: Sequence[tuple[str, Any]], source: str) -> dict:
    data = copy.deepcopy(raw)
    for key, value in changes:
        apply_override(data, key.split("."), copy.deepcopy(value), source)
    return data


def parse_compare(texts: Sequence[str]) -> dict[str, list[Any]]:
    """``KEY=V1,V2`` (repeatable) -> {KEY: [V1, V2]}, values read as YAML."""
    out: dict[str, list[Any]] = {}
    for text in texts:
        key, sep, values = text.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise FragsimError(f"--compare: expected KEY=V1,V2 such as "
                               f"defrag.enabled=false,true, got {text!r}")
        parsed = [parse_override(f"{key.strip()}={v.strip()}")[1] for v in values.split(",")]
        out[key.strip()] = parsed
    return out


def _label_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def settings_of(variants: Sequence[str], compare: dict[str, list[Any]]) -> list[Setting]:
    combos = list(itertools.product(*compare.values())) if compare else [()]
    out = []
    for variant in variants or [None]:
        for combo in combos:
            pairs = tuple(zip(compare, combo, strict=True))
            parts = ([variant] if variant else []) + [f"{k}={_label_value(v)}" for k, v in pairs]
            out.append(Setting(", ".join(parts) or "base", variant, pairs))
    return out


@dataclass
class CapacityResult:
    """Everything ``fragsim capacity`` reports and writes."""

    key: str
    kind: str
    lo: float
    hi: float
    step: float
    target: Target
    seeds: list[int]
    settings: list[Setting]
    answers: list[SettingAnswer]
    differences: list[Difference]
    warnings: list[str]
    out: Path | None = None
    plot: Path | None = None


def _section(raw: dict[str, Any], source: str) -> CapacitySection:
    section = raw.pop(CAPACITY_KEY, None) or {}
    raw.pop("sweep", None)  # a sweep's section is not this command's business
    try:
        return CapacitySection.model_validate(section)
    except ValidationError as e:
        raise FragsimError(_one_line(e, source, {}, (CAPACITY_KEY,), CapacitySection)) from None


def plan_capacity(config_path: str | Path, vary: str | None = None, range_text: str | None = None,
                  target_text: str | None = None, compare: Sequence[str] = (),
                  seeds: int | None = None, step_text: str | None = None,
                  overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read and check everything before any probe runs: the key, the range, the settings."""
    source = str(config_path)
    raw = load_yaml(config_path)
    section = _section(raw, source)
    vary = vary or section.vary
    range_text = range_text or section.range
    target_text = target_text or section.target
    step_value = step_text if step_text is not None else section.step
    for flag, value in (("--vary", vary), ("--range", range_text), ("--target", target_text)):
        if not value:
            raise FragsimError(f"{flag}: expected a value (on the command line or in "
                               f"{source}'s capacity: section), got none")
    target = parse_target(target_text)
    lo, hi, kind = parse_range(range_text)
    if step_value is None:
        step = (hi - lo) / 16
        if kind == "size":
            step = max(4096, int(step) // 4096 * 4096)
        elif isinstance(lo, int) and isinstance(hi, int):
            step = max(1, int(step))
    else:
        step, step_kind = parse_quantity(step_value, "--step")
        if step_kind not in (kind, "number"):
            raise FragsimError(f"--step: expected a {kind} like the range, got {step_value!r}")
        if not step > 0:
            raise FragsimError(f"--step: expected a positive step, got {step_value!r}")
    compare_map = dict(section.compare)
    compare_map.update(parse_compare(compare))
    n_seeds = seeds if seeds is not None else section.seeds
    if n_seeds is not None and n_seeds < 1:
        raise FragsimError(f"--seeds: expected a number of at least 1, got {n_seeds}")
    raw_variants = raw.get("variants") or {}
    variants = list(raw_variants) if isinstance(raw_variants, dict) else []
    base = validate_config(raw, source, overrides, variants[0] if variants else None)
    settings = settings_of(variants, compare_map)
    for key in [vary, *compare_map]:
        for text in overrides:
            if ".".join(parse_override(text)[0]) == key:
                raise FragsimError(f"--set {text}: expected a key that --vary/--compare "
                                   f"does not set, got {key}")
    # The key and every setting at both ends of the range, with the house messages.
    for setting in settings:
        for end in (lo, hi):
            where = f"{source}: --vary {vary}={format_quantity(end, kind)} ({setting.label})"
            data = _with(raw, [*setting.overrides, (vary, end)], where)
            validate_config(data, where, overrides, setting.variant)
    return {"source": source, "raw": raw, "vary": vary, "lo": lo, "hi": hi, "kind": kind,
            "step": step, "target": target, "settings": settings, "overrides": tuple(overrides),
            "seeds": [base.seed + k for k in range(n_seeds or base.seeds)], "name": base.name}


def check_metric(plan: dict[str, Any]) -> None:
    """The target's metric must be a summary field: a zero-length run lists them."""
    from sim.runner import run_machine
    from sim.sweep import flatten_summary

    setting = plan["settings"][0]
    data = _with(plan["raw"], [*setting.overrides, (plan["vary"], plan["lo"]),
                               ("duration", 0)], plan["source"])
    config = validate_config(data, plan["source"], plan["overrides"], setting.variant)
    leaves = flatten_summary(run_machine(config, plan["seeds"][0], "check").summary)
    metric = plan["target"].metric
    if metric not in leaves:
        close = difflib.get_close_matches(metric, list(leaves), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise FragsimError(f"--target: {metric}: unknown metric (a summary field such as "
                           f"thp_success_rate or avail9_time_avg){hint}")


def real_evaluator(plan: dict[str, Any], executor) -> Evaluate:
    """An ``Evaluate`` that runs every probe x seed through ``executor``."""

    def evaluate(requests: Sequence[ProbeRequest]) -> list[list[float]]:
        tasks, where = [], []
        for r, request in enumerate(requests):
            setting = plan["settings"][request.setting]
            text = format_quantity(request.value, plan["kind"])
            source = f"{plan['source']}: --vary {plan['vary']}={text} ({setting.label})"
            data = _with(plan["raw"], [*setting.overrides, (plan["vary"], request.value)],
                         source)
            for j, seed in enumerate(plan["seeds"]):
                tasks.append(ProbeTask(data, source, setting.variant, plan["overrides"], seed,
                                       plan["target"].metric))
                where.append((r, j))
        out = [[math.nan] * len(plan["seeds"]) for _ in requests]
        for i, value, error in executor.map_unordered(run_probe, tasks):
            if error is not None:
                r, j = where[i]
                raise FragsimError(
                    f"{tasks[i].source}: seed {plan['seeds'][j]}: the probe failed: "
                    f"{' '.join(f'{type(error).__name__}: {error}'.split())}")
            r, j = where[i]
            out[r][j] = value
        return out

    return evaluate


def run_capacity(
    config_path: str | Path,
    vary: str | None = None,
    range_text: str | None = None,
    target_text: str | None = None,
    compare: Sequence[str] = (),
    seeds: int | None = None,
    step_text: str | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    jobs: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    evaluate: Evaluate | None = None,
    plots: bool = True,
    progress_factory: Callable[[int], Callable[[int], None]] | None = None,
) -> CapacityResult:
    """Plan, search, and write capacity.json (and capacity.png) to ``out``.

    ``progress_factory(most_runs)`` returns a callback given the runs of each round.
    """
    plan = plan_capacity(config_path, vary, range_text, target_text, compare, seeds, step_text,
                         overrides)
    out_dir = Path(out) if out is not None else Path("results") / f"{plan['name']}-capacity"
    with output_directory(out_dir, "capacity"):  # refused or locked before the search
        return _run_capacity(plan, out_dir, jobs, executor, scheduler, evaluate, plots,
                             progress_factory)


def _run_capacity(plan: dict, out_dir: Path, jobs: int | None, executor: str,
                  scheduler: str | None, evaluate: Evaluate | None, plots: bool,
                  progress_factory: Callable[[int], Callable[[int], None]] | None,
                  ) -> CapacityResult:
    from sim.executors import open_executor

    labels = [s.label for s in plan["settings"]]
    args = (labels, plan["lo"], plan["hi"], plan["step"], plan["target"])
    on_round = None
    if progress_factory is not None:
        most = len(labels) * len(plan["seeds"]) * max_probes(plan["lo"], plan["hi"], plan["step"],
                                                             len(plan["seeds"]))
        progress = progress_factory(most)
        on_round = lambda n: progress(n * len(plan["seeds"]))  # noqa: E731
    if evaluate is not None:
        answers = find_capacity(*args, evaluate, on_round)
    else:
        check_metric(plan)
        with open_executor(executor, jobs, scheduler) as pool:
            answers = find_capacity(*args, real_evaluator(plan, pool), on_round)
    result = CapacityResult(
        plan["vary"], plan["kind"], plan["lo"], plan["hi"], plan["step"], plan["target"],
        plan["seeds"], plan["settings"], answers,
        differences(answers, plan["step"], plan["kind"], plan["vary"]),
        warnings_of(answers, plan["vary"], plan["kind"], plan["target"]))
    result.out = out_dir
    write_json(out_dir / "capacity.json", capacity_json(result, plan))
    if plots:
        from sim.plots import plot_capacity

        result.plot = plot_capacity(out_dir)
    return result


def max_probes(lo: float, hi: float, step: float, seeds: int = 1) -> int:
    """Probes per setting at most: LO, HI and the scan, then per halving of the grid one for
    the mean and one for each seed's own threshold."""
    steps = len(grid_values(lo, hi, step)) - 1
    return min(steps + 1, 2 + SCAN_POINTS + (1 + seeds) * math.ceil(math.log2(max(1, steps))))


def _finite(value: float | None) -> float | None:
    return None if value is None or value != value or math.isinf(value) else value


def capacity_json(result: CapacityResult, plan: dict[str, Any] | None = None) -> dict[str, Any]:
    fmt = lambda v: format_quantity(v, result.kind)  # noqa: E731
    return {
        "fragsim_version": __version__,
        "config": plan["source"] if plan else None,
        "overrides": list(plan["overrides"]) if plan else [],
        "vary": result.key,
        "kind": result.kind,
        "range": [result.lo, result.hi],
        "range_text": f"{fmt(result.lo)}..{fmt(result.hi)}",
        "step": result.step,
        "step_text": fmt(result.step),
        "target": {"metric": result.target.metric, "op": result.target.op,
                   "value": result.target.value, "text": str(result.target)},
        "seeds": result.seeds,
        "definition": (
            "answer: the smallest probed value from which the mean over seeds meets the "
            "target at every probe above, one step above a failing probe; the true threshold "
            "lies in (answer - step, answer]. A seed's answer: the same for that seed's "
            "metric alone, bisected to the step too; seed_spread is half their range. A "
            "difference is the difference of two answers, ± step + the two seed spreads in "
            "quadrature."),
        "settings": [{
            "label": answer.label,
            "variant": setting.variant,
            "overrides": {k: v for k, v in setting.overrides},
            "status": answer.status,
            "answer": answer.answer,
            "answer_text": fmt(answer.answer) if answer.status == "found" else (
                f"<= {fmt(answer.answer)}" if answer.status == "met_at_lo"
                else f"> {fmt(result.hi)}"),
            "interval": [_finite(answer.interval[0]), _finite(answer.interval[1])],
            "per_seed_answers": answer.per_seed_answers,
            "seed_spread": answer.seed_spread,
            "probes": [dict(asdict(p), value_text=fmt(p.value)) for p in answer.probes],
        } for setting, answer in zip(result.settings, result.answers, strict=True)],
        "differences": [{
            "baseline": d.baseline, "setting": d.setting, "saves": d.saves,
            "saves_text": fmt(d.saves) if d.saves is not None else None,
            "plus_minus": d.step_part + d.seed_part if d.saves is not None else None,
            "step_part": d.step_part, "seed_part": d.seed_part,
            "interval": [_finite(d.interval[0]), _finite(d.interval[1])], "text": d.text,
        } for d in result.differences],
        "warnings": result.warnings,
    }


def format_report(result: CapacityResult) -> str:
    """The table and the sentences ``fragsim capacity`` prints."""
    fmt = lambda v: format_quantity(v, result.kind)  # noqa: E731
    metric = result.target.metric
    n = len(result.seeds)
    lines = [f"smallest {result.key} in {fmt(result.lo)}..{fmt(result.hi)} (step "
             f"{fmt(result.step)}) with {result.target} (mean of {n} seed{'s' * (n > 1)}):",
             ""]
    header = ["setting", f"smallest {result.key}", f"{metric} there",
              "one step below", "probes", "seeds disagree"]
    rows = []
    for answer in result.answers:
        by_value = {p.value: p for p in answer.probes}
        if answer.status == "found":
            text = fmt(answer.answer)
            here = by_value[answer.answer]
            below = by_value.get(answer.interval[0])
        elif answer.status == "met_at_lo":
            text, here, below = f"<= {fmt(answer.answer)} (met at LO)", answer.probes[0], None
        else:
            text, here, below = f"> {fmt(result.hi)} (not met at HI)", answer.probes[-1], None

        def stat(p: Probe | None) -> str:
            if p is None:
                return "-"
            ci = f" ± {p.ci95:.2g}" if p.ci95 == p.ci95 else ""
            return f"{p.mean:.3g}{ci}"

        below_text = f"{stat(below)} at {fmt(below.value)}" if below else "-"
        rows.append([answer.label, text, stat(here), below_text, str(len(answer.probes)),
                     str(len(answer.disagreements))])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if result.differences:
        lines.append("")
        lines.extend(d.text for d in result.differences)
    for warning in result.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


__all__ = ["Target", "parse_target", "parse_range", "find_capacity", "run_capacity",
           "format_report", "ProbeRequest", "SettingAnswer", "CapacitySection"]
