"""The scripts answer before TensorFlow: defining the flags and building the config with the
default flags import none of TensorFlow, Keras, tfmot, keras-tuner or ai-edge-*; a bad value
is one line and exit status 2; the lazy registries name what their modules register."""

import json
import sys

import pytest

from conftest import run_python

SCRIPTS = ("train", "prune", "sweep", "tune", "export_tflite", "sensitivity", "visualize")
HEAVY = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "keras_tuner",
         "ai_edge_litert", "ai_edge_quantizer")

# In a fresh interpreter: import the script, parse its flags, build its config as its main does
# (main is run with the job's import replaced by a stop), then list the heavy modules loaded.
PROBE = """
import builtins, json, sys
from absl import flags
import tfprune.cli.{command} as script
real_import = builtins.__import__

class Built(Exception):
    pass

def stop_at_the_job(name, *args, **kwargs):
    if name.startswith("tfprune.jobs.") and not name.startswith("tfprune.jobs.configs"):
        raise Built(name)
    return real_import(name, *args, **kwargs)

flags.FLAGS(["{script}"] + {argv!r})
builtins.__import__ = stop_at_the_job
try:
    script.main([])
    stopped = None
except Built as err:
    stopped = str(err)
builtins.__import__ = real_import
print(json.dumps({{"stopped": stopped,
                  "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def _argv(script, tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read before the job")
    return {"tune": [f"--baseline={model}"], "export_tflite": [f"--model_path={model}"],
            "visualize": [f"--models=dense={model}"]}.get(script, [])


def _last_json(code):
    """The last line ``code`` prints in a fresh interpreter (which must succeed), as JSON."""
    result = run_python(["-c", code])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# Processes without TensorFlow (about 0.5 s each): in the fast tier's smoke set.
@pytest.mark.integration
@pytest.mark.smoke
@pytest.mark.parametrize("script", SCRIPTS)
def test_flags_and_config_import_no_tensorflow(script, tmp_path):
    command = {"export_tflite": "export"}.get(script, script)
    found = _last_json(PROBE.format(script=script, command=command, argv=_argv(script, tmp_path),
                                    heavy=HEAVY))
    assert found["stopped"] and found["stopped"].startswith("tfprune.jobs."), found
    assert found["heavy"] == [], found


@pytest.mark.integration
@pytest.mark.smoke
def test_a_bad_value_is_one_line_without_tensorflow():
    result = run_python(["-m", "experiments.prune", "--target_sparsity=1.5"])
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: `target_sparsity` must be in [0, 1), got 1.5"]
    result = run_python(["-m", "experiments.sweep", "--methods=weight,bogus"])
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: unknown pruning method 'bogus'; registered: adaptive, channel, dynamic, "
        "incremental, unit, weight"]


@pytest.mark.integration
@pytest.mark.smoke
def test_the_configs_and_registries_the_package_exports_import_no_tensorflow():
    found = _last_json(
        "import json, sys\n"
        "from tfprune import (PruneConfig, SweepConfig, TrainConfig, ExportConfig, QUANTIZATIONS,\n"
        "                     METHODS, SCHEDULES)\n"
        "configs = (PruneConfig, SweepConfig, TrainConfig, ExportConfig)\n"
        "print(json.dumps([[c.__module__ for c in configs],\n"
        "                  [r.kind for r in (QUANTIZATIONS, METHODS, SCHEDULES)],\n"
        "                  [m for m in %r if m in sys.modules]]))" % (HEAVY,))
    assert found == [["tfprune.jobs.configs.prune", "tfprune.jobs.configs.sweep",
                      "tfprune.jobs.configs.train", "tfprune.jobs.configs.export"],
                     ["quantization", "pruning method", "schedule"], []]


@pytest.mark.integration
def test_the_package_and_its_registries_load_on_first_use():
    code = ("import sys, tfprune, tfprune.pruning\n"
            "before = [m for m in %r if m in sys.modules]\n"
            "from tfprune import PruneConfig, keras, prune, tf\n"
            "import tensorflow\n"
            "print(before, keras.__name__, tfprune.keras.__name__, tf is tensorflow,\n"
            "      prune is tfprune.pruning.method_objects.prune, tensorflow.keras.__name__.split('.')[0])\n" % (HEAVY,))
    result = run_python(["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "tf_keras", "tf_keras", "True", "True", "tf_keras"]


def test_lazy_registries_name_what_their_modules_define():
    from tfprune.pruning import channels
    from tfprune.pruning.options import CRITERIA
    from tfprune.pruning.schedules import SCHEDULES
    from tfprune.tflite import export
    from tfprune.tflite.quantizations import QUANTIZATIONS

    assert [type(q) for q in QUANTIZATIONS.entries()] == [export.Quantization] * len(QUANTIZATIONS)
    assert CRITERIA.get("l2") is channels.l2_importance and len(CRITERIA.entries()) == 5
    import tensorflow_model_optimization as tfmot

    assert SCHEDULES.get("polynomial") is tfmot.sparsity.keras.PolynomialDecay
    assert "tensorflow" in sys.modules


def test_the_keras_stand_ins_load_once_and_forward_no_dunders(monkeypatch):
    import copy
    import types

    from tfprune import lazy

    loads = []
    real = types.SimpleNamespace(tf=types.SimpleNamespace(constant="tf.constant"))

    def import_module(name):
        loads.append(name)
        return real

    monkeypatch.setattr(lazy, "importlib", types.SimpleNamespace(import_module=import_module))
    tf = lazy.LazyModule("tf")
    assert not hasattr(tf, "__wrapped__") and repr(copy.copy(tf)) == "<lazy tfprune.keras.tf>"
    assert loads == []
    assert tf.constant == "tf.constant" and tf.constant == "tf.constant"
    assert loads == ["tfprune.keras"]
    with pytest.raises(AttributeError, match="a LazyModule without a name"):
        lazy.LazyModule.__new__(lazy.LazyModule).constant
