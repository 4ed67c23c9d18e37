"""Start-up time: ``import uqenergy``, ``uqenergy --help`` and ``uqenergy validate`` as whole processes, and which
heavy libraries they load (goal, issue 17: --help and validate under 0.3 s).

Usage: ``python benchmarks/bench_startup.py [--repeat N] [--src DIR]``; ``--src`` points at another checkout's
``src`` folder (e.g. an older commit in a git worktree) to measure it side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HEAVY = ("matplotlib", "arviz", "SALib", "dask", "scipy.stats", "xarray", "pandas", "numpy")
COMMANDS = {
    "import uqenergy": "import uqenergy",
    "uqenergy --help": "import sys; sys.argv = ['uqenergy', '--help']\n"
    "from uqenergy.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass",
    "uqenergy validate paper_traditional.toml": "from uqenergy.cli import main\n"
    "from uqenergy.config.files import resolve\nmain(['validate', '--quiet', str(resolve('paper_traditional', 'studies'))])",
}


def wall_seconds(code: str, env: dict, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def loaded(code: str, env: dict) -> list[str]:
    probe = code + f"\nimport sys; print(','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    last = out.stderr.splitlines()[-1] if out.stderr.strip() else ""
    return [m for m in last.split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--src", help="a src folder to put first on PYTHONPATH")
    args = parser.parse_args()
    env = dict(os.environ, **({"PYTHONPATH": args.src} if args.src else {}))
    bare = wall_seconds("pass", env, args.repeat)
    print(f"python -c pass: {bare:.3f} s (median of {args.repeat})")
    for name, code in COMMANDS.items():
        print(
            f"{name}: {wall_seconds(code, env, args.repeat):.3f} s; loads {', '.join(loaded(code, env)) or 'none of them'}"
        )


if __name__ == "__main__":
    main()
