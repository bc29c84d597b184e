"""Structured pruning of transformers through the channel graph: attention heads, MLP neurons
and the residual width as groups; MultiHeadAttention rebuilt with fewer heads; the gate score of
Michel et al. 2019 checked against a finite difference."""

import numpy as np
import pytest

from tfprune.keras import keras, tf
from tfprune.pruning import channels, stats, surgery
from tfprune.pruning.groups import analyze, parameters
from tfprune.pruning.sensitivity import group_label

L = keras.layers
VOCABULARY, TOKENS = 40, 10


def encoder(width=16, heads=4, key_dim=8, mlp=24, blocks=2, classes=3, seed=0, cross=False,
            output_shape=None):
    """A small BERT-style encoder on token ids: Embedding, pre-LayerNorm blocks of
    MultiHeadAttention and a gelu MLP with residual Adds, mean pooling, a classifier. ``cross``:
    the first block's attention takes its key and value from the embeddings, not the
    normalized stream; ``output_shape``: the attentions project to that width and a Dense
    brings them back."""
    keras.utils.set_random_seed(seed)
    ids = keras.Input((TOKENS,), dtype="int32", name="tokens")
    x = embedded = L.Embedding(VOCABULARY, width, name="embedding")(ids)
    for i in range(blocks):
        h = L.LayerNormalization(name=f"b{i}_norm1")(x)
        source = embedded if cross and i == 0 else h
        h = L.MultiHeadAttention(heads, key_dim, output_shape=output_shape,
                                 name=f"b{i}_attention")(h, source)
        if output_shape:
            h = L.Dense(width, name=f"b{i}_back")(h)
        x = L.Add(name=f"b{i}_add1")([x, h])
        h = L.LayerNormalization(name=f"b{i}_norm2")(x)
        h = L.Dense(mlp, activation="gelu", name=f"b{i}_mlp1")(h)
        h = L.Dense(width, name=f"b{i}_mlp2")(h)
        x = L.Add(name=f"b{i}_add2")([x, h])
    x = L.GlobalAveragePooling1D(name="pool")(L.LayerNormalization(name="norm")(x))
    out = L.Activation("softmax", dtype="float32", name="softmax")(
        L.Dense(classes, name="classifier")(x))
    model = keras.Model(ids, out)
    _randomize(model, seed)
    return model


