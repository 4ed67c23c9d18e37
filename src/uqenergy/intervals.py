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


def quantile_mcse(values: np.ndarray, prob: float) -> float:
    """Monte Carlo standard error of the ``prob`` quantile of independent draws."""
    n = values.size
    a, b = prob * n + 1, (1 - prob) * n + 1
    ranks = stats.beta.ppf([stats.norm.cdf(-1), stats.norm.cdf(1)], a, b) * n
    lo, hi = np.clip(np.floor(ranks).astype(int), 0, n - 1)
    x_lo, x_hi = np.partition(values, [lo, hi])[[lo, hi]]
    return float((x_hi - x_lo) / 2)


def mean_mcse(values: np.ndarray) -> float:
    """Monte Carlo standard error of the mean of independent draws."""
    return float(values.std(ddof=1) / np.sqrt(values.size))


def summarize(values: np.ndarray) -> dict:
    """The reported statistics of one distribution: P5, P25, median, P75, P95, mean, MCSE of the median."""
    values = np.asarray(values, dtype=float).ravel()
    qs = np.quantile(values, list(QUANTILES.values()))
    record = {name: float(q) for name, q in zip(QUANTILES, qs)}
    record["mean"] = float(values.mean())
    record["mcse_median"] = quantile_mcse(values, 0.5)
    record["draws"] = int(values.size)
    return record
