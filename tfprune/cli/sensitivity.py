"""Layer sensitivity: one-shot curves of the whole model and of each layer or channel group.
pruned over a range of sparsities, layer-wise targets from the curves, and each layer alone at
int4 weights; no fine-tuning anywhere.

    tfprune sensitivity --dataset=fashion_mnist --model=cnn \\
        --baseline=saved_models/train/fashion_mnist-cnn-seed0/model.keras --output_dir=DIR

Writes DIR/oneshot.csv, DIR/sensitivity.csv, DIR/layer_sparsity.csv and
DIR/layer_sparsity_<method>_<target>.json (for `tfprune prune --layer_sparsity=FILE`),
DIR/quantization.csv, DIR/plots/*.png, DIR/report.md and DIR/sensitivity.json (last).
"""

from absl import flags

from tfprune.cli import common
from tfprune.jobs import runlock
from tfprune.jobs.configs.sensitivity import SensitivityConfig

FLAGS = flags.FLAGS
common.define_command_flags("sensitivity")


def main(argv):
    del argv
    config = SensitivityConfig(**common.config_values(SensitivityConfig))
    output_dir = FLAGS.output_dir or common.default_output_dir(
        "sensitivity", f"{config.dataset}-{config.model}-seed{config.seed}")
    with runlock.before_imports(output_dir, "sensitivity", wait=FLAGS.wait, log=common.log):
        from tfprune.jobs.sensitivity import run_sensitivity  # TensorFlow: once the config holds
        run_sensitivity(config, output_dir, overwrite=FLAGS.overwrite, wait=FLAGS.wait,
                        log=common.log)
    common.log(f"report: {output_dir}/report.md")


def run(argv=None):
    """The command: flags parsed from ``argv`` (default sys.argv), errors as one line."""
    common.run(main, argv, __doc__)


if __name__ == "__main__":
    run()
