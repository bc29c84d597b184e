import json
import math

import numpy as np
import pytest

from tfprune.errors import TfpruneError
from tfprune.models import build_model
from tfprune.pruning import adaptive, channels, dynamic, prune, strip, stats
from tfprune.pruning.options import DynamicConfig


def test_is_stable():
    assert not dynamic.is_stable([1.0, 1.01], 0.05, 2)  # not enough history
    assert dynamic.is_stable([1.0, 1.01, 1.02], 0.05, 2)
    assert not dynamic.is_stable([1.0, 1.2, 1.21], 0.05, 2)


def test_pq_index_by_hand():
    assert adaptive.pq_index(np.ones(16)) == pytest.approx(0.0)
    one_hot = np.zeros(16)
    one_hot[3] = 5.0
    assert adaptive.pq_index(one_hot) == pytest.approx(0.0)  # zeros are pruned: d = 1
    w = np.array([4.0, 1.0, 1.0, 1.0])  # ||w||_0.5 = (2 + 3)^2 = 25, ||w||_1 = 7, d = 4
    assert adaptive.pq_index(w) == pytest.approx(1 - 4 ** (1 - 2) * 25 / 7)


def test_prune_amount_formula():
    d, index = 1000, 0.2
    r = adaptive.keep_bound(d, index, p=0.5, q=1.0, eta=0.0)
    assert r == pytest.approx(1000 * 1.0 * 0.8)  # (1+eta)^-2 * (1-I)^1
    assert adaptive.prune_amount(d, index) == 200
    assert adaptive.prune_amount(d, index, gamma=0.5) == 100
    assert adaptive.prune_amount(d, 0.99, beta=0.3) == 300  # capped by beta
    assert adaptive.keep_bound(d, 0.2, eta=1.0) == pytest.approx(1000 * 0.25 * 0.8)
    assert math.isclose(adaptive.keep_bound(100, 0.36, p=0.5, q=2.0), 100 * 0.64 ** (2 / 3))


