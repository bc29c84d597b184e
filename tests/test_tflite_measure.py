import os

import numpy as np
import pytest

from tfprune.errors import TfpruneError
from tfprune.models import build_model
from tfprune.tflite import export
from tfprune.tflite.measure import convert_and_measure, time_together


def test_representative_of_wrong_shape_writes_nothing(tmp_path):
    model = build_model("mlp", (8, 8, 1), 10)
    x = np.zeros((4, 8, 8, 1), np.float32)
    with pytest.raises(TfpruneError, match="representative_data"):
        convert_and_measure(model, x, np.zeros(4), np.zeros((4, 9, 9, 1)), ["int8"], [False],
                            str(tmp_path), log=lambda _: None)
    assert os.listdir(tmp_path) == []


@pytest.fixture
def conversions(monkeypatch):
    """The (quantization, sparse) of every converter call, in order."""
    calls = []
    original = export.to_tflite

    def counting(model, quantization="float32", representative_data=None, sparse=False,
                 traced=None):
        calls.append((quantization, sparse))
        return original(model, quantization, representative_data, sparse, traced=traced)

    monkeypatch.setattr(export, "to_tflite", counting)
    return calls


def test_each_conversion_happens_once(tmp_path, conversions):
    calls = conversions
    model = build_model("mlp", (8, 8, 1), 10)
    x = np.random.default_rng(0).random((8, 8, 8, 1)).astype(np.float32)
    rows = convert_and_measure(model, x, np.arange(8), x, ["float32", "int8"], [False],
                               str(tmp_path), latency_runs=2, warmup=0, log=lambda _: None,
                               sparse_sizes=True)
    assert sorted(calls) == [("float32", False), ("float32", True), ("int8", False), ("int8", True)]
    assert all(r["sparse_bytes"] > 0 for r in rows)


def test_time_together_interleaves_shuffled_rounds(tmp_path, monkeypatch):
    from tfprune.tflite import evaluate

    calls = []

    class FakeInterpreter:
        def __init__(self, name):
            self.name = name

        def invoke(self):
            calls.append(self.name)

    monkeypatch.setattr(evaluate, "load", lambda path, num_threads=1, **_: evaluate.LoadedModel(
        FakeInterpreter(os.path.basename(path)), "fake", num_threads=num_threads))
    monkeypatch.setattr(evaluate, "prepare_single", lambda loaded, example: None)
    files = [str(tmp_path / f"{name}.tflite") for name in "abc"]
    timings = time_together(files, None, rounds=4, runs_per_round=2, warmup=1, seed=0)
    assert sorted(os.path.basename(f) for f in timings) == ["a.tflite", "b.tflite", "c.tflite"]
    for figures in timings.values():
        assert figures["latency_runs"] == 8 and figures["latency_rounds"] == 4
        assert figures["latency_ms_median"] >= 0 and figures["delegate"] == "fake"
    timed = calls[3:]  # after one warm-up call each
    assert len(timed) == 3 * 4 * 2
    # Each round visits every file once, runs_per_round calls in a row, in a shuffled order.
    rounds = [tuple(timed[i:i + 6:2]) for i in range(0, len(timed), 6)]
    assert all(sorted(r) == ["a.tflite", "b.tflite", "c.tflite"] for r in rounds)
    assert len(set(rounds)) > 1  # the order changes between rounds
    calls.clear()
    time_together(files, None, rounds=4, runs_per_round=2, warmup=1, seed=0)
    assert calls[3:] == timed  # seeded: the same order again


def test_time_together_on_real_files(tmp_path):
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    paths = []
    for name, hidden in (("wide", (300, 100)), ("thin", (30, 10))):
        from tfprune.models import mlp

        path = tmp_path / f"{name}.tflite"
        export.export(mlp((8, 8, 1), 10, hidden=hidden), str(path))
        paths.append(str(path))
    timings = time_together(paths, x[0], rounds=3, runs_per_round=5, warmup=2)
    assert set(timings) == set(paths)
    assert all(t["latency_ms_median"] > 0 and t["latency_runs"] == 15 for t in timings.values())
    with pytest.raises(TfpruneError, match="`rounds` must be an integer >= 1, got 0"):
        time_together(paths, x[0], rounds=0)


def test_int4_and_mixed_rows_come_from_the_one_float32_conversion(tmp_path, conversions):
    from tfprune.tflite.mixed import MixedSpec

    calls = conversions
    model = build_model("mlp", (8, 8, 1), 10, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 8, 8, 1)).astype(np.float32), np.arange(16) % 10
    validation = (rng.random((40, 8, 8, 1)).astype(np.float32), np.arange(40) % 10)
    with pytest.raises(TfpruneError, match="quantization 'mixed' needs `validation`"):
        convert_and_measure(model, x, y, None, ["dynamic", "mixed"], [False], str(tmp_path),
                            log=lambda _: None)
    with pytest.raises(TfpruneError, match=r"`budget_kb` must be at least the all-int4"):
        convert_and_measure(model, x, y, None, ["dynamic", "mixed"], [False], str(tmp_path),
                            mixed=MixedSpec(budget_kb=1), validation=validation,
                            log=lambda _: None)
    assert os.listdir(tmp_path) == [] and calls == [("float32", False)]
    calls.clear()
    rows = convert_and_measure(model, x, y, None, ["dynamic", "int4", "mixed"], [False, True],
                               str(tmp_path), latency_runs=2, warmup=0, log=lambda _: None,
                               sparse_sizes=True, mixed=MixedSpec(int4_fraction=0.5),
                               validation=validation)
    # int4 and mixed are rewrites of the float32 bytes and have no sparse variant.
    assert sorted(calls) == [("dynamic", False), ("dynamic", True), ("float32", False)]
    assert [r["variant"] for r in rows] == ["dynamic", "dynamic_sparse", "int4", "mixed"]
    by_name = {r["variant"]: r for r in rows}
    assert "int4_layers" not in by_name["dynamic"] and by_name["dynamic"]["sparse_bytes"] > 0
    layers = ["fc1", "fc2", "classifier"]
    assert by_name["int4"]["int4_layers"] == layers and by_name["int4"]["int8_layers"] == []
    assert by_name["int4"]["int4_fraction"] == 1 and by_name["int4"]["sparse_bytes"] is None
    mixed_row = by_name["mixed"]
    assert mixed_row["int4_layers"] and 0.5 <= mixed_row["int4_fraction"] < 1
    assert sorted(mixed_row["int4_layers"] + mixed_row["int8_layers"]) == sorted(layers)
    assert mixed_row["mixed_budget_kb"] is None and set(mixed_row["layer_costs"]) == set(layers)
    sizes = {name: by_name[name]["size_bytes"] for name in ("dynamic", "int4", "mixed")}
    assert sizes["int4"] < sizes["mixed"] < sizes["dynamic"]
    assert sorted(os.listdir(tmp_path)) == ["model_dynamic.tflite", "model_dynamic_sparse.tflite",
                                            "model_int4.tflite", "model_mixed.tflite"]
