"""Summaries of Monte Carlo draws: credible intervals, quantiles, mean and their Monte Carlo standard errors.

Intervals: the equal-tailed interval at level L runs between the (1 - L)/2
and (1 + L)/2 quantiles; the highest-density interval (HDI) is the shortest
interval holding a fraction L of the draws (ArviZ's ``hdi``, computed here
without sorting every draw: see :class:`~uqenergy.engine.orderstats.SelectedDraws`).

MCSE of a quantile (Vehtari et al. 2021, Bayesian Analysis 16(2),
doi:10.1214/20-BA1221, the method of ``arviz.mcse(method="quantile")``): the
rank of the p-quantile among n draws is Beta(ess p + 1, ess (1 - p) + 1)
distributed, so the standard error is half the distance between the draws at
that Beta's 15.87% and 84.13% points. For independent draws the effective
sample size ``ess`` is n, which gives a closed form far cheaper than ArviZ's
autocorrelation estimate. For draws grouped in independent clusters (the
inner draws of one outer draw of a two-level design) the ess follows from the
spread of the clusters' empirical CDFs at the estimate.

Study settings live in the ``[intervals]`` table of a study (see
:func:`parse_intervals` and docs/intervals.md).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from uqenergy.config.intervals import DEFAULT_HDI_LEVEL, FIGURES, QUANTILES
from uqenergy.engine.orderstats import SelectedDraws, quantile_ranks

ONE_SD = special.ndtr([-1.0, 1.0])  # 15.87% and 84.13%: scipy.stats.norm.cdf's numbers without importing scipy.stats


def equal_tailed_interval(values, level: float = DEFAULT_HDI_LEVEL) -> tuple[float, float]:
    """The central credible interval holding ``level`` of the draws, cut equally from both tails.

    ArviZ 0.23 has no ``eti``; its ``summary`` takes the same two quantiles.
    """
    low, high = np.quantile(np.ravel(values), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def hdi_interval(values, level: float = DEFAULT_HDI_LEVEL) -> tuple[float, float]:
    """The highest-density (shortest) interval holding ``level`` of the draws: ``arviz.hdi``'s answer."""
    return SelectedDraws(values).hdi(level)


def _rank_bounds(n: int, prob: float, ess: float) -> tuple[int, int]:
    """Indices (into n sorted draws) one standard error below and above the ``prob`` quantile."""
    a_low, a_high = special.betaincinv(ess * prob + 1, ess * (1 - prob) + 1, ONE_SD)  # the beta law's quantiles
    return int(np.clip(np.floor(a_low * n), 0, n - 1)), int(np.clip(np.ceil(a_high * n), 0, n - 1))


def quantile_mcse(values: np.ndarray, prob: float, ess: float | None = None) -> float:
    """Monte Carlo standard error of the ``prob`` quantile of draws with effective sample size ``ess``
    (default: the number of draws, i.e. independent draws)."""
    values = np.ravel(values)
    lo, hi = _rank_bounds(values.size, prob, values.size if ess is None else ess)
    x_lo, x_hi = np.partition(values, [lo, hi])[[lo, hi]]
    return float((x_hi - x_lo) / 2)


def mean_mcse(values: np.ndarray) -> float:
    """Monte Carlo standard error of the mean of independent draws."""
    return float(values.std(ddof=1) / np.sqrt(values.size))


def cluster_mean_mcse(clusters: np.ndarray) -> float:
    """MCSE of the overall mean of equal-size independent clusters (rows) of dependent draws."""
    return mean_mcse(clusters.mean(axis=1))


def cluster_quantile_ess(clusters: np.ndarray, quantile: float, prob: float) -> float:
    """Effective sample size for the ``prob`` quantile of clustered draws (rows independent, draws in a row not).

    The estimate's CDF value is a mean of per-row fractions below ``quantile``;
    its variance, set against p (1 - p) / ess for independent draws, gives ess.
    """
    fractions = (clusters <= quantile).mean(axis=1)
    variance = fractions.var(ddof=1) / fractions.size if fractions.size > 1 else 0.0
    return clusters.size if variance <= 0 else prob * (1 - prob) / variance


def summarize(values: np.ndarray, hdi_level: float = DEFAULT_HDI_LEVEL, lengths: np.ndarray | None = None) -> dict:
    """The reported statistics of one distribution, each with its MCSE, and its HDI at ``hdi_level``.

    ``values`` is 1-D for independent draws, or 2-D (cluster, draw) for
    independent clusters of dependent draws, whose MCSEs come from the spread
    between clusters. The order statistics are selected, not sorted (one partition serves every
    quantile and its MCSE; :class:`~uqenergy.engine.orderstats.SelectedDraws`). ``lengths``:
    the segments the mean is summed over (default: blocks of the flat draws; see
    :mod:`uqenergy.engine.orderstats`).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim < 2:
        return describe(SelectedDraws(values, lengths), hdi_level)
    clusters = values.reshape(values.shape[0], -1)
    record = describe(
        SelectedDraws(values, lengths), hdi_level, lambda q, prob: cluster_quantile_ess(clusters, q, prob)
    )
    return record | {"mcse_mean": cluster_mean_mcse(clusters)}


def describe(draws, hdi_level: float = DEFAULT_HDI_LEVEL, ess=None) -> dict:
    """:func:`summarize` of a distribution read through its order statistics (in memory or streamed,
    :mod:`uqenergy.engine.orderstats`). ``ess(quantile, prob)``: effective sample size of clustered draws
    (default: the number of draws). Streamed draws raise ``Pending`` until a pass has fetched the values."""
    n, probs = draws.count, list(QUANTILES.values())
    below, above, _weight = quantile_ranks(n, probs)
    bounds = [] if ess is not None else [_rank_bounds(n, prob, n) for prob in probs]
    draws.request(np.concatenate([below, above, np.ravel(bounds).astype(np.int64)]), hdi_level)
    quantiles = draws.quantiles(probs)
    if ess is not None:
        bounds = [_rank_bounds(n, prob, ess(q, prob)) for prob, q in zip(probs, quantiles)]
    edges = draws.values(np.ravel(bounds)).reshape(-1, 2)
    record = {name: float(q) for name, q in zip(QUANTILES, quantiles)}
    record["mean"] = draws.mean
    record["hdi_low"], record["hdi_high"] = draws.hdi(hdi_level)
    record["hdi_level"] = hdi_level
    for name, (lo, hi) in zip(QUANTILES, edges):
        record[f"mcse_{name}"] = float((hi - lo) / 2)
    record["mcse_mean"] = draws.mean_mcse
    record["draws"] = int(n)
    return record


def figure_table(records: list[dict]) -> list[dict]:
    """One flat row per reported figure: its value, MCSE and MCSE relative to the value."""
    keys = ("scenario", "series", "pathway", "quantity")
    return [
        {
            **{k: r[k] for k in keys if k in r},
            "figure": f,
            "value": r[f],
            "mcse": r[f"mcse_{f}"],
            "relative_mcse": r[f"mcse_{f}"] / abs(r[f]) if r[f] else 0.0,
        }
        for r in records
        for f in FIGURES
    ]
