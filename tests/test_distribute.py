"""Distribution strategies: TF_CONFIG checks, where workers write, MirroredStrategy on two logical
CPUs and MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1 (each in fresh
interpreters: logical devices and collectives are fixed when TensorFlow starts)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from tfprune import distribute
from tfprune.errors import TfpruneError
from tfprune.jobs.prune import PruneConfig
from tfprune.jobs.sweep import SweepConfig
from tfprune.jobs.train import TrainConfig
from tfprune.jobs.tune import TuneConfig

from conftest import ROOT, run_python


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.parametrize("raw, message", [
    (None, "needs the TF_CONFIG environment variable"),
    ("{not json", "TF_CONFIG must be JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG must be JSON with a cluster"),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "lists no 'worker'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
     "task 'worker' 1 is not in its cluster"),
    ('{"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker", "index": 0}}',
     "addresses must be 'host:port', got 'b'"),
])
def test_a_bad_tf_config_is_named_before_anything_runs(raw, message):
    environ = {} if raw is None else {"TF_CONFIG": raw}
    with pytest.raises(TfpruneError, match=message):
        distribute.check_tf_config(environ)


def test_a_good_tf_config_parses():
    config = distribute.check_tf_config({"TF_CONFIG": tf_config([1, 2], 1)})
    assert config["task"] == {"type": "worker", "index": 1}


def test_job_configs_check_the_strategy_on_construction(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TfpruneError, match="unknown strategy 'tpu'; registered: default, "
                                           "mirrored, multi_worker"):
        TrainConfig(strategy="tpu")
    for make in (lambda: PruneConfig(strategy="multi_worker"),
                 lambda: SweepConfig(methods=("weight",), strategy="multi_worker")):
        with pytest.raises(TfpruneError, match="needs the TF_CONFIG"):
            make()
    monkeypatch.setenv("TF_CONFIG", tf_config([1, 2], 0))
    baseline = os.path.join(ROOT, "setup.cfg")  # any file: the strategy is refused first
    with pytest.raises(TfpruneError, match="keras-tuner's distributed mode"):
        TuneConfig(baseline=baseline, strategy="multi_worker")
    assert PruneConfig(strategy="mirrored").baseline_config().strategy == "mirrored"


def test_the_batch_is_per_replica():
    assert distribute.replicas() == 1
    assert distribute.global_batch(32) == 32 and distribute.global_batch(None) is None


def test_a_non_chief_worker_writes_a_twin_and_reads_the_chiefs_checkpoints(tmp_path,
                                                                            monkeypatch):
    run = str(tmp_path / "run")
    assert distribute.writes_here(run) == run  # chief / single process: the directory itself
    for name in ("baseline/metrics.json", "baseline/backup/chief/checkpoint"):
        os.makedirs(os.path.dirname(os.path.join(run, name)), exist_ok=True)
        open(os.path.join(run, name), "w").close()
    os.makedirs(run + ".worker1/stale")  # an earlier attempt's twin: replaced
    monkeypatch.setattr(distribute, "is_chief", lambda: False)
    monkeypatch.setattr(distribute, "_task", lambda: ("worker", 1))
    twin = distribute.writes_here(run)
    assert twin == run + ".worker1"
    # It starts as the chief's directory (the stages it finished), without checkpoints.
    assert sorted(os.listdir(twin)) == ["baseline"]
    assert os.listdir(os.path.join(twin, "baseline")) == ["metrics.json"]
    inner = os.path.join(twin, "baseline")
    assert distribute.writes_here(inner) == inner  # a nested job writes inside the twin
    assert distribute.shared(os.path.join(inner, "backup")) == os.path.join(run, "baseline",
                                                                            "backup")
    assert distribute.shared(str(tmp_path / "elsewhere")) == str(tmp_path / "elsewhere")
    distribute.finish(inner)  # not a twin root: kept for its outer job
    assert os.path.isdir(inner)
    distribute.finish(twin)
    assert not os.path.exists(twin) and distribute.shared(inner) == inner


def test_a_twin_copied_while_the_chief_writes_skips_its_temporary_and_vanished_files(
        tmp_path, monkeypatch):
    # CI once failed here: the chief renamed its .config.json.*.tmp into place while a
    # non-chief was copying the directory, and copytree raised for the vanished file.
    run = tmp_path / "run"
    (run / "baseline").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / ".status.json.abc123.tmp").write_text("half")  # an atomic write in flight
    (run / "baseline" / "gone.json").write_text("{}")
    copy2 = shutil.copy2

    def chief_renames_meanwhile(source, target, **kwargs):
        if source.endswith("gone.json"):
            os.remove(source)
        return copy2(source, target, **kwargs)

    monkeypatch.setattr(shutil, "copy2", chief_renames_meanwhile)
    monkeypatch.setattr(distribute, "is_chief", lambda: False)
    monkeypatch.setattr(distribute, "_task", lambda: ("worker", 1))
    twin = distribute.writes_here(str(run))
    try:
        assert sorted(os.listdir(twin)) == ["baseline", "config.json"]
        assert os.listdir(os.path.join(twin, "baseline")) == []
    finally:
        distribute.finish(twin)


MIRRORED = r"""
import json
import numpy as np
import tfprune
from tfprune import distribute, training
from tfprune.keras import keras, tf
assert distribute.split_cpu(2)
from tfprune.data import load_data
from tfprune.jobs.prune import PruneConfig, run_prune
from tfprune.jobs.sweep import SweepConfig, run_sweep
from tfprune.models import build_model
from tfprune.pruning import method_objects

