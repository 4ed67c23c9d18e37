"""Speed of the energy core and of a whole run, beside a bare numpy script doing the same job.

Usage: python benchmarks/bench_core.py [DRAWS_PER_MODEL] [SCHEDULER]   (default 2,000,000, local)

Goal (issue 2): a whole `uqenergy run studies/paper_traditional.toml --draws 2000000` costs at
most 3x the bare script, and the run processes at least 1 M draws per second on one core.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time

import numpy as np

from uqenergy.cli import main
from uqenergy.config.study import load_study
from uqenergy.engine import energy
from uqenergy.engine.throughput import study_fits

MODELS = {  # (b0, b1, b2, tps_max, node kW) of the paper's fits, for the bare script
    "DeepSeek-R1": (10.5593, -0.53939, -0.0048776, 1300.0, 12.8),
    "Llama 3.1 405B": (9.76196, -0.585439, 0.226564, 4572.23, 10.2),
    "Llama-3.1 Nemotron Ultra 253B": (np.log(5200.0), 0.0, 0.0, 5200.0, 10.2),
    "Mixtral 8x22B": (11.2254, -0.553024, 0.251667, 25150.03, 10.2),
    "Llama 3.1 70B": (10.8238, -0.562283, 0.262075, 17463.99, 10.2),
}


def lognormal(rng, p5, p95, n):
    sigma = (np.log(p95) - np.log(p5)) / (2 * 1.6448536)
    return rng.lognormal(np.log(p5) + 1.6448536 * sigma, sigma, n)


def bare_numpy(draws: int) -> None:
    """The same draws and arithmetic, written as one plain numpy script."""
    rng = np.random.default_rng(42)
    energies = {}
    for name, (b0, b1, b2, cap, kw) in MODELS.items():
        tokens = np.round(rng.exponential(300 / np.log(2), draws))
        tps = np.minimum(np.exp(b0 + b1 * np.log(500) + b2 * np.log(np.maximum(tokens, 1))), cap)
        e = lognormal(rng, 1.05, 1.6, draws) * kw * lognormal(rng, 0.4, 0.9, draws) * tokens / tps / 3.6
        divisors = [lognormal(rng, *b, draws) for b in ((1.5, 10), (1.5, 5), (1.5, 2.5))]
        energies[name] = (e, divisors)
        np.percentile(e, [5, 25, 50, 75, 95]), e.mean()
    top = sorted(energies, key=lambda k: -np.median(energies[k][0]))[:3]
    for trims in ([], [(5, 95), (10, 90)]):
        pools = []
        for k in top:
            e, divisors = energies[k]
            keep = np.ones(draws, bool)
            for lo, hi in trims:
                a, b = np.percentile(e[keep], [lo, hi])
                keep &= (e >= a) & (e <= b)
            pools.append([e[keep]] + [e[keep] / d[keep] for d in divisors] + [e[keep] / np.prod(divisors, 0)[keep]])
        for series in zip(*pools):
            pooled = np.concatenate(series)
            np.percentile(pooled, [5, 25, 50, 75, 95]), pooled.mean()


def core_draws_per_s(draws: int) -> float:
    from uqenergy.engine.sampling import monte_carlo_inputs

    study = load_study("paper_traditional", draws=draws)
    inputs = next(monte_carlo_inputs(study.priors, study.factors, study.models, draws, 1))
    fits = study_fits(study)
    start = time.perf_counter()
    energy.evaluate(inputs, fits)
    return inputs.sizes["draw"] * len(study.models) / (time.perf_counter() - start)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main_bench(draws: int, scheduler: str = "local") -> None:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"core: {core_draws_per_s(min(draws, 1_000_000)) / 1e6:.1f} M draws/s (energy.evaluate)")
    with tempfile.TemporaryDirectory() as tmp:
        run_s = timed(
            main,
            [
                "run",
                "paper_traditional",
                "--draws",
                str(draws),
                "--out",
                f"{tmp}/out",
                "--quiet",
                "--scheduler",
                scheduler,
            ],
        )
    bare_s = timed(bare_numpy, draws)
    total = draws * len(MODELS)
    print(
        f"whole run ({scheduler}): {run_s:.2f} s for {total:,} draws = {total / run_s / 1e6:.2f} M draws/s end to end"
    )
    print(f"bare numpy script: {bare_s:.2f} s; ratio run / bare = {run_s / bare_s:.2f} (goal <= 3)")


if __name__ == "__main__":
    main_bench(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000, sys.argv[2] if len(sys.argv) > 2 else "local")
