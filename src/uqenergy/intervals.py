"""Summaries of Monte Carlo draws: quantiles, mean and their Monte Carlo standard errors.

For independent draws the MCSE of a quantile follows from the order
statistics: the rank of the p-quantile among n draws is Beta-distributed, so
the estimate's standard error is half the distance between the draws at the
ranks of the Beta's 15.87% and 84.13% points (the method ArviZ's ``mcse``
uses, with the effective sample size equal to n for independent draws;
Vehtari et al. 2021, Bayesian Analysis 16(2), doi:10.1214/20-BA1221).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

QUANTILES = {"p5": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95}


def _mcse_ranks(n: int, prob: float) -> tuple[int, int]:
    """Ranks (0-based) of the draws one standard error either side of the ``prob`` quantile."""
    a, b = prob * n + 1, (1 - prob) * n + 1
    ranks = stats.beta.ppf([stats.norm.cdf(-1), stats.norm.cdf(1)], a, b) * n
    lo, hi = np.clip(np.floor(ranks).astype(int), 0, n - 1)
    return int(lo), int(hi)


def quantile_mcse(values: np.ndarray, prob: float) -> float:
    """Monte Carlo standard error of the ``prob`` quantile of independent draws."""
    lo, hi = _mcse_ranks(values.size, prob)
    x_lo, x_hi = np.partition(values, [lo, hi])[[lo, hi]]
    return float((x_hi - x_lo) / 2)


def mean_mcse(values: np.ndarray) -> float:
    """Monte Carlo standard error of the mean of independent draws."""
    return float(values.std(ddof=1) / np.sqrt(values.size))


def summarize(values: np.ndarray) -> dict:
    """The reported statistics of one distribution: P5, P25, median, P75, P95, mean, MCSE of the median.

    Quantiles interpolate linearly between order statistics (numpy's default);
    all order statistics come from one partition of the draws.
    """
    values = np.asarray(values, dtype=float).ravel()
    n = values.size
    positions = np.array(list(QUANTILES.values())) * (n - 1)
    below, above = np.floor(positions).astype(int), np.ceil(positions).astype(int)
    mcse_lo, mcse_hi = _mcse_ranks(n, 0.5)
    ranks = np.unique(np.concatenate([below, above, [mcse_lo, mcse_hi]]))
    ordered = np.partition(values, ranks)
    qs = ordered[below] + (positions - below) * (ordered[above] - ordered[below])
    record = {name: float(q) for name, q in zip(QUANTILES, qs)}
    record["mean"] = float(values.mean())
    record["mcse_median"] = float((ordered[mcse_hi] - ordered[mcse_lo]) / 2)
    record["draws"] = int(n)
    return record
