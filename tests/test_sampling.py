from dataclasses import replace

import numpy as np
import pytest

from uqenergy.analyses.run import run_study
from uqenergy.config.study import load_study
from uqenergy.engine.sampling import BLOCK_DRAWS, chunk_ranges, monte_carlo_draws


def test_chunks_are_whole_blocks_covering_every_draw():
    ranges = chunk_ranges(300_000, 100_000)
    assert ranges[0] == (0, 2 * BLOCK_DRAWS) and ranges[-1][1] == 300_000
    assert all(start % BLOCK_DRAWS == 0 for start, _ in ranges)


def test_draws_do_not_depend_on_chunking(small_study):
    study = load_study(small_study)
    args = (study.priors, ["pue", "output_tokens"], study.models, 3)
    whole = monte_carlo_draws(*args, 0, 3 * BLOCK_DRAWS + 5)
    parts = [monte_carlo_draws(*args, a, b) for a, b in chunk_ranges(3 * BLOCK_DRAWS + 5, BLOCK_DRAWS)]
    np.testing.assert_array_equal(whole, np.concatenate(parts, axis=-1))


def test_same_seed_same_result_whatever_the_chunk_size(small_study):
    study = load_study(small_study, draws=150_000)
    whole = run_study(study).records
    chunked = run_study(replace(study, chunk_draws=BLOCK_DRAWS)).records
    assert whole == chunked


def test_another_seed_gives_other_draws(small_study):
    a = run_study(small_study, seed=1).records
    b = run_study(small_study, seed=2).records
    assert a[0]["median"] != b[0]["median"]
    assert a[0]["median"] == pytest.approx(b[0]["median"], rel=0.1)


def test_a_longer_run_extends_a_shorter_one(small_study):
    short = run_study(small_study, draws=1000).samples
    long = run_study(small_study, draws=3000).samples
    np.testing.assert_array_equal(short["energy_wh"].values, long["energy_wh"].isel(draw=slice(0, 1000)).values)
