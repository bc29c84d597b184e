"""Pruning: methods (weight, unit), schedules (constant, polynomial), surgery and statistics."""

from tfprune.pruning.core import METHODS, PruneResult, classifier_layer, is_wrapped, prune, strip
from tfprune.pruning.schedules import SCHEDULES, derive_steps, make_schedule

__all__ = ["METHODS", "PruneResult", "SCHEDULES", "classifier_layer", "derive_steps",
           "is_wrapped", "make_schedule", "prune", "strip"]
