"""The main job: compare every method, schedule, sparsity and quantization, with a report.

    tfprune sweep --dataset=digits --model=cnn --methods=weight,unit \\
        --schedules=constant,polynomial --sparsities=0.5,0.75,0.9 --seeds=0 --output_dir=DIR

Writes DIR/config.json, DIR/results.csv, DIR/results.json, DIR/report.md, DIR/plots/*.png,
DIR/latency.json and, per variant, DIR/variants/seed<k>/<variant>/ with its models and .tflite
files. Rerunning the same command skips finished variants. Every option is checked before any
baseline trains.
"""

from absl import flags

from tfprune.cli import common
from tfprune.jobs import runlock
from tfprune.jobs.configs.sweep import SweepConfig
from tfprune.models import MODELS
from tfprune.pruning.methods import METHODS
from tfprune.pruning.schedules import SCHEDULES
from tfprune.tflite.quantizations import QUANTIZATIONS

FLAGS = flags.FLAGS
D = common.defaults(SweepConfig)

common.define_dataset_flags(D)
flags.DEFINE_enum("model", D["model"], MODELS.names(), "Model from the zoo.")
flags.DEFINE_list("methods", list(D["methods"]), f"Pruning methods: {', '.join(METHODS.names())}.")
flags.DEFINE_list("schedules", list(D["schedules"]), f"Schedules: {', '.join(SCHEDULES.names())}.")
flags.DEFINE_list("sparsities", [f"{s:g}" for s in D["sparsities"]], "Target sparsities in [0, 1).")
flags.DEFINE_list("quantizations", list(D["quantizations"]),
                  f"Quantizations: {', '.join(QUANTIZATIONS.names())}.")
flags.DEFINE_list("seeds", [str(s) for s in D["seeds"]], "Seeds; several give mean and spread.")
flags.DEFINE_integer("baseline_epochs", D["baseline_epochs"],
                     "Baseline training epochs (default: the data set's; digits 60, 28x28 15).",
                     lower_bound=1)
flags.DEFINE_integer("fine_tune_epochs", D["fine_tune_epochs"],
                     "Fine-tuning epochs per variant (default: the data set's; digits 15, 28x28 "
                     "3); 0: one-shot pruning, no fine-tuning (weight, unit, channel).",
                     lower_bound=0)
common.define_positive_float("learning_rate", D["learning_rate"], "Fine-tuning learning rate.")
flags.DEFINE_integer("batch_size", D["batch_size"],
                     "Batch size (default: the data set's; digits 32, 28x28 128).", lower_bound=1)
flags.DEFINE_integer("num_threads", D["num_threads"], "Interpreter threads for latency.",
                     lower_bound=1)
flags.DEFINE_integer("latency_runs", D["latency_runs"],
                     "Timed invocations per .tflite (all files timed together at the end).",
                     lower_bound=1)
flags.DEFINE_integer("representative_count", D["representative_count"],
                     "Training images for int8 calibration.", lower_bound=1)
flags.DEFINE_bool("from_scratch", D["from_scratch"],
                  "Structured variants (unit, channel, deciding methods at unit or channel "
                  "granularity): also train their thinner architecture from scratch for the "
                  "same total epochs; reported as 'scratch acc %' beside the pruned model.")
flags.DEFINE_bool("visualize", False,
                  "Then look at what the models attend to (tfprune visualize on the sweep): "
                  "saliency and Grad-CAM grids, class models and their drift from the dense "
                  "model, into DIR/visualize and report.md.")
flags.DEFINE_list("layer_sparsity", list(D["layer_sparsity"]),
                  "weight, unit: how each target is spread over the layers, compared in one "
                  "run: uniform, auto (from one-shot sensitivity curves on the validation "
                  "split), global (one magnitude threshold).")
flags.DEFINE_bool("hybrid", D["hybrid"],
                  "The hybrid recipe: layer-wise (auto) pruning + fine-tuning + mixed int4/int8 "
                  "quantization, beside uniform pruning at int8 (dynamic) and int4; adds "
                  "layer_sparsity auto and the quantizations dynamic, int4, mixed.")
flags.DEFINE_bool("overlap_deploy", True,
                  "Convert and measure each finished variant in a second process while the next "
                  "one fine-tunes (same results; used with 2+ CPUs, 4+ variants to run and no "
                  "--strategy).")
common.define_mixed_flags(D)
common.define_strategy_flag(D)
common.define_mixed_precision_flag(D, "Train the baselines and fine-tune the variants")
common.define_dynamic_flags()
common.define_run_flags("saved_models/sweep/<dataset>-<model>")


def main(argv):
    del argv
    config = SweepConfig(
        dataset=FLAGS.dataset, model=FLAGS.model, methods=tuple(FLAGS.methods),
        schedules=tuple(FLAGS.schedules),
        sparsities=common.parse_numbers("sparsities", FLAGS.sparsities, float),
        quantizations=tuple(FLAGS.quantizations),
        seeds=common.parse_numbers("seeds", FLAGS.seeds, int),
        baseline_epochs=FLAGS.baseline_epochs, fine_tune_epochs=FLAGS.fine_tune_epochs,
        learning_rate=FLAGS.learning_rate, batch_size=FLAGS.batch_size,
        split_seed=FLAGS.split_seed, data_dir=FLAGS.data_dir,
        representative_count=FLAGS.representative_count, num_threads=FLAGS.num_threads,
        latency_runs=FLAGS.latency_runs, dynamic=common.dynamic_options(),
        image_size=FLAGS.image_size, from_scratch=FLAGS.from_scratch,
        layer_sparsity=tuple(FLAGS.layer_sparsity), hybrid=FLAGS.hybrid,
        mixed_budget_kb=FLAGS.mixed_budget_kb, mixed_int4_fraction=FLAGS.mixed_int4_fraction,
        strategy=FLAGS.strategy,
        mixed_precision=FLAGS.mixed_precision)
    output_dir = FLAGS.output_dir or common.default_output_dir(
        "sweep", f"{config.dataset}-{config.model}")
    common.log(f"sweep of {len(config.variants())} variants x {len(config.quantizations)} "
               f"quantizations into {output_dir}")
    with runlock.before_imports(output_dir, "sweep", config.strategy, wait=FLAGS.wait,
                                log=common.log):
        from tfprune.jobs.sweep import run_sweep  # TensorFlow: only once the config holds
        run_sweep(config, output_dir, overwrite=FLAGS.overwrite, wait=FLAGS.wait, log=common.log,
                  visualize=FLAGS.visualize, overlap=FLAGS.overlap_deploy)
    common.log(f"report: {output_dir}/report.md")


def run(argv=None):
    """The command: flags parsed from ``argv`` (default sys.argv), errors as one line."""
    common.run(main, argv)


if __name__ == "__main__":
    run()
