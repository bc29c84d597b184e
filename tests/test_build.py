"""The Bazel BUILD files stay true to the code (bazel/build_files.py writes them from the
imports), and a Bazel test runs on what its target declares."""

import glob
import importlib.util
import os
import re
import sys

import pytest

from conftest import ROOT

UNDER_BAZEL = "TEST_SRCDIR" in os.environ
source_tree = pytest.mark.skipif(UNDER_BAZEL, reason="reads the whole source tree, which a "
                                 "Bazel test's runfiles do not hold; `make test` runs it")


def _build_srcs(directory):
    """The .py files a directory's BUILD file builds: its targets' srcs, and the module of each
    pytest_test (bazel/pytest.bzl: `name` runs `name`.py)."""
    with open(os.path.join(ROOT, directory, "BUILD"), encoding="utf-8") as f:
        text = f.read()
    return set(re.findall(r'"(\w+\.py)"', text)) | {
        f"{name}.py" for name in re.findall(r'pytest_test\(\n    name = "(\w+)"', text)}


@source_tree
def test_every_module_and_test_module_has_a_build_target():
    """The drift check: every .py file of tfprune/, experiments/ and benchmarks/, and every test
    module, is a source of a target in its directory's BUILD file."""
    missing = []
    for top in ("tfprune", "experiments", "benchmarks", "tests"):
        for directory in sorted({os.path.dirname(p) for p in
                                 glob.glob(os.path.join(ROOT, top, "**", "*.py"), recursive=True)}):
            relative = os.path.relpath(directory, ROOT)
            if not os.path.exists(os.path.join(directory, "BUILD")):
                missing.append(f"{relative}/BUILD")
                continue
            srcs = _build_srcs(relative)
            for path in sorted(glob.glob(os.path.join(directory, "*.py"))):
                name = os.path.basename(path)
                if top == "tests" and not (name.startswith("test_") or name == "conftest.py"):
                    continue
                if name not in srcs:
                    missing.append(f"{relative}/{name}")
    assert not missing, f"no BUILD target for {missing}; run `make build-files`"


@source_tree
def test_the_build_files_are_what_the_imports_give():
    """Deps included: a new import without `make build-files` fails here, not in Bazel."""
    spec = importlib.util.spec_from_file_location(
        "build_files", os.path.join(ROOT, "bazel", "build_files.py"))
    build_files = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_files)
    assert build_files.stale() == [], "run `make build-files`"


@source_tree
def test_every_experiment_script_has_a_binary():
    with open(os.path.join(ROOT, "experiments", "BUILD"), encoding="utf-8") as f:
        binaries = set(re.findall(r'py_binary\(\n    name = "(\w+)"', f.read()))
    scripts = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "experiments", "*.py"))}
    assert binaries == scripts - {"__init__", "common"}


@pytest.mark.skipif(not UNDER_BAZEL, reason="checks a Bazel test's runfiles")
def test_under_bazel_first_party_code_comes_from_the_runfiles_only():
    """tfprune is imported from the target's runfiles, not the source tree nor the editable
    install in .venv (the toolchain starts python without site), and the third-party packages
    from .venv."""
    import numpy
    import tfprune

    runfiles = os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"])
    assert os.path.abspath(tfprune.__file__).startswith(runfiles + os.sep), tfprune.__file__
    assert os.path.abspath(__file__).startswith(runfiles + os.sep), __file__
    assert ROOT == runfiles
    assert sys.flags.no_site and not any("editable" in type(f).__name__.lower()
                                         or "editable" in str(f) for f in sys.meta_path)
    assert "/.venv/" in numpy.__file__
