"""No process started by a test run outlives it (conftest.py imports the hooks).

A parent-tree walk misses the processes that matter most, the orphans re-parented to init (a
killed sweep's conversion worker), so the run marks its children instead: the session's process
puts ``RUN_VARIABLE`` (a token of its own) in its environment before any child starts (pytest-
xdist's workers included), every child inherits it, and when the session ends (the xdist
workers stopped) every process of this user whose initial environment carries the token is a
survivor. After a grace period of ``GRACE_S`` (a process that is ending is given time to end),
the survivors are listed with their command lines, killed, and the session fails.

Linux only (/proc); elsewhere nothing is checked. A child started with an environment of its
own that drops the variable is not seen.
"""

import os
import signal
import time
import uuid

import pytest

RUN_VARIABLE = "TFPRUNE_TEST_RUN"
GRACE_S = 10.0
_POLL_S = 0.1
_runs = []  # (token, the variable's value before) of the sessions running in this process


def _is_session_process(config):
    return not hasattr(config, "workerinput")  # an xdist worker inherits the session's token


def marked(token):
    """{pid: command line} of the processes whose initial environment carries ``token``."""
    entry = f"{RUN_VARIABLE}={token}".encode()
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if entry not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or another user's
            continue
        found[int(name)] = command or "?"  # a zombie has neither (and is no cost)
    return {pid: command for pid, command in found.items() if command != "?"}


def survivors(token, grace_s):
    """The marked processes still there after up to ``grace_s`` seconds."""
    deadline = time.monotonic() + grace_s
    while True:
        left = marked(token)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(_POLL_S)


def _stop_own_resource_tracker():
    """multiprocessing's resource tracker, started by this process when a test ran a worker in
    it (a Deployer in-process, without xdist), lives until this process ends, after the check:
    it is this process's, not a leftover of a test, so it is stopped first (as at exit)."""
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_pid", None) is not None:
        tracker._stop()


def pytest_sessionstart(session):
    # Before pytest-xdist starts its workers (its own hook runs last), so they carry it too.
    if _is_session_process(session.config) and os.path.isdir("/proc"):
        _runs.append((f"{os.getpid()}-{uuid.uuid4().hex}", os.environ.get(RUN_VARIABLE)))
        os.environ[RUN_VARIABLE] = _runs[-1][0]


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session):
    result = yield  # pytest-xdist's workers are stopped by now
    if not _is_session_process(session.config) or not _runs:
        return result
    token, previous = _runs.pop()
    if previous is None:
        os.environ.pop(RUN_VARIABLE, None)
    else:
        os.environ[RUN_VARIABLE] = previous
    _stop_own_resource_tracker()
    left = survivors(token, GRACE_S)
    if left:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        write = reporter.write_line if reporter is not None else print
        write(f"{len(left)} process(es) started by this test run were still running "
              f"{GRACE_S:g} s after it ended (killed now; the test that started each must "
              "end it):")
        for pid, command in sorted(left.items()):
            write(f"  pid {pid}: {command[:300]}")
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return result
