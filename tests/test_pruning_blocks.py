"""The blocks users' models are built from, by hand: squeeze-and-excitation, separable and
transposed convolutions, a depthwise grouped Conv2D, a spatial gate, a small vision transformer.
For each: the groups the graph finds, and channel pruning that shrinks exactly (the shrunk
model computes what the masked one does)."""

import numpy as np
import pytest

from tfprune.keras import keras
from tfprune.pruning import channels, stats, surgery
from tfprune.pruning.groups import analyze, channel_groups

L = keras.layers


def by_layer(groups, layer, role="out"):
    (group,) = [g for g in groups if any(m.layer == layer and m.role == role for m in g.members)]
    return group


def _randomized(model, seed=0, kernels=True):
    """Weights (with ``kernels``; else only BatchNorms) and BatchNorm statistics that are not
    the initial ones: a signal that does not vanish with depth."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.2, 1.5, n), rng.normal(0, 0.3, n),
                               rng.normal(0, 0.5, n), rng.uniform(0.5, 2, n)])
        elif layer.weights and kernels:
            layer.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32)
                               for w in layer.get_weights()])
    return model


def _prune_half(model, shape, seed=0):
    """(groups, ShrinkResult, FLOPs ratio) of pruning half of every prunable group's channels."""
    groups = channel_groups(model)
    keep = channels.select(groups, channels.importance(model, groups, "l2"), 0.5)
    x = np.random.default_rng(seed).random((3,) + shape).astype(np.float32)
    result = channels.shrink(model, groups, keep, check_inputs=x)
    assert result.max_abs_diff <= 1e-5
    flops = stats.summarize(result.model)["flops"] / stats.summarize(model)["flops"]
    return groups, result, flops


def se_net(keepdims=False, shape=(8, 8, 3)):
    """EfficientNet's block (GlobalAveragePooling, Reshape to (1, 1, C), two 1x1 convolutions,
    Multiply) or, with ``keepdims``, MobileNetV3's (pooling keeps the axes; a hard sigmoid made
    of Rescaling and ReLU)."""
    x = keras.Input(shape)
    y = L.Activation("swish")(L.BatchNormalization(name="bn")(L.Conv2D(16, 3, padding="same",
                                                                       name="expand")(x)))
    y = L.DepthwiseConv2D(3, padding="same", name="dw")(y)
    if keepdims:
        se = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(y)
    else:
        se = L.Reshape((1, 1, 16), name="se_reshape")(L.GlobalAveragePooling2D(name="squeeze")(y))
    se = L.Conv2D(4, 1, activation="relu", name="se_reduce")(se)
    se = L.Conv2D(16, 1, name="se_expand")(se)
    if keepdims:
        se = L.Rescaling(1 / 6, name="hs_scale")(L.ReLU(6.0)(L.Rescaling(1.0, 3.0)(se)))
    else:
        se = L.Activation("sigmoid")(se)
    y = L.Multiply(name="excite")([y, se])
    y = L.Conv2D(8, 1, name="project")(y)
    out = L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(y))
    return keras.Model(x, out)


@pytest.mark.parametrize("keepdims", [False, True])
def test_squeeze_and_excitation_is_one_group_with_the_map_it_scales(keepdims):
    model = _randomized(se_net(keepdims))
    groups = channel_groups(model)
    main = by_layer(groups, "expand")
    assert main is by_layer(groups, "se_expand") and main.blocked is None
    assert {"bn", "dw"} <= set(main.layers("channel"))
    assert set(main.layers("in")) == {"se_reduce", "project"}
    assert by_layer(groups, "se_reduce").layers("in") == ["se_expand"]
    _, result, _ = _prune_half(model, (8, 8, 3))
    assert result.removed["expand"] == (16, 8) and result.removed["se_expand"] == (16, 8)
    assert result.removed["se_reduce"] == (4, 2)


def test_a_one_channel_gate_broadcasts_and_is_not_tied():
    x = keras.Input((6, 6, 2))
    y = L.Conv2D(8, 3, padding="same", name="features")(x)
    gate = L.Conv2D(1, 1, activation="sigmoid", name="gate")(y)
    y = L.Multiply(name="gated")([y, gate])
    model = _randomized(keras.Model(x, L.Conv2D(2, 1, name="out")(y)))
    groups = channel_groups(model)
    assert by_layer(groups, "features").blocked is None
    assert set(by_layer(groups, "features").layers("in")) == {"gate", "out"}
    assert by_layer(groups, "gate") is not by_layer(groups, "features")
    _prune_half(model, (6, 6, 2))


