"""Quiet by default (tfprune/quiet.py): a command prints no line of TensorFlow's C++ logging and
no Python warning of the libraries, --verbose and TFPRUNE_VERBOSE=1 bring them back; the noise
patterns drop only the known lines; long lists are shortened in the log; the progress line
inside a long epoch comes at most every interval."""

import logging
import os
import re
import subprocess
import sys
import threading
import warnings

import pytest

from conftest import ROOT
from tfprune import quiet, training

# What the acceptance counts as noise: a C++ log line (Abseil's or glog's prefix, the banner,
# LiteRT's INFO) and a Python warning.
CPP_LINE = re.compile(r"^[IWEF]\d{4} |^WARNING: All log messages|^INFO: Created TensorFlow Lite",
                      re.MULTILINE)
PYTHON_WARNING = re.compile(r"Warning: ")

# The lines this machine's TensorFlow 2.21 and LiteRT print today without the filter.
TODAY = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796222788.176419   10468 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796222788.176760   10468 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.",
    "E0000 00:00:1796222789.089781   10468 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    # on the Keras 3 paths (--keras3_output, sensitivity)
    "E0000 00:00:1796223692.884931    5704 node_def_util.cc:682] NodeDef mentions attribute "
    "use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset; "
    "signature=input_dataset:variant, other_arguments: -> handle:variant; attr=f:func>",
]
KEPT = [
    # a cuInit failure on a machine that has a driver, and other real errors
    "E0000 00:00:1796222789.089781   10468 cuda_platform.cc:52] failed call to cuInit: "
    "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected (100)",
    "F0000 00:00:1796222789.089781   10468 tensor_shape.cc:45] Check failed: d >= 0 (-1 vs. 0)",
    "E0000 00:00:1796222789.1   10468 op_kernel.cc:1857] OP_REQUIRES failed at conv_ops.cc:12",
    "E0000 00:00:1796222789.1   10468 node_def_util.cc:682] NodeDef mentions attribute foo "
    "which is not in the op definition: Op<name=Conv2D; signature=input:T>",
    "W0000 00:00:1796222789.1   10468 graph_launch.cc:671] Fallback to op-by-op mode",
    "2026-05-01 12:00:00.000001: E tensorflow/core/framework/op_kernel.cc:1857] failed",
    "I0510 12:00:00.123456 140234 train.py:42] a Python INFO line of the user's",
    "WARNING: a LiteRT warning",
    "Traceback (most recent call last):",
    "error: `target_sparsity` must be in [0, 1), got 1.5",
]


def test_the_noise_patterns_drop_todays_lines_and_keep_errors():
    assert [line for line in TODAY if not quiet.NOISE.match(line)] == []
    assert [line for line in KEPT if quiet.NOISE.match(line)] == []


def _forwarded(chunks, **kwargs):
    """What ``forward`` writes of ``chunks`` (written to a pipe, then closed)."""
    source, sink = os.pipe()
    result, target = os.pipe()
    for chunk in chunks:
        os.write(sink, chunk)
    os.close(sink)
    quiet.forward(source, target, **kwargs)
    os.close(source)
    os.close(target)
    with os.fdopen(result, "rb") as f:
        return f.read()


def test_forward_drops_whole_noise_lines_written_in_pieces():
    # LiteRT writes "INFO: ", the message and the newline as three writes.
    chunks = [b"INFO: ", b"Created TensorFlow Lite XNNPACK delegate for CPU.", b"\n",
              TODAY[1].encode() + b"\nkept 1\n", b"E0000 00:00:1.2 1 cuda_platform.cc:52] ",
              b"failed call to cuInit: UNKNOWN ERROR (999)\n", b"kept 2 without a newline"]
    assert _forwarded(chunks) == (b"kept 1\nE0000 00:00:1.2 1 cuda_platform.cc:52] failed "
                                  b"call to cuInit: UNKNOWN ERROR (999)\nkept 2 without a newline")


def test_forward_reports_the_token_when_everything_before_it_is_written():
    """The command's end: its token is not copied; other writers' unfinished lines go on."""
    source, sink = os.pipe()
    result, target = os.pipe()
    written_when_drained = []

    def drained():
        written_when_drained.append(os.read(result, 1000))

    os.write(sink, b"kept\nprogress 5%")  # a child's unfinished line: written at once
    os.write(sink, b"<token>\n more\nI0000 00:00:1.5 7 port.cc:153] unfinished <token>\n")
    os.write(sink, b" noise, held and dropped\nlast\n")
    os.close(sink)
    quiet.forward(source, target, token="<token>", drained=drained)
    os.close(source)
    os.close(target)
    with os.fdopen(result, "rb") as f:
        rest = f.read()
    assert written_when_drained == [b"kept\nprogress 5%", b" more\n"]
    assert rest == b"last\n"


def test_forward_passes_an_unfinished_line_on_at_once_or_after_the_hold():
    source, sink = os.pipe()
    result, target = os.pipe()
    forwarding = threading.Thread(target=quiet.forward, args=(source, target),
                                  kwargs={"hold_s": 0.05})
    forwarding.start()
    try:
        os.write(sink, b"\r 40%|####      |")  # a progress bar: cannot be noise
        assert os.read(result, 100) == b"\r 40%|####      |"
        os.write(sink, b"\nIn a moment")  # may be noise: held, but only for hold_s
        got = b""
        while got != b"\nIn a moment":
            got += os.read(result, 100)  # (the pipe stays open: no end of file ends the hold)
    finally:
        os.close(sink)
        forwarding.join(10)
        os.close(source)
        os.close(target)
        os.close(result)


