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
D = common.defaults(TrainConfig)

common.define_data_flags(D)
common.define_model_flag(D)
common.define_optimizer_flags(D)
flags.DEFINE_integer("epochs", D["epochs"], "Training epochs.", lower_bound=1)
common.define_mixed_precision_flag(D)
common.define_strategy_flag(D)
flags.DEFINE_bool("deterministic", D["deterministic"],
                  "Deterministic TensorFlow ops (reproducible runs).")
common.define_run_flags("saved_models/train/<dataset>-<model>-seed<seed>")


def main(argv):
    del argv
    config = TrainConfig(**{name: FLAGS[name].value for name in D})
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
    common.run(main, argv)


if __name__ == "__main__":
    run()
