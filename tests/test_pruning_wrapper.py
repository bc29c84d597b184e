"""tfprune's pruning wrapper under mixed_float16: where tfmot fails, and the master weights."""

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot

from tfprune import precision
from tfprune.data import load_data
from tfprune.keras import keras, tf
from tfprune.models import build_model
from tfprune.pruning import channels, prune, stats, strip
from tfprune.pruning.unit import PruneLowMagnitude as TfmotWrapper
from tfprune.pruning.unit import UnitPruneLowMagnitude
from tfprune.pruning.wrapper import PruneLowMagnitude, stored_variable

from conftest import MIRRORED_PREAMBLE

pytestmark = pytest.mark.integration  # every test trains or starts a process


@pytest.fixture
def mixed():
    with precision.policy_scope(precision.MIXED):
        yield
    assert precision.global_policy() == "float32"


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", batch_size=32, seed=0)


def _tiny_sequential():
    return keras.Sequential([keras.layers.Input((8,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(3, dtype="float32", activation="softmax")])


def _fit(model, callbacks, x, y, epochs=1, optimizer="adam"):
    model.compile(optimizer, "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=16, callbacks=callbacks, verbose=0)


def _xy(n=64):
    rng = np.random.default_rng(0)
    return rng.random((n, 8)).astype("float32"), rng.integers(0, 3, n)


def test_tfmot_fails_under_mixed_float16_and_tfprunes_wrapper_does_not(mixed):
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, 0, frequency=1)
    x, y = _xy()
    with pytest.raises(TypeError, match="float16"):  # tfmot issue #409
        plain = tfmot.sparsity.keras.prune_low_magnitude(_tiny_sequential(),
                                                         pruning_schedule=schedule)
        _fit(plain, [tfmot.sparsity.keras.UpdatePruningStep()], x, y)

    model = keras.models.clone_model(
        _tiny_sequential(), clone_function=lambda l: PruneLowMagnitude(l, pruning_schedule=schedule)
        if isinstance(l, keras.layers.Dense) else l)
    _fit(model, [tfmot.sparsity.keras.UpdatePruningStep()], x, y)
    wrappers = [l for l in model.layers if isinstance(l, TfmotWrapper)]
    assert all(w.name.startswith("prune_low_magnitude_dense") for w in wrappers)  # tfmot's
    # Each wrapper takes its layer's policy; its masks are the stored float32 variables.
    assert [w.dtype_policy.name for w in wrappers] == ["mixed_float16", "float32"]
    for wrapper in wrappers:
        for variable in wrapper.pruning_vars[0]:
            assert variable.dtype == tf.float32 and not hasattr(variable, "true_dtype")
        assert np.mean(wrapper.layer.kernel.numpy() == 0) == pytest.approx(0.5, abs=0.02)
    stripped = tfmot.sparsity.keras.strip_pruning(model)
    assert not any(isinstance(l, TfmotWrapper) for l in stripped.layers)


def _rounded_to_float16(values):
    return np.mean(values == values.astype(np.float16).astype(np.float32))


def test_master_weights_stay_float32_after_masked_steps(mixed):
    """The kept weights follow float32 arithmetic: a mask applied in float16 would leave every
    kept weight equal to its float16 rounding."""
    x, y = _xy()
    layer = keras.layers.Dense(16, activation="relu")
    model = keras.Sequential([keras.layers.Input((8,)), PruneLowMagnitude(
        layer, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, 0, frequency=1)),
        keras.layers.Dense(3, dtype="float32", activation="softmax")])
    assert hasattr(layer.kernel, "true_dtype")  # an AutoCastVariable: mixed precision is on
    _fit(model, [tfmot.sparsity.keras.UpdatePruningStep()], x, y, epochs=2)
    kernel = stored_variable(layer.kernel).numpy()
    kept = kernel[kernel != 0]
    assert kept.size == kernel.size // 2
    assert _rounded_to_float16(kept) < 0.02, "kept weights were rounded to float16"

    # The mask step alone (a training-mode call, no optimizer step) leaves the weights exactly
    # as they were: weight * mask is computed in float32, inside the float16 layer's call.
    before = kernel.copy()
    tf.function(lambda: model(x, training=True))()
    np.testing.assert_array_equal(stored_variable(layer.kernel).numpy(), before)


def test_unit_wrapper_masks_bias_and_batchnorm_in_float32(mixed, digits):
    baseline = precision.mixed_copy(build_model("cnn", digits.input_shape, 10, seed=0))
    result = prune(baseline, "unit", "constant", 0.5, steps_per_epoch=digits.steps_per_epoch,
                   epochs=1)
    result.model.compile("adam", "sparse_categorical_crossentropy")
    result.model.fit(digits.split("train"), epochs=1, callbacks=result.callbacks, verbose=0)
    wrappers = [l for l in result.model.layers if isinstance(l, UnitPruneLowMagnitude)]
    assert wrappers and all(w.dtype_policy.name == "mixed_float16" for w in wrappers)
    for wrapper in wrappers:
        kernel = wrapper.pruning_vars[0][0].numpy()
        dead = np.all(kernel.reshape(-1, kernel.shape[-1]) == 0, axis=0)
        assert np.mean(dead) == pytest.approx(0.5, abs=0.05)
        for variable in wrapper._per_unit_variables():
            assert variable.dtype == tf.float32 and not hasattr(variable, "true_dtype")
            values = variable.numpy()
            assert np.all(values[dead] == 0)
        bias = wrapper._per_unit_variables()[0].numpy()[~dead]
        assert _rounded_to_float16(bias[bias != 0]) < 0.5


@pytest.mark.parametrize("method", ["weight", "unit", "channel", "incremental"])
def test_every_granularity_reaches_its_target_under_mixed_float16(mixed, digits, method):
    baseline = build_model("cnn", digits.input_shape, 10, seed=0)
    copy = precision.mixed_copy(baseline)
    deciding = method == "incremental"  # its masks written by dynamic.LayerSlot
    result = prune(copy, method, None if deciding else "constant", 0.5,
                   steps_per_epoch=digits.steps_per_epoch, epochs=3,
                   train_data=digits.split("train") if deciding else None,
                   log=lambda _: None,
                   **({"dynamic": {"every": 1, "granularity": "unit"}} if deciding else {}))
    result.model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                         metrics=["accuracy"])
    assert type(result.model.optimizer).__name__.startswith("LossScaleOptimizer")
    result.model.fit(digits.split("train"), validation_data=digits.split("validation"),
                     epochs=3, callbacks=result.callbacks, verbose=0)
    pruned = result.model if result.masks is not None else strip(result.model)
    saved = precision.float32_copy(pruned)
    assert precision.is_float32(saved)
    summary = stats.summarize(saved, result.pruned_layers)
    if result.masks is not None:  # the fraction of channels (weights: more)
        masks = result.masks
        assert channels.channel_sparsity(masks.groups, masks.keep) == pytest.approx(0.5, abs=0.05)
        channels.shrink(saved, masks.groups, masks.keep, digits.numpy("test", limit=32)[0],
                        atol=1e-4, masked=True)  # the masks held through float16 training
    else:
        assert summary["pruned_sparsity"] == pytest.approx(0.5, abs=0.05)
    x = digits.numpy("test", limit=32)[0]
    np.testing.assert_allclose(saved.predict(x, verbose=0), pruned.predict(x, verbose=0),
                               atol=2e-2)


def test_weight_and_unit_pruning_under_mixed_float16_and_mirrored_strategy(python):
    code = MIRRORED_PREAMBLE + """
from tfprune import precision
precision.set_mixed_precision(True)
for method in ("weight", "unit"):
    with strategy.scope():
        model = precision.mixed_copy(build_model("cnn", (8, 8, 1), 10, seed=0))
        result = prune(model, method, "constant", 0.5, steps_per_epoch=4, epochs=2)
        result.model.compile("adam", "sparse_categorical_crossentropy")
    result.model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=result.callbacks)
    wrapper = [l for l in result.model.layers if l.name.endswith("conv2")][0]
    kernel = wrapper.pruning_vars[0][0]
    assert type(kernel).__name__ == "MirroredVariable", type(kernel)
    rows = {r["layer"]: r for r in stats.layer_table(precision.float32_copy(strip(result.model)))}
    print(method, "replicas", strategy.num_replicas_in_sync, "conv2", rows["conv2"]["units_kept"],
          round(rows["conv2"]["sparsity"], 2))
"""
    result = python(["-c", code])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "weight replicas 2 conv2 64 0.5" in result.stdout, result.stdout
    assert "unit replicas 2 conv2 32 0.5" in result.stdout, result.stdout
