"""The statistics of fragsim's summaries and plots, in one place.

Seeds are the unit of replication: a run's figures are one observation per seed, and
every interval is over seeds (never over the samples of one run, which are not
independent).

- ``t_975``: the Student t quantile of a two-sided 95 % interval.
- ``mean_ci``: a mean and its 95 % half-width (Student t), for counts and averages.
- ``wilson``: the Wilson score interval of a binomial proportion.
- ``rate_interval``: a rate's mean over seeds and a 95 % interval inside [0, 1].
- ``minmax_band`` and ``ci_band``: a time series' mean across seeds with a min..max or
  a 95 % band (clipped to [0, 1] for rates).
- ``numeric_leaves`` and ``aggregate``: summary.json's ``mean``, ``ci95`` and
  ``interval95`` of every numeric field of the per-seed summaries.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import numpy as np

# Two-sided 95 % Student t quantiles for 1..30 degrees of freedom.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)

# Rates whose summary also counts their trials: the pooled count caps the effective
# sample size of the rate's interval (see ``rate_interval``).
RATE_TRIALS = {"thp_success_rate": "thp_attempts"}


def t_975(df: int) -> float:
    """The 97.5 % quantile of Student's t (a 95 % two-sided interval)."""
    if df < 1:
        return math.nan
    return _T975[df - 1] if df <= len(_T975) else 1.96 + 2.4 / df


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v == v and not math.isinf(v)]


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """The mean of the finite values and its 95 % half-width (Student t); the
    half-width is NaN for fewer than two values, both are NaN for none."""
    finite = _finite(values)
    if not finite:
        return math.nan, math.nan
    mean = statistics.fmean(finite)
    if len(finite) < 2:
        return mean, math.nan
    return mean, t_975(len(finite) - 1) * statistics.stdev(finite) / math.sqrt(len(finite))


def is_rate(key: str, values: Sequence[float]) -> bool:
    """A summary field that is a rate: its name ends in ``_rate`` and every finite value
    lies in [0, 1] (``slab_ops_per_s`` is not a rate; ``thp_success_rate`` is)."""
    last = key.rsplit(".", 1)[-1]
    finite = _finite(values)
    return last.endswith("_rate") and bool(finite) and all(0.0 <= v <= 1.0 for v in finite)


def wilson(p: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` observed in ``n`` trials (``n``
    may be an effective, non-integer size). Always inside [0, 1]; (NaN, NaN) for no
    trials."""
    if not n > 0 or p != p:
        return math.nan, math.nan
    p = min(1.0, max(0.0, p))
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_interval(rates: Sequence[float],
                  trials: Sequence[float] | None = None) -> tuple[float, float, float]:
    """A rate over seeds: (mean, low, high), the 95 % interval inside [0, 1].

    The mean is the mean of the per-seed rates (as every other summary mean). The
    interval is a Wilson score interval with an effective sample size (Korn and
    Graubard's interval for clustered proportions): the trials of one run are not
    independent (a THP probe's attempts follow the same memory state), so the seeds'
    spread sets the size, ``n_eff = p (1 - p) / var(mean of seeds)``, at most the pooled
    number of trials when ``trials`` (per seed, e.g. ``thp_attempts``) is given, and the
    quantile is Student's t with seeds - 1 degrees of freedom. Seeds that agree give a
    narrow interval, seeds that disagree one as wide as they warrant, never outside
    [0, 1]; two seeds give a wide one (t = 12.7). One seed: (rate, NaN, NaN).
    """
    pairs = [(float(r), None if trials is None else float(trials[i]))
             for i, r in enumerate(rates) if r == r]
    if not pairs:
        return math.nan, math.nan, math.nan
    values = [r for r, _ in pairs]
    mean = statistics.fmean(values)
    k = len(values)
    if k < 2:
        return mean, math.nan, math.nan
    cap = math.inf
    if trials is not None:
        counts = [n for _, n in pairs if n is not None and n == n]
        if len(counts) == k and sum(counts) > 0:
            cap = sum(counts)
    var_mean = statistics.variance(values) / k
    spread = mean * (1 - mean)
    if var_mean > 0 and spread > 0:
        n_eff = min(cap, spread / var_mean)
    else:  # every seed gave the same rate
        n_eff = cap
    if math.isinf(n_eff):
        return mean, mean, mean
    return (mean, *wilson(mean, n_eff, t_975(k - 1)))


def _on_first_axis(per_seed: list[tuple[np.ndarray, np.ndarray]]):
    times = np.asarray(per_seed[0][0], dtype=float)
    stacked = np.vstack([np.interp(times, t, v) for t, v in per_seed])
    return times, stacked


def minmax_band(per_seed: list[tuple[np.ndarray, np.ndarray]]):
    """(times, mean, min, max) across seeds, on the first seed's time axis."""
    times, stacked = _on_first_axis(per_seed)
    return times, stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0)


def ci_band(per_seed: list[tuple[np.ndarray, np.ndarray]], rate: bool = False):
    """(times, mean, low, high): the mean across seeds and a 95 % Student t band, on the
    first seed's time axis; for a rate the band is clipped to [0, 1]."""
    times, stacked = _on_first_axis(per_seed)
    mean = stacked.mean(axis=0)
    if len(per_seed) < 2:
        return times, mean, mean, mean
    half = t_975(len(per_seed) - 1) * stacked.std(axis=0, ddof=1) / math.sqrt(len(per_seed))
    low, high = mean - half, mean + half
    if rate:
        low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
    return times, mean, low, high


def numeric_leaves(summary: dict, prefix: str = "") -> dict[str, float]:
    """Every numeric field of a run's summary as a dotted name (``buddy.extfrag_claim``),
    without the per-cache and per-workload sections."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            out[name] = float(value)
        elif isinstance(value, dict) and key not in ("workloads", "caches"):
            out.update(numeric_leaves(value, name + "."))
    return out


_NOT_AGGREGATED = ("seed", "measure_from_s")


def aggregate(per_seed: list[dict]) -> dict:
    """Over the seeds of one variant, for every numeric summary field: ``mean``; ``ci95``,
    the 95 % half-width (Student t) of fields that are not rates; ``interval95``, the
    95 % interval [low, high] of every field: mean +/- ci95, or for a rate (``is_rate``)
    the Wilson interval of ``rate_interval``, inside [0, 1]. Intervals need two seeds
    (NaN with one)."""
    leaves = [numeric_leaves(s) for s in per_seed]
    keys = [k for k in leaves[0] if k not in _NOT_AGGREGATED]
    mean: dict[str, float] = {}
    ci: dict[str, float] = {}
    interval: dict[str, list[float]] = {}
    for key in keys:
        rows = [leaf for leaf in leaves if key in leaf and not math.isnan(leaf[key])]
        values = [leaf[key] for leaf in rows]
        if not values:
            continue
        if is_rate(key, values):
            trial_key = RATE_TRIALS.get(key)
            trials = [leaf.get(trial_key, math.nan) for leaf in rows] if trial_key else None
            mean[key], low, high = rate_interval(values, trials)
            interval[key] = [low, high]
            continue
        mean[key], ci[key] = mean_ci(values)
        interval[key] = [mean[key] - ci[key], mean[key] + ci[key]]
    return {"n": len(leaves), "mean": mean, "ci95": ci, "interval95": interval}
