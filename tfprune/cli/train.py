"""Train a baseline model with a fixed seed and write its run directory.

    tfprune train --dataset=digits --model=cnn --epochs=60 --output_dir=DIR

Writes DIR/config.json, DIR/metrics.json, DIR/history.json, DIR/model.keras and
DIR/plots/training.png. Rerunning the same command reuses a finished run and resumes an
interrupted one from its last epoch.
"""

from absl import flags

from tfprune.cli import common
from tfprune.jobs import runlock
from tfprune.jobs.configs.train import TrainConfig

FLAGS = flags.FLAGS
common.define_command_flags("train")


def main(argv):
    del argv
    config = TrainConfig(**common.config_values(TrainConfig))
    output_dir = FLAGS.output_dir or common.default_output_dir(
        "train", f"{config.dataset}-{config.model}-seed{config.seed}")
    with runlock.before_imports(output_dir, "train", config.strategy, wait=FLAGS.wait,
                                log=common.log):
        from tfprune.jobs.train import train_baseline  # TensorFlow: only once the config holds
        metrics = train_baseline(config, output_dir, overwrite=FLAGS.overwrite,
                                 wait=FLAGS.wait, log=common.log)
    common.log(f"test accuracy {metrics['test_accuracy']:.4f}")
    common.log(f"results: {output_dir}/metrics.json, model: {metrics['model_path']}")


def run(argv=None):
    """The command: flags parsed from ``argv`` (default sys.argv), errors as one line."""
    common.run(main, argv, __doc__)


if __name__ == "__main__":
    run()
