"""The series a one-level run reports, and their records, whether the draws are in memory or streamed.

A series pools members: each member is one model's draws, kept where its
baseline energy lies inside a window (a trimmed blend's), and divided by a
pathway's divisor (``baseline``: none). A model is a series of one untrimmed
member; ``blend-paper`` pools its members' trimmed draws (see
:mod:`uqenergy.analyses.blends`). :func:`series_records` reads every series through an
order-statistics object (:mod:`uqenergy.engine.orderstats`), so the same code serves
draws held in memory and draws streamed in passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from uqenergy.config.errors import InputError
from uqenergy.analyses.intervals import describe
from uqenergy.engine.orderstats import Pending, SortedDraws, segment_lengths
from uqenergy.config.study import Study


@dataclass(frozen=True)
class Member:
    """Draws of model number ``model`` whose baseline energy is in [low, high]."""

    model: int
    low: float = -math.inf
    high: float = math.inf


@dataclass(frozen=True)
class Series:
    members: tuple[Member, ...]
    pathway: str = "baseline"


def model_series(model: int, pathway: str = "baseline") -> Series:
    return Series((Member(model),), pathway)


def pathway_names(study: Study) -> list[str]:
    return [*study.pathways, *(["combined"] if study.combined else [])]


def pathway_divisors(study: Study, drawn: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each pathway's divisor (model, draw) from the drawn ``pathway_*`` inputs; ``combined`` is their product."""
    divisors = {p: drawn[f"pathway_{p}"] for p in study.pathways}
    if study.combined:
        combined = 1.0
        for d in divisors.values():
            combined = combined * d
        divisors["combined"] = combined
    return divisors


def series_values(series: Series, energy_wh: np.ndarray, divisors: dict[str, np.ndarray],
                  first: int = 0) -> tuple[np.ndarray, np.ndarray]:
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
    """Order statistics of series whose draws are (model, draw) arrays in memory; models' baselines are kept sorted."""

    def __init__(self, energy_wh: np.ndarray, divisors: dict[str, np.ndarray]):
        self.energy_wh, self.divisors, self.cache = energy_wh, divisors, {}

    def __call__(self, series: Series) -> SortedDraws:
        if series in self.cache:
            return self.cache[series]
        draws = SortedDraws(*series_values(series, self.energy_wh, self.divisors))
        if series.pathway == "baseline" and len(series.members) == 1:
            self.cache[series] = draws
        return draws


def trim_window(draws, trims: Sequence[Sequence[float]]) -> tuple[float, float] | None:
    """The [low, high] baseline energies a member keeps after successive percentile windows, each taken
    (as ``numpy.percentile``) on what the previous kept; None if a window keeps nothing."""
    low, high, below, upto = -math.inf, math.inf, 0, draws.count
    for window in trims:
        if upto <= below:
            return None
        a, b = draws.quantiles(np.asarray(window, dtype=float) / 100, below, upto - below).tolist()
        low, high = max(low, a), min(high, b)
        below, upto = draws.rank_below(low), draws.rank_upto(high)
    return (low, high) if upto > below else None


def series_records(study: Study, draws_of: Callable[[Series], object]) -> tuple[list[dict], dict]:
    """Records for every model, every blend, and every pathway applied to its targets; plus blend members.

    ``draws_of(series)`` gives the series' order statistics. Streamed ones raise
    :class:`~uqenergy.engine.orderstats.Pending` until fetched: every record is tried,
    so that one pass fetches what all of them need, then Pending is raised again.
    """
    pending = []

    def attempt(function: Callable, *args):
        try:
            return function(*args)
        except Pending:
            pending.append(function)
            return None

    def record(name: str, series: Series) -> dict:
        summary = describe(draws_of(series), study.intervals.hdi_level)
        return study.intervals.mark_tolerance({"scenario": study.scenario, "series": name, "pathway": series.pathway,
                                               "quantity": "energy_wh", **summary})

    def ranking() -> list[str]:
        medians = np.concatenate([draws_of(model_series(m)).quantiles([0.5]) for m in range(len(study.models))])
        return [study.models[i] for i in np.argsort(-medians, kind="stable")]

    def windows(blend, members: list[str]) -> tuple[Member, ...]:
        chosen, found, waiting = [study.models.index(m) for m in members], [], False
        for m in chosen:  # every member's window is fetched in the same pass
            try:
                found.append(trim_window(draws_of(model_series(m)), blend.trim))
            except Pending:
                waiting = True
        if waiting:
            raise Pending
        if None in found:
            raise InputError(study.path, f"blends.{blend.name}.trim", "keeps no draws of a member",
                             "more draws or wider percentile windows")
        return tuple(Member(m, *w) for m, w in zip(chosen, found))

    records, members = [], {}
    pathways = pathway_names(study)
    for m, model in enumerate(study.models):
        records.append(attempt(record, model, model_series(m)))
        if model in study.pathway_targets:
            records += [attempt(record, model, model_series(m, p)) for p in pathways]
    order = attempt(ranking) if any(not b.members for b in study.blends) else []
    for blend in study.blends:
        if order is None and not blend.members:
            continue
        members[blend.name] = blend.members or order[: blend.top]
        pool = attempt(windows, blend, members[blend.name]) if blend.trim else \
            tuple(Member(study.models.index(m)) for m in members[blend.name])
        if pool is None:
            continue
        records.append(attempt(record, blend.name, Series(pool)))
        if blend.name in study.pathway_targets:
            records += [attempt(record, blend.name, Series(pool, p)) for p in pathways]
    if pending:
        raise Pending
    return records, members
