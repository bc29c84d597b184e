import numpy as np
import pytest

from tfprune.errors import TfpruneError
from tfprune.models import build_model
from tfprune.pruning import oneshot, sensitivity
from tfprune.pruning.method_objects import prune, prune_once
from tfprune.pruning.unit import PruneLowMagnitude


@pytest.fixture(scope="module")
def cnn():
    return build_model("cnn", (8, 8, 1), 10, seed=0)


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(0)
    return rng.random((64, 8, 8, 1)).astype(np.float32), rng.integers(0, 10, 64)


def test_magnitude_mask_keeps_the_largest_exactly():
    kernel = np.array([[0.1, -3.0], [2.0, 0.1]], np.float32)
    assert np.array_equal(oneshot.magnitude_mask(kernel, 0.5), [[0, 1], [1, 0]])
    assert oneshot.magnitude_mask(kernel, 0.99).sum() == 1  # at least one survives


def test_weight_one_shot_matches_tfmot_and_leaves_the_model_alone(cnn):
    before = [w.copy() for w in cnn.get_weights()]
    result = prune_once(cnn, "weight", 0.75)
    assert result.pruned_layers == ["conv2", "fc1"] and not result.callbacks
    for name in result.pruned_layers:
        kernel = result.model.get_layer(name).kernel.numpy()
        assert np.mean(kernel == 0) == pytest.approx(0.75, abs=1e-3)
    assert all(np.array_equal(a, b) for a, b in zip(before, cnn.get_weights()))
    # tfmot's own wrapper, one mask update at step 0, zeroes the same weights.
    wrapped = prune(cnn, "weight", "constant", 0.75, steps_per_epoch=1, epochs=1).model
    for layer in wrapped.layers:
        if isinstance(layer, PruneLowMagnitude):
            layer.pruning_step.assign(0)
            layer.pruning_obj.conditional_mask_update()
            layer.pruning_obj.weight_mask_op()
            ours = result.model.get_layer(layer.layer.name).kernel.numpy()
            assert np.array_equal(layer.layer.kernel.numpy() == 0, ours == 0)


def test_m_by_n_one_shot_is_tfmots_m_by_n_pattern(cnn):
    """One-shot 2:4 zeroes 2 of every 4 consecutive input channels, as the wrapper would: not
    unstructured magnitude masks under an m:n label."""
    result = prune_once(cnn, "weight", 0.5, sparsity_m_by_n="2:4")
    assert result.pruned_layers == ["conv2", "fc1"]
    for name in result.pruned_layers:
        kernel = result.model.get_layer(name).kernel.numpy()
        assert np.mean(kernel == 0) == pytest.approx(0.5, abs=1e-3)
        blocks = np.moveaxis(kernel, -2, -1).reshape(-1, 4)  # 4 consecutive input channels
        assert np.all(np.sum(blocks == 0, axis=1) >= 2)


def test_schedule_and_target_given_beside_options_replace_them(cnn):
    from tfprune.pruning.options import LayerOptions

    options = LayerOptions(target_sparsity=0.8, schedule="polynomial")
    attached = prune(cnn, "weight", "constant", 0.25, options=options, steps_per_epoch=2,
                     epochs=1)
    assert (attached.schedule, attached.target_sparsity) == ("constant", 0.25)
    attached = prune(cnn, "weight", options=options, steps_per_epoch=2, epochs=1)
    assert (attached.schedule, attached.target_sparsity) == ("polynomial", 0.8)
    attached = prune(cnn, "weight", steps_per_epoch=2, epochs=1)
    assert (attached.schedule, attached.target_sparsity) == ("polynomial", 0.5)


def test_unit_and_channel_one_shot_zero_whole_units(cnn):
    unit = prune_once(cnn, "unit", 0.5).model
    fc1 = unit.get_layer("fc1")
    dead = np.all(fc1.kernel.numpy() == 0, axis=0)
    assert dead.sum() == 64 and np.all(fc1.bias.numpy()[dead] == 0)
    channel = prune_once(cnn, "channel", 0.5)
    assert channel.masks is not None and channel.one_shot and not channel.callbacks
    conv1 = channel.model.get_layer("conv1").kernel.numpy()
    assert np.all(conv1 == 0, axis=(0, 1, 2)).sum() == 16


def test_per_layer_targets_and_bad_methods(cnn):
    result = prune_once(cnn, "weight", 0.5, layer_sparsity={"conv2": 0.9, "fc1": 0.2})
    assert np.mean(result.model.get_layer("conv2").kernel.numpy() == 0) == pytest.approx(0.9, abs=1e-3)
    assert np.mean(result.model.get_layer("fc1").kernel.numpy() == 0) == pytest.approx(0.2, abs=1e-3)
    with pytest.raises(TfpruneError, match=r"one-shot pruning \(`fine_tune_epochs=0`\) applies "
                                           r"to the methods weight, unit, channel, not 'adaptive'"):
        prune_once(cnn, "adaptive", 0.5)
    with pytest.raises(TfpruneError, match=r"`layers` names layers that cannot be pruned by "
                                           r"weight pruning: nope"):
        prune_once(cnn, "weight", 0.5, layer_sparsity={"nope": 0.5})


def test_a_layer_at_target_zero_is_counted_as_pruned_in_both_paths(cnn):
    targets = {"conv2": 0.0, "fc1": 0.9}
    once = prune_once(cnn, "weight", 0.5, layer_sparsity=targets)
    tuned = prune(cnn, "weight", "constant", 0.5, steps_per_epoch=1, epochs=1,
                       layer_sparsity=targets)
    assert once.pruned_layers == tuned.pruned_layers == ["conv2", "fc1"]
    wrapped = [l.layer.name for l in tuned.model.layers if isinstance(l, PruneLowMagnitude)]
    assert wrapped == ["fc1"]  # nothing to prune in conv2
    assert np.all(once.model.get_layer("conv2").kernel.numpy() != 0)
    with pytest.raises(TfpruneError, match=r"`layer_sparsity` must prune some layer, got every "
                                           r"target 0"):
        prune(cnn, "weight", "constant", 0.5, steps_per_epoch=1, epochs=1,
                   layer_sparsity={"conv2": 0.0, "fc1": 0.0})


def test_sensitivity_curves_restore_the_model_and_fall_with_sparsity(cnn, sample):
    x, _ = sample
    y = np.argmax(cnn.predict(x, verbose=0), axis=1)  # the model's own answers: accuracy 1 at 0
    before = [w.copy() for w in cnn.get_weights()]
    curves = sensitivity.layer_curves(cnn, "weight", ["conv2", "fc1"], (0, 0.5, 0.99), x, y)
    assert set(curves) == {"conv2", "fc1"}
    for values in curves.values():
        assert values[0] == 1.0 and values[-1] < 1.0
    assert all(np.array_equal(a, b) for a, b in zip(before, cnn.get_weights()))
    whole = sensitivity.model_curve(cnn, "unit", (0, 0.5, 0.99), x, y)
    assert whole[0] == 1.0 and whole[-1] < whole[0]
    groups = sensitivity.group_curves(cnn, (0, 0.9), x, y)
    assert "g1 conv1" in groups and all(v[0] == 1.0 for v in groups.values())
    with pytest.raises(TfpruneError, match=r"`sparsities` must hold a value above 0"):
        sensitivity.layer_curves(cnn, "weight", ["fc1"], (0,), x, y)
