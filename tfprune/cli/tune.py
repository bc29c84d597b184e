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
from tfprune.jobs.configs.tune import TuneConfig

FLAGS = flags.FLAGS
common.define_command_flags("tune")

EXIT_BUDGET_NOT_MET = 3
EXIT_NO_TRIAL = 1


def main(argv):
    del argv
    config = TuneConfig(**common.config_values(TuneConfig))
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
    common.run(main, argv, __doc__)


if __name__ == "__main__":
    run()
