"""Tail probabilities and the false-alarm budget, as plain functions over scipy's special functions.

The special functions (regularised incomplete beta/gamma, normal CDF) are ufuncs: a scalar call
costs about a microsecond, unlike scipy.stats' frozen distributions, which matters when every
detect tick runs a dozen tests per brand.
"""
from __future__ import annotations

import math
import random

import numpy as np
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


def negative_binomial_tail_array(k: np.ndarray, mean: np.ndarray, inverse_size: float) -> np.ndarray:
    """`negative_binomial_tail`, vectorised over counts and means, for one size (1/inverse_size)."""
    k = np.asarray(k, dtype=float)
    mean = np.asarray(mean, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if inverse_size <= 1e-12:
            p = gammainc(np.maximum(k, 1e-300), mean)
        else:
            size = 1.0 / inverse_size
            p = betainc(np.maximum(k, 1e-300), size, mean / (size + mean))
    p = np.where(mean <= 0, 0.0, p)
    return np.where(k <= 0, 1.0, p)


def binomial_tail_array(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """`binomial_tail`, vectorised."""
    k, n, p = (np.asarray(x, dtype=float) for x in (k, n, p))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = betainc(np.maximum(k, 1e-300), np.maximum(n - k + 1, 1e-300), np.clip(p, 0.0, 1.0))
    out = np.where((k > n) | (p <= 0), 0.0, out)
    out = np.where(p >= 1, 1.0, out)
    return np.where(k <= 0, 1.0, out)


def surprise(p_value: np.ndarray | float) -> np.ndarray:
    """-ln p, the evidence a p-value carries (capped at 700 where p underflows)."""
    return -np.log(np.maximum(np.asarray(p_value, dtype=float), 1e-300))


def anomaly_score(tail_probability: np.ndarray | float, alpha: float) -> np.ndarray:
    """A score in [0, 1) on the log scale of the calibrated tail probability: L / (L + L_alpha),
    L = -ln P. It is 0.5 exactly at the alert level and keeps ordering above it."""
    evidence = surprise(tail_probability)
    return evidence / (evidence - math.log(alpha))


def threshold_count(model_p: float, mean: np.ndarray | float, inverse_size: float, min_posts: int) -> np.ndarray:
    """The least count k >= min_posts with P(X >= k) <= model_p under the negative binomial
    (vectorised over means): the count at which a window starts firing. Bisection on the tail
    (scipy.special only: scipy.stats costs seconds to import)."""
    scalar = np.ndim(mean) == 0
    mean = np.atleast_1d(np.maximum(np.asarray(mean, dtype=float), 1e-12))
    low = np.full(mean.shape, float(min_posts))
    fires = negative_binomial_tail_array(low, mean, inverse_size) <= model_p
    high = np.maximum(low, np.ceil(mean) + 1.0)
    for _ in range(60):  # grow until the tail is below the level
        short = negative_binomial_tail_array(high, mean, inverse_size) > model_p
        if not short.any():
            break
        high = np.where(short, high * 2.0, high)
    while True:  # tail(low) > model_p >= tail(high), unless low already fires
        gap = (high - low > 1) & ~fires
        if not gap.any():
            break
        mid = np.floor((low + high) / 2.0)
        ok = negative_binomial_tail_array(mid, mean, inverse_size) <= model_p
        high = np.where(gap & ok, mid, high)
        low = np.where(gap & ~ok, mid, low)
    out = np.where(fires, low, high)
    return out[0] if scalar else out
