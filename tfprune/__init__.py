"""tfprune: prune and quantize Keras models, and measure what it costs.

Importing tfprune sets up Keras 2 (tfprune.environ says why) and imports nothing else: the
stable API re-exported here (the library: data, models, pruning, TFLite; the jobs that write run
directories: train, prune, export, sweep) is loaded on first access (PEP 562), so the scripts
parse their flags and build their configs without TensorFlow.
"""

import sys
import types

from tfprune.environ import use_keras2
from tfprune.lazy import reexports

use_keras2()

__version__ = "0.1.0"

# public name -> the module that defines it, so that reading a name imports only what it needs:
# the configs (tfprune.jobs.configs.*) and the registries (pruning.methods, pruning.schedules,
# tflite.quantizations) import no TensorFlow; the jobs and the library functions do.
_EXPORTS = {
    "keras": "tfprune.keras", "tf": "tfprune.keras",
    "AUGMENTATIONS": "tfprune.data", "DATASETS": "tfprune.data", "Data": "tfprune.data",
    "load_data": "tfprune.data",
    "DatasetNotAvailableError": "tfprune.errors", "InternalError": "tfprune.errors",
    "RunDirectoryError": "tfprune.errors", "RunDirectoryInUseError": "tfprune.errors",
    "TfpruneError": "tfprune.errors",
    "UnknownNameError": "tfprune.errors",
    "ExportConfig": "tfprune.jobs.configs.export", "run_export": "tfprune.jobs.export",
    "PruneConfig": "tfprune.jobs.configs.prune", "run_prune": "tfprune.jobs.prune",
    "SweepConfig": "tfprune.jobs.configs.sweep", "run_sweep": "tfprune.jobs.sweep",
    "TrainConfig": "tfprune.jobs.configs.train", "train_baseline": "tfprune.jobs.train",
    "MODELS": "tfprune.models", "build_model": "tfprune.models", "load_model": "tfprune.models",
    "METHODS": "tfprune.pruning.methods", "SCHEDULES": "tfprune.pruning.schedules",
    "prune": "tfprune.pruning.method_objects", "make_method": "tfprune.pruning.method_objects",
    "strip": "tfprune.pruning.core", "prune_model": "tfprune.pipeline",
    "compress_model": "tfprune.pipeline", "STAGES": "tfprune.compression.stages",
    "StageOptions": "tfprune.compression.stages",
    "ChannelOptions": "tfprune.pruning.options", "DecidingOptions": "tfprune.pruning.options",
    "DynamicConfig": "tfprune.pruning.options", "LayerOptions": "tfprune.pruning.options",
    "shrink": "tfprune.pruning.surgery",
    "QUANTIZATIONS": "tfprune.tflite.quantizations", "to_tflite": "tfprune.tflite.export",
}
__all__ = sorted(_EXPORTS, key=lambda name: (name.lower(), name))
__getattr__, __dir__ = reexports(globals(), _EXPORTS)


class _Package(types.ModuleType):
    """``tfprune.keras`` is tf_keras (the public name), not the submodule tfprune.keras, which
    Python would set as this attribute once it is imported."""

    @property
    def keras(self):
        return sys.modules["tfprune.keras"].keras if "tfprune.keras" in sys.modules \
            else __getattr__("keras")

    @keras.setter
    def keras(self, value):  # the import system setting the submodule: kept in sys.modules
        pass


sys.modules[__name__].__class__ = _Package

if "tensorflow" in sys.modules:
    # TensorFlow is already there: set up Keras now, so the warning about a tf.keras already
    # resolved to Keras 3 (tfprune.keras) comes with `import tfprune`, as it always did.
    from tfprune import keras as _keras  # noqa: F401
