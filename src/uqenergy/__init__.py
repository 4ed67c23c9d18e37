"""uqenergy: honest Monte Carlo uncertainty for the energy of LLM inference."""

__version__ = "0.1.0"

from .run import StudyResult, run_study  # noqa: E402
from .study import load_study  # noqa: E402

__all__ = ["StudyResult", "__version__", "load_study", "run_study"]
