"""The zoo's transformers (tfprune.models: vit, vit_base, text_encoder, bert_base) and tfprune's
own layer PositionEmbedding (tfprune.layers): building, parameter counts, TFLite, Keras 3."""

import numpy as np
import pytest

from tfprune import keras3, layers as own
from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.models import MODELS, TEXT_MODELS, build_model
from tfprune.tflite import evaluate, export

TINY = dict(width=16, heads=2, key_dim=8, blocks=1, mlp=32)
VOCABULARY = 50
SEQUENCE = 12


def tiny_vit(shape=(28, 28, 1), **options):
    return build_model("vit", shape, 10, seed=0, **{**TINY, **options})


def tiny_text(**options):
    return build_model("text_encoder", (SEQUENCE,), 5, seed=0, vocabulary_size=VOCABULARY,
                       **{**TINY, "dropout": 0.1, **options})


def images(shape=(28, 28, 1), n=16, seed=1):
    return np.random.default_rng(seed).random((n,) + shape, dtype=np.float32)


def tokens(n=16, seed=1):
    ids = np.random.default_rng(seed).integers(3, VOCABULARY, (n, SEQUENCE)).astype(np.int32)
    ids[:, SEQUENCE // 2:] = 0  # padded at the end, as the tokenizer pads
    return ids


def block_params(model):
    return sum(layer.count_params() for layer in model.layers if layer.name.startswith("block"))


# -- PositionEmbedding -------------------------------------------------------------------------

def test_position_embedding_adds_a_learned_weight_per_position(tmp_path):
    inputs = keras.Input((5, 3))
    layer = own.PositionEmbedding(7, name="positions")
    model = keras.Model(inputs, layer(inputs))
    assert [w.name for w in layer.weights] == ["positions/embeddings:0"]
    assert layer.embeddings.shape == (7, 3)
    table = np.arange(21, dtype=np.float32).reshape(7, 3)
    layer.set_weights([table])
    x = images((5, 3), n=2)
    np.testing.assert_array_equal(model(x).numpy(), x + table[:5])  # broadcast over the batch
    config = layer.get_config()
    assert config["sequence_length"] == 7 and config["initializer"]["class_name"] == \
        "TruncatedNormal"
    assert own.PositionEmbedding.from_config(config).sequence_length == 7
    assert keras.utils.get_registered_name(own.PositionEmbedding) == "tfprune>PositionEmbedding"
    for name in ("m.keras", "m.h5"):
        model.save(tmp_path / name)
        loaded = keras.models.load_model(tmp_path / name)
        np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


@pytest.mark.parametrize("make, message", [
    (lambda: own.PositionEmbedding(0), r"`sequence_length` must be an int >= 1 .*got 0"),
    (lambda: own.PositionEmbedding(4, name="p")(keras.Input((5, 3))),
     "PositionEmbedding 'p' holds 4 positions; its input has 5"),
    (lambda: own.PositionEmbedding(4, name="p")(keras.Input((4,))),
     r"takes \(batch, positions, width\) inputs"),
])
def test_position_embedding_refuses_bad_input(make, message):
    with pytest.raises(TfpruneError, match=message):
        make()


def test_a_tflite_with_a_position_embedding_needs_nothing_of_tfprune():
    """The layer becomes one ADD of a constant (4 of its 6 positions): the plain interpreter
    runs the file, equal to Keras."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, own.PositionEmbedding(6)(inputs))
    interpreter = Interpreter(
        model_content=export.to_tflite(model, "float32"),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    assert [op["op_name"] for op in interpreter._get_ops_details()] == ["ADD"]
    x = images((4, 3), n=1)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, model(x).numpy(), atol=1e-6)


# -- building ----------------------------------------------------------------------------------

def test_vit_layers_are_built_in_and_named_by_block():
    model = build_model("vit", (28, 28, 1), 10, seed=0)
    names = [layer.name for layer in model.layers]
    assert names[:4] == ["image", "patch_embedding", "tokens", "position_embedding"]
    assert names[4:11] == ["block1_norm1", "block1_attention", "block1_add1", "block1_norm2",
                           "block1_mlp1", "block1_mlp2", "block1_add2"]
    assert names[-4:] == ["norm", "pool", "classifier", "softmax"]
    assert model.get_layer("tokens").output_shape == (None, 49, 64)  # 7 x 7 patches of 4
    assert model.get_layer("block4_attention").get_config()["num_heads"] == 4
    assert model.count_params() == 138890
    classes = {type(layer).__name__ for layer in model.layers}
    assert classes == {"InputLayer", "Conv2D", "Reshape", "PositionEmbedding",
                       "LayerNormalization", "MultiHeadAttention", "Add", "Dense",
                       "GlobalAveragePooling1D", "Activation"}
    assert model.get_layer("block1_mlp1").get_config()["activation"] == "gelu"


@pytest.mark.parametrize("shape, padding, tokens", [
    ((32, 32, 3), None, 64), ((8, 8, 1), None, 4), ((30, 27, 1), ((1, 1), (0, 1)), 56)])
def test_vit_pads_images_that_patches_do_not_divide(shape, padding, tokens):
    model = tiny_vit(shape)
    names = [layer.name for layer in model.layers]
    assert ("pad" in names) == (padding is not None)
    if padding:
        assert model.get_layer("pad").padding == padding
    assert model.get_layer("tokens").output_shape == (None, tokens, 16)
    assert model(images(shape, n=2)).shape == (2, 10)


def test_text_encoder_takes_int32_token_ids():
    model = build_model("text_encoder", (64,), 12, seed=0, vocabulary_size=20000)
    assert model.input.dtype == "int32" and model.input_shape == (None, 64)
    names = [layer.name for layer in model.layers]
    assert names[:4] == ["tokens", "token_embedding", "position_embedding", "embedding_dropout"]
    assert model.get_layer("token_embedding").input_dim == 20000
    assert not model.get_layer("token_embedding").mask_zero  # pads are pooled (docstring)
    assert names[-4:] == ["norm", "pool", "classifier", "softmax"]
    assert sum(1 for n in names if n.endswith("_attention")) == 2
    # 20000 x 64 embedding + 64 x 64 positions + 2 blocks of 33,472 + 128 + 64 x 12 + 12
    assert model.count_params() == 1280000 + 4096 + 2 * 33472 + 128 + 780
    probabilities = model(np.ones((2, 64), np.int32))
    np.testing.assert_allclose(np.sum(probabilities, axis=1), 1.0, rtol=1e-5)


def test_base_models_have_the_published_shapes():
    """BERT-base's 12 blocks (width 768, 12 x 64 heads, MLP 3072) hold 85,054,464 parameters
    (its 85M without embeddings); ViT-B/16 at 224x224 with 1,000 classes 86.6M in all."""
    bert = build_model("bert_base", (128,), 2, vocabulary_size=30522)
    assert block_params(bert) == 85054464
    assert bert.count_params() == 85054464 + 30522 * 768 + 128 * 768 + 2 * 768 + 769 * 2
    vit = build_model("vit_base", (224, 224, 3), 1000)
    assert block_params(vit) == 85054464
    assert vit.get_layer("tokens").output_shape == (None, 196, 768)
    assert abs(vit.count_params() - 86.6e6) / 86.6e6 < 0.001, vit.count_params()


def test_model_kinds_and_options_are_checked():
    for name in TEXT_MODELS:
        assert name in MODELS
    with pytest.raises(TfpruneError, match="model 'text_encoder' takes token ids \\(text\\), "
                                           "and the data holds images"):
        build_model("text_encoder", (28, 28, 1), 10, vocabulary_size=100)
    with pytest.raises(TfpruneError, match="model 'vit' takes images, and dataset 'fortunes' "
                                           "is text .*; choose a text model \\(bert_base, "
                                           "text_encoder\\)"):
        build_model("vit", (64,), 10, dataset="fortunes")
    with pytest.raises(TfpruneError, match="text model 'text_encoder' needs `vocabulary_size`"):
        build_model("text_encoder", (64,), 10)
    with pytest.raises(TfpruneError, match="`vocabulary_size` applies to the text models"):
        build_model("vit", (28, 28, 1), 10, vocabulary_size=100)
    with pytest.raises(TfpruneError, match="model 'vit' has no option 'depth'; its options: "
                                           "patch_size, width, heads, key_dim, blocks, mlp, "
                                           "dropout"):
        build_model("vit", (28, 28, 1), 10, depth=3)
    with pytest.raises(TfpruneError, match="model 'vit': `heads` must be an int >= 1, got 0"):
        tiny_vit(heads=0)
    with pytest.raises(TfpruneError, match=r"model 'text_encoder': `dropout` must be in \[0, 1\)"):
        tiny_text(dropout=1.0)


def test_configs_refuse_a_zoo_model_of_the_other_kind():
    from tfprune.jobs.configs.train import TrainConfig

    with pytest.raises(TfpruneError, match="model 'vit' takes images, and dataset 'fortunes'"):
        TrainConfig(dataset="fortunes", model="vit")
    with pytest.raises(TfpruneError, match="model 'text_encoder' takes token ids"):
        TrainConfig(dataset="digits", model="text_encoder")
    assert TrainConfig(dataset="fortunes", model="text_encoder").epochs is not None


# -- TFLite ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vit_tiny():
    return tiny_vit()


@pytest.fixture(scope="module")
def text_tiny():
    return tiny_text()


def _sample(kind):
    return images() if kind == "vit" else tokens()


@pytest.mark.parametrize("kind", ["vit", "text"])
def test_float32_tflite_matches_keras_and_int8_runs(kind, vit_tiny, text_tiny):
    model = vit_tiny if kind == "vit" else text_tiny
    x = _sample(kind)
    reference = model.predict(x, verbose=0)
    float32 = evaluate.load(export.to_tflite(model, "float32"))
    assert np.max(np.abs(evaluate.predict(float32, x) - reference)) < 1e-4
    int8 = evaluate.load(export.to_tflite(model, "int8", representative_data=x))
    assert int8.interpreter.get_input_details()[0]["dtype"] == \
        (np.int32 if kind == "text" else np.int8)  # token ids stay int32
    probabilities = evaluate.predict(int8, x)
    assert probabilities.shape == reference.shape
    assert np.max(np.abs(probabilities - reference)) < 0.1


@pytest.mark.integration  # six conversions, two through ai-edge-quantizer: ~20 s each model
@pytest.mark.parametrize("kind", ["vit", "text"])
def test_every_quantization_converts_and_runs(kind, vit_tiny, text_tiny):
    from tfprune.tflite import mixed

    model = vit_tiny if kind == "vit" else text_tiny
    x = _sample(kind)
    y = np.argmax(model.predict(x, verbose=0), axis=1)
    reference = model.predict(x, verbose=0)
    for quantization in export.QUANTIZATIONS:
        content = export.to_tflite(model, quantization, representative_data=x,
                                   mixed=mixed.MixedSpec(int4_fraction=0.5),
                                   validation=(x, y))
        loaded = evaluate.load(content)
        got = evaluate.predict(loaded, x)
        assert got.shape == reference.shape and np.all(np.isfinite(got)), quantization
        assert np.max(np.abs(got - reference)) < 0.2, quantization


# -- Keras 3 -----------------------------------------------------------------------------------

def keras3_transformer(kind):
    """A Keras 3 functional transformer of built-in layers and the PositionEmbedding twin."""
    k = keras3.keras3()
    L = k.layers
    k.utils.set_random_seed(0)
    if kind == "vit":
        inputs = k.Input((28, 28, 1), name="image")
        x = L.Conv2D(16, 4, strides=4, name="patch_embedding")(inputs)
        x = L.Reshape((49, 16), name="tokens")(x)
    else:
        inputs = k.Input((SEQUENCE,), dtype="int32", name="tokens")
        x = L.Embedding(VOCABULARY, 16, name="token_embedding")(inputs)
    x = keras3.PositionEmbedding(x.shape[1], name="position_embedding")(x)
    for i in (1, 2):
        y = L.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm1")(x)
        y = L.MultiHeadAttention(2, 8, name=f"block{i}_attention")(y, y)
        x = L.Add(name=f"block{i}_add1")([x, y])
        y = L.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm2")(x)
        y = L.Dense(32, activation="gelu", name=f"block{i}_mlp1")(y)
        x = L.Add(name=f"block{i}_add2")([x, L.Dense(16, name=f"block{i}_mlp2")(y)])
    x = L.GlobalAveragePooling1D(name="pool")(L.LayerNormalization(name="norm")(x))
    outputs = L.Dense(10, activation="softmax", name="classifier")(x)
    return k.Model(inputs, outputs, name=f"keras3_{kind}")


@pytest.mark.parametrize("kind", ["vit", "text"])
def test_keras3_transformers_translate_both_ways(kind, tmp_path):
    """Saved by Keras 3, loaded, translated to tf_keras and back: outputs within 1e-5 (float
    rounding of the attention's einsums; the translation allows 1e-4)."""
    path = keras3.save(keras3_transformer(kind), str(tmp_path / "model.keras"))
    model = keras3.load(path)
    assert type(model.get_layer("position_embedding")) is keras3.PositionEmbedding
    x = _sample(kind)
    forward = keras3.from_keras3(model, x)
    assert isinstance(forward.model.get_layer("position_embedding"), own.PositionEmbedding)
    assert forward.max_abs_diff < 1e-5, forward.max_abs_diff
    np.testing.assert_array_equal(forward.model.get_layer("position_embedding").get_weights()[0],
                                  model.get_layer("position_embedding").get_weights()[0])
    back = keras3.to_keras3(forward.model, x)
    assert type(back.model.get_layer("position_embedding")) is keras3.PositionEmbedding
    assert back.max_abs_diff < 1e-5, back.max_abs_diff
    np.testing.assert_allclose(np.asarray(back.model(x)), np.asarray(model(x)), atol=1e-5)


@pytest.mark.parametrize("kind", ["vit", "text"])
def test_zoo_transformers_go_to_keras3_files_and_back(kind, vit_tiny, text_tiny, tmp_path):
    model = vit_tiny if kind == "vit" else text_tiny
    x = _sample(kind)
    path = str(tmp_path / "model.keras")
    translation = keras3.save_as_keras3(model, path, x)
    assert translation.max_abs_diff < 1e-5, translation.max_abs_diff
    returned = keras3.from_keras3(keras3.load(path), x)
    assert returned.max_abs_diff < 1e-5
    np.testing.assert_allclose(returned.model.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-5)
