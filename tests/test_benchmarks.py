"""The benchmark harness works (its figures are measured by running it, not by tests)."""

import pytest
from test_experiments_train import assert_clean_error


@pytest.mark.integration
def test_step_times_structure():
    from benchmarks import training

    result = training.step_times("mlp", "digits", 128, epochs=2)
    for variant in ("dense", "weight", "unit"):
        assert result[variant]["steps"] == 10 and result[variant]["median_ms"] > 0
    assert result["unit"]["ratio_to_dense"] > 0


def test_tables_render_every_section():
    from benchmarks import tables

    row = {"median_ms": 1.0, "mean_ms": 1.1, "steps": 5}
    results = {
        "machine": {"platform": "x", "cpus": 2, "python": "3", "tensorflow": "2", "tf_keras": "2"},
        "training": [{"model": "cnn", "dataset": "digits", "batch_size": 32, "dense": row,
                      "weight": dict(row, ratio_to_dense=1.1), "unit": dict(row, ratio_to_dense=1.2)}],
        "deployment": [{"model": "dense", "quantization": "int8", "sparse_encoding": True,
                        "accuracy": 0.9, "latency_us_median_1t": 2.0, "latency_us_p90_1t": 2.5,
                        "latency_us_median_2t": 3.0, "latency_us_p90_2t": 3.5,
                        "latency_ratio_1t": 0.5, "latency_ratio_2t": 0.6, "flops_ratio": 1.0,
                        "size_bytes": 1000, "gzip_bytes": 900, "limit_bytes": 800,
                        "gzip_compression_vs_dense_float32": 3.0, "delegate": "x"}],
        "tfmot": [{"recipe": "tfmot tutorial", "epochs": 2, "accuracy": 0.9,
                   "achieved_sparsity": 0.0, "pruning_events": 1, "fine_tune_time_s": 1.0}],
        "sweep": {"runs": {
            "before": {"variants": 23, "wall_time_s": 400.0,
                       "stage_times_s": {"train_s": 24.0, "convert_s": 150.0}},
            "after": {"variants": 23, "wall_time_s": 200.0,
                      "stage_times_s": {"train_s": 24.0, "convert_s": 30.0, "other_s": 9.5}}}},
        "memory": {"training_peak_rss_mb": {"cnn": {v: {"peak_rss_mb": 700, "growth_mb": 40}
                                                    for v in ("dense", "weight", "unit")}},
                   "interpreter": {"a.tflite": {"file_kb": 1.0, "interpreter_rss_mb": 3.0,
                                                "delegate": "x"}}},
    }
    text = tables.render(results)
    for heading in ("Training step time", "TFLite latency and size", "tfmot tutorial",
                    "sweep wall time", "Peak memory"):
        assert heading in text
    assert "| dense | int8 sparse | 90.00 | 2.00 (2.50) |" in text
    assert "| before | 23 | 400 | 24.0 | 150.0 |  |" in text  # a stage one run lacks: blank
    assert "| after | 23 | 200 | 24.0 | 30.0 | 9.5 |" in text


def test_sweep_stages_add_what_no_stage_accounts_for():
    from benchmarks import tables

    stages = tables.sweep_stages({"variants_total": 23, "wall_time_s": 100.0,
                           "stage_times": {"train_s": 20.0, "convert_s": 50.0}})
    assert stages == {"variants": 23, "wall_time_s": 100.0,
                      "stage_times_s": {"train_s": 20.0, "convert_s": 50.0, "other_s": 30.0}}


@pytest.mark.integration
def test_unknown_section_is_a_clean_error(python, tmp_path):
    result = python(["-m", "benchmarks.run", "--sections=speed", f"--output_dir={tmp_path}"])
    assert_clean_error(result, "unknown benchmark section(s) speed; choose from training")


def test_xnnpack_sparse_models_and_policy(tmp_path):
    import numpy as np

    from benchmarks import xnnpack_sparse
    from tfprune.models import build_model

    zoo = build_model("mobilenetv2", (32, 32, 3), 10, seed=0)
    compatible = xnnpack_sparse.mobilenetv2_xnnpack()
    assert compatible.count_params() == zoo.count_params()  # the same layers and widths
    assert "Could not find `Conv2D 3x3`" in xnnpack_sparse.policy_refusal(zoo)
    assert xnnpack_sparse.policy_refusal(compatible) is None
    assert xnnpack_sparse.policy_refusal(xnnpack_sparse.probe_model()) is None

    pruned, names, zeros = xnnpack_sparse.zero_pointwise(compatible, 0.9)
    assert len(names) == 34 and abs(zeros - 0.9) < 1e-3
    assert all(pruned.get_layer(n).kernel_size == (1, 1) for n in names)
    assert np.count_nonzero(compatible.get_layer(names[0]).kernel.numpy() == 0) == 0

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2\n")
    assert xnnpack_sparse.cpu_has_avx(str(cpuinfo)) is True
    cpuinfo.write_text("flags\t\t: fpu sse sse2 sse4_2\n")
    assert xnnpack_sparse.cpu_has_avx(str(cpuinfo)) is False
    assert xnnpack_sparse.cpu_has_avx(str(tmp_path / "absent")) is None


