"""Figures from plain records and arrays: one function per figure, each drawing on the axes it is given.

Every ``plot_*`` function takes the flat records of a result (and, where a shape
is drawn, plain arrays of draws), so a figure can be rebuilt from an output
folder alone; :func:`plot_distributions` also takes a study's result. Like
ArviZ's ``plot_*``, each draws on ``ax`` (one axes per panel) or, without one, on
a new pyplot figure, and returns the axes. Each has a ``*_layout`` function: its
panels, natural size, legend key and note, which :func:`lay_out` arranges on a
figure (the report adds a title and a source line naming the study and seed).
Colours are the Okabe-Ito colour-blind-safe palette (Okabe & Ito 2008,
https://jfly.uni-koeln.de/color/); every axis has units.

Energy axes are logarithmic: per-query energy spans three decades. Distributions
are drawn untrimmed; the only thing a log axis cannot show is a draw of exactly
0 Wh (a query with zero output tokens), which the figure's note counts.
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from uqenergy.analyses.results import StudyResult
from uqenergy.analyses.series import blend_definitions, series_draws

DPI = 150
WIDTH_IN = 9.0
FOOTER_LINE_IN = 0.17
FOOTER_CHARS_PER_IN = 16  # 8 pt text
LEGEND_ROW_IN = 0.26
LEGEND_COLUMNS = 4
GRID_POINTS = 400

#: Okabe-Ito colours, in the order series take them (yellow last: weak on white).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
PATHWAY_COLORS = {
    "baseline": "#000000",
    "model": "#0072B2",
    "serving": "#E69F00",
    "hardware": "#009E73",
    "routing": "#CC79A7",
    "combined": "#D55E00",
    "interventions": "#56B4E9",
}
UNIT_WORDS = {
    "wh": "Wh",
    "kwh": "kWh",
    "mwh": "MWh",
    "gwh": "GWh",
    "twh": "TWh",
    "per": "/",
    "day": "day",
    "year": "year",
    "query": "query",
    "ml": "mL",
    "l": "L",
    "m3": "m³",
    "g": "g",
    "t": "t",
}


def colors_for(names: Sequence[str], palette: Sequence[str] = OKABE_ITO) -> dict[str, str]:
    """A stable colour per distinct name, in first-seen order."""
    distinct = list(dict.fromkeys(names))
    return {name: palette[i % len(palette)] for i, name in enumerate(distinct)}


def unit_of(quantity: str) -> str:
    """The unit a quantity name ends in: ``energy_wh`` -> ``Wh``, ``energy_gwh_per_day`` -> ``GWh/day``."""
    words = quantity.lower().split("_")
    start = next((i for i, w in enumerate(words) if w in UNIT_WORDS and w != "per"), len(words))
    return "".join(UNIT_WORDS[w] for w in words[start:] if w in UNIT_WORDS) or "1"


def fmt(value: float) -> str:
    """Three significant figures, plain notation for everyday magnitudes (thousands with separators)."""
    if 1e3 <= abs(value) < 1e5:
        return f"{float(f'{value:.3g}'):,.0f}"
    return f"{value:.3g}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.2e}"


def log_density(values: np.ndarray, grid_log10: np.ndarray) -> np.ndarray:
    """Gaussian kernel density of log10(values) on an evenly spaced ``grid_log10``, from the positive draws.

    A binned kernel estimate: draws are counted into grid cells and smoothed with
    a Gaussian of Scott's bandwidth (Silverman 1986, Density Estimation, sec. 3.5),
    linear in the number of draws. Not normalised: only the shape is drawn.
    """
    logs = np.log10(np.asarray(values, dtype=float)[np.asarray(values) > 0])
    if logs.size < 2 or np.ptp(logs) == 0:
        return np.zeros_like(grid_log10)
    step = grid_log10[1] - grid_log10[0]
    edges = np.append(grid_log10 - step / 2, grid_log10[-1] + step / 2)
    counts, _ = np.histogram(logs, edges)
    bandwidth_cells = max(logs.std() * logs.size ** (-1 / 5) / step, 0.5)
    offsets = np.arange(-int(4 * bandwidth_cells) - 1, int(4 * bandwidth_cells) + 2)
    kernel = np.exp(-0.5 * (offsets / bandwidth_cells) ** 2)
    # centred on the grid even when the kernel is wider than it (few draws, wide bandwidth)
    return np.convolve(counts, kernel)[offsets.size // 2 : offsets.size // 2 + counts.size]


@dataclass(frozen=True)
class Layout:
    """How a plot's figure is laid out: its panels, natural size, legend key and note.

    ``heights`` are the panels' relative heights, top first (one axes each);
    ``size`` is the figure's size in inches when none is asked for; ``key`` the
    legend entries and ``note`` the line that explain the marks.
    """

    heights: tuple[float, ...]
    size: tuple[float, float]
    key: tuple[Artist, ...] = ()
    note: str = ""
    sharex: bool = True


def lay_out(fig: Figure, layout: Layout, *, title: str = "", source: str = "") -> np.ndarray:
    """The axes of ``layout`` on ``fig`` (constrained layout): title, stacked panels, then legend key, note and source."""
    width_in, height_in = fig.get_size_inches()
    width_chars = int(width_in * FOOTER_CHARS_PER_IN)
    footer = [
        (line, color)
        for text, color in ((layout.note, "#222222"), (source, "#555555"))
        if text
        for line in textwrap.wrap(text, width_chars)
    ]
    text_in = FOOTER_LINE_IN * (len(footer) + 0.3)
    legend_rows = -(-len(layout.key) // LEGEND_COLUMNS)
    footer_in = text_in + LEGEND_ROW_IN * legend_rows
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):
        engine.set(rect=(0, footer_in / height_in, 1, 1 - footer_in / height_in))
    if title:
        fig.suptitle(title, fontsize=13, fontweight="bold")
    for i, (line, color) in enumerate(reversed(footer)):
        fig.text(0.01, (0.2 + i) * FOOTER_LINE_IN / height_in, line, fontsize=8, color=color, ha="left", va="bottom")
    if layout.key:
        fig.legend(
            handles=list(layout.key),
            loc="lower center",
            bbox_to_anchor=(0.5, text_in / height_in),
            ncol=min(len(layout.key), LEGEND_COLUMNS),
            fontsize=8,
            frameon=False,
            borderaxespad=0.0,
        )
    return fig.subplots(
        len(layout.heights), 1, sharex=layout.sharex, squeeze=False, height_ratios=list(layout.heights)
    )[:, 0]


def _panels(ax: Axes | Sequence[Axes] | None, layout: Layout) -> np.ndarray:
    """The axes to draw on, one per panel: those of ``ax`` or, if None, of a new pyplot figure laid out as ``layout``."""
    if ax is None:
        return lay_out(plt.figure(figsize=layout.size, layout="constrained"), layout)
    axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
    if axes.size != len(layout.heights):
        raise ValueError(f"this figure has {len(layout.heights)} panels: ax must be as many axes, not {axes.size}")
    return axes


def _drawn(axes: np.ndarray) -> Axes | np.ndarray:
    """What a plot function returns: the axes of its one panel, or the array of axes of several."""
    return axes[0] if axes.size == 1 else axes


def _log_energy_axis(ax, label: str, lo: float, hi: float) -> None:
    """A log x axis from ``lo`` to ``hi`` labelled 1-2-5 (decades only when it spans more than three)."""
    ax.set_xlim(lo, hi)  # limits first: an axis with no positive data (energies of zero) warns when made log
    ax.set_xscale("log")
    subs = (1.0, 2.0, 5.0) if np.log10(hi / lo) <= 3.2 and hi < 1e3 else (1.0,)  # long labels would collide
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,g}"))
    ax.xaxis.set_minor_locator(NullLocator())  # minor ticks on log axes cost much drawing time and add little
    ax.set_xlabel(label)
    ax.grid(axis="x", which="major", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)


def _interval(ax, y: float, record: Mapping, color: str, *, height: float = 1.0) -> None:
    """90% (thin), 50% (thick) interval and median (white dot) of a record at height ``y``."""
    ax.hlines(y, record["p5"], record["p95"], color=color, linewidth=1.6 * height)
    if "p25" in record and "p75" in record:
        ax.hlines(y, record["p25"], record["p75"], color=color, linewidth=6.5 * height)
    ax.plot(
        record["median"],
        y,
        "o",
        color="white",
        markeredgecolor=color,
        markeredgewidth=1.5,
        markersize=6.5 * height,
        zorder=4,
    )


def _interval_key() -> list[Line2D]:
    """Legend entries for the marks drawn by :func:`_interval`."""
    return [
        Line2D([], [], color="#444444", linewidth=1.6, label="90% interval (P5-P95)"),
        Line2D([], [], color="#444444", linewidth=6.5, label="50% interval (P25-P75)"),
        Line2D([], [], marker="o", color="white", markeredgecolor="#444444", linestyle="", label="median"),
    ]


def _row_labels(ax, ys: Sequence[float] | np.ndarray, left: Sequence[str], right: Sequence[str]) -> None:
    """Names as y tick labels on the left, numbers as text just right of the axes (both kept in the layout)."""
    ax.set_yticks(ys, left, fontsize=9)
    ax.tick_params(axis="y", length=0)
    for y, text in zip(ys, right):
        ax.annotate(
            text,
            xy=(1.01, y),
            xycoords=("axes fraction", "data"),
            ha="left",
            va="center",
            fontsize=8,
            family="monospace",
            annotation_clip=False,
        )
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)


def _quantile_text(record: Mapping, unit: str) -> str:
    text = f"median {fmt(record['median'])} {unit}"
    if "p25" in record and "p75" in record:
        text += f"\n50%: {fmt(record['p25'])}-{fmt(record['p75'])}"
    return text + f"\n90%: {fmt(record['p5'])}-{fmt(record['p95'])}"


def _log_limits(lows: Sequence[float], highs: Sequence[float]) -> tuple[float, float]:
    lows = [v for v in lows if v > 0] or [1e-3]
    highs = [v for v in highs if v > 0] or [1.0]
    return min(lows) / 1.6, max(highs) * 1.6


def _distribution_inputs(
    result: StudyResult | Sequence[Mapping], draws: Mapping[str, np.ndarray] | None, labels: Mapping[str, str] | None
) -> tuple[list[Mapping], Mapping[str, np.ndarray], Mapping[str, str]]:
    """Records, draws and row labels of a distributions figure, from a study result or given as records and draws."""
    if not isinstance(result, StudyResult):
        return list(result), draws or {}, labels or {}
    if "setting" in result.samples.dims:
        raise ValueError(
            "a study with settings has a distribution per setting: pass one setting's records "
            "(those with that 'setting') instead of the result"
        )
    records: list[Mapping] = [r for r in result.records if r["pathway"] == "baseline" and r["quantity"] == "energy_wh"]
    energy_wh = result.samples.get("energy_wh")
    shapes = (
        series_draws(energy_wh, result.samples.attrs)
        if energy_wh is not None and energy_wh.dims == ("model", "draw")
        else {}
    )
    return records, draws or shapes, labels or series_labels(result.samples.attrs)


def series_labels(attrs: Mapping) -> dict[str, str]:
    """Row labels of blends, from a run's attributes: name, then whether trimmed and how many models it pools."""
    return {
        name: f"{name}\n({'trimmed' if trim else 'untrimmed'} pool of {len(members)})"
        for name, (members, trim) in blend_definitions(dict(attrs)).items()
    }


