"""Series: which draws a study pools and reports, whether the draws are in memory or streamed.

The one place for the logic of blends. A series pools members: each member is
one model's draws, kept where its baseline energy lies inside a window, and
divided by a pathway's divisor (``baseline``: none). A model is a series of one
untrimmed member. A blend's members are the models it lists or its ``top``
models ranked by median baseline energy (:func:`rank_by_median`,
:func:`series_members`); a trimmed blend keeps each member's draws inside
successive percentile windows (:func:`trim_window`, :func:`trimmed_members`).

``blend-paper`` reproduces Oviedo et al. (arXiv:2509.20241): the three models
with the highest median energy, each trimmed to its P5-P95, that trimmed to its
P10-P90, and pooled. The trimming narrows the reported spread. The honest
``blend`` pools the same models untrimmed: an equal-weight mixture, which is
what a reader should expect of a query served by one of them.

Series are read through ``draws_of(series)``, which gives their order statistics
(:mod:`uqenergy.engine.orderstats`): :class:`InMemory` for (model, draw) arrays
held in memory, streamed trackers for draws read in passes
(:mod:`uqenergy.analyses.streaming`). :func:`series_values` pools a series' draws
from (model, draw) arrays; :meth:`InMemory.pool` is the in-memory pooling.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import xarray as xr

from uqenergy.analyses.intervals import describe
from uqenergy.config.errors import InputError
from uqenergy.config.study import Study
from uqenergy.engine.orderstats import Pending, SelectedDraws, StreamedDraws, segment_lengths


@dataclass(frozen=True)
class Member:
    """Draws of model number ``model`` whose baseline energy is in [low, high]."""

    model: int
    low: float = -math.inf
    high: float = math.inf


@dataclass(frozen=True)
class Series:
    """The pooled draws of ``members``, each divided by the ``pathway``'s divisor (``baseline``: none)."""

    members: tuple[Member, ...]
    pathway: str = "baseline"


DrawsOf = Callable[[Series], SelectedDraws | StreamedDraws]  # a series -> its order statistics
Trims = Sequence[Sequence[float]]  # successive [low, high] percentile windows


def model_series(model: int, pathway: str = "baseline") -> Series:
    """The series of model number ``model`` alone, untrimmed."""
    return Series((Member(model),), pathway)


def pathway_names(study: Study) -> list[str]:
    """The study's pathways, then ``combined`` if it has one."""
    return [*study.pathways, *(["combined"] if study.combined else [])]


