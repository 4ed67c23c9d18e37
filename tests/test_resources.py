"""Resource limits (docs/errors.md, "Resources"): memory estimated before any work, adaptive runs within their
budget, tolerances that cannot overflow, bounded report figures, scheduler addresses that answer wrongly."""

from __future__ import annotations

import json
import math
import random
import socket
import struct
import threading
from dataclasses import replace

import h5py
import pytest
from matplotlib.image import imread

from conftest import PRIORS_DIR
from uqenergy.analyses import run as run_module
from uqenergy.analyses.run import held_bytes, run_study
from uqenergy.config.errors import InputError
from uqenergy.config.intervals import IntervalSettings
from uqenergy.config.study import load_study
from uqenergy.engine import backend
from uqenergy.engine.backend import memory_budget_bytes
from uqenergy.engine.per_query import study_data
from uqenergy.outputs import plots
from uqenergy.outputs.files import write_atomically, write_json
from uqenergy.outputs.report import FIGURE_PANELS, FIGURE_ROWS

STUDY = f"""[study]
name = "r"
scenario = "traditional"
priors = ["{PRIORS_DIR / "joule2026.toml"}"]
models = ["Llama 3.1 70B", "DeepSeek-R1"]
draws = {{draws}}
seed = 3
{{extra}}
"""


def _study(write, draws: int, extra: str = "", intervals: str = ""):
    text = STUDY.format(draws=draws, extra=extra) + (f"[intervals]\n{intervals}\n" if intervals else "")
    return write("study.toml", text)


def test_a_run_over_the_available_memory_is_refused_before_any_work(write, cli, tmp_path, monkeypatch):
    """memory_budget_mb = 100000 with 10^9 draws would hold ~70 GB in memory: one line, not a MemoryError."""
    monkeypatch.setattr(run_module, "available_memory_bytes", lambda: 8 * 2**30)
    path = _study(write, 1_000_000_000, "memory_budget_mb = 100000")
    code, _, err = cli("run", path, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1, err
    assert "study.memory_budget_mb: the run would hold about" in err and "more than the 8,192 MB" in err
    assert not (tmp_path / "out").exists()


def test_an_adaptive_run_is_estimated_at_its_maximum_draws_within_its_budget(write):
    """draws = 1e9, relative_tolerance = 1e-9: held draws stay within the budget (it streams), so it is not refused;
    with a budget that would keep them all, the estimate is the whole in-memory run."""
    auto = load_study(_study(write, 1_000_000_000, intervals="relative_tolerance = 1e-9"))
    assert held_bytes(auto) <= memory_budget_bytes(None)
    huge = replace(auto, memory_budget_mb=100_000)
    assert held_bytes(huge) >= 100_000 * 2**20


def test_an_adaptive_run_beyond_its_budget_streams_and_equals_the_fixed_run(write):
    path = _study(write, 400_000, "memory_budget_mb = 1", "relative_tolerance = 0.02\nbatch_draws = 20000")
    adaptive = run_study(path)
    assert adaptive.samples.attrs["streamed_passes"] >= 2
    draws = adaptive.study.draws
    assert draws % 20_000 == 0 and 20_000 < draws <= 400_000
    fixed = run_study(replace(adaptive.study, intervals=IntervalSettings(), memory_budget_mb=None))
    assert "streamed_passes" not in fixed.samples.attrs  # held in memory
    assert [{k: v for k, v in r.items() if k != "tolerance_met"} for r in adaptive.records] == fixed.records


@pytest.mark.parametrize("tolerance", ["1e-9", "1e-300", "5e-324"])
def test_a_tolerance_beyond_the_maximum_draws_is_refused_after_the_first_batch(write, cli, tmp_path, tolerance):
    """The first batch's MCSEs predict the draws the tolerance needs (an MCSE falls as 1/sqrt(draws)): past the
    maximum, one line naming the tolerance, the prediction and what these draws can meet, and no more work;
    (2 MCSE / (1e-300 x figure))^2 overflows a float, so the prediction is worked in logarithms."""
    path = _study(write, 400_000, intervals=f"relative_tolerance = {tolerance}\nbatch_draws = 10000")
    code, _, err = cli("run", path, "--out", tmp_path / "out", "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert (
        "study.toml: intervals.relative_tolerance: " in err
        and "draws per model by the MCSEs of the first 10,000" in err
    )
    assert "more than study.draws = 400,000 allows (relative_tolerance = " in err and "up to 1,000,000,000" in err
    assert not (tmp_path / "out").exists()
    drawn = []
    with pytest.raises(InputError):
        run_study(path, progress=drawn.append)
    assert sum(drawn) == 10_000 * 2  # the first batch of each model, no more
    # the tolerance the error offers passes the same first batch's check and runs
    reachable = float(err.split("(relative_tolerance = ")[1].split()[0])
    met = run_study(_study(write, 400_000, intervals=f"relative_tolerance = {reachable}\nbatch_draws = 10000"))
    assert 10_000 < met.study.draws <= 400_000


@pytest.mark.parametrize("predicted_over_maximum, refused", [(2.0, False), (8.0, True)])
def test_only_a_tolerance_well_beyond_the_maximum_is_refused(write, predicted_over_maximum, refused):
    """One batch's prediction is uncertain: a tolerance it predicts needs 2x the maximum draws runs to the
    maximum (and says whether it was met); one needing 8x (past REACH_MARGIN = 4) is refused."""
    first = run_study(_study(write, 10_000))
    reached = max(IntervalSettings(relative_tolerance=0.5).reached_tolerance(r) for r in first.records)
    tolerance = reached * math.sqrt(10_000 / (predicted_over_maximum * 40_000))
    path = _study(write, 40_000, intervals=f"relative_tolerance = {tolerance}\nbatch_draws = 10000")
    if refused:
        with pytest.raises(InputError, match="needs about"):
            run_study(path)
    else:
        assert run_study(path).study.draws == 40_000


@pytest.mark.slow
def test_report_figures_are_bounded(write, cli, tmp_path):
    """A folder of 3,000 records (summary.json edited): the figure draws FIGURE_ROWS of them, the table all."""
    out = tmp_path / "out"
    assert cli("run", _study(write, 2000), "--out", out, "--quiet")[0] == 0
    path = out / "summary.json"
    first = json.loads(path.read_text())[0]
    path.write_text(json.dumps([first | {"series": f"s{i}"} for i in range(3000)]))
    code, _, err = cli("report", out)
    assert code == 0, err
    markdown = (out / "report.md").read_text()
    assert f"draws the first {FIGURE_ROWS} of 3,000 series" in markdown and "| s2999 |" in markdown
    height_px = imread(out / "figures" / "distributions-traditional.png").shape[0]
    assert height_px < 200 * FIGURE_ROWS  # the figure grows with the rows drawn, not with the records


class Listener:
    """A tiny TCP server on 127.0.0.1 that answers every connection with ``greeting`` (b"": says nothing) and
    holds it open until the connection or the server closes (at most ``hold_s``)."""

    def __init__(self, greeting: bytes, hold_s: float = 20):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.greeting, self.hold_s, self.stop = greeting, hold_s, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.server.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            with connection:
                if self.greeting:
                    connection.sendall(self.greeting)
                self.stop.wait(self.hold_s)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)
        self.server.close()


