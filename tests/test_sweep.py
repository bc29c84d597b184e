import json
import os

import pytest

from tfprune import io, sweep_report
from tfprune.errors import RunDirectoryError, TfpruneError, UnknownNameError
from tfprune.sweep import SweepConfig, collect_rows, run_sweep, variant_dir

TINY = dict(model="mlp", methods=("weight", "unit"), schedules=("constant",), sparsities=(0.5,),
            quantizations=("float32", "int8"), seeds=(0,), baseline_epochs=2,
            fine_tune_epochs=1, batch_size=128, latency_runs=5, representative_count=20)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(methods=()), TfpruneError, "`methods` must not be empty; choose from adaptive, dynamic, incremental, unit, weight"),
    (dict(schedules=()), TfpruneError, "`schedules` must not be empty"),
    (dict(sparsities=()), TfpruneError, r"`sparsities` must not be empty; give values in \[0, 1\)"),
    (dict(sparsities=(0.5, 1.2)), TfpruneError, r"`sparsities` must be in \[0, 1\), got 1.2"),
    (dict(quantizations=()), TfpruneError, "`quantizations` must name at least one of"),
    (dict(seeds=()), TfpruneError, "`seeds` must not be empty"),
    (dict(seeds=(-1,)), TfpruneError, "`seeds` must be an integer >= 0, got -1"),
    (dict(methods=("magic",)), UnknownNameError, "unknown pruning method 'magic'"),
    (dict(quantizations=("int2",)), UnknownNameError, "unknown quantization 'int2'"),
])
def test_config_validation(kwargs, error, message):
    with pytest.raises(error, match=message):
        SweepConfig(**kwargs)


def test_variants_grid():
    config = SweepConfig(methods=("weight",), schedules=("constant", "polynomial"),
                         sparsities=(0.9, 0.5, 0.5), seeds=(0, 1))
    assert config.sparsities == (0.5, 0.9)
    variants = config.variants()
    assert variants[:2] == [(0, "dense", "-", 0.0), (1, "dense", "-", 0.0)]
    assert len(variants) == 2 + 2 * 2 * 2


def test_variants_of_dynamic_methods():
    config = SweepConfig(methods=("weight", "dynamic", "incremental", "adaptive"),
                         schedules=("constant",), sparsities=(0.0, 0.5), seeds=(0,))
    assert config.variants() == [
        (0, "dense", "-", 0.0), (0, "weight", "constant", 0.0), (0, "weight", "constant", 0.5),
        (0, "dynamic", "-", 0.0), (0, "incremental", "-", 0.5), (0, "adaptive", "-", 0.0)]


def test_tiny_sweep_writes_report_and_resumes(tmp_path, monkeypatch):
    out = str(tmp_path / "sweep")
    config = SweepConfig(**TINY)
    lines = []
    rows = run_sweep(config, out, log=lines.append)
    assert len(rows) == 3 * 2  # (dense, weight, unit) x 2 quantizations
    for name in ("config.json", "results.csv", "results.json", "report.md",
                 "plots/accuracy_vs_sparsity.png", "plots/accuracy_vs_size.png",
                 "plots/accuracy_vs_latency.png"):
        assert os.path.exists(os.path.join(out, name)), name
    assert any(line.startswith("[3/3] seed 0 unit constant 0.5") and "left" in line
               for line in lines)
    unit = [r for r in rows if r["method"] == "unit"]
    assert unit[0]["deployed"] == "shrunk" and unit[0]["params"] < rows[0]["params"]
    assert os.path.exists(unit[0]["tflite_file"])
    # The report's numbers are the variant files' numbers.
    results = json.loads(open(os.path.join(out, "results.json")).read())
    assert results["rows"] == collect_rows(out, config) and results["variants_done"] == 3
    report = open(os.path.join(out, "report.md")).read()
    for entry in results["aggregated"]:
        assert f"| {100 * entry['tflite_accuracy']:.2f} |" in report
    assert "Status: complete" in report and "![accuracy_vs_size.png]" in report

    # Interrupt: drop one finished variant; a rerun redoes only that one.
    os.remove(os.path.join(variant_dir(out, 0, "unit", "constant", 0.5), "variant.json"))
    import tfprune.sweep as sweep_module

    calls = []
    original = sweep_module._run_variant
    monkeypatch.setattr(sweep_module, "_run_variant",
                        lambda *a, **k: calls.append(a[3]) or original(*a, **k))
    lines.clear()
    again = run_sweep(config, out, log=lines.append)
    assert calls == ["unit"]
    assert any("resuming: 2 of 3 variants already done" in line for line in lines)
    assert len(again) == len(rows)

    with pytest.raises(RunDirectoryError, match="differs in: sparsities"):
        run_sweep(SweepConfig(**dict(TINY, sparsities=(0.6,))), out)
    assert io.read_json(os.path.join(out, "config.json"))["sparsities"] == [0.5]


def test_aggregate_and_pareto():
    rows = []
    for seed, acc in ((0, 0.9), (1, 0.8)):
        rows.append(dict(method="weight", schedule="constant", target_sparsity=0.5,
                         quantization="int8", delegate="x", **{c: 1.0 for c in sweep_report.AGGREGATED
                                                              if c != "tflite_accuracy"},
                         tflite_accuracy=acc, seed=seed))
    (entry,) = sweep_report.aggregate(rows)
    assert entry["seeds"] == 2 and entry["tflite_accuracy"] == pytest.approx(0.85)
    assert entry["tflite_accuracy_std"] == pytest.approx(0.05)
    points = [dict(gzip_bytes=b, tflite_accuracy=a) for b, a in ((10, 0.5), (20, 0.9), (15, 0.4), (30, 0.95), (25, 0.9))]
    front = sweep_report.pareto_front(points, "gzip_bytes")
    assert [(p["gzip_bytes"], p["tflite_accuracy"]) for p in front] == [(10, 0.5), (20, 0.9), (30, 0.95)]
