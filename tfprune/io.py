"""Atomic file writes and run directories.

Every result file is written to a temporary file in the same directory and renamed into place,
so an interrupted run never leaves a half-written file and a rerun can trust what it finds.
"""

import contextlib
import json
import os
import tempfile

import numpy as np

from tfprune.errors import RunDirectoryError


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


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds.

    ``suffix`` keeps an extension some writers insist on (Keras wants ``.keras``).
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp" + suffix,
                               dir=directory)
    os.close(fd)
    try:
        yield tmp
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


def prepare_run_dir(directory, config, overwrite=False, marker=None):
    """Create ``directory`` for a run of ``config`` (a JSON-able dict) and write config.json.

    Returns True when the directory already holds this same configuration (a rerun that may
    resume or skip finished work). A directory holding a different configuration is refused
    unless ``overwrite``; then its ``marker`` file (the one whose presence means "finished") is
    removed before the new config.json is written, so an interrupted overwrite can never pass
    the old run's results off as the new one's. Other results are overwritten as the run proceeds.
    """
    directory = os.fspath(directory)
    config = to_jsonable(config)
    config_path = os.path.join(directory, "config.json")
    if os.path.exists(config_path):
        previous = read_json(config_path)
        if previous == config:
            return True
        if not overwrite:
            changed = sorted(k for k in set(previous) | set(config)
                             if previous.get(k) != config.get(k))
            raise RunDirectoryError(
                f"output directory {directory!r} holds a run with a different configuration "
                f"(differs in: {', '.join(changed)}); choose another --output_dir or pass "
                "--overwrite to replace it"
            )
    elif os.path.isdir(directory) and os.listdir(directory) and not overwrite:
        raise RunDirectoryError(
            f"output directory {directory!r} is not empty and holds no tfprune config.json; "
            "choose another --output_dir or pass --overwrite"
        )
    os.makedirs(directory, exist_ok=True)
    if marker and os.path.exists(os.path.join(directory, marker)):
        os.remove(os.path.join(directory, marker))
    write_json(config_path, config)
    return False
