"""Run directories: config.json first, a marker file last, resume or refuse.

Only the jobs layer knows about run directories; the library below it is handed paths. Files
inside a run refer to each other by relative path (``inside`` / ``resolve``), so a run directory
can be copied or moved and still be resumed or reused. A running job holds the directory's
lock (jobs/runlock.py), the file ``LOCK_FILE``, which is no part of the run: it is kept when the
directory is emptied and not counted as content.
"""

import os
import shutil

from tfprune.errors import RunDirectoryError
from tfprune.io import read_json, to_jsonable, write_json

LOCK_FILE = ".tfprune.lock"


def inside(directory, path):
    """``path`` as written into ``directory``'s own files: relative to it when it lies inside,
    so the run directory can be copied or moved (absolute otherwise: an input from elsewhere)."""
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(directory))
    return path if relative.startswith(os.pardir) else relative


def resolve(directory, path):
    """A path read from ``directory``'s files, made usable: relative ones are under it."""
    return os.path.join(directory, path) if path is not None else None


def read_marker(path, log=None, matches=None):
    """The JSON of a finished marker (metrics.json, variant.json), or None when the run is not
    finished: missing, or damaged (does not parse, or ``matches`` rejects it), which is
    reported by path through ``log`` and means the work is done again."""
    if not os.path.exists(path):
        return None
    try:
        value = read_json(path)
        if not isinstance(value, dict) or (matches is not None and not matches(value)):
            raise ValueError("it does not match this run's configuration")
        return value
    except (OSError, ValueError) as e:
        if log:
            log(f"{path} is damaged ({str(e).splitlines()[0]}); doing that work again")
        return None


def check_output_dir(directory):
    """A RunDirectoryError, before any work, when ``directory`` cannot be a run directory."""
    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise RunDirectoryError(f"output directory {directory!r} is a file; choose a directory")
    parent = directory
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    parent = parent or "."
    if not os.path.isdir(parent):
        raise RunDirectoryError(f"output directory {directory!r} lies under {parent!r}, which is "
                                "a file; choose a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirectoryError(f"output directory {directory!r}: {parent!r} is not writable "
                                "(permission denied); choose a writable directory")


def _contents(directory):
    """The names in ``directory`` that belong to a run (all but the lock file)."""
    return [name for name in os.listdir(directory) if name != LOCK_FILE]


def _clear(directory, config_path):
    """Empty a tfprune run directory (its lock file kept): config.json first, so an interrupted
    clearing leaves a directory that claims no configuration (an unfinished run), never a mix
    of two."""
    os.remove(config_path)
    for name in _contents(directory):
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _resolved(config):
    """A config.json's resolved fields that hold a value: what was asked ("asked",
    configs/base.py) does not make a different run when it resolves to the same values, and a
    field that is None (unset, or not applying) is as good as absent, so an option added since
    a run was made, None for it, leaves it the same run."""
    if not isinstance(config, dict):
        return config
    return {k: v for k, v in config.items() if k != "asked" and v is not None}


def prepare_run_dir(directory, config, overwrite=False, marker=None):
    """Create ``directory`` for a run of ``config`` (a JSON-able dict) and write config.json.

    Returns True when the directory already holds this same configuration (its resolved
    fields; a config's "asked" values are recorded, not compared: a rerun that may
    resume or skip finished work). A directory holding a different configuration is refused
    unless ``overwrite``; then everything in it is removed (config.json first) before the new
    config.json is written, so an interrupted overwrite can never pass the old run's results
    off as the new one's. A non-empty directory without config.json is not a tfprune run: it
    is refused unless ``overwrite``, and then written into but not emptied. ``marker`` (the
    file whose presence means "finished") is removed in that case.
    """
    directory = os.fspath(directory)
    check_output_dir(directory)
    config = to_jsonable(config)
    config_path = os.path.join(directory, "config.json")
    if os.path.exists(config_path):
        try:
            previous = read_json(config_path)
        except ValueError as e:
            previous = e
        if _resolved(previous) == _resolved(config):
            return True
        if not overwrite:
            if isinstance(previous, Exception):
                raise RunDirectoryError(
                    f"{config_path} is damaged ({str(previous).splitlines()[0]}): the directory's "
                    "configuration is unknown; choose another --output_dir or pass --overwrite "
                    "to replace it")
            previous, ours = _resolved(previous), _resolved(config)
            changed = sorted(k for k in set(previous) | set(ours)
                             if previous.get(k) != ours.get(k))
            raise RunDirectoryError(
                f"output directory {directory!r} holds a run with a different configuration "
                f"(differs in: {', '.join(changed)}); choose another --output_dir or pass "
                "--overwrite to replace it"
            )
        _clear(directory, config_path)
    elif os.path.isdir(directory) and _contents(directory) and not overwrite:
        raise RunDirectoryError(
            f"output directory {directory!r} is not empty and holds no tfprune config.json; "
            "choose another --output_dir or pass --overwrite"
        )
    os.makedirs(directory, exist_ok=True)
    if marker and os.path.exists(os.path.join(directory, marker)):
        os.remove(os.path.join(directory, marker))
    write_json(config_path, config)
    return False
