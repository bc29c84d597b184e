"""Saliency, SmoothGrad, Grad-CAM, class models and drift on tiny models with known answers."""

import numpy as np
import pytest

from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.models import build_model
from tfprune.results import attribution

L = keras.layers


def _linear(softmax_layer=True):
    """x (2, 3, 1) -> Dense(4) logits [-> softmax], weights known."""
    keras.utils.set_random_seed(0)
    i = keras.Input((2, 3, 1))
    if softmax_layer:
        z = L.Dense(4, name="logits")(L.Flatten()(i))
        out = L.Activation("softmax")(z)
    else:
        out = L.Dense(4, activation="softmax", name="logits")(L.Flatten()(i))
    model = keras.Model(i, out)
    w = np.random.default_rng(0).normal(0, 1, (6, 4)).astype("float32")
    model.get_layer("logits").set_weights([w, np.zeros(4, "float32")])
    return model, w


@pytest.mark.parametrize("softmax_layer", [True, False])
def test_saliency_of_a_linear_model_is_its_weight_row(softmax_layer):
    model, w = _linear(softmax_layer)
    x = np.random.default_rng(1).normal(0, 1, (5, 2, 3, 1)).astype("float32")
    for c in range(4):
        maps = attribution.saliency(model, x, class_index=c)
        assert maps.shape == (5, 2, 3)
        np.testing.assert_allclose(maps, np.broadcast_to(np.abs(w[:, c]).reshape(2, 3),
                                                         (5, 2, 3)), rtol=1e-5)
    # SmoothGrad of a linear model: the gradient does not depend on the input.
    np.testing.assert_allclose(attribution.smoothgrad(model, x, 2, samples=4),
                               attribution.saliency(model, x, 2), rtol=1e-5)
    predicted = attribution.saliency(model, x)  # default: each image's predicted class
    classes = np.argmax(model.predict(x, verbose=0), -1)
    for n, c in enumerate(classes):
        np.testing.assert_allclose(predicted[n], np.abs(w[:, c]).reshape(2, 3), rtol=1e-5)


def test_grad_cam_of_a_hand_set_convolution():
    """Identity 1x1 convolution -> global average -> one score: every channel's weight is
    1/(H W), so the map is the (positive) input itself, scaled to a peak of 1."""
    i = keras.Input((4, 4, 1))
    conv = L.Conv2D(1, 1, use_bias=False, name="conv")
    out = L.Dense(1, use_bias=False, name="score")(L.GlobalAveragePooling2D()(conv(i)))
    model = keras.Model(i, out)
    conv.set_weights([np.ones((1, 1, 1, 1), "float32")])
    model.get_layer("score").set_weights([np.ones((1, 1), "float32")])
    x = np.random.default_rng(0).uniform(0.1, 1, (3, 4, 4, 1)).astype("float32")
    cam = attribution.grad_cam(model, x, class_index=0)
    np.testing.assert_allclose(cam, x[..., 0] / x[..., 0].max(axis=(1, 2), keepdims=True),
                               atol=1e-6)


def test_grad_cam_layer_choice_and_errors():
    model = build_model("cnn", (8, 8, 1), 10, seed=0)
    assert attribution.conv_layers(model) == ["conv1", "conv2"]
    assert attribution.check_cam_layer(model) == "conv2"
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 1)).astype("float32")
    assert attribution.grad_cam(model, x, layer="conv1").shape == (2, 8, 8)
    with pytest.raises(TfpruneError, match=r"'nope' of 'cnn' does not exist; valid layers: "
                                           r"conv1, conv2"):
        attribution.grad_cam(model, x, layer="nope")
    with pytest.raises(TfpruneError, match=r"'fc1' .* is not a convolution .*conv1, conv2"):
        attribution.grad_cam(model, x, layer="fc1")
    with pytest.raises(TfpruneError, match="no convolution"):
        attribution.check_cam_layer(build_model("mlp", (8, 8, 1), 10))