def xception_like(shape=(12, 12, 3)):
    x = keras.Input(shape)
    y = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same", name="stem")(x)))
    r = L.SeparableConv2D(16, 3, padding="same", name="sep1")(y)
    r = L.SeparableConv2D(16, 3, padding="same", name="sep2")(L.ReLU()(L.BatchNormalization()(r)))
    y = L.Add(name="res")([y, L.BatchNormalization()(r)])
    y = L.SeparableConv2D(24, 3, padding="same", depth_multiplier=1, name="sep3")(y)
    out = L.Dense(4, activation="softmax")(L.GlobalAveragePooling2D()(y))
    return keras.Model(x, out)


def test_a_separable_convolution_ties_its_input_and_produces_its_output():
    model = _randomized(xception_like())
    groups = channel_groups(model)
    stream = by_layer(groups, "stem")
    assert stream is by_layer(groups, "sep2") and set(stream.layers("in")) == {"sep1", "sep3"}
    assert by_layer(groups, "sep1").layers("in") == ["sep2"]
    _, result, flops = _prune_half(model, (12, 12, 3))
    sep1 = result.model.get_layer("sep1")
    assert sep1.depthwise_kernel.shape[-2] == 8 and sep1.pointwise_kernel.shape[-2:] == (8, 8)
    assert flops <= 0.40, flops  # the stem reads the image's 3 channels: 0.37


def test_a_transposed_convolution_and_a_concatenate_skip():
    x = keras.Input((8, 8, 3))
    e = L.Conv2D(8, 3, padding="same", activation="relu", name="enc")(x)
    d = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="down")(e)
    u = L.Conv2DTranspose(8, 3, strides=2, padding="same", name="up")(d)
    y = L.Concatenate(name="skip")([e, u])
    out = L.Conv2D(2, 1, name="head")(L.ReLU()(y))
    model = _randomized(keras.Model(x, out))
    groups = channel_groups(model)
    assert by_layer(groups, "down").layers("in") == ["up"]
    assert by_layer(groups, "up").layers("in") == ["head"] and by_layer(groups, "up").blocked is None
    _, result, _ = _prune_half(model, (8, 8, 3))
    assert result.model.get_layer("up").kernel.shape == (3, 3, 4, 8)  # (h, w, out, in)
    assert result.model.get_layer("head").kernel.shape[-2] == 8


def test_a_conv2d_with_one_group_per_channel_is_a_depthwise_convolution():
    x = keras.Input((8, 8, 3))
    y = L.Conv2D(12, 1, name="pw")(x)
    y = L.Conv2D(12, 3, padding="same", groups=12, name="grouped")(y)
    y = L.Conv2D(6, 3, padding="same", groups=3, name="three_groups")(y)
    model = _randomized(keras.Model(x, L.Conv2D(2, 1, name="head")(y)))
    graph = analyze(model)
    assert by_layer(graph.groups, "pw").layers("channel") == ["grouped"]
    assert "in 3 groups" in by_layer(graph.groups, "pw").blocked
    assert "three_groups" in graph.opaque


