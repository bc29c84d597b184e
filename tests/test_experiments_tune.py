"""experiments/tune.py as users run it, including keras-tuner's distributed mode on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import ROOT
from test_experiments_train import assert_clean_error, script_cases

pytestmark = pytest.mark.integration  # every test trains or starts a process


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    import tfprune  # noqa: F401
    from tfprune.models import build_model

    path = tmp_path_factory.mktemp("baseline") / "mlp.keras"
    build_model("mlp", (8, 8, 1), 10, seed=0).save(path)
    return str(path)


TINY = ["--model=mlp", "--epochs=1", "--latency_runs=5", "--methods=weight,unit",
        "--schedules=constant"]


def test_bad_input(python, tmp_path, baseline):
    cases = [
        (["--methods="], "`methods` must not be empty; choose from"),
        (["--tuner=grid"], "--tuner=grid: value should be one of <bayesian|hyperband|random>"),
        (["--epochs=ten"], "`--epochs` must be a comma-separated list of numbers"),
        (["--max_size_kb=-1"], "`max_size_kb` must be > 0"),
    ]
    argvs = [[f"--baseline={baseline}", f"--output_dir={tmp_path}/out"] + flags
             for flags, _ in cases]
    # Every command line through the script's entry point in one interpreter.
    results = script_cases("tune", argvs, tmp_path / "results.json")
    assert len(results) == len(cases)
    for (_, fragment), result in zip(cases, results):
        assert_clean_error(result, fragment)


def test_budget_no_model_meets_is_reported(python, tmp_path, baseline):
    result = python(["-m", "experiments.tune", f"--baseline={baseline}", "--max_trials=1",
                     "--max_size_kb=0.1", f"--output_dir={tmp_path}/out"] + TINY)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "error: no trial met the budget (--max_size_kb=0.1" in result.stdout
    assert "the smallest was" in result.stdout
    rows = json.loads((tmp_path / "out" / "trials.json").read_text())["trials"]
    assert len(rows) == 1 and rows[0]["within_budget"] is False


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_chief_and_two_workers_share_one_search(tmp_path, baseline):
    port = _free_port()
    out = tmp_path / "dist"
    base_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT,
                    KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port))
    base_env.pop("TF_USE_LEGACY_KERAS", None)
    command = [sys.executable, "-m", "experiments.tune", f"--baseline={baseline}",
               "--max_trials=6", f"--output_dir={out}"] + TINY
    procs = {}
    for tuner_id in ("chief", "worker0", "worker1"):
        procs[tuner_id] = subprocess.Popen(command, cwd=ROOT, env=dict(base_env, KERASTUNER_TUNER_ID=tuner_id),
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = {k: p.communicate(timeout=600)[0] for k, p in procs.items()}
    for tuner_id, proc in procs.items():
        assert proc.returncode == 0, (tuner_id, outputs[tuner_id][-3000:])
    rows = json.loads((out / "trials.json").read_text())["trials"]
    assert len(rows) == 6
    assert {r["tuner_id"] for r in rows} == {"worker0", "worker1"}
    assert "trials:" in outputs["chief"]


def test_user_error_in_a_trial_exits_2_with_one_line(python, tmp_path, baseline):
    """A TfpruneError raised inside a trial (injected here) ends the run: exit 2, one line."""
    code = (
        "import sys\n"
        "from tfprune.errors import TfpruneError\n"
        "from tfprune.jobs import variant\n"
        "def bad(*a, **k):\n"
        "    raise TfpruneError('`layers` names layers that cannot be pruned: nope')\n"
        "variant.prune_and_deploy = bad\n"
        "from tfprune.cli import common, tune\n"
        f"sys.argv = ['tune', '--baseline={baseline}', '--max_trials=3', "
        f"'--output_dir={tmp_path}/out'] + {TINY!r}\n"
        "common.run(tune.main)\n")
    result = python(["-c", code])
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: `layers` names layers that cannot be pruned: nope"]


def test_damaged_baseline_exits_2_before_any_trial(python, tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"")
    result = python(["-m", "experiments.tune", f"--baseline={bad}", "--max_trials=2",
                     f"--output_dir={tmp_path}/out"] + TINY)
    assert result.returncode == 2, result.stderr[-2000:]
    assert_clean_error(result, "cannot load Keras model")
    assert not (tmp_path / "out").exists()
