"""Figures: each plot draws on the axes it is given and returns them; the report writes a PNG of the asked size."""

from __future__ import annotations

import struct

import matplotlib
import matplotlib.colors as mcolors
import matplotlib.image as mimage
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from uqenergy.analyses.run import run_study
from uqenergy.config.files import data_dir
from uqenergy.outputs import plots, report

matplotlib.use("Agg")
STUDIES_DIR = data_dir("studies")

SOURCE = "Source: test · seed 1"


def png_size(path) -> tuple[int, int]:
    """(width, height) from the PNG header's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def quantile_record(series: str, values: np.ndarray, **extra) -> dict:
    qs = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {
        "scenario": "traditional",
        "series": series,
        "pathway": "baseline",
        "quantity": "energy_wh",
        **dict(zip(("p5", "p25", "median", "p75", "p95"), qs.tolist())),
        "mean": float(values.mean()),
        "draws": values.size,
        **extra,
    }


@pytest.fixture(scope="module")
def draws() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {"model A": rng.lognormal(np.log(0.3), 1.0, 5000), "model B": rng.lognormal(np.log(0.08), 0.7, 5000)}


@pytest.fixture(scope="module")
def summary(draws) -> list[dict]:
    records = [quantile_record(s, v) for s, v in draws.items()]
    for pathway, gain in (("model", 3.0), ("serving", 2.0), ("combined", 6.0)):
        records.append(quantile_record("model A", draws["model A"] / gain, pathway=pathway))
    return records


SOBOL = [
    {
        "scenario": "traditional",
        "series": "blend",
        "target": "log_energy_wh",
        "factor": factor,
        "S1": s1,
        "S1_conf": 0.03,
        "ST": st,
        "ST_conf": 0.04,
        "base_samples": 1024,
        "converged": converged,
    }
    for factor, s1, st, converged in (
        ("output_tokens", 0.6, 0.7, True),
        ("pue", 0.1, 0.12, True),
        ("power_utilisation", 0.15, 0.2, True),
    )
]
FLEET = [
    {
        "scenario": "1e9 queries/day",
        "mix": mix,
        "pathway": pathway,
        "quantity": "energy_gwh_per_day",
        "method": method,
        "p5": p5,
        "median": median,
        "p95": p95,
        "mean": mean,
    }
    for mix, pathway, method, p5, median, p95, mean in (
        ("traditional", "baseline", "paper", 0.73, 0.73, 0.73, 0.73),
        ("traditional", "baseline", "monte-carlo", 0.5, 0.7, 1.0, 0.72),
        ("90% traditional + 10% long", "combined", "monte-carlo", 0.5, 0.8, 1.2, 0.81),
    )
]
COMPARE = [
    {
        "estimate_id": eid,
        "value_wh": value,
        "compared_statistic": statistic,
        "boundary": boundary,
        "scenario": "traditional",
        "series": "model A",
        "percentile": pct,
        "ratio_median": value / 0.3,
        "ratio_p5": value / 1.5,
        "ratio_p95": value / 0.06,
        "verdict": verdict,
        "contributions": {"pue": 1.1, "output_tokens": 2.0},
    }
    for eid, value, pct, verdict, statistic, boundary in (
        ("devries_2023", 2.9, 98.0, "above", "mean", "provisioned"),
        ("google_2025", 0.24, 42.0, "within", "median", "facility"),
    )
]
FLEET_SWEEP = [
    {
        "scenario": "1e9 queries/day",
        "setting": setting,
        "mix": "traditional",
        "pathway": pathway,
        "quantity": "energy_gwh_per_day",
        "method": method,
        "p5": 0.5 * k,
        "median": 0.7 * k,
        "p95": k,
        "mean": 0.72 * k,
    }
    for setting, k in (("x1", 1.0), ("x2", 2.0))
    for pathway in ("baseline", "combined")
    for method in ("paper", "honest")
]
CONVERGENCE = [
    {"series": s, "draws": n, "p5": 1 + 1 / n, "median": 2 + 1 / n, "p95": 3 + 1 / n}
    for s in ("a", "b")
    for n in (1000, 2000, 4000)
]


def _baseline(summary: list[dict]) -> list[dict]:
    return [r for r in summary if r["pathway"] == "baseline"]


def _model_a(summary: list[dict]) -> list[dict]:
    return [r for r in summary if r["series"] == "model A"]


#: name -> (plot, layout, its data from (draws, summary), keyword options)
FIGURES = {
    "distributions": (
        plots.plot_distributions,
        plots.distributions_layout,
        lambda draws, summary: (_baseline(summary), draws),
        {},
    ),
    "pathways": (plots.plot_pathways, plots.pathways_layout, lambda draws, summary: (_model_a(summary),), {}),
    "sobol": (plots.plot_sobol_indices, plots.sobol_layout, lambda draws, summary: (SOBOL,), {}),
    "fleet": (plots.plot_fleet, plots.fleet_layout, lambda draws, summary: (FLEET,), {}),
    "fleet-sweep": (plots.plot_fleet_sweep, plots.fleet_sweep_layout, lambda draws, summary: (FLEET_SWEEP,), {}),
    "compare": (
        plots.plot_published_estimates,
        plots.published_estimates_layout,
        lambda draws, summary: (COMPARE,),
        {"unverified": {"google_2025"}},
    ),
    "convergence": (plots.plot_convergence, plots.convergence_layout, lambda draws, summary: (CONVERGENCE,), {}),
}


def render(name: str, path, draws, summary, size=None):
    plot, layout, data, options = FIGURES[name]
    args = data(draws, summary)
    return report.render(path, layout(*args, **options), plot, *args, title="t", source=SOURCE, size=size, **options)


@pytest.mark.parametrize("name", FIGURES)
def test_each_figure_is_a_png_of_the_asked_size(name, tmp_path, draws, summary):
    path = render(name, tmp_path / f"{name}.png", draws, summary, (6.0, 4.5))
    assert png_size(path) == (round(6.0 * plots.DPI), round(4.5 * plots.DPI))


@pytest.mark.parametrize("name", FIGURES)
def test_default_size_is_the_standard_width(name, tmp_path, draws, summary):
    width, height = png_size(render(name, tmp_path / f"{name}.png", draws, summary))
    assert width == round(plots.WIDTH_IN * plots.DPI)
    assert 300 < height < 3000


def test_default_height_grows_with_the_rows(draws, summary):
    baseline = _baseline(summary)
    assert plots.distributions_layout(baseline, draws).size[1] > plots.distributions_layout(baseline[:1], draws).size[1]


@pytest.mark.parametrize("name", FIGURES)
def test_each_plot_draws_on_the_axes_it_is_given_and_returns_them(name, draws, summary):
    plot, layout, data, options = FIGURES[name]
    args = data(draws, summary)
    fig = Figure()
    axes = fig.subplots(len(layout(*args, **options).heights), 1, squeeze=False)[:, 0]
    given = axes[0] if axes.size == 1 else axes
    drawn = plot(*args, ax=given, **options)
    assert drawn is given if axes.size == 1 else list(drawn) == list(axes)
    for ax in axes:
        assert ax.lines or ax.patches or ax.collections


@pytest.mark.parametrize("name", FIGURES)
def test_without_axes_a_plot_makes_a_figure_with_its_key_and_note(name, draws, summary):
    plot, layout, data, options = FIGURES[name]
    args = data(draws, summary)
    drawn = np.atleast_1d(plot(*args, **options))
    fig = drawn[0].figure
    try:
        assert len(drawn) == len(layout(*args, **options).heights)
        assert fig.legends and any(text.get_text() for text in fig.texts)
    finally:
        plt.close(fig)


def test_a_plot_needs_an_axes_per_panel():
    with pytest.raises(ValueError, match="3 panels"):
        plots.plot_convergence(CONVERGENCE, ax=Figure().subplots())


def test_distributions_of_a_study_result():
    result = run_study(STUDIES_DIR / "paper_traditional.toml", draws=2000, seed=1)
    fig = Figure()
    ax = fig.subplots()
    assert plots.plot_distributions(result, ax=ax) is ax
    rows = [r for r in result.records if r["pathway"] == "baseline"]
    assert [t.get_text().split("\n")[0] for t in ax.get_yticklabels()] == [r["series"] for r in rows]
    assert len(ax.collections) > len(rows)  # a filled shape per row, besides the interval lines


def _has_colour(image: np.ndarray, colour: str, tolerance: float = 0.02) -> bool:
    target = np.array(mcolors.to_rgb(colour))
    return bool((np.abs(image[..., :3] - target).max(axis=-1) < tolerance).any())


def test_every_series_is_drawn_in_its_own_palette_colour(tmp_path, draws, summary):
    path = render("distributions", tmp_path / "d.png", draws, summary)
    image = mimage.imread(path)
    assert _has_colour(image, plots.OKABE_ITO[0]) and _has_colour(image, plots.OKABE_ITO[1])
    assert not _has_colour(image, plots.OKABE_ITO[2])  # only two series: no third colour


def test_log_density_peaks_at_the_median_of_a_lognormal():
    rng = np.random.default_rng(5)
    values = rng.lognormal(np.log(0.3), 0.8, 50_000)
    grid = np.linspace(-3, 1, 401)
    peak = grid[np.argmax(plots.log_density(values, grid))]
    # log10 of a log-normal is normal: its mode is log10(median); allow a few grid steps of noise.
    assert peak == pytest.approx(np.log10(0.3), abs=0.04)


def test_log_density_ignores_zero_draws():
    grid = np.linspace(-1, 1, 101)
    values = np.concatenate([np.zeros(1000), np.full(10, 1.0), np.full(10, 2.0)])
    density = plots.log_density(values, grid)
    assert np.isfinite(density).all() and density.max() > 0
    assert plots.log_density(np.zeros(10), grid).max() == 0


@pytest.mark.parametrize(
    "quantity, unit",
    [
        ("energy_wh", "Wh"),
        ("mean_energy_wh", "Wh"),
        ("energy_gwh_per_day", "GWh/day"),
        ("energy_twh_per_year", "TWh/year"),
        ("share", "1"),
    ],
)
def test_unit_is_read_from_the_quantity_name(quantity, unit):
    assert plots.unit_of(quantity) == unit


def test_colours_are_stable_and_distinct():
    colors = plots.colors_for(["b", "a", "b", "c"])
    assert list(colors) == ["b", "a", "c"]
    assert len(set(colors.values())) == 3
