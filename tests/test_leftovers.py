"""The test run checks its own children (tests/leftovers.py): a process a test leaves running,
an orphan re-parented to init included, is listed with its command line, killed, and fails the
session; a run whose tests end what they start passes. Run in-process by pytester; the
processes are `sleep`s (no interpreter: cheap)."""

import os
import time

import psutil
import pytest

import leftovers

pytest_plugins = ["pytester"]

CONFTEST = ("from leftovers import pytest_sessionfinish, pytest_sessionstart  # noqa: F401\n")


@pytest.fixture
def suite(pytester, monkeypatch):
    monkeypatch.setattr(leftovers, "GRACE_S", 0.5)
    pytester.makeconftest(CONFTEST)
    return pytester


def test_an_orphan_left_running_is_listed_killed_and_fails_the_run(suite, tmp_path):
    pid_file = tmp_path / "pid"
    # The shell exits at once; its `sleep` is re-parented to init (a tree walk would miss it).
    suite.makepyfile(f"""
import subprocess

def test_leaves_an_orphan():
    out = subprocess.run(["sh", "-c", "sleep 120 > /dev/null 2>&1 & echo $!"], capture_output=True,
                         text=True, check=True).stdout
    open({str(pid_file)!r}, "w").write(out.strip())
""")
    outer = os.environ.get(leftovers.RUN_VARIABLE)
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    assert os.environ.get(leftovers.RUN_VARIABLE) == outer  # the inner run's token taken back
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    pid = int(pid_file.read_text())
    result.stdout.fnmatch_lines([
        "1 process(es) started by this test run were still running 0.5 s after it ended "
        "(killed now; the test that started each must end it):",
        f"  pid {pid}: sleep 120"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and psutil.pid_exists(pid) and \
            psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.05)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_run_whose_tests_end_their_processes_passes(suite):
    suite.makepyfile("""
import subprocess

def test_waits_for_its_child():
    subprocess.run(["sleep", "0.2"], check=True)
""")
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "still running" not in result.stdout.str()


def test_the_session_process_own_resource_tracker_is_not_a_leftover(suite):
    """A worker started in the pytest process itself (a Deployer, without xdist) starts
    multiprocessing's resource tracker, which lives as long as that process: stopped before the
    check, not reported."""
    suite.makepyfile("""
import time
from multiprocessing import resource_tracker

def test_starts_the_tracker():
    resource_tracker.ensure_running()
    pid = resource_tracker._resource_tracker._pid
    deadline = time.monotonic() + 10  # until it runs the tracker (exec'd: its own environment)
    while b"resource_tracker" not in open(f"/proc/{pid}/cmdline", "rb").read():
        assert time.monotonic() < deadline
        time.sleep(0.01)
""")
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "still running" not in result.stdout.str()
