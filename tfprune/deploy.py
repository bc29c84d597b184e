"""Convert a Keras model to every requested TFLite variant and measure each on the interpreter.

``convert_and_measure`` is shared by experiments/export_tflite.py and the sweep: one row per
(quantization, sparse encoding) with the Keras accuracy next to the TFLite accuracy, raw and
gzip sizes, compression against the float32 .tflite, and latency.
"""

import dataclasses
import os
import time

from tfprune import evaluate, export, io
from tfprune import train as train_lib
from tfprune.data import DATASETS, load_data
from tfprune.errors import TfpruneError
from tfprune.keras import keras

COLUMNS = ["variant", "quantization", "sparse", "keras_accuracy", "tflite_accuracy",
           "accuracy_delta", "size_bytes", "gzip_bytes", "compression_vs_float32",
           "gzip_compression_vs_float32", "latency_ms_median", "latency_ms_p90", "num_threads",
           "delegate", "convert_time_s", "file"]


def variant_name(quantization, sparse):
    return quantization + ("_sparse" if sparse else "")


def validate_quantizations(quantizations):
    if not quantizations:
        raise TfpruneError(f"`quantizations` must name at least one of "
                           f"{', '.join(export.QUANTIZATIONS.names())}")
    for name in quantizations:
        export.QUANTIZATIONS.validate(name)
    return list(dict.fromkeys(quantizations))


def convert_and_measure(model, x_test, y_test, representative, quantizations, sparse_options,
                        output_dir, stem="model", num_threads=1, latency_runs=200, warmup=20,
                        keras_accuracy=None, log=print, done=None, sparse_sizes=False):
    """Write ``stem_<variant>.tflite`` files into ``output_dir`` and return one row each.

    ``done`` maps variant names to rows already measured (skipped, for resuming).
    ``sparse_sizes`` adds "sparse_bytes": the size of the same quantization sparse-encoded.
    """
    quantizations = validate_quantizations(quantizations)
    representative = export.check_representative(model, representative)
    converted = {}  # (quantization, sparse) -> (bytes, seconds): each conversion happens once

    def convert(quantization, sparse):
        if (quantization, sparse) not in converted:
            start = time.perf_counter()
            content = export.to_tflite(model, quantization, representative, sparse=sparse)
            converted[(quantization, sparse)] = (content, time.perf_counter() - start)
        return converted[(quantization, sparse)]

    rows = []
    done = done or {}
    float32_bytes = None
    for quantization in quantizations:
        for sparse in sparse_options:
            name = variant_name(quantization, sparse)
            path = os.path.join(output_dir, f"{stem}_{name}.tflite")
            if name in done and os.path.exists(path):
                rows.append(done[name])
                continue
            if float32_bytes is None:  # the reference; reused when float32 is a variant too
                float32_bytes = len(convert("float32", False)[0])
            content, convert_time = convert(quantization, sparse)
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
            if sparse_sizes:
                encoded, seconds = convert(quantization, True)
                row["sparse_bytes"] = len(encoded)
                row["convert_time_s"] += 0.0 if sparse else seconds
            log(f"{name}: tflite accuracy {row['tflite_accuracy']:.4f}, {row['size_bytes']:,} B "
                f"({row['gzip_bytes']:,} B gzip), {row['latency_ms_median'] * 1e3:.1f} us median "
                f"on {num_threads} thread(s), {row['delegate']}")
            rows.append(row)
    return rows


@dataclasses.dataclass
class ExportConfig:
    model_path: str
    dataset: str = "digits"
    data_dir: str = None
    split_seed: int = 0
    quantizations: tuple = ("float32", "float16", "dynamic", "int8")
    sparse: bool = False          # also write the EXPERIMENTAL_SPARSITY-encoded variants
    representative_count: int = 200
    num_threads: int = 1
    latency_runs: int = 200
    warmup: int = 20

    def __post_init__(self):
        DATASETS.validate(self.dataset)
        self.quantizations = tuple(validate_quantizations(list(self.quantizations)))
        for name, minimum in (("representative_count", 1), ("num_threads", 1),
                              ("latency_runs", 1), ("warmup", 0)):
            train_lib._check_int(name, getattr(self, name), minimum)
        if not os.path.isfile(self.model_path):
            raise TfpruneError(f"`model_path` must be a saved Keras model file, got "
                               f"{self.model_path!r}, which is not a file")

    def to_dict(self):
        return dataclasses.asdict(self)


def run_export(config, output_dir, overwrite=False, log=print):
    """Export ``config.model_path`` to every variant and write the comparison tables."""
    from tfprune import report

    try:
        model = keras.models.load_model(config.model_path, compile=False)
    except (OSError, ValueError) as err:
        raise TfpruneError(f"cannot load Keras model {config.model_path!r}: {err}") from None
    data = load_data(config.dataset, data_dir=config.data_dir, split_seed=config.split_seed)
    x_test, y_test = data.numpy("test")
    representative = data.representative_sample(config.representative_count)
    if tuple(model.input_shape[1:]) != tuple(data.input_shape):
        raise TfpruneError(f"model {config.model_path!r} takes {tuple(model.input_shape[1:])}; "
                           f"dataset {config.dataset!r} has {tuple(data.input_shape)}")
    export.check_representative(model, representative)
    same_run = io.prepare_run_dir(output_dir, config.to_dict(), overwrite=overwrite,
                                  marker="comparison.json")
    results_path = os.path.join(output_dir, "comparison.json")
    done = {}
    if same_run and os.path.exists(results_path):
        done = {row["variant"]: row for row in io.read_json(results_path)["rows"]}
    _, keras_accuracy = train_lib.evaluate(
        train_lib.compile_model(model, keras.optimizers.Adam()), data.split("test"))
    stem = os.path.splitext(os.path.basename(config.model_path))[0]
    rows = convert_and_measure(
        model, x_test, y_test, representative, config.quantizations,
        [False, True] if config.sparse else [False], output_dir, stem=stem,
        num_threads=config.num_threads, latency_runs=config.latency_runs, warmup=config.warmup,
        keras_accuracy=keras_accuracy, log=log, done=done)
    rows = io.to_jsonable(rows)
    report.write_csv(os.path.join(output_dir, "comparison.csv"), rows, COLUMNS)
    io.write_json(results_path, {"model_path": config.model_path, "keras_accuracy": keras_accuracy,
                                 "test_examples": int(len(y_test)), "rows": rows})
    table = report.markdown_table(rows, [c for c in COLUMNS if c != "file"], {
        "keras_accuracy": ".4f", "tflite_accuracy": ".4f", "accuracy_delta": "+.4f",
        "size_bytes": ",", "gzip_bytes": ",", "compression_vs_float32": ".2f",
        "gzip_compression_vs_float32": ".2f", "latency_ms_median": ".4f",
        "latency_ms_p90": ".4f", "convert_time_s": ".2f"})
    io.write_text(os.path.join(output_dir, "comparison.md"),
                  f"# TFLite variants of `{config.model_path}`\n\n"
                  f"Keras test accuracy {keras_accuracy:.4f} on {len(y_test)} {config.dataset} "
                  f"test images. Accuracy is measured on the LiteRT interpreter; latency is the "
                  f"median of {config.latency_runs} single-image invocations after "
                  f"{config.warmup} warm-up runs on {config.num_threads} thread(s); compression "
                  f"is against the float32 .tflite.\n\n" + table)
    return rows
