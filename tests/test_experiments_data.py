"""Your own data through the scripts, as a user runs them: an npz file and an image folder
(written by the test) through train, prune and export, and a data set registered in Python."""

import json

import numpy as np
import pytest

from test_datasets import write_folder
from test_experiments_train import assert_clean_error

pytestmark = pytest.mark.integration  # every test trains or starts a process


def _write_npz(path):
    rng = np.random.default_rng(0)
    labels = np.arange(240) % 3
    images = rng.integers(0, 60, (240, 10, 10), dtype=np.uint8)
    for c in range(3):  # learnable: class c is bright in band c
        images[labels == c, 3 * c:3 * c + 3, :] += 150
    np.savez(path, x_train=images, y_train=labels)
    return path


@pytest.mark.parametrize("kind", ["npz", "folder"])
def test_own_data_through_train_prune_and_export(python, tmp_path, kind):
    if kind == "npz":
        dataset = f"npz:{_write_npz(tmp_path / 'mine.npz')}"
        extra = []
    else:
        dataset = f"folder:{write_folder(str(tmp_path / 'pets'), count=20, size=(12, 12))}"
        extra = ["--image_size=8"]
    train = python(["-m", "experiments.train", f"--dataset={dataset}", "--model=cnn",
                    "--epochs=2", f"--output_dir={tmp_path}/base"] + extra)
    assert train.returncode == 0, train.stderr[-3000:]
    metrics = json.loads((tmp_path / "base" / "metrics.json").read_text())
    shape = (10, 10, 1) if kind == "npz" else (8, 8, 1)
    config = json.loads((tmp_path / "base" / "config.json").read_text())
    assert config["dataset"] == dataset and metrics["test_accuracy"] > 0
    prune = python(["-m", "experiments.prune", f"--dataset={dataset}", "--model=cnn",
                    f"--baseline={tmp_path}/base/model.keras", "--method=unit",
                    "--target_sparsity=0.5", "--fine_tune_epochs=1",
                    f"--output_dir={tmp_path}/pruned"] + extra)
    assert prune.returncode == 0, prune.stderr[-3000:]
    pruned = json.loads((tmp_path / "pruned" / "metrics.json").read_text())
    assert pruned["shrink"]["removed"]
    export = python(["-m", "experiments.export_tflite", f"--dataset={dataset}",
                     f"--model_path={tmp_path}/pruned/shrunk.keras", "--quantizations=float32,int8",
                     "--latency_runs=5", "--representative_count=10",
                     f"--output_dir={tmp_path}/tflite"] + extra)
    assert export.returncode == 0, export.stderr[-3000:]
    rows = json.loads((tmp_path / "tflite" / "comparison.json").read_text())["rows"]
    assert [r["variant"] for r in rows] == ["float32", "int8"]
    import tfprune  # noqa: F401
    from tfprune.models import load_model

    assert tuple(load_model(str(tmp_path / "pruned" / "shrunk.keras")).input_shape[1:]) == shape


def test_bad_own_data_is_a_clean_error(python, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((4, 8, 8)))
    result = python(["-m", "experiments.train", f"--dataset=npz:{bad}", f"--output_dir={tmp_path}/run"])
    assert_clean_error(result, "must hold arrays x_train and y_train")
    empty = write_folder(str(tmp_path / "pets"))
    (tmp_path / "pets" / "empty").mkdir()
    result = python(["-m", "experiments.train", f"--dataset=folder:{empty}",
                     f"--output_dir={tmp_path}/run"])
    assert_clean_error(result, "holds no images")
    assert not (tmp_path / "run").exists()


def test_dataset_registered_before_flags_are_parsed(python, tmp_path):
    code = (
        "import sys, numpy as np\n"
        "import tfprune\n"
        "from tfprune.data import register_dataset, DatasetSpec, Splits\n"
        "def loader(spec, data_dir, validation_fraction, split_seed):\n"
        "    rng = np.random.default_rng(0)\n"
        "    return Splits.from_arrays(rng.random((80, 6, 6)).astype('float32'), np.arange(80) % 2,\n"
        "                              validation_fraction=validation_fraction, split_seed=split_seed)\n"
        "register_dataset(DatasetSpec('my_data', (6, 6, 1), 2, 'mine', loader))\n"
        "from tfprune.cli import common, train\n"
        f"sys.argv = ['train', '--dataset=my_data', '--model=mlp', '--epochs=1', '--output_dir={tmp_path}/run']\n"
        "common.run(train.main)\n")
    result = python(["-c", code])
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dataset"] == "my_data"
