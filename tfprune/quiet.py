"""Quiet by default: what TensorFlow, Keras, tfmot and LiteRT print that is not tfprune's, hidden
unless the user asks for it with ``TFPRUNE_VERBOSE=1`` in the environment (``VERBOSE_VARIABLE``)
or a command's ``--verbose`` (which sets that variable, so the processes a command starts are
verbose too). No TensorFlow is imported here; ``environ.use_keras2`` calls
``hide_library_warnings`` on ``import tfprune``, before TensorFlow is imported.

Three kinds of lines, and what hides each:

- Python warnings (``warnings.warn``) raised in the modules of tensorflow*, tf_keras, keras*
  (keras_tuner too) and ai_edge_* (``LIBRARY_MODULES``): ignored by a ``warnings`` filter on
  their module. Records below ERROR that those packages' files log through Python's logging
  (the ``tensorflow`` logger here; a command adds its flag library's logger) are dropped by
  ``LibraryRecords``. tfprune's own warnings and log lines, and every ERROR, stay.
- TensorFlow's C++ logging: ``TF_CPP_MIN_LOG_LEVEL`` stays 2 (environ.py: ERRORs shown), but
  the Abseil logging in TensorFlow's libraries (XLA's tsl), not yet initialized while they load,
  ignores it and prints INFO lines and a banner to fd 2; so do LiteRT's interpreter (its
  minimal logger: no setting in its Python API) and the CUDA stub. A command (``command``) runs
  with fd 2 passed through a filter process (``filtered_stderr``) that drops exactly the lines
  ``NOISE`` matches: Abseil's "WARNING: All log messages before ...InitializeLog() is called
  are written to STDERR" banner; INFO lines of C++ logging (``I0000 00:00:... port.cc:153]
  ...``: the oneDNN note, "Could not find cuda drivers", ...: INFO is never an error); the
  ERROR line "failed call to cuInit: ... (303)", 303 being CUDA_ERROR_SHARED_OBJECT_INIT_FAILED,
  which TensorFlow's CUDA stub returns when there is no CUDA driver library to load (a machine
  without a GPU driver: any other cuInit failure is shown); the ERROR line "NodeDef mentions
  attribute use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset;
  ...", TensorFlow 2.21's own tf.data attribute unknown to the registry that checks it, printed
  when a Keras 3 model meets tf.data (--keras3_output, sensitivity) and followed by correct
  results; and LiteRT's INFO lines ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
  "INFO: Replacing N node(s) with delegate ..."). Every other line, WARNING, ERROR and FATAL
  ones included, is passed on as it comes. The filter is a process of its own (it outlives a
  crash of the command, so the last lines before an abort are not lost), ignores Ctrl-C (it
  ends when every writer of the pipe has closed it), and ``command`` returns only once the
  filter has written everything the command wrote. Processes the command starts inherit fd 2,
  and with it the filter.
- Long lists in tfprune's own log lines: ``names`` shortens them, naming where the whole is.

Nothing is hidden from the run directories, and no setting changes what is computed (oneDNN
stays on; no device is hidden: CUDA_VISIBLE_DEVICES is never set).
"""

import contextlib
import logging
import os
import re
import select
import sys
import time
import warnings

VERBOSE_VARIABLE = "TFPRUNE_VERBOSE"

# Modules whose Python warnings are hidden (``warnings`` matches the name from its start).
LIBRARY_MODULES = r"(?:tensorflow\w*|tf_keras|keras\w*|ai_edge_\w+)(?:\.|$)"
# The same packages' files, as a log record's pathname names them (installed packages).
_LIBRARY_FILES = re.compile(r"[/\\](?:site|dist)-packages[/\\]"
                            r"(?:tensorflow\w*|tf_keras|keras\w*|ai_edge_\w+)[/\\]")

