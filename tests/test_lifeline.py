"""A child that called lifeline.bind ends with its parent (SIGKILL included) and on SIGTERM,
removing the temporary file it had in flight; one started from a thread that ends lives on
while its parent does. Real processes (no TensorFlow: each starts in about a second)."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from conftest import ROOT

from tfprune import lifeline

# The parent: starts a spawned child from its main thread or from a thread that ends after the
# child has bound (the parent-death signal set: it would fire now, the parent alive); the
# child binds, holds a temporary file of io.atomic_path, and waits in time.sleep (its main
# thread outside Python, as in TensorFlow's C++). The parent prints the child's pid and the
# temporary path, then sleeps until it is killed.
PARENT = r"""
import multiprocessing, os, sys, threading, time
from tfprune import io, lifeline

def child(path, started_by_main_thread, ready):
    lifeline.bind(multiprocessing.parent_process().pid, started_by_main_thread)
    with io.atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        ready.put(tmp)
        time.sleep(600)

if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    where = sys.argv[2]
    started = []
    def start():  # returns once the child has bound
        p = ctx.Process(target=child, args=(sys.argv[1], where == "main", ready))
        p.start()
        started.append((p, ready.get(timeout=30)))
    if where == "main":
        start()
    else:
        thread = threading.Thread(target=start)
        thread.start()
        thread.join()  # the thread that started the child has ended
    print(started[0][0].pid, started[0][1], flush=True)
    time.sleep(600)
"""


def _gone(pid):
    """The process ended (a zombie awaiting its reaper counts as ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_gone(pid) for pid in pids):
            return time.monotonic()
        time.sleep(0.05)
    return None


@pytest.fixture
def parent(tmp_path):
    started = []

    def start(where):
        env = dict(os.environ, PYTHONPATH=ROOT)
        script = tmp_path / "parent.py"  # a file: spawn imports the child's function from it
        script.write_text(PARENT)
        (tmp_path / "out").mkdir()
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "out" / "a.txt"),
                                 where], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        started.append(proc)
        pid, tmp = proc.stdout.readline().split()
        family = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        started.extend(family)
        return proc, int(pid), tmp, family

    yield start
    for item in started:  # whatever the test's outcome, nothing it started runs on
        pid = item.pid if isinstance(item, subprocess.Popen) else item
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for item in started:
        if isinstance(item, subprocess.Popen):
            item.wait()


@pytest.mark.integration
@pytest.mark.parametrize("where", ["main", "thread"])
def test_a_bound_child_ends_with_its_killed_parent_and_leaves_no_temporary_file(parent, where):
    proc, child, tmp, family = parent(where)
    assert os.path.exists(tmp) and len(family) == 3, family  # parent, child, resource tracker
    # Started from a thread that has ended: the parent-death signal would have stopped it.
    time.sleep(1.5)
    assert not _gone(child) and os.path.exists(tmp)
    killed = time.monotonic()
    proc.kill()
    proc.wait()
    ended = _wait_gone(family, timeout=10)
    assert ended is not None, [p for p in family if not _gone(p)]
    assert ended - killed < 3  # the sentinel or the death signal: not the ppid poll's worst
    assert not os.path.exists(tmp)
    assert os.listdir(os.path.dirname(tmp)) == []


@pytest.mark.integration
def test_sigterm_ends_a_bound_child_with_status_143_and_no_temporary_file(parent):
    proc, child, tmp, family = parent("main")
    os.kill(child, signal.SIGTERM)
    assert _wait_gone([child], timeout=10) is not None
    assert not os.path.exists(tmp)
    assert proc.poll() is None  # the parent is not the child's to end
    proc.kill()
    proc.wait()
    assert _wait_gone(family, timeout=10) is not None


def test_sigterm_raises_terminated_a_keyboard_interrupt():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        lifeline.raise_on_sigterm()
        with pytest.raises(lifeline.Terminated) as raised:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here, at once
        assert isinstance(raised.value, KeyboardInterrupt)
        assert lifeline.EXIT_TERMINATED == 143
    finally:
        signal.signal(signal.SIGTERM, previous)
