"""Issue 31: the smallest member of every keras.applications family through tfprune.

    .venv/bin/python -m benchmarks.applications --output_dir=benchmarks/applications \\
        [--models=MobileNetV2,VGG16] [--rerun_failed]

Each model is built by plain Keras 3 (`keras.applications.X(weights=None,
input_shape=(96, 96, 3), classes=10)`, seed 0) and saved as a .keras file; then the prune job
runs it one-shot (`fine_tune_epochs=0`, `keras3_output`) at channel 30%, channel 50% and weight
50% on real data (benchmarks/families.py: 240 + 120 digits upsampled to 96x96x3); the Keras 3
files are loaded by a process that imports only `keras`, the deployed model converted to int8,
and dense and shrunk float32 .tflite timed together. One JSON per (model, run) in
<output_dir>/<model>/<run>.json: a rerun skips what is recorded (failures too, unless
--rerun_failed). A run that fails is recorded with its one-line error and the next goes on.
results.md (the acceptance table, benchmarks/acceptance.py) is rewritten after every model.
"""

import glob
import os
import time

from absl import app, flags

from benchmarks import acceptance
from tfprune.cli import common
from tfprune import io
from tfprune.pruning.options import LAYER_NORM

FLAGS = flags.FLAGS
flags.DEFINE_list("models", list(acceptance.MODELS), "keras.applications constructors to run.")
flags.DEFINE_string("output_dir", "benchmarks/applications", "Where models, runs and results go.")
flags.DEFINE_integer("input_size", 96, "Input height and width of every model.", lower_bound=32)
flags.DEFINE_boolean("rerun_failed", False, "Run again the runs whose record holds an error.")
flags.DEFINE_integer("latency_rounds", 10, "Shuffled rounds of dense and shrunk timing.",
                     lower_bound=1)
flags.DEFINE_integer("latency_runs_per_round", 10, "Invocations of each file per round.",
                     lower_bound=1)
flags.DEFINE_integer("latency_warmup", 10, "Warm-up invocations of each file.", lower_bound=0)
flags.DEFINE_integer("latency_threads", 1, "Interpreter threads.", lower_bound=1)
flags.DEFINE_enum("layer_norm", "block", list(LAYER_NORM),
                  "The channel runs' --layer_norm (renormalize: prune through LayerNormalization, "
                  "not exact; use another --output_dir).")


def latency_options():
    return {"rounds": FLAGS.latency_rounds, "runs_per_round": FLAGS.latency_runs_per_round,
            "warmup": FLAGS.latency_warmup, "num_threads": FLAGS.latency_threads}


def latency_note():
    o = latency_options()
    return (f"Latency: LiteRT float32, batch 1, {o['num_threads']} thread(s), median of "
            f"{o['rounds'] * o['runs_per_round']} invocations after {o['warmup']} warm-up runs, "
            f"dense and shrunk interleaved in {o['rounds']} seeded, shuffled rounds.")


def record_path(out, model, run):
    return os.path.join(out, model, f"{run}.json")


def run_options(method):
    """The prune job options of ``method``'s runs beyond method and target."""
    return {"layer_norm": FLAGS.layer_norm} if method == "channel" else {}


def pending(out, model):
    """The (method, target) runs of ``model`` still to do; a record made with other options
    (another --layer_norm) is an error, not a result of this run."""
    todo = []
    for method, target in acceptance.RUNS:
        path = record_path(out, model, acceptance.run_name(method, target))
        if not os.path.isfile(path):
            todo.append((method, target))
            continue
        record = io.read_json(path)
        recorded = record.get("options") or ({"layer_norm": "block"} if method == "channel"
                                             else {})
        if recorded != run_options(method):
            raise app.UsageError(f"{path} was recorded with options {recorded}, not "
                                 f"{run_options(method)}: give another --output_dir")
        if FLAGS.rerun_failed and acceptance.failed(record):
            todo.append((method, target))
    return todo


