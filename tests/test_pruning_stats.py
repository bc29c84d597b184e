import numpy as np
import pytest

from tfprune.keras import keras
from tfprune.pruning import stats

L = keras.layers


def tiny_model():
    inputs = keras.Input((4, 4, 1))
    x = L.Conv2D(2, 3, padding="same", name="conv")(inputs)  # 16 positions x 18 weights
    x = L.Flatten()(x)
    out = L.Dense(3, name="dense")(x)  # 32 x 3
    model = keras.Model(inputs, out)
    conv = np.ones((3, 3, 1, 2), np.float32)
    conv[..., 1] = 0  # one dead filter: 9 of 18 weights zero
    dense = np.zeros((32, 3), np.float32)
    dense[:8, 0] = 1  # 8 of 96 non-zero, one unit alive
    model.get_layer("conv").set_weights([conv, np.zeros(2, np.float32)])
    model.get_layer("dense").set_weights([dense, np.ones(3, np.float32)])
    return model


def test_layer_table_by_hand():
    rows = {r["layer"]: r for r in stats.layer_table(tiny_model())}
    assert rows["conv"] == {"layer": "conv", "type": "Conv2D", "weights": 18, "nonzeros": 9,
                            "sparsity": 0.5, "units": 2, "units_kept": 1,
                            "flops": 16 * 18, "nonzero_flops": 16 * 9}
    assert rows["dense"]["nonzeros"] == 8 and rows["dense"]["units_kept"] == 1
    assert rows["dense"]["flops"] == 96 and rows["dense"]["nonzero_flops"] == 8


def test_summary_uses_shrinkbench_definitions():
    summary = stats.summarize(tiny_model(), pruned_layers=["dense"])
    params = 18 + 2 + 96 + 3
    nonzero = 9 + 0 + 8 + 3
    assert summary["params"] == params and summary["nonzero_params"] == nonzero
    assert summary["compression_ratio"] == pytest.approx(params / nonzero)
    assert summary["flops"] == 16 * 18 + 96
    assert summary["theoretical_speedup"] == pytest.approx((16 * 18 + 96) / (16 * 9 + 8))
    assert summary["pruned_sparsity"] == pytest.approx(1 - 8 / 96)
    assert summary["sparsity"] == pytest.approx(1 - 17 / 114)
