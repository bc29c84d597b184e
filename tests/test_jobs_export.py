import json

import pytest

from tfprune.jobs.export import ExportConfig, run_export
from tfprune.errors import TfpruneError, UnknownNameError
from tfprune.models import build_model


@pytest.fixture(scope="module")
def saved_mlp(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "mlp.keras"
    build_model("mlp", (8, 8, 1), 10, seed=0).save(path)
    return str(path)


@pytest.mark.integration
def test_run_export_writes_variants_and_tables(saved_mlp, tmp_path, python):
    out = tmp_path / "tflite"
    config = ExportConfig(model_path=saved_mlp, quantizations=("float32", "int8"), sparse=True,
                          latency_runs=5, warmup=1, representative_count=20)
    rows = run_export(config, str(out), log=lambda _: None)
    assert [r["variant"] for r in rows] == ["float32", "float32_sparse", "int8", "int8_sparse"]
    for name in ("comparison.csv", "comparison.json", "comparison.md", "config.json",
                 "mlp_float32.tflite", "mlp_int8_sparse.tflite"):
        assert (out / name).exists(), name
    table = json.loads((out / "comparison.json").read_text())
    assert table["rows"] == rows and table["test_examples"] == 360
    float32 = rows[0]
    assert float32["compression_vs_float32"] == pytest.approx(1.0)
    assert abs(float32["accuracy_delta"]) < 1e-6
    md = (out / "comparison.md").read_text()
    assert "| variant | quantization | sparse | keras_accuracy | tflite_accuracy |" in md
    # Every .tflite runs in a fresh process that never imports tfprune.
    code = (
        "import sys, numpy as np\n"
        "from ai_edge_litert.interpreter import Interpreter\n"
        "for path in sys.argv[1:]:\n"
        "    it = Interpreter(model_path=path); it.allocate_tensors()\n"
        "    d = it.get_input_details()[0]\n"
        "    it.set_tensor(d['index'], np.zeros(d['shape'], d['dtype'])); it.invoke()\n"
        "    print('ran', path.rsplit('/', 1)[-1], it.get_tensor(it.get_output_details()[0]['index']).shape)\n"
        "assert 'tfprune' not in sys.modules\n")
    files = sorted(str(p) for p in out.glob("*.tflite"))
    result = python(["-c", code] + files)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("ran ") == 4
    # Rerun: reuses the measured rows.
    again = run_export(config, str(out), log=lambda _: None)
    assert again == rows


def test_export_config_validation(saved_mlp):
    with pytest.raises(UnknownNameError, match="unknown quantization 'int3'"):
        ExportConfig(model_path=saved_mlp, quantizations=("int3",))
    with pytest.raises(TfpruneError, match="`quantizations` must not be empty; choose from"):
        ExportConfig(model_path=saved_mlp, quantizations=())
    with pytest.raises(TfpruneError, match="`model_path` must be a saved Keras model file"):
        ExportConfig(model_path="/nowhere.keras")
    with pytest.raises(TfpruneError, match=r"`representative_count` must be an integer >= 1"):
        ExportConfig(model_path=saved_mlp, representative_count=0)


def test_wrong_dataset_model_leaves_nothing(tmp_path):
    path = tmp_path / "cifar.keras"
    build_model("mlp", (32, 32, 3), 10).save(path)
    out = tmp_path / "out"
    with pytest.raises(TfpruneError, match=r"takes \(32, 32, 3\).*dataset 'digits' needs \(8, 8, 1\)"):
        run_export(ExportConfig(model_path=str(path)), str(out))
    assert not out.exists()


def test_int4_and_mixed_variants_name_their_int4_layers(saved_mlp, tmp_path):
    out = tmp_path / "tflite"
    config = ExportConfig(model_path=saved_mlp, quantizations=("dynamic", "int4", "mixed"),
                          mixed_budget_kb=40, latency_runs=2, warmup=0, sparse=True)
    rows = run_export(config, str(out), log=lambda _: None)
    assert [r["variant"] for r in rows] == ["dynamic", "dynamic_sparse", "int4", "mixed"]
    by_name = {r["variant"]: r for r in rows}
    layers = ["fc1", "fc2", "classifier"]
    assert by_name["int4"]["int4_layers"] == layers and by_name["int4"]["int4_fraction"] == 1
    mixed = by_name["mixed"]
    assert mixed["mixed_budget_kb"] == 40 and mixed["size_bytes"] <= 40 * 1024
    assert by_name["int4"]["size_bytes"] < mixed["size_bytes"] < by_name["dynamic"]["size_bytes"]
    assert mixed["int4_layers"] and sorted(mixed["int4_layers"] + mixed["int8_layers"]) == \
        sorted(layers)
    assert 0 < mixed["int4_fraction"] < 1
    table = json.loads((out / "comparison.json").read_text())
    assert table["rows"][3]["int4_layers"] == mixed["int4_layers"]
    csv_lines = (out / "comparison.csv").read_text().splitlines()
    header = csv_lines[0].split(",")
    assert header[-3:] == ["int4_fraction", "int4_layers", "file"]
    assert csv_lines[4].split(",")[header.index("int4_layers")] == " ".join(mixed["int4_layers"])
    md = (out / "comparison.md").read_text()
    assert "- `int4`: int4 weights in fc1, fc2, classifier (100% of the weights); int8 in no " \
           "layer" in md
    assert f"- `mixed`: budget 40 KB; int4 weights in {', '.join(mixed['int4_layers'])}" in md
    # Rerun: the measured rows, int4 layers included, are reused.
    assert run_export(config, str(out), log=lambda _: None) == rows


def test_mixed_budget_below_all_int4_fails_before_anything_is_written(saved_mlp, tmp_path):
    out = tmp_path / "tflite"
    config = ExportConfig(model_path=saved_mlp, quantizations=("float32", "mixed"),
                          mixed_budget_kb=10)
    with pytest.raises(TfpruneError, match=r"`mixed_budget_kb` must be at least the all-int4 "
                       r"model's size, 31\.2 KB, got 10\.0 KB \(the all-int8 model is "
                       r"55\.7 KB\)"):
        run_export(config, str(out), log=lambda _: None)
    assert not out.exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(mixed_budget_kb=40, mixed_int4_fraction=0.5),
     r"`mixed_budget_kb` and `mixed_int4_fraction` must not both be given"),
    (dict(mixed_budget_kb=0), r"`mixed_budget_kb` must be > 0, got 0"),
    (dict(mixed_int4_fraction=1.2), r"`mixed_int4_fraction` must be in \[0, 1\], got 1.2"),
])
def test_mixed_options_validated(saved_mlp, kwargs, message):
    with pytest.raises(TfpruneError, match=message):
        ExportConfig(model_path=saved_mlp, quantizations=("mixed",), **kwargs)
    with pytest.raises(TfpruneError, match=r"`mixed_budget_kb` must come with the 'mixed' "
                       r"quantization, got quantizations float32, int4"):
        ExportConfig(model_path=saved_mlp, quantizations=("float32", "int4"), mixed_budget_kb=40)
