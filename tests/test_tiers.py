"""The tier rule (tests/tiers.py) holds: a test outside the integration tier that trains a model or
starts a process fails, naming the mark; marked, the same test passes. Run in-process by pytest's
own pytester, so this check itself starts nothing and trains nothing."""

import pytest

# Loaded before pytester's in-process runs, which drop the modules they import (TensorFlow's
# extensions cannot be loaded twice in one process).
from tfprune.keras import keras  # noqa: F401

pytest_plugins = ["pytester"]

CASES = {
    "subprocess": "import subprocess, sys\n    subprocess.run([sys.executable, '-c', 'pass'])",
    "multiprocessing": "import multiprocessing\n"
                       "    multiprocessing.get_context('spawn').Process(target=print).start()",
    "fit": "from tfprune.keras import keras\n    import numpy as np\n"
           "    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
           "    model.compile(loss='mse')\n"
           "    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0)",
    "train_on_batch": "from tfprune.keras import keras\n    import numpy as np\n"
                      "    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
                      "    model.compile(loss='mse')\n"
                      "    model.train_on_batch(np.zeros((4, 2)), np.zeros((4, 1)))",
}
WHAT = {"subprocess": "starts a process (subprocess)",
        "multiprocessing": "starts a process (multiprocessing)",
        "fit": "trains a model (tf_keras Model.fit)",
        "train_on_batch": "trains a model (tf_keras Model.train_on_batch)"}


def _tests(body, where):
    header = "import pytest\n\n" + ("pytestmark = pytest.mark.integration\n\n"
                                     if where == "module" else "")
    mark = "@pytest.mark.integration\n" if where == "test" else ""
    return f"{header}{mark}def test_it():\n    {body}\n"


@pytest.fixture
def suite(pytester):
    pytester.makeconftest("from tiers import pytest_configure, pytest_runtest_call, "
                          "pytest_runtest_setup  # noqa: F401\n")
    return pytester


@pytest.mark.parametrize("case", ["fit", "train_on_batch", "subprocess"])
def test_a_unit_test_that_trains_or_starts_a_process_fails_naming_the_mark(suite, case):
    suite.makepyfile(_tests(CASES[case], where=None))
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*test_it {WHAT[case]}, which only integration tests may do: "
                                 "mark it @pytest.mark.integration (tests/tiers.py)*"])


def test_a_module_fixture_that_trains_counts_as_the_test_using_it(suite):
    suite.makepyfile("import pytest\n\n@pytest.fixture(scope='module')\ndef trained():\n"
                     f"    {CASES['fit']}\n\n"
                     "def test_it(trained):\n    pass\n")
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*test_it {WHAT['fit']}, which only integration*"])


@pytest.mark.parametrize("where", ["test", "module"])
def test_marked_integration_the_same_test_passes(suite, where):
    suite.makepyfile(_tests(CASES["fit"], where))
    suite.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.integration
def test_multiprocessing_is_guarded_too(suite):
    # Marked: the refused start is checked in a nested unit test, but were the guard missing the
    # child would really start (a spawned interpreter), and that is integration work.
    suite.makepyfile(_tests(CASES["multiprocessing"], where=None))
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*test_it {WHAT['multiprocessing']}*"])
