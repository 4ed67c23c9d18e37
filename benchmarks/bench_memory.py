"""Peak memory and wall time of a 10^8-draw run, measured by GNU time around the command line.

Usage: python benchmarks/bench_memory.py [DRAWS] [SCHEDULER]   (default 100,000,000 draws, local)

Goal (issue 8): `uqenergy run benchmarks/one_model_1e8.toml` (one model, three pathways and their
combination: five distributions of 10^8 draws) completes with peak RSS under 1.5 GB. Needs
/usr/bin/time (Debian package `time`).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

STUDY = Path(__file__).with_name("one_model_1e8.toml")
GOAL_MB = 1536


def measure(draws: int, scheduler: str) -> dict[str, str]:
    """Run the study under ``/usr/bin/time -v``; its report lines by name."""
    src = Path(__file__).resolve().parents[1] / "src"
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            "/usr/bin/time",
            "-v",
            sys.executable,
            "-m",
            "uqenergy",
            "run",
            str(STUDY),
            "--draws",
            str(draws),
            "--scheduler",
            scheduler,
            "--out",
            f"{tmp}/out",
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        passes = subprocess.run(
            [
                sys.executable,
                "-c",
                "import xarray as xr; print(xr.open_dataset("
                f"'{tmp}/out/samples.nc').attrs.get('streamed_passes', '0 (in memory)'))",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    report = dict(line.strip().rsplit(": ", 1) for line in done.stderr.splitlines() if line.startswith("\t"))
    report["passes"] = passes
    report["headline"] = done.stdout.strip().splitlines()[0]
    return report


def main_bench(draws: int, scheduler: str) -> None:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {date.today()}, load average {os.getloadavg()[0]:.1f}, scheduler {scheduler}"
    )
    report = measure(draws, scheduler)
    peak_mb = int(report["Maximum resident set size (kbytes)"]) / 1024
    print(
        f"{draws:,} draws: wall {report['Elapsed (wall clock) time (h:mm:ss or m:ss)']}, CPU "
        f"{float(report['User time (seconds)']) + float(report['System time (seconds)']):.1f} s, "
        f"peak RSS {peak_mb:,.0f} MB (goal < {GOAL_MB:,} MB: {'met' if peak_mb < GOAL_MB else 'missed'}), "
        f"passes {report['passes']}"
    )
    print(report["headline"])


if __name__ == "__main__":
    main_bench(int(sys.argv[1]) if len(sys.argv) > 1 else 10**8, sys.argv[2] if len(sys.argv) > 2 else "local")
