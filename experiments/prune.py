"""Prune a baseline, fine-tune, strip, shrink (unit pruning) and evaluate.

    python -m experiments.prune --method=unit --schedule=polynomial --target_sparsity=0.5 \\
        --dataset=digits --model=cnn --baseline=train --output_dir=DIR

--baseline=train trains the baseline into DIR/baseline (reused when already there);
--baseline=PATH loads a saved Keras model (e.g. from experiments.train). Writes DIR/config.json,
DIR/metrics.json, DIR/layers.csv, DIR/pruned.keras, DIR/shrunk.keras (when units were removed)
and DIR/plots/*.png.
"""

from absl import flags

from experiments import common
from tfprune.pruning import METHODS, SCHEDULES
from tfprune.pruning.pipeline import PruneConfig, run_prune

FLAGS = flags.FLAGS

common.define_data_flags()
common.define_model_flag()
flags.DEFINE_enum("method", "weight", METHODS.names(),
                  "weight: magnitude pruning of single weights (tfmot); unit: whole Dense "
                  "neurons / Conv2D filters by L2 norm; dynamic: the mean-column-norm pruner "
                  "decides when/where/how much (no target); incremental: Taylor-contribution "
                  "rounds up to the target; adaptive: PQ-index rounds (no target).")
flags.DEFINE_enum("schedule", "polynomial", SCHEDULES.names(), "Pruning schedule.")
flags.DEFINE_float("target_sparsity", 0.9,
                   "Fraction of weights (weight) or units (unit) to prune in each pruned layer, "
                   "in [0, 1).")
flags.DEFINE_string("baseline", "train", "'train' or the path of a saved Keras baseline model.")
flags.DEFINE_integer("baseline_epochs", 60, "Epochs when --baseline=train.", lower_bound=1)
flags.DEFINE_integer("fine_tune_epochs", 20, "Fine-tuning epochs under pruning.", lower_bound=1)
common.define_positive_float("learning_rate", 3e-3, "Fine-tuning learning rate (Adam, cosine).")
flags.DEFINE_integer("begin_step", None, "First pruning step (default 0).")
flags.DEFINE_integer("end_step", None,
                     "Last pruning step (default: constant, the last step; polynomial, the end "
                     "of the ramp, ramp_fraction of the steps).")
flags.DEFINE_integer("frequency", None, "Steps between mask updates (default: 1/4 epoch).")
flags.DEFINE_float("initial_sparsity", 0.0, "Polynomial schedule's starting sparsity.")
flags.DEFINE_float("ramp_fraction", 0.6, "Polynomial: fraction of the steps spent ramping up.")
flags.DEFINE_string("sparsity_m_by_n", None, "Weight pruning in m:n blocks, e.g. 2:4 (needs "
                    "--target_sparsity=0.5).")
flags.DEFINE_list("layers", None, "Layers to prune (default: all but the classifier and the "
                  "first convolution).")
flags.DEFINE_bool("prune_classifier", False, "Also prune the last Dense (classifier) layer.")
flags.DEFINE_bool("prune_first_conv", False, "Also prune the first convolution.")
# Options of the dynamic methods (unset: the DynamicConfig default).
flags.DEFINE_enum("granularity", None, ["unit", "weight"],
                  "Dynamic methods: prune whole units or single weights (default: weight for "
                  "adaptive, unit otherwise).")
for _name, _help in [
    ("interval", "dynamic: epochs between checks (1)"),
    ("patience", "dynamic: stable checks in a row before pruning a layer (2)"),
    ("every", "incremental/adaptive: epochs between pruning rounds (2)"),
]:
    flags.DEFINE_integer(_name, None, _help)
for _name, _help in [
    ("norm_tolerance", "dynamic: relative change of the mean column norm counted as stable (0.05)"),
    ("accuracy_tolerance", "dynamic: allowed drop of validation accuracy (0.02)"),
    ("norm_fraction", "dynamic: prune units below this fraction of the mean column norm (0.8)"),
    ("max_step", "dynamic: most of a layer pruned per event (0.125)"),
    ("max_sparsity", "dynamic/adaptive: per-layer ceiling (0.9)"),
    ("prune_fraction", "incremental: fraction of the remaining pruned per round (fitted)"),
    ("pq_p", "adaptive: PQ index p (0.5), p < q"),
    ("pq_q", "adaptive: PQ index q (1.0)"),
    ("eta", "adaptive: eta (0)"),
    ("gamma", "adaptive: gamma (1)"),
    ("beta", "adaptive: beta, most of a layer pruned per round (0.9)"),
]:
    flags.DEFINE_float(_name, None, _help)
DYNAMIC_FLAGS = {"granularity": "granularity", "interval": "interval", "patience": "patience",
                 "every": "every", "norm_tolerance": "norm_tolerance",
                 "accuracy_tolerance": "accuracy_tolerance", "norm_fraction": "norm_fraction",
                 "max_step": "max_step", "max_sparsity": "max_sparsity",
                 "prune_fraction": "prune_fraction", "pq_p": "p", "pq_q": "q", "eta": "eta",
                 "gamma": "gamma", "beta": "beta"}
common.define_run_flags("saved_models/prune/<dataset>-<model>-<method>-<schedule>-<sparsity>-seed<seed>")


def dynamic_options():
    options = {field: FLAGS[flag].value for flag, field in DYNAMIC_FLAGS.items()
               if FLAGS[flag].value is not None}
    return options or None


def main(argv):
    del argv
    config = PruneConfig(
        dataset=FLAGS.dataset, model=FLAGS.model, method=FLAGS.method, schedule=FLAGS.schedule,
        target_sparsity=FLAGS.target_sparsity, fine_tune_epochs=FLAGS.fine_tune_epochs,
        learning_rate=FLAGS.learning_rate, batch_size=FLAGS.batch_size, seed=FLAGS.seed,
        split_seed=FLAGS.split_seed, augment=FLAGS.augment, data_dir=FLAGS.data_dir,
        baseline=FLAGS.baseline, baseline_epochs=FLAGS.baseline_epochs,
        begin_step=FLAGS.begin_step, end_step=FLAGS.end_step, frequency=FLAGS.frequency,
        initial_sparsity=FLAGS.initial_sparsity, ramp_fraction=FLAGS.ramp_fraction,
        sparsity_m_by_n=FLAGS.sparsity_m_by_n, layers=FLAGS.layers,
        prune_classifier=FLAGS.prune_classifier, prune_first_conv=FLAGS.prune_first_conv,
        dynamic=dynamic_options())
    output_dir = FLAGS.output_dir or common.default_output_dir(
        "prune", f"{config.dataset}-{config.model}-{config.method}-{config.schedule}-"
                 f"{config.target_sparsity:g}-seed{config.seed}")
    metrics = run_prune(config, output_dir, overwrite=FLAGS.overwrite, log=common.log)
    if "decisions_path" in metrics:
        common.log(f"{metrics['pruning_events']} pruning events, {metrics['rollbacks']} rollbacks; "
                   f"decisions: {metrics['decisions_path']}")
    common.log(f"test accuracy {metrics['accuracy']:.4f} (baseline "
               f"{metrics['baseline_accuracy']:.4f}), pruned-layer sparsity "
               f"{metrics['pruned_sparsity']:.4f}")
    common.log(f"results: {output_dir}/metrics.json, {output_dir}/layers.csv, models: "
               f"{', '.join(p for p in metrics['models'].values() if p)}")


if __name__ == "__main__":
    common.run(main)
