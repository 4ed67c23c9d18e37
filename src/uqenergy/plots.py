"""Figures written as PNG files with matplotlib's Agg renderer (no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def plot_sobol(records: Sequence[dict], path: str | Path, indices: Sequence[str] = ("S1", "ST")) -> Path:
    """Bars of sensitivity indices with their CI half-widths as error bars, factors above groups.

    One panel per (setting, series) row and target column, each at the largest
    base sample size its records reach.
    """
    final: dict[tuple, int] = {}
    for r in records:
        key = (r.get("setting"), r["series"], r["target"])
        final[key] = max(final.get(key, 0), r["base_samples"])
    rows = list(dict.fromkeys(k[:2] for k in final))
    targets = list(dict.fromkeys(k[2] for k in final))
    panels = {k: [r for r in records if (r.get("setting"), r["series"], r["target"]) == k and r["base_samples"] == n]
              for k, n in final.items()}
    most = max(len(p) for p in panels.values())
    fig = Figure(figsize=(5.5 * len(targets), (0.3 * most + 1.2) * len(rows)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), len(targets), squeeze=False))
    height = 0.8 / len(indices)
    for (setting, series, target), chosen in panels.items():
        ax = axes[rows.index((setting, series)), targets.index(target)]
        y = np.arange(len(chosen))[::-1]
        for i, index in enumerate(indices):
            values = [r.get(index, np.nan) for r in chosen]
            conf = [r.get(f"{index}_conf", 0.0) for r in chosen]
            ax.barh(y + (i - (len(indices) - 1) / 2) * height, values, height, xerr=conf, capsize=2, label=index)
        ax.set_yticks(y, [r["factor"] for r in chosen], fontsize=8)
        ax.axvline(0, color="black", linewidth=0.6)
        status = "converged" if chosen[0]["converged"] else "not converged"
        where = f"{series}" + (f" [{setting}]" if setting else "")
        ax.set_title(f"{where}: {target}\nN = {chosen[0]['base_samples']}, {status}", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=110)
    return Path(path)
