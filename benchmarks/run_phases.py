"""Where a whole ``uqenergy run`` spends its CPU time, phase by phase, in one process (issue 17).

Usage: python benchmarks/run_phases.py [DRAWS_PER_MODEL]   (default 2,000,000)

Does what ``uqenergy run paper_traditional --draws N`` does, in the same order, and prints the CPU
time (``time.process_time``) of each phase: the imports (each library the first time it is
needed), reading the study, drawing and evaluating, the summaries, each output file, and the
report's parts. ``bench_core.py`` times the whole process beside the bare numpy script; this
says what the difference consists of.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import time
from pathlib import Path

PHASES: list[tuple[str, float]] = []


def timed(name: str, function, *args):
    start = time.process_time()
    value = function(*args)
    PHASES.append((name, time.process_time() - start))
    return value


def main(draws: int) -> None:
    for module in (
        "numpy",
        "uqenergy.cli",
        "uqenergy.config.study",
        "scipy.special",
        "xarray",
        "uqenergy.analyses.run",
        "h5py",
        "uqenergy.outputs.files",
        "matplotlib.figure",
        "uqenergy.outputs.report",
    ):
        timed(f"import {module}", importlib.import_module, module)
    from uqenergy.analyses.inference import inference_groups
    from uqenergy.analyses.summaries import finish, summary_records
    from uqenergy.config.study import load_study
    from uqenergy.engine.simulate import simulate
    from uqenergy.outputs import report
    from uqenergy.outputs.files import write_inference, write_json, write_netcdf

    study = timed("read the study and priors", lambda: load_study("paper_traditional", draws=draws))
    energy_wh, divisors, saved = timed("draw and evaluate", simulate, study)
    summary = timed("summaries (15 distributions)", summary_records, study, energy_wh, divisors)
    result = timed("result and provenance", finish, study, summary, saved)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        timed("write summary.json", write_json, folder / "summary.json", result.records)
        timed("write samples.nc", write_netcdf, folder / "samples.nc", result.samples)
        groups = timed("inference groups", inference_groups, result.samples)
        timed(
            "write inference.nc",
            write_inference,
            folder / "inference.nc",
            groups,
            folder / "samples.nc",
            result.samples,
        )
        out = timed("report: read the folder back", report.read_output, folder)
        images = timed("report: figures", report.make_figures, out, folder / "figures")
        blocks = timed("report: tables", report.report_blocks, out, images)
        timed("report: markdown and html", lambda: (report.to_markdown(blocks), report.to_html(blocks, folder)))
    total = sum(seconds for _, seconds in PHASES)
    for name, seconds in PHASES:
        print(f"{name:<40} {seconds:6.2f} s")
    print(f"{'total (CPU, this process)':<40} {total:6.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000)
