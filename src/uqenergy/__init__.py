"""uqenergy: honest Monte Carlo uncertainty for the energy of LLM inference.

The public API is loaded on first use, so ``import uqenergy`` (and the command's
``--help``) stays fast: numerical and plotting libraries load with the function
that needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from uqenergy._version import __version__

#: public name -> the module that defines it
_API = {
    "StudyResult": "uqenergy.analyses.results",
    "fit_measured": "uqenergy.analyses.predictive",
    "load_study": "uqenergy.config.study",
    "plot_calibration": "uqenergy.outputs.plots",
    "plot_convergence": "uqenergy.outputs.plots",
    "plot_distributions": "uqenergy.outputs.plots",
    "plot_energy_per_token": "uqenergy.outputs.plots",
    "plot_fleet": "uqenergy.outputs.plots",
    "plot_fleet_sweep": "uqenergy.outputs.plots",
    "plot_measured_distributions": "uqenergy.outputs.plots",
    "plot_pathways": "uqenergy.outputs.plots",
    "plot_pit": "uqenergy.outputs.plots",
    "plot_published_estimates": "uqenergy.outputs.plots",
    "plot_sobol_indices": "uqenergy.outputs.plots",
    "run_closed_models": "uqenergy.analyses.closed_models",
    "run_compare": "uqenergy.analyses.compare",
    "run_fleet": "uqenergy.analyses.fleet",
    "run_sensitivity": "uqenergy.analyses.sensitivity_study",
    "run_study": "uqenergy.analyses.run",
}

__all__ = ["__version__", *_API]

if TYPE_CHECKING:  # the names for type checkers, as re-exports (``x as x``)
    from uqenergy.analyses.closed_models import run_closed_models as run_closed_models
    from uqenergy.analyses.compare import run_compare as run_compare
    from uqenergy.analyses.fleet import run_fleet as run_fleet
    from uqenergy.analyses.predictive import fit_measured as fit_measured
    from uqenergy.analyses.results import StudyResult as StudyResult
    from uqenergy.analyses.run import run_study as run_study
    from uqenergy.analyses.sensitivity_study import run_sensitivity as run_sensitivity
    from uqenergy.config.study import load_study as load_study
    from uqenergy.outputs.plots import plot_calibration as plot_calibration
    from uqenergy.outputs.plots import plot_convergence as plot_convergence
    from uqenergy.outputs.plots import plot_distributions as plot_distributions
    from uqenergy.outputs.plots import plot_energy_per_token as plot_energy_per_token
    from uqenergy.outputs.plots import plot_fleet as plot_fleet
    from uqenergy.outputs.plots import plot_fleet_sweep as plot_fleet_sweep
    from uqenergy.outputs.plots import plot_measured_distributions as plot_measured_distributions
    from uqenergy.outputs.plots import plot_pathways as plot_pathways
    from uqenergy.outputs.plots import plot_pit as plot_pit
    from uqenergy.outputs.plots import plot_published_estimates as plot_published_estimates
    from uqenergy.outputs.plots import plot_sobol_indices as plot_sobol_indices


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'uqenergy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
