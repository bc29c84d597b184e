import numpy as np
import pytest

from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.models import build_model
from tfprune.tflite import evaluate, export, mixed

# Hand-made costs: int4 saves params // 2 bytes of each layer.
COSTS = {
    "a": {"accuracy_drop": 0.0, "output_error": 0.01, "params": 1000},    # 0,    2e-5 per byte
    "b": {"accuracy_drop": 0.0, "output_error": 0.002, "params": 100},    # 0,    4e-5
    "c": {"accuracy_drop": 0.02, "output_error": 0.1, "params": 10000},   # 4e-6 (big: cheap)
    "d": {"accuracy_drop": 0.01, "output_error": 0.0, "params": 100},     # 2e-4
    "e": {"accuracy_drop": -0.01, "output_error": 0.005, "params": 2000},  # -0.01 counts as 0
}
INT8 = 20000  # saved: a 500, b 50, c 5000, d 50, e 1000 -> all-int4 predicted 13400 B


def test_rank_is_cost_per_byte_saved_zero_drops_by_output_error():
    assert mixed.rank(COSTS) == ["e", "a", "b", "c", "d"]
    tied = {"y": dict(COSTS["a"]), "x": dict(COSTS["a"])}
    assert mixed.rank(tied) == ["x", "y"]  # full ties: by name


@pytest.mark.parametrize("budget, int4, predicted", [
    (19000, ["e"], 19000),                 # exactly met
    (18999, ["e", "a"], 18500),
    # e, a, b, c meet it; then c alone does: e, a, b go back to int8.
    (18000, ["c"], 15000),
    (13400, ["e", "a", "b", "c", "d"], 13400),
])
def test_plan_meets_a_budget_least_important_first(budget, int4, predicted):
    result = mixed.plan(COSTS, INT8, budget_bytes=budget)
    assert result["int4_layers"] == int4 and result["predicted_bytes"] == predicted
    assert sorted(result["int8_layers"] + result["int4_layers"]) == sorted(COSTS)
    total = sum(c["params"] for c in COSTS.values())
    assert result["int4_fraction"] == pytest.approx(
        sum(COSTS[n]["params"] for n in int4) / total)
    assert result["note"] is None


def test_plan_budget_met_by_all_int8_makes_nothing_int4():
    result = mixed.plan(COSTS, INT8, budget_bytes=INT8)
    assert result["int4_layers"] == [] and result["predicted_bytes"] == INT8
    assert result["int4_fraction"] == 0
    assert result["note"] == ("the all-int8 model (19.5 KB) already fits the budget (19.5 KB): "
                              "no layer needs int4")


@pytest.mark.parametrize("fraction, int4", [
    (0.0, []), (0.1, ["e"]), (0.2, ["e", "a"]),
    (0.3, ["c"]),  # e, a, b, c reach it; c alone does too
    (0.9, ["e", "c"]),
    (1.0, ["e", "a", "b", "c", "d"]),
])
def test_plan_reaches_an_int4_share_of_the_weights(fraction, int4):
    result = mixed.plan(COSTS, INT8, int4_fraction=fraction)
    assert result["int4_layers"] == int4
    assert result["int4_fraction"] >= fraction
    assert result["predicted_bytes"] == INT8 - sum(COSTS[n]["params"] // 2 for n in int4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(budget_bytes=10000), r"`budget_bytes` must be at least the all-int4 model's size, "
     r"13\.1 KB, got 9\.8 KB \(the all-int8 model is 19\.5 KB\)"),
    # The measured all-int4 size rules when given (here above the prediction).
    (dict(budget_bytes=13500, int4_bytes=14000), r"all-int4 model's size, 13\.7 KB, got 13\.2 KB"),
    (dict(budget_bytes=15000, int4_fraction=0.5),
     r"`budget_bytes` and `int4_fraction` must not both be given \(a size budget or an int4 "
     r"share\), got 15000 and 0.5"),
    (dict(int4_fraction=1.5), r"`int4_fraction` must be in \[0, 1\], got 1.5"),
    (dict(int4_fraction=-0.1), r"`int4_fraction` must be in \[0, 1\], got -0.1"),
    (dict(budget_bytes=-5), r"`budget_bytes` must be > 0, got -5"),
    (dict(), r"one of `budget_bytes` and `int4_fraction` must be given"),
])
def test_plan_errors(kwargs, message):
    with pytest.raises(TfpruneError, match=message):
        mixed.plan(COSTS, INT8, **kwargs)


