"""Output folders that cannot lose data: replaced in one rename, and only ever holding the tool's own files.

Layout of ``--out NAME``::

    NAME -> .NAME.uqenergy/v-XXXX      a symbolic link, switched in one rename
    .NAME.uqenergy/v-XXXX/             the current output, with its manifest MARKER

Every run fills a new version folder ``.NAME.uqenergy/v-XXXX``, writes the
manifest (every file it wrote, with its size) last, and then points ``NAME`` at
it by renaming a fresh link over the old one, so that at every instant ``NAME``
is either the complete old output or the complete new one. The previous version
is then removed file by file from its manifest. A run killed part-way leaves an
unfinished version folder; the next run into the same ``NAME`` removes it (a run
in progress holds a lock on its folder, so concurrent runs never remove each
other's). An existing real folder at ``NAME`` (an empty folder, or a copied
output) is swapped with the link in one ``renameat2(RENAME_EXCHANGE)`` call where
the system has it.

Before any work, :func:`check_output_dir` refuses an ``--out`` that is the
current folder or one of its parents, the home folder, ``/`` or a mount point,
and any folder that holds a file the manifest does not list: files uqenergy did
not write are never replaced or deleted, ``--force`` or not.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import xarray as xr
from xarray.backends import H5NetCDFStore
from xarray.backends.locks import HDF5_LOCK

from uqenergy._version import __version__
from uqenergy.config.errors import InputError

MARKER = ".uqenergy-output"  # the manifest: JSON {"written_by": ..., "files": {relative path: size in bytes}}
VERSIONS_SUFFIX = ".uqenergy"  # NAME's versions live in the hidden sibling .NAME.uqenergy/
VERSION_PREFIX = "v-"
LINK_PREFIX = "link-"
FREE_SPACE_MARGIN_BYTES = 64 * 2**20  # kept free beyond a file's estimated size
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
_ALLOWED = "a new folder, or a previous uqenergy output"


def versions_dir(out_dir: Path) -> Path:
    """The hidden sibling folder that holds the versions of ``out_dir``."""
    return out_dir.parent / f".{out_dir.name}{VERSIONS_SUFFIX}"


# --- manifests ---------------------------------------------------------------------------------


def _files_in(folder: Path) -> Iterator[tuple[str, Path]]:
    """Every file below ``folder``, and every link to a folder (never followed), as (relative path, path)."""
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        links = [d for d in dirs if Path(root, d).is_symlink()]
        for name in sorted([*names, *links]):
            path = Path(root, name)
            yield path.relative_to(folder).as_posix(), path


def write_manifest(folder: str | Path) -> None:
    """Record every file in ``folder`` (relative path and size) in its manifest, written last and atomically."""
    folder = Path(folder)
    files = {rel: path.lstat().st_size for rel, path in _files_in(folder) if rel != MARKER}
    temporary = folder / f"{MARKER}.tmp"
    temporary.write_text(json.dumps({"written_by": f"uqenergy {__version__}", "files": files}, indent=1) + "\n")
    os.replace(temporary, folder / MARKER)


def read_manifest(folder: str | Path) -> dict[str, int] | None:
    """The files ``folder``'s manifest lists (relative path -> size), or None if it has no valid manifest."""
    try:
        document = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, int) for v in files.values()):
        return None
    return files


def is_output_folder(folder: str | Path) -> bool:
    """Whether ``folder`` is an output uqenergy wrote (it has a valid manifest)."""
    return read_manifest(folder) is not None


def foreign_files(folder: Path) -> list[str]:
    """Files in ``folder`` that its manifest does not list (all of them without a manifest)."""
    listed = read_manifest(folder) or {}
    return [rel for rel, _ in _files_in(folder) if rel != MARKER and rel not in listed]


def changed_files(folder: Path) -> list[str]:
    """Files the manifest lists that were since removed or changed in size."""
    listed = read_manifest(folder) or {}
    changed = []
    for rel, size in listed.items():
        try:
            if (folder / rel).lstat().st_size != size:
                changed.append(rel)
        except OSError:
            changed.append(rel)
    return changed


def _within(folder: Path, rel: str) -> bool:
    """Whether ``folder / rel`` lies inside ``folder`` without passing through a link (``rel`` itself may be one)."""
    parts = Path(rel).parts
    if not parts or Path(rel).is_absolute() or ".." in parts:
        return False
    return not any(folder.joinpath(*parts[:i]).is_symlink() for i in range(1, len(parts)))


def _remove_by_manifest(folder: Path) -> None:
    """Delete the files ``folder``'s manifest lists, then the folders left empty; anything else stays."""
    for rel in read_manifest(folder) or {}:
        if not _within(folder, rel):
            continue  # an edited manifest, or a folder replaced by a link, never reaches outside the output
        try:
            (folder / rel).unlink()
        except OSError:
            pass
    try:
        (folder / MARKER).unlink()
    except OSError:
        pass
    for root, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(root)
        except OSError:
            pass  # not empty: holds a file uqenergy did not write


