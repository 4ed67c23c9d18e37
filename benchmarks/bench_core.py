"""A whole ``uqenergy run`` beside the bare numpy script doing the same job, both as whole processes.

Usage: python benchmarks/bench_core.py [--draws N] [--repeat R] [--scheduler S] [--src DIR ...]

Runs ``uqenergy run paper_traditional --draws N`` (5 models, 15 reported distributions, samples.nc,
inference.nc and the report) and ``benchmarks/bare_numpy.py N`` alternately, R times each, and prints
the best wall time, the spread and the ratio of the bests. Each ``--src`` is a ``src`` folder of
another checkout (e.g. a git worktree of an older commit), run in the same rounds for a before/after.

Goal (issue 17): the whole run at most 1.3x the bare script; output folder under 6 MB.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent


def seconds(command: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of a whole process; CPU time is less swayed by other load."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scheduler", default="local")
    parser.add_argument("--src", action="append", default=[], help="another checkout's src folder, also timed")
    args = parser.parse_args()
    sources = [str(HERE.parent / "src"), *args.src]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {date.today()}, load average {os.getloadavg()[0]:.1f}"
    )
    times: dict[str, list[tuple[float, float]]] = {"bare numpy script": []}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for src in sources:
                env = dict(os.environ, PYTHONPATH=src)
                out = Path(tmp) / "out"
                command = [sys.executable, "-m", "uqenergy", "run", "paper_traditional", "--draws", str(args.draws)]
                command += ["--out", str(out), "--quiet", "--scheduler", args.scheduler]
                times.setdefault(src, []).append(seconds(command, env))
                sizes[src] = folder_bytes(out)
            times["bare numpy script"].append(
                seconds([sys.executable, str(HERE / "bare_numpy.py"), str(args.draws)], dict(os.environ))
            )
    bare = [min(t[i] for t in times["bare numpy script"]) for i in (0, 1)]
    for name, runs in times.items():
        line = "; ".join(
            f"{kind} best {min(t[i] for t in runs):.2f} s ({min(t[i] for t in runs):.2f}-{max(t[i] for t in runs):.2f}"
            f" over {len(runs)}), ratio to bare {min(t[i] for t in runs) / bare[i]:.2f}"
            for i, kind in enumerate(("wall", "CPU"))
        )
        size = f"; output folder {sizes[name] / 1e6:.1f} MB (goal < 6)" if name in sizes else ""
        print(f"{'uqenergy run (' + name + ')' if name in sizes else name}: {line}{size}")
    print(f"after, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
