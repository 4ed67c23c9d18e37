"""The bare numpy script that ``bench_core.py`` sets a whole ``uqenergy run`` against: the same job, nothing else.

Usage: python benchmarks/bare_numpy.py [DRAWS_PER_MODEL]   (default 2,000,000)

Five models with the paper's throughput fits and the same priors, the three pathways and their
product, both top-3 blends (untrimmed, and trimmed to P5-P95 then P10-P90), percentiles and means.
Only numpy is imported.
"""

from __future__ import annotations

import sys

import numpy as np

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


if __name__ == "__main__":
    bare_numpy(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000)
