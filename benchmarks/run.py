"""Benchmarks: what pruning and quantization really buy, measured in one run.

    .venv/bin/python -m benchmarks.run --output_dir=benchmarks/results

Sections (--sections, all by default; each is saved when it finishes and skipped on a rerun
unless --rerun names it):
  training   training step time of weight/unit pruning wrappers vs dense (cnn on digits,
             resnet20 on CIFAR-shaped synthetic data), median per batch after a warm-up epoch
  fine_tune  fine-tuning step time under weight, unit and channel pruning vs dense under
             training.fit, a whole epoch per call of the train function and one batch per
             call (cnn and resnet20 on digits and Fashion-MNIST, the first batches of an epoch)
  deployment TFLite latency (median, p90; 1 and 2 threads) and sizes (raw, gzip, sparse) of
             dense, 90% weight-pruned and 25/50/75% unit-pruned-and-shrunk models, against
             their FLOPs ratio and the non-zeros x bits limit
  tfmot      the tfmot tutorial recipe vs tfprune's at 90% sparsity, same baseline and epochs
  sweep      wall time of `make demo`'s sweep by stage (runs it unless --sweep_dir names finished
             ones: label=DIR,label=DIR compares them, e.g. before and after a change)
  memory     peak RSS of training dense vs pruned; the interpreter's footprint per .tflite
Writes results.json and results.md into --output_dir.
"""

import os
import platform
import shutil
import time

from absl import flags

from tfprune.cli import common
from tfprune import io
from tfprune.keras import keras, tf

FLAGS = flags.FLAGS
SECTIONS = ["training", "fine_tune", "deployment", "tfmot", "sweep", "memory"]
flags.DEFINE_list("sections", SECTIONS, f"Sections to run: {', '.join(SECTIONS)}.")
flags.DEFINE_list("rerun", [], "Sections to measure again even if results.json has them.")
flags.DEFINE_string("output_dir", "benchmarks/results", "Where results.json/results.md go.")
flags.DEFINE_list("sweep_dir", None, "Finished demo sweeps to read stage times from, as DIR or "
                  "label=DIR,label=DIR (each a row of the table).")
flags.DEFINE_integer("latency_runs", 2000, "Timed invocations per .tflite.", lower_bound=10)
flags.DEFINE_integer("training_epochs", 4, "Epochs per training-step measurement (first is "
                     "warm-up).", lower_bound=2)


def section_training(out, log):
    from benchmarks import training

    return [training.step_times("cnn", "digits", 32, epochs=FLAGS.training_epochs),
            training.step_times("resnet20", "cifar_shaped", 64, epochs=FLAGS.training_epochs)]


def section_fine_tune(out, log):
    from benchmarks import training

    rows = []
    for model, dataset, batch_size, steps in (
            ("cnn", "digits", 32, 40), ("resnet20", "digits", 32, 40),
            ("cnn", "fashion_mnist", 64, 200), ("resnet20", "fashion_mnist", 64, 60)):
        rows.append(training.fine_tune_step_times(model, dataset, batch_size, steps))
        whole, single = rows[-1]["whole_epoch"], rows[-1]["per_batch"]
        log(f"  {model} {dataset}: " + ", ".join(
            f"{v} {whole[v]['ratio_to_dense']:.2f}x ({single[v]['ratio_to_dense']:.2f}x per batch)"
            for v in training.FINE_TUNE_VARIANTS[1:]))
    return rows


def _baseline(out, log):
    from tfprune.jobs.train import TrainConfig, model_path, train_baseline

    metrics = train_baseline(TrainConfig(model="cnn"), os.path.join(out, "baseline"),
                             overwrite=True, log=lambda _: None)
    return model_path(os.path.join(out, "baseline"), metrics)


def section_deployment(out, log):
    from benchmarks import deployment

    work = os.path.join(out, "deployment")
    models = deployment.prepare_models(_baseline(out, log), work, log=log)
    return deployment.latency_and_sizes(models, work, runs=FLAGS.latency_runs,
                                        warmup=FLAGS.latency_runs // 10, log=log)


def section_tfmot(out, log):
    from benchmarks import versus_tfmot

    baseline = _baseline(out, log)
    rows = []
    for epochs in (2, 15):
        rows.append(versus_tfmot.tutorial_recipe(baseline, 0.9, epochs))
        rows.append(versus_tfmot.tfprune_recipe(baseline, 0.9, epochs,
                                                os.path.join(out, "tfmot", f"tfprune-{epochs}")))
        log(f"  {epochs} epochs: tfmot {rows[-2]['accuracy']:.4f} at sparsity "
            f"{rows[-2]['achieved_sparsity']:.3f}; tfprune {rows[-1]['accuracy']:.4f} at "
            f"{rows[-1]['achieved_sparsity']:.3f}")
    return rows


def section_sweep(out, log):
    from benchmarks.tables import sweep_stages
    from tfprune.jobs.sweep import SweepConfig, run_sweep

    if not FLAGS.sweep_dir:
        sweep_dir = os.path.join(out, "sweep")
        shutil.rmtree(sweep_dir, ignore_errors=True)  # a wall time means a whole sweep
        run_sweep(SweepConfig(), sweep_dir, overwrite=True, log=log)
        return {"runs": {"this run": dict(sweep_stages(io.read_json(
            os.path.join(sweep_dir, "results.json"))), sweep_dir=sweep_dir)}}
    runs = {}
    for item in FLAGS.sweep_dir:
        label, _, directory = item.rpartition("=")
        runs[label or directory] = dict(sweep_stages(io.read_json(
            os.path.join(directory, "results.json"))), sweep_dir=directory)
    return {"runs": runs}


def section_memory(out, log):
    from benchmarks import memory

    tflite_dir = os.path.join(out, "deployment", "tflite")
    paths = sorted(os.path.join(tflite_dir, f) for f in os.listdir(tflite_dir)) \
        if os.path.isdir(tflite_dir) else []
    return {"training_peak_rss_mb": {"cnn digits": memory.training_peak("cnn", (8, 8, 1)),
                                     "resnet20 cifar-shaped": memory.training_peak("resnet20", (32, 32, 3))},
            "interpreter": memory.interpreter_footprint(paths)}


def markdown(results):
    from benchmarks import tables

    return tables.render(results)


def main(argv):
    del argv
    unknown = [s for s in FLAGS.sections + FLAGS.rerun if s not in SECTIONS]
    if unknown:
        from tfprune.errors import TfpruneError

        raise TfpruneError(f"unknown benchmark section(s) {', '.join(unknown)}; choose from "
                           f"{', '.join(SECTIONS)}")
    out = FLAGS.output_dir
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "results.json")
    results = io.read_json(path) if os.path.exists(path) else {}
    results["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "python": platform.python_version(), "tensorflow": tf.__version__,
                          "tf_keras": keras.__version__}
    for name in FLAGS.sections:
        if name in results and name not in FLAGS.rerun:
            common.log(f"{name}: already measured (--rerun={name} to measure again)")
            continue
        common.log(f"{name}: measuring")
        start = time.perf_counter()
        results[name] = globals()[f"section_{name}"](out, common.log)
        results.setdefault("section_time_s", {})[name] = time.perf_counter() - start
        io.write_json(path, results)
        io.write_text(os.path.join(out, "results.md"), markdown(results))
    io.write_text(os.path.join(out, "results.md"), markdown(results))
    common.log(f"results: {path}, {os.path.join(out, 'results.md')}")


if __name__ == "__main__":
    common.run(main)