out = {}
strategy = distribute.start("mirrored")
out["replicas"] = strategy.num_replicas_in_sync
# One epoch: the fixed-target masks apply from the first step; incremental decides at the end
# of its first epoch, so it trains a second epoch with the decided masks.
for method, options, epochs in (("weight", {}, 1), ("unit", {}, 1),
                                ("incremental", {"dynamic": {"every": 1, "granularity": "unit"}},
                                 2),
                                ("channel", {}, 1)):
    training.set_seed(0)
    data = load_data("digits", batch_size=distribute.global_batch(16), seed=0)
    with strategy.scope():
        result = method_objects.prune(build_model("cnn", data.input_shape, data.num_classes, seed=0),
                            method, "constant", 0.5, steps_per_epoch=data.steps_per_epoch,
                            epochs=epochs, train_data=data.split("train"), log=lambda _: None,
                            **options)
        training.compile_model(result.model)
    result.model.fit(data.train, epochs=epochs, verbose=0, callbacks=result.callbacks)
    copies = [[v.numpy() for v in variable.values] for variable in result.model.weights]
    same = all(len(c) == 2 and np.array_equal(c[0], c[1]) for c in copies)  # every variable
    zeros = [float(np.mean(mask.values[0].numpy() == 0)) for layer in result.model.layers
             for _, mask, _ in getattr(layer, "pruning_vars", ())]
    if result.masks is not None:  # channel groups: zeroed output channels of conv2
        kernel = result.model.get_layer("conv2").kernel.values[0].numpy()
        zeros = [float(np.mean(np.all(kernel == 0, axis=(0, 1, 2))))]
    out[method] = {"same": bool(same), "mask_zeros": zeros, "masks": len(zeros),
                   "events": len(result.pruner.decisions)  # a deciding pruner's
                   if hasattr(result.pruner, "decisions") else None}
sweep = SweepConfig(methods=("weight",), schedules=("constant",), sparsities=(0.5,),
                    quantizations=("float32", "int8"), baseline_epochs=1, fine_tune_epochs=1,
                    batch_size=16, latency_runs=3, strategy="mirrored")
rows = run_sweep(sweep, f"{OUT}/sweep", log=lambda _: None)
out["sweep"] = [(r["method"], r["quantization"], r["tflite_accuracy"]) for r in rows]
from glob import glob
from tfprune.jobs.tune import TuneConfig, run_tune
tune = TuneConfig(baseline=f"{OUT}/sweep/baselines/seed0/model.keras", model="cnn", max_trials=1,
                  epochs=(1,), quantizations=("float32",), latency_runs=3, strategy="mirrored")
