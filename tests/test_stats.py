"""agentlearn.stats against known values and scipy as an oracle."""

from __future__ import annotations

import math
import random

import pytest
from scipy.stats import binomtest

from agentlearn import stats
from storage.records import EvalRun


def run(outcomes: dict[str, int], metric: str = "name") -> EvalRun:
    results = {t: {"name": 0, "call": 0, "exact": 0, "args": -1, metric: v} for t, v in outcomes.items()}
    return EvalRun(suite="s", split="heldout", method="m", n=len(results), name_accuracy=0, call_accuracy=0,
                   results=results)


def test_wilson_matches_a_published_example_and_scipy():
    low, high = stats.wilson(81, 263)  # the example in statsmodels' proportion_confint docs
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    for k, n in ((0, 10), (3, 10), (10, 10), (7, 19), (1, 1)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert stats.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_wilson_edge_cases_and_bad_input():
    assert stats.wilson(0, 0) == (0.0, 1.0)
    low, high = stats.wilson(0, 16)
    assert low == 0.0 and 0.15 < high < 0.25  # no success still leaves room for a real rate near 20%
    with pytest.raises(ValueError, match="successes <= n"):
        stats.wilson(5, 3)


def test_mcnemar_exact_is_scipys_two_sided_binomial_test():
    for b, c in ((12, 2), (0, 5), (5, 5), (1, 0), (30, 11), (0, 1)):
        assert stats.mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, abs=1e-12)
    assert stats.mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError):
        stats.mcnemar_exact(-1, 2)


def test_newcombe_paired_interval_matches_the_paper():
    # Newcombe (1998), Statistics in Medicine 17:2635, example (36, 12, 2, 0), method 10.
    low, high = stats.newcombe_paired(36, 12, 2, 0)
    assert (round(low, 4), round(high, 4)) == (0.0569, 0.3404)
    assert stats.newcombe_paired(0, 0, 0, 0) == (-1.0, 1.0)


def test_paired_compares_only_shared_tasks():
    a = run({"t1": 1, "t2": 1, "t3": 1, "t4": 0, "t5": 1, "only_in_a": 1})
    b = run({"t1": 0, "t2": 0, "t3": 1, "t4": 1, "t5": 0, "only_in_b": 0})
    p = stats.paired(a, b)
    assert (p.n, p.only_a, p.only_b) == (5, 3, 1)
    assert p.accuracy_a == pytest.approx(0.8) and p.accuracy_b == pytest.approx(0.4)
    assert p.difference == pytest.approx(0.4)
    assert p.p_value == pytest.approx(binomtest(3, 4, 0.5).pvalue)
    assert p.low < p.difference < p.high


def test_paired_on_random_runs_agrees_with_scipy():
    rng = random.Random(7)
    for _ in range(20):
        tasks = [f"t{i}" for i in range(rng.randint(1, 40))]
        a = run({t: rng.randint(0, 1) for t in tasks}, "call")
        b = run({t: rng.randint(0, 1) for t in tasks}, "call")
        p = stats.paired(a, b, metric="call")
        discordant = p.only_a + p.only_b
        expected = binomtest(p.only_a, discordant, 0.5).pvalue if discordant else 1.0
        assert p.p_value == pytest.approx(expected, abs=1e-12)
        assert -1 <= p.low <= p.difference <= p.high <= 1


def test_paired_refuses_a_metric_that_is_not_zero_or_one():
    with pytest.raises(ValueError, match="0/1 metric"):
        stats.paired(run({"t": 1}), run({"t": 1}), metric="args")


def test_paired_with_no_shared_task_says_nothing_was_compared():
    p = stats.paired(run({"x": 1}), run({"y": 0}))
    assert (p.n, p.p_value, p.low, p.high) == (0, 1.0, -1.0, 1.0)


def test_spread_of_repeats():
    s = stats.spread([0.5, 0.75, 0.25])
    assert (s.mean, s.min, s.max, s.n) == (0.5, 0.25, 0.75, 3)
    assert s.std == pytest.approx(0.25)
    assert stats.spread([0.4]).std == 0.0
    assert stats.spread([]).n == 0 and math.isnan(stats.spread([]).mean)


def test_mcnemar_power_equals_brute_force_over_every_outcome():
    """Every assignment of win/loss/tie to n tasks, weighted by its probability, tested with mcnemar_exact."""
    for n, p_win, p_loss in ((7, 0.3, 0.1), (9, 0.5, 0.05), (6, 0.2, 0.2)):
        expected = 0.0
        for wins in range(n + 1):
            for losses in range(n - wins + 1):
                ties = n - wins - losses
                ways = math.comb(n, wins) * math.comb(n - wins, losses)
                chance = ways * p_win**wins * p_loss**losses * (1 - p_win - p_loss) ** ties
                if wins > losses and stats.mcnemar_exact(wins, losses) < 0.05:
                    expected += chance
        assert stats.mcnemar_power(n, p_win, p_loss) == pytest.approx(expected, abs=1e-12)
    assert stats.mcnemar_power(5, 1.0, 0.0) == 0.0  # 5 wins of 5: p = 0.0625, never below 0.05
    assert stats.mcnemar_power(6, 1.0, 0.0) == pytest.approx(1.0)  # 6 of 6: p = 0.03125
    assert stats.fewest_wins(0.05) == 6 and binomtest(6, 6).pvalue < 0.05 <= binomtest(5, 5).pvalue


def test_tasks_needed_reaches_the_power_asked_for():
    needed = stats.tasks_needed(0.15, 0.05)
    assert stats.mcnemar_power(needed, 0.15, 0.05) >= 0.8 > stats.mcnemar_power(needed // 2, 0.15, 0.05)
    assert stats.tasks_needed(0.001, 0.0, most=50) is None
    with pytest.raises(ValueError, match="p_win"):
        stats.mcnemar_power(10, 0.7, 0.5)
