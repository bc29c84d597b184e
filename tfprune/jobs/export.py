"""The export job: ``ExportConfig`` and ``run_export`` convert a saved Keras model to every
requested TFLite variant, measure each on the interpreter, and write comparison.csv / .json / .md
(comparison.json last: it marks the run finished; a rerun reuses measured variants).

"int4" and "mixed" are made from the float32 .tflite by ai-edge-quantizer (tflite/mixed.py);
"mixed" ranks the layers on the validation split and aims at ``mixed_budget_kb`` or
``mixed_int4_fraction``. A budget below the all-int4 size is refused before anything is
written."""

import os
import time

from tfprune import io, training
from tfprune.jobs.configs.export import ExportConfig  # noqa: F401  (jobs.export.ExportConfig)
from tfprune.jobs import runlock
from tfprune.jobs.rundir import prepare_run_dir
from tfprune.models import import_checked
from tfprune.results.tables import markdown_table, write_csv
from tfprune.tflite import export, measure
from tfprune.tflite import mixed as mixed_lib


def run_export(config, output_dir, overwrite=False, log=print, wait=False):
    """Export ``config.model_path`` to every variant and write the comparison tables, holding
    ``output_dir``'s lock (runlock.py; ``wait``: wait for another job holding it)."""
    with runlock.hold(output_dir, "export", wait=wait, log=log):
        return _run_export(config, output_dir, overwrite, log)


def _run_export(config, output_dir, overwrite, log):
    data = config.data()
    x_test, y_test = data.numpy("test")
    imported = import_checked(config.model_path, "model_path", data, log)
    model = imported.model
    representative = data.representative_sample(config.representative_count)
    export.check_representative(model, representative)
    mixed = config.mixed_spec() if "mixed" in config.quantizations else None
    validation = data.numpy("validation", limit=mixed_lib.RANK_SAMPLES) if mixed is not None \
        else None
    float32 = None
    if mixed is not None:  # the budget against the all-int4 size, before anything is written
        start = time.perf_counter()
        content = export.to_tflite(model, "float32")
        float32 = (content, time.perf_counter() - start)
        export.check_float32("mixed", content, model, mixed)
    same_run = prepare_run_dir(output_dir, config.record(), overwrite=overwrite,
                               marker="comparison.json")
    results_path = os.path.join(output_dir, "comparison.json")
    done = {}
    if same_run and os.path.exists(results_path):
        done = {row["variant"]: row for row in io.read_json(results_path)["rows"]}
    _, keras_accuracy = training.evaluate(model, data.split("test"))
    stem = os.path.splitext(os.path.basename(config.model_path))[0]
    rows = measure.convert_and_measure(
        model, x_test, y_test, representative, config.quantizations,
        [False, True] if config.sparse else [False], output_dir, stem=stem,
        num_threads=config.num_threads, latency_runs=config.latency_runs, warmup=config.warmup,
        keras_accuracy=keras_accuracy, log=log, done=done, mixed=mixed, validation=validation,
        float32=float32)
    rows = io.to_jsonable(rows)
    columns = measure.COMPARISON_COLUMNS
    write_csv(os.path.join(output_dir, "comparison.csv"), rows, columns)
    io.write_json(results_path, {"model_path": config.model_path, "keras_accuracy": keras_accuracy,
                                 "keras3": imported.translation.summary() if imported.keras3
                                 else None,
                                 "test_examples": int(len(y_test)), "rows": rows})
    table = markdown_table(rows, [c for c in columns if c not in ("file", "int4_layers")], {
        "keras_accuracy": ".4f", "tflite_accuracy": ".4f", "accuracy_delta": "+.4f",
        "size_bytes": ",", "gzip_bytes": ",", "compression_vs_float32": ".2f",
        "gzip_compression_vs_float32": ".2f", "latency_ms_median": ".4f",
        "latency_ms_p90": ".4f", "convert_time_s": ".2f", "int4_fraction": ".0%"})
    io.write_text(os.path.join(output_dir, "comparison.md"),
                  f"# TFLite variants of `{config.model_path}`\n\n"
                  f"Keras test accuracy {keras_accuracy:.4f} on {len(y_test)} {config.dataset} "
                  f"test images. Accuracy is measured on the LiteRT interpreter; latency is the "
                  f"median of {config.latency_runs} single-image invocations after "
                  f"{config.warmup} warm-up runs on {config.num_threads} thread(s); compression "
                  f"is against the float32 .tflite.\n\n" + table + _int4_lines(rows))
    return rows


def _int4_lines(rows):
    """Which layers the int4 and mixed variants made int4, under the table."""
    lines = []
    for row in rows:
        if row.get("int4_layers") is None:
            continue
        aim = (f"budget {row['mixed_budget_kb']:g} KB; " if row.get("mixed_budget_kb")
               else "")
        lines.append(f"- `{row['variant']}`: {aim}int4 weights in "
                     f"{', '.join(row['int4_layers']) or 'no layer'} "
                     f"({row['int4_fraction']:.0%} of the weights); int8 in "
                     f"{', '.join(row['int8_layers']) or 'no layer'}"
                     + (f". {row['mixed_note']}" if row.get("mixed_note") else ""))
    if not lines:
        return ""
    return ("\nint4 and mixed: weights quantized by ai-edge-quantizer from the float32 .tflite "
            "(dynamic range: per-channel weights, float activations); mixed ranks the layers by "
            "the accuracy each alone at int4 costs on the validation split.\n\n"
            + "\n".join(lines) + "\n")
