"""Keras 3 pieces rebuilt from built-in tf_keras layers (tfprune.keras3_compositions), checked
bit for bit where the operations are the same, and back to Keras 3 as built-in layers."""

import json

import numpy as np
import pytest

from tfprune import keras3
from tfprune.errors import TranslationError
from tfprune.keras import keras as tf_keras

keras = keras3.keras3()
L = keras.layers


def _wide(shape, n=8, seed=0):
    """Inputs spread over the kinks of relu6(x + 3) (at -3 and 3) and beyond."""
    return np.random.default_rng(seed).normal(0, 4, (n,) + shape).astype("float32")


def _classes(model):
    return {type(layer).__name__ for layer in model.layers}


def _round_trip(model, x, exact=True):
    """Forward and back; the two Translations, the outputs compared to ``model``'s."""
    forward = keras3.from_keras3(model, x)
    back = keras3.to_keras3(forward.model, x)
    want = np.asarray(model(x, training=False))
    got = np.asarray(back.model(x, training=False))
    if exact:
        assert forward.max_abs_diff == 0.0 and back.max_abs_diff == 0.0
        np.testing.assert_array_equal(got, want)
    for layer in back.model.operations:  # built-in Keras 3 only: nothing of tfprune
        assert type(layer).__module__.startswith("keras.src."), type(layer)
    return forward, back


def test_hard_sigmoid_and_hard_silu_are_exact_compositions():
    keras.utils.set_random_seed(0)
    i = keras.Input((6, 6, 3))
    x = L.Conv2D(4, 3, padding="same", activation="hard_silu", name="conv")(i)
    x = L.Activation("hard_swish", name="hswish")(x)
    x = L.Activation("hard_sigmoid", name="hsig")(L.Rescaling(8.0)(x))
    x = L.Dense(5, activation="hard_sigmoid", name="dense")(L.Rescaling(8.0)(x))
    model = keras.Model(i, x)
    forward, back = _round_trip(model, _wide((6, 6, 3), n=32))
    tfk = forward.model
    names = [layer.name for layer in tfk.layers]
    for name in ("hswish_hard_sigmoid_offset", "hswish_hard_sigmoid_relu6", "hswish_hard_sigmoid",
                 "hswish", "hsig_hard_sigmoid_offset", "hsig", "conv", "conv_hard_silu",
                 "dense", "dense_hard_sigmoid"):
        assert name in names, name
    assert tfk.get_layer("conv").get_config()["activation"] == "linear"
    assert type(tfk.get_layer("hswish")).__name__ == "Multiply"
    assert type(tfk.get_layer("hsig")).__name__ == "Normalization"  # divides by sqrt(36)
    assert not any(getattr(layer, "activation", None) is not None
                   and "hard" in getattr(layer.activation, "__name__", "")
                   for layer in tfk.layers)
    assert [layer.name for layer in back.model.layers] == names


