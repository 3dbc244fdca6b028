"""Training: sampling, configuration, run directories, the loop, plots and CLI commands."""

from .loop import Run, TrainingDiverged, train
from .saved import load_run

__all__ = ["train", "load_run", "Run", "TrainingDiverged"]
