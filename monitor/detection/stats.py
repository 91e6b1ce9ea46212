"""Tail probabilities and the false-alarm budget, as plain functions over scipy's special functions.

The special functions (regularised incomplete beta/gamma, normal CDF) are ufuncs: a scalar call
costs about a microsecond, unlike scipy.stats' frozen distributions, which matters when every
detect tick runs a dozen tests per brand.
"""
from __future__ import annotations

import math
import random

from scipy.special import betainc, gammainc, ndtr

MINUTES_PER_WEEK = 7 * 24 * 60


def poisson_sample(rng: random.Random, mean: float) -> int:
    """One Poisson draw by Knuth's method (fine for small means), for synthetic streams and tests."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def negative_binomial_tail(k: float, mean: float, size: float) -> float:
    """P(X >= k) for X negative binomial with this mean and size (variance mean + mean²/size).

    size = inf is the Poisson limit. Negative binomial = Poisson whose rate is gamma-uncertain,
    which is exactly a baseline rate learnt from finite, overdispersed history.
    """
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if math.isinf(size) or size > 1e9:
        return float(gammainc(k, mean))  # P(Poisson(mean) >= k) = P(Gamma(k, 1) <= mean)
    return float(betainc(k, size, mean / (size + mean)))


def binomial_tail(k: float, n: float, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), continuous in k and n (for design-effect-scaled counts)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    return float(betainc(k, n - k + 1, p))


def normal_tail(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return float(ndtr(-z))


def per_test_alpha(false_alarms_per_week: float, share: float, tests_per_week: float) -> float:
    """Bonferroni: the per-test level that spends `share` of the weekly false-alarm budget.

    With m tests a week each at level a, the expected number of false alarms is at most m·a
    (`windows.tests_per_week` says how many tests a sliding window amounts to).
    """
    return min(0.5, false_alarms_per_week * share / max(tests_per_week, 1.0))


def score_from_p(p_value: float, alpha: float) -> float:
    """A [0, 1] anomaly score: 1 exactly when p <= alpha, log-scaled below it."""
    if p_value <= alpha:
        return 1.0
    if p_value >= 1.0:
        return 0.0
    return min(0.999999, math.log(p_value) / math.log(alpha))
