"""tfprune: prune and quantize Keras models, and measure what it costs.

Importing tfprune sets up Keras 2 (tf_keras) before TensorFlow is imported; see tfprune.keras.
"""

from tfprune.keras import keras, tf  # noqa: F401  (must come first)

from tfprune.data import AUGMENTATIONS, DATASETS, Data, load_data  # noqa: E402
from tfprune.errors import (  # noqa: E402
    DatasetNotAvailableError, RunDirectoryError, TfpruneError, UnknownNameError)
from tfprune.models import MODELS, build_model  # noqa: E402
from tfprune.train import TrainConfig, train_baseline  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AUGMENTATIONS", "DATASETS", "Data", "DatasetNotAvailableError", "MODELS", "RunDirectoryError",
    "TfpruneError", "TrainConfig", "UnknownNameError", "build_model", "keras", "load_data", "tf",
    "train_baseline",
]
