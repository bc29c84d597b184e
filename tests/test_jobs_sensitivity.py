import os

import pytest

from tfprune import io
from tfprune.errors import TfpruneError
from tfprune.jobs.sensitivity import SensitivityConfig, run_sensitivity

TINY = dict(model="mlp", baseline_epochs=2, batch_size=128, sparsities=(0, 0.5, 0.9),
            samples=100, targets=(0.5,))


@pytest.mark.parametrize("kwargs, message", [
    (dict(methods=("dynamic",)), r"one-shot pruning \(`fine_tune_epochs=0`\) applies to the "
                                 r"methods weight, unit, channel, not 'dynamic'"),
    (dict(methods=()), r"`methods` must not be empty"),
    (dict(sparsities=(0,)), r"`sparsities` must hold a value above 0"),
    (dict(targets=(1.0,)), r"`targets` must be in \[0, 1\), got 1.0"),
    (dict(samples=0), r"`samples` must be an integer >= 1, got 0"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(TfpruneError, match=message):
        SensitivityConfig(**kwargs)


def test_a_layer_that_does_not_exist_fails_before_the_baseline_trains(tmp_path, monkeypatch):
    from tfprune.jobs import prune as prune_job

    monkeypatch.setattr(prune_job, "train_baseline", lambda *a, **k: pytest.fail("trained"))
    out = tmp_path / "run"
    with pytest.raises(TfpruneError, match=r"`layers` names layers that cannot be pruned by "
                                           r"weight pruning: conv9; prunable layers of 'mlp'"):
        run_sensitivity(SensitivityConfig(**dict(TINY, layers=("fc1", "conv9"))), str(out))
    assert not out.exists()


@pytest.mark.integration
def test_curves_targets_and_int4_costs_are_written_and_reused(tmp_path):
    out = str(tmp_path / "run")
    summary = run_sensitivity(SensitivityConfig(**TINY), out, log=lambda _: None)
    for name in ("oneshot.csv", "sensitivity.csv", "layer_sparsity.csv", "quantization.csv",
                 "layer_sparsity_weight_0.5.json", "layer_sparsity_unit_0.5.json", "report.md",
                 "plots/oneshot.png", "plots/sensitivity_weight.png",
                 "plots/sensitivity_unit.png", "plots/quantization.png", "sensitivity.json"):
        assert os.path.exists(os.path.join(out, name)), name
    assert set(summary["oneshot"]) == {"weight", "unit"}
    for values in summary["oneshot"].values():
        assert len(values) == 3 and values[0] == summary["baseline_test_accuracy"]
    assert set(summary["layer_curves"]["weight"]) == {"fc1", "fc2"}
    targets = io.read_json(os.path.join(out, "layer_sparsity_weight_0.5.json"))
    weights = {"fc1": 64 * 300, "fc2": 300 * 100}
    overall = sum(targets["layer_sparsity"][n] * w for n, w in weights.items()) / sum(weights.values())
    assert overall == pytest.approx(0.5, abs=1e-3)
    assert set(summary["int4_costs"]) == {"fc1", "fc2", "classifier"}
    for cost in summary["int4_costs"].values():
        assert cost["output_error"] > 0  # int4 weights change the outputs
    report = open(os.path.join(out, "report.md")).read()
    assert "## One-shot pruning of the whole model" in report and "at int4 weights" in report
    # Finished: a rerun reads it back; a stage already saved is not measured again.
    assert run_sensitivity(SensitivityConfig(**TINY), out, log=lambda _: None) == summary
    os.remove(os.path.join(out, "sensitivity.json"))
    lines = []
    run_sensitivity(SensitivityConfig(**TINY), out, log=lines.append)
    assert any(line.startswith("layers_weight: reused") for line in lines)



def test_layers_are_checked_against_a_baseline_file(tmp_path):
    from tfprune.keras import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="classifier")(x)
    path = str(tmp_path / "mine.keras")
    keras.Model(inputs, outputs).save(path)
    out = tmp_path / "run"
    with pytest.raises(TfpruneError, match=r"weight pruning: fc1; prunable layers of '.*': "
                                           r"hidden, classifier"):
        run_sensitivity(SensitivityConfig(**dict(TINY, baseline=path, layers=("fc1",))), str(out))
    assert not out.exists()
    summary = run_sensitivity(SensitivityConfig(**dict(TINY, baseline=path, layers=("hidden",),
                                                       quantization=False)), str(out),
                              log=lambda _: None)
    assert set(summary["layer_curves"]["weight"]) == {"hidden"}
