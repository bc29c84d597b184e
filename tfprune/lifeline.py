"""How tfprune's processes end: a child ends with its parent, SIGTERM is an interruption.

A process tfprune starts (the sweep's conversion worker, jobs/deployer.py) calls ``bind`` first
thing. From then on it ends when its parent ends, however the parent ended (SIGKILL included),
and when it is sent SIGTERM (what the parent's ``Deployer`` sends to stop it), in both cases
after removing the temporary files and directories it has in flight (``io.remove_in_flight``),
so it leaves no partial file behind. Three ways it learns of the parent's end:

- Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``), only when the child was
  started by its parent's main thread: the kernel sends it when the *thread* that started the
  child ends, so a child started from a thread that ends earlier would be stopped while its
  parent still runs;
- ``multiprocessing``'s parent sentinel (a pipe whose write end only the parent holds: it
  reads as closed once the parent is gone), where the child is a ``multiprocessing`` one;
- ``os.getppid()`` changing from the parent's pid (re-parented to init or a subreaper), checked
  every ``POLL_S``: for any child, on any POSIX system, and for a parent already gone before
  ``bind`` ran.

The ending is done by a daemon thread (the watch), not in the main thread: a Python signal
handler runs only when the main thread is back in Python, while the watch is woken at once
(``signal.set_wakeup_fd``) and needs only the interpreter lock, which TensorFlow's kernels and
the converter give up often (while a cnn converted to four quantizations, a thread waited at
most 0.33 s for it). It then exits at once with status ``EXIT_TERMINATED``.

In a script's own process ``raise_on_sigterm`` makes SIGTERM raise ``Terminated`` (a
KeyboardInterrupt) in the main thread, so a job stops exactly as on Ctrl-C: what is being
written is finished or discarded atomically, a worker is stopped, finished results stay
(tfprune/cli/common.py's runner says so and exits ``EXIT_TERMINATED``).

No TensorFlow here: a child binds before it imports anything heavy.
"""

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading

from tfprune import io

PR_SET_PDEATHSIG = 1  # linux/prctl.h
POLL_S = 0.5  # how often the watch compares os.getppid() with the parent's pid
EXIT_TERMINATED = 128 + signal.SIGTERM  # a shell's status for a process ended by SIGTERM: 143


class Terminated(KeyboardInterrupt):
    """SIGTERM received: handled wherever Ctrl-C is (it is a KeyboardInterrupt)."""


def raise_on_sigterm():
    """In the main thread of a script: SIGTERM raises ``Terminated`` there from now on."""

    def terminated(signum, frame):
        raise Terminated(f"terminated (signal {signum})")

    signal.signal(signal.SIGTERM, terminated)


def _parent_death_signal(signum):
    """Ask Linux to send ``signum`` when the parent (the thread that started us) ends; False
    where there is no prctl (not Linux) or it refused."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols: libc's prctl
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _end():
    """Remove what this process has in flight, then exit with SIGTERM's status, at once (no
    unwinding: the main thread may be anywhere)."""
    try:
        io.remove_in_flight()  # keeps the registry locked: no thread writes a new temp file
    finally:
        os._exit(EXIT_TERMINATED)


class _Watch(threading.Thread):
    """Ends the process when its parent is gone or SIGTERM arrives (see the module's text)."""

    def __init__(self, parent_pid, sentinel, wakeup):
        super().__init__(name="tfprune-lifeline", daemon=True)
        self.parent_pid = parent_pid
        self.sentinel = sentinel
        self.wakeup = wakeup  # read end of the signal wake-up pipe, or None
        self.term = threading.Event()  # set by the SIGTERM handler (no wake-up pipe)

    def parent_gone(self):
        return os.getppid() != self.parent_pid

    def run(self):
        handles = [h for h in (self.sentinel, self.wakeup) if h is not None]
        while not self.parent_gone() and not self.term.is_set():
            if handles:
                ready = multiprocessing.connection.wait(handles, POLL_S)
            else:
                self.term.wait(POLL_S)
                ready = []
            if self.sentinel in ready:
                break  # the parent's end of the pipe closed: the parent is gone
            if self.wakeup in ready:
                signals = os.read(self.wakeup, 512)
                if signal.SIGTERM in signals:
                    break
        _end()


_bound = {}


def bind(parent_pid=None, started_by_main_thread=True):
    """In a child, first thing: end when the parent ends or on SIGTERM (see the module's
    text). ``parent_pid``: the parent's pid as the parent knew it (default: the
    multiprocessing parent's, else ``os.getppid()``); if the process has another parent
    already, the parent is gone and this process ends now. ``started_by_main_thread``: whether
    the parent started this process from its main thread (the parent-death signal is used only
    then). Call it from the child's main thread; a second call does nothing."""
    if _bound:
        return _bound["watch"]
    parent = multiprocessing.parent_process()
    if parent_pid is None:
        parent_pid = parent.pid if parent is not None else os.getppid()
    sentinel = getattr(parent, "sentinel", None) if parent is not None and \
        parent.pid == parent_pid else None
    wakeup = None
    watch = None

    def on_sigterm(signum, frame):
        watch.term.set()

    main = threading.current_thread() is threading.main_thread()
    if main and os.name == "posix":
        read, write = os.pipe()
        os.set_blocking(write, False)
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        wakeup = read
    watch = _Watch(parent_pid, sentinel, wakeup)
    if main:
        signal.signal(signal.SIGTERM, on_sigterm)
    if started_by_main_thread:
        _parent_death_signal(signal.SIGTERM)
    _bound["watch"] = watch
    watch.start()  # it checks os.getppid() first: a parent gone before prctl ran is seen
    return watch
