"""Entry point of the Bazel py_test targets (tests/BUILD): pytest on the arguments, from the
runfiles. pytest's cache is off (the runfiles are read-only); setup.cfg, a data file of every
test target, gives pytest its settings."""

import os
import sys

import pytest

if __name__ == "__main__":
    # Bazel's sandbox leaves $HOME read-only: matplotlib's cache goes to the test's own directory.
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"),
                                                       "matplotlib"))
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider"] + sys.argv[1:]))
