"""Speed and memory of the two-level design: 2,000 outer (epistemic) x 100,000 inner (aleatory) draws.

Usage: python benchmarks/bench_two_level.py [OUTER] [INNER] [WORKERS]   (default 2000 100000, all cores)

Goal (issue 4): the two-level traditional study (5 models, throughput uncertainty on) at
2,000 x 100,000 draws in under 60 s on 2 cores, memory bounded by the chunk size, not the draws.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from datetime import date

from uqenergy.analyses.two_level import two_level, two_level_records
from uqenergy.config.study import load_study


def main_bench(outer: int, inner: int, workers: int | None) -> None:
    study = load_study("two_level_traditional")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {date.today()}, load average {os.getloadavg()[0]:.1f}, "
        f"workers {workers or os.cpu_count()}"
    )
    start = time.perf_counter()
    result = two_level(study, outer=outer, inner=inner, workers=workers)
    design_s = time.perf_counter() - start
    records = two_level_records(study, result)
    total_s = time.perf_counter() - start
    cpu_s = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queries = outer * inner * len(study.models)
    print(f"two-level: {outer:,} outer x {inner:,} inner x {len(study.models)} models = {queries:,} per-query energies")
    print(
        f"design {design_s:.1f} s + records {total_s - design_s:.1f} s = {total_s:.1f} s wall "
        f"(goal < 60 s), {cpu_s:.1f} s CPU, peak memory {peak_mb:,.0f} MB"
    )
    blend = {r["quantity"]: r for r in records if r["series"] == "blend" and r["pathway"] == "baseline"}
    for quantity, r in blend.items():
        print(
            f"blend {quantity}: median {r['median']:.4g} +- {r['mcse_median']:.2g} Wh, 90% {r['p5']:.3g}-{r['p95']:.3g}"
        )


if __name__ == "__main__":
    outer, inner, workers = ([int(a) for a in sys.argv[1:]] + [2000, 100_000, 0][len(sys.argv) - 1 :])[:3]
    main_bench(outer, inner, workers or None)