# --- checks before any work ----------------------------------------------------------------------


def _protected(path: Path) -> str | None:
    """Why ``path`` (absolute, normalised) must never be an output folder, or None."""
    cwd = Path(os.path.abspath(os.getcwd()))
    if path == Path(path.anchor):
        return "is the root folder"
    if path == Path(os.path.abspath(Path.home())):
        return "is the home folder"
    if path == cwd or path in cwd.parents:
        return "is the current folder or one of its parents"
    if os.path.ismount(path):
        return "is a mount point"
    return None


def _is_our_link(out_dir: Path) -> bool:
    target = Path(os.readlink(out_dir))
    return target.parent == Path(versions_dir(out_dir).name) and target.name.startswith(VERSION_PREFIX)


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_output_dir(out_dir: str | Path, *, force: bool = False) -> Path:
    """Refuse, before any work, an output folder that could not be written or must not be replaced.

    Allowed: a path that does not exist yet, an empty folder, or a previous uqenergy output that
    holds only the files its manifest lists. ``force`` also replaces a previous output whose own
    files were edited or removed since; a folder holding any other file is refused either way.
    """
    given = Path(out_dir)
    out = Path(os.path.abspath(given))
    if (why := _protected(out)) is not None:
        raise InputError(given, "--out", why, "a folder of its own for the output, e.g. uqenergy-out")
    ancestor = out.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(given, "--out", f"cannot write here: {ancestor} is not a writable folder", "a writable folder")
    longest = len(versions_dir(out).name.encode())
    if longest > _name_max(ancestor):
        raise InputError(
            given,
            "--out",
            f"the name {out.name[:20]}... is too long",
            f"a name of at most {_name_max(ancestor) - 10} bytes",
        )
    versions = versions_dir(out)
    if versions.exists() and (versions.is_symlink() or not versions.is_dir()):
        raise InputError(versions, None, "exists and is not a folder uqenergy made", "remove or rename it")
    if out.is_symlink():
        if not _is_our_link(out):
            raise InputError(given, "--out", "is a link uqenergy did not make", _ALLOWED)
        current = out.resolve()
        if not current.exists():
            return given  # the link's target is gone: nothing left to keep
    elif out.exists():
        if not out.is_dir():
            raise InputError(given, "--out", "exists and is not a folder", "a new or previous uqenergy output folder")
        current = out
        if not any(out.iterdir()):
            return given
        if not is_output_folder(out):
            raise InputError(
                given, "--out", "exists and is not a uqenergy output", f"{_ALLOWED}; your files are never replaced"
            )
    else:
        return given
    if foreign := foreign_files(current):
        raise InputError(
            given,
            "--out",
            f"holds files uqenergy did not write ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''})",
            f"{_ALLOWED}; move your files out first, --force never deletes them",
        )
    if not force and (changed := changed_files(current)):
        raise InputError(
            given,
            "--out",
            f"files of the previous output were edited or removed since ({', '.join(changed[:3])})",
            "--force to replace that output anyway",
        )
    return given


# --- atomic replacement --------------------------------------------------------------------------


