"""experiments/sweep.py as a user runs it: bad input, and killing (SIGKILL, SIGTERM) and resuming
a sweep."""

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
from conftest import ROOT
from test_experiments_train import assert_clean_error, assert_same_outcome, script_cases

from tfprune import io

pytestmark = pytest.mark.integration  # every test trains or starts a process

TINY = ["--model=mlp", "--methods=weight,unit", "--schedules=constant", "--sparsities=0.5,0.8",
        "--quantizations=float32", "--baseline_epochs=2", "--fine_tune_epochs=1",
        "--batch_size=128", "--latency_runs=5", "--representative_count=20"]
# Killed while the worker converts: int8 after float32, so a variant's conversions take a while;
# 7 variants, so that the rerun after a kill still has the 4 a worker takes (sweep.overlaps).
KILLED = TINY[:3] + ["--sparsities=0.5,0.7,0.8", "--quantizations=float32,int8"] + TINY[5:]


def test_bad_input_is_a_clean_error(python, tmp_path):
    out = tmp_path / "out"
    cases = [
        (["--sparsities="], "`sparsities` must not be empty"),
        (["--methods="], "`methods` must not be empty"),
        (["--sparsities=0.5,1.5"], "`sparsities` must be in [0, 1), got 1.5"),
        (["--sparsities=0.5,-0.1"], "`sparsities` must be in [0, 1), got -0.1"),
        (["--sparsities=half"], "`--sparsities` must be a comma-separated list of numbers"),
        (["--methods=weight,magic"], "unknown pruning method 'magic'; registered: adaptive, channel, dynamic, incremental, unit, weight"),
        (["--quantizations=int3"], "unknown quantization 'int3'"),
    ]
    # All in one interpreter (one TensorFlow import), the first also as a real run.
    batched = script_cases("sweep", [[f"--output_dir={out}"] + flags for flags, _ in cases],
                           tmp_path / "results.json")
    real = python(["-m", "experiments.sweep", f"--output_dir={out}"] + cases[0][0])
    assert_clean_error(real, cases[0][1])
    assert_same_outcome(real, batched[0])
    for (flags, fragment), result in zip(cases, batched):
        assert_clean_error(result, fragment)
    assert not out.exists()


def _start(out, log):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    env.pop("TF_USE_LEGACY_KERAS", None)
    # Files, not pipes: nothing blocks while the test polls.
    with open(log, "w") as stdout, open(str(log) + ".err", "w") as stderr:
        return subprocess.Popen([sys.executable, "-m", "experiments.sweep",
                                 f"--output_dir={out}"] + KILLED, cwd=ROOT, env=env,
                                stdout=stdout, stderr=stderr, text=True)


def _when_the_worker_converts(proc, out, done_before):
    """Wait until the conversion worker is deploying a variant after ``done_before`` finished
    ones (a .tflite written, its variant.json not yet); return the sweep's processes then."""
    since = time.time()  # a killed run's .tflite files are older
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        variants = glob.glob(str(out / "variants" / "seed0" / "*"))
        done = [v for v in variants if os.path.exists(os.path.join(v, "variant.json"))]
        try:  # the tables of the finished variants written (after their variant.json)
            tabled = json.loads((out / "results.json").read_text())["variants_done"]
        except (OSError, ValueError):
            tabled = 0
        if len(done) >= done_before and tabled == len(done) and any(
                v not in done and any(os.path.getmtime(f) > since for f in
                                     glob.glob(os.path.join(v, "tflite", "*.tflite")))
                for v in variants):
            family = psutil.Process(proc.pid).children(recursive=True)
            commands = [" ".join(p.cmdline()) for p in family]
            assert any("spawn_main" in c for c in commands), commands  # the worker
            assert any("resource_tracker" in c for c in commands), commands
            return family
        time.sleep(0.02)
    raise AssertionError(f"the worker never converted (exit {proc.poll()})")


def _assert_gone(family, within_s):
    _, alive = psutil.wait_procs(family, timeout=within_s)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [" ".join(p.cmdline()) for p in alive]


def _assert_no_temporary_file(out, where="**"):
    assert not glob.glob(str(out / where / io.TEMP_PATTERN), recursive=True)


