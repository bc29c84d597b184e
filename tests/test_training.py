"""training.fit: a whole epoch per call of the train function when no callback acts per batch."""

import numpy as np
import pytest

from tfprune import training
from tfprune.data import load_data
from tfprune.keras import keras
from tfprune.models import build_model

pytestmark = pytest.mark.integration  # every test trains or starts a process


class _PerBatch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        pass


def _fit(callbacks, tmp_path, name):
    training.set_seed(0)
    data = load_data("digits", batch_size=32, seed=0)
    model = training.compile_model(build_model("cnn", data.input_shape, data.num_classes, seed=0))
    counts = []
    make = model.make_train_function

    def recording(force=False):
        counts.append(int(model._steps_per_execution.numpy()))
        return make(force)

    model.make_train_function = recording
    history = training.fit(model, data, 3, callbacks=callbacks, log=lambda _: None,
                           backup_dir=str(tmp_path / name), tensorboard_dir=str(tmp_path / "tb"))
    return model, history, counts, int(data.train.cardinality())


def test_an_epoch_per_call_trains_the_same_weights(tmp_path):
    whole, whole_history, whole_counts, steps = _fit([], tmp_path, "whole")
    single, single_history, single_counts, _ = _fit([_PerBatch()], tmp_path, "single")
    assert steps > 1 and whole_counts == [steps] and single_counts == [1]
    assert int(whole._steps_per_execution.numpy()) == 1  # as compiled, after fit
    for a, b in zip(whole.get_weights(), single.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert whole_history.history == single_history.history
