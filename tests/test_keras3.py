"""Keras 3 <-> tf_keras translation (tfprune.keras3) and Keras 3 files through the jobs."""

import json
import os
import zipfile

import numpy as np
import pytest

from test_experiments_train import error_lines, script_cases
from tfprune import keras3
from tfprune.errors import ModelTypeError, TfpruneError, TranslationError
from tfprune.keras import keras as tf_keras
from tfprune.models import import_model

keras = keras3.keras3()
L = keras.layers


def _seeded():
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="module")
def many_layers():
    """A Keras 3 functional model using most translated layer classes, BatchNorm statistics
    made non-trivial so a wrong weight order shows."""
    _seeded()
    i = keras.Input((12, 12, 3), name="image")
    x = L.Rescaling(1 / 2.0, offset=0.1)(i)
    norm = L.Normalization(axis=-1)
    norm.adapt(np.random.default_rng(0).normal(2, 3, (64, 12, 12, 3)).astype("float32"))
    x = norm(x)
    x = L.ZeroPadding2D(1)(x)
    x = L.Conv2D(8, 3, kernel_regularizer=keras.regularizers.L2(1e-4), name="conv")(x)
    x = L.BatchNormalization(name="bn")(x)
    a = L.ReLU(max_value=6.0)(x)
    b = L.DepthwiseConv2D(3, padding="same", name="dw")(a)
    b = L.LeakyReLU(negative_slope=0.2)(b)
    x = L.Add()([a, b])
    c = L.SeparableConv2D(8, 3, padding="same", activation="swish", name="sep")(x)
    x = L.Concatenate()([x, L.Multiply()([c, L.Activation("sigmoid")(c)])])
    x = L.MaxPooling2D(2)(x)
    x = L.AveragePooling2D(2, padding="same")(x)
    x = L.SpatialDropout2D(0.1)(x)
    x = L.Conv2D(16, 1, activation="relu", groups=2)(x)
    y = L.GlobalAveragePooling2D()(x)
    x = L.Flatten()(x)
    x = L.Dropout(0.2)(L.Dense(20, activation="gelu")(x))
    x = L.Concatenate()([x, y])
    x = L.Reshape((6, 6))(x)
    x = L.LayerNormalization()(x)
    x = L.Conv1D(4, 3, padding="same")(x)
    x = L.Flatten()(x)
    o = L.Dense(10, activation="softmax", name="predictions")(x)
    model = keras.Model(i, o, name="many")
    for layer in model.layers:  # non-trivial BatchNorm statistics
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(np.linspace(-1, 1, n).astype("float32"))
            layer.moving_variance.assign(np.linspace(0.5, 2, n).astype("float32"))
    return model


def _inputs(shape, n=16, seed=1):
    return np.random.default_rng(seed).normal(0, 1, (n,) + shape).astype("float32")


def test_functional_model_translates_both_ways(many_layers):
    x = _inputs((12, 12, 3))
    forward = keras3.from_keras3(many_layers, x)
    model = forward.model
    assert isinstance(model, tf_keras.Model)
    assert not forward.synthetic_inputs and forward.check_inputs == 16
    assert forward.max_abs_diff < 1e-5
    assert [type(layer).__name__ for layer in model.layers] == \
        [type(layer).__name__ for layer in many_layers.layers]
    assert model.get_layer("conv").losses  # the regularizer came along
    assert model.get_layer("dw").depthwise_kernel.shape == (3, 3, 8, 1)
    np.testing.assert_array_equal(model.get_layer("bn").moving_mean.numpy(),
                                  many_layers.get_layer("bn").moving_mean.numpy())
    want = np.asarray(many_layers(x, training=False))
    np.testing.assert_allclose(model(x, training=False).numpy(), want, atol=1e-5)

    back = keras3.to_keras3(model, x)
    assert keras3.library(back.model) == "keras3"
    assert back.max_abs_diff < 1e-5
    np.testing.assert_allclose(np.asarray(back.model(x, training=False)), want, atol=1e-5)


