"""pdec: a symbolic PDE compiler for physics-informed neural networks.

Pipeline: spec (SymPy) -> analysis -> plan -> codegen (Jinja) -> generated module -> curvature /
optimizers -> training. Public entry points: :func:`load_spec`, :func:`compile`, :func:`train`, :func:`load_run`.
"""

__version__ = "0.1.0"

from .errors import ModeError, PdecError, PdecWarning, SpecError  # noqa: E402
from .spec import (Boundary, Box, Combined, Condition, Data, Face, Initial, Learned, Periodic,  # noqa: E402
                   Problem, Region, Sampler, SpatialBoundary)
from .loader import load_spec  # noqa: E402
from .compiler import Compiled, compile  # noqa: E402
from .check import check_problem  # noqa: E402
from .train import Run, TrainingDiverged, load_run, train  # noqa: E402

__all__ = ["__version__", "load_spec", "compile", "Compiled", "check_problem", "train", "load_run", "Run",
           "TrainingDiverged", "Problem", "Box", "Condition",
           "Boundary", "SpatialBoundary", "Face", "Initial", "Periodic", "Sampler", "Data", "Learned", "Combined", "Region",
           "SpecError",
           "ModeError", "PdecError", "PdecWarning"]