# Whole lines dropped from fd 2 (the module docstring says why each is noise).
_CPP_PREFIX = r"\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w./-]+\.(?:cc|cpp|h):\d+\] "
NOISE = re.compile(
    r"WARNING: All log messages before \S*InitializeLog\(\) is called are written to STDERR$"
    rf"|I{_CPP_PREFIX}"
    rf"|E{_CPP_PREFIX}failed call to cuInit: .*\(303\)$"
    rf"|E{_CPP_PREFIX}NodeDef mentions attribute use_unbounded_threadpool which is not in the "
    r"op definition: Op<name=MapDataset;"
    r"|INFO: (?:Created TensorFlow Lite XNNPACK delegate for CPU\.|Initialized TensorFlow Lite "
    r"runtime\.|Replacing \d+ (?:out of \d+ )?node\(s\) with delegate )")
HOLD_S = 0.1  # how long an unfinished line that may become noise waits for its end
DRAIN_S = 10.0  # the longest a command waits for the filter to start, and at its end
NAMES_SHOWN = 5  # names a shortened list shows


def verbose():
    """True when the environment asks for the libraries' messages (``TFPRUNE_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


class LibraryRecords(logging.Filter):
    """Drops log records below ERROR that come from the libraries' files."""

    def filter(self, record):
        return record.levelno >= logging.ERROR or not _LIBRARY_FILES.search(record.pathname or "")


_RECORDS = LibraryRecords()


def _is_ours(entry):
    return entry[0] == "ignore" and getattr(entry[3], "pattern", None) == LIBRARY_MODULES


def hide_library_warnings():
    """The libraries' Python warnings and lesser log records hidden (again: idempotent)."""
    if not any(_is_ours(entry) for entry in warnings.filters):
        warnings.filterwarnings("ignore", module=LIBRARY_MODULES)
    logging.getLogger("tensorflow").addFilter(_RECORDS)  # added once however often it is called


def show_library_warnings():
    """Undoes ``hide_library_warnings``; True when they were hidden."""
    hidden = [entry for entry in warnings.filters if _is_ours(entry)]
    warnings.filters[:] = [entry for entry in warnings.filters if not _is_ours(entry)]
    getattr(warnings, "_filters_mutated", lambda: None)()  # the warnings module's caches
    logging.getLogger("tensorflow").removeFilter(_RECORDS)
    return bool(hidden)


@contextlib.contextmanager
def command(verbose_flag=False, loggers=()):
    """Where a command runs: with ``verbose_flag`` or ``TFPRUNE_VERBOSE=1``, everything shown
    (the variable set for the processes it starts); else the libraries' warnings and records
    (also those of ``loggers``) hidden and fd 2 filtered. The state before is restored after."""
    loud = verbose_flag or verbose()
    before = os.environ.get(VERBOSE_VARIABLE)
    hidden = False
    if loud:
        os.environ[VERBOSE_VARIABLE] = "1"
        hidden = show_library_warnings()
    else:
        hide_library_warnings()
        for logger in loggers:
            logger.addFilter(_RECORDS)
    try:
        with contextlib.nullcontext() if loud else filtered_stderr():
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(_RECORDS)
        if before is None:
            os.environ.pop(VERBOSE_VARIABLE, None)
        else:
            os.environ[VERBOSE_VARIABLE] = before
        if hidden:
            hide_library_warnings()


