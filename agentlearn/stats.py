"""Honest statistics for evaluations: intervals, paired comparisons, spreads. Pure functions, no store.

- `wilson`: the Wilson score interval of one proportion (good at small n and near 0 or 1, where the
  normal interval leaves [0, 1] or collapses to a point).
- `paired`: two runs on the tasks both have. The runs saw the same tasks, so the comparison uses the
  discordant pairs only: the exact McNemar test (a two-sided binomial test of b against b + c at 1/2)
  and Newcombe's score interval for a difference of paired proportions (Newcombe 1998, method 10),
  built from the two Wilson intervals and the correlation of the paired outcomes.
- `mcnemar_power` / `tasks_needed`: how likely the exact McNemar test is to find a paired gain on n tasks,
  and how many tasks it needs for a given power, computed exactly (no normal approximation): each task is
  a win of the new model with probability p_win, a loss with p_loss, else both agree.
- `spread`: mean, sample standard deviation, min and max of repeated measurements.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

Z95 = 1.959963984540054  # the standard normal quantile for a two-sided 95% interval
BINARY_METRICS = ("name", "call", "exact")  # per-task outcomes that are 0 or 1 (EvalRun.results)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (low, high) of successes/n; (0, 1) when n is 0."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs; 1.0 when there are none."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts cannot be negative, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    # Binomial(n, 1/2) is symmetric, so the two-sided p doubles the smaller tail.
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


class HasResults(Protocol):
    """What `paired` needs of a run: per-task outcomes (storage.records.EvalRun has them)."""

    results: dict[str, dict[str, float]]


@dataclass(frozen=True)
class Paired:
    """Run a against run b on the tasks both have: accuracies, a - b, discordant counts, p, 95% interval."""

    metric: str
    n: int
    accuracy_a: float
    accuracy_b: float
    difference: float  # accuracy_a - accuracy_b
    only_a: int  # tasks a got right and b got wrong
    only_b: int  # tasks b got right and a got wrong
    p_value: float  # exact McNemar, two-sided
    low: float
    high: float


def paired(a: HasResults, b: HasResults, metric: str = "name") -> Paired:
    """Compare two runs on the tasks both have, for one 0/1 metric of EvalRun.results (name, call, exact)."""
    if metric not in BINARY_METRICS:
        raise ValueError(f"paired comparison needs a 0/1 metric, one of {', '.join(BINARY_METRICS)}; not {metric!r}")
    shared = sorted(set(a.results) & set(b.results))
    both = only_a = only_b = 0
    for task in shared:
        right_a = _outcome(a.results[task], metric, task)
        right_b = _outcome(b.results[task], metric, task)
        both += right_a and right_b
        only_a += right_a and not right_b
        only_b += right_b and not right_a
    n = len(shared)
    low, high = newcombe_paired(both, only_a, only_b, n - both - only_a - only_b)
    acc_a = (both + only_a) / n if n else 0.0
    acc_b = (both + only_b) / n if n else 0.0
    return Paired(metric=metric, n=n, accuracy_a=acc_a, accuracy_b=acc_b, difference=acc_a - acc_b,
                  only_a=only_a, only_b=only_b, p_value=mcnemar_exact(only_a, only_b), low=low, high=high)


def newcombe_paired(both: int, only_a: int, only_b: int, neither: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's score interval (method 10) for p_a - p_b from a paired 2x2 table; (-1, 1) when empty."""
    n = both + only_a + only_b + neither
    if min(both, only_a, only_b, neither) < 0:
        raise ValueError("the counts of a 2x2 table cannot be negative")
    if n == 0:
        return -1.0, 1.0
    p_a, p_b = (both + only_a) / n, (both + only_b) / n
    low_a, high_a = wilson(both + only_a, n, z)
    low_b, high_b = wilson(both + only_b, n, z)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(margins) if margins else 0.0
    d = p_a - p_b
    below = math.sqrt(max(0.0, (p_a - low_a) ** 2 - 2 * phi * (p_a - low_a) * (high_b - p_b) + (high_b - p_b) ** 2))
    above = math.sqrt(max(0.0, (high_a - p_a) ** 2 - 2 * phi * (high_a - p_a) * (p_b - low_b) + (p_b - low_b) ** 2))
    return max(-1.0, d - below), min(1.0, d + above)


