"""Fault injection: runs killed with a real SIGKILL and rerun, damaged files, hostile paths.

Each case of the run-directory issue is a test here; subprocesses run the jobs as a user's
process would, so a kill is a real kill.
"""

import json
import os
import resource
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT
from test_experiments_train import assert_same_outcome, script_cases

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)

# Runs a job; SIGKILLs itself when a progress line of the baseline's training starts with
# "epoch <kill_at>/" (the job has then written that epoch's history but not its checkpoint).
# With "--uninterrupted JSON" it runs several jobs, never killed, one after another.
KILLABLE = r'''
import json, os, signal, sys
from tfprune import training


def run_job(directory, job, baseline=None):
    if job == "sweep_b":  # another configuration, replacing the directory's run
        from tfprune.jobs.sweep import SweepConfig, run_sweep
        run_sweep(SweepConfig(model="cnn", methods=("weight",), schedules=("constant",),
                              sparsities=(0.5,), quantizations=("float32",), baseline_epochs=4,
                              fine_tune_epochs=1, latency_runs=2, representative_count=10),
                  directory, overwrite=True, log=lambda _: None)
    elif job.startswith("prune"):  # from the baseline at path ``baseline``
        from tfprune.jobs.prune import PruneConfig, run_prune
        method = job.partition(":")[2] or "unit"
        options = dict(method=method, schedule="polynomial", target_sparsity=0.5)
        if method in ("dynamic", "incremental"):  # loose enough to prune within 4 epochs
            options.update(schedule="-", target_sparsity=0.0 if method == "dynamic" else 0.5,
                           dynamic=dict(norm_tolerance=0.5, patience=1, every=1,
                                        norm_fraction=0.95, accuracy_tolerance=0.5))
        run_prune(PruneConfig(model="cnn", baseline=baseline, baseline_epochs=3,
                              fine_tune_epochs=4, from_scratch=method == "unit", **options),
                  directory, log=lambda _: None)
    elif job in ("train", "baseline"):  # baseline: the one PruneConfig(baseline_epochs=3) trains
        from tfprune.jobs.train import TrainConfig, train_baseline
        train_baseline(TrainConfig(model="cnn", epochs=6 if job == "train" else 3), directory,
                       log=lambda _: None)
    else:
        from tfprune.jobs.sweep import SweepConfig, run_sweep
        run_sweep(SweepConfig(model="cnn", methods=("unit",), schedules=("constant",),
                              sparsities=(0.5,), quantizations=("float32",), baseline_epochs=4,
                              fine_tune_epochs=1, latency_runs=2, representative_count=10),
                  directory, log=lambda _: None)


if sys.argv[1] == "--uninterrupted":
    for run in json.loads(sys.argv[2]):
        run_job(*run)
    sys.exit()

kill_at = sys.argv[2]  # "none", "<epoch>" (the baseline's) or "<phase>:<epoch>"
phase, _, epoch_text = kill_at.rpartition(":")
original = training.ProgressLogger.on_epoch_end

def on_epoch_end(self, epoch, logs=None):
    original(self, epoch, logs)
    if kill_at != "none" and self.prefix == (f"[{phase}] " if phase else "") \
            and epoch + 1 == int(epoch_text):
        os.kill(os.getpid(), signal.SIGKILL)

training.ProgressLogger.on_epoch_end = on_epoch_end
run_job(sys.argv[1], *sys.argv[3:])
'''


def _run(directory, kill_at, job, *args):
    return subprocess.run([sys.executable, "-c", KILLABLE, str(directory), str(kill_at), job]
                          + [str(a) for a in args], env=ENV, capture_output=True, text=True,
                          cwd=ROOT)


