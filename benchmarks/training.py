"""Training step time of pruning-wrapped models against the same dense model."""

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
