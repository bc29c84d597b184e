"""Keras Tuner search over sparsity, method, schedule, fine-tuning and quantization.

    tfprune tune --baseline=B/model.keras --tuner=random --max_trials=10 \\
        --max_size_kb=40 --output_dir=DIR

Writes DIR/trials.csv, DIR/trials.json, DIR/trials.png and DIR/best.tflite; keras-tuner's project
directory DIR/tune holds the search state, so rerunning continues the search. A user error inside
a trial (e.g. a baseline that does not fit the dataset) stops the search with one line, exit 2.

Distributed (keras-tuner's chief/worker mode): start the same command once with
KERASTUNER_TUNER_ID=chief and once per worker with KERASTUNER_TUNER_ID=worker0, worker1, ...,
all with KERASTUNER_ORACLE_IP=127.0.0.1 (the chief's address) and KERASTUNER_ORACLE_PORT=PORT,
sharing DIR. The chief serves the oracle; the workers run trials; the chief writes the tables when
the search ends.
"""

from absl import flags

from tfprune.cli import common
from tfprune.jobs.configs.tune import OBJECTIVES, ORACLES, SIZE_MEASURES, TuneConfig
from tfprune.models import MODELS
from tfprune.pruning.methods import METHODS
from tfprune.pruning.schedules import SCHEDULES
from tfprune.tflite.quantizations import QUANTIZATIONS

FLAGS = flags.FLAGS
D = common.defaults(TuneConfig)
flags.DEFINE_string("baseline", D["baseline"], "Saved Keras baseline model (from `tfprune train`).")
common.define_dataset_flags(D)
flags.DEFINE_enum("model", D["model"], MODELS.names(), "The baseline's model (for augmentation).")
flags.DEFINE_string("tuner", D["tuner"], f"Search algorithm: {', '.join(ORACLES.names())}.")
flags.DEFINE_integer("max_trials", D["max_trials"], "Trials (random, bayesian).", lower_bound=1)
flags.DEFINE_integer("seed", D["seed"], "Seed of the search and the fine-tuning.", lower_bound=0)
flags.DEFINE_list("methods", list(D["methods"]), f"Methods to search: {', '.join(METHODS.names())}.")
flags.DEFINE_list("schedules", list(D["schedules"]), f"Schedules: {', '.join(SCHEDULES.names())}.")
flags.DEFINE_float("min_sparsity", D["min_sparsity"], "Smallest target sparsity searched.")
flags.DEFINE_float("max_sparsity", D["max_sparsity"], "Largest target sparsity searched.")
flags.DEFINE_list("learning_rates", [f"{v:g}" for v in D["learning_rates"]],
                  "Fine-tuning learning rates.")
flags.DEFINE_list("epochs", [str(v) for v in D["epochs"]], "Fine-tuning epochs.")
flags.DEFINE_list("quantizations", list(D["quantizations"]),
                  f"Quantizations: {', '.join(QUANTIZATIONS.names())}.")
flags.DEFINE_string("objective", D["objective"], f"Objective: {', '.join(OBJECTIVES)}.")
flags.DEFINE_float("max_size_kb", D["max_size_kb"], "Size budget in KB (trials over it fail the constraint).")
flags.DEFINE_string("size_measure", D["size_measure"],
                    f"Size the budget applies to: {', '.join(SIZE_MEASURES)}.")
flags.DEFINE_float("max_latency_ms", D["max_latency_ms"], "Latency budget (median, 1 thread) in ms.")
flags.DEFINE_float("size_weight", D["size_weight"], "weighted objective: weight of size / dense size.")
flags.DEFINE_float("latency_weight", D["latency_weight"],
                   "weighted objective: weight of latency / dense latency.")
flags.DEFINE_integer("latency_runs", D["latency_runs"], "Timed invocations per trial's .tflite.",
                     lower_bound=1)
common.define_mixed_flags(D)
common.define_strategy_flag(D, ["default", "mirrored"])
common.define_mixed_precision_flag(D, "Fine-tune the trials")
common.define_run_flags("saved_models/tune/<dataset>-<model>")
flags.mark_flag_as_required("baseline")

EXIT_BUDGET_NOT_MET = 3
EXIT_NO_TRIAL = 1


def main(argv):
    del argv
    config = TuneConfig(
        baseline=FLAGS.baseline, dataset=FLAGS.dataset, model=FLAGS.model, data_dir=FLAGS.data_dir,
        split_seed=FLAGS.split_seed, tuner=FLAGS.tuner, max_trials=FLAGS.max_trials,
        seed=FLAGS.seed,
        methods=tuple(FLAGS.methods), schedules=tuple(FLAGS.schedules),
        min_sparsity=FLAGS.min_sparsity, max_sparsity=FLAGS.max_sparsity,
        learning_rates=common.parse_numbers("learning_rates", FLAGS.learning_rates, float),
        epochs=common.parse_numbers("epochs", FLAGS.epochs, int),
        quantizations=tuple(FLAGS.quantizations),
        objective=FLAGS.objective, max_size_kb=FLAGS.max_size_kb, size_measure=FLAGS.size_measure,
        max_latency_ms=FLAGS.max_latency_ms, size_weight=FLAGS.size_weight,
        latency_weight=FLAGS.latency_weight, latency_runs=FLAGS.latency_runs,
        image_size=FLAGS.image_size, mixed_budget_kb=FLAGS.mixed_budget_kb,
        mixed_int4_fraction=FLAGS.mixed_int4_fraction, strategy=FLAGS.strategy,
        mixed_precision=FLAGS.mixed_precision)
    output_dir = FLAGS.output_dir or common.default_output_dir(
        "tune", f"{config.dataset}-{config.model}")
    from tfprune.jobs.tune import is_worker, run_tune  # TensorFlow: once the config holds

    summary = run_tune(config, output_dir, overwrite=FLAGS.overwrite,
                       wait=FLAGS.wait, log=common.log)
    if is_worker():
        common.log("worker done")
        return
    best = summary["best"]
    common.log(f"trials: {output_dir}/trials.csv ({len(summary['trials'])} trials), plot: "
               f"{output_dir}/trials.png")
    if best is None:
        common.log("error: no trial finished (each failed inside keras-tuner; its messages are in "
                   f"{output_dir}/tune/trial_*/trial.json)")
        raise SystemExit(EXIT_NO_TRIAL)
    target = "auto" if best["target_sparsity"] is None else f"{best['target_sparsity']:.2f}"
    common.log(f"best: trial {best['trial_id']} {best['method']} {best['schedule']} "
               f"{target} {best['quantization']}: tflite accuracy "
               f"{best['tflite_accuracy']:.4f}, {best['size_kb']:.1f} KB; {output_dir}/best.tflite")
    if not summary["budget_met"]:
        smallest = min(summary["trials"], key=lambda r: r["size_kb"])
        common.log(f"error: no trial met the budget (--max_size_kb={config.max_size_kb}, "
                   f"--max_latency_ms={config.max_latency_ms}); the smallest was "
                   f"{smallest['size_kb']:.1f} KB {config.size_measure} (trial "
                   f"{smallest['trial_id']}), the fastest "
                   f"{min(r['latency_ms_median'] for r in summary['trials']) * 1e3:.1f} us")
        raise SystemExit(EXIT_BUDGET_NOT_MET)


def run(argv=None):
    """The command: flags parsed from ``argv`` (default sys.argv), errors as one line."""
    common.run(main, argv)


if __name__ == "__main__":
    run()
