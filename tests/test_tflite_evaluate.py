import numpy as np
import pytest

from tfprune.tflite import evaluate, export
from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.models import build_model


@pytest.fixture(scope="module")
def trained():
    """A tiny cnn fitted for a few epochs on random-but-learnable data."""
    rng = np.random.default_rng(0)
    x = rng.random((256, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)
    model = build_model("cnn", (8, 8, 1), 2, seed=0)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    return model, x, y


@pytest.mark.integration
@pytest.mark.parametrize("quantization, tolerance", [
    ("float32", 0.0), ("float16", 0.01), ("dynamic", 0.02), ("int8", 0.03)])
def test_tflite_accuracy_matches_keras(trained, quantization, tolerance):
    model, x, y = trained
    keras_acc = float(np.mean(np.argmax(model.predict(x, verbose=0), 1) == y))
    content = export.to_tflite(model, quantization, x[:100])
    loaded = evaluate.load(content)
    acc, loss = evaluate.accuracy(loaded, x, y, batch_size=50)
    assert abs(acc - keras_acc) <= tolerance
    assert 0 < loss < 1
    probs = evaluate.predict(loaded, x[:7], batch_size=3)
    assert probs.shape == (7, 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=0.02)


@pytest.mark.integration
def test_latency_and_sizes(trained):
    model, x, _ = trained
    content = export.to_tflite(model, "float32")
    result = evaluate.latency(evaluate.load(content, num_threads=2), x[0], warmup=3, runs=25)
    assert result["num_threads"] == 2 and result["latency_runs"] == 25
    assert 0 < result["latency_ms_median"] <= result["latency_ms_p90"]
    sizes = evaluate.sizes(content, reference_bytes=2 * len(content))
    assert sizes["size_bytes"] == len(content) and 0 < sizes["gzip_bytes"] < len(content)
    assert sizes["compression_vs_float32"] == pytest.approx(2.0)


@pytest.mark.integration
def test_xnnpack_refusal_falls_back_and_says_so(trained):
    model, x, y = trained
    sparse_model = keras.models.clone_model(model)
    sparse_model.set_weights([np.where(np.abs(w) < np.quantile(np.abs(w), 0.9), 0, w)
                              if w.ndim > 1 else w for w in model.get_weights()])
    content = export.to_tflite(sparse_model, "int8", x[:50], sparse=True)
    loaded = evaluate.load(content)
    assert loaded.delegate == evaluate.DELEGATE_NONE and loaded.fallback_reason
    acc, _ = evaluate.accuracy(loaded, x, y)
    assert acc > 0.5


def test_bad_files(tmp_path):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(TfpruneError, match="is empty, not a .tflite model"):
        evaluate.load(empty)
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(TfpruneError, match="not a .tflite model"):
        evaluate.load(corrupt)
    with pytest.raises(TfpruneError, match="no .tflite file at"):
        evaluate.load(tmp_path / "missing.tflite")
    truncated = tmp_path / "truncated.tflite"
    content = export.to_tflite(build_model("mlp", (8, 8, 1), 10), "float32")
    truncated.write_bytes(content[:200])
    with pytest.raises(TfpruneError, match="cannot run on the interpreter"):
        evaluate.load(truncated)


@pytest.mark.integration
def test_input_shape_checked(trained):
    model, _, _ = trained
    loaded = evaluate.load(export.to_tflite(model, "float32"))
    with pytest.raises(TfpruneError, match=r"inputs must have shape \(N,\) \+ \(8, 8, 1\)"):
        evaluate.predict(loaded, np.zeros((2, 4, 4, 1)))
