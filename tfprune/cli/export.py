"""Export a saved Keras model (baseline, pruned or shrunk) to TFLite and compare the variants.

    tfprune export --model_path=DIR/pruned.keras --dataset=digits \\
        --quantizations=float32,float16,dynamic,int8 --sparse --output_dir=DIR/tflite

Writes one .tflite per quantization (and per sparse encoding with --sparse) plus
comparison.csv, comparison.json and comparison.md: quantization, Keras vs TFLite accuracy,
raw/gzip size, compression vs float32, latency. "int4" and "mixed" (int4 weights for the least
important layers, int8 for the rest; ranked on the validation split) are made from the float32
.tflite by ai-edge-quantizer:

    tfprune export --model_path=DIR/model.keras \
        --quantizations=float32,dynamic,int4,mixed --mixed_budget_kb=40
"""

import os

from absl import flags

from tfprune.cli import common
from tfprune.jobs import runlock
from tfprune.jobs.configs.export import ExportConfig
from tfprune.tflite.quantizations import QUANTIZATIONS

FLAGS = flags.FLAGS
D = common.defaults(ExportConfig)

flags.DEFINE_string("model_path", D["model_path"], "Saved Keras model (.keras or .h5) to export.")
common.define_dataset_flags(D)  # evaluate and calibrate on the model's data (same split_seed)
flags.DEFINE_list("quantizations", list(D["quantizations"]),
                  f"Quantizations, any of: {', '.join(QUANTIZATIONS.names())}.")
flags.DEFINE_bool("sparse", D["sparse"], "Also write EXPERIMENTAL_SPARSITY-encoded variants "
                  "(not of int4 and mixed: ai-edge-quantizer has no sparse encoding).")
common.define_mixed_flags(D)
flags.DEFINE_integer("representative_count", D["representative_count"],
                     "Training images for int8 calibration.", lower_bound=1)
flags.DEFINE_integer("num_threads", D["num_threads"],
                     "Interpreter threads for the latency measurement.", lower_bound=1)
flags.DEFINE_integer("latency_runs", D["latency_runs"], "Timed invocations per variant.",
                     lower_bound=1)
flags.DEFINE_integer("warmup", D["warmup"], "Untimed invocations before timing.", lower_bound=0)
common.define_run_flags("<model directory>/tflite")
flags.mark_flag_as_required("model_path")


def main(argv):
    del argv
    config = ExportConfig(**dict({name: FLAGS[name].value for name in D},
                                 quantizations=tuple(FLAGS.quantizations)))
    output_dir = FLAGS.output_dir or os.path.join(os.path.dirname(FLAGS.model_path) or ".", "tflite")
    with runlock.before_imports(output_dir, "export", wait=FLAGS.wait, log=common.log):
        from tfprune.jobs.export import run_export  # TensorFlow: only once the config holds
        rows = run_export(config, output_dir, overwrite=FLAGS.overwrite,
                          wait=FLAGS.wait, log=common.log)
    common.log(f"{len(rows)} .tflite files in {output_dir}; comparison: "
               f"{output_dir}/comparison.md (.csv, .json)")


def run(argv=None):
    """The command: flags parsed from ``argv`` (default sys.argv), errors as one line."""
    common.run(main, argv)


if __name__ == "__main__":
    run()
