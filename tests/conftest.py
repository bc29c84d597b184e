import os
import subprocess
import sys

import pytest

# The checkout; under Bazel, the test target's runfiles (pytest loads this file by its real path,
# in the source tree, so __file__ would point past what the target declares).
if "TEST_SRCDIR" in os.environ:
    ROOT = os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"])
else:
    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Keras 2, and TensorFlow loaded before any test runs: importing it may start processes of its
# own (ctypes asks ldconfig for libraries, under Bazel), which are not the test's doing and
# would trip the tier guard in whichever unit test happened to import it first.
import tfprune.keras  # noqa: E402,F401
# The unit and integration tiers and the rule between them (tests/tiers.py).
from tiers import pytest_configure, pytest_runtest_call, pytest_runtest_setup  # noqa: E402,F401
# No process the run started outlives it: checked when the session ends (tests/leftovers.py).
from leftovers import pytest_sessionfinish, pytest_sessionstart  # noqa: E402,F401


def run_python(args, cwd=ROOT, timeout=600, env=None):
    """Run `python <args>` in a fresh interpreter; return CompletedProcess with text output."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    # A fresh interpreter as a user has it: importing tfprune here set this variable.
    full_env.pop("TF_USE_LEGACY_KERAS", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


# The start of a script that prunes under MirroredStrategy on two logical CPU devices (they must
# be made before TensorFlow starts, so such tests run in a fresh interpreter): ``strategy``, a
# digits-shaped batch ``x``, ``y``, and tfprune's prune, strip and stats.
MIRRORED_PREAMBLE = """
import tfprune
import numpy as np
from tfprune.keras import keras, tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tfprune.models import build_model
from tfprune.pruning import prune, strip, stats
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x = np.random.default_rng(0).random((64, 8, 8, 1)).astype("float32")
y = np.arange(64) % 10
"""


@pytest.fixture
def python():
    return run_python
