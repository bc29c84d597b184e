"""The training job: ``TrainConfig`` and ``train_baseline`` into a run directory.

Writes config.json, metrics.json (last: its presence marks the run finished), history.json,
model.keras and plots/training.png; a finished run is reused, an interrupted one resumes from
its last epoch (BackupAndRestore).
"""

import dataclasses
import os
import shutil
import time

from tfprune import checks, distribute, io, precision, training
from tfprune.data import apply_dataset_defaults, check_dataset, load_data
from tfprune.jobs.rundir import prepare_run_dir, read_marker, resolve
from tfprune.keras import keras, tf
from tfprune.models import MODELS, build_model
from tfprune.results import plots


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
    augment: str = "auto"  # resolved on construction, see training.resolve_augmentation
    data_dir: str = None
    mixed_precision: bool = False
    strategy: str = "default"  # distribute.STRATEGIES; batch_size is per replica
    deterministic: bool = True
    image_size: tuple = None  # folder: data sets only; None: the first image's size

    def __post_init__(self):
        self.image_size = check_dataset(self.dataset, self.image_size)
        apply_dataset_defaults(self, epochs=("epochs", 60), batch_size=("batch_size", 32))
        MODELS.validate(self.model)
        training.OPTIMIZERS.validate(self.optimizer)
        self.augment = training.resolve_augmentation(self.augment, self.dataset, self.model,
                                                     self.image_size)
        checks.check_int("epochs", self.epochs, 1)
        checks.check_int("batch_size", self.batch_size, 1)
        checks.check_int("seed", self.seed, 0)
        checks.check_int("split_seed", self.split_seed, 0)
        checks.check_positive("learning_rate", self.learning_rate)
        checks.check_unit_interval("momentum", self.momentum)
        checks.check_unit_interval("weight_decay", self.weight_decay)
        checks.check_choice("lr_schedule", self.lr_schedule, training.LR_SCHEDULES)
        distribute.check_strategy(self.strategy)

    def to_dict(self):
        return dataclasses.asdict(self)


MODEL_FILE = "model.keras"


def model_path(output_dir, metrics):
    """The trained model's file of the run in ``output_dir`` (metrics.json holds it relative)."""
    return resolve(output_dir, metrics["model_path"])


@precision.restores_policy
def train_baseline(config, output_dir, overwrite=False, log=print):
    """Train ``config`` into ``output_dir``; skip a finished run, resume an interrupted one.
    ``mixed_precision`` trains under mixed_float16; the model is saved float32.

    Returns the metrics dict (also written to output_dir/metrics.json). Under
    ``config.strategy`` multi_worker every worker trains; only the chief writes ``output_dir``
    (distribute.py).
    """
    with distribute.job(config.strategy, output_dir) as (strategy, own_dir):
        return _train_baseline(config, own_dir, strategy, overwrite, log)


def _train_baseline(config, output_dir, strategy, overwrite, log):
    same_run = prepare_run_dir(output_dir, config.to_dict(), overwrite=overwrite,
                               marker="metrics.json")
    metrics_path = os.path.join(output_dir, "metrics.json")
    model_file = os.path.join(output_dir, MODEL_FILE)
    metrics = read_marker(metrics_path, log) if same_run else None
    if metrics is not None and os.path.exists(model_file):
        log(f"{output_dir} already holds this finished run; reusing it")
        return metrics
    backup_dir = os.path.join(output_dir, "backup")
    if not same_run and os.path.exists(backup_dir):
        shutil.rmtree(backup_dir)  # a checkpoint of a different configuration

    training.set_seed(config.seed, config.deterministic)
    precision.set_mixed_precision(config.mixed_precision)
    data = load_data(config.dataset, batch_size=distribute.global_batch(config.batch_size),
                     seed=config.seed,
                     data_dir=config.data_dir, augment=config.augment,
                     split_seed=config.split_seed, image_size=config.image_size)
    with strategy.scope():
        model = build_model(config.model, data.input_shape, data.num_classes)
        optimizer = training.make_optimizer(
            config.optimizer, config.learning_rate, config.momentum, config.weight_decay,
            config.lr_schedule, decay_steps=config.epochs * data.steps_per_epoch)
        training.compile_model(model, optimizer)
    log(f"training {config.model} on {config.dataset} ({data.sizes['train']} train / "
        f"{data.sizes['validation']} validation / {data.sizes['test']} test examples), "
        f"{model.count_params():,} parameters, seed {config.seed}, "
        f"{strategy.num_replicas_in_sync} replica(s), global batch {data.batch_size}")
    start = time.perf_counter()
    # Checkpointed every epoch: an interrupted run resumes exactly where it stopped.
    history = training.fit(model, data, config.epochs, log=log, backup_dir=backup_dir,
                           tensorboard_dir=os.path.join(output_dir, "tensorboard"))
    train_time = time.perf_counter() - start
    test_loss, test_accuracy = training.evaluate(model, data.test)
    training.save_model(precision.float32_copy(model), model_file)
    io.write_json(os.path.join(output_dir, "history.json"), history.history)
    plots.plot_history(history.history, os.path.join(output_dir, "plots", "training.png"),
                       title=f"{config.model} on {config.dataset} (seed {config.seed})")
    metrics = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "val_accuracy": float(history.history["val_accuracy"][-1]),
        "params": int(model.count_params()),
        "trainable_params": int(sum(int(tf.size(w)) for w in model.trainable_weights)),
        "train_time_s": train_time,
        "precision": precision.trained_under(model),
        "replicas": strategy.num_replicas_in_sync, "global_batch_size": data.batch_size,
        "epochs": config.epochs,
        "epochs_run_this_time": history.epochs_run_this_time,
        "model_path": MODEL_FILE,  # relative to the run directory: it can be moved
        "dataset_sizes": data.sizes,
        "versions": {"tensorflow": tf.__version__, "tf_keras": keras.__version__},
        "devices": [d.name for d in tf.config.list_logical_devices()],
    }
    metrics = io.to_jsonable(metrics)  # what a rerun reads back
    io.write_json(metrics_path, metrics)  # written last: its presence marks the run finished
    shutil.rmtree(backup_dir, ignore_errors=True)
    log(f"test accuracy {test_accuracy:.4f}, loss {test_loss:.4f}, trained in {train_time:.1f}s")
    return metrics


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

    def load_data(self):
        """The job's data, batched at the global batch (batch_size per replica)."""
        batch = distribute.global_batch(self.batch_size, getattr(self, "strategy", "default"))
        return load_data(self.dataset, batch_size=batch,
                         seed=self.seed,
                         data_dir=self.data_dir, augment=self.augment,
                         split_seed=self.split_seed, image_size=self.image_size)
