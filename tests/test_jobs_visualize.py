"""The visualize job and script on tiny models (real maths in test_results_attribution.py)."""

import json
import os

import numpy as np
import pytest

from tfprune import training
from tfprune.errors import TfpruneError
from tfprune.jobs.visualize import VisualizeConfig, pick_images, run_visualize
from tfprune.models import build_model

FAST = dict(per_class=1, misclassified=1, drift_sample=40, smoothgrad_samples=2,
            class_model_steps=3)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """A cnn and a copy with 90% of its conv2 kernel zeroed (a stand-in for a pruned model)."""
    out = tmp_path_factory.mktemp("vis_models")
    dense = build_model("cnn", (8, 8, 1), 10, seed=0)
    training.save_model(dense, str(out / "dense.keras"))
    kernel, bias = dense.get_layer("conv2").get_weights()
    small = np.abs(kernel) < np.quantile(np.abs(kernel), 0.9)
    dense.get_layer("conv2").set_weights([np.where(small, 0, kernel), bias])
    training.save_model(dense, str(out / "pruned.keras"))
    return str(out / "dense.keras"), str(out / "pruned.keras")


def test_visualize_writes_grids_and_drift(tmp_path, two_models):
    dense, pruned = two_models
    lines = []
    result = run_visualize(VisualizeConfig(models=(f"dense={dense}", pruned), **FAST),
                           str(tmp_path), log=lines.append)
    for name in ("saliency.png", "grad_cam.png", "class_models.png"):
        assert os.path.getsize(tmp_path / "plots" / name) > 5000, name
    rows = {r["model"]: r for r in json.load(open(tmp_path / "drift.json"))["rows"]}
    assert set(rows) == {"dense", "pruned"}
    assert rows["dense"]["saliency_spearman"] == pytest.approx(1.0)
    assert rows["dense"]["prediction_change"] == 0.0
    assert rows["pruned"]["saliency_spearman"] < 1.0
    assert 0 <= rows["pruned"]["grad_cam_top_k_overlap"] <= 1
    assert result["drift_sample"] == 40
    assert open(tmp_path / "drift.csv").readline().startswith("model,accuracy,prediction_change")


def test_pick_images_takes_each_class_then_mistakes():
    labels = np.array([0, 1, 0, 1, 2, 2])
    predictions = [np.array([0, 1, 1, 1, 2, 0])]
    assert pick_images(labels, predictions, 1, 2) == [0, 1, 4, 2, 5]
    assert pick_images(labels, predictions, 2, 0) == [0, 2, 1, 3, 4, 5]


def test_bad_input(tmp_path, two_models, python):
    with pytest.raises(TfpruneError, match="at least one saved model"):
        VisualizeConfig(models=())
    with pytest.raises(TfpruneError, match="names must differ"):
        VisualizeConfig(models=(f"a={two_models[0]}", f"a={two_models[1]}"))
    with pytest.raises(TfpruneError, match="`models`"):
        VisualizeConfig(models=(str(tmp_path / "missing.keras"),))
    done = python(["-m", "experiments.visualize", f"--models={two_models[0]}", "--layer=fc1",
                   f"--output_dir={tmp_path / 'out'}"])
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "valid layers: conv1, conv2" in errors[0]
    assert not (tmp_path / "out").exists()
