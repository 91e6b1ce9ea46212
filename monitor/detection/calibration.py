"""Calibrated tail probabilities: how often a brand's own background really reaches a given surprise.

The volume and share tests give a model p-value; real mention streams reach small p-values far
more often than any count model says (bursts, news, bots). So each detector's surprise per bucket,
s = -ln(smallest model p-value over the windows), is tracked over the brand's own history and its
tail is modelled by peaks over threshold (Pickands 1975; Siffer et al. 2017, "Anomaly detection in
streams with extreme value theory"): exceedances of s over a high threshold U follow a generalised
Pareto distribution whose shape ξ and scale β are estimated by the method of moments. The calibrated
tail probability of a bucket is then

    P(S >= s) = ζ · (1 + ξ (s - U) / β) ^ (-1/ξ)        for s >= U   (ζ = share of buckets above U)

and below U the brand's own distribution, read from the histogram (a state without one: P = ζ·e^(U-s)).
It is monotone in s.

The threshold is the brand's own: U is the top `EXCEEDANCE_SHARE` (1 %) of its surprises, read from a
decayed histogram of s on a log scale (`HIST_BINS` bins, no history kept), and ζ, ξ and β come from
the histogram's mass above U. A fixed U (the model's p = 0.01) would fit the "tail" to whatever
share of buckets the model misjudges: 3 to 25 % of them on the NAB tweet series, where the
likelihood-ratio test's values run to thousands, so the fit described the body and its
extrapolation to the alert level was far off. The blank state is the model's own distribution
(P(S >= s) = e^-s) worth `PRIOR_EXCEEDANCES` / `PRIOR_ZETA` buckets: U = -ln 0.01, ζ = 0.01 and a
mean excess of 1, as the model would have it; the brand's buckets replace it as they come. Exceedances cluster (a burst is many buckets),
so the bucket rate bounds the rate of alerts from above; the extremal index θ (clusters per
exceedance of the alert level, by runs declustering) says by how much, and `windows` divides the
bucket level by it. The viral detector uses the same idea on the brand's distribution of post
reach and engagement: decayed histograms with an exponential tail beyond their 95th percentile.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

U = -math.log(0.01)  # the blank state's threshold (the model's p = 0.01)
PRIOR_EXCEEDANCES = 10.0
PRIOR_ZETA = 0.01
EXCEEDANCE_SHARE = PRIOR_ZETA  # the threshold: the top 1 % of the brand's surprises, as the prior's U is the model's
HIST_STEP = 0.1  # histogram bins of width 0.1 on log(1 + s): s up to e^12 (the test's values reach thousands)
HIST_BINS = 120
_EDGES = np.expm1(np.arange(HIST_BINS + 1) * HIST_STEP)
_CENTRES = np.expm1((np.arange(HIST_BINS) + 0.5) * HIST_STEP)
_SLOTS = 8  # [buckets, exceedances, Σ excess, Σ excess², clusters' state (3), U], then the histogram
PRIOR_MEAN_EXCESS = 1.0  # the model's own tail (-ln p is exponential): trusted until data disagree
PRIOR_XI = 0.0
MAX_XI = 0.45
# θ's prior: alert-level exceedances that come `prior_theta` clusters to one (`windows.prior_theta`:
# one per shortest window), worth a memory's worth of alerts at a budget of one a week (four weeks
# by default).
THETA_PRIOR = 4.0
MIN_THETA = 0.1  # never count a burst as more than ten buckets' worth of alerts


def _prior_sums() -> list[float]:
    m = PRIOR_MEAN_EXCESS
    var = m * m / (1.0 - 2.0 * PRIOR_XI)  # GPD: var = m² / (1 - 2ξ)
    n = PRIOR_EXCEEDANCES
    return [n / PRIOR_ZETA, n, n * m, n * (var + m * m)]


def _histogram_of(state: Sequence[float]) -> np.ndarray:
    """The bucket mass per histogram bin that a tail state describes (the blank state: the
    model's own e^-s, worth PRIOR_EXCEEDANCES / PRIOR_ZETA buckets)."""
    upper = np.append(tail_probability(state, _EDGES[:-1]), 0.0)
    return (upper[:-1] - upper[1:]) * state[0]


def blank_tail(prior_theta: float = 1.0) -> list[float]:
    """[buckets, exceedances, sum of excesses, sum of squared excesses, exceedances of the alert
    level, clusters, buckets since the last one, U, histogram...], the prior included; the prior's
    exceedances come `prior_theta` clusters to one (`windows.prior_theta`)."""
    head = [*_prior_sums(), THETA_PRIOR, THETA_PRIOR * prior_theta, 1e9, U]
    return head + _histogram_of(head).tolist()


def _fit(hist: np.ndarray) -> list[float]:
    """[buckets, exceedances, Σ excess, Σ excess², U] of a histogram: U is the lower edge of the
    bin where the top EXCEEDANCE_SHARE of the mass begins; excesses are measured from the bin centres."""
    n = float(hist.sum())
    above = np.cumsum(hist[::-1])[::-1]
    i = int(np.nonzero(above >= EXCEEDANCE_SHARE * n)[0][-1]) if n > 0 else 0
    u = float(_EDGES[i])
    excess = _CENTRES[i:] - u
    mass = hist[i:]
    return [n, float(above[i]), float((mass * excess).sum()), float((mass * excess * excess).sum()), u]


def tail_update(state: list[float], surprises: Iterable[float], decay: float, level: float = math.inf,
                run: int = 12, prior_theta: float = 1.0) -> None:
    """Fold one hour of per-bucket surprises, after decaying the old sums. Exceedances of the
    alert `level` are declustered by runs: one more than `run` buckets after the previous one
    starts a new cluster."""
    if len(state) < 7:
        state[:] = [*state[:4], THETA_PRIOR, THETA_PRIOR * prior_theta, 1e9]  # an older state: θ's prior
    if len(state) != _SLOTS + HIST_BINS:  # an older state (fixed U): its tail as a histogram
        state[:] = [*state[:7], U, *_histogram_of([*state[:7], U]).tolist()]
    over, clusters = (v * decay for v in state[4:6])
    over, clusters = over + THETA_PRIOR * (1 - decay), clusters + THETA_PRIOR * prior_theta * (1 - decay)  # the prior stays
    quiet = state[6]
    values = np.asarray(list(surprises), dtype=float)
    hist = np.asarray(state[_SLOTS:], dtype=float) * decay
    np.add.at(hist, np.clip((np.log1p(np.maximum(values, 0.0)) / HIST_STEP).astype(int), 0, HIST_BINS - 1), 1.0)
    for s in values.tolist():
        if s >= level:
            over += 1.0
            if quiet >= run:
                clusters += 1.0
            quiet = 0.0
        else:
            quiet += 1.0
    n, k, s1, s2, u = _fit(hist)
    # Keep at least the prior's weight, so a long quiet stretch does not make the tail collapse.
    if k < PRIOR_EXCEEDANCES:
        prior = _prior_sums()
        short = PRIOR_EXCEEDANCES - k
        n, k, s1, s2 = n + short / PRIOR_ZETA, k + short, s1 + short * prior[2] / prior[1], s2 + short * prior[3] / prior[1]
    state[:] = [n, k, s1, s2, over, min(clusters, over), quiet, u, *hist.tolist()]


def threshold(state: Sequence[float]) -> float:
    """U, where the tail model begins (older states: the model's p = 0.01)."""
    return state[7] if len(state) > 7 else U


def extremal_index(state: Sequence[float]) -> float:
    """θ, clusters per exceedance (the runs estimator; Smith & Weissman 1994): exceedances come
    in bursts of about 1/θ buckets, so a bucket level α gives about θ·α alerts per bucket."""
    if len(state) < 7:
        return 1.0
    return min(1.0, max(MIN_THETA, state[5] / state[4]))


def gpd(state: Sequence[float]) -> tuple[float, float, float]:
    """(ζ, ξ, β) of the tail above U."""
    n, k, s1, s2 = state[:4]
    zeta = k / n
    m = s1 / k
    var = max(s2 / k - m * m, 1e-12)
    xi = 0.5 * (1.0 - m * m / var)
    xi = min(max(xi, 0.0), MAX_XI)  # ξ < 0 would claim a bounded tail: never trust that
    beta = m * (1.0 - xi)
    return zeta, xi, max(beta, 1e-6)


def tail_probability(state: Sequence[float], surprise: np.ndarray | float) -> np.ndarray:
    """Calibrated P(S >= s), vectorised."""
    zeta, xi, beta = gpd(state)
    u = threshold(state)
    s = np.asarray(surprise, dtype=float)
    above = np.maximum(s - u, 0.0)
    if xi > 1e-9:
        tail = zeta * np.power(1.0 + xi * above / beta, -1.0 / xi)
    else:
        tail = zeta * np.exp(-above / beta)
    body = _body(state, zeta)
    if body is None:
        below = np.minimum(1.0, zeta * np.exp(np.minimum(u - s, 700.0)))
    else:
        below = np.minimum(1.0, np.exp(np.interp(s, *body)))
    return np.where(s >= u, tail, below)


def _body(state: Sequence[float], zeta: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Below U, the brand's own distribution: ln P(S >= edge) at the histogram's bin edges up to the
    first beyond U, scaled to meet the tail's ζ at U. None for a state without a histogram."""
    if len(state) != _SLOTS + HIST_BINS:
        return None
    hist = np.asarray(state[_SLOTS:], dtype=float)
    u = threshold(state)
    i = min(HIST_BINS - 1, int(math.log1p(u) / HIST_STEP) + 1)  # the first edge beyond U
    edges = _EDGES[:i + 1]
    log_above = np.log(np.maximum(np.cumsum(hist[::-1])[::-1][:i + 1], 1e-300))
    log_p = log_above - float(np.interp(u, edges, log_above)) + math.log(zeta)  # log-linear in s between edges
    return edges, np.minimum(log_p, 0.0)


def surprise_for(state: Sequence[float], probability: float) -> float:
    """The surprise s whose calibrated tail probability is `probability` (the alert level)."""
    zeta, xi, beta = gpd(state)
    u = threshold(state)
    if probability >= zeta:
        body = _body(state, zeta)
        if body is None:
            return u - math.log(min(probability, 1.0) / zeta)
        edges, log_p = body  # ln P falls with s: interpolate s at ln probability
        return float(np.interp(-math.log(min(probability, 1.0)), -log_p, edges))
    ratio = zeta / probability
    if xi > 1e-9:
        return u + beta / xi * (ratio ** xi - 1.0)
    return u + beta * math.log(ratio)


# -- reference distributions for the viral detector ----------------------------------------------

BIN = 0.25
BINS = 100  # ln(1+x) from 0 to 25
PRIORS = {"followers": (5.0, 2.0), "engagement": (1.0, 1.0)}  # ln(1+x) ~ N(mean, sd) before data
PRIOR_POSTS = 20.0
TAIL_SHARE = 0.05


def blank_histogram(kind: str) -> list[float]:
    mean, sd = PRIORS[kind]
    edges = np.arange(BINS + 1) * BIN
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)((edges - mean) / (sd * math.sqrt(2.0))))
    mass = np.diff(cdf)
    mass[0] += cdf[0]
    return [float(v) for v in mass / mass.sum() * PRIOR_POSTS]


