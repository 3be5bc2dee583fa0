"""sim/stats.py: intervals over seeds; a rate's never leaves [0, 1]."""

import math
import random
import statistics

import numpy as np
import pytest

from sim.stats import (
    aggregate,
    ci_band,
    is_rate,
    mean_ci,
    minmax_band,
    rate_interval,
    t_975,
    wilson,
)


def test_t_quantiles_are_students():
    assert t_975(1) == 12.706 and t_975(4) == 2.776 and t_975(30) == 2.042
    assert 1.96 < t_975(200) < 1.98
    assert math.isnan(t_975(0))


def test_mean_ci_is_the_student_t_half_width():
    mean, half = mean_ci([1.0, 2.0, 3.0, float("nan")])
    assert mean == 2.0
    assert half == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert math.isnan(mean_ci([5.0])[1]) and math.isnan(mean_ci([])[0])


def test_wilson_matches_the_textbook_interval():
    low, high = wilson(0.5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson(0.0, 20)  # no successes: the interval still has a width
    assert low == 0.0 and 0.1 < high < 0.2
    assert wilson(1.0, 20)[1] == 1.0


@pytest.mark.parametrize("seeds", [2, 3, 5, 20])
def test_a_rates_interval_never_leaves_0_1(seeds):
    rng = random.Random(seeds)
    cases = [[0.0] * seeds, [1.0] * seeds, [0.0, 1.0] * (seeds // 2) + [1.0] * (seeds % 2),
             [0.713, 0.588][:seeds] + [0.6] * (seeds - 2)]
    cases += [[rng.random() ** rng.choice((0.2, 1, 5)) for _ in range(seeds)]
              for _ in range(200)]
    for rates in cases:
        for trials in (None, [rng.randint(1, 200) for _ in rates]):
            mean, low, high = rate_interval(rates, trials)
            assert 0.0 <= low <= high <= 1.0, (rates, trials, low, high)
            assert low - 1e-12 <= mean <= high + 1e-12  # Wilson's holds the estimate


def test_two_seeds_give_a_wide_interval_inside_0_1_not_plus_minus_1_4():
    # The quickstart's old headline: THP success 0.588 +/- 2.7 over two seeds.
    mean, low, high = rate_interval([0.433, 0.743], [80, 80])
    assert mean == pytest.approx(0.588)
    assert 0.0 <= low < 0.3 and 0.85 < high <= 1.0


def test_seeds_that_agree_give_a_narrow_interval_capped_by_the_pooled_trials():
    mean, low, high = rate_interval([0.5] * 5, [100] * 5)
    assert mean == 0.5
    # every seed agrees: the pooled 500 attempts set the width (t with 4 df)
    assert (low, high) == pytest.approx(wilson(0.5, 500, t_975(4)))
    assert high - low < 0.25
    mean, low, high = rate_interval([0.2, 0.8, 0.3, 0.7, 0.5], [100] * 5)
    assert high - low > 0.5  # seeds that disagree: as wide as they warrant


def test_one_seed_has_no_interval():
    mean, low, high = rate_interval([0.4], [30])
    assert mean == 0.4 and math.isnan(low) and math.isnan(high)


def test_is_rate_needs_the_name_and_values_in_0_1():
    assert is_rate("thp_success_rate", [0.2, 1.0])
    assert is_rate("workloads.x.success_rate", [0.0])
    assert not is_rate("ops_per_s", [0.2])
    assert not is_rate("strange_rate", [0.5, 3.0])


def test_aggregate_gives_rates_a_wilson_interval_and_counts_a_t_interval():
    runs = [{"seed": s, "thp_success_rate": r, "thp_attempts": 80, "measure_from_s": 10.0,
             "buddy": {"extfrag_claim": c}, "caches": {"dentry": {"num_slabs": 3}}}
            for s, r, c in ((1, 0.713, 60), (2, 0.463, 74))]
    agg = aggregate(runs)
    assert agg["n"] == 2
    assert set(agg["mean"]) == {"thp_success_rate", "thp_attempts", "buddy.extfrag_claim"}
    low, high = agg["interval95"]["thp_success_rate"]
    assert 0.0 <= low < agg["mean"]["thp_success_rate"] < high <= 1.0
    assert "thp_success_rate" not in agg["ci95"]  # no symmetric half-width for a rate
    half = agg["ci95"]["buddy.extfrag_claim"]
    assert half == pytest.approx(12.706 * statistics.stdev([60, 74]) / math.sqrt(2))
    assert agg["interval95"]["buddy.extfrag_claim"] == pytest.approx([67 - half, 67 + half])


def test_bands_across_seeds_and_a_rates_band_is_clipped():
    t = np.arange(5.0)
    per_seed = [(t, np.array([0.0, 1.0, 1.0, 0.9, 0.1])), (t, np.array([1.0, 1.0, 0.0, 0.8, 0.0]))]
    times, mean, low, high = ci_band(per_seed, rate=True)
    assert list(times) == list(t) and mean[1] == 1.0
    assert (low >= 0).all() and (high <= 1).all()
    _, _, low, high = ci_band(per_seed)
    assert low.min() < 0 and high.max() > 1  # unclipped for anything else
    _, mean, low, high = minmax_band(per_seed)
    assert list(low) == [0.0, 1.0, 0.0, 0.8, 0.0] and list(high) == [1.0, 1.0, 1.0, 0.9, 0.1]
