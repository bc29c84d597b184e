"""Channel-group importance, selection, masks and shrink (one-shot, no training)."""

import numpy as np
import pytest

from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.models import build_model
from tfprune.pruning import channels, stats
from tfprune.pruning.groups import Group, Member, channel_groups
from tfprune.pruning.options import CRITERIA

L = keras.layers


def user_net(shape=(12, 12, 1), classes=4):
    """A user's functional net: a residual block, a depthwise-separable block, a Concatenate,
    Flatten -> Dense."""
    x = keras.Input(shape)
    y = L.ReLU(name="stem_relu")(L.BatchNormalization(name="stem_bn")(
        L.Conv2D(16, 3, padding="same", name="stem")(x)))
    r = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same", name="res_a")(y)))
    r = L.BatchNormalization()(L.Conv2D(16, 3, padding="same", name="res_b")(r))
    y = L.ReLU()(L.Add(name="res_add")([y, r]))
    d = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", name="dw")(y)))
    d = L.ReLU()(L.BatchNormalization(name="pw_bn")(L.Conv2D(24, 1, name="pw")(d)))
    b = L.Conv2D(8, 3, padding="same", name="branch")(y)
    y = L.Conv2D(32, 3, strides=2, padding="same", name="post")(L.Concatenate(name="cat")([d, b]))
    y = L.Dense(32, activation="relu", name="fc")(L.Flatten()(L.MaxPooling2D()(L.ReLU()(y))))
    out = L.Activation("softmax", dtype="float32")(L.Dense(classes, name="classifier")(y))
    return keras.Model(x, out, name="user_net")


def _trained_looking(model, seed=0):
    """Non-trivial BatchNorm statistics, as after training."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n))
            layer.moving_variance.assign(rng.uniform(0.5, 2, n))
            layer.gamma.assign(rng.uniform(0.2, 1.5, n))
            layer.beta.assign(rng.normal(0, 0.3, n))
    return model


def test_uniform_and_global_selection_by_hand():
    groups = [Group(0, 4, [Member("a", "out")]), Group(1, 8, [Member("b", "out")]),
              Group(2, 3, [Member("c", "out")], blocked="the model output")]
    scores = {0: np.array([4.0, 3.0, 2.0, 1.0]), 1: np.array([1.0] * 4 + [0.01] * 4)}
    uniform = channels.select(groups, scores, 0.5)
    assert {k: v.tolist() for k, v in uniform.items()} == {0: [0, 1], 1: [0, 1, 2, 3]}
    # Global: b's low channels are far below its mean; a's are close to its own. 6 of 12 go.
    glob = channels.select(groups, scores, 0.5, mode="global")
    assert glob[1].tolist() == [0, 1, 2, 3] and len(glob[0]) == 2
    capped = channels.select(groups, scores, 0.9, mode="global", max_per_group=0.5)
    assert len(capped[0]) == 2 and len(capped[1]) == 4  # never more than half of a group
    rounded = channels.select(groups, scores, 0.5, round_to=8)
    assert len(rounded[0]) == 4 and len(rounded[1]) == 8  # kept counts rounded up to 8
    with pytest.raises(TfpruneError, match=r"`mode` must be one of uniform, global, latency, got 'random'"):
        channels.select(groups, scores, 0.5, mode="random")


def test_criteria_rank_by_hand():
    x = keras.Input((3,))
    h = L.Dense(3, use_bias=False, name="h")(x)
    bn = L.BatchNormalization(name="bn")(h)
    model = keras.Model(x, L.Dense(2, name="out")(bn))
    model.get_layer("h").kernel.assign(np.diag([3.0, 1.0, 2.0]))
    model.get_layer("bn").gamma.assign([0.1, 5.0, 1.0])
    model.get_layer("out").kernel.assign(np.zeros((3, 2)))
    group = [g for g in channel_groups(model) if "h" in g.layers("out")][0]
    # L1 over the kernel column, gamma and beta (0), and the consumer's rows (0).
    np.testing.assert_allclose(CRITERIA.get("l1")(model, group), [3.1, 6.0, 3.0])
    np.testing.assert_allclose(CRITERIA.get("bn_scale")(model, group), [0.1, 5.0, 1.0])
    data = [(np.eye(3, dtype=np.float32), np.array([0, 1, 0]))]
    assert CRITERIA.get("taylor")(model, group, data).shape == (3,)
    with pytest.raises(TfpruneError, match="criterion 'taylor' needs `data`"):
        CRITERIA.get("taylor")(model, group)


@pytest.mark.parametrize("name, shape, limit", [
    ("resnet20", (28, 28, 1), 0.30), ("resnet44", (28, 28, 1), 0.30),
    ("mobilenetv2", (32, 32, 3), 0.35), ("vgg16", (32, 32, 3), 0.30), ("user", (12, 12, 1), 0.30),
])
def test_half_the_channels_shrink_to_a_quarter_of_the_flops(name, shape, limit):
    keras.utils.set_random_seed(0)
    model = _trained_looking(user_net(shape) if name == "user" else build_model(name, shape, 10))
    groups = channel_groups(model)
    keep = channels.select(groups, channels.importance(model, groups, "l2"), 0.5)
    x = np.random.default_rng(0).random((4,) + shape).astype(np.float32)
    result = channels.shrink(model, groups, keep, check_inputs=x)
    flops = stats.summarize(result.model)["flops"] / stats.summarize(model)["flops"]
    assert flops <= limit, flops
    assert result.max_abs_diff <= 1e-5
    # The stem's group (the whole first-stage stream in a ResNet) was pruned like the others.
    assert all(len(k) < g.width for g in channels.prunable(groups) for k in [keep[g.id]])


def test_masks_make_the_masked_model_compute_what_the_shrunk_one_does():
    keras.utils.set_random_seed(1)
    model = _trained_looking(user_net())
    groups = channel_groups(model)
    keep = channels.select(groups, channels.importance(model, groups, "l1"), 0.5, mode="global")
    x = np.random.default_rng(1).random((3, 12, 12, 1)).astype(np.float32)
    thin = channels.shrink(model, groups, keep).model
    channels.apply_masks(model, groups, keep)
    np.testing.assert_allclose(model(x).numpy(), thin(x).numpy(), atol=1e-5)
    stem = [g for g in groups if "stem" in g.layers("out")][0]
    kernel = model.get_layer("stem").kernel.numpy()
    dropped = np.setdiff1d(np.arange(16), keep[stem.id])
    assert not kernel[..., dropped].any() and not model.get_layer("res_b").kernel.numpy()[..., dropped].any()


def test_shrink_of_a_model_whose_masks_did_not_hold_is_refused():
    """After fine-tuning, shrink compares with the trained model itself: had the masks not
    held, the trained model still uses the dropped channels and the shrunk one is wrong."""
    from tfprune.errors import InternalError

    keras.utils.set_random_seed(2)
    model = _trained_looking(user_net())
    groups = channel_groups(model)
    keep = channels.select(groups, channels.importance(model, groups, "l2"), 0.5)
    x = np.random.default_rng(2).random((3, 12, 12, 1)).astype(np.float32)
    with pytest.raises(InternalError, match="differs from the trained model"):
        channels.shrink(model, groups, keep, check_inputs=x, masked=True)
    channels.apply_masks(model, groups, keep)
    assert channels.shrink(model, groups, keep, check_inputs=x, masked=True).max_abs_diff <= 1e-5