PRUNE_JOBS = ("prune", "prune:channel", "prune:dynamic", "prune:incremental")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The runs the killed ones must end as, made once for the module, never killed, one after
    another in one process (the tests only read them): {"train": dir, "sweep": dir, "baseline":
    dir, "prune...": dir}. "baseline" is the cnn baseline the pruning jobs start from: what
    their --baseline=train with baseline_epochs=3 would train (the same TrainConfig), trained
    once instead of in each of their runs."""
    base = tmp_path_factory.mktemp("uninterrupted")
    dirs = {job: base / job.replace(":", "-")
            for job in ("baseline", "train", "sweep") + PRUNE_JOBS}
    baseline = dirs["baseline"] / "model.keras"
    runs = [[str(dirs[job]), job] + ([str(baseline)] if job in PRUNE_JOBS else []) for job in dirs]
    result = subprocess.run([sys.executable, "-c", KILLABLE, "--uninterrupted", json.dumps(runs)],
                            env=ENV, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return dirs


@pytest.fixture(scope="module")
def prune_baseline(uninterrupted):
    return uninterrupted["baseline"] / "model.keras"


def _weights(path):
    from tfprune.keras import keras

    return keras.models.load_model(path).get_weights()


@pytest.mark.integration
def test_killed_training_resumes_exactly(tmp_path, uninterrupted):
    full, killed = uninterrupted["train"], tmp_path / "killed"
    interrupted = _run(killed, 4, "train")
    assert interrupted.returncode == -9, interrupted.stderr[-2000:]
    assert not (killed / "metrics.json").exists()
    rerun = _run(killed, "none", "train")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for a, b in zip(_weights(full / "model.keras"), _weights(killed / "model.keras")):
        np.testing.assert_array_equal(a, b)  # deterministic ops: bit for bit
    history = json.loads((killed / "history.json").read_text())
    assert history == json.loads((full / "history.json").read_text())
    assert len(history["loss"]) == 6
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["epochs_run_this_time"] == 3  # killed after epoch 4's history, before its checkpoint
    assert metrics["test_accuracy"] == json.loads((full / "metrics.json").read_text())["test_accuracy"]


@pytest.mark.integration
@pytest.mark.parametrize("job, kill_at", [
    ("prune", "fine-tune:2"), ("prune", "from scratch:3"), ("prune:channel", "fine-tune:3"),
    ("prune:dynamic", "fine-tune:3"), ("prune:incremental", "fine-tune:2")])
def test_killed_fine_tuning_and_scratch_training_resume_exactly(tmp_path, uninterrupted,
                                                               prune_baseline, job, kill_at):
    full, killed = uninterrupted[job], tmp_path / "killed"
    assert _run(killed, kill_at, job, prune_baseline).returncode == -9
    if kill_at.startswith("fine-tune"):
        assert (killed / "backup" / "progress.json").exists()
    rerun = _run(killed, "none", job, prune_baseline)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for name in ("pruned.keras", "shrunk.keras"):
        for a, b in zip(_weights(full / name), _weights(killed / name)):
            np.testing.assert_array_equal(a, b)
    got, want = (json.loads((d / "metrics.json").read_text()) for d in (killed, full))
    assert got["accuracy"] == want["accuracy"]
    assert got.get("from_scratch") == want.get("from_scratch") or \
        got["from_scratch"]["accuracy"] == want["from_scratch"]["accuracy"]  # times differ
    for key in ("pruning_events", "rollbacks", "chosen_sparsity", "channel"):
        assert got.get(key) == want.get(key), key
    if job != "prune":
        assert (killed / "decisions.jsonl").exists() == (job != "prune:channel")
        if job == "prune:dynamic":
            assert got["pruning_events"] >= 1
        if (killed / "decisions.jsonl").exists():
            assert (killed / "decisions.jsonl").read_text() == (full / "decisions.jsonl").read_text()
    assert not (killed / "backup").exists() and not (killed / "scratch_backup").exists()


@pytest.mark.integration
def test_sweep_killed_during_its_baseline_ends_as_uninterrupted(tmp_path, uninterrupted):
    full, killed = uninterrupted["sweep"], tmp_path / "killed"
    assert _run(killed, 3, "sweep").returncode == -9
    rerun = _run(killed, "none", "sweep")
    assert rerun.returncode == 0, rerun.stderr[-2000:]

    def results(directory):
        rows = json.loads((directory / "results.json").read_text())["rows"]
        return {(r["method"], r["quantization"]): (r["keras_accuracy"], r["tflite_accuracy"],
                                                    r["params"], r["nonzero_params"])
                for r in rows}

    assert results(killed) == results(full)


@pytest.mark.integration
def test_overwrite_killed_after_its_baseline_leaves_no_mix(tmp_path, uninterrupted):
    import shutil

    out = tmp_path / "sweep"
    shutil.copytree(uninterrupted["sweep"], out)  # a finished run of job "sweep"
    assert (out / "results.csv").exists()
    assert _run(out, 3, "sweep_b").returncode == -9  # during the new run's baseline
    left = {p.name for p in out.iterdir()}
    assert not left & {"results.csv", "results.json", "report.md", "variants", "latency.json",
                       "plots"}, left  # nothing of the old run is passed off as the new one's
    assert json.loads((out / "config.json").read_text())["methods"] == ["weight"]


def _tiny_sweep_config():
    from tfprune.jobs.sweep import SweepConfig

    return SweepConfig(model="mlp", methods=("unit",), schedules=("constant",), sparsities=(0.5,),
                       quantizations=("float32",), baseline_epochs=2, fine_tune_epochs=1,
                       batch_size=128, latency_runs=5, representative_count=20)


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    from tfprune.jobs.sweep import run_sweep

    out = tmp_path_factory.mktemp("finished") / "sweep"
    run_sweep(_tiny_sweep_config(), str(out), log=lambda _: None)
    return out


@pytest.mark.integration
def test_a_copied_run_directory_is_reused_where_it_lies(tmp_path, finished_sweep):
    import shutil

    from tfprune.jobs.sweep import run_sweep

    copy = tmp_path / "moved"
    shutil.copytree(finished_sweep, copy)
    original = tmp_path / "original"
    shutil.move(str(finished_sweep), original)  # the original is gone from where it was made
    try:
        lines = []
        rows = run_sweep(_tiny_sweep_config(), str(copy), log=lines.append)
    finally:
        shutil.move(str(original), finished_sweep)
    assert any("resuming: 2 of 2 variants already done" in line for line in lines), lines
    assert not any(line.startswith("timing") for line in lines)  # latency.json still valid
    for row in rows:
        assert not os.path.isabs(row["tflite_file"]) and (copy / row["tflite_file"]).exists()
    metrics = json.loads((copy / "baselines" / "seed0" / "metrics.json").read_text())
    assert metrics["model_path"] == "model.keras"


@pytest.mark.integration
def test_damaged_markers_are_reported_and_redone(tmp_path, finished_sweep):
    import shutil

    from tfprune.jobs.sweep import run_sweep

    out = tmp_path / "sweep"
    shutil.copytree(finished_sweep, out)
    variant = out / "variants" / "seed0" / "unit-constant-0.5" / "variant.json"
    variant.write_text('{"rows": [')  # truncated
    lines = []
    rows = run_sweep(_tiny_sweep_config(), str(out), log=lines.append)
    assert any(str(variant) in line and "damaged" in line for line in lines), lines
    assert any("resuming: 1 of 2 variants already done" in line for line in lines)
    assert json.loads(variant.read_text())["rows"] and {r["method"] for r in rows} == {"dense", "unit"}
    # A marker that parses but is another variant's does not count either.
    other = json.loads(variant.read_text())
    variant.write_text(json.dumps(dict(other, target_sparsity=0.9)))
    lines = []
    run_sweep(_tiny_sweep_config(), str(out), log=lines.append)
    assert any(str(variant) in line and "does not match" in line for line in lines), lines


@pytest.mark.integration
def test_files_get_the_users_umask(tmp_path, finished_sweep):
    from tfprune import io

    old = os.umask(0o022)
    try:
        io.write_text(tmp_path / "a.txt", "x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
        os.umask(0o027)
        io.write_json(tmp_path / "b.json", {})
        assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
    for path in finished_sweep.rglob("*"):  # written under the default umask 022
        if path.is_file() and path.suffix in (".json", ".csv", ".md", ".keras", ".tflite", ".png"):
            assert path.stat().st_mode & 0o044 == 0o044, path


BAD_FLAGS = [
    (["-m", "experiments.train", "--epochs=abc"], ["--epochs=abc", "allowed: a positive integer"]),
    (["-m", "experiments.train", "--epochs=0"], ["--epochs=0", "positive integer"]),
    (["-m", "experiments.sweep", "--sparsities=abc"], ["--sparsities", "numbers"]),
    (["-m", "experiments.train", "--output_dir=/etc/hostname"], ["'/etc/hostname' is a file"]),
    (["-m", "experiments.train", "--output_dir=/etc/hostname/run"],
     ["lies under '/etc/hostname', which is a file"]),
]
# The cases run as real scripts; the other experiments.train cases run in one interpreter.
REAL_BAD_FLAGS = (0, 2)


@pytest.fixture(scope="module")
def batched_train_flags(tmp_path_factory):
    cases = [i for i, (args, _) in enumerate(BAD_FLAGS) if args[1] == "experiments.train"]
    results = script_cases("train", [BAD_FLAGS[i][0][2:] for i in cases],
                           tmp_path_factory.mktemp("bad_flags") / "results.json")
    return dict(zip(cases, results))


@pytest.mark.integration
@pytest.mark.parametrize("args, fragments", BAD_FLAGS)
def test_bad_flags_and_paths_exit_2_with_one_line(python, batched_train_flags, args, fragments):
    index = BAD_FLAGS.index((args, fragments))
    if index in REAL_BAD_FLAGS:
        result = python(args)
        if index in batched_train_flags:
            assert_same_outcome(result, batched_train_flags[index])
    else:
        result = batched_train_flags[index]
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.mark.integration
def test_damaged_config_and_empty_baseline_exit_2(python, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{not json")
    (run / "metrics.json").write_text("{}")
    result = python(["-m", "experiments.train", "--model=mlp", "--epochs=1", f"--output_dir={run}"])
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"{run / 'config.json'} is damaged" in result.stderr and "--overwrite" in result.stderr
    assert (run / "metrics.json").exists()  # nothing lost
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    result = python(["-m", "experiments.tune", f"--baseline={empty}", "--model=mlp",
                     "--max_trials=2", f"--output_dir={tmp_path / 'tune'}"])
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "cannot load Keras model" in errors[0], result.stderr[-2000:]


def test_an_unwritable_output_directory_is_named_before_any_work(tmp_path, monkeypatch):
    from tfprune.errors import RunDirectoryError
    from tfprune.jobs import rundir

    monkeypatch.setattr(rundir.os, "access", lambda path, mode: False)  # root may write anywhere
    with pytest.raises(RunDirectoryError, match="is not writable"):
        rundir.check_output_dir(tmp_path / "new" / "run")


# `ulimit -f 200` (200 KiB): the cnn's first BackupAndRestore checkpoint (weights and Adam's
# slots, about 640 KB) cannot be written; Python ignores SIGXFSZ, so the write fails with EFBIG.
FILE_SIZE_LIMIT = 200 * 1024
# What TensorFlow's C++ start-up prints on stderr whatever TF_CPP_MIN_LOG_LEVEL says (before
# absl's logging starts: "WARNING: All log messages before absl::InitializeLog() ...", "I0000 ...").
TF_START = re.compile(r"WARNING: All log messages before absl::InitializeLog|[IWEF]\d{4} ")
TRAIN_CNN = ["-m", "experiments.train", "--dataset=digits", "--model=cnn", "--epochs=2"]


def _train(args, output_dir, file_size_limit=None, timeout=600):
    """experiments.train in a fresh interpreter (killed if it outlives ``timeout``), its files
    at most ``file_size_limit`` bytes (RLIMIT_FSIZE) when given."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run([sys.executable] + args + [f"--output_dir={output_dir}"], env=ENV,
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit if file_size_limit else None)