GREETINGS = {
    "silent": b"",
    "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
    "ssh": b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n",
    "random-bytes": bytes(random.Random(1).getrandbits(8) for _ in range(4096)),
    "huge-length": struct.pack("<Q", 2**61) + b"\0" * 64,
    "not-a-handshake": struct.pack("<Q", 12) + b"hello, world",
}


@pytest.mark.parametrize("answer", GREETINGS)
def test_a_scheduler_address_that_is_not_dask_is_a_one_line_error(answer, cli, tmp_path, write, monkeypatch):
    """HTTP, SSH, random bytes, a bogus length or a silent listener: one line within the handshake timeout."""
    monkeypatch.setattr(backend, "HANDSHAKE_TIMEOUT_S", 1)
    with Listener(GREETINGS[answer]) as listener:
        code, _, err = cli("run", _study(write, 2000), "--scheduler", listener.address, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1, err
    assert "scheduler: cannot reach the dask scheduler:" in err and "dask" in err.split("scheduler:", 2)[-1]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("scheme", ["tls", "ucx", "ws", "wss", "inproc"])
def test_unsupported_scheduler_schemes_are_refused_before_any_work(scheme, cli, tmp_path, write):
    code, _, err = cli("run", _study(write, 2000), "--scheduler", f"{scheme}://127.0.0.1:8786", "--out", tmp_path / "o")
    assert code == 2 and f"--scheduler: {scheme}:// addresses are not supported" in err and err.count("\n") == 1


def test_the_handshake_check_accepts_a_dask_scheduler():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", dashboard_address=None) as cluster:
        backend.check_dask_scheduler(cluster.scheduler_address)


@pytest.mark.slow
def test_names_of_10000_characters_make_figures_not_a_layout_error(write, cli, tmp_path):
    """A study, scenario, model and blend named with 10,000 characters: the figures cut the names, the JSON keeps them."""
    long = "n" * 10_000
    path = write(
        "long.toml",
        f"""[study]
name = "{long}"
scenario = "{long}s"
priors = ["{PRIORS_DIR / "joule2026.toml"}"]
models = ["{long}m"]
draws = 2000
[models."{long}m"]
source = "s"
throughput = 1500
[blends."{long}b"]
top = 1
""",
    )
    code, _, err = cli("run", path, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    assert {r["series"] for r in json.loads((tmp_path / "out" / "summary.json").read_text())} == {
        long + "m",
        long + "b",
    }
    figures = list((tmp_path / "out" / "figures").glob("distributions-*.png"))
    assert len(figures) == 1 and len(figures[0].name) < 100
    assert imread(figures[0]).shape[1] < 3000  # the names are cut, the figure keeps its width


def test_nearly_collinear_benchmark_rows_are_fitted_as_a_constant(write, cli, tmp_path):
    """Rows whose input and output lengths are (nearly) proportional leave no plane to fit: (X'X) is singular to
    float precision. With throughput uncertainty on this was a LinAlgError; now a constant at the fastest row."""
    header = "model,hardware,quantization,tokens_per_s,input_tokens,output_tokens,batch_size,node_power_kw,source"
    lengths = [(128, 128), (256, 256), (512, 512), (1024, 1024.0000001), (2048, 2048)]
    rows = [f"Llama 3.1 70B,8xH100,FP8,{1000 + 700 * i},{n},{m},dynamic,11,s" for i, (n, m) in enumerate(lengths)]
    write("table.csv", "\n".join([header, *rows]) + "\n")
    text = STUDY.format(draws=2000, extra='throughput = "table.csv"\nthroughput_uncertainty = true')
    path = write("study.toml", text.replace(', "DeepSeek-R1"', ""))
    code, _, err = cli("run", path, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    fits = study_data(load_study(path))
    assert str(fits["method"].sel(model="Llama 3.1 70B").item()) == "constant"
    assert float(fits["tps_max"].sel(model="Llama 3.1 70B")) == 1000 + 700 * 4
    records = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert all(math.isfinite(r["median"]) and r["median"] > 0 for r in records)


@pytest.mark.parametrize(
    ("attribute", "value", "expected"),
    [
        ("draws_per_model", "x", "attribute draws_per_model: 'x' is not allowed (a whole number >= 0)"),
        ("priors", "[1", "attribute priors: '[1' is not allowed (a JSON list of records with prior, model,"),
        ("blend_trim_blend", "-1", "attribute blend_trim_blend: '-1' is not allowed (JSON [[low, high], ...]"),
        ("study", 5, "attribute study: '5' is not allowed (text)"),
    ],
)
def test_tampered_outputs_are_reported_on_one_line(attribute, value, expected, write, cli, tmp_path):
    out = tmp_path / "out"
    path = write("study.toml", STUDY.format(draws=2000, extra="") + "[blends.blend]\ntop = 2\ntrim = [[5, 95]]\n")
    assert cli("run", path, "--out", out, "--quiet")[0] == 0
    with h5py.File(out / "samples.nc", "r+") as samples:
        samples.attrs[attribute] = value
    code, _, err = cli("report", out)
    assert code == 2 and err.count("\n") == 1 and expected in err, err


def test_a_tampered_draw_count_is_reported_on_one_line(write, cli, tmp_path):
    out = tmp_path / "out"
    assert cli("run", write("study.toml", STUDY.format(draws=2000, extra="")), "--out", out, "--quiet")[0] == 0
    records = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps([records[0] | {"draws": -1}, *records[1:]]))
    code, _, err = cli("report", out)
    assert code == 2 and err.count("\n") == 1, err
    assert "summary.json: record 0: draws: -1 is not allowed (a whole number >= 1)" in err


FIT_RECORDS = {  # one record of each fit result the report reads, as uqenergy fit writes them
    "coverage.json": {"form": "pooled", "level": "90%", "nominal": 0.9, "observed": 0.8, "observed_per_model": 0.8}
    | {"n_points": 9, "n_models": 3, "gpu": "all"},
    "loo.json": {"form": "pooled", "rank": 0, "elpd_loo": -1.0, "se": 0.1, "elpd_diff": 0.0, "dse": 0.0, "k_bad": 0}
    | {"k_very_bad": 0, "k_max": 0.1, "n_points": 9},
    "held_out.json": {"form": "pooled", "model": "m", "gpu": "H100", "log_energy": -1.0, "pit": 0.4}
    | {"predicted_median": -1.1},
}


@pytest.mark.parametrize(
    ("name", "edit", "expected"),
    [
        ("coverage.json", {"observed_per_model": None}, "record 0: lacks observed_per_model (records with form,"),
        ("loo.json", {"n_points": None}, "record 0: lacks n_points (records with form, rank,"),
        (
            "held_out.json",
            {"log_energy": 1000.0},
            "record 0: log_energy: 1000.0 is not allowed (a natural logarithm within ±700)",
        ),
        ("held_out.json", {"pit": 1.5}, "record 0: pit: 1.5 is not allowed (a number in [0, 1])"),
        ("coverage.json", {"n_points": 0}, "record 0: n_points: 0 is not allowed (a whole number >= 1)"),
    ],
)
def test_tampered_fit_outputs_are_reported_on_one_line(name, edit, expected, cli, tmp_path):
    """A fit's results with a key the headlines read removed, or a log energy whose exp() is inf: one line."""
    edited = {k: v for k, v in (FIT_RECORDS[name] | edit).items() if v is not None}
    out = tmp_path / "fit"
    write_atomically(
        out, lambda folder: [write_json(folder / n, [edited if n == name else r]) for n, r in FIT_RECORDS.items()]
    )
    code, _, err = cli("report", out)
    assert code == 2 and err.count("\n") == 1 and f"{name}: {expected}" in err, err
    write_atomically(out, lambda folder: [write_json(folder / n, [r]) for n, r in FIT_RECORDS.items()], force=True)
    assert cli("report", out, "--quiet") == (0, "", "")  # the records as written are reported


@pytest.mark.slow
def test_fit_report_figures_are_bounded(cli, tmp_path):
    """coverage.json and held_out.json of 3,000 forms and GPUs: the calibration, PIT and held-out figures draw
    FIGURE_PANELS forms (and FIGURE_ROWS GPUs), their captions say so, and the coverage table lists all."""
    rng = random.Random(1)
    forms, count = [f"form{i}" for i in range(3000)], 3000
    coverage = [
        {"form": f, "level": f"{n:.0%}", "nominal": n, "observed": rng.random(), "observed_per_model": 0.5}
        | {"n_points": 9, "n_models": 3, "gpu": "all"}
        for f in forms
        for n in (0.5, 0.9)
    ]
    held_out = [  # every form on one GPU, and the first form on 3,000 GPUs
        {"form": f, "model": "m", "gpu": g, "log_energy": rng.gauss(0, 1), "pit": rng.random()}
        | {"predicted_median": rng.gauss(0, 1)}
        for f, g in [*((f, "H100") for f in forms), *(("form0", f"gpu{i}") for i in range(count))]
    ]
    out = tmp_path / "fit"

    def fill(folder):  # what uqenergy fit writes, on a scale no fit gives
        write_json(folder / "coverage.json", coverage)
        write_json(folder / "held_out.json", held_out)

    write_atomically(out, fill)
    code, _, err = cli("report", out, "--quiet")
    assert code == 0 and not err, err
    markdown = (out / "report.md").read_text()
    assert f"draws the first {FIGURE_PANELS} of {count:,} form values; the table holds all" in markdown
    assert f"draws the first {FIGURE_PANELS} of {count:,} form values; held_out.json holds all" in markdown
    assert f"draws the first {FIGURE_ROWS} of {count + 1:,} gpu values; held_out.json holds all" in markdown
    assert "| form2999 |" in markdown
    heights_px = {
        name: imread(out / "figures" / name).shape[0] for name in ("calibration.png", "pit.png", "held-out.png")
    }
    # each grows with the forms drawn, not with the records: the size of the figure of exactly that many forms
    for name, layout in (("pit.png", plots.pit_layout), ("held-out.png", plots.held_out_layout)):
        drawn = layout([{"form": f"form{i}", "gpu": "H100"} for i in range(FIGURE_PANELS)])
        assert heights_px[name] <= 1.05 * drawn.size[1] * plots.DPI, name
    assert heights_px["calibration.png"] <= 1.05 * plots.calibration_layout(coverage[:2]).size[1] * plots.DPI