def _try_lock(folder: Path) -> int | None:
    """A file descriptor holding an exclusive lock on ``folder``, or None if a running process holds it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def clean_stale(out_dir: Path) -> None:
    """Remove what earlier runs into ``out_dir`` left behind: unfinished and superseded versions, stray links.

    A version folder some running process holds is left alone; a finished one is removed file by
    file from its manifest; an unfinished one (a run was killed before writing its manifest) whole.
    """
    versions = versions_dir(out_dir)
    if not versions.is_dir():
        return
    for entry in versions.iterdir():
        if entry.name.startswith(LINK_PREFIX):
            fd = _try_lock(versions / entry.name.removeprefix(LINK_PREFIX))
            if fd is None and (versions / entry.name.removeprefix(LINK_PREFIX)).exists():
                continue  # the link of a run in progress
            if fd is not None:
                os.close(fd)
            if entry.is_symlink():
                entry.unlink(missing_ok=True)
            elif entry.is_dir():  # a real folder swapped out of NAME, not yet removed
                _remove_by_manifest(entry)
        elif entry.name.startswith(VERSION_PREFIX) and entry.is_dir() and not entry.is_symlink():
            fd = _try_lock(entry)
            if fd is None:
                continue  # a run in progress
            try:
                # read the link only now: a run switches to its version before it lets go of the lock
                if out_dir.is_symlink() and out_dir.resolve() == entry:
                    continue
                if is_output_folder(entry):
                    _remove_by_manifest(entry)
                else:
                    shutil.rmtree(entry, ignore_errors=True)
            finally:
                os.close(fd)
    try:
        versions.rmdir()  # only if nothing is left
    except OSError:
        pass


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``)."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _switch(out_dir: Path, link: Path) -> None:
    """Put ``link`` at ``out_dir`` in one rename; a real folder there is swapped out and removed."""
    if out_dir.is_symlink() or not out_dir.exists():
        os.replace(link, out_dir)
        return
    try:
        _exchange(link, out_dir)
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise
        # No atomic swap on this system: the old folder is kept aside until the link is in place.
        retired = link.with_name(f"{VERSION_PREFIX}retired-{link.name}")
        os.rename(out_dir, retired)
        try:
            os.replace(link, out_dir)
        except OSError:
            os.rename(retired, out_dir)
            raise
        link = retired
    _remove_by_manifest(link)  # the old folder now sits where the link was


def _new_version(versions: Path, attempts: int = 5) -> tuple[Path, int]:
    """An empty version folder and a descriptor holding its lock.

    A concurrent run's clean-up may remove an empty ``versions`` folder, or a version folder
    not yet locked, between two of these steps; then the next attempt starts over.
    """
    for attempt in range(attempts):
        try:
            versions.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=VERSION_PREFIX, dir=versions))
            fd = os.open(staging, os.O_RDONLY)
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        if staging.is_dir():
            return staging, fd
        os.close(fd)
    raise FileNotFoundError(errno.ENOENT, "a concurrent run kept removing the versions folder", str(versions))


def write_atomically(out_dir: str | Path, fill: Callable[[Path], None], *, force: bool = False) -> Path:
    """Fill a new version folder with ``fill`` and make ``out_dir`` point at it in one rename.

    ``out_dir`` must pass :func:`check_output_dir`. If ``fill`` or the switch fails, the new version
    is removed and ``out_dir`` still holds the previous output, untouched.
    """
    given = check_output_dir(out_dir, force=force)
    out = Path(os.path.abspath(given))
    versions = versions_dir(out)
    try:
        clean_stale(out)
        staging, lock = _new_version(versions)
    except OSError as exc:
        raise InputError(given, "--out", f"cannot write here: {exc.strerror or exc}", "a writable folder") from None
    try:
        fill(staging)
        write_manifest(staging)
        link = versions / f"{LINK_PREFIX}{staging.name}"
        os.symlink(f"{versions.name}/{staging.name}", link)
        try:
            _switch(out, link)
        finally:
            if link.is_symlink():
                link.unlink()
    except BaseException as exc:
        if not (out.is_symlink() and out.resolve() == staging):  # else the new output is in place already
            shutil.rmtree(staging, ignore_errors=True)
            if not isinstance(exc, OSError):
                raise
            what = exc.strerror or str(exc)
            raise InputError(
                given, "--out", f"cannot write output: {what}", "a writable folder with free space"
            ) from None
    finally:
        os.close(lock)  # the version is linked (or removed): others may now clean it up when superseded
    try:
        clean_stale(out)  # the previous version, now superseded
    except OSError:
        pass  # left for the next run
    return given


def require_free_space(path: Path, nbytes: int) -> None:
    """Refuse to write a file of about ``nbytes`` where the disk cannot hold it (an :class:`OSError`)."""
    free = shutil.disk_usage(path.parent).free
    if nbytes + FREE_SPACE_MARGIN_BYTES > free:
        raise OSError(
            errno.ENOSPC,
            f"no space left on device for {path.name} ({nbytes / 2**20:,.0f} MB needed, {free / 2**20:,.0f} MB free)",
        )


# --- files ---------------------------------------------------------------------------------------


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
    require_free_space(path, dataset.nbytes)  # at most this much: compression only shrinks it
    _to_netcdf(dataset, path, {name: storage(dataset[name].values) for name in dataset.variables})


def _to_netcdf(dataset: xr.Dataset, path: Path, encoding: dict, mode: str = "w", group: str | None = None) -> None:
    """``dataset.to_netcdf(path, mode, group=group, engine="h5netcdf", encoding=encoding)`` for in-memory data, with
    HDF5's lock given: left to choose its lock, xarray imports dask (where installed) to ask which dask scheduler
    is running, a quarter of a second that a run with none does not need."""
    store = H5NetCDFStore.open(path, mode=mode, group=group, lock=HDF5_LOCK)
    try:
        dataset.dump_to_store(store, encoding=encoding)
    finally:
        store.close()


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
        _to_netcdf(kept, path, encoding, mode="a" if i else "w", group=group)
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_file_atomically(path: str | Path, text: str, *, may_replace: Callable[[Path], bool]) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename it into place.

    An existing ``path`` is replaced only if ``may_replace(path)`` says so (a file this tool wrote);
    otherwise :class:`InputError`. Nothing is left half-written.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "--out", "is a folder", "a file name, e.g. mlenergy.csv")
    if path.exists() and not may_replace(path):
        raise InputError(
            path,
            "--out",
            "exists and was not written by uqenergy",
            "a new file name; uqenergy never replaces your files",
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    except OSError as exc:
        raise InputError(path, "--out", f"cannot write here: {exc.strerror or exc}", "a writable folder") from None
    staging = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(staging, path.stat().st_mode if path.exists() else 0o666 & ~_umask())
        os.replace(staging, path)
    except OSError as exc:
        staging.unlink(missing_ok=True)
        raise InputError(path, "--out", f"cannot write output: {exc.strerror or exc}", "a writable folder") from None
    return path