@pytest.mark.integration
def test_a_checkpoint_too_large_to_write_is_one_line_and_the_rerun_finishes(tmp_path):
    run, full = tmp_path / "run", tmp_path / "full"
    failed = _train(TRAIN_CNN, run, FILE_SIZE_LIMIT)
    assert failed.returncode == 2, failed.stderr[-3000:]
    lines = [line for line in failed.stderr.splitlines() if not TF_START.match(line)]
    assert len(lines) == 1, failed.stderr[-3000:]  # no traceback, nothing else
    assert re.fullmatch(rf"error: '{re.escape(str(run / 'backup'))}/\S+': File too large",
                        lines[0]), lines[0]
    assert not (run / "metrics.json").exists()
    rerun = _train(TRAIN_CNN, run)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    uninterrupted = _train(TRAIN_CNN, full)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    for a, b in zip(_weights(full / "model.keras"), _weights(run / "model.keras")):
        np.testing.assert_array_equal(a, b)
    assert json.loads((run / "history.json").read_text()) == \
        json.loads((full / "history.json").read_text())
    resumed, reference = (json.loads((d / "metrics.json").read_text()) for d in (run, full))
    assert (resumed["test_accuracy"], resumed["test_loss"]) == \
        (reference["test_accuracy"], reference["test_loss"])


