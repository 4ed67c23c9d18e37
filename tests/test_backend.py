"""Dask backend: every chunked design gives, for the same seed, exactly the records of the local backend."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr

from conftest import SMALL_STUDY
from test_sensitivity import SMALL_SOBOL_STUDY
from uqenergy.analyses import sensitivity_study
from uqenergy.analyses.run import run_study
from uqenergy.analyses.sensitivity_study import run_sensitivity
from uqenergy.analyses.series import model_series
from uqenergy.analyses.streaming import PassJob, pass_chunk
from uqenergy.analyses.two_level import two_level, two_level_records
from uqenergy.config.errors import InputError
from uqenergy.config.scheduler import parse_scheduler
from uqenergy.config.study import load_study
from uqenergy.engine import backend
from uqenergy.engine.backend import Backend
from uqenergy.engine.orderstats import Plan
from uqenergy.engine.sampling import BLOCK_DRAWS
from uqenergy.engine.simulate import Job
from uqenergy.engine.throughput import study_fits

distributed = pytest.importorskip("distributed")

RUN_STUDY = SMALL_STUDY.replace("draws = 20000", f"draws = {2 * BLOCK_DRAWS + 500}\nchunk_draws = {BLOCK_DRAWS}")
TWO_LEVEL_STUDY = (
    SMALL_STUDY.replace("draws = 20000", "draws = 4000\nchunk_draws = 100000")
    .replace("trim = [[5, 95], [10, 90]]", 'members = ["Llama 3.1 405B", "Llama 3.1 70B"]')
    .replace("[blends.blend-paper]\ntop = 2", "[blends.blend-paper]")
    + """
