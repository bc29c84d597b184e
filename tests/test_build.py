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


@pytest.mark.integration
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


@pytest.mark.integration
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


_WHERE = """
import json, sys
import tfprune.io
print(json.dumps({"io": tfprune.io.__file__, "path": sys.path, "no_site": sys.flags.no_site,
                  "finders": [repr(f) for f in sys.meta_path]}))
"""


def _isolated(where, runfiles, source):
    assert os.path.abspath(where["io"]).startswith(runfiles + os.sep), where["io"]
    assert where["no_site"], "started with site: tfprune's editable install in .venv is on"
    assert not any("editable" in f for f in where["finders"]), where["finders"]
    venv = os.path.join(source, ".venv")
    assert not [p for p in where["path"] if (p == source or p.startswith(source + os.sep))
                and not p.startswith(venv + os.sep)], ("the source tree is on sys.path",
                                                       where["path"])


# Starts a script (integration); smoke, so make bazel-test, which runs the fast tiers, runs it.
@pytest.mark.integration
@pytest.mark.smoke
@pytest.mark.skipif(not UNDER_BAZEL, reason="checks a Bazel test's runfiles")
def test_under_bazel_first_party_code_comes_from_the_runfiles_only():
    """tfprune is imported from the target's runfiles, neither from the source tree nor from
    the editable install in .venv (the toolchain starts python without site), in the test and
    in a script it starts; third-party packages come from .venv."""
    import json

    import numpy
    import tfprune.io

    runfiles = os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"])
    source = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    assert source != runfiles and ROOT == runfiles
    assert os.path.abspath(__file__).startswith(runfiles + os.sep), __file__
    here = {"io": tfprune.io.__file__, "path": sys.path, "no_site": sys.flags.no_site,
            "finders": [repr(f) for f in sys.meta_path]}
    _isolated(here, runfiles, source)
    assert "/.venv/" in numpy.__file__
    from conftest import run_python
    child = run_python(["-c", _WHERE])
    assert child.returncode == 0, child.stderr
    _isolated(json.loads(child.stdout.strip().splitlines()[-1]), runfiles, source)
