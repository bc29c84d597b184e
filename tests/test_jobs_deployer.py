"""Conversions overlapping fine-tuning (jobs/deployer.py): a sweep that converts and measures in
a second process gives the rows and the .tflite bytes of one that does it in-process."""

import functools
import os

import pytest

from tfprune.errors import TfpruneError
from tfprune.jobs import deployer as deployer_lib
from tfprune.jobs import sweep as sweep_lib
from tfprune.jobs.sweep import SweepConfig, run_sweep
from tfprune.results import rows as rows_lib

TIMES = {"train_time_s", "fine_tune_time_s", "convert_time_s", "evaluate_time_s",
         "latency_ms_median", "latency_ms_p90", "latency_runs", "latency_vs_dense",
         "scratch_time_s"}
SECOND = "in a second process"


def test_an_overlapped_sweep_has_the_rows_and_files_of_an_in_process_one(tmp_path):
    config = SweepConfig(model="mlp", methods=("weight", "unit"), schedules=("constant",),
                         sparsities=(0.5, 0.75), quantizations=("float32", "int8"),
                         baseline_epochs=2, fine_tune_epochs=1, latency_runs=2,
                         representative_count=10)
    assert len(config.variants()) == 5 and sweep_lib.overlaps(config, 5)
    assert not sweep_lib.overlaps(config, sweep_lib.OVERLAP_MIN_VARIANTS - 1)
    runs = {}
    for overlap in (True, False):
        out = str(tmp_path / f"overlap{overlap}")
        lines = []
        rows = run_sweep(config, out, log=lines.append, overlap=overlap)
        assert any(SECOND in line for line in lines) == overlap, lines
        # finished in order, each reported once
        assert [line.split("]")[0] for line in lines if line.startswith("[")] == [
            f"[{i}/5" for i in range(1, 6)]
        runs[overlap] = (out, rows)
    (out_a, rows_a), (out_b, rows_b) = runs[True], runs[False]
    assert len(rows_a) == len(rows_b) == 10
    for a, b in zip(rows_a, rows_b):
        assert {k: v for k, v in a.items() if k not in TIMES} == \
            {k: v for k, v in b.items() if k not in TIMES}
        with open(os.path.join(out_a, a["tflite_file"]), "rb") as fa, \
                open(os.path.join(out_b, b["tflite_file"]), "rb") as fb:
            assert fa.read() == fb.read(), a["tflite_file"]
    assert {r["method"] for r in rows_a} == {rows_lib.DENSE, "weight", "unit"}
    # Each variant's own plots, drawn by the process that deployed it.
    for out in (out_a, out_b):
        for variant in ("weight-constant-0.5", "unit-constant-0.75"):
            for plot in ("fine_tune.png", "layer_sparsity.png"):
                path = os.path.join(out, "variants", "seed0", variant, "plots", plot)
                assert os.path.getsize(path) > 5000, path


def test_a_failed_conversion_in_the_second_process_is_the_sweeps_error(tmp_path):
    from tfprune.jobs.sweep import SweepConfig as Config

    config = Config(model="mlp", quantizations=("float32",))
    deployment = deployer_lib.Deployment(
        str(tmp_path / "missing.keras"), "pruned", str(tmp_path), None,
        functools.partial(config.load_data, 0), dict(quantizations=("float32",), representative_count=4,
                               keras_accuracy=0.5, dense_stats={}, deployed_stats={}))
    done = []
    with pytest.raises(TfpruneError, match="missing.keras"):
        with deployer_lib.Deployer(processes=True) as deployer:
            deployer.submit(deployment, lambda *a: done.append(a))
            deployer.drain()
    assert done == []
