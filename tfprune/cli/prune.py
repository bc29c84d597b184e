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
from tfprune.pruning.methods import METHODS
from tfprune.pruning.options import CRITERIA, LAYER_NORM, SELECTIONS
from tfprune.pruning.schedules import SCHEDULES

FLAGS = flags.FLAGS
D = common.defaults(PruneConfig)

common.define_data_flags(D)
common.define_model_flag(D)
flags.DEFINE_enum("method", D["method"], METHODS.names(),
                  "; ".join(f"{m.name}: {m.description}" for m in METHODS.entries()) + ".")
flags.DEFINE_enum("schedule", D["schedule"], SCHEDULES.names(),
                  "Pruning schedule (weight and unit; the other methods decide themselves).")
flags.DEFINE_float("target_sparsity", D["target_sparsity"],
                   "Fraction of weights (weight) or units (unit) to prune in each pruned layer, "
                   "in [0, 1); ignored by dynamic and adaptive, which choose their own.")
flags.DEFINE_string("baseline", D["baseline"], "'train' or the path of a saved Keras baseline model "
                    "(tf_keras, or a Keras 3 .keras file: translated).")
flags.DEFINE_integer("baseline_epochs", D["baseline_epochs"], "Epochs when --baseline=train.",
                     lower_bound=1)
flags.DEFINE_integer("fine_tune_epochs", D["fine_tune_epochs"],
                     "Fine-tuning epochs under pruning; 0 prunes once to the target with no "
                     "fine-tuning (one-shot: weight, unit, channel).", lower_bound=0)
common.define_positive_float("learning_rate", D["learning_rate"],
                             "Fine-tuning learning rate (Adam, cosine).")
flags.DEFINE_integer("begin_step", D["begin_step"], "First pruning step (default 0).")
flags.DEFINE_integer("end_step", D["end_step"],
                     "Last pruning step (default: constant, the last step; polynomial, the end "
                     "of the ramp, ramp_fraction of the steps).")
flags.DEFINE_integer("frequency", D["frequency"], "Steps between mask updates (default: 1/4 epoch).")
flags.DEFINE_float("initial_sparsity", D["initial_sparsity"], "Polynomial schedule's starting sparsity.")
flags.DEFINE_float("ramp_fraction", D["ramp_fraction"],
                   "Polynomial: fraction of the steps spent ramping up.")
flags.DEFINE_string("sparsity_m_by_n", D["sparsity_m_by_n"],
                    "Weight pruning in m:n blocks, e.g. 2:4 (needs --target_sparsity=0.5).")
flags.DEFINE_list("layers", D["layers"], "Layers to prune (default: all but the classifier and the "
                  "first convolution).")
flags.DEFINE_bool("prune_classifier", D["prune_classifier"],
                  "Also prune the last Dense (classifier) layer.")
flags.DEFINE_bool("prune_first_conv", D["prune_first_conv"], "Also prune the first convolution.")
flags.DEFINE_enum("criterion", D["criterion"], CRITERIA.names(),
                  "channel: group importance (l1/l2 norm of every parameter of a channel, "
                  "bn_scale: BatchNorm |gamma|, taylor: |w * dL/dw|).")
flags.DEFINE_enum("selection", D["selection"], list(SELECTIONS),
                  "channel: the same fraction from every group, or one global ratio.")
flags.DEFINE_float("max_per_group", D["max_per_group"],
                   "channel, global selection: at most this fraction of one group pruned.")
flags.DEFINE_integer("round_to", D["round_to"], "channel: keep a multiple of N channels per group.",
                     lower_bound=1)
flags.DEFINE_enum("layer_norm", D["layer_norm"], list(LAYER_NORM),
                  "channel: at a LayerNormalization over the channels, block (keep those "
                  "channels: the shrunk model equals the masked one) or renormalize (prune "
                  "through it; its statistics then span the kept channels, so the shrunk model "
                  "differs from the masked one by the reported max_abs_diff).")
flags.DEFINE_bool("from_scratch", D["from_scratch"],
                  "Also train the shrunk architecture from scratch for the baseline's plus the "
                  "fine-tuning's epochs, and report it beside the pruned model.")
flags.DEFINE_bool("keras3_output", D["keras3_output"],
                  "Also save the pruned and shrunk models as Keras 3 .keras files in DIR/keras3/ "
                  "(always when --baseline is a Keras 3 file).")
flags.DEFINE_string("layer_sparsity", D["layer_sparsity"],
                    "weight, unit: per-layer targets meeting --target_sparsity over the pruned "
                    "layers. uniform: every layer at the target; auto: from one-shot "
                    "sensitivity curves on the validation split (each layer pruned as far as "
                    "one common accuracy loss allows); global: one magnitude threshold over "
                    "all pruned layers; or a JSON ({\"layer\": sparsity}) / CSV (layer, "
                    "sparsity) file, e.g. a sensitivity run's layer_sparsity_*.json.")
flags.DEFINE_integer("sensitivity_samples", D["sensitivity_samples"],
                     "--layer_sparsity=auto: validation images for the sensitivity curves.",
                     lower_bound=1)
common.define_strategy_flag(D)
common.define_mixed_precision_flag(D, "Fine-tune (and train the baseline when "
                                   "--baseline=train)")
common.define_dynamic_flags()
common.define_run_flags("saved_models/prune/<dataset>-<model>-<method>-<schedule>-<sparsity>-seed<seed>")


def main(argv):
    del argv
    config = PruneConfig(**{name: FLAGS[name].value for name in D if name not in
                            ("deterministic", "dynamic", "layer_targets")},
                         dynamic=common.dynamic_options())

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
    common.run(main, argv)


if __name__ == "__main__":
    run()
