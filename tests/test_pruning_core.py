import numpy as np
import pytest

from tfprune import precision
from tfprune import training as train_lib
from tfprune.data import load_data
from tfprune.errors import TfpruneError, UnknownNameError
from tfprune.keras import keras
from tfprune.models import build_model
from tfprune.pruning import prune, strip, stats
from tfprune.pruning.unit import PruneLowMagnitude, UnitPruneLowMagnitude

from conftest import MIRRORED_PREAMBLE


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", batch_size=128, seed=0)


def fine_tune(result, data, epochs=2):
    train_lib.compile_model(result.model, keras.optimizers.Adam(1e-3))
    train_lib.fit(result.model, data, epochs, callbacks=result.callbacks, log=lambda _: None)
    return strip(result.model)


@pytest.mark.integration
@pytest.mark.parametrize("method", ["weight", "unit"])
@pytest.mark.parametrize("schedule", ["constant", "polynomial"])
def test_prune_reaches_target_per_layer_and_leaves_baseline_alone(digits, method, schedule):
    baseline = build_model("cnn", digits.input_shape, 10, seed=0)
    before = [w.copy() for w in baseline.get_weights()]
    result = prune(baseline, method, schedule, 0.75, steps_per_epoch=digits.steps_per_epoch,
                   epochs=2)
    assert result.pruned_layers == ["conv2", "fc1"]
    assert set(result.skipped_layers) == {"conv1", "classifier"}
    pruned = fine_tune(result, digits)
    for row in stats.layer_table(pruned):
        if row["layer"] in result.pruned_layers:
            assert abs(row["sparsity"] - 0.75) <= 0.01, row
            if method == "unit":
                assert row["units_kept"] == row["units"] // 4, row
        else:
            assert row["sparsity"] < 0.01, row
    for old, new in zip(before, baseline.get_weights()):
        np.testing.assert_array_equal(old, new)


@pytest.mark.integration
def test_unit_pruning_zeroes_bias_and_following_batchnorm(digits):
    baseline = build_model("vgg16", digits.input_shape, 10, seed=0)
    result = prune(baseline, "unit", "constant", 0.5, steps_per_epoch=2, epochs=1,
                   layers=["conv3", "fc1"])
    wrapper = next(l for l in result.model.layers if isinstance(l, UnitPruneLowMagnitude)
                   and l.layer.name == "conv3")
    assert wrapper.tied_layers == ["bn3"]
    x, y = digits.numpy("train", limit=64)
    train_lib.compile_model(result.model, keras.optimizers.Adam(1e-3))
    result.model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=result.callbacks)
    pruned = strip(result.model)
    kernel = pruned.get_layer("conv3").kernel.numpy()
    dead = ~np.any(kernel.reshape(-1, kernel.shape[-1]) != 0, axis=0)
    assert dead.sum() == 64
    bn = pruned.get_layer("bn3")
    assert np.all(bn.gamma.numpy()[dead] == 0) and np.all(bn.beta.numpy()[dead] == 0)
    assert np.all(bn.gamma.numpy()[~dead] != 0)


@pytest.mark.integration
def test_two_by_four_weight_pruning(digits):
    baseline = build_model("cnn", digits.input_shape, 10, seed=0)
    result = prune(baseline, "weight", "constant", 0.5, steps_per_epoch=digits.steps_per_epoch,
                   epochs=1, sparsity_m_by_n="2:4")
    pruned = fine_tune(result, digits, epochs=1)
    kernel = pruned.get_layer("fc1").kernel.numpy()  # (256 in, 128 out): groups of 4 inputs
    groups = np.count_nonzero(kernel.T.reshape(128, 64, 4), axis=-1)
    assert groups.max() <= 2


def test_explicit_layers_and_classifier(digits):
    baseline = build_model("mlp", digits.input_shape, 10)
    result = prune(baseline, "weight", "constant", 0.5, steps_per_epoch=10, epochs=1,
                   prune_classifier=True)
    assert result.pruned_layers == ["fc1", "fc2", "classifier"]
    result = prune(baseline, "unit", "constant", 0.5, steps_per_epoch=10, epochs=1,
                   layers=["fc2"])
    assert result.pruned_layers == ["fc2"]


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(target_sparsity=1.3), TfpruneError, r"`target_sparsity` must be in \[0, 1\), got 1.3"),
    (dict(target_sparsity=-0.2), TfpruneError, r"`target_sparsity` must be in \[0, 1\), got -0.2"),
    (dict(method="random"), UnknownNameError, "unknown pruning method 'random'; registered: adaptive, channel, dynamic, incremental, unit, weight"),
    (dict(schedule="cubic"), UnknownNameError, "unknown schedule 'cubic'; registered: constant, polynomial"),
    (dict(begin_step=30, end_step=10), TfpruneError, "`begin_step` must be before `end_step`"),
    (dict(layers=["flatten"]), TfpruneError, "cannot be pruned by weight pruning: flatten; prunable layers of .cnn.: conv1, conv2, fc1, classifier"),
    (dict(sparsity_m_by_n="2:4"), TfpruneError, r"`target_sparsity` must be 0.5 with sparsity_m_by_n=2:4, got 0.9"),
    (dict(sparsity_m_by_n="4:2", target_sparsity=0.5), TfpruneError, "0 < m < n"),
    (dict(method="unit", sparsity_m_by_n="2:4", target_sparsity=0.5), TfpruneError, "applies to weight pruning"),
])
def test_bad_arguments(kwargs, error, message):
    baseline = build_model("cnn", (8, 8, 1), 10)
    args = dict(method="weight", schedule="polynomial", target_sparsity=0.9)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        prune(baseline, steps_per_epoch=40, epochs=5, **args)


