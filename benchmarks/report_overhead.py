"""How much the report adds to the default ``uqenergy run``: CPU and wall seconds per phase.

Run from the worktree: ``PYTHONPATH=src python benchmarks/report_overhead.py [STUDY]``.
CPU time (``time.process_time``) is printed beside wall time because wall time
swings with other load on the machine.
"""

import sys
import tempfile
import time
from pathlib import Path


def timed(label: str, action):
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    print(f"{label:<34} cpu {time.process_time() - cpu:6.2f} s   wall {time.perf_counter() - wall:6.2f} s")
    return result


def main(study: str = "paper_traditional") -> None:
    from uqenergy.analyses.run import run_study
    from uqenergy.outputs.files import write_json, write_netcdf

    result = timed("run_study", lambda: run_study(study))
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        timed(
            "write summary.json + samples.nc",
            lambda: (
                write_json(out / "summary.json", result.records),
                write_netcdf(out / "samples.nc", result.samples),
            ),
        )
        report = timed(
            "import uqenergy.outputs.report (matplotlib)", lambda: __import__("uqenergy.outputs.report").report
        )
        written = timed("write_report (figures, md, html)", lambda: report.write_report(out))
        print(f"{len(written) - 2} figures, report.html {(out / 'report.html').stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main(*sys.argv[1:])