def test_sequential_nested_and_several_inputs_translate():
    _seeded()
    inner = keras.Sequential([keras.Input((6,)), L.Dense(5, activation="relu"), L.Dense(4)],
                             name="inner")
    q = keras.Input((5, 8), name="query")
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    attended = L.MultiHeadAttention(2, 4, name="mha")(q, q)
    attended = L.LayerNormalization()(attended)
    embedded = L.Flatten()(L.Embedding(20, 3)(tokens))
    dense = inner(L.Dense(6)(embedded))
    model = keras.Model([q, tokens], [attended, dense], name="multi")
    x = [_inputs((5, 8)), np.random.default_rng(2).integers(0, 20, (16, 6)).astype("int32")]
    forward = keras3.from_keras3(model, x)
    names = [layer.name for layer in forward.model.layers]
    assert "inner" not in names and "mha" in names  # the nested model is inlined
    assert forward.max_abs_diff < 1e-5
    assert keras3.to_keras3(forward.model, x).max_abs_diff < 1e-5
    sequential = keras.Sequential([keras.Input((4,)), L.Dense(3), L.Dropout(0.1)])
    assert keras3.from_keras3(sequential).synthetic_inputs  # no inputs: seeded random ones


def test_an_untranslatable_layer_is_named():
    i = keras.Input((5, 3))
    model = keras.Model(i, L.GRU(4, name="recurrent")(i))
    with pytest.raises(TranslationError) as err:
        keras3.from_keras3(model)
    message = str(err.value)
    assert "layer 'recurrent'" in message and "GRU" in message
    assert "Conv2D" in message and "MultiHeadAttention" in message  # what is supported

    class Scale(L.Layer):
        def call(self, x):
            return 2 * x

    model = keras.Model(i, Scale(name="scale")(i))
    with pytest.raises(TranslationError, match=r"layer 'scale' \(.*Scale\)"):
        keras3.from_keras3(model)

    j = keras.Input((4,))
    model = keras.Model(j, L.Dense(2)(keras.ops.exp(j)))  # an op outside layers, not composed
    with pytest.raises(TranslationError, match=r"operation 'exp\w*' .* outside any layer"):
        keras3.from_keras3(model)


@pytest.mark.parametrize("layer, match", [
    (lambda: L.Dense(4, lora_rank=2, name="lora"),
     r"layer 'lora' .* option lora_rank=2 has no equivalent in tf_keras"),
])
def test_options_without_an_equivalent_are_refused(layer, match):
    i = keras.Input((6,))
    with pytest.raises(TranslationError, match=match):
        keras3.from_keras3(keras.Model(i, layer()(i)))
    # Keras 3's hard_sigmoid is composed (test_keras3_compositions); tf_keras's is another one
    j = tf_keras.Input((6,))
    with pytest.raises(TranslationError, match=r"layer 'hs' .* activation 'hard_sigmoid' "
                                               r"differs between the libraries"):
        keras3.to_keras3(tf_keras.Model(j, tf_keras.layers.Dense(
            4, activation="hard_sigmoid", name="hs")(j)))


def test_outputs_that_differ_are_refused(monkeypatch, many_layers):
    copy = keras3._copy_weights

    def off_by_a_little(src, dst, old, new):
        copy(src, dst, old, new)
        if old.name == "predictions":
            kernel, bias = new.get_weights()
            bias[0] += 0.5  # one class: softmax does not cancel it
            new.set_weights([kernel, bias])

    monkeypatch.setattr(keras3, "_copy_weights", off_by_a_little)
    with pytest.raises(TranslationError, match=r"outputs differ from the Keras 3 model's by up to "
                                               r".*layer 'predictions' \(Dense\) computes"):
        keras3.from_keras3(many_layers, _inputs((12, 12, 3)))


def test_training_arguments_and_bad_inputs():
    i = keras.Input((4,))
    frozen = keras.Model(i, L.BatchNormalization()(L.Dense(3)(i), training=False))
    assert keras3.from_keras3(frozen).max_abs_diff < 1e-6  # dropped, as Keras 3 itself does
    with pytest.raises(TranslationError, match=r"cannot run it on the check inputs of shape "
                                               r"\(2, 5\)"):
        keras3.from_keras3(frozen, np.zeros((2, 5), "float32"))
    j = tf_keras.Input((4,))
    tf_model = tf_keras.Model(j, tf_keras.layers.BatchNormalization(name="bn_frozen")(
        j, training=False))
    with pytest.raises(TranslationError, match=r"layer 'bn_frozen' .* training=False"):
        keras3.to_keras3(tf_model)