summary = run_tune(tune, f"{OUT}/tune", log=lambda _: None)
trial = json.load(open(glob(f"{OUT}/tune/tune/trial_*/prune/metrics.json")[0]))
out["tune"] = {"trials": len(summary["trials"]), "replicas": trial["replicas"],
               "batch": trial["global_batch_size"]}
for name, batch in (("mirrored", 16), ("default", 32)):
    config = PruneConfig(dataset="digits", model="cnn", method="unit", schedule="constant",
                         target_sparsity=0.5, baseline_epochs=3, fine_tune_epochs=2,
                         batch_size=batch, strategy=name)
    metrics = run_prune(config, f"{OUT}/{name}", log=lambda _: None).metrics
    baseline = json.load(open(f"{OUT}/{name}/baseline/metrics.json"))
    out[name] = {"accuracy": metrics["accuracy"], "sparsity": metrics["pruned_sparsity"],
                 "baseline_accuracy": metrics["baseline_accuracy"],
                 "replicas": [baseline["replicas"], metrics["replicas"]],
                 "batch": [baseline["global_batch_size"], metrics["global_batch_size"]],
                 "precision": [baseline["precision"], metrics["precision"]]}
print("RESULT " + json.dumps(out))
"""


def _result(completed):
    assert completed.returncode == 0, completed.stderr[-4000:]
    line = [l for l in completed.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored")
    return _result(run_python(["-c", f"OUT = {str(out)!r}\n" + MIRRORED]))


@pytest.mark.integration
def test_mirrored_strategy_runs_on_two_logical_cpus(mirrored):
    assert mirrored["replicas"] == 2


@pytest.mark.integration
@pytest.mark.parametrize("method", ["weight", "unit", "incremental", "channel"])
def test_masks_are_identical_on_every_replica(mirrored, method):
    result = mirrored[method]
    assert result["same"]  # every variable, masks and kernels included, on both replicas
    # conv2 and fc1 (conv1 and the classifier are kept); channel: conv2's output channels
    assert result["masks"] == (1 if method == "channel" else 2)
    if method == "incremental":
        assert result["events"] >= 1 and max(result["mask_zeros"]) > 0  # it decided, once
    else:
        assert all(abs(z - 0.5) < 0.02 for z in result["mask_zeros"]), result["mask_zeros"]


@pytest.mark.integration
def test_a_mirrored_sweep_converts_and_measures(mirrored):
    rows = mirrored["sweep"]
    assert {(m, q) for m, q, _ in rows} == {("dense", "float32"), ("dense", "int8"),
                                            ("weight", "float32"), ("weight", "int8")}
    assert all(0.3 < accuracy <= 1 for _, _, accuracy in rows)


@pytest.mark.integration
def test_a_mirrored_tuning_trial_trains_on_both_replicas(mirrored):
    # the first trial too: digits' batch of 32 per replica, 64 in all
    assert mirrored["tune"] == {"trials": 1, "replicas": 2, "batch": 64}


@pytest.mark.integration
def test_a_mirrored_job_matches_one_device_at_the_same_global_batch(mirrored):
    one, two = mirrored["default"], mirrored["mirrored"]
    assert two["replicas"] == [2, 2] and one["replicas"] == [1, 1]
    assert two["batch"] == one["batch"] == [32, 32]  # 16 per replica x 2 = 32 x 1
    assert two["precision"] == [{"policy": "float32", "loss_scaling": False}] * 2
    assert abs(two["sparsity"] - 0.5) < 0.02 and abs(one["sparsity"] - 0.5) < 0.02
    # Same seed, data order and global batch (2 x 16 vs 32): only the order of the sums differs.
    assert abs(two["baseline_accuracy"] - one["baseline_accuracy"]) <= 0.03
    assert abs(two["accuracy"] - one["accuracy"]) <= 0.03


WORKER = r"""
import json, os, sys
import numpy as np
import tfprune
from tfprune.jobs.prune import PruneConfig, run_prune
strategy, out, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
common = dict(dataset="digits", model="cnn", fine_tune_epochs=2, batch_size=batch,
              strategy=strategy)