def pathway_divisors(study: Study, drawn: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each pathway's divisor (model, draw) from the drawn ``pathway_*`` inputs; ``combined`` is their product."""
    divisors = {p: drawn[f"pathway_{p}"] for p in study.pathways}
    if study.combined:
        divisors["combined"] = functools.reduce(np.multiply, divisors.values())
    return divisors


def series_values(
    series: Series, energy_wh: np.ndarray, divisors: dict[str, np.ndarray], first: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A series' draws from (model, draw) arrays holding draws [first, ...), and their segment lengths
    (kept draws per member and block of draws: what the mean is summed over)."""
    blocks = segment_lengths(energy_wh.shape[-1], first)
    starts = np.cumsum(blocks) - blocks
    parts, lengths = [], []
    for member in series.members:
        energy = energy_wh[member.model]
        values = energy if series.pathway == "baseline" else energy / divisors[series.pathway][member.model]
        if member.low == -math.inf and member.high == math.inf:
            parts.append(values)
            lengths.append(blocks)
        else:
            keep = (energy >= member.low) & (energy <= member.high)
            parts.append(values[keep])
            lengths.append(np.add.reduceat(keep, starts, dtype=np.int64))
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)), np.concatenate(lengths)


class InMemory:
    """Order statistics of series whose draws are (model, draw) arrays in memory; models' baselines are kept sorted.

    Parameters
    ----------
    energy_wh : numpy.ndarray
        Energy per query in Wh, (model, draw); models numbered as the study's.
    divisors : dict of str to numpy.ndarray, optional
        Each pathway's divisor, (model, draw) (see :func:`pathway_divisors`); none when only baselines are read.
    """

    def __init__(self, energy_wh: np.ndarray, divisors: dict[str, np.ndarray] | None = None):
        self.energy_wh, self.divisors = energy_wh, divisors or {}
        self.cache: dict[Series, SelectedDraws] = {}

    def __call__(self, series: Series) -> SelectedDraws:
        # a model's baseline is cached and partitioned in place as it is read: not thread-safe, so
        # series_records reads each series on one thread, models' before blends' (which rank and trim them)
        if series in self.cache:
            return self.cache[series]
        draws = SelectedDraws(*series_values(series, self.energy_wh, self.divisors))
        if series.pathway == "baseline" and len(series.members) == 1:
            self.cache[series] = draws
        return draws

    def pool(self, series: Series) -> np.ndarray:
        """The series' pooled draws: each member's kept draws, divided by the pathway's divisor, members in order."""
        return series_values(series, self.energy_wh, self.divisors)[0]


def rank_by_median(models: Sequence[str], draws_of: DrawsOf) -> list[str]:
    """Models ordered by the median of their baseline draws, highest first (ties keep the study's order).

    Parameters
    ----------
    models : sequence of str
        The study's models; model number i is ``models[i]``.
    draws_of : callable
        A series -> its order statistics (:class:`InMemory` or streamed).

    Returns
    -------
    list of str
    """
    median_wh = np.concatenate([draws_of(model_series(m)).quantiles([0.5]) for m in range(len(models))])
    return [models[i] for i in np.argsort(-median_wh, kind="stable")]


def series_members(study: Study, name: str, draws_of: DrawsOf) -> list[str]:
    """The models pooled into series ``name``: a model alone, or a blend's listed members or ``top`` models.

    Parameters
    ----------
    study : Study
    name : str
        A model or blend of ``study``.
    draws_of : callable
        A series -> its order statistics; read only to rank a ``top`` blend's models by median
        (:func:`rank_by_median`).

    Returns
    -------
    list of str
    """
    if name in study.models:
        return [name]
    blend = next(b for b in study.blends if b.name == name)
    return list(blend.members) or rank_by_median(study.models, draws_of)[: blend.top]


def trim_window(draws, trims: Trims) -> tuple[float, float] | None:
    """The [low, high] baseline energies (Wh) a member keeps after successive percentile windows.

    Each window is taken (as ``numpy.percentile``) on what the previous one kept.

    Parameters
    ----------
    draws : SelectedDraws or StreamedDraws
        The member's baseline order statistics (:mod:`uqenergy.engine.orderstats`).
    trims : sequence of [low, high]
        Percentile windows, 0 <= low < high <= 100.

    Returns
    -------
    tuple of float or None
        None if a window keeps nothing.
    """
    low, high, below, upto = -math.inf, math.inf, 0, draws.count
    for window in trims:
        if upto <= below:
            return None
        a, b = draws.quantiles(np.asarray(window, dtype=float) / 100, below, upto - below).tolist()
        low, high = max(low, a), min(high, b)
        below, upto = draws.rank_below(low), draws.rank_upto(high)
    return (low, high) if upto > below else None


def trimmed_members(models: Sequence[int], trims: Trims, draws_of: DrawsOf) -> tuple[Member, ...] | None:
    """Members for model numbers ``models``, each kept inside its trim windows (:func:`trim_window`).

    Every model's window is requested before streamed draws raise
    :class:`~uqenergy.engine.orderstats.Pending`, so one pass fetches them all;
    without ``trims`` no draws are read.

    Returns
    -------
    tuple of Member or None
        None if a window keeps no draws of a member.
    """
    if not trims:
        return tuple(Member(m) for m in models)
    windows: list[tuple[float, float] | None] = []
    waiting = False
    for m in models:
        try:
            windows.append(trim_window(draws_of(model_series(m)), trims))
        except Pending:
            waiting = True
    if waiting:
        raise Pending
    kept = [window for window in windows if window is not None]
    if len(kept) < len(windows):
        return None
    return tuple(Member(m, low, high) for m, (low, high) in zip(models, kept))


def series_pool(
    study: Study, name: str, members: Sequence[str], draws_of: DrawsOf, pathway: str = "baseline"
) -> Series:
    """The series ``name`` of ``study`` pooling ``members`` (:func:`series_members`), trimmed as its blend says.

    Raises
    ------
    InputError
        If a trim window keeps no draws of a member.
    """
    trims = next((b.trim for b in study.blends if b.name == name), [])
    pool = trimmed_members([study.models.index(m) for m in members], trims, draws_of)
    if pool is None:
        raise InputError(
            study.path, f"blends.{name}.trim", "keeps no draws of a member", "more draws or wider percentile windows"
        )
    return Series(pool, pathway)


def pooled_labels(labels: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the records of a pool of series name: each key's value if its members agree, else their values joined."""
    keys = dict.fromkeys(k for label in labels for k in label)
    pooled = {}
    for key in keys:
        values = list(dict.fromkeys(label.get(key) for label in labels))
        pooled[key] = values[0] if len(values) == 1 else " / ".join(map(str, values))
    return pooled


def series_records(
    study: Study, draws_of: DrawsOf, clamped: Sequence[int] | np.ndarray | None = None, workers: int = 1
) -> tuple[list[dict], dict[str, list[str]]]:
    """Records for every model, every blend, and every pathway applied to its targets; plus blend members.

    ``draws_of(series)`` gives the series' order statistics. Streamed ones raise
    :class:`~uqenergy.engine.orderstats.Pending` until fetched: every record is tried,
    so that one pass fetches what all of them need, then Pending is raised again.
    A measured study's records also name each series' configuration (:attr:`Study.series_labels`)
    and count its draws whose concurrency was clamped to the measured range (``clamped``, per model;
    a trimmed blend keeps an unknown share of them and has no count).

    ``workers`` > 1 summarises distinct series on that many threads (draws in memory only: numpy's
    selections release the GIL); the models' series first, then, once the blends' members are known
    from the models' draws, the blends'. The records do not depend on it.
    """
    pending = []
    members: dict[str, list[str]] = {}

    def attempt(function: Callable, *args):
        try:
            return function(*args)
        except Pending:
            pending.append(function)
            return None

    def labels(series: Series) -> dict:
        if not study.series_labels:
            return {}
        pooled = pooled_labels([study.series_labels[study.models[m.model]] for m in series.members])
        trimmed = any(m.low != -math.inf or m.high != math.inf for m in series.members)
        if clamped is not None and not trimmed:
            pooled["clamped_draws"] = int(sum(clamped[m.model] for m in series.members))
        return pooled

    def finite(name: str, draws):
        if not math.isfinite(draws.mean):  # a draw, or their sum, past the float range: no figure can be finite
            raise InputError(
                study.path,
                "priors",
                f"the energy per query of {name} is not finite: it, or a step of its computation, passes 1.8e308",
                "priors whose energies are finite numbers",
            )
        return draws

    def summarise(series: Series, name: str) -> dict | None:
        return attempt(lambda: describe(finite(name, draws_of(series)), study.intervals.hdi_level))

    def records_of(named: list[tuple[str, Series]]) -> list[dict]:
        distinct: dict[Series, str] = {}  # a series on one thread: it is reordered
        for name, series in named:
            distinct.setdefault(series, name)
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                summaries = dict(zip(distinct, pool.map(summarise, distinct, distinct.values())))
        else:
            summaries = dict(zip(distinct, map(summarise, distinct, distinct.values())))
        return [  # a pending summary has no record yet: the caller raises Pending once all are tried
            study.intervals.mark_tolerance(
                {"scenario": study.scenario, "series": name, **labels(series), "pathway": series.pathway}
                | {"quantity": "energy_wh", **summary}
            )
            for name, series in named
            if (summary := summaries[series]) is not None
        ]

    def blend_pool(name: str) -> Series:
        members[name] = series_members(study, name, draws_of)
        return series_pool(study, name, members[name], draws_of)

    pathways = pathway_names(study)
    named = []
    for m, model in enumerate(study.models):
        named.append((model, model_series(m)))
        if model in study.pathway_targets:
            named += [(model, model_series(m, p)) for p in pathways]
    records = records_of(named)
    named = []
    for blend in study.blends:
        pool = attempt(blend_pool, blend.name)
        if pool is None:
            continue
        named.append((blend.name, pool))
        if blend.name in study.pathway_targets:
            named += [(blend.name, replace(pool, pathway=p)) for p in pathways]
    records += records_of(named)
    if pending:
        raise Pending
    return records, members


def blend_definitions(attrs: dict) -> dict[str, tuple[list[str], list]]:
    """Blend name -> (members, trim windows), from the ``blend_members_*`` and ``blend_trim_*`` attributes
    (no ``blend_trim_*``: untrimmed); a study with settings gives those of its first setting."""
    if "settings" in attrs and not any(k.startswith("blend_members_") for k in attrs):
        return blend_definitions(setting_attrs(attrs, attrs["settings"].split(", ")[0]))
    blends = {}
    for key, value in attrs.items():
        name = key.removeprefix("blend_members_")
        if name != key:
            trim = json.loads(attrs[f"blend_trim_{name}"]) if f"blend_trim_{name}" in attrs else []
            blends[name] = ([m.strip() for m in value.split(",")], trim)
    return blends


def setting_attrs(attrs: dict, setting: str) -> dict:
    """The attributes of a run with settings as one setting's run would have them (its blends' members)."""
    prefix = f"setting_{setting}_"
    return {k: v for k, v in attrs.items() if not k.startswith("setting_")} | {
        k.removeprefix(prefix): v for k, v in attrs.items() if k.startswith(prefix)
    }


def series_draws(energy_wh: xr.DataArray, attrs: dict, stop: int | None = None) -> dict[str, np.ndarray]:
    """Draws per model and per blend (pooled and trimmed as in the run) from the first ``stop`` saved draws."""
    models = [str(m) for m in energy_wh["model"].values]
    saved = InMemory(energy_wh.isel(draw=slice(0, stop)).transpose("model", "draw").values)
    draws = {model: saved.pool(model_series(m)) for m, model in enumerate(models)}
    for name, (members, trim) in blend_definitions(attrs).items():
        pool = trimmed_members([models.index(m) for m in members], trim, saved) if set(members) <= set(models) else None
        if pool is not None:  # None: the blend's models are not all saved, or a window keeps nothing
            draws[name] = saved.pool(Series(pool))
    return draws
