"""Run directories: config.json first, a marker file last, resume or refuse.

Only the jobs layer knows about run directories; the library below it is handed paths.
"""

import os

from tfprune.errors import RunDirectoryError
from tfprune.io import read_json, to_jsonable, write_json


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
