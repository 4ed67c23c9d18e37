"""Indices of the mean energy per query against the inner draws behind each design row, with common
random numbers (every row takes the same inner draws: what ``uqenergy sobol`` does) and with fresh
inner draws per row. Results in docs/sensitivity.md ("Sobol of the mean and of the fleet total").

    PYTHONPATH=src python benchmarks/sobol_inner_draws.py [BASE_SAMPLES]
"""

import sys
import time
from dataclasses import replace

import numpy as np

from uqenergy.analyses.sensitivity import analyse
from uqenergy.analyses.sensitivity_study import (
    SEED_KEY,
    _groups,
    first_block_wh,
    mean_evaluator,
    mean_factors,
    mix_factors,
)
from uqenergy.analyses.series import InMemory, series_members
from uqenergy.config.study import load_study
from uqenergy.engine.backend import Backend
from uqenergy.engine.per_query import study_data

SHOWN = ("pathway_model", "output_length_scale", "throughput_z", "pue")


def main(base_samples: int) -> None:
    study = load_study("two_level_traditional")
    members = series_members(study, "blend", InMemory(first_block_wh(study, study_data(study))))
    factors = mean_factors(study, members) + mix_factors(study, "blend", members)
    groups = _groups(study.sobol.groups, factors, members)
    options = replace(study.sobol.options, base_samples=(base_samples,))
    print(f"two_level_traditional, blend, mean_energy_wh, {base_samples} base samples: ST (± 95% CI)")
    print(f"{'inner draws':>11} {'inner draws per row':<20} " + " ".join(f"{f:>22}" for f in SHOWN) + "   sum ST    s")
    with Backend("local") as backend:
        for inner in (25, 100, 400, 1600):
            for common in (True, False):
                start = time.perf_counter()
                evaluate = mean_evaluator(
                    replace(study, sobol=replace(study.sobol, inner_draws=inner)),
                    "blend",
                    members,
                    factors,
                    backend,
                    common=common,
                )
                seed = np.random.SeedSequence(study.seed, spawn_key=(SEED_KEY, 0))
                records = analyse(factors, groups, evaluate, options, seed).records
                st = {r["factor"]: r for r in records}
                total = sum(r["ST"] for r in records if not r["factor"].startswith("group:"))
                cells = " ".join(f"{st[f]['ST']:>14.3f} ± {st[f]['ST_conf']:.3f}" for f in SHOWN)
                kind = "common" if common else "fresh per row"
                print(f"{inner:>11} {kind:<20} {cells} {total:8.3f} {time.perf_counter() - start:5.0f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2048)