def test_killed_and_terminated_sweeps_stop_their_worker_and_resume(python, tmp_path):
    """SIGKILL while the worker converts: the worker and the resource tracker end within
    seconds, no temporary file is left; SIGTERM: one line, exit 143, the same; then the rerun
    finishes without redoing a finished variant."""
    out = tmp_path / "sweep"
    proc = _start(out, tmp_path / "killed.log")
    try:
        family = _when_the_worker_converts(proc, out, done_before=1)
        proc.send_signal(signal.SIGKILL)  # no chance to clean up
        proc.wait(timeout=60)
        _assert_gone(family, within_s=5)
    finally:
        _kill(proc)
    killed_pid = proc.pid
    # none of the worker's (.tflite files); the killed sweep's own, if it was writing one, are
    # removed by the rerun that takes over its lock (checked after it)
    _assert_no_temporary_file(out, where="variants/*/*/tflite")
    done = json.loads((out / "results.json").read_text())
    assert 1 <= done["variants_done"] <= 3 and done["variants_total"] == 7
    assert "in progress: " in (out / "report.md").read_text()

    proc = _start(out, tmp_path / "terminated.log")
    try:
        family = _when_the_worker_converts(proc, out, done_before=done["variants_done"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        _assert_gone(family, within_s=5)
    finally:
        _kill(proc)
    _assert_no_temporary_file(out)
    stderr = (tmp_path / "terminated.log.err").read_text()
    assert stderr.strip().splitlines()[-1] == \
        "terminated; finished results are kept, rerun the same command to resume", stderr
    assert "Traceback" not in stderr
    terminated = (tmp_path / "terminated.log").read_text()
    assert "resuming:" in terminated
    # the killed sweep's lock (the kernel dropped its flock; its description stayed): taken over
    assert f"{out}: taking over the lock of pid {killed_pid} on host " in terminated

    result = python(["-m", "experiments.sweep", f"--output_dir={out}"] + KILLED)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming: " in result.stdout
    assert f"report: {out}/report.md" in result.stdout
    final = json.loads((out / "results.json").read_text())
    assert final["variants_done"] == 7
    # Not redone: every column but the latency, which all files get together at the end.
    timed = {"latency_ms_median", "latency_ms_p90", "latency_vs_dense", "num_threads", "delegate"}

    def untimed(rows):
        return sorted((json.dumps({k: v for k, v in r.items() if k not in timed},
                                  sort_keys=True) for r in rows))

    finished_first = {r["tflite_file"] for r in done["rows"]}
    assert untimed(r for r in final["rows"] if r["tflite_file"] in finished_first) == \
        untimed(done["rows"])
    assert all(r["latency_ms_median"] is None for r in done["rows"])  # not timed alone
    assert all(r["latency_ms_median"] > 0 and r["latency_vs_dense"] > 0 for r in final["rows"])

    different = python(["-m", "experiments.sweep", f"--output_dir={out}"] + KILLED[:-1]
                       + ["--representative_count=30"])
    assert_clean_error(different, "differs in: representative_count", "--overwrite")


ONE_METHOD = ["--model=mlp", "--methods=weight", "--schedules=constant", "--sparsities=0.5",
              "--quantizations=float32", "--baseline_epochs=2", "--fine_tune_epochs=1",
              "--batch_size=128", "--latency_runs=5", "--representative_count=20"]


def _read_until(path, text, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        with open(path) as f:
            if text in f.read():
                return True
        time.sleep(0.1)
    return False


def _lock_holder(out, proc, timeout):
    path = out / ".tfprune.lock"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.1)
    return None


def test_a_second_sweep_on_a_directory_in_use_exits_at_once_or_waits_and_resumes(python,
                                                                                tmp_path):
    out = tmp_path / "sweep"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    env.pop("TF_USE_LEGACY_KERAS", None)
    args = [sys.executable, "-m", "experiments.sweep", f"--output_dir={out}"] + ONE_METHOD
    logs = {name: tmp_path / f"{name}.log" for name in ("first", "waiter")}
    procs = {}
    try:
        with open(logs["first"], "w") as log:
            procs["first"] = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log,
                                              stderr=subprocess.STDOUT, text=True)
        first = procs["first"]
        holder = _lock_holder(out, first, timeout=180)
        assert holder is not None, logs["first"].read_text()[-3000:]
        assert holder["pid"] == first.pid and holder["job"] == "sweep"
        first.send_signal(signal.SIGSTOP)  # it holds the lock for as long as this test needs
        start = time.perf_counter()
        second = python(args[1:])
        took = time.perf_counter() - start
        assert second.returncode == 2, second.stderr[-3000:]
        assert_clean_error(second, f"error: output directory {str(out)!r} is in use by pid "
                                   f"{first.pid} on host {socket.gethostname()} (sweep job: ",
                           "; wait for it with --wait")
        last = second.stderr.strip().splitlines()[-1]  # the one line, naming the holder
        assert last.startswith("error: output directory ") and f"pid {first.pid} " in last
        assert "baseline seed" not in second.stdout and took < 60  # refused before any work

        with open(logs["waiter"], "w") as log:
            procs["waiter"] = subprocess.Popen(args + ["--wait"], cwd=ROOT, env=env, stdout=log,
                                               stderr=subprocess.STDOUT, text=True)
        waiter = procs["waiter"]
        said = f"{out} is in use by pid {first.pid} on host "
        assert _read_until(logs["waiter"], said, waiter, timeout=180), \
            logs["waiter"].read_text()[-3000:]
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=300) == 0, logs["first"].read_text()[-3000:]
        assert waiter.wait(timeout=300) == 0, logs["waiter"].read_text()[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
    text = logs["waiter"].read_text()
    assert text.count(said) == 1 and "; waiting for it to finish" in text
    # it went on after the first finished: found every variant done, redid none
    assert re.search(r"resuming: (\d+) of \1 variants already done", text), text[-3000:]
    assert "[1/" not in text and f"report: {out}/report.md" in text
    assert not (out / ".tfprune.lock").exists()


def _kill(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()
