"""Time a Sobol analysis with 11 factors and 5 groups at 2^14 base samples, bootstrap CIs, on one core.

    PYTHONPATH=src python benchmarks/bench_sobol.py

Goal (issue 3): under 10 s. Prints the timing of study loading, design evaluation and analysis.
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from uqenergy.analyses.sensitivity_study import dominant, run_sensitivity  # noqa: E402
from uqenergy.config.study import load_study  # noqa: E402

STUDY = Path(__file__).with_name("sobol_11_factors.toml")

start = time.perf_counter()
study = load_study(STUDY)
loaded = time.perf_counter()
result = run_sensitivity(study)
done = time.perf_counter()

factors = {r["factor"] for r in result.records if not r["factor"].startswith("group:")}
groups = {r["factor"] for r in result.records} - factors
cpuinfo = Path("/proc/cpuinfo")
cpu = next(
    (
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
        if line.startswith("model name")
    ),
    platform.processor() or platform.machine(),
)
print(f"machine: {cpu}, Python {platform.python_version()}, 1 core")
print(
    f"{len(factors)} factors, {len(groups)} groups, base samples {result.records[0]['base_samples']}, "
    f"{result.records[0]['base_samples'] * (2 + len(factors) + len(groups)):,} model runs, 2 targets, "
    "100 bootstrap resamples"
)
print(
    f"load study {loaded - start:.2f} s; sobol design, evaluation and analysis {done - loaded:.2f} s; "
    f"total {done - start:.2f} s (goal < 10 s)"
)
for pair in dominant(result.records, "sobol"):
    for r in pair:
        print(f"  {r['target']:<14} {r['factor']:<18} ST {r['ST']:.3f} ± {r['ST_conf']:.3f}")
