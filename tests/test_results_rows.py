import pytest

from tfprune.errors import InternalError
from tfprune.results import rows
from tfprune.results.rows import VariantKey


def test_columns_come_from_the_one_schema():
    assert rows.COLUMNS[:8] == ["seed", "method", "schedule", "target_sparsity", "layer_sparsity",
                                "target_latency", "stage", "quantization"]
    assert {"tflite_accuracy", "latency_vs_dense", "pruning_events"} <= set(rows.COLUMNS)
    assert "tflite_accuracy" in rows.AGGREGATED and "seed" not in rows.AGGREGATED
    assert ("tflite_accuracy", "TFLite acc %", "percent") in rows.TABLE


def test_make_row_takes_each_column_from_the_first_source():
    key = VariantKey.of(0, "weight", "constant", 0.5)
    row = rows.make_row(key.identity(), {"quantization": "int8", "tflite_accuracy": 0.9, "unrelated": 1},
                        {"tflite_accuracy": 0.1, "size_bytes": 10})
    assert list(row) == rows.COLUMNS
    assert row["tflite_accuracy"] == 0.9 and row["size_bytes"] == 10 and row["latency_ms_median"] is None
    with pytest.raises(InternalError, match="bug in tfprune.*lacks its key column"):
        rows.make_row({"tflite_accuracy": 0.9})


def test_variant_keys_name_themselves_once():
    dense = VariantKey.of(1, "dense", "constant", 0.5)
    assert dense == VariantKey(1, "dense") and dense.slug() == "dense"
    assert dense.title() == "seed 1 dense baseline"
    weight = VariantKey.of(0, "weight", "constant", 0.5)
    assert weight.slug() == "weight-constant-0.5" and weight.title() == "seed 0 weight constant 0.5"
    dynamic = VariantKey.of(0, "dynamic", "polynomial", 0.9)  # takes neither: both dropped
    assert dynamic == VariantKey(0, "dynamic") and dynamic.slug() == "dynamic"
    assert dynamic.title() == "seed 0 dynamic (chooses its sparsity)"
    assert dynamic.identity() == {"seed": 0, "method": "dynamic", "schedule": "-",
                                  "target_sparsity": None, "layer_sparsity": "uniform",
                                  "target_latency": None, "stage": None}
    incremental = VariantKey.of(0, "incremental", "constant", 0.5, "auto")  # no per-layer targets
    assert incremental.slug() == "incremental-0.5" and incremental.title() == "seed 0 incremental 0.5"
    auto = VariantKey.of(0, "unit", "polynomial", 0.9, "auto")
    assert auto.slug() == "unit-polynomial-0.9-auto"
    assert auto.title() == "seed 0 unit polynomial 0.9 layer-wise auto"
    assert rows.label(dict(auto.identity(), quantization="mixed")) == "unit polynomial 0.9 auto mixed"
    staged = VariantKey.of(0, "weight", "constant", 0.8, stage="pqat")
    assert staged.slug() == "weight-constant-0.8+pqat" and staged.with_stage(None) == \
        VariantKey.of(0, "weight", "constant", 0.8)
    assert staged.title() == "seed 0 weight constant 0.8 + pqat"
    assert rows.label(dict(staged.identity(), quantization="int8")) == \
        "weight constant 0.8 pqat int8"
    assert rows.series(staged.identity()) == "weight + pqat"
    assert VariantKey.of(0, "dense", stage="qat").slug() == "dense+qat"


def test_labels_and_sparsity_of_entries():
    chosen = dict(method="dynamic", schedule="-", target_sparsity=None, achieved_sparsity=0.41,
                  quantization="int8")
    assert rows.label(chosen) == "dynamic auto->0.41 int8" and rows.sparsity_of(chosen) == 0.41
    fixed = dict(method="weight", schedule="constant", target_sparsity=0.9, achieved_sparsity=0.89,
                 quantization="float32")
    assert rows.label(fixed) == "weight constant 0.9 float32" and rows.sparsity_of(fixed) == 0.9
    assert rows.label(dict(method="incremental", schedule="-", target_sparsity=0.5,
                           quantization="int8")) == "incremental 0.5 int8"