index = json.loads(os.environ.get("TF_CONFIG", '{"task": {"index": 0}}'))["task"]["index"]
result = {}
for name, options in (
        ("unit", dict(method="unit", schedule="polynomial", target_sparsity=0.5,
                      baseline_epochs=3)),
        # a deciding pruner, on the baseline the first run trained (the chief's file)
        ("incremental", dict(method="incremental", target_sparsity=0.5,
                             dynamic={"every": 1, "granularity": "unit"},
                             baseline=os.path.join(out, "baseline", "model.keras")))):
    run = run_prune(PruneConfig(**common, **options), out if name == "unit" else out + "-inc",
                    log=print)
    model = run.model("pruned")  # in memory (a non-chief worker's twin is gone)
    kept = {l.name: (np.abs(l.get_weights()[0]) > 0).astype(int).tolist()
            for l in model.layers if l.name in run.metrics["pruned_layers"]}
    result[name] = {"kept": kept, "accuracy": run.metrics["accuracy"],
                    "sparsity": run.metrics["pruned_sparsity"],
                    "events": run.metrics.get("pruning_events")}
json.dump(result, open(f"{out}-{index}.json", "w"))
"""


def _start_workers(args, ports, logs, env=None):
    procs = []
    for index in range(len(ports)):
        full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT,
                        TF_CONFIG=tf_config(ports, index), **(env or {}))
        full_env.pop("TF_USE_LEGACY_KERAS", None)
        with open(logs[index], "w") as log:
            procs.append(subprocess.Popen([sys.executable] + args, cwd=ROOT, stdout=log,
                                          stderr=subprocess.STDOUT, env=full_env))
    return procs


def _wait(procs, timeout):
    deadline = time.time() + timeout
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(deadline - time.time(), 1)))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    return codes


@pytest.fixture(scope="module")
def multi_worker(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi_worker")
    out = str(tmp / "run")
    logs = [str(tmp / f"worker{i}.log") for i in range(2)]
    # 32 per replica on two workers, 64 on one device: the same global batch (64, 2 x fewer
    # collective steps than 16 / 32). The one-device run goes alongside: the workers spend much
    # of their time waiting on each other's collectives.
    workers = _start_workers(["-c", WORKER, "multi_worker", out, "32"], free_ports(2), logs)
    single_log = str(tmp / "single.log")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)  # as run_python's
    env.pop("TF_USE_LEGACY_KERAS", None)
    env.pop("TF_CONFIG", None)
    with open(single_log, "w") as log:
        single = subprocess.Popen([sys.executable, "-c", WORKER, "default", str(tmp / "single"),
                                   "64"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env=env)
    codes = _wait(workers, timeout=400)
    texts = [open(log).read() for log in logs]
    assert codes == [0, 0], "\n".join(t[-3000:] for t in texts)
    assert _wait([single], timeout=400) == [0], open(single_log).read()[-3000:]
    results = [json.load(open(f"{out}-{i}.json")) for i in range(2)]
    return {"tmp": tmp, "out": out, "logs": texts, "workers": results,
            "single": json.load(open(str(tmp / "single-0.json")))}


@pytest.mark.integration
def test_multi_worker_masks_are_identical_on_both_workers(multi_worker):
    first, second = multi_worker["workers"]
    for name in ("unit", "incremental"):
        assert first[name]["kept"].keys() == second[name]["kept"].keys() and first[name]["kept"]
        assert first[name]["kept"] == second[name]["kept"], name
    for result in (first, second):
        assert abs(result["unit"]["sparsity"] - 0.5) < 0.02
        # the deciding pruner decided, the same on both workers
        assert result["incremental"]["events"] >= 1 and result["incremental"]["sparsity"] > 0
    assert first["incremental"]["events"] == second["incremental"]["events"]
    assert "2 replica(s), global batch 64" in multi_worker["logs"][0]


@pytest.mark.integration
def test_multi_worker_accuracy_is_close_to_one_device(multi_worker):
    first, second = multi_worker["workers"]
    for name in ("unit", "incremental"):
        assert first[name]["accuracy"] == second[name]["accuracy"]
        assert abs(first[name]["accuracy"] - multi_worker["single"][name]["accuracy"]) <= 0.03


@pytest.mark.integration
def test_multi_worker_results_are_written_once(multi_worker):
    out, tmp = multi_worker["out"], multi_worker["tmp"]
    for run in (out, out + "-inc"):
        assert os.path.isfile(os.path.join(run, "metrics.json"))
        assert not os.path.exists(os.path.join(run, "backup"))
        assert not os.path.exists(os.path.join(run, ".tfprune.lock"))  # the chief's, released
    assert os.path.isfile(os.path.join(out, "baseline", "metrics.json"))
    left = sorted(p for p in os.listdir(tmp) if p.startswith("run") and
                  os.path.isdir(os.path.join(tmp, p)))
    assert left == ["run", "run-inc"]  # the other worker's twins (run.worker1, ...) removed


def _progress(path):
    try:
        with open(path) as f:
            return json.load(f)["epochs_done"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.integration
def test_killing_a_worker_and_restarting_resumes_from_the_last_checkpoint(tmp_path):
    out = str(tmp_path / "run")
    # Batch 128 per worker: 5 collective steps an epoch; a one-epoch baseline.
    args = ["-m", "experiments.prune", "--dataset=digits", "--model=mlp", "--method=unit",
            "--target_sparsity=0.5", "--baseline_epochs=1", "--fine_tune_epochs=8",
            "--batch_size=128",
            "--strategy=multi_worker", f"--output_dir={out}"]
    logs = [str(tmp_path / f"first{i}.log") for i in range(2)]
    procs = _start_workers(args, free_ports(2), logs)
    progress = os.path.join(out, "backup", "progress.json")  # the fine-tuning's checkpoint
    deadline = time.time() + 300
    while _progress(progress) < 3 and time.time() < deadline and procs[0].poll() is None:
        time.sleep(0.2)
    killed_after = _progress(progress)
    assert killed_after >= 3, open(logs[0]).read()[-3000:]
    procs[1].send_signal(signal.SIGKILL)
    codes = _wait(procs, timeout=180)
    first = open(logs[0]).read()
    assert codes[0] == 3, first[-3000:]  # the chief stops: a worker of the run stopped
    assert "start every worker again with the same command" in first
    assert not os.path.exists(os.path.join(out, "metrics.json"))
    assert os.path.exists(out + ".worker1")  # the killed worker's twin, left as it was

    def rerun(stem):
        logs = [str(tmp_path / f"{stem}{i}.log") for i in range(2)]
        codes = _wait(_start_workers(args, free_ports(2), logs), timeout=300)
        texts = [open(log).read() for log in logs]
        assert codes == [0, 0], "\n".join(t[-3000:] for t in texts)
        return texts

    texts = rerun("second")
    for text in texts:  # both skip the finished baseline (worker 1 from its copy of the chief's)
        assert "baseline already holds this finished run; reusing it" in text, text[-3000:]
    resumed = [int(line.split("resuming after epoch ")[1].split("/")[0])
               for line in texts[0].splitlines() if "resuming after epoch" in line]
    assert resumed and resumed[0] >= killed_after - 1, texts[0][-3000:]
    assert "resuming after epoch" in texts[1]  # the restarted worker reads the chief's checkpoint
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["pruned_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert metrics["replicas"] == 2
    assert not os.path.exists(out + ".worker1")
    # A finished run started again: every worker reuses it (none trains alone and waits).
    for text in rerun("third"):
        assert "already holds this finished run; reusing it" in text, text[-3000:]
        assert "epoch 1/" not in text  # nothing trained