def _randomize(model, seed):
    """Random LayerNorm gammas/betas and biases, so nothing is zero or one by construction."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype)
                           for w in layer.get_weights()])


def _ids(n=8, seed=1):
    return np.random.default_rng(seed).integers(0, VOCABULARY, (n, TOKENS)).astype(np.int32)


def _groups_of(graph, role):
    return [g for g in graph.groups if any(m.role == role for m in g.members)]


def test_heads_and_mlp_neurons_are_groups_and_the_stream_is_blocked_at_layer_norms():
    graph = analyze(encoder())
    heads = [g for g in graph.groups if g.layers("head")]
    assert [(g.layers("head"), g.width, g.blocked) for g in heads] == [
        (["b0_attention"], 4, None), (["b1_attention"], 4, None)]
    hidden = [g for g in graph.groups if g.layers("out") == ["b0_mlp1"]][0]
    assert hidden.blocked is None and hidden.layers("in") == ["b0_mlp2"]
    stream = [g for g in graph.groups if "embedding" in g.layers("out")][0]
    assert "LayerNormalization 'b0_norm1'" in stream.blocked
    assert set(stream.layers("out")) == {"embedding", "b0_attention", "b0_mlp2",
                                         "b1_attention", "b1_mlp2"}
    assert "b0_attention" not in graph.opaque


def test_a_head_member_holds_each_heads_query_key_value_columns_and_output_rows():
    layer = encoder().get_layer("b0_attention")
    pairs = parameters(layer, "head")
    shapes = sorted((tuple(v.shape), axis) for v, axis in pairs)
    assert shapes == sorted([((16, 4, 8), 1)] * 3 + [((4, 8), 0)] * 3 + [((4, 8, 16), 0)])
    assert [tuple(v.shape) for v, _ in parameters(layer, "out")] == [(4, 8, 16), (16,)]
    assert [tuple(v.shape) for v, _ in parameters(layer, "query")] == [(16, 4, 8)]


def _shrunk_half(model, layer_norm="block", criterion="l2", data=None):
    graph = analyze(model, layer_norm)
    keep = channels.choose(model, graph.groups, 0.5, criterion=criterion, data=data)
    return graph, keep, channels.shrink(model, graph.groups, keep, check_inputs=_ids())


def test_half_the_heads_and_neurons_removed_is_the_masked_model_exactly():
    model = encoder()
    _, _, result = _shrunk_half(model)
    assert result.max_abs_diff <= 1e-5
    assert result.heads == {"b0_attention": (4, 2), "b1_attention": (4, 2)}
    assert result.removed == {"b0_mlp1": (24, 12), "b1_mlp1": (24, 12)}
    thin = result.model.get_layer("b0_attention")
    assert thin.get_config()["num_heads"] == 2 and thin.get_config()["key_dim"] == 8
    assert result.model.get_layer("b0_attention")._query_dense.kernel.shape == (16, 2, 8)
    # The rebuilt model saves and loads as plain Keras: nothing of tfprune's in it.
    ratio = stats.summarize(result.model)["flops"] / stats.summarize(model)["flops"]
    assert ratio < 0.75


def test_the_kept_heads_are_the_highest_scored(tmp_path):
    model = encoder()
    layer = model.get_layer("b0_attention")
    weights = layer.get_weights()
    # Heads 1 and 3 made tiny in every parameter they own: L2 must drop exactly them.
    for index, (variable, axis) in enumerate(
            [(v, a) for v, a in parameters(layer, "head")]):
        position = [id(w) for w in layer.weights].index(id(variable))
        moved = np.moveaxis(weights[position], axis, 0)
        moved[[1, 3]] *= 1e-3
        weights[position] = np.moveaxis(moved, 0, axis)
    layer.set_weights(weights)
    graph, keep, result = _shrunk_half(model)
    head_group = [g for g in graph.groups if g.layers("head") == ["b0_attention"]][0]
    assert keep[head_group.id].tolist() == [0, 2]
    path = str(tmp_path / "shrunk.keras")
    result.model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(loaded(_ids()).numpy(), result.model(_ids()).numpy(), atol=1e-6)


def test_the_residual_width_is_one_group_under_renormalize_and_its_difference_is_reported():
    model = encoder()
    graph, keep, result = _shrunk_half(model, layer_norm="renormalize")
    stream = [g for g in graph.groups if "embedding" in g.layers("out")][0]
    assert stream.blocked is None
    assert set(stream.layers("norm")) == {"b0_norm1", "b0_norm2", "b1_norm1", "b1_norm2", "norm"}
    assert {"query", "key", "value", "out"} <= {m.role for m in stream.members
                                                 if m.layer == "b0_attention"}
    assert result.removed["embedding"] == (16, 8) and result.removed["b1_mlp2"] == (16, 8)
    thin = result.model.get_layer("b1_attention")
    assert thin._query_dense.kernel.shape == (8, 2, 8) and thin.output.shape[-1] == 8
    assert result.renormalized and result.max_abs_diff is not None
    assert any("LayerNormalization" in note for note in result.notes)


def test_cross_attention_and_a_projected_output_are_shrunk_exactly():
    model = encoder(cross=True, output_shape=12)
    graph, _, result = _shrunk_half(model)
    assert result.max_abs_diff <= 1e-5
    assert result.heads == {"b0_attention": (4, 2), "b1_attention": (4, 2)}
    # The attention's own 12 output channels are a group of their own (read by a Dense).
    assert result.removed["b0_attention"] == (12, 6)
    assert result.model.get_layer("b0_attention").get_config()["output_shape"] == 6


def test_an_attention_mask_input_is_consumed_not_pruned():
    ids = keras.Input((TOKENS,), dtype="int32")
    pairs = keras.Input((TOKENS, TOKENS), name="pairs")
    mask = L.Dense(TOKENS, activation="sigmoid", name="gate")(pairs)  # tokens x tokens
    x = L.Embedding(VOCABULARY, 8)(ids)
    x = L.MultiHeadAttention(2, 4, name="attention")(x, x, attention_mask=mask)
    out = L.Dense(3, activation="softmax")(L.GlobalAveragePooling1D()(x))
    graph = analyze(keras.Model([ids, pairs], out))
    assert [g.width for g in graph.groups if g.layers("head") == ["attention"]] == [2]
    gate = [g for g in graph.groups if g.layers("out") == ["gate"]][0]
    assert gate.blocked == "the attention mask of 'attention'"
    assert "attention" not in graph.opaque


def _gate_by_finite_difference(model, x, y, variable, index, eps=1e-2):
    """|dL/dg| for a gate g scaling ``variable[index]`` (rows along its first axis), by a
    central difference (eps 1e-2: at 1e-3 float32 round-off in the loss is a few percent of it)."""
    original = variable.numpy()
    values = []
    for sign in (1, -1):
        scaled = original.copy()
        scaled[index] *= 1 + sign * eps
        variable.assign(scaled)
        values.append(float(tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            y, model(x, training=False)))))
    variable.assign(original)
    return abs(values[0] - values[1]) / (2 * eps)


def test_the_gate_score_of_a_head_is_the_finite_difference_of_the_loss():
    model = encoder(blocks=1)
    x, y = _ids(16), np.arange(16) % 3
    graph = analyze(model)
    heads = [g for g in graph.groups if g.layers("head")][0]
    scores = channels.importance(model, graph.groups, "gate", [(x, y)])[heads.id]
    output_kernel = model.get_layer("b0_attention")._output_dense.kernel  # (heads, dim, width)
    for head in range(4):
        assert scores[head] == pytest.approx(
            _gate_by_finite_difference(model, x, y, output_kernel, head), rel=2e-2, abs=1e-6)


def test_the_gate_score_of_an_mlp_neuron_gates_its_reader():
    model = encoder(blocks=1)
    x, y = _ids(16), np.arange(16) % 3
    graph = analyze(model)
    hidden = [g for g in graph.groups if g.layers("out") == ["b0_mlp1"]][0]
    scores = channels.importance(model, graph.groups, "gate", [(x, y)])[hidden.id]
    reader = model.get_layer("b0_mlp2").kernel  # (neurons, width)
    for neuron in (0, 5, 11):
        assert scores[neuron] == pytest.approx(
            _gate_by_finite_difference(model, x, y, reader, neuron), rel=2e-2, abs=1e-6)


def test_the_gate_criterion_needs_data():
    model = encoder(blocks=1)
    graph = analyze(model)
    with pytest.raises(ValueError, match="criterion 'gate' needs `data`"):
        channels.importance(model, graph.groups, "gate")


@pytest.mark.integration
def test_a_shrunk_model_from_masks_held_during_steps_equals_the_trained_one():
    """GroupMasks over heads: the optimizer's steps cannot revive a pruned head."""
    model = encoder(blocks=1)
    graph = analyze(model)
    keep = channels.choose(model, graph.groups, 0.5)
    masks = channels.GroupMasks(graph.groups, model)
    masks.set_keep(keep)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    masks.attach(model)
    model.fit(_ids(32), np.arange(32) % 3, epochs=2, batch_size=8, verbose=0)
    masks.detach(model)
    result = channels.shrink(model, graph.groups, keep, check_inputs=_ids(), masked=True)
    assert result.max_abs_diff <= 1e-5 and result.heads == {"b0_attention": (4, 2)}


