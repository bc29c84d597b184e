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
from tfprune.pruning.methods import ONE_SHOT

FLAGS = flags.FLAGS
D = common.defaults(SensitivityConfig)

common.define_data_flags(D)
common.define_model_flag(D)
flags.DEFINE_string("baseline", D["baseline"], "'train' or the path of a saved Keras baseline "
                    "model (tf_keras, or a Keras 3 .keras file: translated).")
flags.DEFINE_integer("baseline_epochs", D["baseline_epochs"], "Epochs when --baseline=train.",
                     lower_bound=1)
flags.DEFINE_list("methods", list(D["methods"]),
                  f"One-shot methods for the whole-model curves: {', '.join(ONE_SHOT)}; weight "
                  "and unit also get per-layer curves and layer-wise targets.")
flags.DEFINE_list("sparsities", [f"{s:g}" for s in D["sparsities"]],
                  "Sparsities of the curves, in [0, 1) (0 is always included).")
flags.DEFINE_integer("samples", D["samples"],
                     "Validation images for the per-layer curves and the int4 costs.",
                     lower_bound=1)
flags.DEFINE_list("targets", [f"{t:g}" for t in D["targets"]],
                  "Global sparsities to derive layer-wise targets for.")
flags.DEFINE_bool("channel_groups", D["channel_groups"],
                  "Also prune each channel group alone (coupled channels across layers).")
flags.DEFINE_bool("quantization", D["quantization"],
                  "Also put each layer's weights alone at int4 (LiteRT interpreter).")
flags.DEFINE_list("layers", D["layers"], "Layers to analyse (default: all but the classifier "
                  "and the first convolution).")
flags.DEFINE_bool("prune_classifier", D["prune_classifier"], "Also analyse the classifier.")
flags.DEFINE_bool("prune_first_conv", D["prune_first_conv"],
                  "Also analyse the first convolution.")
common.define_run_flags("saved_models/sensitivity/<dataset>-<model>-seed<seed>")


def main(argv):
    del argv
    config = SensitivityConfig(
        **{name: FLAGS[name].value for name in D if name not in (
            "deterministic", "sparsities", "targets", "methods")},
        methods=tuple(FLAGS.methods),
        sparsities=common.parse_numbers("sparsities", FLAGS.sparsities, float),
        targets=common.parse_numbers("targets", FLAGS.targets, float))
    output_dir = FLAGS.output_dir or common.default_output_dir(
        "sensitivity", f"{config.dataset}-{config.model}-seed{config.seed}")
    with runlock.before_imports(output_dir, "sensitivity", wait=FLAGS.wait, log=common.log):
        from tfprune.jobs.sensitivity import run_sensitivity  # TensorFlow: once the config holds
        run_sensitivity(config, output_dir, overwrite=FLAGS.overwrite, wait=FLAGS.wait,
                        log=common.log)
    common.log(f"report: {output_dir}/report.md")


def run(argv=None):
    """The command: flags parsed from ``argv`` (default sys.argv), errors as one line."""
    common.run(main, argv)


if __name__ == "__main__":
    run()
