"""Prior specifications -> frozen distributions that sample and invert their CDF.

Every distribution maps uniform numbers through its inverse CDF (``ppf``), so
plain Monte Carlo, Latin hypercube and SALib's Saltelli designs all share one
code path. Parameterisations follow how the literature states a figure: a
log-normal "fitted to P5/P95" uses

    sigma = (ln P95 - ln P5) / (2 z_0.95),   mu = ln P5 + z_0.95 sigma

(Oviedo et al., arXiv:2509.20241, methods).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from uqenergy.config.errors import InputError, require_number

Z95 = float(stats.norm.ppf(0.95))  # 1.6449: the P5/P95 quantile of a standard normal

#: Accepted parameter sets per distribution, in the order they are tried.
PARAMETER_SETS: dict[str, tuple[tuple[str, ...], ...]] = {
    "lognormal": (("p5", "p95"), ("median", "gsd"), ("mu", "sigma")),
    "exponential": (("median",), ("mean",)),
    "uniform": (("low", "high"),),
    "triangular": (("low", "mode", "high"),),
    "normal": (("mean", "sd"),),
    "beta": (("alpha", "beta"),),
    "fixed": (("value",),),
    "categorical": (("values",),),
}
#: Optional parameters a distribution accepts on top of its parameter set.
OPTIONAL_PARAMETERS: dict[str, tuple[str, ...]] = {"beta": ("loc", "scale"), "categorical": ("weights",)}


def parameters_of(dist: str) -> frozenset[str]:
    """Every parameter a distribution accepts: its parameter sets and its optional parameters."""
    return frozenset({n for ns in PARAMETER_SETS.get(dist, ()) for n in ns} | set(OPTIONAL_PARAMETERS.get(dist, ())))


def lognormal_from_p5_p95(p5: float, p95: float) -> tuple[float, float]:
    """(mu, sigma) of the log-normal whose 5th and 95th percentiles are ``p5`` and ``p95``."""
    sigma = (np.log(p95) - np.log(p5)) / (2 * Z95)
    return float(np.log(p5) + Z95 * sigma), float(sigma)


@dataclass(frozen=True)
class Distribution:
    """A univariate distribution usable by every design: ``ppf`` maps U(0, 1) onto it."""

    name: str
    frozen: Any  # a frozen scipy.stats distribution, or None for fixed/categorical
    value: float | None = None  # fixed
    categories: tuple = ()  # categorical values
    cumulative_weights: np.ndarray | None = None  # categorical

    @property
    def is_categorical(self) -> bool:
        return self.name == "categorical"

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF. Categorical distributions return category *indices*."""
        u = np.asarray(u, dtype=float)
        if self.name == "fixed":
            return np.full(u.shape, self.value)
        if self.cumulative_weights is not None:  # categorical
            return np.searchsorted(self.cumulative_weights, u, side="right").clip(max=len(self.categories) - 1)
        fast = _FAST_PPF.get(self.name)
        return fast(self.frozen, u) if fast else self.frozen.ppf(u)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Independent draws; the common laws use numpy's direct samplers, the rest the inverse CDF."""
        if self.name == "lognormal":
            return self.frozen.kwds["scale"] * np.exp(self.frozen.kwds["s"] * rng.standard_normal(size))
        if self.name == "exponential":
            return rng.exponential(self.frozen.kwds["scale"], size)
        return self.ppf(rng.random(size))

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        if self.name == "fixed":
            return np.where(np.asarray(x) >= self.value, 1.0, 0.0)
        if self.is_categorical:
            raise TypeError("a categorical distribution has no numeric CDF")
        return self.frozen.cdf(x)

    def median(self) -> float:
        if self.is_categorical:
            raise TypeError("a categorical distribution has no median")
        return float(self.ppf(np.array(0.5)))

    def mean(self) -> float:
        if self.value is not None:  # fixed
            return self.value
        return float(self.frozen.mean())

    def mass_outside(self, low: float, high: float) -> float:
        """Probability mass below ``low`` or above ``high``."""
        if self.cumulative_weights is not None:  # categorical: the weight of its numeric values outside
            weights = np.diff(self.cumulative_weights, prepend=0.0)
            numbers = [
                v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in self.categories
            ]
            values = np.array(numbers, dtype=float)
            return float(weights[(values < low) | (values > high)].sum())
        if self.value is not None:  # fixed
            return float(not low <= self.value <= high)
        below = float(self.frozen.cdf(low)) if np.isfinite(low) else 0.0
        above = 1.0 - float(self.frozen.cdf(high)) if np.isfinite(high) else 0.0
        return below + above

    def truncated(self, low: float, high: float) -> Distribution:
        """The same law restricted to [low, high] and renormalised."""
        if self.name in ("fixed", "categorical"):
            return self
        return Distribution(f"truncated {self.name}", _Truncated(self, low, high))


def _lognormal_ppf(frozen, u):
    return frozen.kwds["scale"] * np.exp(frozen.kwds["s"] * special.ndtri(u))


def _exponential_ppf(frozen, u):
    return -frozen.kwds["scale"] * np.log1p(-u)


#: Closed-form inverse CDFs of the common laws: same numbers as scipy's, without its per-call overhead.
_FAST_PPF = {"lognormal": _lognormal_ppf, "exponential": _exponential_ppf}


