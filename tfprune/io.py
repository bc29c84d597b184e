"""Atomic file writes and JSON, and the temporary files and directories a process has in flight.

Every result file is written to a temporary file in the same directory and renamed into place,
so an interrupted run never leaves a half-written file and a rerun can trust what it finds.
Each temporary path is registered while it exists (``in_flight``): a process that is ending
without unwinding (tfprune/lifeline.py: its parent died, SIGTERM) removes them with
``remove_in_flight``, which skips the ``finally`` blocks that normally do.
"""

import contextlib
import json
import os
import shutil
import tempfile
import threading

import numpy as np


# ``atomic_path``'s temporary files are ".<name>.<random>.tmp<suffix>"; TEMP_PATTERN matches them
# (a glob): a copier of a directory another process is writing leaves them out, since each is
# either renamed into place or removed in a moment.
_TEMP_SUFFIX = ".tmp"
TEMP_PATTERN = ".*" + _TEMP_SUFFIX + "*"


# The temporary paths this process has created and not yet renamed or removed. The lock is held
# while one is created, so ``remove_in_flight`` (another thread) cannot miss one half-made.
_IN_FLIGHT = set()
_IN_FLIGHT_LOCK = threading.Lock()


def _register(make):
    """``make()`` -> a new temporary path, registered; under the lock (after
    ``remove_in_flight`` it blocks: the process is ending, nothing new may be written)."""
    with _IN_FLIGHT_LOCK:
        path = make()
        _IN_FLIGHT.add(path)
        return path


def _remove(path):
    """Remove a temporary file or directory of this process (gone already: nothing to do),
    then forget it: removed first, so a process that ends meanwhile (``remove_in_flight``)
    still finds it in the registry and removes the rest."""
    _delete(path, FileNotFoundError)
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT.discard(path)


def _delete(path, ignored):
    """Delete a temporary file, or directory tree, ignoring ``ignored`` errors for a file."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(ignored):
            os.remove(path)


def in_flight():
    """The temporary paths this process holds now (sorted)."""
    with _IN_FLIGHT_LOCK:
        return sorted(_IN_FLIGHT)


def remove_in_flight():
    """Remove every temporary path this process holds, for a process that is about to end
    without unwinding; return them. The registry stays locked: a thread that goes on writing
    blocks in its next ``atomic_path`` / ``temp_dir`` instead of leaving a new partial file."""
    _IN_FLIGHT_LOCK.acquire()
    paths = sorted(_IN_FLIGHT)
    for path in paths:
        _delete(path, OSError)
    _IN_FLIGHT.clear()
    return paths


def temp_dir(prefix):
    """A new temporary directory (``tempfile.mkdtemp``), in flight until ``remove_temp``."""
    return _register(lambda: tempfile.mkdtemp(prefix=prefix))


def remove_temp(path):
    """Remove a path from ``temp_dir`` and forget it."""
    _remove(path)


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "__fspath__"):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def file_mode():
    """The mode a plain open() would give a new file: 0666 less the process's umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds.

    ``suffix`` keeps an extension some writers insist on (Keras wants ``.keras``). The file gets
    the user's umask (mkstemp's own 0600 would hide results from colleagues).
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)

    def make():
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                   suffix=_TEMP_SUFFIX + suffix, dir=directory)
        os.close(fd)
        return tmp

    tmp = _register(make)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def to_jsonable(obj):
    """Round-trip through JSON so configs compare equal to what was written."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))