def test_keras3_model_refused():
    import keras as keras3

    model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    with pytest.raises(TypeError, match="Keras 3 model"):
        prune(model, steps_per_epoch=1, epochs=1)


@pytest.mark.integration
def test_models_built_under_the_mixed_float16_policy_are_pruned(digits):
    """Once refused (tfmot 0.8.1 fails in its mask multiply); tfprune's wrapper takes each
    layer's policy and masks the float32 weights (tests/test_pruning_wrapper.py)."""
    with precision.policy_scope(precision.MIXED):
        baseline = build_model("mlp", digits.input_shape, 10, seed=0)
        result = prune(baseline, "weight", "constant", 0.75,
                       steps_per_epoch=digits.steps_per_epoch, epochs=1)
        train_lib.compile_model(result.model, keras.optimizers.Adam(1e-3))
    assert {l.dtype_policy.name for l in result.model.layers if isinstance(l, PruneLowMagnitude)} \
        == {"mixed_float16"}
    train_lib.fit(result.model, digits, 1, callbacks=result.callbacks, log=lambda _: None)
    pruned = strip(result.model)
    assert stats.summarize(pruned, result.pruned_layers)["pruned_sparsity"] == \
        pytest.approx(0.75, abs=0.01)
    assert precision.global_policy() == "float32"


@pytest.mark.integration
def test_unit_pruning_under_mirrored_strategy_on_two_cpus(python):
    code = MIRRORED_PREAMBLE + """
with strategy.scope():
    result = prune(build_model("cnn", (8, 8, 1), 10, seed=0), "unit", "constant", 0.5,
                   steps_per_epoch=4, epochs=2)
    result.model.compile("adam", "sparse_categorical_crossentropy")
result.model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=result.callbacks)
rows = {r["layer"]: r for r in stats.layer_table(strip(result.model))}
print("replicas", strategy.num_replicas_in_sync, "kept", rows["conv2"]["units_kept"], rows["fc1"]["units_kept"])
"""
    result = python(["-c", code])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2 kept 32 64" in result.stdout


def test_what_stays_dense_is_named_for_every_kernel_layer_that_is_not_pruned():
    """A transposed or separable convolution subclasses Conv2D or Conv: neither a candidate
    nor silently left out."""
    from tfprune.pruning.core import select_layers

    L = keras.layers
    x = keras.Input((8, 8, 3))
    y = L.SeparableConv2D(8, 3, name="sep")(L.Conv2D(8, 3, name="c0")(x))
    y = L.Conv2D(8, 3, name="c1")(L.DepthwiseConv2D(3, name="dw")(
        L.Conv2DTranspose(8, 3, name="tconv")(y)))
    model = keras.Model(x, L.Dense(4, name="fc")(L.Flatten()(L.BatchNormalization()(y))))
    for granularity in ("weight", "unit"):
        selected, skipped = select_layers(model, granularity)
        assert selected == ["c1"]
        assert set(skipped) == {"c0", "sep", "tconv", "dw", "fc"}, skipped
        assert skipped["tconv"].startswith("Conv2DTranspose: not a layer ")


def test_a_conv1d_transpose_is_skipped_not_wrapped():
    """Conv1DTranspose subclasses Conv1D, but no tfmot registry holds it: wrapping it would
    fail inside tfmot."""
    from tfprune.pruning.core import select_layers

    L = keras.layers
    x = keras.Input((16, 3))
    y = L.Conv1D(8, 3, name="c1")(L.Conv1D(8, 3, name="c0")(x))
    y = L.Conv1D(8, 3, name="c2")(L.Conv1DTranspose(8, 3, name="tconv")(y))
    model = keras.Model(x, L.Dense(4, name="fc")(L.Flatten()(y)))
    selected, skipped = select_layers(model, "weight")
    assert selected == ["c0", "c1", "c2"]  # the first-convolution default is for Conv2D
    assert skipped["tconv"] == ("Conv1DTranspose: not a layer weight pruning wraps (Dense, "
                                "Conv1D, Conv2D, Embedding, MultiHeadAttention)")
    pruned = prune(model, "weight", "constant", 0.5, steps_per_epoch=1, epochs=1)
    assert pruned.pruned_layers == ["c0", "c1", "c2"]
