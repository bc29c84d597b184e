"""experiments/export_tflite.py as a user runs it; the TFLite acceptance figures (slow)."""

import json

import pytest

from test_experiments_train import assert_clean_error, assert_same_outcome, script_cases


def test_bad_input_is_a_clean_error(python, tmp_path):
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    cases = [
        ([f"--model_path={tmp_path}/none.keras"], "`model_path` must be a saved Keras model file"),
        ([f"--model_path={empty}"], "cannot load Keras model"),
        ([f"--model_path={empty}", "--quantizations=int3"], "unknown quantization 'int3'"),
        ([f"--model_path={empty}", "--quantizations=mixed", "--mixed_budget_kb=40",
          "--mixed_int4_fraction=0.5"],
         "`mixed_budget_kb` and `mixed_int4_fraction` must not both be given"),
        ([f"--model_path={empty}", "--mixed_int4_fraction=0.5"],
         "`mixed_int4_fraction` must come with the 'mixed' quantization"),
        ([], "--model_path"),
    ]
    # All in one interpreter (one TensorFlow import), the first also as a real run.
    batched = script_cases("export_tflite", [[f"--output_dir={tmp_path}/out"] + flags
                                             for flags, _ in cases], tmp_path / "results.json")
    real = python(["-m", "experiments.export_tflite", f"--output_dir={tmp_path}/out"] + cases[0][0])
    assert_clean_error(real, cases[0][1])
    assert_same_outcome(real, batched[0])
    for (flags, fragment), result in zip(cases, batched):
        assert_clean_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_mixed_budget_below_all_int4_is_a_clean_error(python, tmp_path):
    from tfprune.models import build_model

    model = tmp_path / "mlp.keras"
    build_model("mlp", (8, 8, 1), 10, seed=0).save(model)
    result = python(["-m", "experiments.export_tflite", f"--model_path={model}",
                     "--quantizations=int4,mixed", "--mixed_budget_kb=10",
                     f"--output_dir={tmp_path}/out"])
    assert_clean_error(result, "`mixed_budget_kb` must be at least the all-int4 model's size, "
                               "31.2 KB, got 10.0 KB (the all-int8 model is 55.7 KB)")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_tflite_acceptance_on_digits_cnn(python, tmp_path):
    """int8 within 0.5 points of Keras, float16/dynamic within 0.2; 90% weight-pruned int8 gzip
    at least 10x below dense float32; sparse int8 below dense int8; shrunk unit-pruned smaller."""
    def run(*args):
        result = python(list(args))
        assert result.returncode == 0, result.stderr[-3000:]

    base = tmp_path / "base"
    run("-m", "experiments.train", "--model=cnn", f"--output_dir={base}")
    run("-m", "experiments.prune", f"--baseline={base}/model.keras", "--method=weight",
        "--target_sparsity=0.9", f"--output_dir={tmp_path}/w90")
    run("-m", "experiments.prune", f"--baseline={base}/model.keras", "--method=unit",
        "--target_sparsity=0.5", f"--output_dir={tmp_path}/u50")
    tables = {}
    for name, model in (("dense", base / "model.keras"), ("w90", tmp_path / "w90/pruned.keras"),
                        ("u50", tmp_path / "u50/shrunk.keras")):
        run("-m", "experiments.export_tflite", f"--model_path={model}", "--sparse",
            "--latency_runs=50", f"--output_dir={tmp_path}/{name}_tflite")
        rows = json.loads((tmp_path / f"{name}_tflite/comparison.json").read_text())["rows"]
        tables[name] = {r["variant"]: r for r in rows}
    for name, table in tables.items():
        assert abs(table["int8"]["accuracy_delta"]) <= 0.005, (name, table["int8"])
        for q in ("float16", "dynamic"):
            assert abs(table[q]["accuracy_delta"]) <= 0.002, (name, table[q])
    dense_float32 = tables["dense"]["float32"]["size_bytes"]
    assert dense_float32 / tables["w90"]["int8"]["gzip_bytes"] >= 10
    assert tables["w90"]["int8_sparse"]["size_bytes"] < tables["dense"]["int8"]["size_bytes"]
    assert tables["u50"]["float32"]["size_bytes"] < dense_float32
    assert tables["u50"]["int8"]["size_bytes"] < tables["dense"]["int8"]["size_bytes"]
