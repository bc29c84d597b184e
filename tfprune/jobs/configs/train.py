"""The training job's config: ``TrainConfig``, made of the shared parts (parts.py) and its
optimizer fields, validated on construction; ``BaselineFields``, the part of a pruning or
sensitivity config that says which baseline it starts from (and the TrainConfig that trains
it); where a training run keeps its model (``model_path``)."""

import dataclasses

from tfprune import checks, distribute
from tfprune.declare import option
from tfprune.jobs.configs.base import JobConfig
from tfprune.jobs.configs.parts import (BatchFields, DatasetFields, DeterministicFields,
                                        DeviceFields, ModelFields, SeedFields,
                                        check_zoo_model, resolve_augmentation,
                                        resolve_dataset_defaults)
from tfprune.jobs.rundir import resolve
from tfprune.optimizers import LR_SCHEDULES, OPTIMIZERS


@dataclasses.dataclass
class TrainConfig(JobConfig, DeterministicFields, DeviceFields, ModelFields, SeedFields,
                  BatchFields, DatasetFields):
    """A baseline training run; validated on construction."""

    epochs: int = option(None, "Training epochs (default: the data set's, digits 60, 28x28 "
                         "data 15).", lower=1)
    learning_rate: float = option(1e-3, "Initial learning rate.", validator=checks.check_positive)
    optimizer: str = option("adam", "Optimizer: {choices}.", choices=OPTIMIZERS)
    momentum: float = option(0.9, "Momentum (sgd, with Nesterov).", lower=0.0, upper=0.999)
    weight_decay: float = option(0.0, "Decoupled weight decay.", lower=0.0, upper=0.999)
    lr_schedule: str = option("cosine", "Learning-rate schedule: {choices}.",
                              choices=LR_SCHEDULES)

    def resolve(self):
        self.resolve_dataset()
        check_zoo_model(self.model, self.dataset, self.image_size)
        resolve_dataset_defaults(self, epochs="epochs", batch_size="batch_size")
        self.augment = resolve_augmentation(self.augment, self.dataset, self.model,
                                            self.image_size)
        checks.check_unit_interval("momentum", self.momentum)
        checks.check_unit_interval("weight_decay", self.weight_decay)
        distribute.check_strategy(self.strategy)


@dataclasses.dataclass
class BaselineEpochsFields:
    baseline_epochs: int = option(
        None, "Epochs of a baseline trained here (default: the data set's, digits 60, 28x28 "
        "data 15).", lower=1)


@dataclasses.dataclass
class BaselineFields(BaselineEpochsFields):
    """The baseline a job starts from, trained here or loaded. A config with these fields also
    has DatasetFields, BatchFields, SeedFields and ModelFields (``baseline_config`` and
    ``load_data`` read them)."""

    baseline: str = option(
        "train", "'train' or the path of a saved Keras baseline model (tf_keras, or a Keras 3 "
        ".keras file: translated).")

    def baseline_config(self):
        return TrainConfig(
            **self.dataset_fields(), model=self.model, epochs=self.baseline_epochs,
            batch_size=self.batch_size, seed=self.seed, augment=self.augment,
            deterministic=getattr(self, "deterministic", True),
            strategy=getattr(self, "strategy", "default"),
            mixed_precision=getattr(self, "mixed_precision", False))

    def load_data(self, log=None):
        """The job's data at its batch size (per replica), seed and augmentation; ``log`` gets
        the notice of a batch clipped to the training split."""
        return self.data(self.batch_size, self.seed, self.augment, log,
                         getattr(self, "strategy", "default"))


MODEL_FILE = "model.keras"


def model_path(output_dir, metrics):
    """The trained model's file of the run in ``output_dir`` (metrics.json holds it relative)."""
    return resolve(output_dir, metrics["model_path"])
