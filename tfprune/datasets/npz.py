"""Your own arrays: ``--dataset=npz:PATH``, a NumPy archive holding x_train and y_train, and
optionally x_test / y_test and x_val / y_val (images (N, H, W) or (N, H, W, C), uint8 or float;
integer labels). Input shape and class count are read from the file; missing splits are cut from
the training set as for the built-in data sets."""

import os
import zipfile

import numpy as np

from tfprune.datasets.base import DatasetSpec, Splits, check_arrays
from tfprune.errors import TfpruneError

PREFIX = "npz:"
REQUIRED = ("x_train", "y_train")
OPTIONAL = ("x_test", "y_test", "x_val", "y_val")


def _open(path):
    if not os.path.isfile(path):
        raise TfpruneError(f"`dataset` npz:{path} names no file")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise TfpruneError(f"{path!r} is not a NumPy .npz archive: {err}") from None


def read(path):
    """{name: array} of the archive's arrays, checked for the keys it must hold."""
    with _open(path) as archive:
        keys = set(archive.files)
        missing = [k for k in REQUIRED if k not in keys]
        unknown = sorted(keys - set(REQUIRED) - set(OPTIONAL))
        if missing or unknown:
            raise TfpruneError(
                f"npz file {path!r} must hold arrays x_train and y_train (and optionally "
                f"x_test, y_test, x_val, y_val); found: {', '.join(sorted(keys)) or 'nothing'}")
        return {k: archive[k] for k in keys}


def spec(path):
    """A DatasetSpec for the archive, its shape and classes read from the file."""
    arrays = read(path)
    x, y = check_arrays(arrays["x_train"], arrays["y_train"], "x_train", "y_train", path)
    labels = [y] + [np.asarray(arrays[k]).reshape(-1) for k in ("y_test", "y_val") if k in arrays]
    classes = int(max(int(np.max(l)) for l in labels if len(l))) + 1
    return DatasetSpec(
        name=PREFIX + path, input_shape=tuple(int(d) for d in x.shape[1:]), num_classes=classes,
        description=f"arrays from {path}", loader=loader,
        augmentation="shift" if x.shape[1] >= 8 else "none")


def loader(spec_, data_dir, validation_fraction, split_seed):
    del data_dir
    path = spec_.name[len(PREFIX):]
    arrays = read(path)
    return Splits.from_arrays(arrays["x_train"], arrays["y_train"], arrays.get("x_test"),
                              arrays.get("y_test"), arrays.get("x_val"), arrays.get("y_val"),
                              validation_fraction=validation_fraction, split_seed=split_seed,
                              source=path, num_classes=spec_.num_classes)
