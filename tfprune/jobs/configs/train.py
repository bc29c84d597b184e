"""The training job's config: ``TrainConfig``; ``BaselineFields`` (the baseline a pruning or
sensitivity config trains); where a training run keeps its model (``model_path``); what a
config's ``augment="auto"`` means (``resolve_augmentation``)."""

import dataclasses

from tfprune import checks, distribute
from tfprune.data import (AUGMENTATIONS, apply_dataset_defaults, check_dataset, dataset_spec,
                          load_data)
from tfprune.jobs.rundir import resolve
from tfprune.models import FULLY_CONNECTED_MODELS, MODELS
from tfprune.optimizers import LR_SCHEDULES, OPTIMIZERS


def resolve_augmentation(augment, dataset, model, image_size=None):
    """'auto' -> the dataset's augmentation for convolutional models, 'none' for an MLP."""
    if augment != "auto":
        return AUGMENTATIONS.validate(augment)
    if model in FULLY_CONNECTED_MODELS:
        return "none"
    return dataset_spec(dataset, image_size).augmentation


@dataclasses.dataclass
class TrainConfig:
    """A baseline training run; validated on construction."""

    dataset: str = "digits"
    model: str = "cnn"
    epochs: int = None       # None: the data set's default (digits 60, mnist/fashion_mnist 15)
    batch_size: int = None   # None: the data set's default (digits 32, mnist/fashion_mnist 128)
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    seed: int = 0
    split_seed: int = 0
    augment: str = "auto"  # resolved on construction, see resolve_augmentation
    data_dir: str = None
    mixed_precision: bool = False
    strategy: str = "default"  # distribute.STRATEGIES; batch_size is per replica
    deterministic: bool = True
    image_size: tuple = None  # folder: data sets only; None: the first image's size

    def __post_init__(self):
        self.image_size = check_dataset(self.dataset, self.image_size)
        apply_dataset_defaults(self, epochs=("epochs", 60), batch_size=("batch_size", 32))
        MODELS.validate(self.model)
        OPTIMIZERS.validate(self.optimizer)
        self.augment = resolve_augmentation(self.augment, self.dataset, self.model,
                                            self.image_size)
        checks.check_int("epochs", self.epochs, 1)
        checks.check_int("batch_size", self.batch_size, 1)
        checks.check_int("seed", self.seed, 0)
        checks.check_int("split_seed", self.split_seed, 0)
        checks.check_positive("learning_rate", self.learning_rate)
        checks.check_unit_interval("momentum", self.momentum)
        checks.check_unit_interval("weight_decay", self.weight_decay)
        checks.check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        distribute.check_strategy(self.strategy)

    def to_dict(self):
        return dataclasses.asdict(self)


MODEL_FILE = "model.keras"


def model_path(output_dir, metrics):
    """The trained model's file of the run in ``output_dir`` (metrics.json holds it relative)."""
    return resolve(output_dir, metrics["model_path"])


class BaselineFields:
    """For a job config that trains its baseline (fields dataset, model, baseline_epochs,
    batch_size, seed, split_seed, augment, data_dir, deterministic, image_size, and
    mixed_precision when it has one): the
    baseline's TrainConfig and the job's data, from those fields."""

    def baseline_config(self):
        return TrainConfig(
            dataset=self.dataset, model=self.model, epochs=self.baseline_epochs,
            batch_size=self.batch_size, seed=self.seed, split_seed=self.split_seed,
            augment=self.augment, data_dir=self.data_dir, deterministic=self.deterministic,
            image_size=self.image_size, strategy=getattr(self, "strategy", "default"),
            mixed_precision=getattr(self, "mixed_precision", False))  # fields of PruneConfig

    def load_data(self, log=None):
        """The job's data, batched at the global batch (batch_size per replica); ``log`` gets
        the notice of a batch clipped to the training split."""
        batch = distribute.global_batch(self.batch_size, getattr(self, "strategy", "default"))
        return load_data(self.dataset, batch_size=batch,
                         seed=self.seed,
                         data_dir=self.data_dir, augment=self.augment,
                         split_seed=self.split_seed, image_size=self.image_size, log=log)
