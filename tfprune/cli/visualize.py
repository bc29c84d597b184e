"""What the dense model and its pruned variants look at: saliency and Grad-CAM grids, class-model
images, and how far each variant's maps drift from the reference's.

    tfprune visualize --run_dir=SWEEP          # into SWEEP/visualize
    tfprune visualize --models=dense=B/model.keras,w90=P/pruned.keras \\
        --dataset=digits --output_dir=DIR

With --run_dir (a sweep's output) every seed's baseline is the reference of that seed's
finished variants, and the sweep's data set is used; with --models the first model is the
reference. Writes DIR/plots/saliency.png, DIR/plots/grad_cam.png (models with convolutions),
DIR/plots/class_models.png, DIR/plots/drift_vs_sparsity.png, DIR/tensorboard/ (the plots as
images), DIR/drift.csv and DIR/drift.json: accuracy, the rate at which the predicted class
changes against the reference, and the Spearman rank correlation and top-k pixel overlap of each
model's saliency and Grad-CAM maps with the reference's (asked about the reference's predicted
class).
"""

import os

from absl import flags

from tfprune.cli import common
from tfprune.jobs import runlock
from tfprune.jobs.configs.visualize import SWEEP_SUBDIR, VisualizeConfig

FLAGS = flags.FLAGS
D = common.defaults(VisualizeConfig)

flags.DEFINE_list("models", None, "Saved models, the reference first: name=path or path.")
flags.DEFINE_string("run_dir", None, "Or a sweep's output directory: its baselines and finished "
                    "variants (the sweep's data set is used, whatever --dataset says).")
common.define_dataset_flags(D)
flags.DEFINE_integer("per_class", D["per_class"], "Test images per class in the grids.",
                     lower_bound=1)
flags.DEFINE_integer("misclassified", D["misclassified"],
                     "Extra grid rows: images some model gets wrong.", lower_bound=0)
flags.DEFINE_integer("drift_sample", D["drift_sample"],
                     "Test images the drift is measured on (0: all).", lower_bound=0)
flags.DEFINE_float("top_k", D["top_k"], "Fraction of pixels compared by the top-k overlap.")
flags.DEFINE_string("layer", D["layer"], "Grad-CAM layer (default: each model's last convolution).")
flags.DEFINE_integer("smoothgrad_samples", D["smoothgrad_samples"], "SmoothGrad noisy copies.",
                     lower_bound=1)
flags.DEFINE_integer("class_model_steps", D["class_model_steps"],
                     "Gradient-ascent steps of each class-model image.", lower_bound=1)
flags.DEFINE_integer("seed", D["seed"], "Seed of SmoothGrad's noise and the class models.")
common.define_run_flags("<run_dir>/visualize, or saved_models/visualize/<dataset>")


def main(argv):
    del argv
    config = VisualizeConfig(**{name: FLAGS[name].value for name in D})
    output_dir = FLAGS.output_dir or (os.path.join(config.run_dir, SWEEP_SUBDIR) if config.run_dir
                                      else common.default_output_dir("visualize", config.dataset))
    with runlock.before_imports(output_dir, "visualize", wait=FLAGS.wait, log=common.log):
        from tfprune.jobs.visualize import run_visualize  # TensorFlow: once the config holds
        result = run_visualize(config, output_dir, overwrite=FLAGS.overwrite,
                               wait=FLAGS.wait, log=common.log)
    common.log(f"drift table: {output_dir}/drift.csv ({result['time_s']:.1f}s); grids: "
               f"{output_dir}/plots/")


def run(argv=None):
    """The command: flags parsed from ``argv`` (default sys.argv), errors as one line."""
    common.run(main, argv)


if __name__ == "__main__":
    run()
