"""Pruning: methods (weight, unit, and the deciding ones), schedules, masks, surgery, statistics."""

from tfprune.pruning.core import PruneResult, classifier_layer, prune, select_layers, strip
from tfprune.pruning.methods import METHODS, Method, check_options
from tfprune.pruning.schedules import SCHEDULES, derive_steps, make_schedule
from tfprune.pruning.subclassed import prune_sublayers, strip_sublayers
from tfprune.pruning.unit import is_wrapped

__all__ = ["METHODS", "Method", "PruneResult", "SCHEDULES", "check_options", "classifier_layer",
           "derive_steps", "is_wrapped", "make_schedule", "prune", "prune_sublayers", "select_layers",
           "strip", "strip_sublayers"]
