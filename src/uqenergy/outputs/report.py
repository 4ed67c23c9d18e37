"""report.md, a self-contained report.html and figures/*.png for an output folder, from its files alone.

The report is generic over what a folder holds: the JSON results
(``summary.json``, ``sobol.json``, ``fleet.json``, ``compare.json``) and
``samples.nc`` (saved draws that shape the distributions; priors, seed, versions
and input-file hashes in its attributes). Whatever exists is reported, so every
command gets a report by calling :func:`write_report` on the folder it is
filling, and ``uqenergy report DIR`` rebuilds one with :func:`rerender`.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from uqenergy._version import __version__
from uqenergy.analyses.series import blend_definitions, series_draws, setting_attrs
from uqenergy.config.errors import InputError
from uqenergy.config.files import file_sha256
from uqenergy.config.intervals import QUANTILES
from uqenergy.outputs import plots
from uqenergy.outputs.files import MARKER, is_output_folder, write_atomically

#: The JSON results a report reads, with the keys it needs in each record.
RESULT_FILES = {
    "summary.json": ("scenario", "series", "pathway", "p5", "median", "p95", "draws"),
    "sobol.json": (
        "scenario",
        "series",
        "target",
        "factor",
        "S1",
        "S1_conf",
        "ST",
        "ST_conf",
        "base_samples",
        "converged",
    ),
    "fleet.json": ("scenario", "mix", "pathway", "quantity", "method", "p5", "median", "p95", "mean"),
    "compare.json": (
        "estimate_id",
        "value_wh",
        "compared_statistic",
        "boundary",
        "scenario",
        "series",
        "percentile",
        "ratio_median",
        "ratio_p5",
        "ratio_p95",
        "verdict",
    ),
    "coverage.json": ("form", "level", "nominal", "observed", "observed_per_model", "n_points", "n_models", "gpu"),
    "loo.json": ("form", "rank", "elpd_loo", "se", "elpd_diff", "dse", "k_bad", "k_very_bad", "k_max", "n_points"),
    "coefficients.json": ("form", "parameter", "mean", "sd", "hdi_low", "hdi_high", "r_hat"),
    "held_out.json": ("form", "model", "gpu", "log_energy", "pit", "predicted_median"),
}
#: results drawn in figures but too long to list in the report
FIGURE_ONLY = frozenset({"held_out.json"})
TEXT_KEYS = frozenset(
    {
        "scenario",
        "series",
        "pathway",
        "target",
        "factor",
        "mix",
        "quantity",
        "method",
        "estimate_id",
        "verdict",
        "form",
        "level",
        "gpu",
        "parameter",
        "model",
        "compared_statistic",
        "boundary",
        "claim",
        "version",
        "date",
        "statistic",
        "interval",
    }
)
FLAG_KEYS = frozenset({"converged"})
NUMBER_KEYS = frozenset({"p5", "p25", "median", "p75", "p95", "mean", "hdi_low", "hdi_high", "draws"})
#: samples.nc attributes the report reads, by type; JSON ones as (list of records with these keys, their number keys)
TEXT_ATTRS = ("study", "scenario", "settings", "boundary", "measured_task", "prior_warnings", "note", "overrides")
TEXT_ATTR_PREFIXES = ("blend_members_", "setting_")
COUNT_ATTRS = ("draws_per_model", "seed", "saved_draws")
JSON_ATTRS = {
    "priors": (
        ("prior", "model", "distribution", "bounds", "kind", "mass_outside_bounds", "source", "file"),
        ("mass_outside_bounds",),
    ),
    "throughput": (("model", "what", "throughput", "hardware", "source"), ()),
    "length_ratios": (
        ("reasoning_model", "chat_model", "pair", "reasoning_tokens", "chat_tokens", "ratio"),
        ("reasoning_tokens", "chat_tokens", "ratio"),
    ),
}
POSITIVE_KEYS = frozenset({"value_wh", "ratio_median", "ratio_p5", "ratio_p95"})  # divided by in the figures
COUNT_KEYS = frozenset({"draws", "n_points", "n_models"})  # whole numbers >= 1
FRACTION_KEYS = frozenset({"nominal", "observed", "observed_per_model", "pit"})  # shares and probabilities, in [0, 1]
LOG_KEYS = frozenset({"log_energy", "predicted_median"})  # ln J/token, drawn as exp(value): a finite positive energy
LOG_LIMIT = 700.0  # exp(700) ~ 1e304: within the float range either way
#: what a measured study's samples.nc holds for its figures: the measured points and the drawn concurrency
MEASURED_VARIABLES = ("measured_batch", "measured_energy_per_token_j", "measured_points", "concurrency")
REPORT_PAGES = frozenset({"report.md", "report.html", MARKER})
FIGURE_ROWS = 30  # a figure draws at most this many series (or settings, inputs, estimates); the tables hold all
FIGURE_PANELS = 6  # a figure of a panel or a colour per regression form draws at most this many forms
FIGURES_PER_KIND = 12  # at most this many figures of one kind (per scenario, per Sobol series); the tables hold all
FIGURE_TEXT_CHARS = 48  # a name longer than this is cut short in the figures (the tables keep it whole)
FIGURE_LINE_CHARS = 90  # and a title or source line longer than this
SHAPE_DRAWS = 100_000  # at most this many saved draws per model are read for the figures
TRACE_START_DRAWS = 1_000
TRACE_QUANTILES = {q: QUANTILES[q] for q in plots.CONVERGENCE_QUANTILES}
PROVENANCE_SKIP = ("priors", "prior_warnings", "note", "length_ratios")
READING_GUIDE = (
    "Energy is facility energy (PUE included) per query, in watt-hours (Wh). A 50% or 90% interval holds that "
    "share of the Monte Carlo draws (P25-P75, P5-P95): it mixes what varies from query to query (answer length) "
    "with what we do not know exactly (power, PUE, throughput)."
)
BLEND_GUIDE = (
    "A blend pools the draws of the models it names; a trimmed blend (blend-paper, as in Oviedo et al., "
    "Joule 2026) keeps only the middle of each model's draws, which narrows its spread."
)
TWO_LEVEL_GUIDE = (
    "This is a two-level study: the mean energy per query is uncertain only through what we do not know "
    "(its 90% credible interval), while one query's energy also varies with the query."
)


@dataclass
class OutputFolder:
    """What a finished output folder holds, as plain records and arrays."""

    path: Path
    results: dict[str, list[dict]]  # JSON file name -> its records
    attrs: dict  # samples.nc attributes ({} without samples.nc)
    energy_wh: xr.DataArray | None  # saved draws ([setting,] model, draw), at most SHAPE_DRAWS per model
    measured: xr.Dataset | None = None  # a measured study's points (model, point) and concurrency draws (model, draw)


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    path: str  # relative to the output folder
    caption: str


def _check_value(value, key: str) -> str | None:
    """What is wrong with a record's value for ``key``, or None."""
    if key in TEXT_KEYS:
        return None if isinstance(value, str) else "text"
    if key in FLAG_KEYS:
        return None if isinstance(value, bool) else "true or false"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "a finite number"
    if key in LOG_KEYS and abs(value) > LOG_LIMIT:
        return f"a natural logarithm within ±{LOG_LIMIT:g}"
    if key in COUNT_KEYS and (not isinstance(value, int) or value < 1):
        return "a whole number >= 1"
    if key in FRACTION_KEYS and not 0 <= value <= 1:
        return "a number in [0, 1]"
    return "a positive number" if key in POSITIVE_KEYS and value <= 0 else None


