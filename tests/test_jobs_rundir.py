import pytest

from tfprune import io
from tfprune.errors import RunDirectoryError
from tfprune.jobs.rundir import prepare_run_dir


def test_prepare_run_dir(tmp_path):
    run = tmp_path / "run"
    assert prepare_run_dir(run, {"epochs": 3}) is False
    assert prepare_run_dir(run, {"epochs": 3}) is True  # same run: resume
    with pytest.raises(RunDirectoryError, match=r"different configuration \(differs in: epochs\).*--overwrite"):
        prepare_run_dir(run, {"epochs": 4})
    assert prepare_run_dir(run, {"epochs": 4}, overwrite=True) is False
    assert io.read_json(run / "config.json") == {"epochs": 4}


def test_prepare_run_dir_refuses_foreign_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="not empty and holds no tfprune config.json"):
        prepare_run_dir(tmp_path, {"epochs": 3})
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_overwrite_removes_the_finished_marker(tmp_path):
    run = tmp_path / "run"
    prepare_run_dir(run, {"epochs": 3}, marker="metrics.json")
    io.write_json(run / "metrics.json", {"accuracy": 0.9})
    assert prepare_run_dir(run, {"epochs": 3}, marker="metrics.json") is True
    assert (run / "metrics.json").exists()  # same run: kept
    prepare_run_dir(run, {"epochs": 4}, overwrite=True, marker="metrics.json")
    assert not (run / "metrics.json").exists()  # a new run: the old result cannot pass as its own