def test_surgery_keeps_heads_when_nothing_is_dropped():
    model = encoder(blocks=1)
    graph = analyze(model)
    keep = {g.id: np.arange(g.width) for g in channels.prunable(graph.groups)}
    result = channels.shrink(model, graph.groups, keep, check_inputs=_ids())
    assert not result.changed and result.max_abs_diff <= 1e-6
    assert isinstance(result, surgery.ShrinkResult)


def test_attention_flops_are_its_projections_and_its_two_products():
    model = encoder(width=16, heads=4, key_dim=8, mlp=24, blocks=1)
    row = [r for r in stats.layer_table(model) if r["layer"] == "b0_attention"][0]
    projections = 4 * TOKENS * 16 * 4 * 8          # q, k, v, output: 10 tokens x 16 x 4 x 8
    products = TOKENS * TOKENS * 4 * (8 + 8)        # scores and weighted values
    assert row["flops"] == projections + products and row["units"] == 4
    assert row["weights"] == 4 * 16 * 4 * 8
    mlp = [r for r in stats.layer_table(model) if r["layer"] == "b0_mlp1"][0]
    assert mlp["flops"] == TOKENS * 16 * 24         # a Dense on tokens: per token
    _, _, result = _shrunk_half(model)
    thin = [r for r in stats.layer_table(result.model) if r["layer"] == "b0_attention"][0]
    assert thin["flops"] == (projections + products) // 2 and thin["units"] == 2


