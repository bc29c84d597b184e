"""Atomic file writes and JSON.

Every result file is written to a temporary file in the same directory and renamed into place,
so an interrupted run never leaves a half-written file and a rerun can trust what it finds.
"""

import contextlib
import json
import os
import tempfile

import numpy as np


# ``atomic_path``'s temporary files are ".<name>.<random>.tmp<suffix>"; TEMP_PATTERN matches them
# (a glob): a copier of a directory another process is writing leaves them out, since each is
# either renamed into place or removed in a moment.
_TEMP_SUFFIX = ".tmp"
TEMP_PATTERN = ".*" + _TEMP_SUFFIX + "*"


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
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                               suffix=_TEMP_SUFFIX + suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