def test_arithmetic_operations_outside_layers_become_layers():
    """MobileNetV3's squeeze-and-excitation writes hard_sigmoid as ReLU(6)(x + 3) * (1 / 6)."""
    i = keras.Input((4, 4, 3))
    x = L.ReLU(6.0)(i + 3.0) * (1.0 / 6.0)
    x = 2.0 - (x - 0.5)
    x = keras.ops.divide(x, 4.0) + keras.ops.multiply(x, i)
    model = keras.Model(i, x)
    forward, _ = _round_trip(model, _wide((4, 4, 3)))
    assert _classes(forward.model) == {"InputLayer", "Rescaling", "ReLU", "Normalization",
                                       "Multiply", "Add"}

    class Custom(L.Layer):  # a custom layer is never composed: refused by name
        def __init__(self, factor, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

    j = keras.Input((4,))
    for op, match in ((Custom(2.0, name="custom")(j), r"layer 'custom' \(.*Custom\)"),
                      (keras.ops.exp(j), r"operation 'exp\w*' .* outside any layer"),
                      (j / j, r"division of two tensors"),
                      (j / -2.0, r"divided by a positive constant")):
        with pytest.raises(TranslationError, match=match):
            keras3.from_keras3(keras.Model(j, op))


def test_gelu_exact_and_approximate_and_silu(tmp_path):
    keras.utils.set_random_seed(0)
    i = keras.Input((7,))
    x = L.Dense(6, activation="gelu", name="dense_gelu")(i)
    x = L.Activation("gelu")(x)
    approximate = keras.ops.gelu(x)  # keras.ops.gelu: tanh approximation by default
    exact = keras.ops.gelu(x, approximate=False)
    x = L.Concatenate()([approximate, exact, L.Activation("silu")(x), L.Activation("swish")(x)])
    x = L.Dense(3, activation="silu")(x)
    model = keras.Model(i, x)
    forward, back = _round_trip(model, _wide((7,), n=64))
    assert "TFOpLambda" in _classes(forward.model)  # tf.nn.gelu(x, approximate=True) itself
    gelus = [op for op in back.model.operations if type(op).__name__ == "Gelu"]
    assert [op.approximate for op in gelus] == [True]
    path = keras3.save(back.model, str(tmp_path / "gelu.keras"))  # the operation is saved
    x = _wide((7,), n=64)
    np.testing.assert_array_equal(np.asarray(keras.saving.load_model(path)(x)),
                                  np.asarray(model(x)))


def test_conv2d_transpose_encoder_decoder_with_a_skip():
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3))
    e1 = L.Conv2D(8, 3, padding="same", activation="relu")(i)
    e2 = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(e1)
    up = L.Conv2DTranspose(8, 3, strides=2, padding="same", name="up")(e2)
    x = L.Concatenate()([up, e1])
    x = L.Conv2DTranspose(4, 3, strides=2, output_padding=1, use_bias=False, name="up2")(x)
    model = keras.Model(i, L.Conv2D(2, 1)(x))
    forward, back = _round_trip(model, _wide((16, 16, 3)), exact=False)
    assert forward.max_abs_diff < 1e-5 and back.max_abs_diff < 1e-5
    assert forward.model.get_layer("up2").get_config()["output_padding"] == (1, 1)
    assert forward.model.output_shape == (None, 34, 34, 2)


def test_layer_scale_is_a_one_by_one_depthwise_conv():
    from keras.src.applications.convnext import LayerScale
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    rng = np.random.default_rng(0)
    i = keras.Input((5, 5, 6))
    image = LayerScale(1e-6, 6, name="scale_image")
    x = image(i)
    x = CustomScaleLayer(0.17, name="residual")([i, x])
    tokens = L.Reshape((25, 6))(x)
    token_scale = LayerScale(0.5, 6, name="scale_tokens")
    model = keras.Model(i, token_scale(tokens))
    for layer in (image, token_scale):
        layer.set_weights([rng.normal(0, 1, 6).astype("float32")])
    forward, _ = _round_trip(model, _wide((5, 5, 6)))
    tfk = forward.model
    assert type(tfk.get_layer("scale_image")).__name__ == "DepthwiseConv2D"
    assert type(tfk.get_layer("scale_tokens")).__name__ == "DepthwiseConv1D"
    np.testing.assert_array_equal(tfk.get_layer("scale_image").depthwise_kernel.numpy()[0, 0, :, 0],
                                  image.get_weights()[0])
    assert type(tfk.get_layer("residual")).__name__ == "Add"
    assert tfk.get_layer("residual_scale").get_config()["scale"] == 0.17

    j = keras.Input((6,))
    with pytest.raises(TranslationError, match=r"layer 'flat_scale' .* scales a rank-2 input"):
        keras3.from_keras3(keras.Model(j, LayerScale(0.1, 6, name="flat_scale")(j)))


