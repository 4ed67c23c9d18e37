"""Global sensitivity indices on SALib: Sobol' (default), Morris screening, PAWN; factors and groups.

A model enters as ``evaluate(unit) -> {target: y}``: ``unit`` is an (n, k) design
on the unit cube, one column per factor, that the caller maps through each
factor's inverse CDF (so any prior, categorical ones included, is a factor).
Unit coordinates are kept inside [EDGE, 1 - EDGE] so that no inverse CDF
returns an infinite value.

- ``sobol``: Saltelli's design (A, B from a scrambled Sobol' sequence in 2k
  dimensions; AB_j is A with factor j, or all columns of group j, taken from B)
  and SALib's estimators of first-order S1, total ST and second-order S2 with
  bootstrap CIs (Saltelli et al. 2010, Comput. Phys. Commun. 181:259,
  doi:10.1016/j.cpc.2009.09.018). S1 and ST use one resample index and one
  variance per resample for all factors, several times faster than SALib's
  driver. Groups share A and B with the factors.
- ``morris``: elementary effects on a 4-level grid placed at the midpoints of
  four equiprobable cells, mu* with bootstrap CIs, grouped trajectories for groups
  (Campolongo et al. 2007, Environ. Model. Softw. 22:1509).
- ``pawn``: the median Kolmogorov-Smirnov distance between conditional and
  unconditional output distributions (Pianosi & Wagener 2015, Environ. Model.
  Softw. 67:1), a moment-independent measure, with bootstrap CIs; factors only.

Indices are reported at each base sample size in turn until every CI half-width
of a target is below the tolerance (Morris: below tolerance * the largest mu*).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from SALib.analyze import morris as morris_analyze
from SALib.analyze import sobol as sobol_analyze
from SALib.sample import morris as morris_sample
from scipy import stats
from scipy.stats import qmc

from uqenergy.config.sobol import Options

#: The index each method ranks factors by, and the indices it plots.
MAIN_INDEX = {"sobol": "ST", "morris": "mu_star", "pawn": "PAWN"}
EDGE = 2.0**-40
MORRIS_LEVELS = 4
PAWN_SLIDES = 10
GROUP_PREFIX = "group:"

Evaluate = Callable[[np.ndarray], Mapping[str, np.ndarray]]


@dataclass
class Indices:
    """Flat records per (base_samples, target, factor or group) and, for Sobol, second-order pairs."""

    records: list[dict]
    second_order: list[dict]


class _Design:
    """A design grown to larger base sample sizes; keeps the outputs of every row evaluated so far."""

    def __init__(
        self,
        factors: Sequence[str],
        groups: Mapping[str, Sequence[str]],
        options: Options,
        seed: np.random.SeedSequence,
    ):
        self.factors, self.groups, self.options = list(factors), dict(groups), options
        # separate streams: the design does not depend on how many bootstrap draws came before
        self.rng, self.bootstrap_rng = (np.random.default_rng(_child(seed, i)) for i in range(2))
        self.n = 0
        self.outputs: dict[str, list[np.ndarray]] = {}

    def extend(self, n: int, evaluate: Evaluate) -> None:
        rows = np.clip(self._rows(n - self.n), EDGE, 1.0 - EDGE)
        for target, y in evaluate(rows).items():
            self.outputs.setdefault(target, []).append(np.asarray(y, dtype=float).ravel())
        self.n = n

    def _rows(self, m: int) -> np.ndarray:
        raise NotImplementedError

    def indices(self, target: str) -> tuple[list[dict], list[dict]]:
        raise NotImplementedError

    def _conf(self) -> float:
        return float(stats.norm.ppf(0.5 + self.options.conf_level / 2))


class _Saltelli(_Design):
    """A, B, then AB_j (and BA_j for second order) for every factor, then for every group."""

    def __init__(self, *args):
        super().__init__(*args)
        k = len(self.factors)
        self.engine = qmc.Sobol(2 * k, scramble=True, rng=self.rng)
        column = {name: j for j, name in enumerate(self.factors)}
        self.sets = [[j] for j in range(k)] + [[column[f] for f in members] for members in self.groups.values()]
        self.blocks = 2 + len(self.sets) * (2 if self.options.second_order else 1)

    def _rows(self, m: int) -> np.ndarray:
        k = len(self.factors)
        base = self.engine.random(m)
        a, b = base[:, :k], base[:, k:]
        crossed = []
        for into, source in [(a, b), (b, a)][: 1 + self.options.second_order]:
            for columns in self.sets:
                mixed = into.copy()
                mixed[:, columns] = source[:, columns]
                crossed.append(mixed)
        return np.concatenate([a, b, *crossed])

    def indices(self, target: str) -> tuple[list[dict], list[dict]]:
        y = np.concatenate([chunk.reshape(self.blocks, -1) for chunk in self.outputs[target]], axis=1)
        y = (y - y.mean()) / y.std()  # centred and scaled, as SALib does, for stable estimators
        k, sets = len(self.factors), len(self.sets)
        a, b, ab, ba = y[0], y[1], y[2 : 2 + sets], y[2 + sets :]
        r = self.bootstrap_rng.integers(len(a), size=(len(a), self.options.resamples))  # one index for all
        ar, br = a[r], b[r]
        variance, variance_r = np.var(np.r_[a, b]), np.var(np.r_[ar, br], axis=0)
        z = self._conf()
        labels = self.factors + [GROUP_PREFIX + g for g in self.groups]
        records = []
        for j, label in enumerate(labels):
            s1, st = first_and_total_order(a, ab[j], b, variance)
            s1_r, st_r = first_and_total_order(ar, ab[j][r], br, variance_r)
            records.append(
                {"factor": label, "S1": s1, "S1_conf": z * s1_r.std(ddof=1), "ST": st, "ST_conf": z * st_r.std(ddof=1)}
            )
        pairs = []
        for part in (range(k), range(k, sets)) if self.options.second_order else ():
            for j, m in combinations(part, 2):
                boot = sobol_analyze.second_order(ar, ab[j][r], ab[m][r], ba[j][r], br)
                pairs.append(
                    {
                        "factor": labels[j],
                        "factor_2": labels[m],
                        "S2": sobol_analyze.second_order(a, ab[j], ab[m], ba[j], b),
                        "S2_conf": z * boot.std(ddof=1),
                    }
                )
        return records, pairs


def first_and_total_order(a: np.ndarray, ab: np.ndarray, b: np.ndarray, variance) -> tuple[np.ndarray, np.ndarray]:
    """First-order (Saltelli et al. 2010) and total-order (Jansen 1999) estimators along axis 0,
    as in ``SALib.analyze.sobol``, with the output variance computed once by the caller."""
    d = ab - a
    return np.mean(b * d, axis=0) / variance, 0.5 * np.mean(d * d, axis=0) / variance


class _Morris(_Design):
    """Trajectories for the factors and, separately, grouped trajectories for the groups."""

    def __init__(self, *args):
        super().__init__(*args)
        low = 1.0 / (2 * MORRIS_LEVELS)
        problem = {"num_vars": len(self.factors), "names": self.factors, "bounds": [[low, 1 - low]] * len(self.factors)}
        group_of = {f: g for g, members in self.groups.items() for f in members}
        self.problems = [(problem, "")]
        if self.groups:
            self.problems.append((problem | {"groups": [group_of.get(f, f) for f in self.factors]}, GROUP_PREFIX))
        self.x: list[list[np.ndarray]] = [[] for _ in self.problems]

    def _rows(self, m: int) -> np.ndarray:
        for x, (problem, _) in zip(self.x, self.problems):
            x.append(morris_sample.sample(problem, m, num_levels=MORRIS_LEVELS, seed=self.rng))
        return np.concatenate([x[-1] for x in self.x])

    def indices(self, target: str) -> tuple[list[dict], list[dict]]:
        sizes = [[len(chunk) for chunk in x] for x in self.x]
        split = [np.split(y, np.cumsum([s[c] for s in sizes])[:-1]) for c, y in enumerate(self.outputs[target])]
        records = []
        for p, (problem, prefix) in enumerate(self.problems):
            x, y = np.concatenate(self.x[p]), np.concatenate([parts[p] for parts in split])
            s = morris_analyze.analyze(
                problem,
                x,
                y,
                num_resamples=self.options.resamples,
                conf_level=self.options.conf_level,
                num_levels=MORRIS_LEVELS,
                seed=self.bootstrap_rng,
            )
            for j, name in enumerate(s["names"]):
                record = {
                    "factor": prefix + str(name),
                    "mu_star": s["mu_star"][j],
                    "mu_star_conf": s["mu_star_conf"][j],
                }
                if np.isfinite(s["sigma"][j]):  # SALib leaves sigma undefined for groups of several factors
                    record["sigma"] = s["sigma"][j]
                records.append(record)
        return records, []


class _Pawn(_Design):
    """Plain Monte Carlo rows; the PAWN median KS statistic, bootstrapped over rows."""

    def __init__(self, *args):
        super().__init__(*args)
        self.x = np.empty((0, len(self.factors)))

    def _rows(self, m: int) -> np.ndarray:
        self.x = np.concatenate([self.x, self.rng.random((m, len(self.factors)))])
        return self.x[-m:]

    def indices(self, target: str) -> tuple[list[dict], list[dict]]:
        y = np.concatenate(self.outputs[target])
        estimate = pawn_median_ks(self.x, y)
        resampled = (self.bootstrap_rng.integers(0, len(y), len(y)) for _ in range(self.options.resamples))
        boot = np.stack([pawn_median_ks(self.x[rows], y[rows]) for rows in resampled])
        conf = self._conf() * boot.std(axis=0, ddof=1)
        return [{"factor": f, "PAWN": estimate[j], "PAWN_conf": conf[j]} for j, f in enumerate(self.factors)], []


def pawn_median_ks(x: np.ndarray, y: np.ndarray, slides: int = PAWN_SLIDES) -> np.ndarray:
    """PAWN index per column of ``x``: the median over equal-count slides of x of the KS distance
    between the output's distribution in the slide and overall (Pianosi & Wagener 2015).

    The statistic of SALib's ``pawn.analyze``, vectorised: SALib calls scipy's
    ``ks_2samp`` once per slide, too slow to bootstrap.
    """
    n = len(y)
    order = np.argsort(y, kind="stable")
    ends = np.r_[y[order][1:] != y[order][:-1], True]  # ECDFs are compared after each run of tied outputs
    overall = (np.arange(1, n + 1) / n)[ends]
    ranks = np.argsort(np.argsort(x, axis=0, kind="stable"), axis=0, kind="stable")
    slide = np.minimum(ranks * slides // n, slides - 1)[order]
    indices = []
    for j in range(x.shape[1]):
        member = slide[:, j] == np.arange(slides)[:, None]
        conditional = np.cumsum(member, axis=1)[:, ends] / member.sum(axis=1, keepdims=True)
        indices.append(np.median(np.abs(conditional - overall).max(axis=1)))
    return np.array(indices)


DESIGNS = {"sobol": _Saltelli, "morris": _Morris, "pawn": _Pawn}


def converged(records: Sequence[dict], method: str, tolerance: float) -> bool:
    """Every CI half-width under the tolerance (Morris: under tolerance * the largest mu*)."""
    if method == "morris":
        scale = max((r["mu_star"] for r in records), default=0.0)
        return all(r["mu_star_conf"] <= tolerance * scale for r in records)
    return all(value <= tolerance for r in records for key, value in r.items() if key.endswith("_conf"))


def analyse(
    factors: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    evaluate: Evaluate,
    options: Options,
    seed: np.random.SeedSequence,
) -> Indices:
    """Indices of every target of ``evaluate`` at each base sample size until all targets converge.

    ``groups`` maps a group name to its factors (each factor in at most one
    group; factors outside every group still get their own indices). Records:
    ``target``, ``factor`` (a factor name or ``group:NAME``), the method's
    indices with ``*_conf`` CI half-widths, ``base_samples`` and ``converged``.
    """
    if options.method == "pawn" and groups:
        raise ValueError("PAWN has no grouped form; pass groups={}")
    design = DESIGNS[options.method](factors, groups, options, seed)
    records, pairs = [], []
    for n in options.base_samples:
        design.extend(n, evaluate)
        done = []
        for target in design.outputs:
            level, level_pairs = design.indices(target)
            ok = converged(level, options.method, options.tolerance)
            done.append(ok)
            common = {"base_samples": n, "converged": ok}
            records += [{"target": target, **_floats(r), **common} for r in level]
            pairs += [{"target": target, **_floats(r), "base_samples": n} for r in level_pairs]
        if all(done):
            break
    return Indices(records, pairs)


def _child(seed: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """The ``index``-th child stream of ``seed``, the same however often it is asked for."""
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, index))


def _floats(record: dict) -> dict:
    return {k: v if isinstance(v, str) else float(v) for k, v in record.items()}
