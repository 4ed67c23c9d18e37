"""Summaries of Monte Carlo draws: credible intervals, quantiles, mean and their Monte Carlo standard errors.

Intervals: the equal-tailed interval at level L runs between the (1 - L)/2
and (1 + L)/2 quantiles; the highest-density interval (HDI) is the shortest
interval holding a fraction L of the draws (ArviZ's ``hdi``, computed here on
the draws that :func:`summarize` has already sorted).

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

import math
import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import stats

from .errors import InputError, check_keys, require_number
from .orderstats import SortedDraws, hdi_of_sorted, quantile_ranks

with warnings.catch_warnings():  # arviz 0.23 announces its 1.0 rewrite on import
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

QUANTILES = {"p5": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95}
FIGURES = (*QUANTILES, "mean")  # the figures that carry an MCSE and that an adaptive run makes stable
DEFAULT_HDI_LEVEL = 0.9
ONE_SD = stats.norm.cdf([-1.0, 1.0])  # 15.87% and 84.13%
DESIGNS = ("one-level", "two-level")
KEY_USES = {  # keys of [intervals] that only some studies use: what uses them
    "outer_draws": 'used only with design = "two-level"',
    "pooled_draws": 'used only with design = "two-level"',
    "batch_draws": "used only with a relative_tolerance or absolute_tolerance_wh",
    "relative_tolerance": "adaptive sample size is for one-level studies",
    "absolute_tolerance_wh": "adaptive sample size is for one-level studies",
}
INTERVAL_KEYS = frozenset({"hdi_level", "design", *KEY_USES})


def equal_tailed_interval(values, level: float = DEFAULT_HDI_LEVEL) -> tuple[float, float]:
    """The central credible interval holding ``level`` of the draws, cut equally from both tails.

    ArviZ 0.23 has no ``eti``; its ``summary`` takes the same two quantiles.
    """
    low, high = np.quantile(np.ravel(values), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def hdi_interval(values, level: float = DEFAULT_HDI_LEVEL) -> tuple[float, float]:
    """The highest-density (shortest) interval holding ``level`` of the draws: ``arviz.hdi``'s answer."""
    return hdi_of_sorted(np.sort(values, axis=None), level)


def _rank_bounds(n: int, prob: float, ess: float) -> tuple[int, int]:
    """Indices (into n sorted draws) one standard error below and above the ``prob`` quantile."""
    a_low, a_high = stats.beta.ppf(ONE_SD, ess * prob + 1, ess * (1 - prob) + 1)
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
    between clusters. One sort serves every quantile and its MCSE. ``lengths``:
    the segments the mean is summed over (default: blocks of the flat draws; see
    :mod:`uqenergy.orderstats`).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim < 2:
        return describe(SortedDraws(values, lengths), hdi_level)
    clusters = values.reshape(values.shape[0], -1)
    record = describe(SortedDraws(values, lengths), hdi_level, lambda q, prob: cluster_quantile_ess(clusters, q, prob))
    return record | {"mcse_mean": cluster_mean_mcse(clusters)}


def describe(draws, hdi_level: float = DEFAULT_HDI_LEVEL, ess=None) -> dict:
    """:func:`summarize` of a distribution read through its order statistics (in memory or streamed,
    :mod:`uqenergy.orderstats`). ``ess(quantile, prob)``: effective sample size of clustered draws
    (default: the number of draws). Streamed draws raise ``Pending`` until a pass has fetched the values."""
    n, probs = draws.count, list(QUANTILES.values())
    below, above, weight = quantile_ranks(n, probs)
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
        {**{k: r[k] for k in keys if k in r}, "figure": f, "value": r[f], "mcse": r[f"mcse_{f}"],
         "relative_mcse": r[f"mcse_{f}"] / abs(r[f]) if r[f] else 0.0}
        for r in records for f in FIGURES
    ]


def inference_data(samples: xr.Dataset) -> az.InferenceData:
    """The draws as ArviZ InferenceData, so ``arviz.summary`` and ArviZ plots work on them.

    One-level runs: every variable with draws in the ``prior`` group (chain 1,
    draw). Two-level runs: the outer draws (epistemic inputs, ``mean_energy_wh``)
    in ``prior``, the pooled per-query ``energy_wh`` in ``prior_predictive``.
    Variables without draws (fixed values, blend membership) go to ``constant_data``.
    """
    draw = "outer" if "outer" in samples.dims else "draw"
    per_query = [v for v in samples.data_vars if "kept" in samples[v].dims]
    drawn = [v for v in samples.data_vars if draw in samples[v].dims and v not in per_query]
    groups = {"prior": _one_chain(samples[drawn].rename({draw: "draw"})),
              "constant_data": samples.drop_vars(drawn + per_query).drop_dims([draw, "kept"], errors="ignore")}
    if per_query:
        pooled = samples[per_query].stack(draw=("outer", "kept"))
        groups["prior_predictive"] = _one_chain(pooled.drop_vars(["draw", "outer", "kept"]).assign_coords(
            draw=np.arange(pooled.sizes["draw"])))
    return az.InferenceData(**groups)