def _read_records(path: Path, required: tuple[str, ...] | None = None) -> list[dict]:
    """A JSON list of flat records, each with the ``required`` keys (default: those of its result file) well typed."""
    required = RESULT_FILES[path.name] if required is None else required
    try:
        records = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, None, f"cannot be read as JSON: {exc}", "a JSON list of flat records") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(path, None, "is not a list of records", "a JSON list of flat records")
    checked = set(required) | TEXT_KEYS | FLAG_KEYS | NUMBER_KEYS
    for i, record in enumerate(records):
        missing = [key for key in required if key not in record]
        if missing:
            raise InputError(path, f"record {i}", "lacks " + ", ".join(missing), "records with " + ", ".join(required))
        for key in checked & record.keys():
            if (allowed := _check_value(record[key], key)) is not None:
                raise InputError(path, f"record {i}: {key}", f"{record[key]!r} is not allowed", allowed)
    return records


def check_attrs(attrs: dict, path: Path) -> dict:
    """The attributes of a samples.nc, checked where the report reads them (an edited file: the one-line error)."""

    def refuse(key: str, value, allowed: str):
        raise InputError(path, f"attribute {key}", f"{str(value)[:60]!r} is not allowed", allowed)

    for key, value in attrs.items():
        if key in TEXT_ATTRS or key.startswith(TEXT_ATTR_PREFIXES):
            if not isinstance(value, str):
                refuse(key, value, "text")
        elif key in COUNT_ATTRS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                refuse(key, value, "a whole number >= 0")
        elif key.startswith("blend_trim_"):
            trim = _json_or_none(value)
            if not isinstance(trim, list) or not all(
                isinstance(w, list) and len(w) == 2 and all(_finite(x) for x in w) for w in trim
            ):
                refuse(key, value, "JSON [[low, high], ...] percentile windows")
        elif key in JSON_ATTRS:
            keys, numbers = JSON_ATTRS[key]
            rows = _json_or_none(value)
            if not isinstance(rows, list) or not all(
                isinstance(r, dict) and set(keys) <= r.keys() and all(_finite(r[n]) for n in numbers) for r in rows
            ):
                refuse(key, value, "a JSON list of records with " + ", ".join(keys))
    return attrs


def _json_or_none(text):
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def read_output(path: str | Path) -> OutputFolder:
    """Read an output folder's JSON results and the attributes and saved energy draws of its samples.nc."""
    path = Path(path)
    results = {name: _read_records(path / name) for name in RESULT_FILES if (path / name).is_file()}
    attrs, energy_wh, measured = {}, None, None
    if (path / "samples.nc").is_file():
        try:
            with xr.open_dataset(path / "samples.nc", engine="h5netcdf") as dataset:
                attrs = check_attrs({k: _plain(v) for k, v in dataset.attrs.items()}, path / "samples.nc")
                energy_wh = _saved_energy(dataset)
                if set(MEASURED_VARIABLES) <= set(dataset.variables) and "setting" not in dataset.dims:
                    measured = dataset[list(MEASURED_VARIABLES)].isel(draw=slice(0, SHAPE_DRAWS)).load()
        except (OSError, ValueError) as exc:
            raise InputError(
                path / "samples.nc", None, f"cannot be read: {exc}", "a samples.nc written by uqenergy"
            ) from None
    if not results and not attrs:
        raise InputError(
            path, None, "holds no uqenergy results", "a folder with samples.nc or any of " + ", ".join(RESULT_FILES)
        )
    return OutputFolder(path, results, attrs, energy_wh, measured)


def _saved_energy(dataset: xr.Dataset) -> xr.DataArray | None:
    """The saved draws of energy per query as ([setting,] model, draw): a two-level run's (model, outer, kept)
    draws are stacked into one ``draw`` dimension."""
    if "energy_wh" not in dataset:
        return None
    energy_wh = dataset["energy_wh"]
    if energy_wh.dims == ("model", "outer", "kept"):
        energy_wh = energy_wh.stack(draw=("outer", "kept")).drop_vars(["draw", "outer", "kept"])
    if energy_wh.dims not in (("model", "draw"), ("setting", "model", "draw")):
        return None
    return energy_wh.isel(draw=slice(0, SHAPE_DRAWS)).load()


def _trace_point(series: str, values: np.ndarray) -> dict:
    point = {"series": series, "draws": int(values.size)}
    for name, q in zip(TRACE_QUANTILES, np.quantile(values, list(TRACE_QUANTILES.values()))):
        point[name] = float(q)
    return point


def convergence_records(energy_wh: xr.DataArray, attrs: dict, reported: list[dict]) -> list[dict]:
    """Quantiles of the first n saved draws (n doubling from 1,000) and the reported all-draw value, per series."""
    saved = energy_wh.sizes["draw"]
    checkpoints = [n for n in TRACE_START_DRAWS * 2 ** np.arange(40) if n < saved] + [saved]
    final = {r["series"]: r for r in reported}
    trace = [
        _trace_point(series, values)
        for n in checkpoints
        for series, values in series_draws(energy_wh, attrs, int(n)).items()
        if series in final
    ]
    largest = {p["series"]: p["draws"] for p in trace}
    trace += [
        {"series": s, "draws": r["draws"], **{q: r[q] for q in TRACE_QUANTILES}}
        for s, r in final.items()
        if r["draws"] > largest.get(s, 0)
    ]
    return trace


