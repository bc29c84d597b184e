"""Conversions overlapping fine-tuning (jobs/deployer.py): a sweep that converts and measures in
a second process gives the rows and the .tflite bytes of one that does it in-process."""

import functools
import multiprocessing
import os
import shutil

import pytest

from tfprune.data import load_data
from tfprune.errors import TfpruneError
from tfprune.jobs import deployer as deployer_lib
from tfprune.jobs import sweep as sweep_lib
from tfprune.jobs.sweep import SweepConfig, run_sweep
from tfprune.results import rows as rows_lib

pytestmark = pytest.mark.integration  # every test trains or starts a process

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
    # Interrupted after a variant's fine-tuning, before its deployment (no variant.json, its
    # plots not drawn): the rerun draws them and gives the same rows.
    variant = os.path.join(out_a, "variants", "seed0", "weight-constant-0.5")
    shutil.rmtree(os.path.join(variant, "plots"))
    os.remove(os.path.join(variant, "variant.json"))
    again = run_sweep(config, out_a, log=lambda _: None)
    assert os.path.getsize(os.path.join(variant, "plots", "layer_sparsity.png")) > 5000
    assert [{k: v for k, v in r.items() if k not in TIMES} for r in again] == \
        [{k: v for k, v in r.items() if k not in TIMES} for r in rows_a]


def _only_in_the_caller():
    """Data a worker cannot load (like a data set registered in the caller's script)."""
    if multiprocessing.parent_process() is not None:
        raise TfpruneError("unknown dataset 'mine' (registered in the caller's script only)")
    return load_data("digits", batch_size=32, seed=0)


def _deployment(model_path, out_dir, load):
    return deployer_lib.Deployment(
        model_path, "pruned", out_dir, rows_lib.VariantKey.of(0, "weight", "constant", 0.5),
        load, dict(quantizations=("float32",), representative_count=4, keras_accuracy=0.5,
                   dense_stats={"params": 10, "flops": 10},
                   deployed_stats={"nonzero_params": 5, "nonzero_flops": 5}))


def test_what_the_second_process_cannot_do_this_process_does(tmp_path):
    """A worker failure is never the sweep's: that variant and the later ones are deployed in
    this process (and a real error is raised here, as without a worker)."""
    from tfprune.models import build_model
    from tfprune.training import save_model

    path = save_model(build_model("mlp", (8, 8, 1), 10, seed=0), str(tmp_path / "m.keras"))
    lines, done = [], []
    with deployer_lib.Deployer(processes=True, log=lines.append) as deployer:
        for name in ("a", "b"):
            deployer.submit(_deployment(path, str(tmp_path / name), _only_in_the_caller),
                            lambda d, rows: done.append((d.out_dir, rows)))
    assert [d for d, _ in done] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert all(len(rows) == 1 and 0 <= rows[0]["tflite_accuracy"] <= 1 for _, rows in done)
    assert len(lines) == 1 and "deploying in this process from now on" in lines[0]
    assert "unknown dataset 'mine'" in lines[0]
    # A real error (no model file) is raised here, after the worker's failure is logged.
    lines.clear()
    with pytest.raises(TfpruneError, match="missing.keras"):
        with deployer_lib.Deployer(processes=True, log=lines.append) as deployer:
            deployer.submit(_deployment(str(tmp_path / "missing.keras"), str(tmp_path / "c"),
                                        functools.partial(load_data, "digits", batch_size=32,
                                                          seed=0)),
                            lambda *a: done.append(a))
    assert len(done) == 2 and "missing.keras" in lines[0]


def test_a_killed_worker_is_replaced_by_this_process(tmp_path):
    from tfprune.models import build_model
    from tfprune.training import save_model

    path = save_model(build_model("mlp", (8, 8, 1), 10, seed=0), str(tmp_path / "m.keras"))
    load = functools.partial(load_data, "digits", batch_size=32, seed=0)
    lines, done = [], []
    with deployer_lib.Deployer(processes=True, log=lines.append) as deployer:
        deployer.submit(_deployment(path, str(tmp_path / "a"), load),
                        lambda d, rows: done.append((d.out_dir, rows)))
        for process in list(deployer._pool._processes.values()):
            process.kill()
            process.join()
        for name in ("b", "c"):
            deployer.submit(_deployment(path, str(tmp_path / name), load),
                            lambda d, rows: done.append((d.out_dir, rows)))
    assert [d for d, _ in done] == [str(tmp_path / n) for n in "abc"]
    assert all(len(rows) == 1 for _, rows in done)
    assert len(lines) == 1 and "deploying in this process from now on" in lines[0]
