"""The test suite's two tiers, and the rule that keeps them apart (conftest.py imports the hooks).

unit         trains no model and starts no process: runs in seconds, `make test-fast` runs it.
integration  trains (Model.fit, train_on_batch: tf_keras or Keras 3), starts a process
             (a Python interpreter through subprocess; any multiprocessing child) or kills one: marked ``@pytest.mark.integration``
             (a module: ``pytestmark = pytest.mark.integration``). `make test` runs it too;
             ``@pytest.mark.smoke`` picks the few of them `make test-fast` runs as well.

The rule is checked on every run, not by convention: while the setup (module fixtures included)
or the body of a test that is not marked integration runs, training a model or starting a process
fails that test at once, naming the mark it needs. So an expensive test cannot land in the fast
tier by accident, and the fast tier stays fast.
"""

import functools
import importlib.abc
import multiprocessing.process
import os
import platform
import subprocess
import sys

import pytest

INTEGRATION = "integration"
SMOKE = "smoke"
MARKERS = {
    INTEGRATION: "trains a model or starts a process (tests/tiers.py); `make test-fast` leaves "
                 "it out unless it is also smoke",
    SMOKE: "an integration test `make test-fast` runs too (a few end-to-end checks)",
}

# The unit-tier test whose setup or call is running (None: none, or an integration test).
_running = {"test": None}


def is_integration(item):
    return item.get_closest_marker(INTEGRATION) is not None


def _refuse(what):
    test = _running["test"]
    if test is not None:
        pytest.fail(f"{test} {what}, which only integration tests may do: mark it "
                    f"@pytest.mark.{INTEGRATION} (tests/tiers.py)", pytrace=False)


def _guard(owner, name, what, applies=lambda args, kwargs: True):
    """Wrap ``owner.name`` so that a call ``applies`` to is refused in a unit test."""
    function = getattr(owner, name)
    if getattr(function, "_tier_guard", False):
        return

    @functools.wraps(function)
    def guarded(*args, **kwargs):
        if applies(args, kwargs):
            _refuse(what)
        return function(*args, **kwargs)

    guarded._tier_guard = True
    setattr(owner, name, guarded)


def _starts_python(args, kwargs):
    """True when a Popen starts a Python interpreter (a script, a worker, a `-c` program): what
    costs seconds. Libraries run small programs of their own as they load (ctypes asks ldconfig
    for libraries, platform asks uname), which are not the test's doing."""
    command = kwargs.get("args", args[0] if args else None)
    program = kwargs.get("executable") or (command if isinstance(command, (str, bytes)) else
                                            (list(command) or [""])[0])
    program = os.fsdecode(program).split()[0] if program else ""
    return "python" in os.path.basename(program) or program == sys.executable


def install():
    """Guard what only integration tests may do (again after a library loads: Keras 3 is
    imported lazily; a guard is never put on twice)."""
    _guard(subprocess.Popen, "__init__", "starts a process (subprocess)",
           lambda args, kwargs: _starts_python(args[1:], kwargs))  # args[0]: the Popen
    _guard(multiprocessing.process.BaseProcess, "start", "starts a process (multiprocessing)")
    for module_name, label in (("tf_keras", "tf_keras"), ("keras", "Keras 3")):
        module = sys.modules.get(module_name)
        model = getattr(module, "Model", None) if module is not None else None
        if isinstance(model, type):
            for method in ("fit", "train_on_batch"):
                _guard(model, method, f"trains a model ({label} Model.{method})")


class _GuardOnImport(importlib.abc.MetaPathFinder):
    """Puts the Model guards on as tf_keras or Keras 3 is imported, even inside a test's body
    (tfprune imports them on first use, so a unit test may be the first to)."""

    NAMES = ("tf_keras", "keras")

    def find_spec(self, name, path, target=None):
        if name not in self.NAMES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader,
                                                                         "exec_module"):
                exec_module = spec.loader.exec_module

                def exec_and_guard(module, exec_module=exec_module):
                    exec_module(module)
                    install()

                spec.loader.exec_module = exec_and_guard
                return spec
        return None


def _phase(item):
    install()
    previous = _running["test"]
    _running["test"] = None if is_integration(item) else item.nodeid
    try:
        yield
    finally:
        _running["test"] = previous


def pytest_configure(config):
    # The standard library asks `uname -p` once, when platform.processor() is first read (h5py
    # does, as TensorFlow imports it): answered here, before any guard, so a unit test that is
    # the first to import TensorFlow starts no process.
    platform.processor()
    if not any(isinstance(finder, _GuardOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _GuardOnImport())
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _phase(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _phase(item)