def test_grad_cam_through_a_nested_model():
    """A backbone model inside a functional model: its convolutions are listed as
    "backbone/conv", found by path or by their own name, and Grad-CAM through the outer model
    equals Grad-CAM of the backbone's own head; a wrong name lists the nested paths."""
    keras.utils.set_random_seed(0)
    inner_in = keras.Input((6, 6, 1))
    h = L.Conv2D(3, 3, padding="same", activation="relu", name="conv_a")(inner_in)
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="conv_b")(h)
    backbone = keras.Model(inner_in, h, name="backbone")
    i = keras.Input((6, 6, 1))
    out = L.Dense(3, activation="softmax", name="head")(L.GlobalAveragePooling2D()(backbone(i)))
    outer = keras.Model(i, out, name="outer")
    flat_in = keras.Input((6, 6, 1))
    flat = keras.Model(flat_in, outer.get_layer("head")(
        L.GlobalAveragePooling2D()(backbone.get_layer("conv_b")(
            backbone.get_layer("conv_a")(flat_in)))))
    assert attribution.conv_layers(outer) == ["backbone/conv_a", "backbone/conv_b"]
    assert attribution.check_cam_layer(outer) == "backbone/conv_b"
    assert attribution.check_cam_layer(outer, "conv_a") == "backbone/conv_a"
    x = np.random.default_rng(1).uniform(0, 1, (4, 6, 6, 1)).astype("float32")
    for layer, flat_layer in (("backbone/conv_b", "conv_b"), ("conv_a", "conv_a")):
        np.testing.assert_allclose(attribution.grad_cam(outer, x, 1, layer=layer),
                                   attribution.grad_cam(flat, x, 1, layer=flat_layer),
                                   atol=1e-6)
    assert "call" not in vars(backbone.get_layer("conv_b"))  # the recording hook is gone
    with pytest.raises(TfpruneError, match=r"'head' .* is not a convolution .*valid layers: "
                                           r"backbone/conv_a, backbone/conv_b"):
        attribution.grad_cam(outer, x, layer="head")


def test_class_model_of_a_one_layer_net_follows_its_weights():
    model, w = _linear()
    image = attribution.class_model(model, 1, steps=100, learning_rate=0.05, l2=0.05,
                                    blur_every=0, jitter=0)
    direction = image.reshape(-1)
    cosine = direction @ w[:, 1] / (np.linalg.norm(direction) * np.linalg.norm(w[:, 1]))
    assert cosine > 0.99
    # Several classes at once (one batch): each image follows its own class's weights.
    images = attribution.class_model(model, [0, 1, 3], steps=100, learning_rate=0.05, l2=0.05,
                                     blur_every=0, jitter=0)
    assert images.shape == (3, 2, 3, 1)
    for image, c in zip(images, [0, 1, 3]):
        direction = image.reshape(-1)
        assert direction @ w[:, c] / (np.linalg.norm(direction) * np.linalg.norm(w[:, c])) > 0.99
    blurred = attribution.class_model(build_model("cnn", (8, 8, 1), 10, seed=0), 3, steps=8)
    assert blurred.shape == (8, 8, 1) and np.isfinite(blurred).all()


def test_drift_measures():
    a = np.arange(12, dtype=float).reshape(1, 3, 4)
    assert attribution.spearman(a, a)[0] == pytest.approx(1.0)
    assert attribution.spearman(a, -a)[0] == pytest.approx(-1.0)
    assert attribution.spearman(a, np.zeros_like(a))[0] == 0.0  # a flat map: no ranking
    assert attribution.top_k_overlap(a, a, 0.25)[0] == 1.0
    assert attribution.top_k_overlap(a, -a, 0.25)[0] == 0.0
    d = attribution.drift(np.concatenate([a, a]), np.concatenate([a, -a]), [1, 2], [1, 3],
                          fraction=0.25)
    assert d == {"spearman": pytest.approx(0.0), "top_k_overlap": 0.5,
                 "prediction_change": 0.5}
