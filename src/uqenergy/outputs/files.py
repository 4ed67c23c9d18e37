"""Output folders written atomically: all files or none, never half-overwritten."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import xarray as xr

from uqenergy.config.errors import InputError

MARKER = ".uqenergy-output"


def _is_previous_output(path: Path) -> bool:
    return (path / MARKER).is_file() or not any(path.iterdir())


def check_output_dir(out_dir: str | Path, *, force: bool = False) -> Path:
    """Refuse, before any work, an output folder that could not be written or must not be replaced."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "--out", "exists and is not a folder", "a new or previous uqenergy output folder")
    if out_dir.is_dir() and not force and not _is_previous_output(out_dir):
        raise InputError(
            out_dir, "--out", "exists and is not a uqenergy output", "a new folder, a previous output, or --force"
        )
    ancestor = out_dir.resolve().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK):
        raise InputError(
            out_dir, "--out", f"cannot write here: {ancestor} is not a writable folder", "a writable folder"
        )
    return out_dir


def write_atomically(out_dir: str | Path, fill: Callable[[Path], None], *, force: bool = False) -> Path:
    """Fill a fresh temporary folder with ``fill`` and move it into place as ``out_dir``.

    An existing ``out_dir`` that is a previous uqenergy output (or empty) is
    replaced whole; any other existing folder is refused unless ``force``.
    """
    out_dir = check_output_dir(out_dir, force=force)
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=parent))
    except OSError as exc:
        raise InputError(out_dir, "--out", f"cannot write here: {exc.strerror}", "a writable folder") from None
    try:
        fill(staging)
        (staging / MARKER).write_text("written by uqenergy; this folder is replaced whole by the next run\n")
        if out_dir.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=parent))
            out_dir.rename(retired / "previous")
            staging.rename(out_dir)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except OSError as exc:
        raise InputError(out_dir, "--out", f"cannot write output: {exc.strerror or exc}", "a writable folder") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _check_finite(records, file: str) -> None:
    for i, record in enumerate(records):
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise InputError(file, f"record {i}: {key}", f"is {value}", "finite numbers only; check the priors")
            if isinstance(value, dict):
                _check_finite([value], file)


def write_json(path: Path, records: list[dict]) -> None:
    """Flat records as JSON; refuses NaN and inf rather than writing them."""
    _check_finite(records, path.name)
    path.write_text(json.dumps(records, indent=1) + "\n")


COMPRESSION = {"zlib": True, "complevel": 1, "shuffle": True}  # netCDF-4 deflate after byte shuffling
FLOAT32_FROM = 1024  # float variables at least this large are stored as float32 when they fit


def storage(values: np.ndarray) -> dict:
    """netCDF encoding of one variable: compressed; large float ones as float32 when every value fits.

    float32 keeps 24 significant bits, a relative error of at most 6e-8 per draw: far below
    the Monte Carlo error of anything the saved draws are used for (a quantile of 10^5 draws
    has a relative MCSE of about 1e-3); summaries never read the saved draws. Values beyond
    float32's range stay float64, so that none becomes infinite.
    """
    if values.dtype.kind != "f" or values.size < FLOAT32_FROM:
        return dict(COMPRESSION)
    finite = values[np.isfinite(values)]
    fits = not finite.size or np.abs(finite).max() <= np.finfo(np.float32).max
    return COMPRESSION | ({"dtype": "float32"} if fits else {})


def write_netcdf(path: Path, dataset: xr.Dataset) -> None:
    """A Dataset as netCDF-4, compressed (:func:`storage`)."""
    encoding = {name: storage(dataset[name].values) for name in dataset.variables}
    dataset.to_netcdf(path, engine="h5netcdf", encoding=encoding)


def write_inference(path: Path, groups: dict[str, xr.Dataset], samples_path: Path, samples: xr.Dataset) -> None:
    """ArviZ groups as netCDF-4 groups in ``path``, reading their draws from ``samples_path`` instead of copying them.

    Each group variable that rearranges a variable of ``samples`` (as written to
    ``samples_path`` by :func:`write_netcdf`: (chain, draw, *rest) from the same
    variable's draw dims and ``rest``) is an HDF5 virtual dataset mapped onto it.
    The mapping names ``samples_path`` relative to ``path``'s folder, so the two
    files must stay side by side. Anything else is written in full.
    """
    linked = {g: [str(v) for v in data.data_vars if _flattens(data[v], samples)] for g, data in groups.items()}
    for i, (group, data) in enumerate(groups.items()):
        kept = data.drop_vars(linked[group])
        encoding = {name: storage(kept[name].values) for name in kept.variables}
        kept.to_netcdf(path, mode="a" if i else "w", group=group, engine="h5netcdf", encoding=encoding)
    relative = os.path.relpath(samples_path, path.parent)
    with h5py.File(path, "a") as file, h5py.File(samples_path, "r") as source:
        for group, names in linked.items():
            for name in names:
                _link(file[group], groups[group][name], samples[name].dims, source[name], relative)


def _flattens(variable: xr.DataArray, samples: xr.Dataset) -> bool:
    """Whether ``variable`` (chain, draw, *rest) is ``samples``' variable of its name with its draw dims flattened."""
    if variable.name not in samples.data_vars or variable.dims[:2] != ("chain", "draw"):
        return False
    source = samples[variable.name]
    rest = variable.dims[2:]
    flattened = tuple(d for d in source.dims if d not in rest)
    return (
        set(rest) <= set(source.dims)
        and flattened in (("draw",), ("outer",), ("outer", "kept"))
        and math.prod(source.sizes[d] for d in flattened) == variable.sizes["draw"]
    )


def _link(group, variable: xr.DataArray, source_dims: tuple, source, file_name: str) -> None:
    """``variable`` as a virtual dataset in ``group`` over the dataset ``source`` (dims ``source_dims``) of another file."""
    rest = variable.dims[2:]
    layout = h5py.VirtualLayout(shape=variable.shape, dtype=source.dtype)
    virtual = h5py.VirtualSource(file_name, source.name, shape=source.shape, dtype=source.dtype)
    for index in np.ndindex(*(variable.sizes[d] for d in rest)):
        at = dict(zip(rest, index))
        layout[(0, slice(None), *index)] = virtual[tuple(at.get(d, slice(None)) for d in source_dims)]
    dataset = group.create_virtual_dataset(variable.name, layout, fillvalue=np.nan)
    for axis, dim in enumerate(variable.dims):
        dataset.dims[axis].attach_scale(group[dim])
    for key, value in variable.attrs.items():
        dataset.attrs[key] = value
