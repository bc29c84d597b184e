"""The compression stages after pruning (compression/, pipeline.compress_model): their names and
options, the counts they are judged by, which layers tfmot's clustering and QAT take, and on
digits that PQAT keeps every pruned kernel's non-zeros in the int8 .tflite and clustering keeps
each kernel to its clusters."""

import numpy as np
import pytest

from tfprune.compression import stages, weights
from tfprune.errors import TfpruneError


# -- names and options (no TensorFlow) --------------------------------------------------------

def test_a_stage_is_named_for_what_it_preserves():
    assert [stages.STAGES.get(s).applied(False) for s in ("qat", "cluster", "cqat")] == \
        ["qat", "cluster", "cqat"]
    assert [stages.STAGES.get(s).applied(True) for s in ("qat", "cluster", "cqat")] == \
        ["pqat", "sparse-cluster", "pcqat"]
    assert stages.STAGES.get("qat").quantizations(("float32", "int8")) == ("int8",)
    assert stages.STAGES.get("cluster").quantizations(("float32", "int8")) == \
        ("float32", "int8")


@pytest.mark.parametrize("fields, message", [
    (dict(clusters=1), r"^`clusters` must be an integer >= 2, got 1$"),
    (dict(stage_epochs=0), r"^`stage_epochs` must be an integer >= 1, got 0$"),
    (dict(stage_learning_rate=0), r"^`stage_learning_rate` must be > 0, got 0$"),
    (dict(centroids="kmeans"), r"^`centroids` must be one of kmeans\+\+, density, linear, "
                               r"random, got 'kmeans'$"),
])
def test_bad_stage_options_are_one_line(fields, message):
    with pytest.raises(TfpruneError, match=message):
        stages.StageOptions(**fields)


def test_kernel_counts_and_what_counts_as_pruned():
    dense = np.arange(1.0, 13.0).reshape(3, 4)
    pruned = np.where(dense > 9, dense, 0.0)
    counts = weights.kernel_counts({"a": dense, "b": pruned})
    assert counts == {"a": {"size": 12, "nonzero": 12, "unique": 12},
                      "b": {"size": 12, "nonzero": 3, "unique": 4}}
    assert weights.summary(counts) == {"kernels": 2, "weights": 24, "nonzero": 15,
                                       "max_unique": 12}
    assert not weights.is_pruned({"a": dense}) and weights.is_pruned({"a": dense, "b": pruned})


# -- which layers tfmot takes (Keras, no training) ----------------------------------------------

def _model(keras, small=4):
    i = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(16, 3, name="conv")(i)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(small, name="tiny")(x)
    return keras.Model(i, keras.layers.Dense(3, activation="softmax", name="classifier")(x))


def test_clustering_takes_the_layers_tfmot_clusters_and_names_the_rest():
    from tfprune.compression import clustering
    from tfprune.keras import keras
    model = _model(keras, small=1)
    wrap, kept = clustering.plan(model, 16)
    assert wrap == ["conv", "tiny"]  # 160 and 577 weights
    assert kept["classifier"] == "6 weights, not more than 16 clusters"
    assert kept["norm"] == "tfmot clusters no weight of LayerNormalization layers"
    with pytest.raises(TfpruneError, match=r"^`clusters` must be fewer than the weights of a "
                                           r"layer tfmot can cluster .*the largest here has 577\)"
                                           r", got 1000$"):
        clustering.check(model, 1000)


def test_qat_leaves_what_tfmot_cannot_quantize_float_and_refuses_a_model_with_nothing_else():
    from tfprune.compression import qat
    from tfprune.keras import keras
    annotate, kept = qat.plan(_model(keras), qat.scheme())
    assert {"conv", "tiny", "classifier"} <= set(annotate)
    assert kept == {
        "norm": "tfmot's 8-bit scheme has no quantization for LayerNormalization layers"}
    i = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(10, 4, name="embed")(i)
    x = keras.layers.GlobalAveragePooling1D()(x)
    only_embedding = keras.Model(i, keras.layers.Activation("softmax")(x))
    for preserve in (False, True):
        with pytest.raises(TfpruneError, match=r"^quantization-aware training needs a layer "
                                               r"with weights that tfmot can quantize .*; none "
                                               r"here: embed: tfmot's 8-bit scheme has no "
                                               r"quantization for Embedding layers$"):
            qat.check(only_embedding, qat.scheme(preserve_sparsity=preserve))


