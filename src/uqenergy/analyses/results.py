"""What the analyses return: result objects with their provenance, as records, tables and datasets.

Every result traces to a seed, a study file and hashed input files
(:func:`provenance`). Every result keeps its flat ``records`` (what the JSON
outputs hold) and gives them as a :class:`pandas.DataFrame`
(:class:`RecordsResult`); a study's records also make an :class:`xarray.Dataset`
(:func:`records_dataset`, :attr:`StudyResult.summary`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import pandas as pd
import xarray as xr

from uqenergy._version import __version__
from uqenergy.config.catalogue import prior_records
from uqenergy.config.files import file_sha256
from uqenergy.config.study import Study
from uqenergy.engine.throughput import throughput_records

#: The keys that tell one summary record from another: the dimensions of :attr:`StudyResult.summary`.
SUMMARY_DIMS = ("setting", "series", "pathway")
#: numbers that describe a series rather than summarise its draws: not statistics of the summary Dataset
DESCRIPTIVE_KEYS = frozenset({"gpu_count"})


def records_frame(records: Sequence[Mapping]) -> pd.DataFrame:
    """Flat records as a table: one row per record, one column per key (first-seen order), missing keys NaN."""
    return pd.DataFrame.from_records(list(records), columns=list(dict.fromkeys(k for r in records for k in r)))


def records_dataset(records: Sequence[Mapping], dims: Sequence[str], variable: str = "quantity") -> xr.Dataset:
    """Flat records as a dataset: a variable per value of ``variable``, over ``dims`` and ``statistic``.

    The dimensions are those of ``dims`` that the records have, with coordinates in
    first-seen order, then ``statistic``: every key whose values are numbers
    (``True``/``False`` become 1/0) but those of :data:`DESCRIPTIVE_KEYS`. A cell no record fills is NaN; text keys other
    than the dimensions (the same for every record) become attributes.
    """
    dims = [d for d in dims if any(d in r for r in records)]
    statistics = list(
        dict.fromkeys(
            k
            for r in records
            for k, v in r.items()
            if k not in dims and k != variable and k not in DESCRIPTIVE_KEYS and isinstance(v, Real)
        )
    )
    coords = {d: list(dict.fromkeys(r[d] for r in records)) for d in dims}
    where = {d: {value: i for i, value in enumerate(values)} for d, values in coords.items()}
    shape = (*(len(c) for c in coords.values()), len(statistics))
    data: dict[str, np.ndarray] = {}
    for r in records:
        cell = tuple(where[d][r[d]] for d in dims)
        values = data.setdefault(r[variable], np.full(shape, np.nan))
        if not np.isnan(values[cell]).all():
            raise ValueError(
                f"two records share {dict(zip(dims, (r[d] for d in dims)))} and {variable} {r[variable]!r}"
            )
        values[cell] = [float(r.get(s, math.nan)) for s in statistics]
    constant = (
        {
            k: v
            for k, v in records[0].items()
            if isinstance(v, str) and k not in dims and k != variable and all(r.get(k) == v for r in records)
        }
        if records
        else {}
    )
    return xr.Dataset(
        {name: ([*dims, "statistic"], values) for name, values in data.items()},
        coords={**coords, "statistic": statistics},
        attrs=constant,
    )


class RecordsResult:
    """A result whose flat ``records`` (one dict per row of its JSON output) also read as a table."""

    records: list[dict]

    def to_dataframe(self) -> pd.DataFrame:
        """The records as a table.

        Returns
        -------
        pandas.DataFrame
            One row per record, one column per record key (in first-seen order).
        """
        return records_frame(self.records)


@dataclass
class StudyResult(RecordsResult):
    """What a run produced: the saved draws with provenance, and one record per distribution.

    Attributes
    ----------
    study : Study
        The study that ran.
    samples : xarray.Dataset
        The saved draws (``energy_wh`` over ``model`` and ``draw``), with the
        provenance of the run in its attributes (what ``samples.nc`` holds).
    records : list of dict
        One record per (setting, series, pathway, quantity): what ``summary.json`` holds.
    warnings : list of str
        Warnings about the priors.

    Examples
    --------
    >>> import uqenergy
    >>> result = uqenergy.run_study("paper_traditional", draws=2000, seed=1)
    >>> result.to_dataframe()[["series", "pathway", "median"]].head(2)
               series   pathway    median
    0     DeepSeek-R1  baseline  0.62...
    1  Llama 3.1 405B  baseline  0.37...
    """

    study: Study
    samples: xr.Dataset
    records: list[dict]
    warnings: list[str] = field(default_factory=list)

    @property
    def summary(self) -> xr.Dataset:
        """The records as a dataset: one variable per quantity, over (``setting``), ``series``, ``pathway``, ``statistic``.

        ``energy_wh`` is energy per query (a two-level study adds
        ``mean_energy_wh``); ``statistic`` holds every number of a record
        (``p5`` ... ``p95``, ``mean``, ``hdi_low``, ``mcse_median``, ``draws``, ...).
        A series without a pathway is NaN there; ``setting`` is a dimension only
        for a study with settings.

        Returns
        -------
        xarray.Dataset

        Examples
        --------
        >>> import uqenergy
        >>> summary = uqenergy.run_study("paper_traditional", draws=2000, seed=1).summary
        >>> dict(summary["energy_wh"].sizes)
        {'series': 7, 'pathway': 5, 'statistic': 16}
        >>> round(float(summary["energy_wh"].sel(series="blend", pathway="baseline", statistic="median")), 2)
        0.31
        """
        return records_dataset(self.records, SUMMARY_DIMS)


def provenance(study: Study) -> dict:
    """Attributes that trace a result to its seed, files and software."""
    attrs = {
        "study": study.name,
        "scenario": study.scenario,
        "study_file": str(study.path),
        "seed": study.seed,
        "draws_per_model": study.draws,
        "uqenergy_version": __version__,
        "numpy_version": np.__version__,
        "xarray_version": xr.__version__,
        "priors": json.dumps(prior_records(study.priors, study.factors, study.models)),
    }
    if study.measured is None:  # a measured study has no throughput model: its points are in samples.nc
        attrs["throughput"] = json.dumps(throughput_records(study))
    if study.prior_overrides:
        attrs["study_prior_overrides"] = json.dumps(study.prior_overrides)
    if study.overrides:
        attrs["overrides"] = json.dumps(study.overrides)
    for i, path in enumerate(study.input_files):
        attrs[f"input_file_{i}"] = str(path)
        attrs[f"input_file_{i}_sha256"] = file_sha256(path)
    return attrs
