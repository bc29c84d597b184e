"""The experiments/train.py script, run as a user runs it."""

import json
import subprocess

import pytest

from conftest import run_python

pytestmark = pytest.mark.integration  # every test trains or starts a process


def assert_clean_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# Runs one experiments/ script's command (tfprune/cli/) common.run(main) once per command line in one interpreter (each
# ~5 s TensorFlow import saved): flags reset between runs, fds 1 and 2 captured per run, the
# exit status from SystemExit and an escaping exception printed as Python would, with status 1.
# For bad input, which fails before any work; every test using it keeps a real invocation.
_SCRIPT_CASES = r'''
import importlib, json, os, sys, tempfile, traceback
from absl import flags
from tfprune.cli import common
name, argvs, results_path = sys.argv[1:4]
script = importlib.import_module("tfprune.cli." + {"export_tflite": "export"}.get(name, name))
results = []
for argv in json.loads(argvs):
    flags.FLAGS.unparse_flags()
    sys.argv = [script.__file__] + argv
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        sys.stdout.flush(); sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
        try:
            common.run(script.main)
            code = 0
        except SystemExit as exit:
            code = exit.code
            if code is None:
                code = 0
            elif not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
            os.close(saved[0]); os.close(saved[1])
        out.seek(0); err.seek(0)
        results.append([code, out.read(), err.read()])
with open(results_path, "w") as f:
    json.dump(results, f)
'''


def script_cases(script, argvs, results_path):
    """``python -m experiments.<script> <argv>`` for each argv, in one interpreter (see above):
    a CompletedProcess per argv, with returncode, stdout and stderr."""
    argvs = [list(map(str, argv)) for argv in argvs]
    driver = run_python(["-c", _SCRIPT_CASES, script, json.dumps(argvs), str(results_path)])
    assert driver.returncode == 0, driver.stderr[-3000:]
    results = json.loads(open(results_path).read())
    assert len(results) == len(argvs)
    return [subprocess.CompletedProcess(["-m", f"experiments.{script}"] + argv, code, out, err)
            for argv, (code, out, err) in zip(argvs, results)]


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_same_outcome(real, batched):
    """A batched run ends as the real script run did: exit status and error lines."""
    assert (real.returncode, error_lines(real)) == (batched.returncode, error_lines(batched)), \
        (real.stderr[-2000:], batched.stderr[-2000:])


UNKNOWN_CHOICES = [
    (["--dataset=imagenet"], ["--dataset=imagenet", "cifar10|cifar100|digits|fashion_mnist|fortunes|mnist"]),
    (["--model=alexnet"], ["--model=alexnet", "bert_base|cnn|mlp|mobilenetv2|resnet20|resnet44|text_encoder|vgg16|vit|vit_base"]),
]
INVALID_NUMBERS = [
    ("--epochs=-2", "--epochs=-2"),
    ("--learning_rate=0", "`learning_rate` must be > 0, got 0.0"),
    ("--learning_rate=-0.1", "`learning_rate` must be > 0, got -0.1"),
    ("--batch_size=0", "--batch_size=0"),
]


@pytest.fixture(scope="module")
def bad_input(tmp_path_factory):
    """Every bad command line of this module through experiments.train in one interpreter:
    ({"choices"|"numbers": [result, ...]}, the directory of their output_dirs)."""
    base = tmp_path_factory.mktemp("bad_input")
    argvs = [flags + [f"--output_dir={base}/choices{i}"] for i, (flags, _) in enumerate(UNKNOWN_CHOICES)]
    argvs += [[flag, f"--output_dir={base}/numbers{i}/run"]
              for i, (flag, _) in enumerate(INVALID_NUMBERS)]
    results = script_cases("train", argvs, base / "results.json")
    return {"choices": results[:len(UNKNOWN_CHOICES)],
            "numbers": results[len(UNKNOWN_CHOICES):]}, base


def test_unknown_dataset_and_model_list_choices(python, tmp_path, bad_input):
    batched, _ = bad_input
    (flags, fragments), rest = UNKNOWN_CHOICES[0], UNKNOWN_CHOICES[1:]
    result = python(["-m", "experiments.train"] + flags + [f"--output_dir={tmp_path}"])
    assert_clean_error(result, *fragments)
    assert_same_outcome(result, batched["choices"][0])
    for (flags, fragments), result in zip(rest, batched["choices"][1:]):
        assert_clean_error(result, *fragments)


@pytest.mark.parametrize("flag, fragment", INVALID_NUMBERS)
def test_invalid_numbers_are_refused(python, tmp_path, bad_input, flag, fragment):
    batched, base = bad_input
    index = INVALID_NUMBERS.index((flag, fragment))
    if index == 0:  # one as a real run, which the batched one must match
        result = python(["-m", "experiments.train", flag, f"--output_dir={tmp_path}/run"])
        assert_same_outcome(result, batched["numbers"][0])
        assert not (tmp_path / "run").exists()
    else:
        result = batched["numbers"][index]
    assert_clean_error(result, fragment)
    assert not (base / f"numbers{index}" / "run").exists()


def test_missing_tfds_data_is_a_clean_error(python, tmp_path):
    result = python(["-m", "experiments.train", "--dataset=cifar10", f"--data_dir={tmp_path}",
                     f"--output_dir={tmp_path}/run"])
    assert_clean_error(result, "not prepared", "--dataset=digits")


@pytest.mark.smoke  # a real script run that trains: in make test-fast too
def test_tiny_run_prints_where_results_are(python, tmp_path):
    out = tmp_path / "run"
    result = python(["-m", "experiments.train", "--model=mlp", "--epochs=2", f"--output_dir={out}"])
    assert result.returncode == 0, result.stderr
    assert f"results: {out}/metrics.json" in result.stdout
    assert "epoch 2/2" in result.stdout
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2


# test_default_digits_baselines_reach_their_accuracy is in test_experiments_prune.py: its cnn
# run is the baseline the pruning and TFLite acceptance figures there start from.