def test_what_tfmot_rejects_only_when_it_builds_is_left_as_it_is_and_named():
    from tfprune.compression import clustering, qat
    from tfprune.keras import keras
    i = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(i)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.BatchNormalization(name="bn")(x)  # no convolution right before to fold into
    x = keras.layers.Flatten()(x)
    model = keras.Model(i, keras.layers.Dense(3, activation="softmax", name="out")(x))
    assert "bn" in qat.plan(model, qat.scheme())[0]  # annotated first: tfmot may fold it
    quantized, annotated, kept = qat.quantize_aware(model, qat.scheme(preserve_sparsity=True))
    assert "bn" not in annotated and kept["bn"] == \
        "tfmot's 8-bit scheme has no quantization for BatchNormalization layers here"
    assert {"conv", "out"} <= set(annotated) and quantized.count_params() > 0
    t = keras.Input((4, 8))
    y = keras.layers.MultiHeadAttention(2, 4, name="attention")(t, t)
    y = keras.layers.Dense(8, name="mlp")(y)
    attention = keras.Model(t, y)
    wrap, kept = clustering.plan(attention, 4)
    assert wrap == ["mlp"] and kept["attention"].startswith(
        "tfmot 0.8.1's MultiHeadAttention wrapper fails")
    copy, clustered, _ = clustering.cluster(attention, 4)
    assert clustered == ["mlp"] and type(copy.get_layer("attention")).__name__ == \
        "MultiHeadAttention"


# -- on digits, trained ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def pruned_cnn():
    """A cnn on digits, weight-pruned to 80% one-shot (its first convolution and classifier
    dense, the defaults): the model the stages start from."""
    import tfprune
    from tfprune.data import load_data
    from tfprune.models import build_model
    data = load_data("digits", batch_size=64, seed=0)
    model = build_model("cnn", data.input_shape, data.num_classes, seed=0)
    return data, model, tfprune.prune_model(model, data, "weight", target_sparsity=0.8).pruned


def _tflite_kernels(model, data):
    from tfprune.tflite import export, mixed
    content = export.to_tflite(model, "int8", data.representative_sample(32))
    return {op.layer.removeprefix("quant_"): op for op in mixed.weighted_ops(content)}


@pytest.mark.integration
def test_pqat_keeps_every_pruned_kernels_non_zeros_in_the_int8_tflite(pruned_cnn):
    from tfprune.pipeline import compress_model
    from tfprune.pruning.kernels import kernel_arrays
    data, dense, pruned = pruned_cnn
    result = compress_model(pruned, data, "qat", stage_epochs=1)
    assert result.stage == "pqat" and result.preserve_sparsity  # found pruned by its zeros
    assert compress_model(dense, data, "qat", stage_epochs=1).stage == "qat"
    ops = _tflite_kernels(result.model, data)
    before = kernel_arrays(pruned)
    for name in ("conv2", "fc1"):  # the pruned kernels
        assert ops[name].weight_type == "INT8"
        assert np.count_nonzero(ops[name].values) == np.count_nonzero(before[name]) == \
            round(0.2 * before[name].size)
    # plain QAT on the pruned model does not keep them
    plain = compress_model(pruned, data, "qat", stage_epochs=1, preserve_sparsity=False)
    assert plain.stage == "qat"
    assert np.count_nonzero(_tflite_kernels(plain.model, data)["fc1"].values) > \
        np.count_nonzero(before["fc1"])


@pytest.mark.integration
def test_sparsity_preserving_clustering_shares_values_and_keeps_the_zeros(pruned_cnn):
    from tfprune.pipeline import compress_model
    from tfprune.pruning.kernels import kernel_arrays
    data, _, pruned = pruned_cnn
    result = compress_model(pruned, data, "cluster", stage_epochs=1, clusters=8)
    assert result.stage == "sparse-cluster" and result.clustered == ["conv1", "conv2", "fc1",
                                                                     "classifier"]
    after, before = kernel_arrays(result.model), kernel_arrays(pruned)
    for name in ("conv2", "fc1"):
        assert np.unique(after[name]).size <= 8
        assert np.all(after[name][before[name] == 0] == 0)  # every pruned weight still zero
    assert result.counts_after["fc1"]["unique"] <= 8
    assert not any(type(layer).__name__ == "ClusterWeights" for layer in result.model.layers)
