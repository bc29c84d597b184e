"""experiments/export_tflite.py as a user runs it (the TFLite acceptance figures: in
test_experiments_prune.py, with the models they export)."""

import pytest
from test_experiments_train import assert_clean_error, assert_same_outcome, script_cases

pytestmark = pytest.mark.integration  # every test trains or starts a process


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


# test_tflite_acceptance_on_digits_cnn is in test_experiments_prune.py, beside the baseline and
# pruned models it exports (one set of runs for both modules' acceptance figures).
