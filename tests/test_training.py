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


class _Calls(keras.callbacks.Callback):
    """Records the optimizer step at the start of every call of the train function; needs its
    batch hooks at no particular step (``next_batch_step``), so whole-epoch calls stay on."""

    def __init__(self):
        super().__init__()
        self.starts = []

    def next_batch_step(self, step):
        return None

    def on_train_batch_begin(self, batch, logs=None):
        self.starts.append(int(self.model.optimizer.iterations.numpy()))


class _StopBefore(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt  # as a kill after the checkpoint of the epoch before


def _fine_tune(method, per_batch, tmp_path, name, extra=(), epochs=3):
    from tfprune.pruning import method_objects

    training.set_seed(0)
    data = load_data("digits", batch_size=32, seed=0)
    # the schedule prunes every 7 steps; incremental has no schedule (it decides per epoch)
    options = {"dynamic": {"every": 1}} if method == "incremental" else {"frequency": 7}
    result = method_objects.prune(
        build_model("cnn", data.input_shape, data.num_classes, seed=0), method, "polynomial",
        0.6, steps_per_epoch=data.steps_per_epoch, epochs=epochs,
        train_data=data.split("train"), log=lambda _: None, **options)
    model = training.compile_model(result.model, keras.optimizers.Adam(1e-3))
    calls = _Calls()
    callbacks = result.callbacks + [calls] + list(extra) + ([_PerBatch()] if per_batch else [])
    history = training.fit(model, data, epochs, callbacks=callbacks, log=lambda _: None,
                           backup_dir=str(tmp_path / name))
    return model, history, calls.starts, data.steps_per_epoch, result.steps


@pytest.mark.parametrize("method", [pytest.param("weight", marks=pytest.mark.smoke), "unit",
                                    "channel", "incremental"])
def test_fine_tuning_an_epoch_per_call_prunes_and_trains_the_same(tmp_path, method):
    """Masks (tfmot's variables, or the zeroed channels) and weights are those of the
    per-batch path: the pruning step and the masks are updated inside the compiled step; the
    channel method's calls end before each step its schedule fires (every 7 steps)."""
    whole, whole_history, whole_starts, steps, schedule = _fine_tune(method, False, tmp_path,
                                                                      "whole")
    single, single_history, single_starts, _, _ = _fine_tune(method, True, tmp_path, "single")
    assert single_starts == list(range(3 * steps))  # one call per batch
    if method == "channel":
        fires = range(schedule.begin_step, schedule.end_step + 1, schedule.frequency)
        assert schedule.frequency == 7 and len(fires) > 3
        assert whole_starts == sorted(set(fires) | {0, steps, 2 * steps})
    else:
        assert whole_starts == [0, steps, 2 * steps]  # one call per epoch
    names = [w.name for w in whole.weights]
    assert any("mask" in n for n in names) == (method in ("weight", "unit"))
    for name, a, b in zip(names, whole.get_weights(), single.get_weights()):
        assert np.array_equal(a, b), name
    assert whole_history.history == single_history.history
    kernels = [w for n, w in zip(names, whole.get_weights()) if "kernel" in n and w.ndim > 1]
    assert max(float(np.mean(k == 0)) for k in kernels) > 0.5  # it did prune


def test_a_resumed_channel_fine_tuning_ends_as_the_uninterrupted_one(tmp_path):
    """After a resume from the checkpoint the calls still end before the schedule's steps."""
    whole, history, starts, steps, _ = _fine_tune("channel", False, tmp_path, "whole")
    with pytest.raises(KeyboardInterrupt):
        _fine_tune("channel", False, tmp_path, "killed", extra=[_StopBefore(1)])
    resumed, resumed_history, resumed_starts, _, _ = _fine_tune("channel", False, tmp_path,
                                                                "killed")
    assert resumed_starts == [s for s in starts if s >= steps] and len(resumed_starts) > 2
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)
    assert history.history == resumed_history.history
