"""Train a baseline model with a fixed seed and write its run directory.

    python -m experiments.train --dataset=digits --model=cnn --epochs=60 --output_dir=DIR

Writes DIR/config.json, DIR/metrics.json, DIR/history.json, DIR/model.keras and
DIR/plots/training.png. Rerunning the same command reuses a finished run and resumes an
interrupted one from its last epoch.
"""

from absl import flags

from experiments import common
from tfprune.train import TrainConfig, train_baseline

FLAGS = flags.FLAGS

common.define_data_flags()
common.define_model_flag()
common.define_optimizer_flags()
flags.DEFINE_integer("epochs", 60, "Training epochs.", lower_bound=1)
flags.DEFINE_bool("mixed_precision", False, "mixed_float16 policy (for GPUs; slow on CPU).")
flags.DEFINE_bool("deterministic", True, "Deterministic TensorFlow ops (reproducible runs).")
common.define_run_flags("saved_models/train/<dataset>-<model>-seed<seed>")


def main(argv):
    del argv
    config = TrainConfig(
        dataset=FLAGS.dataset, model=FLAGS.model, epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate, optimizer=FLAGS.optimizer,
        momentum=FLAGS.momentum, weight_decay=FLAGS.weight_decay, lr_schedule=FLAGS.lr_schedule,
        seed=FLAGS.seed, split_seed=FLAGS.split_seed, augment=FLAGS.augment,
        data_dir=FLAGS.data_dir, mixed_precision=FLAGS.mixed_precision,
        deterministic=FLAGS.deterministic)
    output_dir = FLAGS.output_dir or common.default_output_dir(
        "train", f"{config.dataset}-{config.model}-seed{config.seed}")
    metrics = train_baseline(config, output_dir, overwrite=FLAGS.overwrite, log=common.log)
    common.log(f"test accuracy {metrics['test_accuracy']:.4f}")
    common.log(f"results: {output_dir}/metrics.json, model: {metrics['model_path']}")


if __name__ == "__main__":
    common.run(main)
