"""TFLite latency and size of dense, weight-pruned and unit-pruned-and-shrunk models, against
their physical limits (FLOPs ratio for latency, non-zero count x bits for size)."""

import os

from tfprune.tflite import evaluate, export
from tfprune.data import load_data
from tfprune.keras import keras
from tfprune.pruning import stats
from tfprune.jobs.prune import PruneConfig, run_prune

INDEX_BYTES = 2  # a 16-bit index per non-zero: the least a sparse format can carry


def prepare_models(baseline_path, work_dir, fine_tune_epochs=15, log=print):
    """{label: (keras model path, kind)} for the benchmark's variants (reused when present)."""
    models = {"dense": baseline_path}
    jobs = [("weight 90%", "weight", 0.9, "pruned")] + [
        (f"unit {int(s * 100)}% pruned, shrunk", "unit", s, "shrunk") for s in (0.25, 0.5, 0.75)]
    for label, method, sparsity, kind in jobs:
        out = os.path.join(work_dir, f"{method}-{sparsity:g}")
        metrics = run_prune(PruneConfig(method=method, target_sparsity=sparsity,
                                        fine_tune_epochs=fine_tune_epochs,
                                        baseline=baseline_path), out, overwrite=True,
                            log=lambda _: None).metrics
        models[label] = os.path.join(out, metrics["models"][kind])
        log(f"  prepared {label}: {models[label]}")
    return models


def latency_and_sizes(models, work_dir, threads=(1, 2), runs=2000, warmup=200, log=print):
    data = load_data("digits")
    x, y = data.numpy("test")
    representative = data.representative_sample(200)
    dense = keras.models.load_model(models["dense"], compile=False)
    dense_stats = stats.summarize(dense)
    rows = []
    plan = [("dense", "float32", False), ("dense", "int8", False),
            ("weight 90%", "float32", False), ("weight 90%", "float32", True),
            ("weight 90%", "int8", False), ("weight 90%", "int8", True)]
    for label in models:
        if label.startswith("unit"):
            plan += [(label, "float32", False), (label, "int8", False)]
    reference = {}
    for label, quantization, sparse in plan:
        model = keras.models.load_model(models[label], compile=False)
        summary = stats.summarize(model)
        content = export.to_tflite(model, quantization, representative, sparse=sparse)
        slug = "-".join(label.replace("%", "").replace(",", "").split()[:2])
        path = os.path.join(work_dir, "tflite",
                            f"{slug}-{quantization}{'-sparse' if sparse else ''}.tflite")
        export.save_tflite(content, path)
        size = evaluate.sizes(content)
        bits = 32 if quantization == "float32" else 8
        limit = summary["nonzero_params"] * bits // 8
        row = {"model": label, "quantization": quantization, "sparse_encoding": sparse,
               "accuracy": evaluate.accuracy(evaluate.load(content), x, y)[0],
               "flops_ratio": summary["nonzero_flops"] / dense_stats["flops"],
               "nonzero_params": summary["nonzero_params"], **size,
               "limit_bytes": limit, "sparse_limit_bytes": summary["nonzero_params"] * (bits // 8 + INDEX_BYTES),
               "file": path}
        for n in threads:
            loaded = evaluate.load(content, num_threads=n)
            timing = evaluate.latency(loaded, x[0], warmup=warmup, runs=runs)
            row[f"latency_us_median_{n}t"] = timing["latency_ms_median"] * 1e3
            row[f"latency_us_p90_{n}t"] = timing["latency_ms_p90"] * 1e3
            row["delegate"] = loaded.delegate
        if label == "dense" and quantization == "float32":
            reference = row
        for n in threads:
            row[f"latency_ratio_{n}t"] = (row[f"latency_us_median_{n}t"]
                                          / reference[f"latency_us_median_{n}t"])
        row["size_vs_limit"] = row["size_bytes"] / max(limit, 1)
        row["gzip_vs_limit"] = row["gzip_bytes"] / max(limit, 1)
        row["gzip_compression_vs_dense_float32"] = reference["size_bytes"] / row["gzip_bytes"]
        log(f"  {label} {quantization}{' sparse' if sparse else ''}: "
            f"{row['latency_us_median_1t']:.2f} us (x{row['latency_ratio_1t']:.2f}; FLOPs "
            f"x{row['flops_ratio']:.2f}), {row['size_bytes']:,} B, gzip {row['gzip_bytes']:,} B")
        rows.append(row)
    return rows