def test_keras3_output_is_checked_before_training(tmp_path):
    from tfprune.jobs.prune import PruneConfig, run_prune

    i = tf_keras.Input((8, 8, 1))
    x = tf_keras.layers.GRU(4, name="recurrent")(tf_keras.layers.Reshape((8, 8))(i))
    x = tf_keras.layers.Dense(16, activation="relu")(x)
    model = tf_keras.Model(i, tf_keras.layers.Dense(10, activation="softmax")(x))
    path = str(tmp_path / "gru.keras")
    model.save(path)
    out = tmp_path / "run"
    with pytest.raises(TranslationError, match="layer 'recurrent'"):
        run_prune(PruneConfig(model="mlp", baseline=path, keras3_output=True,
                              fine_tune_epochs=1), str(out))
    assert not out.exists()


class _Subclassed(tf_keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = tf_keras.layers.Dense(8, activation="relu")
        self.out = tf_keras.layers.Dense(3)

    def call(self, x):
        return self.out(self.hidden(x))


def test_subclassed_models_get_one_clear_error():
    from tfprune.pruning import method_objects, stats

    model = _Subclassed()
    model(np.zeros((1, 4), "float32"))
    for call in (lambda: method_objects.prune(model, "weight", "constant", 0.5, steps_per_epoch=2,
                                    epochs=1),
                 lambda: stats.summarize(model)):
        with pytest.raises(ModelTypeError) as err:
            call()
        assert "subclassed tf_keras model" in str(err.value)
        assert "functional or Sequential" in str(err.value)

    class K3(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(3)

        def call(self, x):
            return self.dense(x)

    k3 = K3()
    k3(np.zeros((1, 4), "float32"))
    with pytest.raises(TranslationError, match=r"subclassed Keras 3 model .*K3"):
        keras3.from_keras3(k3)
    with pytest.raises(ModelTypeError, match=r"is a Keras 3 model .*from_keras3"):
        method_objects.prune(k3, "weight", "constant", 0.5, steps_per_epoch=2, epochs=1)


def test_files_are_recognised_and_bad_ones_refused(tmp_path, many_layers):
    path = str(tmp_path / "k3.keras")
    many_layers.save(path)
    assert keras3.is_keras3_file(path)
    imported = import_model(path, "baseline", inputs=_inputs((12, 12, 3)))
    assert imported.keras3 and isinstance(imported.model, tf_keras.Model)
    assert "a Keras 3 model, translated to tf_keras" in imported.describe()

    tf_path = str(tmp_path / "tf.keras")
    imported.model.save(tf_path)
    assert not keras3.is_keras3_file(tf_path)
    assert not import_model(tf_path).keras3

    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(open(path, "rb").read()[:2000])
    with pytest.raises(TfpruneError, match=r"cannot load Keras model .*corrupt.keras"):
        import_model(str(corrupt), "baseline")
    damaged = tmp_path / "damaged.keras"  # a valid archive whose weights are missing
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(damaged, "w") as dst:
        for name in ("metadata.json", "config.json"):
            dst.writestr(name, src.read(name))
    with pytest.raises(TfpruneError, match=r"cannot load Keras 3 model .*damaged.keras"):
        import_model(str(damaged), "baseline")
    unknown = tmp_path / "unknown.keras"  # a class Keras 3 does not know
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(unknown, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json":
                config = json.loads(data)
                config["config"]["layers"][-1]["class_name"] = "MyDense"
                data = json.dumps(config)
            dst.writestr(name, data)
    with pytest.raises(TfpruneError, match=r"cannot load Keras 3 model .*unknown.keras.*MyDense"):
        import_model(str(unknown), "baseline")


@pytest.fixture(scope="module")
def digits_keras3(tmp_path_factory):
    """A small Keras 3 CNN with a residual block, trained on digits, saved as .keras."""
    from tfprune.data import load_data

    data = load_data("digits")
    x, y = data.numpy("train")
    _seeded()
    i = keras.Input((8, 8, 1))
    h = L.Conv2D(16, 3, padding="same", activation="relu")(i)
    h = L.BatchNormalization()(h)
    s = L.Conv2D(16, 3, padding="same", name="conv_res")(h)
    h = L.ReLU()(L.Add()([h, s]))
    h = L.Dense(32, activation="relu")(L.Flatten()(h))
    model = keras.Model(i, L.Dense(10, activation="softmax")(h), name="k3cnn")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=4, batch_size=64, verbose=0)
    path = str(tmp_path_factory.mktemp("keras3") / "k3cnn.keras")
    model.save(path)
    return path


KERAS_ONLY = """
import json, sys
import numpy as np
import keras
data = np.load(sys.argv[1])
result = {}
for path in sys.argv[2:]:
    model = keras.saving.load_model(path)
    p = model.predict(data["x"], batch_size=256, verbose=0)
    result[path] = float(np.mean(np.argmax(p, -1) == data["y"]))
result["modules"] = sorted(m for m in ("tfprune", "tf_keras") if m in sys.modules)
result["keras"] = keras.__version__
print(json.dumps(result))
"""


@pytest.mark.integration
def test_keras3_baseline_pruned_and_returned_to_plain_keras(tmp_path, digits_keras3, python):
    """A Keras 3 file in, Keras 3 files out: a process with only `import keras` loads the
    pruned and shrunk models and measures the same test accuracy as tfprune."""
    from tfprune.jobs.prune import PruneConfig, run_prune

    out = str(tmp_path / "run")
    lines = []
    metrics = run_prune(PruneConfig(model="cnn", method="unit", target_sparsity=0.5,
                                    fine_tune_epochs=2, baseline=digits_keras3), out,
                        log=lines.append).metrics
    assert any("a Keras 3 model, translated to tf_keras" in line for line in lines)
    k3 = metrics["keras3"]
    assert k3["baseline"]["max_abs_diff"] < 1e-5 and k3["baseline"]["check_inputs"] == 256
    assert k3["pruned"]["path"] == "keras3/pruned.keras"
    assert k3["shrunk"]["max_abs_diff"] < 1e-5
    assert metrics["shrink"]["removed"]

    data = tfprune_test_arrays(tmp_path)
    paths = [os.path.join(out, k3[kind]["path"]) for kind in ("pruned", "shrunk")]
    done = python(["-c", KERAS_ONLY, data] + paths)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["modules"] == [] and result["keras"].startswith("3.")
    for kind, path in zip(("pruned", "shrunk"), paths):
        assert result[path] == pytest.approx(metrics["accuracy"], abs=1e-6), kind
        assert result[path] == pytest.approx(k3[kind]["accuracy"], abs=1e-6), kind


@pytest.mark.integration
def test_keras3_baseline_through_pruning_and_pqat_to_an_int8_tflite(tmp_path, digits_keras3):
    """A Keras 3 model in, weight-pruned, pruning-preserving QAT, its int8 .tflite out; Keras
    3's own Model.quantize measured on the same pruned model beside it."""
    from tfprune.jobs.prune import PruneConfig, run_prune

    out = str(tmp_path / "run")
    metrics = run_prune(PruneConfig(model="cnn", method="weight", target_sparsity=0.8,
                                    fine_tune_epochs=1, baseline=digits_keras3, stage="qat",
                                    stage_epochs=1), out, log=lambda _: None).metrics
    stage = metrics["stage"]
    assert stage["stage"] == "pqat" and os.path.isfile(os.path.join(out, stage["tflite_file"]))
    assert stage["tflite"]["kernel_nonzeros"] <= sum(
        c["nonzero"] for c in stage["counts_before"].values())
    own = metrics["keras3"]["pruned"]["keras_quantize"]
    assert set(own) == {"int8", "int4"}
    assert len(own["int8"]["quantized_layers"]) == 2  # its two Dense layers; Conv2D stays float
    assert own["int8"]["float_layers"] >= 2
    assert own["int4"]["weight_bytes"] < own["int8"]["weight_bytes"] < \
        own["int8"]["float32_weight_bytes"]
    assert 0 < own["int8"]["accuracy"] <= 1


def tfprune_test_arrays(tmp_path):
    from tfprune.data import load_data

    x, y = load_data("digits").numpy("test")
    path = str(tmp_path / "test.npz")
    np.savez(path, x=x, y=y)
    return path


@pytest.mark.integration
def test_tuning_takes_a_keras3_baseline(digits_keras3):
    from tfprune.jobs.tune import TuneConfig, load_baseline

    lines = []
    model = load_baseline(TuneConfig(baseline=digits_keras3), lines.append)
    assert isinstance(model, tf_keras.Model)
    assert len(lines) == 1 and "a Keras 3 model, translated to tf_keras" in lines[0]


@pytest.mark.integration
def test_scripts_take_keras3_files_and_refuse_bad_ones(tmp_path, digits_keras3, python):
    out = tmp_path / "export"
    done = python(["-m", "experiments.export_tflite", f"--model_path={digits_keras3}",
                   "--quantizations=float32", "--latency_runs=2", f"--output_dir={out}"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "a Keras 3 model, translated to tf_keras" in done.stderr + done.stdout
    assert json.load(open(out / "comparison.json"))["keras3"]["max_abs_diff"] < 1e-5

    i = keras.Input((8, 8, 1))
    bad = tmp_path / "gru.keras"
    keras.Model(i, L.Dense(10)(L.GRU(4, name="recurrent")(L.Reshape((8, 8))(i)))).save(bad)
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    cases = ((bad, "layer 'recurrent'"), (corrupt, "cannot load Keras model"))
    # Both command lines through experiments.prune's entry point in one interpreter.
    argvs = [[f"--baseline={path}", f"--output_dir={tmp_path / f'run-{path.stem}'}"]
             for path, _ in cases]
    results = script_cases("prune", argvs, tmp_path / "results.json")
    assert len(results) == len(cases)
    for (path, match), done in zip(cases, results):
        run = tmp_path / f"run-{path.stem}"
        assert done.returncode == 2, done.stderr[-2000:]
        errors = error_lines(done)
        assert len(errors) == 1 and match in errors[0], done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        assert not run.exists()  # nothing written


@pytest.mark.integration
@pytest.mark.parametrize("name, methods", [
    ("cnn", (("weight", 0.8), ("unit", 0.5))), ("resnet", (("weight", 0.8), ("unit", 0.5))),
    ("mobilenetv2", (("unit", 0.5),))])  # its weight pruning: benchmarks.keras3 (slow here)
def test_keras3_architectures_prune_shrink_and_go_back(name, methods, tmp_path):
    """The benchmark's three Keras 3 models (a CNN, a ResNet-style net, keras.applications'
    MobileNetV2 nested in a functional model): translated, pruned, shrunk, saved as Keras 3 and
    converted to int8, every step checked."""
    from benchmarks.keras3 import build
    from tfprune.pruning import prune, stats, strip
    from tfprune.pruning.surgery import shrink
    from tfprune.tflite import export

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 64)
    translation = keras3.from_keras3(build(name, (28, 28, 1), 10, alpha=0.35), x[:32])
    assert translation.max_abs_diff < 1e-5
    for method, target in methods:
        result = prune(translation.model, method, "constant", target, steps_per_epoch=2, epochs=1)
        result.model.compile("adam", "sparse_categorical_crossentropy")
        result.model.fit(x, y, batch_size=32, epochs=1, callbacks=result.callbacks, verbose=0)
        pruned = strip(result.model)
        assert stats.summarize(pruned, result.pruned_layers)["pruned_sparsity"] == \
            pytest.approx(target, abs=0.02)
        shrunk = shrink(pruned, check_inputs=x[:32])
        assert shrunk.max_abs_diff <= 1e-4
        if method == "unit":
            assert shrunk.params_after < 0.8 * shrunk.params_before
        for kind, model in (("pruned", pruned), ("shrunk", shrunk.model)):
            back = keras3.save_as_keras3(model, str(tmp_path / f"{method}-{kind}.keras"), x[:32])
            assert back.max_abs_diff < 1e-5
            assert keras3.is_keras3_file(str(tmp_path / f"{method}-{kind}.keras"))
        content = export.to_tflite(shrunk.model, "int8", representative_data=x[:16])
        assert len(content) > 1000
