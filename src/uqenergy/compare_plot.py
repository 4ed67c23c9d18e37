"""Chart of published estimates placed on our distributions (log energy axis)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

VERDICT_COLOURS = {"below": "tab:blue", "within": "tab:green", "above": "tab:red"}


def plot_estimates(records: list[dict], path: Path, details: list[dict] = ()) -> Path:
    """One row per estimate: our P5-P95 and median for its scenario and boundary, and the estimate.

    Our quantiles are recovered from the record's ratios (P95 = value / ratio_p5,
    median = value / ratio_median, P5 = value / ratio_p95). ``details`` (the
    estimates.json records) add each estimate's published range and mark
    unverified figures with a hollow marker.
    """
    info = {d["estimate_id"]: d for d in details}
    figure = Figure(figsize=(8.5, 0.38 * len(records) + 2.2))
    ax = figure.add_subplot()
    for row, r in enumerate(reversed(records)):
        value, d = r["value_wh"], info.get(r["estimate_id"], {})
        ax.plot([value / r["ratio_p95"], value / r["ratio_p5"]], [row, row], color="0.75", linewidth=6, solid_capstyle="butt")
        ax.plot([value / r["ratio_median"]] * 2, [row - 0.3, row + 0.3], color="0.2", linewidth=1.5)
        if d.get("value_low_wh") is not None:
            ax.plot([d["value_low_wh"], d["value_high_wh"]], [row, row], color=VERDICT_COLOURS[r["verdict"]], linewidth=1)
        colour = VERDICT_COLOURS[r["verdict"]]
        ax.plot([value], [row], marker="o", markersize=7, color=colour,
                markerfacecolor=colour if d.get("verified", True) else "white")
    no_pue = {i for i, d in info.items() if d.get("boundary", "datacenter") != "datacenter"}
    labels = [f"{r['estimate_id']} ({r['scenario']}{', no PUE' if r['estimate_id'] in no_pue else ''})" for r in reversed(records)]
    ax.set_yticks(range(len(records)), labels, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("energy per query (Wh, log scale)")
    ax.set_ylim(-0.7, len(records) - 0.3)
    ax.grid(axis="x", which="both", alpha=0.3)
    legend = [Line2D([], [], color="0.75", linewidth=6, label=f"ours: P5-P95 ({records[0]['series']})"),
              Line2D([], [], color="0.2", linewidth=1.5, label="ours: median"),
              *(Line2D([], [], marker="o", linestyle="", color=c, label=f"estimate {v} our 90%") for v, c in VERDICT_COLOURS.items()),
              Line2D([], [], marker="o", linestyle="", color="0.3", markerfacecolor="white", label="unverified figure")]
    ax.legend(handles=legend, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    return path
