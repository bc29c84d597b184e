"""tfprune: prune and quantize Keras models, and measure what it costs.

Importing tfprune sets up Keras 2 (tf_keras) before TensorFlow is imported; see tfprune.keras.
The stable API is re-exported here: the library (data, models, pruning, TFLite) and the jobs
that write run directories (train, prune, export, sweep, tune).
"""

from tfprune.keras import keras, tf  # noqa: F401  (must come first)

from tfprune.data import AUGMENTATIONS, DATASETS, Data, load_data  # noqa: E402
from tfprune.errors import (  # noqa: E402
    DatasetNotAvailableError, InternalError, RunDirectoryError, TfpruneError, UnknownNameError)
from tfprune.jobs.export import ExportConfig, run_export  # noqa: E402
from tfprune.jobs.prune import PruneConfig, run_prune  # noqa: E402
from tfprune.jobs.sweep import SweepConfig, run_sweep  # noqa: E402
from tfprune.jobs.train import TrainConfig, train_baseline  # noqa: E402
from tfprune.models import MODELS, build_model, load_model  # noqa: E402
from tfprune.pruning import METHODS, SCHEDULES, prune, strip  # noqa: E402
from tfprune.pruning.surgery import shrink  # noqa: E402
from tfprune.tflite.export import QUANTIZATIONS, to_tflite  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AUGMENTATIONS", "DATASETS", "Data", "DatasetNotAvailableError", "ExportConfig",
    "InternalError", "METHODS", "MODELS", "PruneConfig", "QUANTIZATIONS", "RunDirectoryError",
    "SCHEDULES", "SweepConfig", "TfpruneError", "TrainConfig", "UnknownNameError",
    "build_model", "keras", "load_data", "load_model", "prune", "run_export", "run_prune",
    "run_sweep", "shrink", "strip", "tf", "to_tflite", "train_baseline",
]
