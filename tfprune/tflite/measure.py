"""Convert a Keras model to every requested TFLite variant and measure each on the interpreter.

``convert_and_measure`` serves the export job, the sweep's variants and tuning trials: one row
per (quantization, sparse encoding) with the Keras accuracy next to the TFLite accuracy, raw and
gzip sizes, compression against the float32 .tflite, and latency; "int4" and "mixed" rows are
made from the float32 bytes (ai-edge-quantizer) and name their int4 layers. ``time_together``
times many .tflite files interleaved, in shuffled rounds, so that their latencies can be
compared on a shared machine whose speed drifts.
"""

import os
import random
import time

import numpy as np

from tfprune import checks, quiet
from tfprune.tflite import evaluate, export
from tfprune.tflite import mixed as mixed_lib
from tfprune.tflite.quantizations import QUANTIZATIONS, validate_quantizations
from tfprune.tflite.traced import Traced

COMPARISON_COLUMNS = ["variant", "quantization", "sparse", "keras_accuracy", "tflite_accuracy",
           "accuracy_delta", "size_bytes", "gzip_bytes", "compression_vs_float32",
           "gzip_compression_vs_float32", "latency_ms_median", "latency_ms_p90", "num_threads",
           "delegate", "convert_time_s", "int4_fraction", "int4_layers", "file"]

INT4_LAYERS_IN = "the results' int4_layers column"  # a long list's whole, in the log


def variant_name(quantization, sparse):
    return quantization + ("_sparse" if sparse else "")


def convert_and_measure(model, x_test, y_test, representative, quantizations, sparse_options,
                        output_dir, stem="model", num_threads=1, latency_runs=200, warmup=20,
                        keras_accuracy=None, log=print, done=None, sparse_sizes=False,
                        mixed=None, validation=None, float32=None):
    """Write ``stem_<variant>.tflite`` files into ``output_dir`` and return one row each.

    ``done`` maps variant names to rows already measured (skipped, for resuming).
    ``sparse_sizes`` adds "sparse_bytes": the size of the same quantization sparse-encoded
    (None for int4 and mixed, which have no sparse encoding; their sparse variants are skipped).
    ``latency_runs=0`` skips the latency measurement (the row's latency is then None), for
    callers that time many files together with ``time_together``.
    ``mixed`` (a ``mixed.MixedSpec``) and ``validation`` ((x, y), a validation sample, never
    the test split: the layers' int4 costs are measured on it) serve the "mixed" row, which
    carries int4_layers, int8_layers, int4_fraction, mixed_budget_kb and the layer_costs.
    ``float32``: (bytes, seconds) of the float32 conversion when the caller already made it.
    """
    with Traced(model) as traced:  # one trace for all of the model's conversions
        quantizations = validate_quantizations(quantizations)
        representative = export.check_representative(model, representative)
        for quantization in quantizations:  # before anything is converted or written
            export.check_rewrite(quantization, mixed=mixed, validation=validation)
        # (quantization, sparse) -> (bytes, seconds, info): each conversion happens once
        converted = {} if float32 is None else {("float32", False): tuple(float32) + (None,)}

        def convert(quantization, sparse):
            if (quantization, sparse) not in converted:
                if QUANTIZATIONS.get(quantization).rewrites:
                    float32_content, float32_time, _ = convert("float32", False)
                    start = time.perf_counter()  # its time is the float32 conversion's and its own
                    content, info = export.from_float32(quantization, float32_content, model,
                                                        mixed, validation)
                    seconds = float32_time + time.perf_counter() - start
                else:
                    start = time.perf_counter()
                    content, info = export.to_tflite(model, quantization, representative,
                                                     sparse=sparse, traced=traced), None
                    seconds = time.perf_counter() - start
                converted[(quantization, sparse)] = (content, seconds, info)
            return converted[(quantization, sparse)]

        rows = []
        done = done or {}
        rewrites = {q for q in quantizations if QUANTIZATIONS.get(q).rewrites}
        # int4 and mixed have no sparse encoding (ai-edge-quantizer quantizes after the converter)
        todo = [(q, s) for q in quantizations for s in sparse_options if not (s and q in rewrites)]
        for quantization in dict.fromkeys(q for q, s in todo if variant_name(q, s) not in done):
            # The cheap checks (a mixed budget below the all-int4 size) before any file is written.
            export.check_float32(quantization, convert("float32", False)[0], model, mixed)
        float32_bytes = None
        for quantization, sparse in todo:
            name = variant_name(quantization, sparse)
            path = os.path.join(output_dir, f"{stem}_{name}.tflite")
            if name in done and os.path.exists(path):
                rows.append(done[name])
                continue
            if float32_bytes is None:  # the reference; reused when float32 is a variant too
                float32_bytes = len(convert("float32", False)[0])
            content, convert_time, info = convert(quantization, sparse)
            export.save_tflite(content, path)
            start = time.perf_counter()
            measured = evaluate.measure(content, x_test, y_test, num_threads=num_threads,
                                        latency_runs=latency_runs, warmup=warmup,
                                        reference_bytes=float32_bytes)
            row = dict(variant=name, quantization=quantization, sparse=bool(sparse),
                       keras_accuracy=keras_accuracy, file=path, convert_time_s=convert_time,
                       evaluate_time_s=time.perf_counter() - start, **measured)
            if keras_accuracy is not None:
                row["accuracy_delta"] = row["tflite_accuracy"] - keras_accuracy
            if not sparse and quantization not in rewrites:
                row["kernel_nonzeros"] = mixed_lib.kernel_nonzeros(content)
            if sparse_sizes and quantization in rewrites:
                row["sparse_bytes"] = None
            elif sparse_sizes:
                encoded, seconds, _ = convert(quantization, True)
                row["sparse_bytes"] = len(encoded)
                row["convert_time_s"] += 0.0 if sparse else seconds
            if info is not None:
                row.update(int4_layers=info["int4_layers"], int8_layers=info["int8_layers"],
                           int4_fraction=info["int4_fraction"])
            if quantization == "mixed":
                row.update(mixed_budget_kb=info["budget_kb"], layer_costs=info["costs"],
                           mixed_note=info["note"])
            timing = (f"{row['latency_ms_median'] * 1e3:.1f} us median on {num_threads} "
                      "thread(s)" if row.get("latency_ms_median") is not None else "not timed")
            log(f"{name}: tflite accuracy {row['tflite_accuracy']:.4f}, {row['size_bytes']:,} B "
                f"({row['gzip_bytes']:,} B gzip), {timing}, {row['delegate']}"
                + (f"; int4: {quiet.names(info['int4_layers'], INT4_LAYERS_IN) or 'none'} "
                   f"({info['int4_fraction']:.0%} of the weights)" if info is not None else ""))
            rows.append(row)
        return rows


