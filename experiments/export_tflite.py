"""Export a saved Keras model (baseline, pruned or shrunk) to TFLite and compare the variants.

    python -m experiments.export_tflite --model_path=DIR/pruned.keras --dataset=digits \\
        --quantizations=float32,float16,dynamic,int8 --sparse --output_dir=DIR/tflite

Writes one .tflite per quantization (and per sparse encoding with --sparse) plus
comparison.csv, comparison.json and comparison.md: quantization, Keras vs TFLite accuracy,
raw/gzip size, compression vs float32, latency.
"""

import os

from absl import flags

from experiments import common
from tfprune.data import DATASETS
from tfprune.deploy import ExportConfig, run_export
from tfprune.export import QUANTIZATIONS

FLAGS = flags.FLAGS

flags.DEFINE_string("model_path", None, "Saved Keras model (.keras or .h5) to export.")
flags.DEFINE_enum("dataset", "digits", DATASETS.names(), "Dataset to evaluate and calibrate on.")
flags.DEFINE_string("data_dir", None, "tfds data directory (not needed for digits).")
flags.DEFINE_integer("split_seed", 0, "Seed of the digits split (use the model's).", lower_bound=0)
flags.DEFINE_list("quantizations", ["float32", "float16", "dynamic", "int8"],
                  f"Quantizations, any of: {', '.join(QUANTIZATIONS.names())}.")
flags.DEFINE_bool("sparse", False, "Also write EXPERIMENTAL_SPARSITY-encoded variants.")
flags.DEFINE_integer("representative_count", 200, "Training images for int8 calibration.",
                     lower_bound=1)
flags.DEFINE_integer("num_threads", 1, "Interpreter threads for the latency measurement.",
                     lower_bound=1)
flags.DEFINE_integer("latency_runs", 200, "Timed invocations per variant.", lower_bound=1)
flags.DEFINE_integer("warmup", 20, "Untimed invocations before timing.", lower_bound=0)
common.define_run_flags("<model directory>/tflite")
flags.mark_flag_as_required("model_path")


def main(argv):
    del argv
    config = ExportConfig(
        model_path=FLAGS.model_path, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
        split_seed=FLAGS.split_seed, quantizations=tuple(FLAGS.quantizations), sparse=FLAGS.sparse,
        representative_count=FLAGS.representative_count, num_threads=FLAGS.num_threads,
        latency_runs=FLAGS.latency_runs, warmup=FLAGS.warmup)
    output_dir = FLAGS.output_dir or os.path.join(os.path.dirname(FLAGS.model_path) or ".", "tflite")
    rows = run_export(config, output_dir, overwrite=FLAGS.overwrite, log=common.log)
    common.log(f"{len(rows)} .tflite files in {output_dir}; comparison: "
               f"{output_dir}/comparison.md (.csv, .json)")


if __name__ == "__main__":
    common.run(main)