@pytest.mark.parametrize("kwargs, message", [
    (dict(norm_tolerance=0.0), r"`norm_tolerance` must be in \(0, 1\), got 0.0"),
    (dict(accuracy_tolerance=1.5), r"`accuracy_tolerance` must be in \(0, 1\), got 1.5"),
    (dict(norm_fraction=-0.1), r"`norm_fraction` must be in \(0, 1\)"),
    (dict(max_sparsity=1.0), r"`max_sparsity` must be in \(0, 1\)"),
    (dict(prune_fraction=2.0), r"`prune_fraction` must be in \(0, 1\)"),
    (dict(patience=0), r"`patience` must be an integer >= 1, got 0"),
    (dict(p=1.0, q=1.0), r"PQ index needs 0 < p < q, got p=1.0, q=1.0"),
    (dict(p=2.0, q=1.0), r"PQ index needs 0 < p < q"),
    (dict(granularity="block"), r"`granularity` must be one of channel, unit, weight, got 'block'"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(TfpruneError, match=message):
        DynamicConfig(**kwargs)


def _fit(result, epochs, x, y):
    result.model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    result.model.fit(x, y, batch_size=64, epochs=epochs, validation_data=(x[:64], y[:64]),
                     verbose=0, callbacks=result.callbacks)


@pytest.mark.integration
@pytest.mark.parametrize("method, granularity", [
    ("dynamic", None), ("incremental", None), ("adaptive", None),  # each method's default
    ("dynamic", "unit"), ("incremental", "unit"), ("adaptive", "channel")])
def test_pruners_record_every_decision(tmp_path, method, granularity):
    rng = np.random.default_rng(0)
    x = rng.random((256, 8, 8, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    import tensorflow as tf

    path = tmp_path / "decisions.jsonl"
    # eta: over a few dozen channel norms the PQ bound keeps all; eta > 0 loosens it.
    config = DynamicConfig(granularity=granularity, norm_tolerance=0.5, patience=1,
                           accuracy_tolerance=0.5, norm_fraction=0.95, every=1,
                           eta=0.5 if granularity == "channel" else 0.0)
    result = prune(build_model("mlp", (8, 8, 1), 2, seed=0), method, target_sparsity=0.5,
                   steps_per_epoch=4, epochs=6, dynamic=config, decisions_path=str(path),
                   train_data=tf.data.Dataset.from_tensor_slices((x, y)).batch(64))
    resolved = result.pruner.config.granularity
    assert resolved == (granularity or {"adaptive": "weight"}.get(method, "channel"))
    _fit(result, 6, x, y)
    decisions = [json.loads(line) for line in path.read_text().splitlines()]
    events = [d for d in decisions if d["action"] == "prune"]
    assert events, decisions
    for d in events:
        assert d["sparsity_after"] > d["sparsity_before"] and d["reason"] and d["layer"] in ("fc1", "fc2")
    last = result.pruner.history[-1]["sparsity"]
    if resolved == "channel":
        # The masks hold through training, and shrink removes exactly the chosen channels.
        masks = result.masks
        shrunk = channels.shrink(result.model, masks.groups, masks.keep, check_inputs=x[:8])
        for layer, sparsity in last.items():
            units = result.model.get_layer(layer).units
            assert shrunk.model.get_layer(layer).units == round(units * (1 - sparsity))
        assert shrunk.max_abs_diff <= 1e-5
    else:
        final = {r["layer"]: r for r in stats.layer_table(strip(result.model))}
        for layer, sparsity in last.items():
            assert abs(final[layer]["sparsity"] - sparsity) < 1e-6 or resolved == "unit"
    if method == "incremental":
        assert 0 < max(last.values()) <= 0.5 + 1e-9
    if method == "adaptive":
        assert len(result.pruner.pqi) == 6


def test_rollback_restores_mask_and_weights():
    result = prune(build_model("mlp", (8, 8, 1), 10, seed=0), "dynamic", steps_per_epoch=1,
                   epochs=1, dynamic={"granularity": "unit"})
    pruner = result.pruner
    slot = pruner.slots[0]
    kernel_before, mask_before = slot.kernel_and_mask()
    saved = slot.save()
    new_mask = mask_before.copy()
    new_mask[..., :30] = 0
    slot.set_mask(new_mask)
    assert np.all(slot.kernel_and_mask()[0][..., :30] == 0)
    slot.rollback(saved)
    kernel, mask = slot.kernel_and_mask()
    np.testing.assert_array_equal(mask, mask_before)
    np.testing.assert_array_equal(kernel, kernel_before)
    np.testing.assert_array_equal(slot.wrapper.layer.bias.numpy(), saved["tied"][0])


def test_group_slots_prune_and_roll_back_every_member():
    """A group slot's columns are its channels in every layer they touch (residual Add,
    BatchNorm, consumers' input rows); a rollback restores all of them."""
    from test_pruning_channels import _trained_looking, user_net

    model = _trained_looking(user_net())
    result = prune(model, "dynamic", steps_per_epoch=1, epochs=1)
    stem = next(s for s in result.pruner.slots if "stem" in s.name.split("+"))
    assert set(stem.name.split("+")) == {"stem", "res_b"}
    kernel, mask = stem.kernel_and_mask()
    assert kernel.shape[1] == 16 and mask.all()
    before = {v.name: v.numpy() for v in result.model.variables}
    saved = stem.save()
    new_mask = mask.copy()
    new_mask[:, [1, 5]] = 0
    stem.set_mask(new_mask)
    for name in ("stem", "res_b"):
        assert not result.model.get_layer(name).kernel.numpy()[..., [1, 5]].any()
    assert not result.model.get_layer("res_a").kernel.numpy()[:, :, [1, 5], :].any()
    assert not result.model.get_layer("stem_bn").gamma.numpy()[[1, 5]].any()
    assert dynamic.layer_sparsity(stem.kernel_and_mask()[1], "channel") == pytest.approx(2 / 16)
    stem.rollback(saved)
    for v in result.model.variables:
        np.testing.assert_array_equal(v.numpy(), before[v.name], err_msg=v.name)
    assert stem.kernel_and_mask()[1].all()
    assert model.get_layer("stem").kernel.numpy()[..., [1, 5]].any()  # the baseline untouched


def test_incremental_needs_target_and_data():
    model = build_model("mlp", (8, 8, 1), 10)
    with pytest.raises(TfpruneError, match=r"`target_sparsity` must be in \(0, 1\), got 0.0"):
        prune(model, "incremental", target_sparsity=0.0, steps_per_epoch=1, epochs=1)
    with pytest.raises(TfpruneError, match="needs `train_data`"):
        prune(model, "incremental", target_sparsity=0.5, steps_per_epoch=1, epochs=1)


def test_a_rollback_of_groups_sharing_a_layer_restores_everything():
    """Two groups pruned in one event share a layer (the stem group's consumer rows and the
    pointwise group's own columns meet in `pw`'s kernel): the pruner rolls back newest first,
    and BatchNorm moving statistics, which decay while a channel is pruned, come back too."""
    from test_pruning_channels import _trained_looking, user_net

    result = prune(_trained_looking(user_net()), "dynamic", steps_per_epoch=1, epochs=1)
    model, pruner = result.model, result.pruner
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    pruner.set_model(model)
    pruner.params = {"epochs": 10}
    before = {v.name: v.numpy() for v in model.variables}
    pending = []
    for name in ("stem+res_b", "pw"):
        slot = next(s for s in pruner.slots if s.name == name)
        pending.append((slot, slot.save()))
        mask = slot.kernel_and_mask()[1]
        mask[:, [0, 2]] = 0
        slot.set_mask(mask)
    for layer in model.layers:  # what training does to pruned channels' statistics meanwhile
        if hasattr(layer, "moving_variance"):
            layer.moving_variance.assign(layer.moving_variance * 0.5)
    pruner.pending = {"val_accuracy": 0.9, "layers": pending}
    pruner.on_epoch_end(0, {"val_accuracy": 0.1})
    assert [d["action"] for d in pruner.decisions[:2]] == ["rollback", "rollback"]
    stem_bn, pw_bn = (model.get_layer(n) for n in ("stem_bn", "pw_bn"))
    for v in model.variables:
        if "moving_variance" not in v.name:  # halved above; only revived channels come back
            np.testing.assert_array_equal(v.numpy(), before[v.name], err_msg=v.name)
    for bn in (stem_bn, pw_bn):
        revived = bn.moving_variance.numpy()[[0, 2]]
        np.testing.assert_array_equal(revived, before[bn.moving_variance.name][[0, 2]])


def _taylor_data(n=64):
    rng = np.random.default_rng(1)
    x = rng.random((n, 8, 8, 1)).astype(np.float32)
    return x, (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)


@pytest.mark.integration
def test_step_taylor_sums_the_optimizers_own_gradients():
    """The sums are |w * dL/dw| of each training step (weights before the step), added up;
    the optimizer is itself again after detach."""
    import tensorflow as tf

    from tfprune.keras import keras

    x, y = _taylor_data()
    model = build_model("mlp", (8, 8, 1), 2, seed=0)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    kernel = model.get_layer("fc1").kernel
    taylor = dynamic.StepTaylor([kernel])
    assert model.trainable_variables[0] is kernel
    initial = model.get_weights()
    expected = np.zeros(kernel.shape)
    for batch in (slice(0, 32), slice(32, 64)):  # the two SGD steps of the fit below, by hand
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                y[batch], model(x[batch], training=True)))
        gradients = tape.gradient(loss, model.trainable_variables)
        expected += np.abs(kernel.numpy() * gradients[0].numpy())
        for variable, gradient in zip(model.trainable_variables, gradients):
            variable.assign_sub(0.1 * gradient)
    weights = kernel.numpy()
    model.set_weights(initial)
    taylor.attach(model)
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert taylor.steps() == 2
    np.testing.assert_allclose(taylor.read()[kernel.ref()], expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(kernel.numpy(), weights, rtol=1e-5, atol=1e-6)
    state = taylor.state()
    taylor.reset()
    assert taylor.steps() == 0 and not taylor.read()[kernel.ref()].any()
    taylor.restore(state)  # a resume puts the sums of the checkpoint back
    np.testing.assert_allclose(taylor.read()[kernel.ref()], expected, rtol=1e-4, atol=1e-7)
    taylor.detach(model)
    assert "apply_gradients" not in vars(model.optimizer)
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert taylor.steps() == 2  # detached: nothing more added


@pytest.mark.integration
def test_incremental_scores_from_the_fit_steps_not_a_pass_of_its_own(monkeypatch):
    """Under fit, no extra pass over the data; in a loop that never steps the model's optimizer
    the pruner scores over ``train_data`` instead."""
    import tensorflow as tf

    x, y = _taylor_data(128)
    passes = []
    real = dynamic.taylor_contributions
    monkeypatch.setattr(dynamic, "taylor_contributions",
                        lambda *a: (passes.append(1), real(*a))[1])
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    result = prune(build_model("mlp", (8, 8, 1), 2, seed=0), "incremental",
                   target_sparsity=0.5, steps_per_epoch=2, epochs=4,
                   dynamic=DynamicConfig(granularity="unit", every=1), train_data=data)
    _fit(result, 4, x, y)
    assert passes == [] and result.pruner.taylor.steps() == 0  # each round used and reset
    events = [d for d in result.pruner.decisions if d["action"] == "prune"]
    assert len(events) >= 2 and result.pruner.history[-1]["sparsity"]["fc1"] > 0
    # No optimizer step (a loop of its own): the pruner's own pass over train_data scores.
    other = prune(build_model("mlp", (8, 8, 1), 2, seed=0), "incremental", target_sparsity=0.5,
                  steps_per_epoch=2, epochs=4, dynamic=DynamicConfig(granularity="unit"),
                  train_data=data)
    other.model.compile("adam", "sparse_categorical_crossentropy")
    other.pruner.set_model(other.model)
    scores = other.pruner.scores()
    assert passes == [1] and len(scores) == len(other.pruner.slots)
    assert all(s.shape == slot.kernel_and_mask()[0].shape and s.any()
               for s, slot in zip(scores, other.pruner.slots))


@pytest.mark.integration
def test_step_taylor_sums_are_the_same_on_two_replicas_as_on_one(python):
    """Under MirroredStrategy the batch's gradient (summed over replicas) counts, not each
    replica's own: the sums match one device's for the same global batch."""
    from conftest import MIRRORED_PREAMBLE

    code = MIRRORED_PREAMBLE + """
from tfprune.pruning import dynamic
sums = {}
for name, scope in (("one", tf.distribute.get_strategy()), ("two", strategy)):
    with scope.scope():
        model = build_model("mlp", (8, 8, 1), 10, seed=0)
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    taylor = dynamic.StepTaylor([model.get_layer("fc1").kernel])
    taylor.attach(model)
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    sums[name] = (taylor.read()[model.get_layer("fc1").kernel.ref()], taylor.steps(),
                  model.get_layer("fc1").kernel.numpy())
one, two = sums["one"], sums["two"]
print("replicas", strategy.num_replicas_in_sync, "steps", one[1], two[1])
print("weights", np.allclose(one[2], two[2], rtol=1e-4, atol=1e-6))
print("sums", np.allclose(one[0], two[0], rtol=1e-3, atol=1e-7), float(one[0].sum()), float(two[0].sum()))
"""
    result = python(["-c", code])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2 steps 2.0 2.0" in result.stdout
    assert "weights True" in result.stdout
    assert "sums True" in result.stdout, result.stdout
