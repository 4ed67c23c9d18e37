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
    "load_study": "uqenergy.config.study",
    "run_study": "uqenergy.analyses.run",
}

__all__ = ["__version__", *_API]

if TYPE_CHECKING:
    from uqenergy.analyses.results import StudyResult
    from uqenergy.analyses.run import run_study
    from uqenergy.config.study import load_study


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'uqenergy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