@pytest.mark.parametrize("name", ["vit", "text_encoder"])
def test_the_zoo_transformers_lose_heads_and_neurons_exactly_and_the_width_under_renormalize(
        name):
    from tfprune.models import build_model

    text = name == "text_encoder"
    model = build_model(name, (TOKENS,) if text else (8, 8, 1), 3, seed=0,
                        vocabulary_size=VOCABULARY if text else None, width=16, heads=4,
                        key_dim=4, blocks=2, mlp=24, **({} if text else {"patch_size": 4}))
    _randomize(model, 0)
    x = _ids() if text else np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    graph = analyze(model)
    keep = channels.choose(model, graph.groups, 0.5)
    result = channels.shrink(model, graph.groups, keep, check_inputs=x)
    assert result.max_abs_diff <= 1e-5
    assert result.heads == {"block1_attention": (4, 2), "block2_attention": (4, 2)}
    assert result.removed == {"block1_mlp1": (24, 12), "block2_mlp1": (24, 12)}
    ratio = stats.summarize(result.model)["flops"] / stats.summarize(model)["flops"]
    assert ratio <= 0.55
    wide = analyze(model, "renormalize")
    stream = [g for g in wide.groups if "position_embedding" in g.layers("channel")]
    assert len(stream) == 1 and stream[0].blocked is None
    keep = channels.choose(model, wide.groups, 0.5)
    thin = channels.shrink(model, wide.groups, keep, check_inputs=x)
    assert thin.model.get_layer("position_embedding").embeddings.shape[-1] == 8


# -- weight pruning: every kernel, the attention projections included ------------------------

def _attention_kernels(layer):
    from tfprune.pruning.kernels import pruned_weights
    return [(np.asarray(v.numpy()), axes) for v, axes in pruned_weights(layer)]


def _fine_tune(attached, steps=3):
    x, y = _ids(16), np.arange(16) % 3
    attached.model.compile("adam", "sparse_categorical_crossentropy")
    attached.model.fit(x, y, batch_size=8, epochs=steps // 2 + 1, callbacks=attached.callbacks,
                       verbose=0)
    return attached.finish()