def interleaved_times(calls, rounds, runs_per_round, seed=0):
    """{key: [seconds per call]} of every ``calls[key]()`` (warmed up by the caller), timed in
    ``rounds`` rounds that each visit the keys in a freshly shuffled (seeded) order and call each
    ``runs_per_round`` times (an int, or {key: int}): a slow spell of the machine falls on all
    of them alike."""
    times = {key: [] for key in calls}
    runs = runs_per_round if isinstance(runs_per_round, dict) else \
        dict.fromkeys(calls, runs_per_round)
    order = list(calls)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for key in order:
            invoke = calls[key]
            for _ in range(runs[key]):
                start = time.perf_counter()
                invoke()
                times[key].append(time.perf_counter() - start)
    return times


def time_together(files, example, rounds=10, runs_per_round=20, warmup=20, num_threads=1,
                  seed=0, xnnpack=True):
    """Latency of many .tflite files measured interleaved: {file: {"latency_ms_median",
    "latency_ms_p90", "latency_runs", ...}}.

    Every file is loaded once; then, in each of ``rounds`` rounds, the files are visited in a
    freshly shuffled order (seeded) and each is invoked ``runs_per_round`` times on ``example``
    (one input, batch 1); ``xnnpack=False`` on the built-in kernels. A slow spell of the machine thus falls on all files alike, and ratios
    between files taken from these figures compare like with like.
    """
    checks.check_int("rounds", rounds, 1)
    checks.check_int("runs_per_round", runs_per_round, 1)
    checks.check_int("warmup", warmup, 0)
    files = list(dict.fromkeys(os.fspath(f) for f in files))
    loaded = {path: evaluate.load(path, num_threads=num_threads, xnnpack=xnnpack)
              for path in files}
    for path, model in loaded.items():
        evaluate.prepare_single(model, example)
        for _ in range(warmup):
            model.interpreter.invoke()
    times = interleaved_times({path: loaded[path].interpreter.invoke for path in files},
                              rounds, runs_per_round, seed)
    return {path: {"latency_ms_median": float(np.median(t) * 1e3),
                   "latency_ms_p90": float(np.percentile(t, 90) * 1e3),
                   "latency_runs": len(t), "latency_warmup": warmup,
                   "latency_rounds": rounds, "num_threads": num_threads,
                   "delegate": loaded[path].delegate}
            for path, t in times.items()}