def _grouped():
    keras.utils.set_random_seed(0)
    i = keras.Input((9, 9, 8))
    x = L.Conv2D(8, 3, groups=8, padding="same", activation="hard_silu", name="dw",
                 kernel_regularizer=keras.regularizers.L2(1e-3))(i)
    x = L.Conv2D(8, 3, strides=2, groups=8, name="dw_strided", use_bias=False)(x)
    return keras.Model(i, L.Conv2D(6, 1, groups=2, name="grouped")(x))


def test_grouped_convolutions():
    """groups == filters == channels becomes a depthwise conv; other group counts stay grouped
    (tf_keras runs them on CPU; the TFLite converter takes them: the integration test)."""
    forward, back = _round_trip(_grouped(), _wide((9, 9, 8)), exact=False)
    # Keras 3 runs grouped convs through XLA on CPU: the sums differ in order, by float ulps
    assert forward.max_abs_diff < 1e-5 and back.max_abs_diff < 1e-5
    tfk = forward.model
    assert type(tfk.get_layer("dw")).__name__ == "DepthwiseConv2D"
    assert tfk.get_layer("dw").depthwise_kernel.shape == (3, 3, 8, 1)
    assert tfk.get_layer("dw").losses  # the regularizer came along, as depthwise_regularizer
    assert tfk.get_layer("dw_strided").get_config()["strides"] == (2, 2)
    assert tfk.get_layer("grouped").get_config()["groups"] == 2


KERAS_ALONE = """
import json, sys
import json

import numpy as np
import keras
result = {}
for path in sys.argv[1:]:
    model = keras.saving.load_model(path)
    data = np.load(path + ".npz")
    got = np.asarray(model(data["x"], training=False))
    result[path] = float(np.max(np.abs(got - data["y"])))
result["modules"] = sorted(m for m in ("tfprune", "tf_keras") if m in sys.modules)
print(json.dumps(result))
"""

# keras.applications models reduced to what a fast test can run: the compositions they need
REDUCED = {
    "MobileNetV3Small": (dict(alpha=0.35, minimalistic=False), (32, 32, 3)),  # hard_silu, SE ops
    "EfficientNetB0": ({}, (32, 32, 3)),  # Rescaling, Normalization, silu, SE
    "Xception": ({}, (71, 71, 3)),  # SeparableConv2D, at its minimum input
    "ConvNeXtTiny": ({}, (32, 32, 3)),  # LayerScale, grouped (depthwise) Conv2D, LayerNorm, gelu
}


@pytest.mark.integration
def test_reduced_applications_translate_go_back_and_convert(tmp_path, python):
    """Four keras.applications families, reduced: translated to tf_keras and back within
    float rounding, the Keras 3 files loaded by `import keras` alone in a fresh process, and a
    grouped conv converted to TFLite and run. (int8 conversion of the translated
    MobileNetV3Small and ConvNeXtTiny takes about a minute each: measured once, not here.)"""
    from tfprune.tflite import evaluate, export

    paths = []
    for name, (options, shape) in REDUCED.items():
        keras.utils.set_random_seed(0)
        model = getattr(keras.applications, name)(weights=None, input_shape=shape, classes=10,
                                                  classifier_activation=None, **options)
        x = np.random.default_rng(0).uniform(0, 255, (4,) + shape).astype("float32")
        forward = keras3.from_keras3(model, x, name=name)
        assert forward.max_abs_diff < 1e-4, name
        path = str(tmp_path / f"{name}.keras")
        back = keras3.save_as_keras3(forward.model, path, x, name=name)
        assert back.max_abs_diff < 1e-4, name
        np.savez(path + ".npz", x=x, y=np.asarray(model(x, training=False)))
        paths.append(path)
    done = python(["-c", KERAS_ALONE] + paths)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.pop("modules") == []
    assert all(diff < 1e-4 for diff in result.values()), result

    grouped = keras3.from_keras3(_grouped()).model
    x = _wide((9, 9, 8), n=4)
    loaded = evaluate.load(export.to_tflite(grouped, "float32"))
    np.testing.assert_allclose(evaluate.predict(loaded, x), grouped(x).numpy(), atol=1e-4)
