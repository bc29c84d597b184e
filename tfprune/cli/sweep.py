"""The main job: compare every method, schedule, sparsity and quantization, with a report.

    tfprune sweep --dataset=digits --model=cnn --methods=weight,unit \\
        --schedules=constant,polynomial --sparsities=0.5,0.75,0.9 --seeds=0 --output_dir=DIR

Writes DIR/config.json, DIR/results.csv, DIR/results.json, DIR/report.md, DIR/plots/*.png,
DIR/latency.json and, per variant, DIR/variants/seed<k>/<variant>/ with its models and .tflite
files. Rerunning the same command skips finished variants. Every option is checked before any
baseline trains.
"""

from absl import flags

from tfprune.cli import common
from tfprune.jobs import runlock
from tfprune.jobs.configs.sweep import SweepConfig

FLAGS = flags.FLAGS
common.define_command_flags("sweep")


def main(argv):
    del argv
    config = SweepConfig(**common.config_values(SweepConfig), dynamic=common.dynamic_options())
    output_dir = FLAGS.output_dir or common.default_output_dir(
        "sweep", f"{config.dataset}-{config.model}")
    common.log(f"sweep of {len(config.variants())} variants x {len(config.quantizations)} "
               f"quantizations into {output_dir}")
    with runlock.before_imports(output_dir, "sweep", config.strategy, wait=FLAGS.wait,
                                log=common.log):
        from tfprune.jobs.sweep import run_sweep  # TensorFlow: only once the config holds
        run_sweep(config, output_dir, overwrite=FLAGS.overwrite, wait=FLAGS.wait, log=common.log,
                  visualize=FLAGS.visualize, overlap=FLAGS.overlap_deploy)
    common.log(f"report: {output_dir}/report.md")


def run(argv=None):
    """The command: flags parsed from ``argv`` (default sys.argv), errors as one line."""
    common.run(main, argv, __doc__)


if __name__ == "__main__":
    run()
