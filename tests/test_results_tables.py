import pytest

from tfprune.results import rows as rows_lib
from tfprune.results import tables


def test_aggregate_and_pareto():
    rows = []
    for seed, acc in ((0, 0.9), (1, 0.8)):
        rows.append(dict(method="weight", schedule="constant", target_sparsity=0.5,
                         quantization="int8", delegate="x", **{c: 1.0 for c in rows_lib.AGGREGATED
                                                              if c != "tflite_accuracy"},
                         tflite_accuracy=acc, seed=seed))
    (entry,) = tables.aggregate(rows)
    assert entry["seeds"] == 2 and entry["tflite_accuracy"] == pytest.approx(0.85)
    assert entry["tflite_accuracy_std"] == pytest.approx(0.05)
    points = [dict(gzip_bytes=b, tflite_accuracy=a) for b, a in ((10, 0.5), (20, 0.9), (15, 0.4), (30, 0.95), (25, 0.9))]
    front = tables.pareto_front(points, "gzip_bytes")
    assert [(p["gzip_bytes"], p["tflite_accuracy"]) for p in front] == [(10, 0.5), (20, 0.9), (30, 0.95)]