class _Truncated:
    """A continuous law restricted to [low, high] by inverse-CDF rescaling."""

    def __init__(self, base: Distribution, low: float, high: float):
        self.base, self.low, self.high = base, low, high
        self.c_low = float(base.cdf(low)) if np.isfinite(low) else 0.0
        self.c_high = float(base.cdf(high)) if np.isfinite(high) else 1.0

    def ppf(self, u):
        return np.clip(self.base.ppf(self.c_low + u * (self.c_high - self.c_low)), self.low, self.high)

    def cdf(self, x):
        return np.clip((self.base.cdf(x) - self.c_low) / (self.c_high - self.c_low), 0.0, 1.0)

    def mean(self):
        u = (np.arange(20_000) + 0.5) / 20_000
        return float(np.mean(self.ppf(u)))


def _numbers(spec: dict, names: tuple[str, ...], file, key: str) -> list[float]:
    return [require_number(spec[n], file, f"{key}.{n}") for n in names]


def _positive(values: dict[str, float], file, key: str) -> None:
    for name, value in values.items():
        if value <= 0:
            raise InputError(file, f"{key}.{name}", f"{value:g} is not positive", "a positive number")


def _ordered(lower: tuple[str, float], upper: tuple[str, float], file, key: str, strict: bool = True) -> None:
    (ln_, lv), (un, uv) = lower, upper
    if lv > uv or (strict and lv == uv):
        raise InputError(file, f"{key}.{ln_}", f"{ln_} = {lv:g} is not below {un} = {uv:g}", f"{ln_} < {un}")


def _parameter_set(spec: dict, dist: str, file, key: str) -> tuple[str, ...]:
    for names in PARAMETER_SETS[dist]:
        if all(n in spec for n in names):
            return names
    options = " or ".join("+".join(ns) for ns in PARAMETER_SETS[dist])
    raise InputError(file, key, f"{dist} distribution is missing its parameters", f"give {options}")


def from_spec(spec: dict, file=None, key: str = "prior") -> Distribution:
    """Build a :class:`Distribution` from the distribution keys of a prior table.

    ``spec`` holds ``dist`` and its parameters (see :data:`PARAMETER_SETS`);
    other keys (unit, bounds, ...) are ignored here and checked by ``priors``.
    """
    dist = spec.get("dist")
    if not isinstance(dist, str) or dist not in PARAMETER_SETS:
        raise InputError(file, f"{key}.dist", f"unknown distribution {dist!r}", "one of " + ", ".join(PARAMETER_SETS))
    names = _parameter_set(spec, dist, file, key)
    extra = [n for ns in PARAMETER_SETS[dist] for n in ns if n in spec and n not in names]
    if extra:
        raise InputError(file, f"{key}.{extra[0]}", f"conflicts with {'+'.join(names)}", "give one parameter set")
    if dist == "categorical":
        return _categorical(spec, file, key)
    values = dict(zip(names, _numbers(spec, names, file, key)))
    if dist == "lognormal":
        if "p5" in values:
            _positive(values, file, key)
            _ordered(("p5", values["p5"]), ("p95", values["p95"]), file, key)
            mu, sigma = lognormal_from_p5_p95(values["p5"], values["p95"])
        elif "median" in values:
            _positive(values, file, key)
            if values["gsd"] <= 1:
                raise InputError(file, f"{key}.gsd", f"{values['gsd']:g} is not above 1", "a geometric SD > 1")
            mu, sigma = np.log(values["median"]), np.log(values["gsd"])
        else:
            _positive({"sigma": values["sigma"]}, file, key)
            mu, sigma = values["mu"], values["sigma"]
        return Distribution(dist, stats.lognorm(s=sigma, scale=np.exp(mu)))
    if dist == "exponential":
        _positive(values, file, key)
        mean = values["mean"] if "mean" in values else values["median"] / np.log(2)
        return Distribution(dist, stats.expon(scale=mean))
    if dist == "uniform":
        _ordered(("low", values["low"]), ("high", values["high"]), file, key)
        return Distribution(dist, stats.uniform(loc=values["low"], scale=values["high"] - values["low"]))
    if dist == "triangular":
        low, mode, high = values["low"], values["mode"], values["high"]
        _ordered(("low", low), ("high", high), file, key)
        if not low <= mode <= high:
            raise InputError(file, f"{key}.mode", f"{mode:g} is outside [{low:g}, {high:g}]", "low <= mode <= high")
        return Distribution(dist, stats.triang(c=(mode - low) / (high - low), loc=low, scale=high - low))
    if dist == "normal":
        _positive({"sd": values["sd"]}, file, key)
        return Distribution(dist, stats.norm(loc=values["mean"], scale=values["sd"]))
    if dist == "beta":
        _positive(values, file, key)
        loc = require_number(spec.get("loc", 0.0), file, f"{key}.loc")
        scale = require_number(spec.get("scale", 1.0), file, f"{key}.scale", positive=True)
        return Distribution(dist, stats.beta(values["alpha"], values["beta"], loc=loc, scale=scale))
    return Distribution(dist, None, value=values["value"])


def _categorical(spec: dict, file, key: str) -> Distribution:
    values = spec["values"]
    if not isinstance(values, list) or not values:
        raise InputError(file, f"{key}.values", "expected a non-empty list", "a list of numbers or names")
    if len(set(map(repr, values))) != len(values):
        raise InputError(file, f"{key}.values", "has duplicate entries", "distinct values")
    weights = spec.get("weights", [1.0] * len(values))
    if not isinstance(weights, list) or len(weights) != len(values):
        raise InputError(file, f"{key}.weights", "must have one weight per value", f"a list of {len(values)} numbers")
    w = np.array([require_number(x, file, f"{key}.weights", nonnegative=True) for x in weights])
    if w.sum() <= 0:
        raise InputError(file, f"{key}.weights", "all weights are zero", "non-negative weights with a positive sum")
    return Distribution("categorical", None, categories=tuple(values), cumulative_weights=np.cumsum(w) / w.sum())
