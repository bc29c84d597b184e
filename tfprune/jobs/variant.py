"""One variant, shared by the sweep and the tuner: prune -> choose the shrunk or the pruned
model -> convert to each quantization and measure -> result rows (results/rows.py).

The model stays in memory from pruning to conversion; statistics come from the pruning run,
not from counting the model again.
"""

import os

from tfprune.jobs.prune import run_prune
from tfprune.results import rows as rows_lib
from tfprune.tflite import measure
from tfprune.tflite.mixed import RANK_SAMPLES, MixedSpec


def deploy(model, kind, data, out_dir, *, key, quantizations, representative_count,
           num_threads=1, latency_runs=200, keras_accuracy, dense_stats, deployed_stats,
           extra=None, sources=(), log=None, mixed=None):
    """Convert ``model`` (the ``kind`` of model a variant deploys) to every quantization,
    measure each .tflite, and return one result row per quantization.

    ``dense_stats`` (params, flops of the dense baseline) scale the compression ratio and the
    theoretical speedup; ``deployed_stats`` are the deployed model's own counts; ``mixed`` (a
    MixedSpec) is what a "mixed" quantization aims for, ranked on the validation split;
    ``latency_runs=0`` leaves latency to a later interleaved timing; ``sources`` are further
    dicts a row may take columns from (after all the others).
    """
    x_test, y_test = data.numpy("test")
    measured = measure.convert_and_measure(
        model, x_test, y_test, data.representative_sample(representative_count), quantizations,
        [False], os.path.join(out_dir, "tflite"), stem=kind, num_threads=num_threads,
        latency_runs=latency_runs, keras_accuracy=keras_accuracy, log=log or (lambda _: None),
        sparse_sizes=True, mixed=mixed or MixedSpec(),
        validation=data.numpy("validation", limit=RANK_SAMPLES)
        if "mixed" in quantizations else None)
    derived = {
        "keras_accuracy": keras_accuracy, "deployed": kind,
        "compression_ratio": dense_stats["params"] / max(deployed_stats["nonzero_params"], 1),
        "theoretical_speedup": dense_stats["flops"] / max(deployed_stats["nonzero_flops"], 1),
    }
    return [rows_lib.make_row(key.identity(), derived, extra or {}, deployed_stats,
                              dict(row, tflite_file=row["file"]), *sources) for row in measured]


def prune_variant(prune_config, out_dir, data, baseline, dense_stats, *, extra=None, log=None,
                  curves_cache=None, draw=None):
    """Prune ``baseline`` (a (model, path) pair) by ``prune_config`` into ``out_dir``; return
    (PruneRun, the keyword arguments ``deploy`` takes for its deployed model but the
    conversion options). ``draw``: how the run's plots are drawn (run_prune)."""
    run = run_prune(prune_config, out_dir, overwrite=True, log=log or (lambda _: None),
                    data=data, baseline=baseline, curves_cache=curves_cache, draw=draw)
    metrics = run.metrics
    scratch = metrics.get("from_scratch")
    return run, dict(
        keras_accuracy=metrics["accuracy"], dense_stats=dense_stats,
        deployed_stats=metrics["deployed"],
        extra=dict(extra or {}, achieved_sparsity=metrics["pruned_sparsity"],
                   scratch_accuracy=scratch["accuracy"] if scratch else None,
                   predicted_latency_ratio=(metrics.get("latency") or {}).get(
                       "predicted_ratio")),
        sources=(metrics,))


def prune_and_deploy(prune_config, key, out_dir, data, baseline, dense_stats, *, quantizations,
                     representative_count, num_threads=1, latency_runs=200, extra=None,
                     log=None, curves_cache=None, mixed=None):
    """Prune ``baseline`` (a (model, path) pair) by ``prune_config`` into ``out_dir`` and deploy
    the result; return (PruneRun, rows)."""
    run, measured = prune_variant(prune_config, out_dir, data, baseline, dense_stats,
                                  extra=extra, log=log, curves_cache=curves_cache)
    rows = deploy(run.model(), run.deployed_kind, data, out_dir, key=key,
                  quantizations=quantizations, representative_count=representative_count,
                  num_threads=num_threads, latency_runs=latency_runs, log=log, mixed=mixed,
                  **measured)
    return run, rows