@pytest.mark.integration  # fine-tunes
@pytest.mark.parametrize("cross", [False, True])
def test_weight_pruning_masks_the_attention_projections_and_the_embedding(cross):
    """tfprune's wrapper calls MultiHeadAttention with its query and its value (tfmot's would
    take the value for `training`): every kernel at 80%, the classifier left dense, and the
    wrapped model computes what the stripped one does."""
    from tfprune import pruning

    model = encoder(cross=cross)
    attached = pruning.prune(model, "weight", "constant", 0.8, steps_per_epoch=2, epochs=2)
    assert attached.pruned_layers == ["embedding", "b0_attention", "b0_mlp1", "b0_mlp2",
                                      "b1_attention", "b1_mlp1", "b1_mlp2"]
    assert "classifier" in attached.skipped_layers
    finished = _fine_tune(attached)
    for name in attached.pruned_layers:
        for kernel, _ in _attention_kernels(finished.pruned.get_layer(name)):
            assert np.mean(kernel == 0) == pytest.approx(0.8, abs=0.01), name
    x = _ids()
    np.testing.assert_allclose(attached.model(x, training=False).numpy(),
                               finished.pruned(x).numpy(), atol=1e-6)
    rows = {r["layer"]: r for r in stats.layer_table(finished.pruned)}
    assert rows["embedding"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert rows["b0_attention"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert stats.summarize(finished.pruned, attached.pruned_layers)["pruned_sparsity"] == \
        pytest.approx(0.8, abs=0.01)


def _zeros_per_group(kernel, input_axes, n=4):
    """Zeros in every group of n consecutive inputs of a kernel seen as (inputs, outputs)."""
    matrix = kernel.reshape(int(np.prod(kernel.shape[:input_axes])), -1)
    return (matrix.reshape(-1, n, matrix.shape[-1]) == 0).sum(axis=1)


@pytest.mark.parametrize("one_shot", [pytest.param(False, marks=pytest.mark.integration), True])
def test_two_of_four_along_every_projections_inputs(one_shot):
    """2:4 on the rank-3 attention kernels (query/key/value: the width is the input; output:
    heads x value_dim) as on a Dense: exactly 2 zeros in every 4 consecutive inputs, whether
    fine-tuned or pruned once; the embedding table is left out with the reason."""
    from tfprune import pruning

    model = encoder()
    if one_shot:
        attached = pruning.prune_once(model, "weight", 0.5, sparsity_m_by_n=(2, 4))
        pruned = attached.model
    else:
        attached = pruning.prune(model, "weight", "constant", 0.5, steps_per_epoch=2, epochs=2,
                                 sparsity_m_by_n=(2, 4))
        pruned = _fine_tune(attached).pruned
    assert "embedding" not in attached.pruned_layers
    assert "looked up, not multiplied" in attached.skipped_layers["embedding"]
    for name in ("b0_attention", "b1_attention", "b0_mlp1", "b1_mlp2"):
        kernels = _attention_kernels(pruned.get_layer(name))
        assert [axes for _, axes in kernels] == ([1, 1, 1, 2] if "attention" in name else [1])
        for kernel, axes in kernels:
            np.testing.assert_array_equal(_zeros_per_group(kernel, axes), 2)


def test_two_of_four_skips_an_attention_whose_inputs_do_not_divide():
    from tfprune.pruning.core import select_layers

    model = encoder(key_dim=6)  # the output projection's inputs: heads x 6, groups of 4 straddle
    selected, skipped = select_layers(model, "weight", m_by_n=(2, 4))
    assert "b0_attention" not in selected and "b0_mlp1" in selected
    assert skipped["b0_attention"] == "input depth not divisible by 4 (needed for 2:4)"


def test_the_deciding_methods_leave_an_attention_dense_and_say_why():
    from tfprune import pruning

    attached = pruning.prune(encoder(), "dynamic", steps_per_epoch=2, epochs=2,
                             dynamic={"granularity": "weight"})
    assert "b0_mlp1" in attached.pruned_layers and "b0_attention" not in attached.pruned_layers
    assert "read one kernel per layer" in attached.skipped_layers["b0_attention"]


def test_sensitivity_labels_a_head_group_by_its_attention():
    graph = analyze(encoder())
    labels = [group_label(g) for g in graph.groups if g.layers("head")]
    assert [label.split(" ", 1)[1] for label in labels] == ["b0_attention heads",
                                                            "b1_attention heads"]
    hidden = [g for g in graph.groups if g.layers("out") == ["b0_mlp1"]][0]
    assert group_label(hidden) == f"g{hidden.id} b0_mlp1"
