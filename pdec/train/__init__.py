"""Training: sampling, configuration, run directories, the loop, plots and CLI commands."""

from .loop import Run, TrainingDiverged, train

__all__ = ["train", "Run", "TrainingDiverged"]
