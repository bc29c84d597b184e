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
common.define_command_flags("visualize")


def main(argv):
    del argv
    config = VisualizeConfig(**common.config_values(VisualizeConfig))
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
    common.run(main, argv, __doc__)


if __name__ == "__main__":
    run()
