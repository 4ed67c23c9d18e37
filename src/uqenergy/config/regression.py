"""The forms of the size regression and the levels of its categorical covariates.

The regression itself (:mod:`uqenergy.engine.predictive`) fits GPU energy per output token
of the measured configurations against model size, concurrency and hardware; a study or the
``uqenergy fit`` command names one of its :data:`FORMS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: categorical covariates' levels; the first of each is the reference level (GPUs: config.measured.GPUS)
PRECISIONS = ("bfloat16", "fp8", "mxfp4")
TASKS = ("lm-arena-chat", "gpqa", "sourcegraph-fim")


@dataclass(frozen=True)
class Form:
    """One form of the regression: with or without the per-model effect, normal or Student-t residuals."""

    name: str
    model_effect: bool
    tail_dof: float = math.inf  # degrees of freedom of the residual's Student-t; inf: normal
    description: str = ""


FORMS = {
    f.name: f
    for f in (
        Form("pooled", False, description="no per-model effect, normal residuals; exact conjugate posterior"),
        Form("model-effect", True, description="per-model effect, normal residuals; Gibbs sampler"),
        Form("model-effect-t4", True, 4.0, description="per-model effect, Student-t (4 dof) residuals; Gibbs sampler"),
    )
}
#: the form the closed models use: a model no benchmark measured has an effect of its own we do not know
DEFAULT_FORM = "model-effect"
