"""Models users bring, through the prune job: a small vision transformer built and saved by
plain Keras 3 (patchify Conv2D, tokens, LayerNormalization, MultiHeadAttention, a Dense MLP,
residual Adds), pruned by weight, unit and channel pruning, one-shot, on the digits."""

import pytest

from tfprune.jobs.prune import PruneConfig, run_prune


def keras3_vit(path, shape=(8, 8, 1), dim=16, patch=2, classes=10):
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    x = keras.Input(shape)
    t = L.Conv2D(dim, patch, strides=patch, name="patchify")(x)
    t = L.Reshape(((shape[0] // patch) * (shape[1] // patch), dim), name="tokens")(t)
    for i in range(2):
        h = L.LayerNormalization(name=f"ln{i}_a")(t)
        t = L.Add(name=f"res{i}_a")([t, L.MultiHeadAttention(2, 8, name=f"mha{i}")(h, h)])
        h = L.LayerNormalization(name=f"ln{i}_b")(t)
        h = L.Dense(2 * dim, activation="gelu", name=f"mlp{i}_up")(h)
        t = L.Add(name=f"res{i}_b")([t, L.Dense(dim, name=f"mlp{i}_down")(h)])
    out = L.Dense(classes, activation="softmax", name="classifier")(
        L.GlobalAveragePooling1D()(L.LayerNormalization(name="ln_head")(t)))
    keras.Model(x, out, name="vit").save(path)
    return path


@pytest.mark.integration
@pytest.mark.parametrize("method", ["weight", "unit", "channel"])
def test_a_keras3_vision_transformer_is_pruned_around_its_attention(tmp_path, method):
    baseline = keras3_vit(str(tmp_path / "vit.keras"))
    config = PruneConfig(model="mlp", baseline=baseline, method=method, schedule="constant",
                         target_sparsity=0.5, fine_tune_epochs=0, batch_size=128,
                         prune_classifier=method == "weight")
    metrics = run_prune(config, str(tmp_path / method), log=lambda _: None).metrics
    pruned, skipped = set(metrics["pruned_layers"]), metrics["skipped_layers"]
    if method == "weight":
        assert {"mlp0_up", "mlp0_down", "mlp1_up", "mlp1_down", "classifier", "mha0",
                "mha1"} <= pruned  # the attention projections too (tfprune's wrapper)
        assert abs(metrics["pruned_sparsity"] - 0.5) < 0.01
        assert "patchify" in skipped  # the first convolution, by default
    elif method == "unit":
        assert {"mlp0_up", "mlp1_up"} <= pruned and "mha0" in skipped
        assert metrics["shrink"]["removed"]["mlp0_up"] == [32, 16]
    else:
        assert pruned == {"mlp0_up", "mlp1_up", "mha0", "mha1"}
        assert metrics["shrink"]["removed"] == {"mlp0_up": [32, 16], "mlp1_up": [32, 16]}
        assert metrics["shrink"]["heads"] == {"mha0": [2, 1], "mha1": [2, 1]}
        # What is left dense is named: the residual stream, and why.
        assert "LayerNormalization 'ln0_a'" in skipped["patchify"]
    assert metrics["shrink"]["max_abs_diff"] <= 1e-5


def keras3_convnext_block(path, shape=(8, 8, 1), dim=16, classes=10):
    """ConvNeXt's pieces in plain Keras 3: patchify stem, LayerNormalization over the channels,
    a 7x7 depthwise conv, an inverted MLP, keras.applications' own LayerScale, a residual."""
    import keras
    from keras.src.applications.convnext import LayerScale

    keras.utils.set_random_seed(0)
    L = keras.layers
    x = keras.Input(shape)
    t = L.LayerNormalization(epsilon=1e-6, name="stem_ln")(L.Conv2D(dim, 2, strides=2,
                                                                    name="stem")(x))
    h = L.DepthwiseConv2D(7, padding="same", name="dw")(t)
    h = L.LayerNormalization(epsilon=1e-6, name="block_ln")(h)
    h = L.Dense(4 * dim, activation="gelu", name="pw1")(h)
    h = LayerScale(0.5, dim, name="layer_scale")(L.Dense(dim, name="pw2")(h))
    t = L.Add(name="residual")([t, h])
    out = L.Dense(classes, activation="softmax", name="head")(
        L.LayerNormalization(epsilon=1e-6, name="head_ln")(L.GlobalAveragePooling2D()(t)))
    keras.Model(x, out, name="convnext_block").save(path)
    return path


@pytest.mark.integration
def test_channel_pruning_through_layer_norm_is_opt_in_and_measured(tmp_path):
    from tfprune.errors import TfpruneError

    baseline = keras3_convnext_block(str(tmp_path / "convnext.keras"))
    common = dict(model="mlp", baseline=baseline, schedule="constant", target_sparsity=0.5,
                  fine_tune_epochs=0, batch_size=128)
    with pytest.raises(TfpruneError, match="layer_norm"):
        PruneConfig(method="weight", layer_norm="renormalize", **common)
    with pytest.raises(TfpruneError, match="layer_norm"):
        PruneConfig(method="channel", layer_norm="sometimes", **common)
    runs = {}
    for mode in ("block", "renormalize"):
        config = PruneConfig(method="channel", layer_norm=mode, **common)
        runs[mode] = run_prune(config, str(tmp_path / mode), log=lambda _: None).metrics
    block, renorm = runs["block"], runs["renormalize"]
    assert block["pruned_layers"] == ["pw1"] and block["shrink"]["max_abs_diff"] <= 1e-5
    assert "renormalize" in block["skipped_layers"]["stem"]
    assert set(renorm["pruned_layers"]) == {"stem", "pw1", "pw2"}
    assert renorm["shrink"]["removed"]["stem"] == [16, 8]
    assert renorm["shrink"]["renormalized"] == ["block_ln", "head_ln", "stem_ln"]
    assert block["shrink"]["renormalized"] == []
    assert renorm["shrink"]["flops_after"] < block["shrink"]["flops_after"]
    diff = renorm["shrink"]["max_abs_diff"]
    assert diff > 1e-5 and any(f"{diff:.3g}" in n and "layer_norm='renormalize'" in n
                               for n in renorm["shrink"]["notes"])
