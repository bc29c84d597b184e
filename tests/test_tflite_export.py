import numpy as np
import pytest

from tfprune.tflite import export
from tfprune.errors import TfpruneError, UnknownNameError
from tfprune.models import build_model
from tfprune.pruning import prune


@pytest.fixture(scope="module")
def mlp():
    return build_model("mlp", (8, 8, 1), 10, seed=0)


def rep(n=16, shape=(8, 8, 1)):
    return np.random.default_rng(0).random((n,) + shape).astype(np.float32)


def tensor_types(content):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    return (interpreter.get_input_details()[0]["dtype"],
            interpreter.get_output_details()[0]["dtype"],
            {d["dtype"] for d in interpreter.get_tensor_details()})


def test_quantizations_produce_expected_types_and_sizes(mlp):
    sizes = {}
    for q in ("float32", "float16", "dynamic", "int8"):
        content = export.to_tflite(mlp, q, rep())
        sizes[q] = len(content)
        in_type, out_type, all_types = tensor_types(content)
        if q == "int8":
            assert in_type == np.int8 and out_type == np.int8
        else:
            assert in_type == np.float32 and out_type == np.float32
        if q == "float16":
            assert np.float16 in all_types
        if q == "dynamic":
            assert np.int8 in all_types
    params = mlp.count_params()
    assert sizes["float32"] > 4 * params
    assert 2 * params < sizes["float16"] < 0.6 * sizes["float32"]
    assert sizes["dynamic"] < 0.35 * sizes["float32"] and sizes["int8"] < 0.35 * sizes["float32"]


def test_sparse_encoding_shrinks_a_sparse_model(mlp):
    weights = [w.copy() for w in mlp.get_weights()]
    sparse_weights = [np.where(np.abs(w) < np.quantile(np.abs(w), 0.9), 0, w) if w.ndim == 2 else w
                      for w in weights]
    model = build_model("mlp", (8, 8, 1), 10)
    model.set_weights(sparse_weights)
    dense = export.to_tflite(model, "int8", rep())
    encoded = export.to_tflite(model, "int8", rep(), sparse=True)
    assert len(encoded) < 0.7 * len(dense)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(quantization="int3"), UnknownNameError,
     "unknown quantization 'int3'; registered: dynamic, float16, float32, int4, int8, mixed"),
    (dict(quantization="int8"), TfpruneError, "`representative_data` is required for int8"),
    (dict(quantization="int8", representative_data=rep(4, (28, 28, 1))), TfpruneError,
     r"must have shape \(N,\) \+ \(8, 8, 1\) to match the model input, got \(4, 28, 28, 1\)"),
    (dict(quantization="int8", representative_data=np.full((2, 8, 8, 1), np.nan)), TfpruneError, "NaN"),
])
def test_bad_input(mlp, kwargs, error, message):
    with pytest.raises(error, match=message):
        export.to_tflite(mlp, **kwargs)


def test_wrapped_model_refused_and_nothing_written(mlp, tmp_path):
    wrapped = prune(mlp, "weight", "constant", 0.5, steps_per_epoch=1, epochs=1).model
    path = tmp_path / "m.tflite"
    with pytest.raises(TfpruneError, match="still has pruning wrappers; strip them first"):
        export.export(wrapped, path)
    with pytest.raises(UnknownNameError):
        export.export(mlp, path, quantization="int3")
    assert list(tmp_path.iterdir()) == []


def test_a_model_of_token_ids_converts_to_full_integer_int8_with_int32_inputs(tmp_path):
    """Text data: the calibration sample stays token ids (int32 inputs, as the model takes
    them; the output int8), and the interpreter runs it; float32 equals Keras."""
    from tfprune.keras import keras
    from tfprune.tflite import evaluate

    x = np.random.default_rng(0).integers(0, 50, (64, 8)).astype(np.int32)
    inputs = keras.Input((8,), dtype="int32")
    hidden = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 6)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    reference = model.predict(x, verbose=0)
    for quantization, atol in (("float32", 1e-6), ("int8", 0.02)):
        path = tmp_path / f"{quantization}.tflite"
        path.write_bytes(export.to_tflite(model, quantization, representative_data=x[:32]))
        loaded = evaluate.load(str(path))
        assert loaded.interpreter.get_input_details()[0]["dtype"] == np.int32
        np.testing.assert_allclose(evaluate.predict(loaded, x), reference, atol=atol)