def _application_record(method="channel", target=0.3, **changes):
    record = {"model": "ResNet50", "run": f"{method}-{target:g}", "method": method,
              "target": target, "error": None, "stage": None, "time_s": 12.0,
              "input_shape": [96, 96, 3],
              "prune": {"flops_ratio": 0.49, "max_abs_diff": 2e-7, "pruned_sparsity": 0.3,
                        "blocked": None},
              "keras3": {"files": ["a.keras"]}, "int8": {"bytes": 2048},
              "latency": {"dense_ms": 4.0, "shrunk_ms": 2.0, "ratio": 0.5}}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(record.get(key), dict):
            record[key] = dict(record[key], **value)
        else:
            record[key] = value
    return record


def test_applications_acceptance_marks_each_criterion_with_its_reason():
    from benchmarks import acceptance

    assert acceptance.misses(_application_record()) == []
    assert acceptance.verdicts(_application_record())["sparsity"] == ("n/a", None)
    # 50% channels: 0.49x is over its 0.30x limit; the blocked groups are the reason.
    blocked = "35 of 59 groups blocked: 35x consumed by Reshape '*'"
    record = _application_record(target=0.5, prune={"blocked": blocked})
    assert acceptance.misses(record) == [f"flops: {blocked}"]
    record = _application_record(target=0.5)
    assert acceptance.misses(record) == ["flops: 0.490x > 0.3x"]
    record = _application_record(prune={"max_abs_diff": 3e-5})
    assert acceptance.misses(record) == ["shrink_diff: 3.0e-05 > 1e-05"]
    # Weight 50%: only the sparsity of the pruned layers, Keras 3 and int8 are asked.
    weight = _application_record("weight", 0.5, prune={"pruned_sparsity": 0.4996,
                                                       "flops_ratio": 1.0})
    assert acceptance.misses(weight) == []
    assert acceptance.verdicts(weight)["flops"] == ("n/a", None)
    assert acceptance.misses(_application_record("weight", 0.5, prune={
        "pruned_sparsity": 0.49})) == ["sparsity: 0.4900 < 0.5"]
    record = _application_record(keras3={"error": "KerasOnlyError: boom"}, int8={"error": "x"})
    assert acceptance.misses(record) == ["keras3: KerasOnlyError: boom", "int8: x"]
    assert acceptance.failed(record) and not acceptance.failed(_application_record())


def test_applications_a_failed_run_misses_every_criterion_once():
    from benchmarks import acceptance

    record = {"model": "MobileNetV3Small", "run": "weight-0.5", "method": "weight",
              "target": 0.5, "error": "TfpruneError: activation 'hard_silu' is not built in",
              "stage": "import", "time_s": 3.0}
    assert acceptance.misses(record) == [
        "sparsity: import: TfpruneError: activation 'hard_silu' is not built in",
        "keras3", "int8"]
    assert acceptance.failed(record)
    text = acceptance.markdown([record, _application_record()],
                               {"ResNet50": {"input_shape": [96, 96, 3], "params": 1000,
                                             "build_time_s": 3.0, "import_time_s": 2.0}}, "Latency: x.")
    # Table order follows acceptance.MODELS; a failed run has no figures, only marks.
    assert text.index("| MobileNetV3Small |") < text.index("| ResNet50 | channel-0.3 |")
    assert ("| ResNet50 | channel-0.3 | 0.490x pass | 2.0e-07 pass | - | pass | 2 KB pass | "
            "4.00 / 2.00 (0.500x) | 12 |  |") in text
    assert "| MobileNetV3Small | weight-0.5 | - | - | miss | miss | miss | - | 3 |" in text
    assert "| ResNet50 | 96x96x3 | 1,000 | 1 of 1 | - | 17 |" in text
    assert "| MobileNetV3Small |  |  | 0 of 1 | weight-0.5 | 3 |" in text


def test_applications_blocked_summary_and_one_line_errors():
    from benchmarks import acceptance
    from tfprune.errors import TfpruneError

    skipped = {"a": "consumed by Reshape 'se_1', which the graph cannot see through",
               "b": "consumed by Reshape 'se_2', which the graph cannot see through",
               "c": "the model output", "d": "made by SeparableConv2D 'sep'"}
    assert acceptance.blocked_summary(skipped, 10, 7) == (
        "3 of 10 groups not prunable: 2x consumed by Reshape '*', which the graph cannot see "
        "through; 1x the model output; 1 other kinds")
    assert acceptance.blocked_summary(skipped, 10, 10) is None
    assert acceptance.one_line(TfpruneError("bad layer\n  traceback line")) == \
        "TfpruneError: bad layer"
    assert len(acceptance.one_line(ValueError("x" * 1000))) == acceptance.ERROR_CHARS
    assert acceptance.check_models(["VGG16"]) == ["VGG16"]
    with pytest.raises(TfpruneError, match=r"unknown model\(s\) VGG19 in `models`; choose "
                                           r"from ConvNeXtTiny, DenseNet121"):
        acceptance.check_models(["VGG16", "VGG19"])


def test_latency_table_reports_raw_and_measured_errors():
    from benchmarks import latency
    record = dict(model="zoo:resnet20", kernels=33, dense_predicted_raw_ms=2.2,
                  dense_measured_ms=2.0, dense_raw_error=0.1, calibration=0.909,
                  predicted_ratio=0.48, measured_ratio=0.47, pruned_predicted_ms=1.1,
                  shrunk_measured_ms=1.0, shrunk_prediction_error=0.1, channel_sparsity=0.125,
                  flops_ratio=0.3)
    text = latency.table([record])
    assert "| zoo:resnet20 | 33 | 2.200 / 2.000 (+10.0%) | 0.909 | 0.480 | 0.470 |" in text
    assert text.count("\n") == 3
