"""Pruning: methods, schedules, wrapping, callbacks, stripping and surgery.

The public names below are imported on first access (tfprune.lazy.reexports): the scripts' flags
and the job configs read pruning.methods, options and schedules without TensorFlow."""

from tfprune.lazy import reexports

_EXPORTS = {
    "classifier_layer": "tfprune.pruning.core", "select_layers": "tfprune.pruning.core",
    "strip": "tfprune.pruning.core",
    "Attached": "tfprune.pruning.method_objects", "Finished": "tfprune.pruning.method_objects",
    "make_method": "tfprune.pruning.method_objects", "prune": "tfprune.pruning.method_objects",
    "prune_once": "tfprune.pruning.method_objects",
    "ChannelOptions": "tfprune.pruning.options", "DecidingOptions": "tfprune.pruning.options",
    "DynamicConfig": "tfprune.pruning.options", "LayerOptions": "tfprune.pruning.options",
    "METHODS": "tfprune.pruning.methods", "Method": "tfprune.pruning.methods",
    "check_options": "tfprune.pruning.methods",
    "SCHEDULES": "tfprune.pruning.schedules", "derive_steps": "tfprune.pruning.schedules",
    "make_schedule": "tfprune.pruning.schedules",
    "prune_sublayers": "tfprune.pruning.subclassed", "strip_sublayers": "tfprune.pruning.subclassed",
    "is_wrapped": "tfprune.pruning.unit",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = reexports(globals(), _EXPORTS)
