"""``uqenergy validate``: check study, prior and benchmark files without running anything."""

from __future__ import annotations

from pathlib import Path

from uqenergy.analyses.compare import load_compare_study
from uqenergy.config.estimates import load_estimates
from uqenergy.analyses.fleet import grid_priors, load_fleet, read_grids
from uqenergy.config.priors import load_prior_files
from uqenergy.config.files import read_toml, resolve
from uqenergy.analyses.sensitivity_study import read_section
from uqenergy.config.settings import expand_settings
from uqenergy.config.study import load_study
from uqenergy.config.benchmarks import read_benchmarks


def validate_file(name: str) -> tuple[str, list[str]]:
    """Validate one file; return its kind and any warnings. Bad input raises ``InputError``."""
    path = Path(name)
    if path.suffix == ".csv":
        rows = read_benchmarks(path)
        return f"benchmark table, {len(rows)} rows", []
    if not path.exists():
        path = resolve(name, "studies")
        if not path.exists():
            path = resolve(name, "priors")
    doc = read_toml(path)
    if "compare" in doc:
        study = load_compare_study(path)
        ratio = ", non-production ratio" if study.overstatement else ""
        return f"compare study {study.name!r}, {len(study.estimates)} estimates{ratio}", []
    if "estimates" in doc:
        return f"estimates file, {len(load_estimates(path))} estimates", []
    if "fleet" in doc:
        fleet = load_fleet(path)
        return (f"fleet study {fleet.study.name!r}, {len(fleet.runs)} workload runs, {len(fleet.mixes)} mixes, "
                f"{len(fleet.grids)} grids"), fleet.study.priors.warnings
    if "study" in doc:
        study = load_study(path)
        variants = expand_settings(study)
        for variant in [study, *(v for _, v in variants)]:
            read_section(variant)
        settings = f", {len(variants)} settings" if variants else ""
        return f"study {study.name!r}, {len(study.models)} models{settings}", study.priors.warnings
    priors = load_prior_files([path])
    grids = grid_priors(priors, defined, list(defined), path, "grids") if (defined := read_grids([path])) else {}
    return f"prior file, {len(priors.base)} priors" + (f", {len(grids)} grids" if grids else ""), priors.warnings