def _shaped(records: Sequence[Mapping], draws: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {r["series"]: np.asarray(draws[r["series"]]) for r in records if r["series"] in draws}


MEAN_COLOR = "#444444"


def distributions_layout(
    records: Sequence[Mapping], draws: Mapping[str, np.ndarray], means: Mapping[str, Mapping] | None = None
) -> Layout:
    """The layout of :func:`plot_distributions`: one panel, a row per record; the note counts the draws drawn."""
    shaped = _shaped(records, draws)
    zeros = sum(int((v <= 0).sum()) for v in shaped.values())
    total = sum(v.size for v in shaped.values())
    sizes = [v.size for v in shaped.values()]
    note = "Marks: median and intervals from all draws of the run."
    if sizes:
        span = f"{min(sizes):,}" if min(sizes) == max(sizes) else f"{min(sizes):,}-{max(sizes):,}"
        note = f"Shapes: density of log energy from {span} draws per row, untrimmed unless the row says so. " + note
    if zeros:
        note += f" {100 * zeros / total:.3g}% of draws are 0 Wh (an input of zero), off the log axis."
    key = _interval_key()
    if means:
        key.append(
            Line2D([], [], color=MEAN_COLOR, marker="D", linewidth=3, label="mean per query: 90% credible interval")
        )
    return Layout((1,), (WIDTH_IN, 1.9 + (0.95 if means else 0.78) * len(records)), tuple(key), note)


def plot_distributions(
    result: StudyResult | Sequence[Mapping],
    draws: Mapping[str, np.ndarray] | None = None,
    ax: Axes | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    means: Mapping[str, Mapping] | None = None,
) -> Axes:
    """Per-model and blend distributions of energy per query, one row per series, on a log axis.

    Each row shows the density of log energy of the series' draws (its shape) and
    the median, 50% and 90% intervals of its record (from all draws of the run).
    Nothing is trimmed but what a blend's own definition trims.

    Parameters
    ----------
    result : StudyResult or sequence of dict
        A study's result (its baseline ``energy_wh`` records, shaped by its saved
        draws), or summary records (``series``, ``p5``, ``median``, ``p95``,
        optionally ``p25`` and ``p75``), top row first.
    draws : mapping of str to numpy.ndarray, optional
        Draws of energy per query (Wh) per series, whose density gives each row's
        shape; a series without draws gets only its intervals. Taken from the
        result when it is a :class:`StudyResult`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure with a legend and a note if None.
    labels : mapping of str to str, optional
        Row labels per series (default: the series name; a blend's says whether
        it is trimmed and how many models it pools).
    means : mapping of str to dict, optional
        Per series, a record of the mean energy per query over states of knowledge
        (a two-level study's ``mean_energy_wh``): its 90% credible interval is drawn
        below the row, a grey bar with a diamond at its median.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import uqenergy
    >>> result = uqenergy.run_study("paper_traditional", draws=2000, seed=1)
    >>> fig, ax = plt.subplots(figsize=(9, 7))
    >>> uqenergy.plot_distributions(result, ax=ax) is ax
    True
    >>> ax.get_yticklabels()[-1].get_text().splitlines()
    ['blend', '(untrimmed pool of 3)']
    >>> len(ax.collections) > len(ax.get_yticklabels())  # a shape per row, besides the intervals
    True
    """
    records, draws, labels = _distribution_inputs(result, draws, labels)
    means = means or {}
    (ax,) = _panels(ax, distributions_layout(records, draws, means))
    shaped = _shaped(records, draws)
    n = len(records)
    positive = [v[v > 0] for v in shaped.values()]
    lo, hi = _log_limits(
        [r["p5"] for r in records] + [np.quantile(v, 0.001) for v in positive if v.size],
        [r["p95"] for r in records] + [np.quantile(v, 0.999) for v in positive if v.size],
    )
    grid = np.linspace(np.log10(lo), np.log10(hi), GRID_POINTS)
    colors = colors_for([r["series"] for r in records])
    ys = np.arange(n)[::-1].astype(float)
    for y, record in zip(ys, records):
        color = colors[record["series"]]
        if record["series"] in shaped:
            density = log_density(shaped[record["series"]], grid)
            if density.max() > 0:
                ridge = y - 0.12 + 0.62 * density / density.max()
                ax.fill_between(10**grid, y - 0.12, ridge, color=color, alpha=0.35, linewidth=0)
                ax.plot(10**grid, ridge, color=color, linewidth=1.2)
        _interval(ax, y - 0.24, record, color)
        if (mean := means.get(record["series"])) is not None:
            ax.hlines(y - 0.42, mean["p5"], mean["p95"], color=MEAN_COLOR, linewidth=3.5)
            ax.plot(mean["median"], y - 0.42, "D", color=MEAN_COLOR, markersize=5, zorder=4)
    ax.set_ylim(-0.65 if means else -0.55, n - 0.3)
    _log_energy_axis(ax, "energy per query (Wh, log scale)", lo, hi)
    _row_labels(
        ax,
        ys + 0.05,
        [labels.get(r["series"], r["series"]) for r in records],
        [
            _quantile_text(r, "Wh")
            + (
                f"\nmean {fmt(m['median'])} ({fmt(m['p5'])}-{fmt(m['p95'])})"
                if (m := means.get(r["series"])) is not None
                else ""
            )
            for r in records
        ],
    )
    return ax


def _pathway_groups(records: Sequence[Mapping]) -> dict[str, list[Mapping]]:
    """Records per series, baseline first and combined last."""
    groups: dict[str, list[Mapping]] = {}
    for record in records:
        groups.setdefault(record["series"], []).append(record)
    for rows in groups.values():
        rows.sort(key=lambda r: (r["pathway"] != "baseline", r["pathway"] == "combined"))
    return groups


def pathways_layout(records: Sequence[Mapping]) -> Layout:
    """The layout of :func:`plot_pathways`: a panel per series, as tall as its pathways."""
    groups = _pathway_groups(records)
    n_rows = sum(len(rows) for rows in groups.values())
    note = "Each pathway divides the baseline energy by its own uncertain gain; combined divides by all of them."
    return Layout(
        tuple(len(rows) for rows in groups.values()),
        (WIDTH_IN, 1.5 + 0.55 * n_rows + 0.45 * len(groups)),
        tuple(_interval_key()),
        note,
    )


def plot_pathways(
    records: Sequence[Mapping], ax: Axes | Sequence[Axes] | None = None, *, labels: Mapping[str, str] | None = None
) -> Axes | np.ndarray:
    """Baseline vs each efficiency pathway vs combined, one panel per series, from summary records.

    Each row is labelled with its median and the median reduction against the
    series' baseline.

    Parameters
    ----------
    records : sequence of dict
        Summary records (``scenario``, ``series``, ``pathway``, ``p5``, ``median``,
        ``p95``) of the series that pathways apply to, baseline included.
    ax : matplotlib.axes.Axes or sequence of them, optional
        Where to draw, one axes per series; a new figure if None.
    labels : mapping of str to str, optional
        Panel titles per series (default: the series name).

    Returns
    -------
    matplotlib.axes.Axes or numpy.ndarray of them
        The axes drawn on: one, or an array of one per series.

    Examples
    --------
    >>> import uqenergy
    >>> result = uqenergy.run_study("paper_traditional", draws=2000, seed=1)
    >>> ax = uqenergy.plot_pathways([r for r in result.records if r["series"] == "blend"])
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['baseline', 'model', 'serving', 'hardware', 'combined']
    """
    groups = _pathway_groups(records)
    axes = _panels(ax, pathways_layout(records))
    lo, hi = _log_limits([r["p5"] for r in records], [r["p95"] for r in records])
    for panel_ax, (series, rows) in zip(axes, groups.items()):
        baseline = next((r["median"] for r in rows if r["pathway"] == "baseline"), None)
        ys = np.arange(len(rows))[::-1].astype(float)
        for y, record in zip(ys, rows):
            _interval(panel_ax, y, record, PATHWAY_COLORS.get(record["pathway"], "#56B4E9"))
        right = [
            f"median {fmt(r['median'])} Wh"
            + (
                ""
                if baseline is None or r["pathway"] == "baseline" or r["median"] <= 0
                else f"\n÷{baseline / r['median']:.2g} vs baseline"
            )
            for r in rows
        ]
        panel_ax.set_ylim(-0.6, len(rows) - 0.4)
        _log_energy_axis(panel_ax, "energy per query (Wh, log scale)", lo, hi)
        name = (labels or {}).get(series, series).replace("\n", " ")
        panel_ax.set_title(f"{name}, {rows[0]['scenario']}", fontsize=10, loc="left")
        _row_labels(panel_ax, ys, [r["pathway"] for r in rows], right)
    for panel_ax in axes[:-1]:
        panel_ax.set_xlabel("")
    return _drawn(axes)


def _sobol_panels(records: Sequence[Mapping]) -> dict[tuple, list[Mapping]]:
    """Records per (scenario, setting, series, target), each panel's at its largest base sample size."""
    largest: dict[tuple, int] = {}
    for record in records:
        panel = (record["scenario"], record.get("setting"), record["series"], record["target"])
        largest[panel] = max(largest.get(panel, 0), record["base_samples"])
    groups: dict[tuple, list[Mapping]] = {}
    for record in records:
        panel = (record["scenario"], record.get("setting"), record["series"], record["target"])
        if record["base_samples"] == largest[panel]:
            groups.setdefault(panel, []).append(record)
    return groups


SOBOL_COLORS = {"S1": OKABE_ITO[0], "ST": OKABE_ITO[1]}


def sobol_layout(records: Sequence[Mapping]) -> Layout:
    """The layout of :func:`plot_sobol_indices`: a panel per target, as tall as its factors."""
    groups = _sobol_panels(records)
    n_rows = sum(len(rows) for rows in groups.values())
    note = "Bars: index estimates; whiskers: confidence intervals. S1 = share of variance from the factor alone; ST = including its interactions."
    key = (
        Patch(color=SOBOL_COLORS["S1"], label="S1 first order"),
        Patch(color=SOBOL_COLORS["ST"], label="ST total order"),
    )
    return Layout(
        tuple(len(rows) for rows in groups.values()),
        (WIDTH_IN, 1.6 + 0.42 * n_rows + 0.6 * len(groups)),
        key,
        note,
        sharex=False,
    )


def plot_sobol_indices(records: Sequence[Mapping], ax: Axes | Sequence[Axes] | None = None) -> Axes | np.ndarray:
    """First-order (S1) and total-order (ST) Sobol indices with confidence intervals, one panel per target.

    Records at several base sample sizes (a convergence history) are drawn at the
    largest; records with a ``setting`` get a panel per setting.

    Parameters
    ----------
    records : sequence of dict
        Sobol records (``scenario``, ``series``, ``target``, ``factor``, ``S1``,
        ``S1_conf``, ``ST``, ``ST_conf``, ``base_samples``, ``converged``);
        ``*_conf`` is the half-width of the index's confidence interval.
    ax : matplotlib.axes.Axes or sequence of them, optional
        Where to draw, one axes per (scenario, setting, series, target); a new
        figure if None.

    Returns
    -------
    matplotlib.axes.Axes or numpy.ndarray of them
        The axes drawn on: one, or an array of one per panel.

    Examples
    --------
    >>> import uqenergy
    >>> records = [{"scenario": "traditional", "series": "blend", "target": "log_energy_wh", "factor": factor,
    ...             "S1": s1, "S1_conf": 0.02, "ST": st, "ST_conf": 0.03, "base_samples": 1024, "converged": True}
    ...            for factor, s1, st in (("pue", 0.1, 0.15), ("output_tokens", 0.6, 0.7))]
    >>> ax = uqenergy.plot_sobol_indices(records)
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['output_tokens', 'pue']
    >>> len(ax.patches)
    4
    """
    axes = _panels(ax, sobol_layout(records))
    for panel_ax, ((scenario, setting, series, target), rows) in zip(axes, _sobol_panels(records).items()):
        rows = sorted(rows, key=lambda r: r["ST"], reverse=True)
        scenario = scenario if setting is None else f"{scenario}, {setting}"
        ys = np.arange(len(rows))[::-1].astype(float)
        for offset, index in ((0.18, "S1"), (-0.18, "ST")):
            panel_ax.barh(
                ys + offset,
                [r[index] for r in rows],
                height=0.34,
                color=SOBOL_COLORS[index],
                xerr=[r[f"{index}_conf"] for r in rows],
                error_kw={"ecolor": "#333333", "capsize": 2.5, "linewidth": 1},
            )
        panel_ax.set_yticks(ys, [r["factor"] for r in rows], fontsize=9)
        low = min(0.0, *(r[k] - r[f"{k}_conf"] for r in rows for k in ("S1", "ST")))
        high = max(1.0, *(r[k] + r[f"{k}_conf"] for r in rows for k in ("S1", "ST")))
        panel_ax.set_xlim(low - 0.02, high + 0.02)
        panel_ax.axvline(0, color="#888888", linewidth=0.8)
        panel_ax.grid(axis="x", color="#dddddd", linewidth=0.8)
        panel_ax.set_axisbelow(True)
        panel_ax.set_xlabel("Sobol index (share of variance, 1 = all of it)")
        status = "" if all(r["converged"] for r in rows) else "; NOT converged"
        panel_ax.set_title(
            f"{series}: {target} ({scenario}), {rows[0]['base_samples']:,} base samples{status}",
            fontsize=10,
            loc="left",
        )
        for spine in ("top", "right"):
            panel_ax.spines[spine].set_visible(False)
    return _drawn(axes)


FLEET_ROW_KEYS = ("setting", "mix", "pathway", "grid")  # what tells one fleet row from another (besides the method)
#: What the P5-P95 band of each fleet method is: the paper method's is the Monte Carlo noise of its mean.
FLEET_BANDS = {"paper": "Monte Carlo noise band", "honest": "90% credible interval"}


def _fleet_panels(records: Sequence[Mapping]) -> dict[str, dict[tuple, list[Mapping]]]:
    """Records per quantity, then per row (setting, mix, pathway, grid)."""
    groups: dict[str, dict[tuple, list[Mapping]]] = {}
    for record in records:
        row = tuple(record[k] for k in FLEET_ROW_KEYS if k in record)
        groups.setdefault(record["quantity"], {}).setdefault(row, []).append(record)
    return groups


def fleet_layout(records: Sequence[Mapping]) -> Layout:
    """The layout of :func:`plot_fleet`: a panel per quantity, as tall as its rows; a colour per method."""
    groups = _fleet_panels(records)
    rows_total = sum(len(rows) for rows in groups.values())
    key = tuple(
        Patch(color=c, label=f"{m}: {FLEET_BANDS.get(m, '90% interval')}")
        for m, c in colors_for([r["method"] for r in records]).items()
    )
    return Layout(
        tuple(len(rows) for rows in groups.values()),
        (WIDTH_IN, 1.6 + 0.42 * rows_total + 0.6 * len(groups)),
        key,
        "Line: P5-P95 (the paper method's is the Monte Carlo noise of its mean, not an uncertainty; "
        "the honest method's is a 90% credible interval); dot: median; diamond: mean.",
        sharex=False,
    )


def plot_fleet(records: Sequence[Mapping], ax: Axes | Sequence[Axes] | None = None) -> Axes | np.ndarray:
    """Fleet totals per workload mix and pathway with their 90% intervals, one panel per quantity.

    One row per (setting, mix, pathway, grid); the methods share the row, side by
    side, told apart by colour. The unit is read from the quantity name
    (``energy_gwh_per_day`` -> GWh/day).

    Parameters
    ----------
    records : sequence of dict
        Fleet records (``scenario``, ``mix``, ``pathway``, ``quantity``,
        ``method``, ``p5``, ``median``, ``p95``, ``mean``, optionally ``setting``
        and ``grid``).
    ax : matplotlib.axes.Axes or sequence of them, optional
        Where to draw, one axes per quantity; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes or numpy.ndarray of them
        The axes drawn on: one, or an array of one per quantity.

    Examples
    --------
    >>> import uqenergy
    >>> records = [{"scenario": "1e9 queries/day", "mix": "traditional", "pathway": "baseline",
    ...             "quantity": "energy_gwh_per_day", "method": method, "p5": p5, "median": median, "p95": p95,
    ...             "mean": mean} for method, p5, median, p95, mean in (("paper", 0.73, 0.73, 0.73, 0.73),
    ...                                                                  ("honest", 0.5, 0.7, 1.0, 0.72))]
    >>> ax = uqenergy.plot_fleet(records)
    >>> ax.get_xlabel()
    'energy_gwh_per_day (GWh/day, log scale)'
    """
    groups = _fleet_panels(records)
    axes = _panels(ax, fleet_layout(records))
    colors = colors_for([r["method"] for r in records])
    offsets = {m: 0.18 * ((len(colors) - 1) / 2 - i) for i, m in enumerate(colors)}
    for panel_ax, (quantity, rows) in zip(axes, groups.items()):
        unit = unit_of(quantity)
        ys = np.arange(len(rows))[::-1].astype(float)
        every = [r for row in rows.values() for r in row]
        for y, row in zip(ys, rows.values()):
            for record in row:
                color = colors[record["method"]]
                _interval(panel_ax, y + offsets[record["method"]], record, color, height=0.8)
                panel_ax.plot(record["mean"], y + offsets[record["method"]], "D", color=color, markersize=4.5, zorder=5)
        lo, hi = _log_limits([r["p5"] for r in every], [r["p95"] for r in every])
        _log_energy_axis(panel_ax, f"{quantity} ({unit}, log scale)", lo, hi)
        panel_ax.set_ylim(-0.6, len(rows) - 0.4)
        panel_ax.set_title(quantity, fontsize=10, loc="left")
        _row_labels(
            panel_ax,
            ys,
            [" · ".join(map(str, row)) for row in rows],
            [
                "\n".join(
                    f"{r['method']}: {fmt(r['median'])} ({'MC noise ' if r['method'] == 'paper' else ''}"
                    f"{fmt(r['p5'])}-{fmt(r['p95'])})"
                    for r in row
                )
                for row in rows.values()
            ],
        )
    return _drawn(axes)


def _sweep_panels(records: Sequence[Mapping]) -> dict[tuple, list[Mapping]]:
    """Records per (quantity, mix, grid)."""
    panels: dict[tuple, list[Mapping]] = {}
    for record in records:
        panels.setdefault(tuple(record[k] for k in ("quantity", "mix", "grid") if k in record), []).append(record)
    return panels


def _pathway_colors(records: Sequence[Mapping]) -> dict[str, str]:
    pathways = list(dict.fromkeys(r["pathway"] for r in records))
    return {p: PATHWAY_COLORS.get(p, c) for p, c in colors_for(pathways, OKABE_ITO[4:]).items()}


def fleet_sweep_layout(records: Sequence[Mapping]) -> Layout:
    """The layout of :func:`plot_fleet_sweep`: a panel per (quantity, mix, grid); a colour per pathway."""
    panels = _sweep_panels(records)
    note = (
        "Bar: honest 90% credible interval (P5-P95), dot: its median; tick across the bar: paper method "
        "(mean; its interval is Monte Carlo noise)."
    )
    key = tuple(Patch(color=c, label=p) for p, c in _pathway_colors(records).items())
    return Layout((1,) * len(panels), (WIDTH_IN, 1.8 + 2.2 * len(panels)), key, note, sharex=False)


def plot_fleet_sweep(records: Sequence[Mapping], ax: Axes | Sequence[Axes] | None = None) -> Axes | np.ndarray:
    """Fleet totals across a study's settings (e.g. a token-multiplier sweep), one panel per (quantity, mix, grid).

    Settings are placed left to right in first-seen order (they need not be
    numbers, so nothing joins them). One colour per pathway, side by side at each
    setting: the ``honest`` 90% interval as a bar with its median, the ``paper``
    mean as a bar-wide tick.

    Parameters
    ----------
    records : sequence of dict
        Fleet records with a ``setting`` (see :func:`plot_fleet`).
    ax : matplotlib.axes.Axes or sequence of them, optional
        Where to draw, one axes per (quantity, mix, grid); a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes or numpy.ndarray of them
        The axes drawn on: one, or an array of one per panel.

    Examples
    --------
    >>> import uqenergy
    >>> records = [{"scenario": "1e9 queries/day", "setting": setting, "mix": "traditional", "pathway": "baseline",
    ...             "quantity": "energy_gwh_per_day", "method": "honest", "p5": 0.5 * k, "median": 0.7 * k,
    ...             "p95": 1.0 * k, "mean": 0.72 * k} for setting, k in (("x1", 1), ("x2", 2), ("x4", 4))]
    >>> ax = uqenergy.plot_fleet_sweep(records)
    >>> [label.get_text() for label in ax.get_xticklabels()]
    ['x1', 'x2', 'x4']
    """
    settings = list(dict.fromkeys(r["setting"] for r in records))
    panels = _sweep_panels(records)
    axes = _panels(ax, fleet_sweep_layout(records))
    colors = _pathway_colors(records)
    offsets = {p: 0.22 * (i - (len(colors) - 1) / 2) for i, p in enumerate(colors)}
    for panel_ax, (panel, rows) in zip(axes, panels.items()):
        for record in rows:
            x = settings.index(record["setting"]) + offsets[record["pathway"]]
            color = colors[record["pathway"]]
            if record["method"] == "paper":
                panel_ax.hlines(record["mean"], x - 0.1, x + 0.1, color="#222222", linewidth=1.6, zorder=5)
            else:
                panel_ax.vlines(x, record["p5"], record["p95"], color=color, linewidth=5, alpha=0.8)
                panel_ax.plot(x, record["median"], "o", color="white", markeredgecolor=color, markersize=5, zorder=4)
        panel_ax.set_yscale("log")
        panel_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
        panel_ax.set_xticks(np.arange(len(settings)), settings, fontsize=9)
        panel_ax.set_ylabel(f"{unit_of(panel[0])} (log scale)")
        panel_ax.set_title(" · ".join(panel), fontsize=10, loc="left")
        panel_ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
        panel_ax.set_axisbelow(True)
        for spine in ("top", "right"):
            panel_ax.spines[spine].set_visible(False)
    axes[-1].set_xlabel("setting")
    return _drawn(axes)


VERDICT_COLORS = {"below": "#0072B2", "within": "#009E73", "above": "#D55E00"}


def interval_of(record: Mapping) -> str:
    """What a compare record's interval is: ``"credible"`` (epistemic, a scenario study's) or ``"predictive"``
    (a closed model's prediction); a record from before the key existed is credible."""
    return str(record.get("interval", "credible"))


def _estimate_panels(estimates: Sequence[Mapping]) -> dict[tuple[str, str], list[Mapping]]:
    """Estimates per (scenario, series) they were compared with."""
    groups: dict[tuple[str, str], list[Mapping]] = {}
    for record in estimates:
        groups.setdefault((record["scenario"], record["series"]), []).append(record)
    return groups


def _verdict_colors(estimates: Sequence[Mapping]) -> dict[str, str]:
    return {
        v: VERDICT_COLORS.get(v, c) for v, c in colors_for([r["verdict"] for r in estimates], OKABE_ITO[4:]).items()
    }


def published_estimates_layout(estimates: Sequence[Mapping], unverified: Collection[str] = ()) -> Layout:
    """The layout of :func:`plot_published_estimates`: a panel per (scenario, series); a colour per verdict."""
    groups = _estimate_panels(estimates)
    kinds = list(dict.fromkeys(interval_of(r) for r in estimates)) or ["credible"]
    note = (
        "Each row: a published figure (dot, coloured by verdict) on the 90% interval (grey) and median (tick) "
        "of our distribution it was compared with (our credible distribution of the same statistic at the same "
        "boundary"
        + ("; for a closed model, the predictive distribution of its prediction" if "predictive" in kinds else "")
        + "); right: its value, what it was compared with, its percentile in that distribution, its ratio "
        "to our median."
    )
    key = (
        Line2D([], [], color="#bbbbbb", linewidth=7, label=f"our 90% {' or '.join(kinds)} interval (P5-P95)"),
        Line2D([], [], color="#222222", marker="|", markersize=12, markeredgewidth=2, linestyle="", label="our median"),
        *(
            Line2D([], [], marker="o", linestyle="", color=c, markeredgecolor="#222222", label=f"estimate {v}")
            for v, c in _verdict_colors(estimates).items()
        ),
        *(
            [
                Line2D(
                    [],
                    [],
                    marker="o",
                    linestyle="",
                    color="white",
                    markeredgecolor="#222222",
                    label="figure not confirmed in its source",
                )
            ]
            if unverified
            else []
        ),
    )
    return Layout(
        tuple(len(rows) for rows in groups.values()),
        (WIDTH_IN, 1.5 + 0.42 * len(estimates) + 0.6 * len(groups)),
        key,
        note,
        sharex=False,
    )


def _compared(record: Mapping) -> str:
    """``mean @ facility`` and two spaces, for records that name the statistic and boundary they were compared at."""
    if "compared_statistic" not in record:
        return ""
    return f"{record['compared_statistic']} @ {record['boundary']}  "


def plot_published_estimates(
    estimates: Sequence[Mapping], ax: Axes | Sequence[Axes] | None = None, *, unverified: Collection[str] = ()
) -> Axes | np.ndarray:
    """Published per-query estimates against our distribution of the matching statistic (log axis), one row per
    claim and one panel per (scenario, series).

    Each row shows the published value (dot) on the distribution it was compared
    with (grey bar P5-P95, tick the median), recovered from the ratios: for
    ``uqenergy compare`` records, our credible distribution of the figure's own
    statistic (mean or median energy per query) at its own boundary, named in the
    row label; for a closed model's prediction, its predictive distribution (the
    record's ``interval``, named in the panel title and the legend).

    Parameters
    ----------
    estimates : sequence of dict
        Compare records (``estimate_id``, ``value_wh``, ``scenario``, ``series``,
        ``percentile`` of the value among our draws in 0-100, ``ratio_median`` =
        value / our median, ``ratio_p5`` = value / our P95, ``ratio_p95`` = value
        / our P5, ``verdict``; optionally ``interval``, ``"credible"`` by default or
        ``"predictive"``).
    ax : matplotlib.axes.Axes or sequence of them, optional
        Where to draw, one axes per (scenario, series); a new figure if None.
    unverified : collection of str, optional
        Ids of estimates whose figure is not confirmed in its source: drawn hollow.

    Returns
    -------
    matplotlib.axes.Axes or numpy.ndarray of them
        The axes drawn on: one, or an array of one per panel.

    Examples
    --------
    >>> import uqenergy
    >>> records = [{"estimate_id": estimate, "value_wh": value, "scenario": "traditional", "series": "blend",
    ...             "percentile": percentile, "ratio_median": value / 0.3, "ratio_p5": value / 1.5,
    ...             "ratio_p95": value / 0.06, "verdict": verdict}
    ...            for estimate, value, percentile, verdict in (("a_2023", 2.9, 98.0, "above"),
    ...                                                        ("b_2025", 0.24, 42.0, "within"))]
    >>> ax = uqenergy.plot_published_estimates(records)
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['b_2025', 'a_2023']
    """
    axes = _panels(ax, published_estimates_layout(estimates, unverified))
    verdicts = _verdict_colors(estimates)
    for panel_ax, ((scenario, series), rows) in zip(axes, _estimate_panels(estimates).items()):
        rows = sorted(rows, key=lambda r: r["value_wh"])
        ours = [
            (r["value_wh"] / r["ratio_p95"], r["value_wh"] / r["ratio_median"], r["value_wh"] / r["ratio_p5"])
            for r in rows
        ]
        ys = np.arange(len(rows))[::-1].astype(float)
        for y, record, (p5, median, p95) in zip(ys, rows, ours):
            panel_ax.hlines(y, p5, p95, color="#bbbbbb", linewidth=7)
            panel_ax.plot(median, y, "|", color="#222222", markersize=12, markeredgewidth=2)
            hollow = record["estimate_id"] in unverified
            colour = verdicts[record["verdict"]]
            panel_ax.plot(
                record["value_wh"],
                y,
                "o",
                color="white" if hollow else colour,
                markersize=8,
                markeredgecolor=colour if hollow else "#222222",
                markeredgewidth=1.5 if hollow else 0.6,
                zorder=4,
            )
        lo, hi = _log_limits(
            [r["value_wh"] for r in rows] + [o[0] for o in ours], [r["value_wh"] for r in rows] + [o[2] for o in ours]
        )
        panel_ax.set_ylim(-0.6, len(rows) - 0.4)
        _log_energy_axis(panel_ax, "energy per query (Wh, log scale)", lo, hi)
        what = f"{series} (closed model)" if rows[0].get("comparator") == "closed_model" else series
        panel_ax.set_title(f"{scenario}: compared with {what} (90% {interval_of(rows[0])})", fontsize=10, loc="left")
        _row_labels(
            panel_ax,
            ys,
            [r["estimate_id"] for r in rows],
            [f"{fmt(r['value_wh'])} Wh  {_compared(r)}P{r['percentile']:.0f}  {fmt(r['ratio_median'])}x" for r in rows],
        )
    return _drawn(axes)


CONVERGENCE_QUANTILES = ("p5", "median", "p95")


def _convergence_groups(records: Sequence[Mapping]) -> tuple[list[str], dict[str, list[Mapping]]]:
    """The quantiles the records hold, and the records per series."""
    groups: dict[str, list[Mapping]] = {}
    for record in records:
        groups.setdefault(record["series"], []).append(record)
    return [q for q in CONVERGENCE_QUANTILES if any(q in r for r in records)], groups


def convergence_layout(records: Sequence[Mapping]) -> Layout:
    """The layout of :func:`plot_convergence`: a panel per quantile; a colour per series."""
    quantiles, groups = _convergence_groups(records)
    note = "Each line: a series' estimate after n draws, as % deviation from its estimate with the most draws (the last point). A blend counts the draws of all its members."
    key = tuple(Line2D([], [], color=c, marker="o", markersize=3, label=s) for s, c in colors_for(list(groups)).items())
    return Layout((1,) * len(quantiles), (WIDTH_IN, 1.4 + 2.0 * len(quantiles)), key, note)


def plot_convergence(records: Sequence[Mapping], ax: Axes | Sequence[Axes] | None = None) -> Axes | np.ndarray:
    """Reported quantiles against the number of draws, relative to each series' largest-draw estimate.

    One panel per quantile; a line that settles at 0% means the estimate has converged.

    Parameters
    ----------
    records : sequence of dict
        Flat records (``series``, ``draws`` and any of ``p5``, ``median``,
        ``p95``), one per series and checkpoint.
    ax : matplotlib.axes.Axes or sequence of them, optional
        Where to draw, one axes per quantile present; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes or numpy.ndarray of them
        The axes drawn on: one, or an array of one per quantile.

    Examples
    --------
    >>> import uqenergy
    >>> records = [{"series": "blend", "draws": n, "median": 0.3 + 1 / n} for n in (1000, 2000, 4000)]
    >>> ax = uqenergy.plot_convergence(records)
    >>> ax.get_ylabel(), len(ax.lines)
    ('median: deviation (%)', 2)
    """
    quantiles, groups = _convergence_groups(records)
    axes = _panels(ax, convergence_layout(records))
    colors = colors_for(list(groups))
    for panel_ax, q in zip(axes, quantiles):
        for series, rows in groups.items():
            rows = sorted((r for r in rows if q in r), key=lambda r: r["draws"])
            if not rows:
                continue
            final = rows[-1][q]
            if final == 0:
                continue  # a deviation relative to zero is undefined (an energy fixed at zero)
            n = np.array([r["draws"] for r in rows])
            deviation = 100 * (np.array([r[q] for r in rows]) / final - 1)
            panel_ax.plot(n, deviation, color=colors[series], marker="o", markersize=3, linewidth=1.3)
        panel_ax.axhline(0, color="#888888", linewidth=0.8)
        panel_ax.set_xscale("log")
        panel_ax.set_xlim(*_log_limits([min(r["draws"] for r in records)], [max(r["draws"] for r in records)]))
        panel_ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
        panel_ax.xaxis.set_minor_locator(NullLocator())
        panel_ax.set_ylabel(f"{q}: deviation (%)")
        panel_ax.grid(color="#e5e5e5", linewidth=0.8)
        for spine in ("top", "right"):
            panel_ax.spines[spine].set_visible(False)
    axes[-1].set_xlabel("draws (log scale)")
    return _drawn(axes)


GPU_COLORS = {"H100": OKABE_ITO[0], "B200": OKABE_ITO[1]}
GPU_COUNT_MARKERS = {1: "o", 2: "s", 4: "^", 8: "D"}
MODEL_LINESTYLES: tuple[Literal["-", "--", ":"], ...] = ("-", "--", ":")


def _configuration_rows(records: Sequence[Mapping]) -> list[Mapping]:
    """Measured configurations' records (those naming a ``gpu``), grouped by model, H100 before B200, fewer GPUs first."""
    order = {gpu: i for i, gpu in enumerate(GPU_COLORS)}
    models = list(dict.fromkeys(r["model"] for r in records if "gpu" in r))
    rows = [r for r in records if "gpu" in r and isinstance(r["gpu_count"], int) and r["gpu"] in order]
    return sorted(rows, key=lambda r: (models.index(r["model"]), order[r["gpu"]], r["gpu_count"]))


def measured_distributions_layout(records: Sequence[Mapping], draws: Mapping[str, np.ndarray]) -> Layout:
    """The layout of :func:`plot_measured_distributions`: one panel, a compact row per configuration."""
    rows = _configuration_rows(records)
    key = (
        *(Patch(color=c, alpha=0.6, label=gpu) for gpu, c in GPU_COLORS.items()),
        *_interval_key(),
    )
    note = (
        "Rows: each measured configuration, a model's H100 rows above its B200 rows. Shapes: density of log energy "
        "from the saved draws; marks: median and intervals from all draws of the run."
    )
    return Layout((1,), (WIDTH_IN, 1.8 + 0.34 * len(rows)), key, note)


def plot_measured_distributions(
    records: Sequence[Mapping], draws: Mapping[str, np.ndarray] | None = None, ax: Axes | None = None
) -> Axes:
    """Energy per query of each measured configuration, H100 beside B200 for each model, on a log axis.

    Parameters
    ----------
    records : sequence of dict
        Baseline summary records of a measured study (``series``, ``model``, ``gpu``, ``gpu_count``,
        ``p5``, ``median``, ``p95``, optionally ``p25``, ``p75``); blends (no whole-number
        ``gpu_count``) are left out.
    draws : mapping of str to numpy.ndarray, optional
        Draws of energy per query (Wh) per series, whose density shapes each row.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure with a legend and a note if None.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Examples
    --------
    >>> import uqenergy
    >>> records = [{"series": f"M ({g})", "model": "M", "gpu": g, "gpu_count": 1, "p5": lo, "median": 2 * lo,
    ...             "p95": 4 * lo} for g, lo in (("B200", 0.05), ("H100", 0.1))]
    >>> ax = uqenergy.plot_measured_distributions(records)
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['M  1xH100', '  1xB200']
    """
    draws = draws or {}
    rows = _configuration_rows(records)
    (ax,) = _panels(ax, measured_distributions_layout(records, draws))
    shaped = _shaped(rows, draws)
    positive = [v[v > 0] for v in shaped.values()]
    lo, hi = _log_limits(
        [r["p5"] for r in rows] + [np.quantile(v, 0.001) for v in positive if v.size],
        [r["p95"] for r in rows] + [np.quantile(v, 0.999) for v in positive if v.size],
    )
    grid = np.linspace(np.log10(lo), np.log10(hi), GRID_POINTS)
    ys = np.arange(len(rows))[::-1].astype(float)
    for y, record in zip(ys, rows):
        color = GPU_COLORS[record["gpu"]]
        if record["series"] in shaped:
            density = log_density(shaped[record["series"]], grid)
            if density.max() > 0:
                ridge = y - 0.1 + 0.55 * density / density.max()
                ax.fill_between(10**grid, y - 0.1, ridge, color=color, alpha=0.35, linewidth=0)
        _interval(ax, y - 0.18, record, color, height=0.7)
    for y, (above, below) in zip(ys[1:], pairwise(rows)):
        if above["model"] != below["model"]:
            ax.axhline(y + 0.5, color="#bbbbbb", linewidth=0.7)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    _log_energy_axis(ax, "energy per query (Wh, log scale)", lo, hi)
    _row_labels(
        ax,
        ys,
        [
            f"{r['model'] if i == 0 or rows[i - 1]['model'] != r['model'] else ''}  {r['gpu_count']}x{r['gpu']}"
            for i, r in enumerate(rows)
        ],
        [f"median {fmt(r['median'])} Wh" for r in rows],
    )
    ax.tick_params(axis="y", labelsize=7.5)
    return ax


def _model_styles(models: Sequence[str]) -> dict[str, tuple[str, Literal["-", "--", ":"]]]:
    """A (colour, line style) per model: the Okabe-Ito colours, then again dashed, then dotted."""
    distinct = list(dict.fromkeys(models))
    return {
        m: (OKABE_ITO[i % len(OKABE_ITO)], MODEL_LINESTYLES[(i // len(OKABE_ITO)) % len(MODEL_LINESTYLES)])
        for i, m in enumerate(distinct)
    }


def energy_per_token_layout(curves: Sequence[Mapping], band: Mapping[str, float]) -> Layout:
    """The layout of :func:`plot_energy_per_token`: a panel per GPU; a key entry per model and GPU count."""
    styles = _model_styles([c["model"] for c in curves])
    counts = sorted({c["gpu_count"] for c in curves})
    key = (
        *(Line2D([], [], color=c, linestyle=s, linewidth=1.4, label=m) for m, (c, s) in styles.items()),
        *(
            Line2D([], [], color="#444444", marker=GPU_COUNT_MARKERS.get(n, "o"), linestyle="", label=f"{n} GPU(s)")
            for n in counts
        ),
        Patch(color="#999999", alpha=0.25, label="concurrency prior, 90%"),
        Patch(color="#999999", alpha=0.5, label="concurrency prior, 50%"),
    )
    note = (
        "Markers: measured points (ML.ENERGY v3, GPU power / output throughput); lines between them are the "
        "interpolation the model uses (straight in log-log). Beyond a configuration's last point the energy is "
        f"clamped, not extrapolated. Band: the concurrency prior (median {fmt(band['median'])})."
    )
    panels = len({c["gpu"] for c in curves})
    return Layout((1,) * panels, (WIDTH_IN, 2.6 + 3.4 * panels + 0.26 * -(-len(key) // LEGEND_COLUMNS)), key, note)


def plot_energy_per_token(
    curves: Sequence[Mapping], band: Mapping[str, float], ax: Axes | Sequence[Axes] | None = None
) -> Axes | np.ndarray:
    """GPU energy per output token against concurrency: measured points, the interpolation, the prior's band.

    One panel per GPU (H100 above B200), both axes logarithmic.

    Parameters
    ----------
    curves : sequence of dict
        One per configuration: ``model``, ``gpu``, ``gpu_count``, ``mean_batch`` and
        ``energy_per_token_j`` (the measured points, in increasing batch).
    band : mapping of str to float
        Quantiles of the concurrency prior: ``p5``, ``median``, ``p95`` and optionally ``p25``, ``p75``.
    ax : matplotlib.axes.Axes or sequence of them, optional
        Where to draw, one axes per GPU; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes or numpy.ndarray of them
        The axes drawn on: one, or an array of one per GPU.

    Examples
    --------
    >>> import uqenergy
    >>> curves = [{"model": "M", "gpu": "H100", "gpu_count": 1, "mean_batch": [8, 64, 256],
    ...            "energy_per_token_j": [1.0, 0.25, 0.1]}]
    >>> ax = uqenergy.plot_energy_per_token(curves, {"p5": 16, "median": 90, "p95": 512})
    >>> ax.get_title(loc="left"), ax.get_xscale(), ax.get_yscale()
    ('H100', 'log', 'log')
    """
    gpus = [g for g in GPU_COLORS if any(c["gpu"] == g for c in curves)]
    axes = _panels(ax, energy_per_token_layout(curves, band))
    styles = _model_styles([c["model"] for c in curves])
    batches = [b for c in curves for b in c["mean_batch"]]
    energies = [e for c in curves for e in c["energy_per_token_j"]]
    for panel_ax, gpu in zip(axes, gpus):
        panel_ax.axvspan(band["p5"], band["p95"], color="#999999", alpha=0.18, linewidth=0)
        if "p25" in band and "p75" in band:
            panel_ax.axvspan(band["p25"], band["p75"], color="#999999", alpha=0.25, linewidth=0)
        panel_ax.axvline(band["median"], color="#666666", linewidth=1.0)
        for curve in (c for c in curves if c["gpu"] == gpu):
            color, style = styles[curve["model"]]
            panel_ax.plot(
                curve["mean_batch"],
                curve["energy_per_token_j"],
                color=color,
                linestyle=style,
                linewidth=1.2,
                marker=GPU_COUNT_MARKERS.get(curve["gpu_count"], "o"),
                markersize=3.5,
            )
        panel_ax.set_xscale("log")
        panel_ax.set_yscale("log")
        panel_ax.set_xlim(min(batches) / 1.4, max(batches) * 1.4)
        panel_ax.set_ylim(min(energies) / 1.5, max(energies) * 1.5)
        for axis in (panel_ax.xaxis, panel_ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,g}"))
            axis.set_minor_locator(NullLocator())
        panel_ax.set_ylabel("GPU energy per output token (J)")
        panel_ax.set_title(gpu, loc="left", fontsize=10, fontweight="bold")
        panel_ax.grid(color="#e5e5e5", linewidth=0.8)
        for spine in ("top", "right"):
            panel_ax.spines[spine].set_visible(False)
    axes[-1].set_xlabel("concurrency: mean batch (requests served at once, log scale)")
    return _drawn(axes)


def _forms(records: Sequence[Mapping]) -> list[str]:
    return list(dict.fromkeys(r["form"] for r in records))


def calibration_layout(records: Sequence[Mapping]) -> Layout:
    """The layout of :func:`plot_calibration`: one square panel; a colour per form."""
    key = tuple(
        Line2D([], [], color=c, marker="o", markersize=4, label=f) for f, c in colors_for(_forms(records)).items()
    )
    band = Patch(facecolor="#dddddd", label="goal: within 10 points of nominal")
    note = (
        "Leave-one-model-out: each model's configurations (FP8 and BF16 builds together) held out, the rest fitted, "
        "and the share of held-out measurements inside the central posterior predictive interval counted. "
        "Solid: all GPUs; dashed: H100; dotted: B200. Points of one model are correlated, so the effective sample "
        "is nearer the number of models than of points."
    )
    return Layout((1,), (7.0, 7.6), (*key, band), note)


def plot_calibration(records: Sequence[Mapping], ax: Axes | None = None) -> Axes:
    """Observed coverage of posterior predictive intervals against their nominal level, per form and GPU.

    Parameters
    ----------
    records : sequence of dict
        Coverage records (``form``, ``gpu``, ``nominal``, ``observed``), as in ``coverage.json``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import uqenergy
    >>> records = [{"form": "f", "gpu": "all", "nominal": n, "observed": n} for n in (0.5, 0.9)]
    >>> ax = uqenergy.plot_calibration(records)
    >>> ax.get_xlabel()
    'nominal level of the central interval (%)'
    """
    axes = _panels(ax, calibration_layout(records))
    panel = axes[0]
    grid = np.array([0.0, 1.0])
    panel.fill_between(100 * grid, 100 * (grid - 0.1), 100 * (grid + 0.1), color="#dddddd", linewidth=0)
    panel.plot(100 * grid, 100 * grid, color="#888888", linewidth=0.8)
    styles = {"all": "-", "H100": "--", "B200": ":"}
    for form, color in colors_for(_forms(records)).items():
        for gpu, style in styles.items():
            rows = sorted((r for r in records if r["form"] == form and r["gpu"] == gpu), key=lambda r: r["nominal"])
            if not rows:
                continue
            x = 100 * np.array([r["nominal"] for r in rows])
            y = 100 * np.array([r["observed"] for r in rows])
            marker = "o" if gpu == "all" else None
            panel.plot(x, y, style, color=color, marker=marker, markersize=4, linewidth=1.6 if gpu == "all" else 1.0)
    panel.set_xlim(0, 100)
    panel.set_ylim(0, 100)
    panel.set_aspect("equal")
    panel.set_xlabel("nominal level of the central interval (%)")
    panel.set_ylabel("held-out measurements inside (%)")
    panel.grid(color="#e5e5e5", linewidth=0.8)
    for spine in ("top", "right"):
        panel.spines[spine].set_visible(False)
    return panel


def pit_layout(records: Sequence[Mapping]) -> Layout:
    """The layout of :func:`plot_pit`: a panel per form."""
    note = (
        "PIT: the posterior predictive probability below each held-out measurement, its model unseen. A calibrated "
        "model gives a flat histogram (grey line); a U shape means intervals too narrow, a hump too wide, a slope "
        "a bias. The grey band is where 90% of bars would fall for independent points."
    )
    return Layout((1,) * len(_forms(records)), (WIDTH_IN, 1.2 + 2.0 * len(_forms(records))), (), note)


def plot_pit(records: Sequence[Mapping], ax: Axes | Sequence[Axes] | None = None, bins: int = 10) -> Axes | np.ndarray:
    """Histograms of the leave-one-model-out PIT values, one panel per form.

    Parameters
    ----------
    records : sequence of dict
        One record per held-out configuration (``form``, ``pit``), as in ``held_out.json``.
    ax : matplotlib.axes.Axes or sequence of them, optional
        One axes per form; a new figure if None.
    bins : int
        Equal-width bins on [0, 1].

    Returns
    -------
    matplotlib.axes.Axes or numpy.ndarray of them

    Examples
    --------
    >>> import uqenergy
    >>> ax = uqenergy.plot_pit([{"form": "f", "pit": p} for p in (0.1, 0.5, 0.9)])
    >>> ax.get_xlabel()
    'PIT of the held-out measurement'
    """
    from scipy import stats  # here only: a run's report draws no PIT and imports no scipy.stats

    forms = _forms(records)
    axes = _panels(ax, pit_layout(records))
    edges = np.linspace(0, 1, bins + 1)
    for panel, (form, color) in zip(axes, colors_for(forms).items()):
        pit = np.array([r["pit"] for r in records if r["form"] == form])
        panel.hist(pit, edges, color=color, alpha=0.8, edgecolor="white")
        low, high = stats.binom.ppf([0.05, 0.95], pit.size, 1 / bins)
        panel.axhspan(low, high, color="#dddddd", zorder=0)
        panel.axhline(pit.size / bins, color="#888888", linewidth=0.8)
        panel.set_ylabel(f"{form}\nconfigurations")
        panel.set_xlim(0, 1)
        for spine in ("top", "right"):
            panel.spines[spine].set_visible(False)
    axes[-1].set_xlabel("PIT of the held-out measurement")
    return _drawn(axes)


def held_out_layout(records: Sequence[Mapping]) -> Layout:
    """The layout of :func:`plot_held_out`: one square panel per form, side by side; a colour per GPU."""
    forms = _forms(records)
    key = tuple(
        Line2D([], [], color=c, marker="o", linestyle="", markersize=4, label=g)
        for g, c in colors_for(sorted({r["gpu"] for r in records})).items()
    )
    note = "Each point: one measured configuration against the median of the posterior predictive when its whole model was held out. Dashed lines: a factor of 2."
    return Layout((1,) * len(forms), (5.5, 1.4 + 3.4 * len(forms)), key, note)


def plot_held_out(records: Sequence[Mapping], ax: Axes | Sequence[Axes] | None = None) -> Axes | np.ndarray:
    """Measured GPU energy per output token against the leave-one-model-out prediction, one panel per form.

    Parameters
    ----------
    records : sequence of dict
        ``held_out.json`` records (``form``, ``gpu``, ``log_energy``, ``predicted_median``; ln J/token).
    ax : matplotlib.axes.Axes or sequence of them, optional
        One axes per form; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes or numpy.ndarray of them
    """
    forms = _forms(records)
    axes = _panels(ax, held_out_layout(records))
    colors = colors_for(sorted({r["gpu"] for r in records}))
    values = np.exp([v for r in records for v in (r["log_energy"], r["predicted_median"])])
    lo, hi = values.min() / 1.5, values.max() * 1.5
    for panel, form in zip(axes, forms):
        rows = [r for r in records if r["form"] == form]
        for gpu, color in colors.items():
            x = np.exp([r["predicted_median"] for r in rows if r["gpu"] == gpu])
            y = np.exp([r["log_energy"] for r in rows if r["gpu"] == gpu])
            panel.scatter(x, y, s=9, color=color, alpha=0.7, linewidths=0)
        for factor, style in ((1, "-"), (2, "--"), (0.5, "--")):
            panel.plot([lo, hi], [lo * factor, hi * factor], style, color="#888888", linewidth=0.8)
        panel.set_xscale("log")
        panel.set_yscale("log")
        panel.set_xlim(lo, hi)
        panel.set_ylim(lo, hi)
        panel.set_title(form, fontsize=10)
        panel.set_ylabel("measured (J/token)")
        for spine in ("top", "right"):
            panel.spines[spine].set_visible(False)
    axes[-1].set_xlabel("predicted median, model held out (J/token)")
    return _drawn(axes)
