import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import tfprune  # noqa: E402,F401  (Keras 2 before any test imports TensorFlow)


def run_python(args, cwd=ROOT, timeout=600, env=None):
    """Run `python <args>` in a fresh interpreter; return CompletedProcess with text output."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    # A fresh interpreter as a user has it: importing tfprune here set this variable.
    full_env.pop("TF_USE_LEGACY_KERAS", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture
def python():
    return run_python