@pytest.mark.integration
def test_a_batch_larger_than_the_training_split_is_clipped_with_one_notice(tmp_path):
    """--batch_size=1000000000 ran for more than 10 minutes inside Model.fit (issue 30: the cnn's
    shift augmentation, whose map tf.data fuses with the batch); now the batch is the training
    split, as a batch of 10**9 would hold, with the same results."""
    train_cnn = ["-m", "experiments.train", "--dataset=digits", "--model=cnn", "--epochs=1"]
    start = time.perf_counter()
    huge = _train(train_cnn + ["--batch_size=1000000000"], tmp_path / "huge", timeout=180)
    seconds = time.perf_counter() - start
    assert huge.returncode == 0, huge.stderr[-3000:]
    notices = [line for line in huge.stdout.splitlines() if "notice:" in line]
    assert notices == ["notice: the global batch (`batch_size` x replicas) 1000000000 is larger "
                       "than the training split of digits (1257 examples); using 1257"], \
        huge.stdout[-3000:]
    assert seconds < 120, seconds  # the whole process, TensorFlow's import included
    exact = _train(train_cnn + ["--batch_size=1257"], tmp_path / "exact")
    assert exact.returncode == 0, exact.stderr[-3000:]
    assert "notice:" not in exact.stdout
    clipped, reference = (json.loads((tmp_path / d / "metrics.json").read_text())
                          for d in ("huge", "exact"))
    assert clipped["global_batch_size"] == reference["global_batch_size"] == 1257
    assert (clipped["test_accuracy"], clipped["test_loss"]) == \
        (reference["test_accuracy"], reference["test_loss"])
