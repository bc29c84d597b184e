"""Training: seeds, optimizers, distribution strategy, mixed precision, fit with progress.

``train_baseline`` is the library side of experiments/train.py: it trains a registered model on
a registered dataset with a fixed seed, evaluates it on the test split and writes the run
directory (config.json, metrics.json, history.json, model.keras, plots/training.png).
"""

import dataclasses
import os
import shutil
import time

from tfprune import io
from tfprune.data import AUGMENTATIONS, DATASETS, dataset_spec, load_data
from tfprune.errors import TfpruneError
from tfprune.keras import keras, tf
from tfprune.models import FULLY_CONNECTED_MODELS, MODELS, build_model
from tfprune.registry import Registry

OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.register("adam", lambda lr, momentum, weight_decay: keras.optimizers.Adam(
    lr, weight_decay=weight_decay or None))
OPTIMIZERS.register("sgd", lambda lr, momentum, weight_decay: keras.optimizers.SGD(
    lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay or None))

LR_SCHEDULES = ("constant", "cosine")


def set_seed(seed, deterministic=True):
    """Seed Python, NumPy and TensorFlow; make TF ops deterministic when asked."""
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def make_optimizer(name="adam", learning_rate=1e-3, momentum=0.9, weight_decay=0.0,
                   lr_schedule="constant", decay_steps=None):
    factory = OPTIMIZERS.get(name)
    if learning_rate <= 0:
        raise TfpruneError(f"`learning_rate` must be > 0, got {learning_rate}")
    if lr_schedule not in LR_SCHEDULES:
        raise TfpruneError(f"`lr_schedule` must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
    lr = learning_rate
    if lr_schedule == "cosine":
        if not decay_steps or decay_steps < 1:
            raise TfpruneError(f"`decay_steps` must be >= 1 for a cosine schedule, got {decay_steps}")
        lr = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    return factory(lr, momentum, weight_decay)


def compile_model(model, optimizer):
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def get_strategy():
    """MirroredStrategy over all GPUs when there are two or more; the default strategy otherwise."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialized
            pass
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def set_mixed_precision(enabled):
    """Use the mixed_float16 policy (a speed-up on GPUs with tensor cores; slow on CPU)."""
    keras.mixed_precision.set_global_policy("mixed_float16" if enabled else "float32")


class ProgressLogger(keras.callbacks.Callback):
    """One line per epoch: metrics, elapsed time and an estimate of the time left."""

    def __init__(self, epochs, log=print, prefix=""):
        super().__init__()
        self.epochs = epochs
        self.log = log
        self.prefix = prefix
        self._start = None

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is None:
            self._first_epoch = epoch  # > 0 when BackupAndRestore resumed a run

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        done = epoch + 1 - self._first_epoch
        left = elapsed / done * (self.epochs - epoch - 1)
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items())
                            if isinstance(v, (int, float)))
        self.log(f"{self.prefix}epoch {epoch + 1}/{self.epochs}  {metrics}  "
                 f"[{elapsed:.1f}s elapsed, ~{left:.1f}s left]")


@dataclasses.dataclass
class TrainConfig:
    """A baseline training run; validated on construction."""

    dataset: str = "digits"
    model: str = "cnn"
    epochs: int = 60
    batch_size: int = 32
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
    deterministic: bool = True

    def __post_init__(self):
        DATASETS.validate(self.dataset)
        MODELS.validate(self.model)
        OPTIMIZERS.validate(self.optimizer)
        self.augment = resolve_augmentation(self.augment, self.dataset, self.model)
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("seed", self.seed, 0)
        _check_int("split_seed", self.split_seed, 0)
        if not self.learning_rate > 0:
            raise TfpruneError(f"`learning_rate` must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            raise TfpruneError(f"`momentum` must be in [0, 1), got {self.momentum}")
        if not 0 <= self.weight_decay < 1:
            raise TfpruneError(f"`weight_decay` must be in [0, 1), got {self.weight_decay}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise TfpruneError(
                f"`lr_schedule` must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")

    def to_dict(self):
        return dataclasses.asdict(self)


def resolve_augmentation(augment, dataset, model):
    """'auto' -> the dataset's augmentation for convolutional models, 'none' for an MLP."""
    if augment != "auto":
        return AUGMENTATIONS.validate(augment)
    if model in FULLY_CONNECTED_MODELS:
        return "none"
    return dataset_spec(dataset).augmentation


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TfpruneError(f"`{name}` must be an integer >= {minimum}, got {value!r}")


def fit(model, data, epochs, callbacks=(), log=print, prefix="", initial_epoch=0):
    """model.fit on data.train with validation, printing one progress line per epoch."""
    callbacks = list(callbacks) + [ProgressLogger(epochs, log=log, prefix=prefix)]
    return model.fit(data.train, validation_data=data.validation, epochs=epochs, verbose=0,
                     callbacks=callbacks, initial_epoch=initial_epoch)


def evaluate(model, dataset):
    """(loss, accuracy) of a compiled Keras model on a batched dataset."""
    loss, accuracy = model.evaluate(dataset, verbose=0)
    return float(loss), float(accuracy)


def save_model(model, path):
    """Save in the Keras v3 format, atomically (temp file + rename)."""
    with io.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


def load_model(path, custom_objects=None):
    if not os.path.exists(path):
        raise TfpruneError(f"no saved model at {path!r}")
    return keras.models.load_model(path, custom_objects=custom_objects, compile=False)


def train_baseline(config, output_dir, overwrite=False, log=print):
    """Train ``config`` into ``output_dir``; skip a finished run, resume an interrupted one.

    Returns the metrics dict (also written to output_dir/metrics.json).
    """
    from tfprune import report  # matplotlib only when a run needs it

    same_run = io.prepare_run_dir(output_dir, config.to_dict(), overwrite=overwrite,
                                  marker="metrics.json")
    metrics_path = os.path.join(output_dir, "metrics.json")
    model_path = os.path.join(output_dir, "model.keras")
    if same_run and os.path.exists(metrics_path) and os.path.exists(model_path):
        log(f"{output_dir} already holds this finished run; reusing it")
        return io.read_json(metrics_path)
    backup_dir = os.path.join(output_dir, "backup")
    if not same_run and os.path.exists(backup_dir):
        shutil.rmtree(backup_dir)  # a checkpoint of a different configuration

    set_seed(config.seed, config.deterministic)
    set_mixed_precision(config.mixed_precision)
    data = load_data(config.dataset, batch_size=config.batch_size, seed=config.seed,
                     data_dir=config.data_dir, augment=config.augment,
                     split_seed=config.split_seed)
    strategy = get_strategy()
    with strategy.scope():
        model = build_model(config.model, data.input_shape, data.num_classes)
        optimizer = make_optimizer(config.optimizer, config.learning_rate, config.momentum,
                                   config.weight_decay, config.lr_schedule,
                                   decay_steps=config.epochs * data.steps_per_epoch)
        compile_model(model, optimizer)
    log(f"training {config.model} on {config.dataset} ({data.sizes['train']} train / "
        f"{data.sizes['validation']} validation / {data.sizes['test']} test examples), "
        f"{model.count_params():,} parameters, seed {config.seed}, "
        f"{strategy.num_replicas_in_sync} replica(s)")
    start = time.perf_counter()
    # BackupAndRestore checkpoints every epoch, so an interrupted run resumes where it stopped.
    history = fit(model, data, config.epochs,
                  callbacks=[keras.callbacks.BackupAndRestore(backup_dir)], log=log)
    train_time = time.perf_counter() - start
    test_loss, test_accuracy = evaluate(model, data.test)
    save_model(model, model_path)
    io.write_json(os.path.join(output_dir, "history.json"), history.history)
    report.plot_history(history.history, os.path.join(output_dir, "plots", "training.png"),
                        title=f"{config.model} on {config.dataset} (seed {config.seed})")
    metrics = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "val_accuracy": float(history.history["val_accuracy"][-1]),
        "params": int(model.count_params()),
        "trainable_params": int(sum(int(tf.size(w)) for w in model.trainable_weights)),
        "train_time_s": train_time,
        "epochs": config.epochs,
        "epochs_run_this_time": len(history.history.get("loss", [])),
        "model_path": model_path,
        "dataset_sizes": data.sizes,
        "versions": {"tensorflow": tf.__version__, "tf_keras": keras.__version__},
        "devices": [d.name for d in tf.config.list_logical_devices()],
    }
    metrics = io.to_jsonable(metrics)  # what a rerun reads back
    io.write_json(metrics_path, metrics)  # written last: its presence marks the run finished
    shutil.rmtree(backup_dir, ignore_errors=True)
    log(f"test accuracy {test_accuracy:.4f}, loss {test_loss:.4f}, trained in {train_time:.1f}s")
    return metrics
