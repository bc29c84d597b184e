"""Entry point of the Bazel test targets (bazel/pytest.bzl): pytest on the arguments, from the
runfiles. pytest's cache is off (the runfiles are read-only); setup.cfg, a data file of every
test target, gives pytest its settings."""

import os
import sys

if __name__ == "__main__":
    runfiles = os.environ.get("TEST_SRCDIR")
    if runfiles:
        # Python put this file's resolved directory (tests/ in the source tree) first on the path:
        # the runfiles' own tests/ instead, so a test sees only what its target declares.
        sys.path[0] = os.path.dirname(os.path.abspath(__file__))
        # Scripts the tests start as `sys.executable ...` get this interpreter as Bazel runs it
        # (bazel/venv.bzl's python.sh: no site, so no editable install of tfprune in .venv).
        wrapper = os.path.join(runfiles, "venv", "python.sh")
        if os.path.exists(wrapper):
            sys.executable = wrapper
        # Bazel's sandbox leaves $HOME read-only: matplotlib's cache goes to the test's directory.
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"),
                                                           "matplotlib"))
    import pytest

    code = pytest.main(["-q", "-p", "no:cacheprovider"] + sys.argv[1:])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:  # e.g. a module whose tests are all integration
        print("no test of this module has these marks", sys.argv[2:])
        code = 0
    sys.exit(code)
