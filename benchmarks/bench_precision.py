"""Time to precision: whole processes that reach a stated MCSE of the blend median, side by side.

Usage: python benchmarks/bench_precision.py [--target 0.002] [--repeat 2] [--max-draws 4000000]

The figure is the median of ``paper_traditional``'s untrimmed top-3 blend (``blend``, baseline),
and the target an MCSE of ``--target`` times it (default 0.2%). Pilots in this process find the
draws each design needs: plain Monte Carlo's from a pilot's MCSE (it falls as 1 / sqrt(draws));
randomised quasi-Monte Carlo's (``design = "rqmc"``, 16 replicates) by doubling the replicates'
length until the MCSE from the replicates meets the target. Then, as whole processes, best of
``--repeat`` (CPU and wall):

- the bare numpy script (``bare_numpy.py``) at plain Monte Carlo's draws;
- ``uqenergy run`` with plain Monte Carlo at those draws;
- ``uqenergy run`` with the adaptive design (``relative_tolerance`` = 2 x target: it stops when
  every figure of every series, not only the blend median, has 2 MCSE within it);
- ``uqenergy run`` with ``design = "rqmc"`` at its draws.

Each line gives the blend median's MCSE reached (from summary.json; none for the bare script).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from bench_core import seconds  # noqa: E402
from uqenergy.analyses.run import run_study  # noqa: E402
from uqenergy.config.files import resolve  # noqa: E402
from uqenergy.config.study import load_study  # noqa: E402

REPLICATES = 16


def blend_median(records: list[dict]) -> tuple[float, float]:
    record = next(r for r in records if r["series"] == "blend" and r["pathway"] == "baseline")
    return record["median"], record["mcse_median"]


def study_file(folder: Path, name: str, intervals: str) -> Path:
    """``paper_traditional`` renamed, with an ``[intervals]`` table."""
    text = resolve("paper_traditional", "studies").read_text().replace('name = "paper_traditional"', f'name = "{name}"')
    path = folder / f"{name}.toml"
    path.write_text(text + "\n[intervals]\n" + intervals)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.002, help="MCSE of the blend median / the median")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--max-draws", type=int, default=4_000_000, help="the adaptive run's most draws")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; target MCSE {args.target:.2%}")

    study = load_study("paper_traditional")
    pilot = 2**18
    median, mcse = blend_median(run_study(replace(study, draws=pilot)).records)
    goal = args.target * median
    plain_draws = math.ceil(pilot * (mcse / goal) ** 2 / 1000) * 1000
    quasi = replace(study, intervals=replace(study.intervals, design="rqmc", replicates=REPLICATES))
    length = 2**6
    while True:
        median_q, mcse_q = blend_median(run_study(replace(quasi, draws=REPLICATES * length)).records)
        if mcse_q <= args.target * median_q or REPLICATES * length >= args.max_draws:
            break
        length *= 2
    quasi_draws = REPLICATES * length
    print(
        f"pilots: plain Monte Carlo needs {plain_draws:,} draws per model (pilot MCSE {mcse / median:.3%} at "
        f"{pilot:,}); rqmc {quasi_draws:,} ({REPLICATES} x {length:,}; MCSE {mcse_q / median_q:.3%})"
    )

    python = sys.executable
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        adaptive = study_file(folder, "adaptive", f"relative_tolerance = {2 * args.target}\nbatch_draws = 100_000\n")
        rqmc = study_file(folder, "rqmc", f'design = "rqmc"\nreplicates = {REPLICATES}\n')
        runs = {
            f"bare numpy script, plain Monte Carlo, {plain_draws:,} draws": [
                python,
                str(HERE / "bare_numpy.py"),
                str(plain_draws),
            ],
            f"uqenergy run, plain Monte Carlo, {plain_draws:,} draws": [
                "paper_traditional",
                "--draws",
                str(plain_draws),
            ],
            f"uqenergy run, adaptive (2 MCSE <= {2 * args.target:.1%} of every figure)": [
                str(adaptive),
                "--draws",
                str(args.max_draws),
            ],
            f"uqenergy run, rqmc, {quasi_draws:,} draws": [str(rqmc), "--draws", str(quasi_draws)],
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        reached: dict[str, str] = {}
        for _ in range(args.repeat):
            for name, command in runs.items():
                out = folder / "out"
                if command[0] != python:
                    command = [python, "-m", "uqenergy", "run", *command, "--out", str(out), "--quiet", "--force"]
                times[name].append(seconds(command, env))
                if command[-1] == "--force":
                    records = json.loads((out / "summary.json").read_text())
                    m, s = blend_median(records)
                    reached[name] = f"blend median MCSE {s / m:.3%} at {records[0]['draws']:,} draws per model"
        for name, runs_ in times.items():
            wall, cpu = (min(t[i] for t in runs_) for i in (0, 1))
            spread = f"{min(t[1] for t in runs_):.2f}-{max(t[1] for t in runs_):.2f}"
            print(f"{name}: CPU best {cpu:.2f} s ({spread}), wall best {wall:.2f} s; {reached.get(name, '-')}")
    print(f"after, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
