"""Bounded-memory summaries: streamed order statistics, mean and HDI equal the in-memory ones exactly."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from conftest import SMALL_STUDY
from uqenergy.analyses import streaming
from uqenergy.analyses.intervals import describe, summarize
from uqenergy.analyses.run import run_study
from uqenergy.analyses.series import trim_window
from uqenergy.cli import main
from uqenergy.config.errors import InputError
from uqenergy.config.study import load_study
from uqenergy.engine import simulate
from uqenergy.engine.orderstats import (
    Moments,
    Pending,
    SelectedDraws,
    StreamedDraws,
    interpolate,
    key_values,
    quantile_ranks,
    segment_lengths,
    sortable_keys,
)
from uqenergy.engine.sampling import BLOCK_DRAWS
from uqenergy.outputs.files import write_json


def stream(values: np.ndarray, chunk: int, budget: int, rng: np.random.Generator):
    """A reader that answers ``read(draws)`` over ``values`` in chunks, running passes (chunks shuffled) as needed."""
    draws = StreamedDraws(budget)
    passes = 0

    def read(function):
        nonlocal passes
        while True:
            try:
                return function(draws)
            except Pending:
                plan = draws.plan()
                starts = rng.permutation(np.arange(0, values.size, chunk))
                for start in starts.tolist():
                    part = values[start : start + chunk]
                    draws.absorb(plan.apply(part, segment_lengths(part.size, start)))
                draws.finish(plan)
                passes += 1

    read.passes = lambda: passes
    return read


def distributions(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 2 * BLOCK_DRAWS + 11
    return {
        "lognormal": rng.lognormal(-2, 1.5, n),
        "zeros and ties": np.round(rng.exponential(3, n)) * 0.25,
        "signed": rng.normal(0, 1, n) * 10.0 ** rng.integers(-3, 3, n),
        "constant": np.full(n, 0.3),
        "bimodal": np.concatenate([rng.normal(1, 0.01, n // 2), rng.normal(5, 1, n - n // 2)]),
    }


def test_sortable_keys_order_as_the_values_and_invert():
    values = np.array([-np.inf, -1e300, -2.5, -1e-310, 0.0, 5e-324, 1e-300, 1.0, 1.0000000000000002, 3e300, np.inf])
    keys = sortable_keys(values)
    assert np.all(np.diff(keys.astype(object)) > 0)
    np.testing.assert_array_equal(key_values(keys), values)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 1000])
def test_quantile_interpolation_is_numpys_bit_for_bit(n):
    rng = np.random.default_rng(n)
    ordered = np.sort(np.round(rng.lognormal(0, 2, n), 2))  # ties too
    probs = np.concatenate([[0, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1], rng.random(50)])
    below, above, weight = quantile_ranks(n, probs)
    ours = interpolate(ordered[below], ordered[above], weight)
    np.testing.assert_array_equal(ours, np.quantile(ordered, probs))
    np.testing.assert_array_equal(
        interpolate(ordered[below[:2]], ordered[above[:2]], weight[:2]), np.percentile(ordered, [0.0, 5.0])
    )


def test_mean_does_not_depend_on_how_the_draws_are_cut():
    rng = np.random.default_rng(1)
    values = rng.lognormal(0, 1, 5 * BLOCK_DRAWS + 123)
    whole = Moments.of(values, segment_lengths(values.size))
    pieces = Moments()
    for start in rng.permutation(np.arange(0, values.size, 2 * BLOCK_DRAWS)).tolist():
        part = values[start : start + 2 * BLOCK_DRAWS]
        pieces.add(Moments.of(part, segment_lengths(part.size, start)))
    assert (pieces.mean, pieces.mean_mcse) == (whole.mean, whole.mean_mcse)
    assert whole.mean == pytest.approx(math.fsum(values) / values.size, rel=1e-14)
    assert whole.mean_mcse == pytest.approx(values.std(ddof=1) / math.sqrt(values.size), rel=1e-12)


@pytest.mark.parametrize("budget", [10**6, 50])
def test_streamed_distribution_equals_sorted_draws(budget):
    rng = np.random.default_rng(budget)
    for name, values in distributions(rng).items():
        read = stream(values, BLOCK_DRAWS, budget, rng)  # chunks are whole blocks, as in a run
        memory = SelectedDraws(values)
        ranks = rng.integers(0, values.size, 40)
        assert read(lambda d: d.count) == values.size, name
        np.testing.assert_array_equal(read(lambda d, ranks=ranks: d.values(ranks)), memory.values(ranks), err_msg=name)
        for level in (0.5, 0.9, 0.99):
            assert read(lambda d, level=level: d.hdi(level)) == memory.hdi(level), (name, level)
        for value in [*values[ranks[:5]].tolist(), 1e-9, 0.3, 7.0]:
            assert read(lambda d, value=value: (d.rank_below(value), d.rank_upto(value))) == (
                memory.rank_below(value),
                memory.rank_upto(value),
            ), (name, value)
        assert read(lambda d: describe(d)) == summarize(values), name
        if budget == 50 and name == "lognormal":
            assert read.passes() > 2  # too few draws may be kept: bins were split first


def test_streamed_pass_keeps_at_most_its_budget():
    rng = np.random.default_rng(3)
    values = rng.lognormal(0, 1, 200_000)
    draws = StreamedDraws(budget=5_000)
    plan = draws.plan()
    draws.absorb(plan.apply(values, segment_lengths(values.size)))
    draws.finish(plan)
    with pytest.raises(Pending):
        describe(draws)
    while (plan := draws.plan()) is not None:
        partial = plan.apply(values, segment_lengths(values.size))
        assert partial.kept is None or partial.kept.size <= 5_000
        draws.absorb(partial)
        draws.finish(plan)
        try:
            describe(draws)
        except Pending:
            pass
    assert describe(draws) == summarize(values)


def test_non_finite_draws_make_a_record_the_output_refuses():
    rng = np.random.default_rng(4)
    for values in (np.full(1000, np.inf), np.where(rng.random(1000) < 0.01, np.nan, rng.random(1000))):
        record = stream(values, BLOCK_DRAWS, 100, rng)(describe)
        assert math.isnan(record["mean"])
        with pytest.raises(InputError, match="is nan"):
            write_json(Path("summary.json"), [record])


SMALL_DRAWS = 3 * BLOCK_DRAWS + 1_000  # a partial last block


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("streaming") / "small.toml"
    path.write_text(
        SMALL_STUDY.replace("draws = 20000", f"draws = {SMALL_DRAWS}\nsave_draws = 70000").replace(
            'names = ["model", "serving"]',
            'names = ["model", "serving"]\napply_to = ["blend-paper", "blend", "Llama 3.1 70B"]',
        )
    )
    study = load_study(path)
    return study, run_study(study)


@pytest.mark.parametrize("chunk_draws", [BLOCK_DRAWS, 2 * BLOCK_DRAWS])
def test_streamed_run_equals_in_memory_run(small, chunk_draws):
    study, in_memory = small
    assert not simulate.streams(study)
    forced = replace(study, memory_budget_mb=1, chunk_draws=chunk_draws)
    assert simulate.streams(forced)
    streamed = run_study(forced)
    assert streamed.records == in_memory.records
    assert streamed.samples.attrs["streamed_passes"] >= 4  # models, trim windows, blends
    xr.testing.assert_identical(streamed.samples.drop_attrs(), in_memory.samples.drop_attrs())


def test_streamed_run_splits_bins_when_little_may_be_kept(small, monkeypatch):
    study, in_memory = small
    monkeypatch.setattr(streaming, "MIN_KEPT_DRAWS", 200)
    streamed = run_study(replace(study, memory_budget_mb=1))
    assert streamed.records == in_memory.records


def test_in_memory_estimate_and_budget_choose_the_path(small):
    study, _ = small
    big = replace(study, draws=10**8)
    assert simulate.in_memory_bytes(big) > 2**30 and simulate.streams(big)
    assert not simulate.streams(replace(big, memory_budget_mb=100_000))


def test_memory_budget_key_is_validated(write):
    for bad in ("0", "-5", "1.5", '"lots"', "true"):
        path = write("bad.toml", SMALL_STUDY.replace("seed = 7", f"seed = 7\nmemory_budget_mb = {bad}"))
        with pytest.raises(InputError, match="memory_budget_mb"):
            load_study(path)
    auto = write("auto.toml", SMALL_STUDY.replace("seed = 7", 'seed = 7\nmemory_budget_mb = "auto"'))
    assert load_study(auto).memory_budget_mb is None


def test_cli_streams_a_run_over_budget(write, tmp_path, capsys):
    path = write("tight.toml", SMALL_STUDY.replace("seed = 7", "seed = 7\nmemory_budget_mb = 1"))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert xr.open_dataset(tmp_path / "out" / "samples.nc", engine="h5netcdf").attrs["streamed_passes"] >= 4


class Sorted(SelectedDraws):
    """The reference: order statistics, ranks and HDI read off a full sort (what selection replaced)."""

    def __init__(self, values):
        super().__init__(values)  # the mean's block sums, which need the draws in their order
        self.ordered = np.sort(np.ravel(values))

    def values(self, ranks):
        return self.ordered[np.asarray(ranks, dtype=np.int64)]

    def rank_below(self, value):
        return int(np.searchsorted(self.ordered, value, side="left"))

    def rank_upto(self, value):
        return int(np.searchsorted(self.ordered, value, side="right"))

    def hdi(self, level):
        span = int(np.floor(level * self.count))
        low = int(np.argmin(self.ordered[span:] - self.ordered[: self.count - span]))
        return float(self.ordered[low]), float(self.ordered[low + span])


@pytest.mark.filterwarnings("ignore:invalid value encountered in subtract")  # inf - inf: a NaN quantile, in both
@pytest.mark.parametrize("size", [37, 5_000, 200_001])
def test_selected_draws_give_the_records_and_trim_windows_of_a_full_sort(size):
    rng = np.random.default_rng(size)
    laws = {
        **{name: values[:size] for name, values in distributions(rng).items()},
        "ties": np.round(rng.exponential(3, size)),
        "point mass and a normal": np.r_[np.zeros(size // 2), rng.normal(size=size - size // 2)],
        "two values": rng.integers(0, 2, size).astype(float),
        "bimodal": np.r_[rng.normal(0, 1, size // 3), rng.normal(8, 0.1, size - size // 3)],
        "heavy tail": rng.pareto(1.1, size),
        "negative": -rng.lognormal(0, 1, size),
        "with inf": np.r_[rng.normal(size=size), np.inf],
    }
    for name, values in laws.items():
        for level in (0.5, 0.9, 0.99):
            assert describe(SelectedDraws(values), level) == describe(Sorted(values), level), (name, level)
        for trims in ([[5, 95], [10, 90]], [[25, 75]], [[0, 100]]):
            assert trim_window(SelectedDraws(values), trims) == trim_window(Sorted(values), trims), (name, trims)
        ranks = rng.integers(0, values.size, 30)
        np.testing.assert_array_equal(SelectedDraws(values).values(ranks), Sorted(values).values(ranks))
