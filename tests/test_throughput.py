import numpy as np
import pytest
import xarray as xr

from uqenergy.config.benchmarks import COLUMNS, read_benchmarks
from uqenergy.config.errors import InputError
from uqenergy.config.files import resolve
from uqenergy.engine.throughput import fit_throughput, tokens_per_s

HEADER = ",".join(COLUMNS)
TABLE = resolve("throughput_h100", "priors", suffix=".csv")


def row(model, tps, l_in, l_out, quant="FP8"):
    return f"{model},8xH100,{quant},{tps},{l_in},{l_out},dynamic,10.2,test source"


def law(l_in, l_out):  # an exact log-linear throughput law
    return np.exp(9.0 - 0.5 * np.log(l_in) + 0.25 * np.log(l_out))


def test_fit_recovers_an_exact_log_linear_law(write):
    points = [(128, 128), (2048, 128), (5000, 500), (500, 2000), (128, 2048)]
    lines = [row("m", law(i, o), i, o) for i, o in points]
    fits = fit_throughput(read_benchmarks(write("t.csv", "\n".join([HEADER, *lines]))), ["m"])
    np.testing.assert_allclose(fits["coefficients"].sel(model="m"), [9.0, -0.5, 0.25], atol=1e-9)
    assert fits["residual_sd"].sel(model="m") < 1e-9
    tps = tokens_per_s(fits, xr.DataArray(700.0), xr.DataArray([300.0, 10**7], dims="draw"))
    assert tps.sel(model="m")[0] == pytest.approx(law(700, 300))
    assert tps.sel(model="m")[1] == pytest.approx(max(law(i, o) for i, o in points))  # capped


def test_fewer_than_three_rows_fall_back_to_the_largest_tps(write):
    text = "\n".join([HEADER, row("m", 5200, 500, 2000), row("m", 720, 5000, 500), row("m", 9999, 100, 100, "FP16")])
    fits = fit_throughput(read_benchmarks(write("t.csv", text)), ["m"])
    assert str(fits["method"].sel(model="m").values) == "constant"
    tps = tokens_per_s(fits, xr.DataArray(500.0), xr.DataArray([1.0, 300.0, 5000.0], dims="draw"))
    np.testing.assert_allclose(tps.sel(model="m"), 5200.0)


def test_published_table_fits_as_the_paper():
    fits = fit_throughput(read_benchmarks(TABLE), ["Llama 3.1 405B", "Llama-3.1 Nemotron Ultra 253B", "DeepSeek-R1"])
    assert fits["n_points"].values.tolist() == [7, 2, 3]  # FP8 rows with numeric lengths
    assert fits["tps_max"].sel(model="Llama-3.1 Nemotron Ultra 253B") == 5200.0
    assert (fits["residual_sd"] > 0).all()  # DeepSeek-R1 (0 dof) and the constant model use the pooled SD
    assert np.isfinite(fits["covariance"]).all()


def test_fit_uncertainty_widens_throughput_symmetrically_in_log_space():
    fits = fit_throughput(read_benchmarks(TABLE), ["Llama 3.1 70B"])
    args = (xr.DataArray(500.0), xr.DataArray([300.0], dims="draw"))
    mid = tokens_per_s(fits, *args)
    up, down = (tokens_per_s(fits, *args, z=xr.DataArray([z], dims="draw")).item() for z in (1.0, -1.0))
    assert np.log(up / mid.item()) == pytest.approx(np.log(mid.item() / down))
    assert up > mid.item() > down


@pytest.mark.parametrize(
    "line,key",
    [
        (row("m", "fast", 500, 2000), "line 2: tokens_per_s"),
        (row("m", -5, 500, 2000), "line 2: tokens_per_s"),
        (row("m", 0, 500, 2000), "line 2: tokens_per_s"),
        (row("m", 100, "Variable-ish", 2000), "line 2: input_tokens"),
        (row("m", 100, 500, 2000).replace("10.2", "ten"), "line 2: node_power_kw"),
        (row("m", 100, 500, 2000) + ",extra", "line 2"),
        (row("", 100, 500, 2000), "line 2: model"),
    ],
)
def test_bad_rows_are_one_line_errors(write, line, key):
    with pytest.raises(InputError) as err:
        read_benchmarks(write("t.csv", f"{HEADER}\n{line}\n"))
    assert err.value.key == key


def test_bad_tables(write):
    with pytest.raises(InputError, match="no rows"):
        read_benchmarks(write("t.csv", HEADER + "\n"))
    with pytest.raises(InputError, match="column"):
        read_benchmarks(write("t.csv", HEADER.replace("tokens_per_s", "tps") + "\n"))
    with pytest.raises(InputError, match=r"unknown model|no FP8 rows"):
        fit_throughput(read_benchmarks(TABLE), ["GPT-7"], file=TABLE)


def test_byte_order_mark_and_variable_lengths_are_accepted(write):
    text = "\ufeff" + "\n".join(
        [HEADER, row("m", 1000, "variable", 300), *[row("m", law(i, 300), i, 300) for i in (100, 200)]]
    )
    rows = read_benchmarks(write("t.csv", text))
    assert rows[0].input_tokens is None and len(rows) == 3


def test_throughput_shift_is_symmetric_at_the_cap():
    """The shift moves the capped prediction up and down alike: z and -z give throughputs whose geometric mean is
    the prediction at z = 0, also for models at their cap (no one-sided slowdown of capped models)."""
    import numpy as _np
    import xarray as _xr

    from uqenergy import load_study
    from uqenergy.engine.throughput import study_fits, tokens_per_s

    fits = study_fits(load_study("two_level_traditional"))
    z = _xr.DataArray(_np.array([-1.5, 0.0, 1.5]), dims="z")
    lengths = _xr.DataArray(_np.array([100.0, 1000.0, 20000.0]), dims="length")
    tps = tokens_per_s(fits, lengths * 0 + 500, lengths, z)
    _np.testing.assert_allclose(_np.sqrt(tps.isel(z=0) * tps.isel(z=2)), tps.isel(z=1))
    capped = (tps.isel(z=1) == fits["tps_max"]).values
    up = (tps.isel(z=2) > fits["tps_max"]).values
    assert capped.any() and up[capped].all()  # capped predictions still move up with z > 0
