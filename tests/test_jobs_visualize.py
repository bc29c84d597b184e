"""The visualize job and script on tiny models (real maths in test_results_attribution.py)."""

import json
import os
import shutil

import numpy as np
import pytest

from tfprune import io, summaries, training
from tfprune.errors import TfpruneError
from tfprune.jobs.visualize import VisualizeConfig, pick_images, run_visualize, sweep_entries
from tfprune.models import build_model, load_model

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
    assert open(tmp_path / "drift.csv").readline().startswith(
        "model,seed,method,schedule,target_sparsity,layer_sparsity,params_removed,accuracy,"
        "prediction_change")
    model = load_model(pruned, "pruned")  # zeros over all of the dense model's parameters
    zeros = sum(int(np.sum(w == 0)) for w in model.get_weights())
    assert rows["pruned"]["params_removed"] == pytest.approx(zeros / model.count_params())
    assert rows["dense"]["params_removed"] < rows["pruned"]["params_removed"] / 10


def _fake_sweep(root, dense, pruned, seeds=(0,)):
    """A sweep's layout around two saved models: baselines and one finished variant per seed
    (the sweep itself is tested in test_jobs_sweep.py; here only what visualize reads)."""
    io.write_json(os.path.join(root, "config.json"), {"dataset": "digits", "split_seed": 0,
                                                      "data_dir": None, "image_size": None})
    for seed in seeds:
        base = os.path.join(root, "baselines", f"seed{seed}")
        os.makedirs(base)
        shutil.copy(dense, os.path.join(base, "model.keras"))
        io.write_json(os.path.join(base, "metrics.json"), {"model_path": "model.keras"})
        variant = os.path.join(root, "variants", f"seed{seed}", "weight-constant-0.9")
        os.makedirs(variant)
        shutil.copy(pruned, os.path.join(variant, "pruned.keras"))
        io.write_json(os.path.join(variant, "variant.json"), {
            "seed": seed, "method": "weight", "schedule": "constant", "target_sparsity": 0.9,
            "rows": [{"deployed": "pruned"}]})
        dense_dir = os.path.join(root, "variants", f"seed{seed}", "dense")  # no model: skipped
        os.makedirs(dense_dir)
        io.write_json(os.path.join(dense_dir, "variant.json"), {
            "seed": seed, "method": "dense", "rows": [{"deployed": "baseline"}]})


def test_visualize_a_sweep_directory(tmp_path, two_models):
    root = str(tmp_path / "sweep")
    _fake_sweep(root, *two_models, seeds=(0, 1))
    config = VisualizeConfig(run_dir=root, dataset="fashion_mnist", **FAST)
    assert config.dataset == "digits"  # the sweep's data, whatever was given
    assert [(e.name, e.seed, e.method) for e in config.entries()] == [
        ("dense", 0, "dense"), ("weight-constant-0.9", 0, "weight"),
        ("seed1/dense", 1, "dense"), ("seed1/weight-constant-0.9", 1, "weight")]
    result = run_visualize(config, os.path.join(root, "visualize"), log=lambda _: None)
    rows = {r["model"]: r for r in result["rows"]}
    # Each seed's variant against its own seed's baseline (the same files here: same drift).
    assert rows["seed1/dense"]["saliency_spearman"] == pytest.approx(1.0)
    for key in ("saliency_spearman", "grad_cam_top_k_overlap", "prediction_change"):
        assert rows["seed1/weight-constant-0.9"][key] == pytest.approx(
            rows["weight-constant-0.9"][key])
    assert rows["weight-constant-0.9"]["target_sparsity"] == 0.9
    assert 0.1 < rows["weight-constant-0.9"]["params_removed"] < 0.9
    assert result["images"] == ["plots/saliency.png", "plots/grad_cam.png",
                                "plots/class_models.png", "plots/drift_vs_sparsity.png"]
    events = summaries.read_events(os.path.join(root, "visualize", "tensorboard"))
    assert set(events["images"]) == {"saliency", "grad_cam", "class_models",
                                     "drift_vs_sparsity"}


def test_layer_wise_variants_of_a_sweep_are_told_apart(tmp_path, two_models):
    root = str(tmp_path / "sweep")
    _fake_sweep(root, *two_models)
    for layers in ("auto", "global"):
        variant = os.path.join(root, "variants", "seed0", f"weight-constant-0.9-{layers}")
        os.makedirs(variant)
        shutil.copy(two_models[1], os.path.join(variant, "pruned.keras"))
        io.write_json(os.path.join(variant, "variant.json"), {
            "seed": 0, "method": "weight", "schedule": "constant", "target_sparsity": 0.9,
            "layer_sparsity": layers, "rows": [{"deployed": "pruned"}]})
    entries = sweep_entries(root)
    assert [(e.name, e.layer_sparsity) for e in entries] == [
        ("dense", None), ("weight-constant-0.9", "uniform"),
        ("weight-constant-0.9-auto", "auto"), ("weight-constant-0.9-global", "global")]
    assert entries[2].path.endswith(os.path.join("weight-constant-0.9-auto", "pruned.keras"))


def test_a_run_dir_without_models_says_what_it_expected(tmp_path, two_models):
    with pytest.raises(TfpruneError, match=r"either `models` .* or `run_dir` .*not neither"):
        VisualizeConfig()
    with pytest.raises(TfpruneError, match="not both"):
        VisualizeConfig(models=(two_models[0],), run_dir=str(tmp_path))
    with pytest.raises(TfpruneError, match=r"`run_dir` .* is not a sweep's output directory "
                                           r"\(config.json, baselines.*no such directory"):
        VisualizeConfig(run_dir=str(tmp_path / "missing"))
    with pytest.raises(TfpruneError, match="no config.json in it"):
        VisualizeConfig(run_dir=str(tmp_path))
    root = str(tmp_path / "sweep")
    _fake_sweep(root, *two_models)
    shutil.rmtree(os.path.join(root, "variants", "seed0", "weight-constant-0.9"))
    with pytest.raises(TfpruneError, match=r"no models to compare: expected a sweep's output "
                                           r"directory .*found a baseline but no finished "
                                           r"variant"):
        VisualizeConfig(run_dir=root)
    shutil.rmtree(os.path.join(root, "baselines"))
    with pytest.raises(TfpruneError, match="found no trained baseline"):
        VisualizeConfig(run_dir=root)


def test_pick_images_takes_each_class_then_mistakes():
    labels = np.array([0, 1, 0, 1, 2, 2])
    predictions = [np.array([0, 1, 1, 1, 2, 0])]
    assert pick_images(labels, predictions, 1, 2) == [0, 1, 4, 2, 5]
    assert pick_images(labels, predictions, 2, 0) == [0, 2, 1, 3, 4, 5]


@pytest.mark.integration
def test_bad_input(tmp_path, two_models, python):
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


def test_text_data_is_refused_before_any_model_is_loaded(tmp_path):
    with pytest.raises(TfpruneError, match="do not apply to token ids: dataset 'fortunes'"):
        VisualizeConfig(models=(str(tmp_path / "not-read.keras"),), dataset="fortunes")
