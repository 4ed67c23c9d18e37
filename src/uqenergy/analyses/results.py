"""What the analyses return: result objects with their provenance.

Every result traces to a seed, a study file and hashed input files
(:func:`provenance`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from uqenergy._version import __version__
from uqenergy.config.catalogue import prior_records
from uqenergy.config.files import file_sha256
from uqenergy.config.study import Study


@dataclass
class StudyResult:
    """What a run produced: the saved draws with provenance, and one record per distribution."""

    study: Study
    samples: xr.Dataset
    records: list[dict]
    warnings: list[str] = field(default_factory=list)


def provenance(study: Study) -> dict:
    """Attributes that trace a result to its seed, files and software."""
    attrs = {
        "study": study.name, "scenario": study.scenario, "study_file": str(study.path), "seed": study.seed,
        "draws_per_model": study.draws, "uqenergy_version": __version__,
        "numpy_version": np.__version__, "xarray_version": xr.__version__,
        "priors": json.dumps(prior_records(study.priors, study.factors, study.models)),
    }
    for i, path in enumerate(study.input_files):
        attrs[f"input_file_{i}"] = str(path)
        attrs[f"input_file_{i}_sha256"] = file_sha256(path)
    return attrs
