"""Channel groups on hand-built graphs and on the zoo's residual and depthwise models."""

import numpy as np

from tfprune.keras import keras
from tfprune.models import build_model
from tfprune.pruning.groups import Member, analyze, channel_groups

L = keras.layers


def by_layer(groups, layer, role="out"):
    (group,) = [g for g in groups if any(m.layer == layer and m.role == role for m in g.members)]
    return group


def places(group):
    return sorted((m.layer, m.role, m.offset) for m in group.members if m.role != "pass")


def test_two_branch_add_couples_both_producers_and_the_consumer():
    x = keras.Input((6, 6, 3))
    a = L.Conv2D(8, 3, padding="same", name="a")(x)
    b = L.Conv2D(8, 1, name="b")(x)
    s = L.Add(name="add")([L.ReLU(name="relu")(a), b])
    out = L.Dense(2, name="head")(L.GlobalAveragePooling2D(name="gap")(L.Conv2D(4, 1, name="c")(s)))
    groups = channel_groups(keras.Model(x, out))
    stream = by_layer(groups, "a")
    assert stream is by_layer(groups, "b") and stream.width == 8 and stream.blocked is None
    assert places(stream) == [("a", "out", 0), ("b", "out", 0), ("c", "in", 0)]
    assert by_layer(groups, "c").layers() == ["c", "gap", "head"]  # gap: passed through
    assert "model input" in by_layer(groups, "a", "in").blocked
    assert by_layer(groups, "head").blocked == "the model output"


def test_concatenate_places_channels_at_offsets():
    x = keras.Input((5, 5, 2))
    a = L.Conv2D(4, 1, name="a")(x)
    b = L.Conv2D(6, 1, name="b")(x)
    c = L.Conv2D(3, 1, name="c")(L.Concatenate(name="cat")([a, b]))
    groups = channel_groups(keras.Model(x, L.Flatten()(c)))
    assert places(by_layer(groups, "a")) == [("a", "out", 0), ("c", "in", 0)]
    assert places(by_layer(groups, "b")) == [("b", "out", 0), ("c", "in", 4)]
    member = [m for m in by_layer(groups, "b").members if m.layer == "c"][0]
    np.testing.assert_array_equal(member.indices([0, 5]), [4, 9])


def test_depthwise_chain_is_one_group_with_its_batchnorms():
    x = keras.Input((8, 8, 3))
    y = L.Conv2D(16, 1, name="expand")(x)
    y = L.BatchNormalization(name="bn1")(y)
    y = L.ReLU(6.0, name="relu1")(y)
    y = L.DepthwiseConv2D(3, padding="same", name="dw")(y)
    y = L.BatchNormalization(name="bn2")(y)
    y = L.Conv2D(4, 1, name="project")(L.ReLU(name="relu2")(y))
    groups = channel_groups(keras.Model(x, y))
    group = by_layer(groups, "expand")
    assert places(group) == [("bn1", "channel", 0), ("bn2", "channel", 0), ("dw", "channel", 0),
                             ("expand", "out", 0), ("project", "in", 0)]
    assert group.blocked is None


def test_flatten_to_dense_maps_a_channel_to_a_block_of_rows():
    x = keras.Input((4, 4, 1))
    c = L.Conv2D(3, 1, name="conv")(x)
    d = L.Dense(5, name="fc")(L.Flatten(name="flat")(c))
    groups = channel_groups(keras.Model(x, L.Dense(2, name="out")(d)))
    member = [m for m in by_layer(groups, "conv").members if m.layer == "fc"][0]
    assert member == Member("fc", "in", 0, stride=3, repeat=16)
    np.testing.assert_array_equal(member.indices([1]), np.arange(16) * 3 + 1)  # rows p*C + c


def test_an_op_the_graph_cannot_see_through_is_reported_not_guessed():
    x = keras.Input((4, 4, 2))
    c = L.Conv2D(6, 1, name="conv")(x)
    r = L.Reshape((4, 24), name="reshape")(c)
    out = L.Conv1D(2, 1, name="after")(r)
    graph = analyze(keras.Model(x, out))
    assert "consumed by Reshape 'reshape', which does not keep the channel axis whole" in \
        by_layer(graph.groups, "conv").blocked
    assert "made by Reshape 'reshape'" in by_layer(graph.groups, "after", "in").blocked
    assert graph.opaque == {"reshape": "which does not keep the channel axis whole"}
    softmax = L.Activation("softmax", name="sm")(L.Conv2D(3, 1, name="pre")(x))
    groups = channel_groups(keras.Model(x, L.Conv2D(2, 1, name="post")(softmax)))
    assert "mixes channels" in by_layer(groups, "pre").blocked


def test_reshapes_that_keep_the_channel_axis_pass_it():
    x = keras.Input((4, 4, 2))
    c = L.Conv2D(6, 1, name="conv")(x)
    tokens = L.Reshape((16, 6), name="tokens")(c)          # a patch grid to tokens
    d = L.Dense(3, name="mlp")(tokens)
    flat = L.Reshape((48,), name="flat")(d)                 # a Flatten written as a Reshape
    groups = channel_groups(keras.Model(x, L.Dense(2, name="head")(flat)))
    assert places(by_layer(groups, "conv")) == [("conv", "out", 0), ("mlp", "in", 0)]
    assert by_layer(groups, "conv").layers("pass") == ["tokens"]
    member = [m for m in by_layer(groups, "mlp").members if m.layer == "head"][0]
    assert member == Member("head", "in", 0, stride=3, repeat=16)


def test_resnet20_stem_couples_the_whole_first_stage_stream():
    groups = channel_groups(build_model("resnet20", (8, 8, 1), 10))
    stem = by_layer(groups, "stem_conv")
    outs = sorted(stem.layers("out"))
    assert outs == ["stage1_block1_2_conv", "stage1_block2_2_conv", "stage1_block3_2_conv",
                    "stem_conv"]
    assert stem.width == 16 and stem.blocked is None
    inner = by_layer(groups, "stage2_block1_1_conv")
    assert places(inner) == [("stage2_block1_1_bn", "channel", 0), ("stage2_block1_1_conv", "out", 0),
                             ("stage2_block1_2_conv", "in", 0)]
    assert "consumed by Activation 'softmax', which mixes channels" in \
        by_layer(groups, "classifier").blocked


def test_mobilenetv2_couples_expand_depthwise_and_their_batchnorms():
    groups = channel_groups(build_model("mobilenetv2", (32, 32, 3), 10))
    expand = by_layer(groups, "block_1_expand")
    assert {"block_1_expand_BN", "block_1_depthwise", "block_1_depthwise_BN"} <= set(
        expand.layers("channel"))
    assert expand.layers("in") == ["block_1_project"] and expand.blocked is None
    # Blocked: only the input, the classifier (into the softmax) and the softmax's output.
    assert len([g for g in groups if g.blocked]) == 3 and len(groups) == 28