def _one_chain(dataset: xr.Dataset) -> xr.Dataset:
    return dataset.expand_dims(chain=[0]).transpose("chain", "draw", ...)


@dataclass(frozen=True)
class IntervalSettings:
    """A study's ``[intervals]`` table: HDI level, design, and the adaptive tolerance."""

    hdi_level: float = DEFAULT_HDI_LEVEL
    design: str = "one-level"
    outer_draws: int = 1_000  # two-level: states of knowledge; the study's `draws` are inner draws per outer draw
    pooled_draws: int = 1_000_000  # two-level: per-query draws kept per model for the pooled quantiles
    relative_tolerance: float | None = None  # adaptive: 2 MCSE <= this fraction of each figure
    absolute_tolerance_wh: float | None = None  # adaptive: 2 MCSE <= this many Wh
    batch_draws: int = 100_000  # adaptive: draws per batch; the study's `draws` are the maximum

    @property
    def two_level(self) -> bool:
        return self.design == "two-level"

    @property
    def adaptive(self) -> bool:
        return self.relative_tolerance is not None or self.absolute_tolerance_wh is not None

    def tolerance_ratio(self, record: dict) -> float:
        """max over figures of (2 MCSE / tolerance)^2: at most 1 when stable; else roughly the factor more draws needed."""
        ratios = []
        for name in FIGURES:
            mcse = record[f"mcse_{name}"]
            tolerance = self.absolute_tolerance_wh if self.absolute_tolerance_wh is not None else \
                self.relative_tolerance * abs(record[name])
            ratios.append(0.0 if mcse == 0 else math.inf if tolerance == 0 else (2 * mcse / tolerance) ** 2)
        return max(ratios)

    def mark_tolerance(self, record: dict) -> dict:
        """The record, with ``tolerance_met`` added when the study asks for a tolerance."""
        return record | {"tolerance_met": self.tolerance_ratio(record) <= 1.0} if self.adaptive else record


def require_untrimmed(blends, file) -> None:
    """A two-level design pools each blend's whole distribution: trimming has no meaning there."""
    for blend in blends:
        if blend.trim:
            raise InputError(file, f"blends.{blend.name}.trim", "a two-level design pools whole distributions",
                             "no trim in a two-level study")


def _positive_number(table: dict, key: str, file, below_one: bool = False) -> float:
    value = require_number(table[key], file, f"intervals.{key}", positive=True)
    if below_one and value >= 1:
        raise InputError(file, f"intervals.{key}", f"{value:g} is not below 1", "a number between 0 and 1")
    return value


def parse_intervals(table, file, blends=()) -> IntervalSettings:
    """Validate a study's ``[intervals]`` table (``blends``: the study's, which a two-level design cannot trim)."""
    from .study import positive_int  # study.py imports this module

    if not isinstance(table, dict):
        raise InputError(file, "intervals", "expected a table", "an [intervals] table")
    check_keys(table, INTERVAL_KEYS, file, "intervals.")
    design = table.get("design", "one-level")
    if design not in DESIGNS:
        raise InputError(file, "intervals.design", f"unknown design {design!r}", " or ".join(DESIGNS))
    tolerances = [k for k in ("relative_tolerance", "absolute_tolerance_wh") if k in table]
    if len(tolerances) > 1:
        raise InputError(file, "intervals.absolute_tolerance_wh", "conflicts with relative_tolerance", "give one tolerance")
    used = {"hdi_level", "design"} | (
        {"outer_draws", "pooled_draws"} if design == "two-level" else {*tolerances, "batch_draws"} if tolerances else set())
    for key in sorted(table.keys() - used):
        raise InputError(file, f"intervals.{key}", "has no effect in this study", KEY_USES[key])
    if design == "two-level":
        require_untrimmed(blends, file)
    settings = {k: positive_int(table[k], file, f"intervals.{k}") for k in ("outer_draws", "pooled_draws", "batch_draws") if k in table}
    settings |= {k: _positive_number(table, k, file, below_one=k != "absolute_tolerance_wh") for k in tolerances}
    if "hdi_level" in table:
        settings["hdi_level"] = _positive_number(table, "hdi_level", file, below_one=True)
    return IntervalSettings(design=design, **settings)
