import json

import numpy as np
import pytest

from tfprune.errors import TfpruneError
from tfprune.models import build_model
from tfprune.pruning import allocation, oneshot

GRID = (0.0, 0.5, 0.9)


def test_losses_are_made_monotone_and_read_back_by_interpolation():
    losses = allocation.monotone_losses([0.9, 0.92, 0.8, 0.85])  # noise: 0.92 is not a gain
    assert np.allclose(losses, [0.0, 0.0, 0.1, 0.1])
    assert allocation.sparsity_at_loss(GRID, [0.0, 0.1, 0.3], 0.05) == pytest.approx(0.25)
    assert allocation.sparsity_at_loss(GRID, [0.0, 0.1, 0.3], 0.2) == pytest.approx(0.7)
    assert allocation.sparsity_at_loss(GRID, [0.0, 0.1, 0.3], 1.0) == 0.9


def test_equalize_gives_the_robust_layer_more_and_meets_the_target_exactly():
    curves = {"fragile": [0.9, 0.5, 0.1], "robust": [0.9, 0.9, 0.85]}
    weights = {"fragile": 100, "robust": 300}
    targets = allocation.equalize(curves, GRID, weights, 0.6)
    assert targets["robust"] > 0.6 > targets["fragile"]
    assert allocation.global_sparsity(targets, weights) == pytest.approx(0.6, abs=1e-6)
    # Free room at no loss beyond the target is shared in proportion.
    free = allocation.equalize({"a": [0.9, 0.9, 0.9], "b": [0.9, 0.9, 0.1]}, GRID,
                               {"a": 1, "b": 1}, 0.3)
    assert free["a"] == pytest.approx(0.9 * 0.3 / 0.7) and free["b"] == pytest.approx(0.5 * 0.3 / 0.7)


def test_within_loss_prunes_each_layer_to_the_allowed_loss():
    curves = {"fragile": [0.9, 0.5, 0.1], "robust": [0.9, 0.9, 0.85]}
    assert allocation.within_loss(curves, GRID, 0.05) == pytest.approx(
        {"fragile": 0.0625, "robust": 0.9})  # 0.05 of the 0.4 lost at 0.5


def test_a_target_the_grid_cannot_reach_is_refused():
    with pytest.raises(TfpruneError, match=r"`target_sparsity` 0.95 cannot be met layer-wise"):
        allocation.equalize({"a": [0.9, 0.8, 0.1]}, GRID, {"a": 1}, 0.95)


@pytest.mark.parametrize("granularity", ["weight", "unit"])
def test_global_magnitude_meets_the_target_and_follows_the_magnitudes(granularity):
    model = build_model("mlp", (8, 8, 1), 10, seed=0)
    layers = [layer.name for layer in model.layers if hasattr(layer, "kernel")][:2]
    first = model.get_layer(layers[0])
    first.kernel.assign(first.kernel * 0.01)  # a layer of tiny weights goes first
    targets = allocation.global_magnitude(oneshot.layer_kernels(model, layers), 0.5, granularity)
    weights = oneshot.layer_weights(model, layers)
    assert allocation.global_sparsity(targets, weights) == pytest.approx(0.5, abs=0.02)
    assert targets[layers[0]] > 0.9 and targets[layers[1]] < 0.5


def test_files_of_per_layer_targets(tmp_path):
    path = tmp_path / "targets.json"
    path.write_text(json.dumps({"layer_sparsity": {"fc1": 0.5, "fc2": 0.25}}))
    assert allocation.read_file(str(path)) == {"fc1": 0.5, "fc2": 0.25}
    csv_path = tmp_path / "targets.csv"
    csv_path.write_text("layer,sparsity\nfc1,0.7\n")
    assert allocation.read_file(str(csv_path)) == {"fc1": 0.7}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"fc1": 1.5}))
    with pytest.raises(TfpruneError, match=r"`layer_sparsity\['fc1'\] in bad.json` must be in \[0, 1\), got 1.5"):
        allocation.read_file(str(bad))
    broken = tmp_path / "broken.csv"
    broken.write_text("name,value\nfc1,0.5\n")
    with pytest.raises(TfpruneError, match=r"cannot be read: columns name, value; expected layer, sparsity"):
        allocation.read_file(str(broken))
    with pytest.raises(TfpruneError, match=r"names layers that model 'mlp' does not have or cannot "
                                           r"prune: conv9; prunable layers: fc1, fc2"):
        allocation.check_layers({"conv9": 0.5}, ["fc1", "fc2"], "mlp", "`layer_sparsity` file")
