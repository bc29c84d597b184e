import os

import pytest

from tfprune import io
from tfprune.errors import RunDirectoryError


def test_write_json_roundtrip_and_no_temp_files(tmp_path):
    import numpy as np

    path = tmp_path / "sub" / "m.json"
    io.write_json(path, {"a": np.float32(0.5), "b": np.int64(3), "c": np.arange(2)})
    assert io.read_json(path) == {"a": 0.5, "b": 3, "c": [0, 1]}
    assert os.listdir(tmp_path / "sub") == ["m.json"]


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "m.txt"
    io.write_text(path, "old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["m.txt"]


def test_prepare_run_dir(tmp_path):
    run = tmp_path / "run"
    assert io.prepare_run_dir(run, {"epochs": 3}) is False
    assert io.prepare_run_dir(run, {"epochs": 3}) is True  # same run: resume
    with pytest.raises(RunDirectoryError, match=r"different configuration \(differs in: epochs\).*--overwrite"):
        io.prepare_run_dir(run, {"epochs": 4})
    assert io.prepare_run_dir(run, {"epochs": 4}, overwrite=True) is False
    assert io.read_json(run / "config.json") == {"epochs": 4}


def test_prepare_run_dir_refuses_foreign_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="not empty and holds no tfprune config.json"):
        io.prepare_run_dir(tmp_path, {"epochs": 3})
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_overwrite_removes_the_finished_marker(tmp_path):
    run = tmp_path / "run"
    io.prepare_run_dir(run, {"epochs": 3}, marker="metrics.json")
    io.write_json(run / "metrics.json", {"accuracy": 0.9})
    assert io.prepare_run_dir(run, {"epochs": 3}, marker="metrics.json") is True
    assert (run / "metrics.json").exists()  # same run: kept
    io.prepare_run_dir(run, {"epochs": 4}, overwrite=True, marker="metrics.json")
    assert not (run / "metrics.json").exists()  # a new run: the old result cannot pass as its own
