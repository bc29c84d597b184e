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
    with pytest.raises(UnknownNameError, match="unknown quantization 'int4'"):
        ExportConfig(model_path=saved_mlp, quantizations=("int4",))
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