def vision_transformer(shape=(16, 16, 3), dim=16, patch=4, classes=5):
    """The user's small ViT: patchify Conv2D, tokens, LayerNormalization, MultiHeadAttention,
    a Dense MLP and residual Adds."""
    x = keras.Input(shape)
    t = L.Conv2D(dim, patch, strides=patch, name="patchify")(x)
    t = L.Reshape(((shape[0] // patch) * (shape[1] // patch), dim), name="tokens")(t)
    for i in range(2):
        h = L.LayerNormalization(name=f"ln{i}_a")(t)
        h = L.MultiHeadAttention(2, dim // 2, name=f"mha{i}")(h, h)
        t = L.Add(name=f"res{i}_a")([t, h])
        h = L.LayerNormalization(name=f"ln{i}_b")(t)
        h = L.Dense(2 * dim, activation="gelu", name=f"mlp{i}_up")(h)
        h = L.Dense(dim, name=f"mlp{i}_down")(h)
        t = L.Add(name=f"res{i}_b")([t, h])
    out = L.Dense(classes, activation="softmax", name="classifier")(
        L.GlobalAveragePooling1D()(L.LayerNormalization(name="ln_head")(t)))
    return keras.Model(x, out, name="vit")


def test_a_vision_transformer_loses_heads_and_mlp_neurons_with_its_stream_kept():
    model = _randomized(vision_transformer())
    graph = analyze(model)
    stream = by_layer(graph.groups, "patchify")
    assert "LayerNormalization 'ln0_a'" in stream.blocked
    assert {"ln0_a", "ln0_b"} <= set(graph.opaque) and "mha0" not in graph.opaque
    heads = [g for g in graph.groups if g.layers("head") == ["mha0"]]
    assert len(heads) == 1 and heads[0].width == 2 and heads[0].blocked is None
    hidden = by_layer(graph.groups, "mlp0_up")
    assert hidden.blocked is None and hidden.layers("in") == ["mlp0_down"]
    _, result, _ = _prune_half(model, (16, 16, 3))
    assert result.removed == {"mlp0_up": (32, 16), "mlp1_up": (32, 16)}
    assert result.heads == {"mha0": (2, 1), "mha1": (2, 1)}
    assert any(note.startswith("patchify") for note in result.notes)


def test_unit_shrink_of_a_model_with_attention_keeps_its_call_arguments():
    model = _randomized(vision_transformer())
    weights = model.get_layer("mlp1_up").get_weights()
    weights[0][:, :5] = 0
    weights[1][:5] = 0
    model.get_layer("mlp1_up").set_weights(weights)
    x = np.random.default_rng(3).random((2, 16, 16, 3)).astype(np.float32)
    result = surgery.shrink(model, check_inputs=x)
    assert result.removed == {"mlp1_up": (32, 27)} and result.max_abs_diff <= 1e-5


def convnext_like(shape=(8, 8, 3), dim=8, hidden=None):
    """ConvNeXt's stem and block: patchify conv, LayerNormalization over the channels, a
    depthwise conv, an inverted Dense MLP, a LayerScale (here a 1x1 DepthwiseConv2D, as the
    translator writes it) and a residual Add; a LayerNormalization before the head."""
    x = keras.Input(shape)
    t = L.LayerNormalization(epsilon=1e-6, name="stem_ln")(L.Conv2D(dim, 2, strides=2,
                                                                    name="stem")(x))
    h = L.DepthwiseConv2D(3, padding="same", name="dw")(t)
    h = L.LayerNormalization(epsilon=1e-6, name="block_ln")(h)
    h = L.Dense(hidden or 4 * dim, activation="gelu", name="pw1")(h)
    h = L.Dense(dim, name="pw2")(h)
    h = L.DepthwiseConv2D(1, use_bias=False, name="layer_scale")(h)
    t = L.Add(name="residual")([t, h])
    out = L.Dense(3, activation="softmax", name="head")(
        L.LayerNormalization(epsilon=1e-6, name="head_ln")(L.GlobalAveragePooling2D()(t)))
    return keras.Model(x, out)


def test_layer_norm_blocks_the_stream_unless_renormalizing_is_asked_for():
    model = _randomized(convnext_like())
    stream = by_layer(channel_groups(model), "stem")
    assert "LayerNormalization 'stem_ln'" in stream.blocked and "renormalize" in stream.blocked
    with pytest.raises(Exception, match="layer_norm"):
        analyze(model, layer_norm="ignore")
    groups = channel_groups(model, layer_norm="renormalize")
    stream = by_layer(groups, "stem")
    assert stream.blocked is None and stream.layers("out") == ["stem", "pw2"]
    assert stream.renormalized() == ["stem_ln", "block_ln", "head_ln"]
    keep = channels.select(groups, channels.importance(model, groups, "l2"), 0.5)
    masked = surgery.fresh_copy(model)
    channels.apply_masks(masked, groups, keep)
    x = np.random.default_rng(1).random((4, 8, 8, 3)).astype(np.float32)
    # Masked gamma and beta: a pruned channel leaves every LayerNormalization as zero.
    probe = keras.Model(masked.input, masked.get_layer("block_ln").output)
    dropped = stream.dropped(keep[stream.id])
    assert np.all(np.asarray(probe(x))[..., dropped] == 0)
    result = channels.shrink(model, groups, keep, check_inputs=x)
    shrunk = result.model
    assert shrunk.get_layer("stem").filters == 4 and shrunk.get_layer("pw1").units == 16
    assert shrunk.get_layer("head_ln").gamma.shape == (4,)
    # Not exact, and said so with the figure: the statistics span 4 channels, not 8.
    assert result.renormalized == ["block_ln", "head_ln", "stem_ln"]
    assert 1e-5 < result.max_abs_diff < 1.0
    assert any("normalize over the kept channels" in n and f"{result.max_abs_diff:.3g}" in n
               for n in result.notes)
    # What it should compute: the same block built at the kept widths, every weight sliced
    # here by hand (not by surgery), LayerNormalizations over the kept channels.
    s, h = keep[stream.id], keep[by_layer(groups, "pw1").id]
    reference = convnext_like(dim=len(s), hidden=len(h))
    w = lambda name: model.get_layer(name).get_weights()  # noqa: E731
    reference.get_layer("stem").set_weights([w("stem")[0][..., s], w("stem")[1][s]])
    for name in ("stem_ln", "block_ln", "head_ln"):
        reference.get_layer(name).set_weights([v[s] for v in w(name)])
    reference.get_layer("dw").set_weights([w("dw")[0][:, :, s], w("dw")[1][s]])
    reference.get_layer("pw1").set_weights([w("pw1")[0][s][:, h], w("pw1")[1][h]])
    reference.get_layer("pw2").set_weights([w("pw2")[0][h][:, s], w("pw2")[1][s]])
    reference.get_layer("layer_scale").set_weights([w("layer_scale")[0][:, :, s]])
    reference.get_layer("head").set_weights([w("head")[0][s], w("head")[1]])
    assert np.max(np.abs(np.asarray(reference(x)) - np.asarray(shrunk(x)))) <= 1e-6
    # Blocked (the default), the same selection over the other groups is exact.
    exact = channel_groups(model)
    keep = channels.select(exact, channels.importance(model, exact, "l2"), 0.5)
    result = channels.shrink(model, exact, keep, check_inputs=x)
    assert result.max_abs_diff <= 1e-5 and not result.renormalized
    assert result.removed == {"pw1": (32, 16)}


def test_an_add_of_a_concatenate_and_one_convolution_cuts_the_convolution_alike():
    """Inception-ResNet and NASNet add a Concatenate's output to one convolution's: the
    convolution's channels are cut where the Concatenate's inputs meet, each part tied to its
    branch."""
    x = keras.Input((6, 6, 3))
    a = L.Conv2D(4, 1, name="a")(x)
    b = L.Conv2D(6, 3, padding="same", name="b")(x)
    up = L.Conv2D(10, 1, name="up")(L.ReLU()(x))
    y = L.Add(name="res")([L.Concatenate(name="cat")([a, b]), up])
    model = _randomized(keras.Model(x, L.Conv2D(2, 1, name="head")(L.ReLU()(y))))
    groups = channel_groups(model)
    first, second = by_layer(groups, "a"), by_layer(groups, "b")
    assert first.width == 4 and second.width == 6 and first.blocked is None
    assert sorted(first.layers("out")) == ["a", "up"] and first.layers("in") == ["head"]
    assert [m.offset for m in second.members if m.layer == "up"] == [4]
    _, result, _ = _prune_half(model, (6, 6, 3))
    assert result.removed == {"a": (4, 2), "b": (6, 3), "up": (10, 5)}


def test_a_hard_sigmoid_made_of_built_in_layers_passes_the_channels():
    x = keras.Input((6, 6, 3))
    y = L.Conv2D(8, 3, padding="same", name="conv")(x)
    h = L.Normalization(axis=None, mean=0.0, variance=36.0, name="div6")(
        L.ReLU(6.0)(L.Rescaling(1.0, offset=3.0)(y)))
    y = L.Multiply(name="hard_silu")([y, h])
    model = _randomized(keras.Model(x, L.Conv2D(2, 1, name="head")(y)))
    assert by_layer(channel_groups(model), "conv").blocked is None
    _prune_half(model, (6, 6, 3))


@pytest.mark.integration
@pytest.mark.parametrize("name, kwargs, size, limit", [
    ("EfficientNetB0", {}, 32, 0.32),                                # squeeze-and-excitation
    ("Xception", {}, 71, 0.32),                                      # separable convolutions
    ("MobileNetV3Small", {"alpha": 0.75, "minimalistic": False}, 32, 0.32),  # hard-swish + SE
    ("ConvNeXtTiny", {}, 32, 0.80),  # LayerScale, LayerNormalization: its stream stays whole
])
def test_reduced_keras_applications_prune_half_their_channels_exactly(name, kwargs, size, limit):
    """keras.applications models built by Keras 3 (weights=None, small inputs), translated,
    half of every prunable group's channels removed: exact, and the FLOPs fall (ConvNeXt keeps
    its residual width: LayerNormalization's statistics span it, a miss of issue 31)."""
    import keras as keras3_lib

    from tfprune import keras3

    keras3_lib.utils.set_random_seed(0)
    original = getattr(keras3_lib.applications, name)(
        weights=None, input_shape=(size, size, 3), classes=10, **kwargs)
    x = np.random.default_rng(0).random((2, size, size, 3)).astype(np.float32) * 255
    model = _randomized(keras3.from_keras3(original, x).model, kernels=False)
    graph = analyze(model)
    _, result, flops = _prune_half(model, (size, size, 3))
    assert flops <= limit, flops
    # The input's per-channel Normalization (preprocessing) ends only the input's group.
    opaque = {n: why for n, why in graph.opaque.items() if "statistics are not sliced" not in why}
    if name == "ConvNeXtTiny":
        assert all("mean and variance span the channels" in why or "mixes channels" in why
                   for why in opaque.values()), opaque
        assert flops >= 0.5  # the MLPs' hidden channels alone: the miss is measured, not hidden
        # Opted in, the stream goes through its LayerNormalizations: the FLOPs of the others,
        # and a difference that is measured, not refused.
        groups = channel_groups(model, layer_norm="renormalize")
        keep = channels.select(groups, channels.importance(model, groups, "l2"), 0.5)
        renormalized = channels.shrink(model, groups, keep, check_inputs=x)
        ratio = stats.summarize(renormalized.model)["flops"] / stats.summarize(model)["flops"]
        assert ratio <= 0.32, ratio
        assert renormalized.renormalized == sorted(
            l.name for l in model.layers if isinstance(l, L.LayerNormalization))  # all 23
        assert renormalized.max_abs_diff > 1e-5
    else:
        assert set(opaque) <= {"predictions"}, opaque  # only the softmax head


def test_what_review_found_stays_fixed():
    """Cuts that appear while aligning, a Flatten concatenated second, a shared layer's later
    call, channels-first pooling, a PReLU under unit shrink."""
    x = keras.Input((6, 6, 3))
    a, b = L.Conv2D(4, 1, name="a")(x), L.Conv2D(4, 1, name="b")(x)
    c, d = L.Conv2D(2, 1, name="c")(x), L.Conv2D(2, 1, name="d")(x)
    y = L.Add(name="res")([L.Concatenate()([a, b]), L.Concatenate()([b, c, d])])
    groups = channel_groups(keras.Model(x, L.Conv2D(2, 1, name="head")(y)))
    assert {g.width for g in groups if "a" in g.layers("out")} == {2}  # a cut where b is

    t = keras.Input((4, 4, 3))
    conv = L.Conv2D(3, 1, name="conv")(t)
    cat = L.Concatenate()([L.Dense(5, name="side")(L.Flatten()(t)), L.Flatten()(conv)])
    groups = channel_groups(keras.Model(t, L.Dense(2, name="fc")(cat)))
    assert by_layer(groups, "conv").blocked

    s = L.Dense(4, name="shared")
    inp = keras.Input((4,))
    mid = L.Dense(4, name="mid")(s(inp))
    groups = channel_groups(keras.Model(inp, L.Dense(2)(s(mid))))
    assert "more than once" in by_layer(groups, "mid").blocked

    seq = keras.Input((8, 6))
    pooled = L.MaxPooling1D(2, data_format="channels_first", name="maxout")(
        L.Conv1D(6, 1, name="feat")(seq))
    groups = channel_groups(keras.Model(seq, L.Conv1D(2, 1)(pooled)))
    assert "channels_first" in by_layer(groups, "feat").blocked

    p = keras.Input((6, 6, 3))
    conv = L.Conv2D(8, 3, padding="same", name="conv")(p)
    model = _randomized(keras.Model(p, L.Conv2D(2, 1)(L.PReLU(shared_axes=(1, 2))(conv))))
    weights = model.get_layer("conv").get_weights()
    weights[0][..., :3], weights[1][:3] = 0, 0
    model.get_layer("conv").set_weights(weights)
    result = surgery.shrink(model, check_inputs=np.ones((2, 6, 6, 3), np.float32))
    assert result.removed == {"conv": (8, 5)}
