import os

import pytest

from tfprune import io


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


def test_temporary_paths_are_in_flight_until_renamed_or_removed(tmp_path):
    path = tmp_path / "a.txt"
    with io.atomic_path(path) as tmp:
        assert tmp in io.in_flight()
    assert tmp not in io.in_flight() and os.listdir(tmp_path) == ["a.txt"]
    directory = io.temp_dir("tfprune_test_")
    assert directory in io.in_flight() and os.path.isdir(directory)
    io.remove_temp(directory)
    assert directory not in io.in_flight() and not os.path.exists(directory)
