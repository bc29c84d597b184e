"""One trace per model (tflite/traced.py): every conversion through it is byte for byte what
TensorFlow's own from_keras_model makes, and the shared SavedModel is removed afterwards."""

import os

import numpy as np
import pytest

from tfprune.errors import TfpruneError
from tfprune.keras import tf
from tfprune.models import build_model
from tfprune.tflite import export, measure
from tfprune.tflite.traced import Traced

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")


def rep(shape, n=8):
    return np.random.default_rng(0).random((n,) + shape).astype(np.float32)


def plain(model, quantization, representative, sparse):
    """The ordinary path: TensorFlow's from_keras_model, one trace per conversion."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    export.QUANTIZATIONS.get(quantization).configure(
        converter, export.check_representative(model, representative))
    if sparse:
        converter.optimizations = list(converter.optimizations) + [
            tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    return converter.convert()


def residual(shape):
    """A skip connection (Add) around batch-normalized convolutions, as in a ResNet block."""
    from tfprune.keras import keras

    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    y = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.Add()([x, keras.layers.BatchNormalization()(y)]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


# cnn: the demo's model, every conversion; a residual block: the two ends (float32 and int8
# sparse-encoded).
@pytest.mark.parametrize("name, shape, conversions", [
    ("cnn", (8, 8, 1), [(q, s) for q in QUANTIZATIONS for s in (False, True)]),
    ("residual", (8, 8, 3), [("float32", False), ("int8", True)])])
def test_every_conversion_is_the_bytes_from_keras_model_makes(name, shape, conversions):
    model = residual(shape) if name == "residual" else build_model(name, shape, 10, seed=0)
    weights = model.get_weights()  # some zeros, so the sparse encoding has something to do
    model.set_weights([np.where(np.abs(w) < np.quantile(np.abs(w), 0.5), 0, w) if w.ndim > 1
                       else w for w in weights])
    sample = rep(shape)
    with Traced(model) as traced:
        shared = {(q, s): export.to_tflite(model, q, sample, sparse=s, traced=traced)
                  for q, s in conversions}
        assert traced.shared
        directory = traced.directory
        assert os.path.isdir(directory)
    assert not os.path.exists(directory)  # the SavedModel goes with the trace
    for (quantization, sparse), content in shared.items():
        assert content == plain(model, quantization, sample, sparse), (quantization, sparse)
    assert len(set(shared.values())) > len(conversions) // 2  # the quantizations differ


def test_a_trace_serves_only_its_own_model():
    first = build_model("mlp", (8, 8, 1), 10, seed=0)
    second = build_model("mlp", (8, 8, 1), 10, seed=1)
    with Traced(first) as traced, pytest.raises(TfpruneError, match="another model"):
        export.to_tflite(second, "float32", traced=traced)


def test_a_model_that_cannot_be_saved_converts_the_ordinary_way(monkeypatch):
    from tfprune.tflite import traced as traced_lib

    def refuse(*args, **kwargs):
        raise ValueError("cannot save")

    model = build_model("mlp", (8, 8, 1), 10, seed=0)
    monkeypatch.setattr(traced_lib._save, "save", refuse)
    with Traced(model) as traced:
        content = export.to_tflite(model, "float32", traced=traced)
        assert not traced.shared
    assert content == plain(model, "float32", None, False)


def test_convert_and_measure_saves_the_model_once(tmp_path, monkeypatch):
    from tfprune.tflite import traced as traced_lib

    saves = []
    real_save = traced_lib._save.save
    monkeypatch.setattr(traced_lib._save, "save",
                        lambda *a, **k: (saves.append(1), real_save(*a, **k))[1])
    model = build_model("mlp", (8, 8, 1), 10, seed=0)
    x = rep((8, 8, 1), 20)
    y = np.arange(20) % 10
    rows = measure.convert_and_measure(model, x, y, rep((8, 8, 1)), QUANTIZATIONS, [False, True],
                                       str(tmp_path), latency_runs=0, log=lambda _: None,
                                       sparse_sizes=True)
    assert len(rows) == 8 and len(saves) == 1
    for row in rows[::3]:  # float32, dynamic sparse-encoded, int8 (two ordinary conversions)
        with open(row["file"], "rb") as f:
            assert f.read() == plain(model, row["quantization"], rep((8, 8, 1)), row["sparse"])
