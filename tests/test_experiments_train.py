"""The experiments/train.py script, run as a user runs it."""

import json

import pytest


def assert_clean_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_unknown_dataset_and_model_list_choices(python, tmp_path):
    result = python(["-m", "experiments.train", "--dataset=imagenet", f"--output_dir={tmp_path}"])
    assert_clean_error(result, "--dataset=imagenet", "cifar10|cifar100|digits|fashion_mnist|mnist")
    result = python(["-m", "experiments.train", "--model=alexnet", f"--output_dir={tmp_path}"])
    assert_clean_error(result, "--model=alexnet", "cnn|mlp|mobilenetv2|resnet20|resnet44|vgg16")


@pytest.mark.parametrize("flag, fragment", [
    ("--epochs=-2", "--epochs=-2"),
    ("--learning_rate=0", "--learning_rate must be > 0"),
    ("--learning_rate=-0.1", "--learning_rate must be > 0"),
    ("--batch_size=0", "--batch_size=0"),
])
def test_invalid_numbers_are_refused(python, tmp_path, flag, fragment):
    result = python(["-m", "experiments.train", flag, f"--output_dir={tmp_path}/run"])
    assert_clean_error(result, fragment)
    assert not (tmp_path / "run").exists()


def test_missing_tfds_data_is_a_clean_error(python, tmp_path):
    result = python(["-m", "experiments.train", "--dataset=cifar10", f"--data_dir={tmp_path}",
                     f"--output_dir={tmp_path}/run"])
    assert_clean_error(result, "not prepared", "--dataset=digits")


def test_tiny_run_prints_where_results_are(python, tmp_path):
    out = tmp_path / "run"
    result = python(["-m", "experiments.train", "--model=mlp", "--epochs=2", f"--output_dir={out}"])
    assert result.returncode == 0, result.stderr
    assert f"results: {out}/metrics.json" in result.stdout
    assert "epoch 2/2" in result.stdout
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("model, floor", [("cnn", 0.98), ("mlp", 0.96)])
def test_default_digits_baselines_reach_their_accuracy(python, tmp_path, model, floor):
    out = tmp_path / model
    result = python(["-m", "experiments.train", f"--model={model}", f"--output_dir={out}"])
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= floor, metrics
