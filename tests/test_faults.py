"""Fault injection: runs killed with a real SIGKILL and rerun, damaged files, hostile paths.

Each case of the run-directory issue is a test here; subprocesses run the jobs as a user's
process would, so a kill is a real kill.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)

# Runs a job; SIGKILLs itself when a progress line of the baseline's training starts with
# "epoch <kill_at>/" (the job has then written that epoch's history but not its checkpoint).
KILLABLE = r'''
import os, signal, sys
from tfprune import training

kill_at = sys.argv[2]
original = training.ProgressLogger.on_epoch_end

def on_epoch_end(self, epoch, logs=None):
    original(self, epoch, logs)
    if kill_at != "none" and not self.prefix and epoch + 1 == int(kill_at):
        os.kill(os.getpid(), signal.SIGKILL)

training.ProgressLogger.on_epoch_end = on_epoch_end
job = sys.argv[3]
if job == "train":
    from tfprune.jobs.train import TrainConfig, train_baseline
    train_baseline(TrainConfig(model="cnn", epochs=6), sys.argv[1], log=lambda _: None)
else:
    from tfprune.jobs.sweep import SweepConfig, run_sweep
    run_sweep(SweepConfig(model="cnn", methods=("unit",), schedules=("constant",),
                          sparsities=(0.5,), quantizations=("float32",), baseline_epochs=4,
                          fine_tune_epochs=1, latency_runs=2, representative_count=10),
              sys.argv[1], log=lambda _: None)
'''


def _run(directory, kill_at, job):
    return subprocess.run([sys.executable, "-c", KILLABLE, str(directory), str(kill_at), job],
                          env=ENV, capture_output=True, text=True, cwd=ROOT)


def _weights(path):
    from tfprune.keras import keras

    return keras.models.load_model(path).get_weights()


def test_killed_training_resumes_exactly(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert _run(full, "none", "train").returncode == 0
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


def test_sweep_killed_during_its_baseline_ends_as_uninterrupted(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert _run(full, "none", "sweep").returncode == 0
    assert _run(killed, 3, "sweep").returncode == -9
    rerun = _run(killed, "none", "sweep")
    assert rerun.returncode == 0, rerun.stderr[-2000:]

    def results(directory):
        rows = json.loads((directory / "results.json").read_text())["rows"]
        return {(r["method"], r["quantization"]): (r["keras_accuracy"], r["tflite_accuracy"],
                                                    r["params"], r["nonzero_params"])
                for r in rows}

    assert results(killed) == results(full)