def source_line(out: OutputFolder) -> str:
    """The figures' source line: package version, study, scenario, seed and draws."""
    a = out.attrs
    if "study" not in a:
        return f"Source: uqenergy {__version__} · " + ", ".join(out.results)
    return (
        f"Source: uqenergy {a.get('uqenergy_version', __version__)} · study {a['study']} ({a.get('scenario', '?')}) · "
        f"seed {a.get('seed', '?')} · {a.get('draws_per_model', 0):,} draws per model"
    )


def _slug(text: str) -> str:
    """A file-name part for ``text``: lower-case letters, digits and dashes, at most 60 characters."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower())[:60].strip("-") or "all"


def _energy_records(summary: list[dict], scenario: str) -> list[dict]:
    return [r for r in summary if r.get("scenario") == scenario and r.get("quantity", "energy_wh") == "energy_wh"]


def render(
    path: Path,
    layout: plots.Layout,
    plot: Callable,
    *args,
    title: str,
    source: str,
    size: tuple[float, float] | None = None,
    **kwargs,
) -> Path:
    """Write a PNG of ``plot(*args, **kwargs)`` on a figure laid out as ``layout``, with a title and a source line.

    The figure is ``size`` inches (default: the layout's), rendered with matplotlib's
    Agg canvas on a fresh :class:`~matplotlib.figure.Figure`: no pyplot state.
    """
    fig = Figure(figsize=size or layout.size, dpi=plots.DPI, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    plot(*args, ax=plots.lay_out(fig, layout, title=title, source=source), **kwargs)
    canvas.print_png(path)  # savefig would lay the figure out twice, doubling the cost
    return path


def shown_rows(
    rows: list[dict], key: str | None = "series", holder: str = "the table", limit: int = FIGURE_ROWS
) -> tuple[list[dict], str]:
    """The rows a figure draws: those of the first ``limit`` values of ``key`` (None: the first rows), and a
    sentence for the caption when some are left to ``holder`` (the report's table, or a results file)."""
    values = list(dict.fromkeys(r.get(key) for r in rows)) if key else list(range(len(rows)))
    if len(values) <= limit:
        return rows, ""
    if key is None:
        return rows[:limit], f" The figure draws the first {limit} of {len(rows):,} rows; {holder} holds all."
    kept = set(values[:limit])
    return [r for r in rows if r.get(key) in kept], (
        f" The figure draws the first {limit} of {len(values):,} {key} values; {holder} holds all."
    )


def clipped(value, chars: int = FIGURE_TEXT_CHARS):
    """``value`` with every string in it (in lists, tuples, dict keys and values) cut to ``chars`` characters,
    so that a 10,000-character name cannot break a figure's layout."""
    if isinstance(value, str):
        return value if len(value) <= chars else value[: chars - 1] + "…"
    if isinstance(value, (list, tuple)):
        return type(value)(clipped(v, chars) for v in value)
    if isinstance(value, dict):
        return {clipped(k, chars): clipped(v, chars) for k, v in value.items()}
    return value


def make_figures(out: OutputFolder, fig_dir: Path) -> list[Image]:
    """Every figure the folder's results support, written to ``fig_dir``; returned with captions.

    Figures are bounded: each draws at most :data:`FIGURE_ROWS` series (:func:`shown_rows`), and at most
    :data:`FIGURES_PER_KIND` figures of one kind are drawn; the report's tables hold every record."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    source, images = clipped(source_line(out), FIGURE_LINE_CHARS), []
    drawn: dict[str, int] = {}

    def add(name: str, caption: str, layout: plots.Layout, plot: Callable, *args, **kwargs) -> None:
        kind = name.partition("-")[0]
        drawn[kind] = drawn.get(kind, 0) + 1
        if drawn[kind] > FIGURES_PER_KIND:
            return
        args = clipped(args)
        kwargs = clipped(kwargs) | {"title": clipped(kwargs["title"], FIGURE_LINE_CHARS)}
        render(fig_dir / name, layout, plot, *args, source=source, **kwargs)
        images.append(Image(f"{fig_dir.name}/{name}", caption))

    summary = out.results.get("summary.json", [])
    if out.measured is not None:
        _measured_figures(out, out.measured, summary, add)
        summary = [r for r in summary if not isinstance(r.get("gpu_count"), int)]  # blends: the general figures
    sampled = out.attrs.get("scenario")
    by_setting = out.energy_wh is not None and "setting" in out.energy_wh.dims
    draws = series_draws(out.energy_wh, out.attrs) if out.energy_wh is not None and not by_setting else {}
    labels = plots.series_labels(out.attrs)
    for scenario in dict.fromkeys(r["scenario"] for r in summary):
        records = _energy_records(summary, scenario)
        if any("setting" in r for r in records):
            for series, all_rows in _by_setting(records, out.attrs).items():
                rows, more = shown_rows(all_rows)
                add(
                    f"settings-{_slug(scenario)}-{_slug(series)}.png",
                    f"Energy per query, {scenario}, {series}: one row per setting of the study, on a log axis, with "
                    "the median, 50% and 90% intervals (every model of every setting is in the table below)." + more,
                    plots.distributions_layout(rows, shapes := _setting_shapes(out, series) if by_setting else {}),
                    plots.plot_distributions,
                    rows,
                    shapes,
                    title=f"Energy per query ({scenario}), {series}: by setting",
                    labels={},
                )
            continue
        baseline, more = shown_rows([r for r in records if r["pathway"] == "baseline"])
        means = {
            r["series"]: r
            for r in summary
            if r["scenario"] == scenario and r["pathway"] == "baseline" and r.get("quantity") == "mean_energy_wh"
        }
        with_pathways = {t["series"] for t in records if t["pathway"] != "baseline"}
        targets, more_targets = shown_rows([r for r in records if r["series"] in with_pathways])
        shapes = draws if scenario == sampled else {}
        if baseline:
            add(
                f"distributions-{_slug(scenario)}.png",
                f"Energy per query, {scenario}: the distribution of each model and blend on a log axis (nothing "
                "trimmed but what a blend's own definition trims), with the median, 50% and 90% intervals"
                + (" and, below each, the 90% credible interval of the mean energy per query." if means else ".")
                + more,
                plots.distributions_layout(baseline, shapes, means),
                plots.plot_distributions,
                baseline,
                shapes,
                title=f"Energy per query ({scenario}): models and blends",
                labels=labels,
                means=means,
            )
        if targets:
            add(
                f"pathways-{_slug(scenario)}.png",
                f"Efficiency pathways, {scenario}: baseline, each pathway alone and all combined, "
                "with the median reduction against the baseline." + more_targets,
                plots.pathways_layout(targets),
                plots.plot_pathways,
                targets,
                title=f"Efficiency pathways ({scenario})",
                labels=labels,
            )
        if shapes and baseline and out.energy_wh is not None:
            trace = convergence_records(out.energy_wh, out.attrs, baseline)
            add(
                f"convergence-{_slug(scenario)}.png",
                f"Convergence, {scenario}: P5, median and P95 after n draws against the reported value.",
                plots.convergence_layout(trace),
                plots.plot_convergence,
                trace,
                title=f"Convergence of the reported quantiles ({scenario})",
            )
    sobol = out.results.get("sobol.json", [])
    for series in dict.fromkeys(r["series"] for r in sobol):
        rows, more = shown_rows([r for r in sobol if r["series"] == series], None)
        add(
            f"sobol-{_slug(series)}.png",
            f"Sobol sensitivity of {series}: first-order (S1) and total-order (ST) indices with confidence intervals."
            + more,
            plots.sobol_layout(rows),
            plots.plot_sobol_indices,
            rows,
            title=f"Which input drives the spread of {series}: Sobol indices",
        )
    fleet, more = shown_rows(fleet_headline_records(out.results.get("fleet.json", [])), None)
    if fleet:
        if any("setting" in r for r in fleet):
            add(
                "fleet.png",
                "Fleet totals across the study's settings, per workload mix: honest median in its 90% "
                "credible band, paper method dashed (every record is in the table below)." + more,
                plots.fleet_sweep_layout(fleet),
                plots.plot_fleet_sweep,
                fleet,
                title="Fleet energy across settings",
            )
        else:
            add(
                "fleet.png",
                "Fleet totals per workload mix and scenario, with 90% intervals (every record is in the table below)."
                + more,
                plots.fleet_layout(fleet),
                plots.plot_fleet,
                fleet,
                title="Fleet energy, water and carbon",
            )
    if coverage := out.results.get("coverage.json"):
        coverage, more = shown_rows(coverage, "form", limit=FIGURE_PANELS)  # a colour per form
        add(
            "calibration.png",
            "Leave-one-model-out calibration: the share of held-out measurements inside each central posterior "
            "predictive interval against its nominal level, per regression form." + more,
            plots.calibration_layout(coverage),
            plots.plot_calibration,
            coverage,
            title="Do the intervals hold what they claim?",
        )
    if held_out := out.results.get("held_out.json"):
        held_out, more = shown_rows(held_out, "form", "held_out.json", FIGURE_PANELS)  # a panel per form
        points, more_gpus = shown_rows(held_out, "gpu", "held_out.json")  # a colour and key entry per GPU
        add(
            "pit.png",
            "Where each held-out measurement falls in its posterior predictive distribution (PIT), per form." + more,
            plots.pit_layout(held_out),
            plots.plot_pit,
            held_out,
            title="PIT of held-out measurements",
        )
        add(
            "held-out.png",
            "Measured GPU energy per output token against the prediction made with its model held out."
            + more
            + more_gpus,
            plots.held_out_layout(points),
            plots.plot_held_out,
            points,
            title="Predictions for models the fit never saw",
        )
    if out.results.get("compare.json"):
        estimates, more = shown_rows(out.results["compare.json"], None)
        unverified = _unverified_estimates(out.path)
        add(
            "published-estimates.png",
            "Published per-query estimates placed on our distribution (log axis); "
            "hollow markers: figures not confirmed in their cited source." + more,
            plots.published_estimates_layout(estimates, unverified),
            plots.plot_published_estimates,
            estimates,
            title="Published estimates on our distribution",
            unverified=unverified,
        )
    return images


def _headline_series(records: list[dict], attrs: dict) -> list[str]:
    """The series a headline and a settings figure report: the blends (untrimmed first), or every model."""
    blends = blend_definitions(attrs)
    names = list(dict.fromkeys(r["series"] for r in records))
    chosen = [n for n in names if n in blends] or names
    return sorted(chosen, key=lambda n: bool(blends.get(n, ([], []))[1]))


def _by_setting(records: list[dict], attrs: dict) -> dict[str, list[dict]]:
    """Baseline energy records of each headline series, one per setting, each named by its setting."""
    baseline = [r for r in records if r["pathway"] == "baseline"]
    return {
        series: [r | {"series": r["setting"]} for r in baseline if r["series"] == series]
        for series in _headline_series(baseline, attrs)
    }


def _setting_shapes(out: OutputFolder, series: str) -> dict[str, np.ndarray]:
    """Saved draws of one series under each setting, keyed by the setting."""
    assert out.energy_wh is not None
    shapes = {}
    for setting in out.energy_wh["setting"].values:
        draws = series_draws(out.energy_wh.sel(setting=setting), setting_attrs(out.attrs, str(setting)))
        if series in draws:
            shapes[str(setting)] = draws[series]
    return shapes


def concurrency_band(concurrency: xr.DataArray) -> dict[str, float]:
    """P5, P25, median, P75 and P95 of the drawn concurrency (every configuration draws it from one prior)."""
    values = np.asarray(concurrency).ravel()
    return {name: float(np.quantile(values, QUANTILES[name])) for name in ("p5", "p25", "median", "p75", "p95")}


def measured_curve_records(measured: xr.Dataset, summary: list[dict]) -> list[dict]:
    """Each configuration's measured points, named as its summary record names it (model, GPU, GPU count)."""
    described = {r["series"]: r for r in summary if isinstance(r.get("gpu_count"), int)}
    curves = []
    for name in measured["model"].values:
        if str(name) not in described:
            continue
        n = int(measured["measured_points"].sel(model=name))
        point = measured.sel(model=name).isel(point=slice(0, n))
        r = described[str(name)]
        curves.append(
            {
                "model": r["model"],
                "gpu": r["gpu"],
                "gpu_count": r["gpu_count"],
                "mean_batch": point["measured_batch"].values.tolist(),
                "energy_per_token_j": point["measured_energy_per_token_j"].values.tolist(),
            }
        )
    return curves


def _measured_figures(out: OutputFolder, measured: xr.Dataset, summary: list[dict], add: Callable) -> None:
    """A measured study's figures: configurations H100 beside B200, and energy per token against concurrency."""
    baseline = [r for r in _energy_records(summary, out.attrs.get("scenario", "")) if r["pathway"] == "baseline"]
    configurations, more = shown_rows([r for r in baseline if isinstance(r.get("gpu_count"), int)])
    boundary = out.attrs.get("boundary", "?")
    draws = series_draws(out.energy_wh, out.attrs) if out.energy_wh is not None else {}
    add(
        "measured-configurations.png",
        f"Energy per query of each measured configuration at the {boundary} boundary, each model's H100 rows "
        "above its B200 rows (log axis)." + more,
        plots.measured_distributions_layout(configurations, draws),
        plots.plot_measured_distributions,
        configurations,
        draws,
        title=f"Energy per query by configuration ({out.attrs.get('measured_task', '?')}, {boundary} boundary)",
    )
    curves = measured_curve_records(measured, configurations)
    band = concurrency_band(measured["concurrency"])
    add(
        "energy-per-token.png",
        "GPU energy per output token against concurrency: measured points, the log-log interpolation between them, "
        "and the concurrency prior's 50% and 90% band.",
        plots.energy_per_token_layout(curves, band),
        plots.plot_energy_per_token,
        curves,
        band,
        title="GPU energy per output token against concurrency (ML.ENERGY v3)",
    )


def _unverified_estimates(folder: Path) -> set[str]:
    """Ids of estimates marked ``verified = false`` in the folder's estimates.json, if it has one."""
    path = folder / "estimates.json"
    return (
        {e["estimate_id"] for e in _read_records(path, ("estimate_id",)) if not e.get("verified", True)}
        if path.is_file()
        else set()
    )


def _cell(value) -> str:
    value = _plain(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value).replace("\n", " ")


def records_table(records: list[dict]) -> Table:
    """Every record as a row; columns are all keys, in first-seen order."""
    header = list(dict.fromkeys(k for r in records for k in r))
    return Table(header, [[_cell(r.get(k, "")) for k in header] for r in records])


QUANTITY_NAMES = {
    "energy_wh": "energy per query",
    "mean_energy_wh": "mean energy per query",
    "median_energy_wh": "energy of the median query",
}


def _intervals(r: dict, unit: str, band: str = "90% interval") -> str:
    text = f"median {plots.fmt(r['median'])} {unit}"
    if "p25" in r and "p75" in r:
        text += f", 50% interval {plots.fmt(r['p25'])}-{plots.fmt(r['p75'])}"
    text += f", {band} {plots.fmt(r['p5'])}-{plots.fmt(r['p95'])} {unit}"
    if "hdi_low" in r and "hdi_high" in r:
        text += f" (highest-density interval {plots.fmt(r['hdi_low'])}-{plots.fmt(r['hdi_high'])}"
        if r["hdi_low"] == 0:
            text += ": it starts at 0 Wh, where queries of zero output tokens put a point mass"
        text += ")"
    return text


def _pooled(series: str, blends: dict) -> str:
    if series not in blends:
        return ""
    members, trim = blends[series]
    return f" (pool of {', '.join(members)}{', trimmed' if trim else ''})"


def _summary_headlines(records: list[dict], attrs: dict) -> list[str]:
    """Blends first (untrimmed before trimmed) or, without blends, every model; then each one's pathway gains.

    With settings, one line per series running through the settings; a two-level study leads with the
    credible interval of the mean energy per query."""
    if any("setting" in r for r in records):
        return _settings_headlines(records, attrs)
    blends = blend_definitions(attrs)
    energy = [r for r in records if r.get("quantity", "energy_wh") == "energy_wh"]
    chosen = _headline_series([r for r in energy if r.get("pathway") == "baseline"], attrs)
    baseline = {r["series"]: r for r in reversed(energy) if r.get("pathway") == "baseline"}  # the first of each
    means = {
        m["series"]: m
        for m in reversed(records)
        if m["pathway"] == "baseline" and m.get("quantity") == "mean_energy_wh"
    }
    by_series: dict[tuple, list[dict]] = {}
    for p in records:
        by_series.setdefault((p["series"], p["scenario"], p.get("quantity")), []).append(p)
    lines = []
    for series in chosen:
        r, mean = baseline[series], means.get(series)
        where = f"{r['scenario']}, {series}{_pooled(series, blends)}"
        if mean is not None:
            lines.append(
                f"mean energy per query, {where}: {plots.fmt(mean['median'])} Wh, 90% credible interval "
                f"{plots.fmt(mean['p5'])}-{plots.fmt(mean['p95'])} Wh (what we do not know), from "
                f"{mean['draws']:,} states of knowledge."
            )
        lines.append(
            f"energy per query{', one query' if mean is not None else ''}, {where}: {_intervals(r, 'Wh')}, "
            f"from {r['draws']:,} draws."
        )
        gains = [
            f"{p['pathway']} ÷{r['median'] / p['median']:.2g}"
            for p in by_series[(r["series"], r["scenario"], r.get("quantity"))]
            if p["pathway"] != "baseline" and p["median"] > 0
        ]
        if gains:
            lines.append(
                f"efficiency pathways on {r['series']} ({r['scenario']}), median reduction: {', '.join(gains)}."
            )
    return lines


def _settings_headlines(records: list[dict], attrs: dict) -> list[str]:
    """One line per (scenario, headline series): its median and 90% interval under each setting, by name."""
    names = [n for n in attrs.get("settings", "").split(", ") if n]
    each = [blend_definitions(setting_attrs(attrs, n)) for n in names] or [blend_definitions(attrs)]
    blends = {k: v for k, v in each[0].items() if all(e.get(k) == v for e in each)}  # pools the settings share
    lines = []
    for scenario in dict.fromkeys(r["scenario"] for r in records):
        energy = _energy_records(records, scenario)
        for series, rows in _by_setting(energy, attrs).items():
            parts = [
                f"{r['setting']} {plots.fmt(r['median'])} Wh (90% {plots.fmt(r['p5'])}-{plots.fmt(r['p95'])})"
                for r in rows
            ]
            lines.append(
                f"energy per query, {scenario}, {series}{_pooled(series, blends)}, median by setting: "
                + "; ".join(parts)
                + "."
            )
    return lines


def _sobol_headlines(records: list[dict], attrs: dict) -> list[str]:
    """Per (setting, series, target), the dominant factor and group at the last base sample size: what the
    console prints (:func:`uqenergy.analyses.sensitivity_study.dominant`)."""
    from uqenergy.analyses.sensitivity import GROUP_PREFIX  # here only: SALib and scipy.stats are no run's imports
    from uqenergy.analyses.sensitivity_study import dominant

    lines = []
    for factor, group in dominant(records, "sobol"):
        tops = [
            f"{kind} {r['factor'].removeprefix(GROUP_PREFIX)} (ST {r['ST']:.2f} ± {r['ST_conf']:.2f}, "
            f"S1 {r['S1']:.2f} ± {r['S1_conf']:.2f})"
            for kind, r in (("factor", factor), ("group", group))
            if r is not None
        ]
        state = "converged" if factor["converged"] else "NOT converged"
        inner = f", each mean over {factor['inner_draws']:,} common inner draws" if "inner_draws" in factor else ""
        where = ", ".join(str(factor[k]) for k in ("scenario", "setting", "series", "target") if k in factor)
        lines.append(f"{where}: dominant {'; '.join(tops)}; {state} at {factor['base_samples']:,} base samples{inner}.")
    return lines


FLEET_HEADLINE_PATHWAYS = ("baseline", "combined", "interventions")


def fleet_headline_records(records: list[dict]) -> list[dict]:
    """The fleet records a figure and the headlines hold: energy per day of the baseline and of the combined and
    interventions scenarios; without settings also their reduction factors, and water and carbon at baseline."""
    sweep = any("setting" in r for r in records)
    return [
        r
        for r in records
        if r["pathway"] in FLEET_HEADLINE_PATHWAYS
        and (
            r["quantity"] == "energy_gwh_per_day"
            or (
                not sweep
                and (
                    r["quantity"] == "reduction_factor"
                    or (r["quantity"].endswith("_per_day") and r["pathway"] == "baseline")
                )
            )
        )
    ]


def _fleet_headlines(records: list[dict], attrs: dict) -> list[str]:
    """One line per record; with settings, one line per (mix, pathway, method) running through the settings."""
    lines: dict[tuple, list[str]] = {}
    for r in fleet_headline_records(records):
        where = (
            f"{r['scenario']}, {r['mix']}, {r['pathway']}{', grid ' + r['grid'] if 'grid' in r else ''}, "
            f"{r['quantity']} ({r['method']})"
        )
        unit = plots.unit_of(r["quantity"])
        band = plots.FLEET_BANDS.get(r["method"], "90% interval")
        if "setting" in r:
            lines.setdefault((where,), []).append(
                f"{r['setting']} {plots.fmt(r['median'])} ({band} {plots.fmt(r['p5'])}-{plots.fmt(r['p95'])})"
            )
        else:
            lines[(where, len(lines))] = [f"{_intervals(r, unit, band)}, mean {plots.fmt(r['mean'])}"]
    return [f"{key[0]}: {'; '.join(parts)}." for key, parts in lines.items()]


def _compare_headlines(records: list[dict], attrs: dict) -> list[str]:
    """One line per record; a closed model's interval is named predictive, a scenario's credible."""
    return [
        f"{r['estimate_id']}: {plots.fmt(r['value_wh'])} Wh is {r['ratio_median']:.2g}x "
        f"(90% {r['ratio_p5']:.2g}-{r['ratio_p95']:.2g}x) our "
        f"{'closed-model prediction for ' if r.get('comparator') == 'closed_model' else ''}{r['series']}'s "
        f"{r.get('compared_statistic', 'per-query')} energy per query at the {r.get('boundary', 'same')} boundary "
        f"({r['scenario']}), at P{r['percentile']:.1f} of our {plots.interval_of(r)} distribution: {r['verdict']} "
        f"its 90% {plots.interval_of(r)} interval."
        for r in records
    ]


def _coverage_headlines(records: list[dict], attrs: dict) -> list[str]:
    """Overall coverage at 50% and 90% per form, with the points and models behind it."""
    return [
        f"{r['form']}: {100 * r['observed']:.0f}% of held-out measurements inside the {r['level']} posterior "
        f"predictive interval ({r['n_points']} configurations of {r['n_models']} models; "
        f"{100 * r['observed_per_model']:.0f}% averaged over models)."
        for r in records
        if r["gpu"] == "all" and r["level"] in ("50%", "90%")
    ]


def _loo_headlines(records: list[dict], attrs: dict) -> list[str]:
    return [
        f"PSIS-LOO rank {r['rank']}: {r['form']}, elpd {r['elpd_loo']:.1f} ± {r['se']:.1f}"
        + (f" ({r['elpd_diff']:.1f} ± {r['dse']:.1f} below the best)" if r["rank"] > 0 else "")
        + f"; Pareto k above 0.7 for {r['k_bad'] + r['k_very_bad']} of {r['n_points']} configurations "
        f"(max {r['k_max']:.2f})."
        for r in records
    ]


def _no_headlines(records: list[dict], attrs: dict) -> list[str]:
    return []


HEADLINES = {
    "coverage.json": _coverage_headlines,
    "loo.json": _loo_headlines,
    "coefficients.json": _no_headlines,
    "held_out.json": _no_headlines,
    "summary.json": _summary_headlines,
    "sobol.json": _sobol_headlines,
    "fleet.json": _fleet_headlines,
    "compare.json": _compare_headlines,
}


def _prior_blocks(attrs: dict) -> list:
    if "priors" not in attrs:
        return []
    priors = json.loads(attrs["priors"])
    rows = [
        [
            p["prior"],
            p["model"],
            p["distribution"],
            p["bounds"],
            p["kind"],
            f"{100 * p['mass_outside_bounds']:.2g}%" if p["mass_outside_bounds"] > 0 else "",
            p["source"],
            p["file"],
        ]
        for p in priors
    ]
    blocks = [
        Heading(2, "Priors used"),
        Paragraph("Every sampled input with its distribution (unit in brackets), physical bounds, kind and source."),
        Table(
            ["prior", "model", "distribution [unit]", "bounds", "kind", "mass outside bounds", "source", "file"], rows
        ),
    ]
    if "throughput" in attrs:
        blocks += [
            Paragraph(
                "Throughput (tokens/s) of each model: the curve or value the energy uses, then the benchmark rows "
                "behind it, with their hardware and source. L_in and L_out are input and output tokens."
            ),
            Table(
                ["model", "what", "throughput", "hardware", "source"],
                [
                    [t["model"], t["what"], t["throughput"], t["hardware"], t["source"]]
                    for t in json.loads(attrs["throughput"])
                ],
            ),
        ]
    if "overrides" in attrs:
        blocks.append(Paragraph(f"Prior overrides given for this run (--set or overrides=): {attrs['overrides']}."))
    warnings = [w for w in attrs.get("prior_warnings", "").split("\n") if w]
    return blocks + ([Paragraph("Warnings about the priors:"), Bullets(warnings)] if warnings else [])


def _provenance_blocks(out: OutputFolder) -> list:
    rows = [[k, _cell(v)] for k, v in out.attrs.items() if k not in PROVENANCE_SKIP]
    rows += [["report rendered by", f"uqenergy {__version__}, matplotlib {matplotlib.__version__}"]]
    files = [[name, f"{len(records):,}", file_sha256(out.path / name)] for name, records in out.results.items()]
    if out.attrs:
        files.append(
            [
                "samples.nc",
                f"{out.energy_wh.sizes['draw'] if out.energy_wh is not None else 0:,} draws read",
                file_sha256(out.path / "samples.nc"),
            ]
        )
    return [
        Heading(2, "Provenance"),
        Paragraph(out.attrs.get("note", "What produced these results.")),
        Table(["attribute", "value"], rows),
        Table(["result file", "records", "sha256"], files),
    ]


MEASURED_GUIDE = (
    "Energy per query at the {boundary} boundary, in watt-hours (Wh), from measurements: ML.ENERGY Benchmark v3 "
    "measured GPU power and output throughput of each configuration (model, GPU, GPU count, precision) served by "
    "vLLM on the {task} task at several batch sizes. GPU energy per output token is interpolated (log-log, between "
    "measured points, never extrapolated) at the drawn concurrency, multiplied by the output tokens and by the "
    "boundary ladder's multipliers up to the {boundary} (server: host CPUs and memory; provisioned: idle capacity; "
    "facility: PUE). A draw whose concurrency lies outside a configuration's measured batches is clamped to the "
    "nearest measured point; clamped_draws counts them. See docs/measured.md."
)


PREDICTIVE_GUIDE = (
    "Energy per query at the {boundary} boundary, in watt-hours (Wh), of models no benchmark measured: GPU energy "
    "per output token is drawn from the posterior predictive of the size regression fitted to ML.ENERGY v3 "
    "(form {form}: a fresh per-model effect for an unseen model), given each model's priors on its active and "
    "total parameters, GPU and precision; then multiplied by the output tokens and the boundary ladder's "
    "multipliers, as for measured models. mean_energy_wh is the mean energy per query of each state of knowledge "
    "(to hold a published average against), median_energy_wh the energy of the median query. See docs/predictive.md."
)


def _placed(value: float, measured: list[float]) -> str:
    """Where ``value`` lies against a measured range: below, within or above it."""
    return "below" if value < min(measured) else "above" if value > max(measured) else "within"


def _measured_blocks(out: OutputFolder) -> list:
    """A measured study's notes: clamped configurations, and the measured reasoning/chat length ratios."""
    if "length_ratios" not in out.attrs:
        return []
    records = [r for r in out.results.get("summary.json", []) if r.get("pathway") == "baseline"]
    clamped = [
        f"{r['series']}: {r['clamped_draws']:,} of {r['draws']:,} draws ({100 * r['clamped_draws'] / r['draws']:.0f}%)"
        for r in records
        if isinstance(r.get("gpu_count"), int) and r.get("clamped_draws", 0) > 0.25 * r["draws"]
    ]
    ratios = json.loads(out.attrs["length_ratios"])
    rows = [
        [
            r["reasoning_model"],
            r["chat_model"],
            r["pair"],
            f"{r['reasoning_tokens']:,.0f}",
            f"{r['chat_tokens']:,.0f}",
            f"{r['ratio']:.1f}x",
        ]
        for r in ratios
    ]
    family = [r["ratio"] for r in ratios if r["pair"] == "family"] or [r["ratio"] for r in ratios]
    long_tokens = [r["reasoning_tokens"] for r in ratios]
    blocks: list = []
    if clamped:
        blocks += [
            Heading(2, "Configurations mostly outside their measured batches"),
            Paragraph(
                "Over a quarter of these configurations' draws fell outside the measured batch range and were "
                "clamped to the nearest measured point (their sweeps are short, e.g. the H100 runs stopped early):"
            ),
            Bullets(clamped),
        ]
    if ratios:
        blocks += [
            Heading(2, "What the measurements say about the paper's test-time assumptions"),
            Paragraph(
                "Oviedo et al. (Joule 2026) assume long (test-time scaling) queries of median 5,000 output tokens "
                "against 300 for traditional ones, and their fleet analysis about 15x the tokens of a typical query. "
                f"ML.ENERGY v3 measured reasoning models on GPQA Diamond at {min(long_tokens):,.0f}-"
                f"{max(long_tokens):,.0f} mean output tokens, and the reasoning/chat ratio of the same families at "
                f"{min(family):.1f}-{max(family):.1f}x: the paper's 5,000 tokens lie "
                f"{_placed(5000, long_tokens)} the measured reasoning means, and its 15x "
                f"{_placed(15, family)} the measured family ratios. These are means over one "
                "request mix per task (a hard benchmark for reasoning, LM Arena prompts for chat), not medians of "
                "production traffic; the Nemotron Nano chat lengths differ 2-3x between H100 and B200 runs."
            ),
            Table(["reasoning model", "chat model", "pair", "reasoning tokens", "chat tokens", "ratio"], rows),
        ]
    return blocks


def report_blocks(out: OutputFolder, images: list[Image]) -> list:
    """The report as a list of blocks, rendered to Markdown and to HTML alike."""
    title = f"uqenergy report: {out.attrs['study']}" if "study" in out.attrs else "uqenergy report"
    blocks: list = [Heading(1, title), Paragraph(source_line(out).removeprefix("Source: "))]
    if "summary.json" in out.results and "regression_form" in out.attrs:
        form, boundary = out.attrs["regression_form"], out.attrs["boundary"]
        blocks.append(Paragraph(PREDICTIVE_GUIDE.format(boundary=boundary, form=form)))
    elif "summary.json" in out.results and "boundary" in out.attrs:
        task = out.attrs.get("measured_task", "?")
        blocks.append(Paragraph(MEASURED_GUIDE.format(boundary=out.attrs["boundary"], task=task)))
    elif "summary.json" in out.results:
        guide = [READING_GUIDE]
        if blend_definitions(out.attrs):
            guide.append(BLEND_GUIDE)
        if any(r.get("quantity") == "mean_energy_wh" for r in out.results["summary.json"]):
            guide.append(TWO_LEVEL_GUIDE)
        blocks.append(Paragraph(" ".join(guide)))
    headlines = [line for name, records in out.results.items() for line in HEADLINES[name](records, out.attrs)]
    if headlines:
        blocks += [Heading(2, "Headline numbers"), Bullets(headlines)]
    blocks += _measured_blocks(out)
    if images:
        blocks.append(Heading(2, "Figures"))
        blocks += images
    blocks += _drift_blocks(out.path)
    for name, records in out.results.items():
        if name in FIGURE_ONLY:
            blocks += [Heading(2, f"Records of {name}"), Paragraph(f"{len(records)} records, in the file.")]
            continue
        blocks += [Heading(2, f"All records of {name}"), Paragraph(f"{len(records)} records."), records_table(records)]
    return blocks + _prior_blocks(out.attrs) + _provenance_blocks(out)


def _md(text: str) -> str:
    """Text from the results (names come from input files) as inert Markdown: no HTML, links or line breaks."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    return text.replace("[", "\\[").replace("]", "\\]")


DRIFT_COLUMNS = ("claim", "version", "date", "value_wh", "statistic", "boundary", "change_from_first")


def _drift_blocks(folder: Path) -> list:
    """The versions of each claim a compare run found (drift.json), oldest first, if the folder has them."""
    path = folder / "drift.json"
    if not path.exists():
        return []
    records = _read_records(path, DRIFT_COLUMNS)
    rows = [[_cell(r[k]) for k in DRIFT_COLUMNS] for r in records]
    return [
        Heading(2, "How claims drifted across versions"),
        Paragraph("Each claim recorded in more than one version, oldest first; change is the value over the first's."),
        Table(list(DRIFT_COLUMNS), rows),
    ]


def _md_cell(text: str) -> str:
    return _md(text).replace("|", "\\|")


def to_markdown(blocks: list) -> str:
    lines: list[str] = []
    for block in blocks:
        match block:
            case Heading(level, text):
                lines.append(f"{'#' * level} {_md(text)}")
            case Paragraph(text):
                lines.append(_md(text))
            case Bullets(items):
                lines.append("\n".join(f"- {_md(item)}" for item in items))
            case Table(header, rows):
                lines.append(
                    "\n".join(
                        [
                            "| " + " | ".join(_md_cell(h) for h in header) + " |",
                            "|" + "---|" * len(header),
                            *("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows),
                        ]
                    )
                )
            case Image(path, caption):
                lines.append(f"![{_md(caption)}]({path})\n\n*{_md(caption)}*")
    return "\n\n".join(lines) + "\n"


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
figure { margin: 1.5em 0; }
img { max-width: 100%; height: auto; }
figcaption { font-style: italic; color: #444; }
"""


def to_html(blocks: list, root: Path) -> str:
    """A self-contained HTML page: inline CSS, figures embedded as base64 data URIs, no external references."""
    e = html.escape
    parts = []
    for block in blocks:
        match block:
            case Heading(level, text):
                parts.append(f"<h{level}>{e(text)}</h{level}>")
            case Paragraph(text):
                parts.append(f"<p>{e(text)}</p>")
            case Bullets(items):
                parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>")
            case Table(header, rows):
                head = "".join(f"<th>{e(h)}</th>" for h in header)
                body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            case Image(path, caption):
                data = base64.b64encode((root / path).read_bytes()).decode("ascii")
                parts.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{e(caption)}">'
                    f"<figcaption>{e(caption)}</figcaption></figure>"
                )
    title = next((b.text for b in blocks if isinstance(b, Heading)), "uqenergy report")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{e(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def write_report(folder: str | Path) -> list[Path]:
    """Write figures/*.png, report.md and report.html into ``folder`` from the results it holds."""
    folder = Path(folder)
    out = read_output(folder)
    images = make_figures(out, folder / "figures")
    blocks = report_blocks(out, images)
    (folder / "report.md").write_text(to_markdown(blocks))
    (folder / "report.html").write_text(to_html(blocks, folder))
    return [folder / "report.md", folder / "report.html", *(folder / i.path for i in images)]


def rerender(folder: str | Path) -> Path:
    """Rebuild the report of a finished output folder without re-running, replacing the folder atomically."""
    folder = Path(folder)
    if not is_output_folder(folder):
        raise InputError(
            folder, None, "is not a uqenergy output folder", "a folder written by uqenergy run, sobol, fleet or compare"
        )
    read_output(folder)  # bad records are reported against the folder itself, before anything is copied

    def fill(staging: Path) -> None:
        for item in folder.iterdir():
            if item.name in REPORT_PAGES:
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, staging / item.name)
        write_report(staging)

    return write_atomically(folder, fill, force=True)  # files edited since are carried over, not lost
