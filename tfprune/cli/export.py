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

FLAGS = flags.FLAGS
common.define_command_flags("export")


def main(argv):
    del argv
    config = ExportConfig(**common.config_values(ExportConfig))
    output_dir = FLAGS.output_dir or os.path.join(os.path.dirname(FLAGS.model_path) or ".", "tflite")
    with runlock.before_imports(output_dir, "export", wait=FLAGS.wait, log=common.log):
        from tfprune.jobs.export import run_export  # TensorFlow: only once the config holds
        rows = run_export(config, output_dir, overwrite=FLAGS.overwrite,
                          wait=FLAGS.wait, log=common.log)
    common.log(f"{len(rows)} .tflite files in {output_dir}; comparison: "
               f"{output_dir}/comparison.md (.csv, .json)")


def run(argv=None):
    """The command: flags parsed from ``argv`` (default sys.argv), errors as one line."""
    common.run(main, argv, __doc__)


if __name__ == "__main__":
    run()