def histogram_update(hist: list[float], values: Iterable[float], decay: float) -> None:
    for i in range(len(hist)):
        hist[i] *= decay
    for v in values:
        hist[min(BINS - 1, max(0, int(v / BIN)))] += 1.0
    total = sum(hist)
    if total < PRIOR_POSTS:  # keep the prior's weight so the reference never collapses
        scale = PRIOR_POSTS / max(total, 1e-12)
        for i in range(len(hist)):
            hist[i] *= scale


def histogram_tail(hist: Sequence[float], value: float) -> float:
    """P(X >= value) from the histogram; beyond its 95th percentile an exponential tail whose mean
    excess is the histogram's own (a Pareto tail on the raw scale)."""
    h = np.asarray(hist, dtype=float)
    total = h.sum()
    above = np.cumsum(h[::-1])[::-1] / total  # above[i] = P(X >= left edge of bin i)
    cut = int(np.nonzero(above >= TAIL_SHARE)[0][-1])  # the bin holding the 95th percentile
    u = cut * BIN
    centres = (np.arange(cut, BINS) + 0.5) * BIN
    weights = h[cut:]
    mean_excess = max(float((weights * (centres - u)).sum() / max(weights.sum(), 1e-12)), BIN / 2)
    if value >= u:
        return float(above[cut] * math.exp(-(value - u) / mean_excess))
    i = int(value / BIN)
    frac = value / BIN - i
    return float(min(1.0, above[i] - frac * h[i] / total))


def histogram_median(hist: Sequence[float]) -> float:
    h = np.asarray(hist, dtype=float)
    cum = np.cumsum(h) / h.sum()
    i = int(np.searchsorted(cum, 0.5))
    below = cum[i - 1] if i > 0 else 0.0
    return (i + (0.5 - below) / max(h[i] / h.sum(), 1e-12)) * BIN