@contextlib.contextmanager
def filtered_stderr():
    """fd 2 through a filter process dropping the ``NOISE`` lines (POSIX; elsewhere, and when
    the process does not start and say so, fd 2 is left as it is). On the way out, a token
    written after the command's last byte comes back from the filter once everything before it
    is written (processes the command started and that still hold fd 2, such as
    multiprocessing's resource tracker, are served on: the filter ends after the last one)."""
    import subprocess

    if os.name != "posix":
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (closed by the caller): nothing to filter
        yield
        return
    done_read, done_write = os.pipe()
    token = f"<tfprune:{os.urandom(8).hex()}:drained>"
    try:
        filter_process = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), "--filter-stderr",
             str(done_write), token], stdin=subprocess.PIPE, stdout=saved, stderr=saved,
            pass_fds=(done_write,), start_new_session=True)
    except OSError:
        filter_process = None
    os.close(done_write)
    if filter_process is not None and not _reads(done_read, b"r"):  # it did not start
        filter_process.kill()
        filter_process.stdin.close()
        filter_process.wait()
        filter_process = None
    if filter_process is None:
        for fd in (saved, done_read):
            os.close(fd)
        yield
        return
    os.dup2(filter_process.stdin.fileno(), 2)
    filter_process.stdin.close()  # its write end is fd 2 now (and the children's fd 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        try:
            os.write(2, token.encode() + b"\n")
            _reads(done_read, b".")  # the filter has written everything before the token
        except OSError:
            pass  # the filter is gone
        os.dup2(saved, 2)
        for fd in (saved, done_read):
            os.close(fd)
        try:
            filter_process.wait(0.2)  # at once, unless a process started here still holds fd 2
        except subprocess.TimeoutExpired:
            pass


def _reads(fd, expected):
    """True when ``expected`` (one byte) comes from ``fd`` within DRAIN_S seconds."""
    readable, _, _ = select.select([fd], [], [], DRAIN_S)
    return bool(readable) and os.read(fd, 1) == expected


def forward(source, target, noise=NOISE, hold_s=HOLD_S, clock=time.monotonic, token=None,
            drained=None):
    """Copy fd ``source`` to fd ``target`` until end of file, dropping whole lines that
    ``noise`` matches. A line is written as soon as it cannot be noise: at once when it starts
    with another character than a noise line does, else at its end or after ``hold_s``.
    ``token`` followed by a newline is not copied: everything before it is written, then
    ``drained()`` is called (another writer's unfinished line before it goes on as before)."""
    token = token.encode() if token else None
    pending = b""  # the start of a line not written yet
    through = False  # the current line's start was written: the rest follows as it comes
    held_since = None
    while True:
        wait = None if not pending else max(0.0, held_since + hold_s - clock())
        readable, _, _ = select.select([source], [], [], wait)
        data = os.read(source, 1 << 16) if readable else b""
        if readable and not data:
            break
        pending += data
        out = []
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if token and line.endswith(token):
                rest = line[:-len(token)]  # another writer's unfinished line (the newline
                if rest and (through or rest[:1] not in b"IWE"):  # was the token's)
                    out.append(rest)
                    rest, through = b"", True
                _write(target, b"".join(out))
                out = []
                drained()
                pending = rest + pending
                continue
            if through or not noise.match(line.decode("utf-8", "replace")):
                out.append(line + b"\n")
            through, held_since = False, None
        if pending and (through or pending[:1] not in b"IWE" or
                        (held_since is not None and clock() - held_since >= hold_s)):
            out.append(pending)
            pending, through, held_since = b"", True, None
        elif pending and held_since is None:
            held_since = clock()
        _write(target, b"".join(out))
    if pending and (through or not noise.match(pending.decode("utf-8", "replace"))):
        _write(target, pending)


def _write(fd, data):
    while data:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:  # a non-blocking fd that is full: wait until it takes more
            select.select([], [fd], [], DRAIN_S)
        except OSError:
            return  # the terminal or file is gone: the lines are dropped, the pipe still read


def names(items, where=None, shown=NAMES_SHOWN, what="layers"):
    """``items`` joined with ", " for a log line; a longer list than ``shown`` + 3 as its first
    ``shown`` and "... (N layers; all in WHERE)"."""
    items = list(items)
    if len(items) <= shown + 3:
        return ", ".join(items)
    return (", ".join(items[:shown]) + f", ... ({len(items)} {what}"
            + (f"; all in {where})" if where else ")"))


def _filter_main(done_fd, token):
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command reports Ctrl-C; this reads on
    _write(done_fd, b"r")  # started: the command's fd 2 can be this pipe
    forward(0, 1, token=token, drained=lambda: _write(done_fd, b"."))


if __name__ == "__main__" and sys.argv[1:2] == ["--filter-stderr"]:
    _filter_main(int(sys.argv[2]), sys.argv[3])
