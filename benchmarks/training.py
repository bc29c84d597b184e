"""Training step time of pruning-wrapped models against the same dense model."""

import dataclasses
import time

import numpy as np

from tfprune import training as train_lib
from tfprune.data import load_data
from tfprune.keras import keras, tf
from tfprune.models import build_model
from tfprune.pruning import prune


class _BatchTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def _dataset(name, batch_size):
    if name == "digits":
        data = load_data("digits", batch_size=batch_size, seed=0, augment="none")
        return data.train, data.input_shape, data.steps_per_epoch
    # CIFAR-shaped synthetic data: the step time depends on shapes, not on pixel values.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2048, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, 2048)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().prefetch(2)
    return ds, (32, 32, 3), -(-2048 // batch_size)


def step_times(model_name, dataset, batch_size, epochs=4, warmup_epochs=1):
    """Median/mean seconds per training batch for dense, weight-wrapped and unit-wrapped."""
    ds, shape, steps = _dataset(dataset, batch_size)
    results = {}
    for variant in ("dense", "weight", "unit"):
        train_lib.set_seed(0)
        model = build_model(model_name, shape, 10, seed=0)
        callbacks = []
        if variant != "dense":
            result = prune(model, variant, "polynomial", 0.5, steps_per_epoch=steps,
                           epochs=epochs)
            model, callbacks = result.model, result.callbacks
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                      ["accuracy"])
        timer = _BatchTimer()
        model.fit(ds, epochs=epochs, verbose=0, callbacks=callbacks + [timer])
        times = np.array(timer.times[warmup_epochs * steps:])
        results[variant] = {"median_ms": float(np.median(times) * 1e3),
                            "mean_ms": float(times.mean() * 1e3), "steps": int(len(times))}
    for variant in ("weight", "unit"):
        results[variant]["ratio_to_dense"] = (results[variant]["median_ms"]
                                              / results["dense"]["median_ms"])
    return {"model": model_name, "dataset": dataset, "batch_size": batch_size, **results}


class _EpochTimer(keras.callbacks.Callback):
    """Seconds per step of each epoch's training (first batch begin to last batch end: the
    train function's calls and the Python between them, the channel method's selection
    included; validation not). Its batch hooks are needed at no particular step
    (``next_batch_step``), so it leaves training.fit's whole-epoch calls on."""

    def __init__(self, steps):
        super().__init__()
        self.steps, self.per_step = steps, []
        self._start = None

    def next_batch_step(self, step):
        return None

    def on_train_batch_begin(self, batch, logs=None):
        if self._start is None:
            self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.per_step.append((self._end - self._start) / self.steps)
        self._start = None


class _PerBatch(keras.callbacks.Callback):
    """A batch hook with no ``next_batch_step``: training.fit runs one batch per call."""

    def on_train_batch_end(self, batch, logs=None):
        pass


FINE_TUNE_VARIANTS = ("dense", "weight", "unit", "channel")


def fine_tune_step_times(model_name, dataset, batch_size, steps, epochs=4, warmup_epochs=1):
    """Seconds per fine-tuning step under training.fit (the path jobs take) for the dense model
    and under weight, unit and channel pruning (polynomial to 0.5, pruning every quarter
    epoch), on ``steps`` batches per epoch of ``dataset``: a whole epoch per call of the train
    function (steps_per_execution; the channel method's calls end where its schedule fires)
    and one batch per call; median over the epochs after the warm-up, and its ratio to dense
    on the same path."""
    data = load_data(dataset, batch_size=batch_size, seed=0)
    data = dataclasses.replace(data, train=data.train.take(steps),
                               validation=data.validation.take(2))
    steps = int(data.train.cardinality())
    results = {}
    for path in ("whole_epoch", "per_batch"):
        for variant in FINE_TUNE_VARIANTS:
            train_lib.set_seed(0)
            model = build_model(model_name, data.input_shape, data.num_classes, seed=0)
            callbacks = []
            if variant != "dense":
                result = prune(model, variant, "polynomial", 0.5, steps_per_epoch=steps,
                               epochs=epochs, train_data=data.train)
                model, callbacks = result.model, result.callbacks
            train_lib.compile_model(model, keras.optimizers.Adam(1e-3))
            timer = _EpochTimer(steps)
            extra = [_PerBatch()] if path == "per_batch" else []
            train_lib.fit(model, data, epochs, callbacks=[timer] + callbacks + extra,
                          log=lambda _: None)
            median = float(np.median(timer.per_step[warmup_epochs:]))
            results.setdefault(path, {})[variant] = {"median_ms": median * 1e3}
        for variant in FINE_TUNE_VARIANTS:
            row = results[path][variant]
            row["ratio_to_dense"] = row["median_ms"] / results[path]["dense"]["median_ms"]
    return {"model": model_name, "dataset": dataset, "batch_size": batch_size, "steps": steps,
            "epochs": epochs, **results}