[intervals]
design = "two-level"
outer_draws = 120
"""
)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backend")
    paths = {}
    for name, text in (("run", RUN_STUDY), ("two_level", TWO_LEVEL_STUDY), ("sobol", SMALL_SOBOL_STUDY)):
        paths[name] = folder / f"{name}.toml"
        paths[name].write_text(text)
    return paths


@pytest.fixture(scope="module")
def local(studies):
    """Results on the local backend, to compare every scheduler with."""
    run = load_study(studies["run"])
    two = load_study(studies["two_level"])
    return {
        "run": run_study(run),
        "streamed": run_study(replace(run, memory_budget_mb=1)),
        "two_level": two_level_records(two, two_level(two, workers=1)),
        "sobol": run_sensitivity(studies["sobol"]),
    }


def assert_same_results(scheduler: str, studies, local) -> None:
    run = replace(load_study(studies["run"]), scheduler=scheduler)
    in_memory = run_study(run)
    assert in_memory.records == local["run"].records
    xr.testing.assert_identical(in_memory.samples, local["run"].samples)
    streamed = run_study(replace(run, memory_budget_mb=1))
    assert streamed.records == local["streamed"].records == local["run"].records
    two = replace(load_study(studies["two_level"]), scheduler=scheduler)
    assert two_level_records(two, two_level(two, outer_chunk=7)) == local["two_level"]
    sobol = run_sensitivity(studies["sobol"], scheduler=scheduler)
    assert sobol.records == local["sobol"].records


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_dask_local_schedulers_match_the_local_backend(scheduler, studies, local, monkeypatch):
    monkeypatch.setattr(sensitivity_study, "CHUNK_ROWS", 3000)  # several chunks per design evaluation
    assert_same_results(scheduler, studies, local)


@pytest.mark.slow
def test_dask_distributed_cluster_matches_the_local_backend(studies, local, monkeypatch):
    monkeypatch.setattr(sensitivity_study, "CHUNK_ROWS", 3000)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert_same_results(cluster.scheduler_address, studies, local)


def test_chunk_jobs_pickle(studies):
    study = load_study(studies["run"])
    job = PassJob(Job(study, study_fits(study), 10), ((model_series(0), Plan(histogram=True)),))
    again = pickle.loads(pickle.dumps(job))
    partials, _, size, _ = pass_chunk(again, (0, BLOCK_DRAWS))
    expected, _, _, _ = pass_chunk(job, (0, BLOCK_DRAWS))
    assert size == BLOCK_DRAWS * len(study.models)
    np.testing.assert_array_equal(partials[0].counts, expected[0].counts)


def test_results_come_back_in_chunk_order():
    with Backend("threads") as threads:
        assert list(threads.map(pow, 2, range(40))) == [2**i for i in range(40)]
    with Backend("local", workers=3) as pool:
        assert list(pool.map(pow, 3, range(40))) == [3**i for i in range(40)]


def test_unknown_scheduler_is_an_input_error(studies, cli, tmp_path):
    for bad in ("thread", "", 3, None):
        with pytest.raises(InputError, match="scheduler"):
            parse_scheduler(bad, "study.toml")
    text = RUN_STUDY.replace("seed = 7", 'seed = 7\nscheduler = "cluster"')
    (tmp_path / "bad.toml").write_text(text)
    code, _, err = cli("run", tmp_path / "bad.toml", "--out", tmp_path / "out")
    assert code == 2 and "study.scheduler: unknown scheduler 'cluster'" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("sobol", studies["sobol"], "--scheduler", "nowhere", "--out", tmp_path / "out")
    assert code == 2 and "--scheduler: unknown scheduler 'nowhere'" in err


def test_unreachable_cluster_is_an_input_error(studies, cli, tmp_path, monkeypatch):
    monkeypatch.setattr(backend, "CONNECT_TIMEOUT_S", 1)
    code, _, err = cli("run", studies["run"], "--scheduler", "tcp://127.0.0.1:9", "--out", tmp_path / "out")
    assert code == 2 and "cannot reach the dask scheduler" in err


def test_cli_runs_on_dask_threads(studies, local, cli, tmp_path):
    code, _, err = cli("run", studies["run"], "--scheduler", "threads", "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == local["run"].records


def test_local_threads_change_no_number(write, monkeypatch):
    """One thread or several (chunks drawn and series summarised in parallel), the same records and samples:
    also when two blends are the same one model (one series, summarised once)."""
    text = SMALL_STUDY.replace("draws = 20000", f"draws = {3 * BLOCK_DRAWS}") + (
        '\n[blends.only-70b]\nmembers = ["Llama 3.1 70B"]\n\n[blends.also-70b]\nmembers = ["Llama 3.1 70B"]\n'
    )
    study = load_study(write("threads.toml", text))
    results = []
    for cores in ({0}, {0, 1, 2}):
        monkeypatch.setattr(backend.os, "sched_getaffinity", lambda pid, cores=cores: cores, raising=False)
        assert backend.local_workers() == len(cores)
        results.append(run_study(study))
    one, three = results
    assert one.records == three.records
    assert {r["series"] for r in one.records} >= {"only-70b", "also-70b", "blend", "blend-paper"}
    xr.testing.assert_identical(one.samples, three.samples)


def test_an_adaptive_run_does_not_depend_on_the_cores(write, monkeypatch):
    """The memory estimate that chooses an adaptive run's steps counts the summary threads whatever the machine:
    the same study and seed take the same steps (held in memory or streamed) on one core and on three."""
    text = SMALL_STUDY.replace("draws = 20000", "draws = 400000\nmemory_budget_mb = 24") + (
        "\n[intervals]\nrelative_tolerance = 0.04\nbatch_draws = 20000\n"
    )
    study = load_study(write("adaptive.toml", text))
    results = []
    for cores in ({0}, {0, 1, 2}):
        monkeypatch.setattr(backend.os, "sched_getaffinity", lambda pid, cores=cores: cores, raising=False)
        results.append(run_study(study))
    assert results[0].records == results[1].records
    assert results[0].study.draws == results[1].study.draws > 20_000
    assert results[0].samples.attrs.get("streamed_passes") == results[1].samples.attrs.get("streamed_passes")


def test_many_cores_hold_no_more_chunks_than_the_run_has(monkeypatch):
    """On 96 cores the window of chunks in flight is at most the run's chunks: the default study's memory estimate
    stays that of a small machine (it was refused on 96 cores: 2 chunks counted 192 times)."""
    from uqenergy.analyses import run as run_module

    study = load_study("paper_traditional")
    monkeypatch.setattr(run_module, "available_memory_bytes", lambda: 2 * 2**30)
    for cores in (range(2), range(96)):
        monkeypatch.setattr(backend.os, "sched_getaffinity", lambda pid, cores=cores: set(cores), raising=False)
        monkeypatch.setattr(backend, "cpu_quota", lambda: None)
        assert backend.chunks_in_flight("local", 2) == 2 and backend.chunks_in_flight("local", 500) == 2 * len(cores)
        run_module.check_memory(study)  # no InputError


@pytest.mark.parametrize(("text", "cpus"), [("200000 100000\n", 2), ("150000 100000\n", 2), ("max 100000\n", None)])
def test_a_container_cpu_quota_bounds_the_threads(tmp_path, monkeypatch, text, cpus):
    limit = tmp_path / "cpu.max"
    limit.write_text(text)
    assert backend.cpu_quota(str(limit)) == cpus
    assert backend.cpu_quota(str(tmp_path / "absent")) is None
    monkeypatch.setattr(backend.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(backend, "cpu_quota", lambda: cpus)
    assert backend.local_workers() == (cpus or 64)