def newcombe_difference(s1: int, n1: int, s2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """95% interval of p1 - p2 for two independent proportions (Newcombe 1998, method 10, from Wilson)."""
    if n1 == 0 or n2 == 0:
        return (-1.0, 1.0)
    p1, p2 = s1 / n1, s2 / n2
    l1, u1 = wilson(s1, n1, z)
    l2, u2 = wilson(s2, n2, z)
    d = p1 - p2
    return (max(-1.0, d - ((p1 - l1) ** 2 + (u2 - p2) ** 2) ** 0.5),
            min(1.0, d + ((u1 - p1) ** 2 + (p2 - l2) ** 2) ** 0.5))


@functools.lru_cache(maxsize=256)
def mcnemar_power(n: int, p_win: float, p_loss: float, alpha: float = 0.05) -> float:
    """Probability that n paired tasks give exact McNemar p < alpha with the new model ahead.

    Each task independently is a win (the new model right, the old wrong) with probability p_win, a loss
    with p_loss, and concordant otherwise. Exact: the sum over the discordant count D of P(D) times the
    chance that the wins among D reach the smallest count the test rejects at.
    """
    if n < 0 or p_win < 0 or p_loss < 0 or p_win + p_loss > 1:
        raise ValueError(f"need n >= 0 and 0 <= p_win + p_loss <= 1, got n={n}, p_win={p_win}, p_loss={p_loss}")
    return _power(n, p_win + p_loss, _rejecting(n, p_win, p_loss, alpha))


@functools.lru_cache(maxsize=256)
def tasks_needed(p_win: float, p_loss: float, alpha: float = 0.05, power: float = 0.8, most: int = 1000) -> int | None:
    """The fewest paired tasks (about: power rises in steps) at which mcnemar_power reaches `power`;
    None when even `most` tasks do not."""
    rejecting = _rejecting(most, p_win, p_loss, alpha)
    if _power(most, p_win + p_loss, rejecting) < power:
        return None
    low, high = 0, most  # power(low) < target <= power(high)
    while high - low > 1:
        mid = (low + high) // 2
        if _power(mid, p_win + p_loss, rejecting) >= power:
            high = mid
        else:
            low = mid
    return high


def _rejecting(most: int, p_win: float, p_loss: float, alpha: float) -> list[float]:
    """For d = 0..most discordant pairs: the chance that the test rejects with the new model ahead."""
    p_disc = p_win + p_loss
    share = p_win / p_disc if p_disc else 0.0
    out = [0.0]
    for d in range(1, most + 1):
        need = _wins_to_reject(d, alpha)
        out.append(0.0 if need is None else sum(_binom_pmf(w, d, share) for w in range(need, d + 1)))
    return out


def _power(n: int, p_disc: float, rejecting: list[float]) -> float:
    return min(1.0, sum(_binom_pmf(d, n, p_disc) * rejecting[d] for d in range(1, n + 1) if rejecting[d]))


def fewest_wins(alpha: float = 0.05) -> int:
    """The fewest discordant pairs, all won, that exact McNemar finds below alpha (6 at 0.05: p = 2/64)."""
    d = 1
    while mcnemar_exact(d, 0) >= alpha:
        d += 1
    return d


@functools.lru_cache(maxsize=8192)
def _wins_to_reject(d: int, alpha: float) -> int | None:
    """The smallest wins w of d discordant pairs (w > d - w) with exact McNemar p < alpha, None if none."""
    cdf, total = [], 0.0
    for i in range(d + 1):
        total += _binom_pmf(i, d, 0.5)
        cdf.append(total)
    for w in range(d // 2 + 1, d + 1):
        if min(1.0, 2 * cdf[d - w]) < alpha:
            return w
    return None


def _binom_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 1.0 if k == 0 else 0.0
    if p >= 1.0:
        return 1.0 if k == n else 0.0
    log = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)
    return math.exp(log)


def _outcome(result: dict[str, float], metric: str, task: str) -> bool:
    if metric not in result:
        raise ValueError(f"task {task!r} has no {metric!r} outcome in its results: {sorted(result)}")
    return float(result[metric]) >= 0.5


@dataclass(frozen=True)
class Spread:
    """Repeated measurements of one figure: mean, sample standard deviation, min, max, how many."""

    mean: float
    std: float
    min: float
    max: float
    n: int


def spread(values: Sequence[float]) -> Spread:
    """Mean, sample std (0 for one value), min and max of repeats; NaN everywhere when there are none."""
    xs = [float(v) for v in values]
    if not xs:
        nan = float("nan")
        return Spread(nan, nan, nan, nan, 0)
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return Spread(mean=mean, std=std, min=min(xs), max=max(xs), n=len(xs))