def test_mixed_spec_validates_on_construction():
    assert mixed.MixedSpec() == mixed.MixedSpec(int4_fraction=0.5)
    spec = mixed.MixedSpec(budget_kb=40)
    assert spec.budget_bytes == 40 * 1024 and spec.int4_fraction is None
    with pytest.raises(TfpruneError, match="`budget_kb` and `int4_fraction` must not both"):
        mixed.MixedSpec(budget_kb=40, int4_fraction=0.5)
    with pytest.raises(TfpruneError, match="`budget_kb` must be > 0, got 0"):
        mixed.MixedSpec(budget_kb=0)
    with pytest.raises(TfpruneError, match=r"`my_fraction` must be in \[0, 1\], got 2"):
        mixed.MixedSpec(int4_fraction=2, names=("my_budget", "my_fraction"))


# ---- On real .tflite files ------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn():
    model = build_model("cnn", (8, 8, 1), 10, seed=0)
    float32 = export.to_tflite(model, "float32")
    x = np.random.default_rng(0).random((100, 8, 8, 1)).astype(np.float32)
    # Labels the float32 model gets right, so an int4 layer can only lose accuracy.
    y = np.argmax(evaluate.predict(evaluate.load(float32), x), axis=1)
    return model, float32, mixed.keras_layers(model), x, y


def weight_types(content, names):
    return {op.layer: op.weight_type for op in mixed.weighted_ops(content, names)}


def test_quantize_int4_layers_are_int4_and_sizes_order(cnn):
    _, float32, names, _, _ = cnn
    assert names == ["conv1", "conv2", "fc1", "classifier"]
    int8 = mixed.quantize(float32, (), layer_names=names)
    some = mixed.quantize(float32, ["fc1"], layer_names=names)
    int4, info = mixed.all_int4(float32, layer_names=names)
    assert len(int8) > len(some) > len(int4)
    # fc1 is 128 x 256 weights: int4 halves its bytes, nothing else changes.
    assert len(int8) - len(some) == 128 * 256 // 2
    assert weight_types(float32, names) == dict.fromkeys(names, "FLOAT32")
    assert weight_types(int8, names) == dict.fromkeys(names, "INT8")
    assert weight_types(some, names) == {"conv1": "INT8", "conv2": "INT8", "fc1": "INT4",
                                         "classifier": "INT8"}
    assert weight_types(int4, names) == dict.fromkeys(names, "INT4")
    assert info["int4_layers"] == names and info["int8_layers"] == [] and info["int4_fraction"] == 1
    # All three run on the interpreter and stay close to float32.
    x = np.random.default_rng(1).random((8, 8, 8, 1)).astype(np.float32)
    reference = evaluate.predict(evaluate.load(float32), x)
    errors = [np.abs(evaluate.predict(evaluate.load(c), x) - reference).max()
              for c in (int8, some, int4)]
    assert errors[0] < 1e-3 and max(errors) < 2e-2


def test_quantize_refuses_unknown_layers_and_quantized_input(cnn):
    _, float32, names, _, _ = cnn
    with pytest.raises(TfpruneError, match=r"`int4_layers` must name weighted layers of the model "
                       r"\(conv1, conv2, fc1, classifier\), got 'fc9'"):
        mixed.quantize(float32, ["fc1", "fc9"], layer_names=names)
    with pytest.raises(TfpruneError, match=r"`content` must be a float32 .tflite .* got INT8 "
                       r"weights in 'conv1'"):
        mixed.quantize(mixed.quantize(float32, layer_names=names), layer_names=names)


def test_layer_costs_measure_each_layer_alone(cnn):
    _, float32, names, x, y = cnn
    costs = mixed.layer_costs(float32, x, y, layer_names=names)
    assert list(costs) == names
    params = {op.layer: op.params for op in mixed.weighted_ops(float32, names)}
    for layer, cost in costs.items():
        assert cost["params"] == params[layer]
        assert cost["accuracy_drop"] == pytest.approx(1.0 - cost["accuracy"])  # float32: 100%
        assert 0 < cost["output_error"] < 0.01
    assert params["fc1"] == 128 * 256
    only = mixed.layer_costs(float32, x, y, layers=["fc1"], layer_names=names)
    assert only == {"fc1": costs["fc1"]}
    with pytest.raises(TfpruneError, match=r"`validation` must be \(x, y\) with as many labels"):
        mixed.layer_costs(float32, x, y[:5], layer_names=names)


