"""Progress of long runs on stderr: a tqdm bar on a terminal, one summary line otherwise.

The bar appears only once a run has taken :data:`BAR_DELAY_S` seconds, so short
runs stay quiet; every run ends with one line saying how many draws it made and
how long they took. ``quiet`` silences both.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

BAR_DELAY_S = 1.0


@contextmanager
def draw_progress(
    total_draws: int, *, stream: TextIO | None = None, quiet: bool = False, label: str = "uqenergy"
) -> Iterator[Callable[[int], None]]:
    """Yield a callback taking the number of draws just done (what ``run.simulate`` reports per chunk)."""
    stream = sys.stderr if stream is None else stream
    if quiet:
        yield lambda draws: None
        return
    start = time.perf_counter()
    done = 0
    bar = (
        tqdm(
            total=total_draws,
            desc=label,
            unit=" draws",
            unit_scale=True,
            file=stream,
            delay=BAR_DELAY_S,
            leave=False,
            dynamic_ncols=True,
        )
        if stream.isatty()
        else None
    )

    def advance(draws: int) -> None:
        nonlocal done
        done += draws
        if bar is not None:
            bar.update(draws)

    try:
        yield advance
    finally:
        if bar is not None:
            bar.close()
    print(f"{label}: {done:,} draws in {elapsed(time.perf_counter() - start)}", file=stream)


def elapsed(seconds: float) -> str:
    """A duration as a reader wants it: ``under 0.1 s``, ``2.3 s``, ``4 min 05 s``."""
    if seconds < 0.1:
        return "under 0.1 s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
