"""Prune a baseline (weight, unit, channel, or a deciding method), fine-tune, shrink, evaluate.

    tfprune prune --method=unit --schedule=polynomial --target_sparsity=0.5 \\
        --dataset=digits --model=cnn --baseline=train --output_dir=DIR

--baseline=train trains the baseline into DIR/baseline (reused when already there);
--baseline=PATH loads a saved Keras model (e.g. from `tfprune train`); a .keras file saved by
Keras 3 is translated to tf_keras (its outputs checked on test images) and the results are saved
for Keras 3 too. Writes DIR/config.json, DIR/metrics.json, DIR/layers.csv, DIR/pruned.keras,
DIR/shrunk.keras (when units were removed), DIR/keras3/*.keras (Keras 3 input or
--keras3_output) and DIR/plots/*.png. Every option is checked before anything trains.

--fine_tune_epochs=0 prunes once (one-shot) and evaluates without retraining;
--layer_sparsity=auto|global|FILE gives every layer its own target (DIR/layer_sparsity.json).
"""

from absl import flags

from tfprune.cli import common
from tfprune.jobs import runlock
from tfprune.jobs.configs.prune import PruneConfig

FLAGS = flags.FLAGS
common.define_command_flags("prune")


def main(argv):
    del argv
    config = PruneConfig(**common.config_values(PruneConfig), dynamic=common.dynamic_options())

    output_dir = FLAGS.output_dir or common.default_output_dir(
        "prune", f"{config.dataset}-{config.model}-{config.method}-{config.schedule or 'none'}-"
                 f"{'auto' if config.target_sparsity is None else f'{config.target_sparsity:g}'}"
                 f"-seed{config.seed}")
    with runlock.before_imports(output_dir, "prune", config.strategy, wait=FLAGS.wait,
                                log=common.log):
        from tfprune.jobs.prune import run_prune  # TensorFlow: only once the config holds
        metrics = run_prune(config, output_dir, overwrite=FLAGS.overwrite,
                            wait=FLAGS.wait, log=common.log).metrics
    if "decisions_path" in metrics:
        common.log(f"{metrics['pruning_events']} pruning events, {metrics['rollbacks']} rollbacks; "
                   f"decisions: {metrics['decisions_path']}")
    common.log(f"test accuracy {metrics['accuracy']:.4f} (baseline "
               f"{metrics['baseline_accuracy']:.4f}), pruned-layer sparsity "
               f"{metrics['pruned_sparsity']:.4f}")
    if "from_scratch" in metrics:
        common.log(f"the shrunk architecture trained from scratch "
                   f"({metrics['from_scratch']['epochs']} epochs): test accuracy "
                   f"{metrics['from_scratch']['accuracy']:.4f}")
    common.log(f"results: {output_dir}/metrics.json, {output_dir}/layers.csv, models: "
               f"{', '.join(p for p in metrics['models'].values() if p)}")
    if metrics.get("keras3"):
        common.log("Keras 3 models: " + ", ".join(
            v["path"] for k, v in metrics["keras3"].items() if k != "baseline" and v))


def run(argv=None):
    """The command: flags parsed from ``argv`` (default sys.argv), errors as one line."""
    common.run(main, argv, __doc__)


if __name__ == "__main__":
    run()
