import numpy as np
import pytest

from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.models import build_model
from tfprune.pruning import prune
from tfprune.pruning.surgery import shrink

L = keras.layers


def mask_units(model, fraction=0.5, seed=0, skip=("classifier",)):
    """Zero a fraction of each Dense/Conv2D layer's units as unit pruning does (kernel column,
    bias, and the BatchNorm that follows), with non-trivial BatchNorm statistics."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c),
                               rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)])
    for layer in model.layers:
        if type(layer) not in (L.Dense, L.Conv2D) or layer.name in skip:
            continue
        weights = layer.get_weights()
        units = weights[0].shape[-1]
        dead = rng.choice(units, int(units * fraction), replace=False)
        weights[0][..., dead] = 0
        if layer.use_bias:
            weights[1][dead] = 0
        layer.set_weights(weights)
        for bn in model.layers:
            if isinstance(bn, L.BatchNormalization) and bn.input is layer.output:
                bw = bn.get_weights()
                bw[0][dead] = 0
                bw[1][dead] = 0
                bn.set_weights(bw)
    return model


def inputs_for(model, n=16):
    return np.random.default_rng(1).random((n,) + model.input_shape[1:]).astype(np.float32)


@pytest.mark.parametrize("name, shape, min_reduction", [
    ("mlp", (8, 8, 1), 2.5), ("cnn", (8, 8, 1), 3.5), ("vgg16", (32, 32, 3), 3.5)])
def test_shrink_removes_masked_units_exactly(name, shape, min_reduction):
    model = mask_units(build_model(name, shape, 10, seed=0))
    x = inputs_for(model)
    result = shrink(model, check_inputs=x)
    assert result.param_reduction >= min_reduction
    assert result.max_abs_diff <= 1e-4
    assert result.notes == []
    assert all(after == before // 2 for before, after in result.removed.values())
    np.testing.assert_allclose(result.model(x), model(x), atol=1e-4)


def test_shrink_leaves_residual_channels_and_says_so():
    model = mask_units(build_model("resnet20", (8, 8, 1), 10, seed=0))
    x = inputs_for(model)
    result = shrink(model, check_inputs=x)
    assert result.max_abs_diff <= 1e-4
    # Inner block convolutions shrink; convolutions feeding a residual Add cannot.
    assert result.removed["stage1_block1_1_conv"] == (16, 8)
    assert "stage1_block1_2_conv" not in result.removed
    assert any(n.startswith("stage1_block1_2_conv: 8 zero unit(s) kept (tied by a residual Add")
               for n in result.notes)
    assert 1.5 < result.param_reduction < 3


def test_batchnorm_shift_keeps_channel():
    model = build_model("vgg16", (8, 8, 1), 10, seed=0)
    conv = model.get_layer("conv1")
    weights = conv.get_weights()
    weights[0][..., :5] = 0
    conv.set_weights(weights)
    bn = model.get_layer("bn1")
    bw = bn.get_weights()
    bw[1][:5] = 0.3  # beta != 0: the "dead" filter still outputs a constant
    bn.set_weights(bw)
    result = shrink(model, check_inputs=inputs_for(model, 4))
    assert "conv1" not in result.removed
    assert any(n.startswith("conv1: 5 zero unit(s) kept") for n in result.notes)


def test_nothing_to_remove_returns_equivalent_model():
    model = build_model("cnn", (8, 8, 1), 10, seed=0)
    result = shrink(model, check_inputs=inputs_for(model, 4))
    assert result.removed == {} and result.params_after == result.params_before


def test_wrapped_model_refused():
    model = build_model("mlp", (8, 8, 1), 10)
    wrapped = prune(model, "unit", "constant", 0.5, steps_per_epoch=1, epochs=1).model
    with pytest.raises(TfpruneError, match="still has pruning wrappers; call tfprune.pruning.strip"):
        shrink(wrapped)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["vgg16", "resnet20",
                                  pytest.param("mobilenetv2", marks=pytest.mark.integration)])
def test_shrink_after_real_unit_pruning(name):
    from tfprune.pruning import strip

    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype(np.float32)
    y = np.arange(32) % 10
    result = prune(build_model(name, (8, 8, 1), 10, seed=0), "unit", "constant", 0.5,
                   steps_per_epoch=2, epochs=1)
    result.model.compile("sgd", "sparse_categorical_crossentropy")
    result.model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=result.callbacks)
    masked = strip(result.model)
    shrunk = shrink(masked, check_inputs=x)
    assert shrunk.max_abs_diff <= 1e-4
    assert shrunk.params_after < shrunk.params_before
    if name == "resnet20":
        assert any("residual Add" in note for note in shrunk.notes)