def test_mixed_meets_its_budget_and_says_what_it_did(cnn):
    model, float32, names, x, y = cnn
    int8, int4 = (len(c) for c in mixed.extremes(float32, mixed.MixedSpec(), layer_names=names))
    budget_kb = (int8 + int4) / 2 / 1024
    content, info = mixed.mixed(float32, mixed.MixedSpec(budget_kb=budget_kb), x, y,
                                layer_names=names)
    assert int4 < len(content) <= budget_kb * 1024 < int8
    assert info["size_bytes"] == len(content) and info["int8_bytes"] == int8
    assert info["int4_bytes"] == int4 and info["budget_kb"] == budget_kb
    assert info["int4_layers"] and info["int4_layers"] == [
        layer for layer in info["ranking"] if layer in info["int4_layers"]]
    types = weight_types(content, names)
    assert {layer for layer, t in types.items() if t == "INT4"} == set(info["int4_layers"])
    assert sorted(info["int4_layers"] + info["int8_layers"]) == sorted(names)
    assert set(info["costs"]) == set(names) and info["costs_time_s"] > 0
    # Share-driven: none, and everything.
    content, info = mixed.mixed(float32, mixed.MixedSpec(int4_fraction=0), x, y,
                                layer_names=names, costs=info["costs"])
    assert info["int4_layers"] == [] and len(content) == int8
    content, info = mixed.mixed(float32, mixed.MixedSpec(int4_fraction=1), x, y,
                                layer_names=names, costs=info["costs"])
    assert len(content) == int4 and info["int4_fraction"] == 1
    with pytest.raises(TfpruneError, match=r"`budget_kb` must be at least the all-int4 model's "
                       r"size, 31\.6 KB, got 20\.0 KB \(the all-int8 model is 57\.4 KB\)"):
        mixed.mixed(float32, mixed.MixedSpec(budget_kb=20), x, y, layer_names=names)


def test_to_tflite_int4_and_mixed(cnn):
    model, _, names, x, y = cnn
    int4 = export.to_tflite(model, "int4")
    assert weight_types(int4, names) == dict.fromkeys(names, "INT4")
    content = export.to_tflite(model, "mixed", mixed=mixed.MixedSpec(int4_fraction=0.3),
                               validation=(x, y))
    assert "INT4" in weight_types(content, names).values()
    assert len(int4) < len(content) < len(export.to_tflite(model, "dynamic"))
    with pytest.raises(TfpruneError, match=r"quantization 'mixed' needs `validation`: \(x, y\)"):
        export.to_tflite(model, "mixed")
    with pytest.raises(TfpruneError, match=r"`sparse` must be False for quantization 'int4'"):
        export.to_tflite(model, "int4", sparse=True)


def nested_model():
    """A model inside a model, a top-level layer with an inner layer's name, a shared layer."""
    layers = keras.layers
    inputs = keras.Input((8, 8, 1), name="x")
    y = layers.BatchNormalization(name="bn")(layers.Conv2D(4, 3, name="conv")(inputs))
    inner = keras.Model(inputs, layers.ReLU(name="relu")(y), name="inner")
    image = keras.Input((8, 8, 1), name="image")
    z = layers.Flatten(name="flatten")(layers.Conv2D(4, 3, name="conv")(inner(image)))
    shared = layers.Dense(16, name="shared")
    z = shared(shared(layers.Dense(16, name="fc")(z)))
    z = layers.Dense(10, name="classifier")(z)
    return keras.Model(image, layers.Activation("softmax", name="softmax")(z), name="outer")


def test_nested_models_and_shared_layers():
    model = nested_model()
    float32 = export.to_tflite(model)
    names = mixed.keras_layers(model)
    assert names == ["inner/conv", "conv", "fc", "shared", "classifier"]
    ops = mixed.weighted_ops(float32, names)
    layers, kept = mixed.layer_map(ops, names)
    assert {name: op.params for name, op in layers.items()} == {
        "inner/conv": 36, "conv": 144, "fc": 64 * 16, "classifier": 160}
    assert list(kept) == ["shared"] and "2 ops" in kept["shared"]
    with pytest.raises(TfpruneError, match=r"`int4_layers` must name layers that can be int4, "
                       r"got 'shared': it is 2 ops"):
        mixed.quantize(float32, ["shared"], layer_names=names)
    content, info = mixed.all_int4(float32, layer_names=names)
    types = [(op.layer, op.weight_type) for op in mixed.weighted_ops(content, names)]
    assert types == [("inner/conv", "INT4"), ("conv", "INT4"), ("fc", "INT4"),
                     ("shared", "INT8"), ("shared", "INT8"), ("classifier", "INT4")]
    assert info["int8_layers"] == ["shared"] and "shared" in info["kept_int8"]


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet20",
                                  pytest.param("mobilenetv2", marks=pytest.mark.integration)])
def test_every_zoo_layer_is_exactly_one_op(name):
    model = build_model(name, (8, 8, 1), 10, seed=0)
    float32 = export.to_tflite(model)
    names = mixed.keras_layers(model)
    expected = [layer.name for layer in model.layers if isinstance(layer, mixed.kernel_layers())]
    assert names == expected and len(names) >= 3
    ops = mixed.weighted_ops(float32, names)
    layers, kept = mixed.layer_map(ops, names)
    assert kept == {} and list(layers) == names and len(ops) == len(names)
    assert all(op.params == int(np.prod(layer.weights[0].shape))
               for op, layer in zip(ops, (model.get_layer(n) for n in names)))
    # Read without the Keras names, the tensor names give the same layers.
    assert [op.layer for op in mixed.weighted_ops(float32)] == names