def write_tables(out):
    records = [io.read_json(p) for p in sorted(glob.glob(os.path.join(out, "*", "*-*.json")))]
    baselines = {os.path.basename(os.path.dirname(p)): io.read_json(p)
                 for p in glob.glob(os.path.join(out, "*", "baseline.json"))}
    io.write_json(os.path.join(out, "results.json"), {"baselines": baselines, "runs": [
        {k: v for k, v in r.items() if k != "traceback"} for r in records]})
    io.write_text(os.path.join(out, "results.md"),
                  acceptance.markdown(records, baselines, latency_note()) + "\n")


def run_model(out, dataset, index, total, name, todo):
    from benchmarks import families
    from tfprune import keras3
    from tfprune.keras import keras

    model_dir = os.path.join(out, name)
    path = os.path.join(model_dir, "baseline.keras")
    label = f"[{index}/{total} {name}]"
    start = time.perf_counter()
    job_log = lambda message: common.log(f"{label} {message}")  # noqa: E731
    info_path = os.path.join(model_dir, "baseline.json")
    if not os.path.isfile(info_path) or not os.path.isfile(path):
        try:
            info = families.build_baseline(name, path, FLAGS.input_size,
                                           families.calibration_images(dataset))
        except Exception as err:  # noqa: BLE001  (recorded; the next model goes on)
            info = {"error": acceptance.one_line(err), "input_shape": [FLAGS.input_size] * 2 + [3]}
        io.write_json(info_path, info)
    info = io.read_json(info_path)
    stage, error = ("build", info["error"]) if info.get("error") else (None, None)
    if error is None:
        try:
            begun = time.perf_counter()
            data, baseline = families.import_baseline(dataset, path, job_log)
            info["import_time_s"] = time.perf_counter() - begun  # every process: the last one
            io.write_json(info_path, info)
            arrays = families.keras_only_arrays(data, os.path.join(out, "keras_only.npz"))
        except Exception as err:  # noqa: BLE001
            stage, error = "import", acceptance.one_line(err)
    for method, target in todo:
        run = acceptance.run_name(method, target)
        begun, cpu = time.perf_counter(), time.process_time()
        if error is None:
            common.log(f"{label} {run}: running")
            record = families.run(model_dir, dataset, data, baseline, method, target, arrays,
                                  latency_options(), log=job_log, options=run_options(method))
        else:
            record = {"run": run, "method": method, "target": target, "error": error,
                      "stage": stage}
        record.update(model=name, input_shape=info["input_shape"],
                      time_s=time.perf_counter() - begun, cpu_s=time.process_time() - cpu)
        io.write_json(record_path(out, name, run), record)
        missed = acceptance.misses(record)
        common.log(f"{label} {run}: {record['time_s']:.0f} s ({record['cpu_s']:.0f} s CPU), "
                   + ("all criteria pass" if not missed else "missed " + " | ".join(missed)))
    keras.backend.clear_session()
    keras3.keras3().backend.clear_session()
    common.log(f"{label} done in {time.perf_counter() - start:.0f} s this time (the baseline's "
               f"build: {info.get('build_time_s', 0):.0f} s)")


def main(argv):
    del argv
    models = acceptance.check_models(FLAGS.models)
    out = FLAGS.output_dir
    from benchmarks import families

    data_path = families.write_data(os.path.join(out, f"digits{FLAGS.input_size}.npz"),
                                    FLAGS.input_size)
    dataset = "npz:" + os.path.abspath(data_path)
    for index, name in enumerate(models, 1):
        todo = pending(out, name)
        if not todo:
            common.log(f"[{index}/{len(models)} {name}] already recorded "
                       "(--rerun_failed to redo failures)")
            continue
        run_model(out, dataset, index, len(models), name, todo)
        write_tables(out)
    write_tables(out)
    common.log(f"results: {os.path.join(out, 'results.md')}")


if __name__ == "__main__":
    common.run(main)
