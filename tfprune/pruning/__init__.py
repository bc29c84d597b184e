"""Pruning: methods (weight, unit, and the deciding ones), schedules, masks, surgery, statistics."""

from tfprune.pruning.core import PruneResult, classifier_layer, prune, select_layers, strip
from tfprune.pruning.methods import METHODS, Method, check_options
from tfprune.pruning.schedules import SCHEDULES, derive_steps, make_schedule
from tfprune.pruning.unit import is_wrapped

__all__ = ["METHODS", "Method", "PruneResult", "SCHEDULES", "check_options", "classifier_layer",
           "derive_steps", "is_wrapped", "make_schedule", "prune", "select_layers", "strip"]