def test_long_lists_are_shortened_with_where_the_whole_list_is():
    assert quiet.names(["conv1", "conv2", "fc1"], "layers.csv") == "conv1, conv2, fc1"
    eight = [f"l{i}" for i in range(8)]
    assert quiet.names(eight, "layers.csv") == ", ".join(eight)
    names = [f"block_{i}_expand" for i in range(35)]
    assert quiet.names(names, "layers.csv, metrics.json pruned_layers") == (
        "block_0_expand, block_1_expand, block_2_expand, block_3_expand, block_4_expand, ... "
        "(35 layers; all in layers.csv, metrics.json pruned_layers)")
    assert quiet.names(names).endswith("block_4_expand, ... (35 layers)")


def test_the_libraries_python_warnings_are_hidden_and_shown_again():
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        quiet.hide_library_warnings()
        quiet.hide_library_warnings()  # once is enough
        assert sum(quiet._is_ours(entry) for entry in warnings.filters) == 1
        for module in ("tensorflow.python.ops", "tf_keras.src.engine", "keras_tuner.engine",
                       "tensorflow_model_optimization.python", "ai_edge_litert.interpreter",
                       "tfprune.jobs.prune", "user_script"):
            warnings.warn_explicit(f"from {module}", UserWarning, "f.py", 1, module=module)
        assert [str(w.message) for w in caught] == ["from tfprune.jobs.prune", "from user_script"]
        assert quiet.show_library_warnings()
        warnings.warn_explicit("again", DeprecationWarning, "f.py", 2, module="tensorflow.x")
        assert str(caught[-1].message) == "again"
        quiet.hide_library_warnings()  # as tfprune left it


def test_the_libraries_log_records_below_error_are_dropped():
    def record(path, level):
        return logging.LogRecord("tensorflow", level, path, 1, "message", None, None)

    library = "/venv/lib/python3.11/site-packages/tf_keras/src/saving/saving_lib.py"
    ours = os.path.join(ROOT, "tfprune", "keras.py")
    keep = quiet.LibraryRecords().filter
    assert not keep(record(library, logging.WARNING))
    assert keep(record(library, logging.ERROR))
    assert keep(record(ours, logging.WARNING))


def test_a_progress_line_at_most_every_interval_and_only_inside_an_epoch():
    now = [100.0]
    done = [0]
    lines = []
    progress = training.EpochProgress(20, log=lines.append, prefix="[fine-tune] ", interval=10,
                                      clock=lambda: now[0], steps_done=lambda: done[0])
    progress.set_params({"steps": 469, "epochs": 20})
    assert not progress._implements_train_batch_hooks()  # whole-epoch calls stay on
    progress.on_epoch_begin(2)
    for t, steps in ((5, 50), (9.9, 95), (12, 120), (15, 150), (21.9, 200), (22, 230)):
        now[0], done[0] = 100 + t, steps
        progress.tick()
    assert lines == ["[fine-tune] epoch 3/20: 120/469 batches, 12s elapsed, ~35s left",
                     "[fine-tune] epoch 3/20: 230/469 batches, 22s elapsed, ~23s left"]
    now[0], done[0] = 140, 469
    progress.tick()
    assert lines[-1] == "[fine-tune] epoch 3/20: 469/469 batches, 40s elapsed, validating"
    progress.on_epoch_end(2)
    now[0] = 200
    progress.tick()
    assert len(lines) == 3  # between epochs: nothing
    progress.on_epoch_begin(3)
    now[0] = 205
    progress.tick()  # 5 s into the next epoch
    assert len(lines) == 3


# A prune run as a user starts it (tiny: digits, mlp, one epoch each), through a wrapper that
# plants, once TensorFlow is imported, a warning and a log record of the libraries' own.
PRUNE = """
import logging, sys, warnings
from tfprune.cli import common, prune

def main(argv):
    import tensorflow
    warnings.warn_explicit("a planted library warning", UserWarning, "ops.py", 1,
                           module="tensorflow.python.framework.ops")
    path = tensorflow.__file__.replace("__init__.py", "python/framework/ops.py")
    logging.getLogger("tensorflow").handle(logging.LogRecord(
        "tensorflow", logging.WARNING, path, 1, "a planted library log record", None, None))
    return prune.main(argv)

common.run(main, ["prune"] + sys.argv[1:])
"""


def _run(tmp_path, name, flags=(), env=None):
    """stdout and stderr of PRUNE in the user's environment (not run_python's, which sets
    TF_CPP_MIN_LOG_LEVEL=3)."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_USE_LEGACY_KERAS",
                                  quiet.VERBOSE_VARIABLE)}
    environment.update(env or {}, PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, "-c", PRUNE, "--dataset=digits", "--model=mlp", "--method=weight",
         "--baseline_epochs=1", "--fine_tune_epochs=1", f"--output_dir={tmp_path / name}",
         *flags], cwd=ROOT, capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == 0, result.stderr
    assert "pruned test accuracy" in result.stdout
    return result.stdout + result.stderr


@pytest.mark.integration
def test_a_prune_run_prints_no_library_noise(tmp_path):
    output = _run(tmp_path, "quiet")
    assert CPP_LINE.findall(output) == [], output
    assert not PYTHON_WARNING.search(output), output
    assert "planted" not in output, output


@pytest.mark.integration
@pytest.mark.parametrize("how", ["flag", "environment"])
def test_verbose_brings_the_noise_back(tmp_path, how):
    output = _run(tmp_path, how, flags=["--verbose"] if how == "flag" else (),
                  env={quiet.VERBOSE_VARIABLE: "1"} if how == "environment" else None)
    found = CPP_LINE.findall(output)
    assert "WARNING: All log messages" in found and any(line.startswith("I") for line in found)
    assert "UserWarning: a planted library warning" in output
    assert "a planted library log record" in output
