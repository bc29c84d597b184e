"""MNIST and Fashion-MNIST from the original IDX gzip files wherever a user has them.

Looked for, in this order (the first place that has all four files wins):

1. ``data_dir``: the IDX files themselves, or in a subfolder named after the data set
   (``fashion-mnist/``, ``fashion_mnist/``, ``mnist/``); a prepared tfds directory there is read
   with tfds;
2. the Keras cache, where ``keras.datasets`` puts them: ``$KERAS_HOME`` or ``~/.keras``, under
   ``datasets/fashion-mnist/`` (IDX files) and ``datasets/mnist.npz``;
3. the system directory of Debian's packages: ``/usr/share/datasets/fashion-mnist/``
   (``apt-get install dataset-fashion-mnist``).

The 10,000 test images are the test split; the validation split is cut from the 60,000 training
images, stratified and seeded.
"""

import os

import numpy as np

from tfprune.datasets import idx
from tfprune.datasets.base import Splits
from tfprune.errors import DatasetNotAvailableError

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SYSTEM_DIR = "/usr/share/datasets"
_FOLDERS = {"fashion_mnist": ("fashion-mnist", "fashion_mnist"), "mnist": ("mnist",)}
_HOW = {
    "fashion_mnist": ("`apt-get install dataset-fashion-mnist` (Debian; `make data` runs it), "
                      "`keras.datasets.fashion_mnist.load_data()` on a machine with network "
                      "(then copy ~/.keras/datasets/fashion-mnist/ here)"),
    "mnist": ("`keras.datasets.mnist.load_data()` on a machine with network (then copy "
              "~/.keras/datasets/mnist.npz here)"),
}


def keras_cache():
    return os.path.join(os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"), "datasets")


def candidates(name, data_dir=None):
    """[(kind, path)] in search order; kind is 'idx' (a folder of IDX files), 'npz' or 'tfds'."""
    folders = _FOLDERS[name]
    places = []
    if data_dir:
        places.append(("idx", data_dir))
        places += [("idx", os.path.join(data_dir, f)) for f in folders]
        places.append(("tfds", os.path.join(data_dir, name)))
    cache = keras_cache()
    places += [("idx", os.path.join(cache, f)) for f in folders[:1]]
    if name == "mnist":
        places.append(("npz", os.path.join(cache, "mnist.npz")))
    places += [("idx", os.path.join(SYSTEM_DIR, f)) for f in folders[:1]]
    return places


def _found(kind, path):
    if kind == "idx":
        return all(os.path.isfile(os.path.join(path, f)) for f in FILES)
    if kind == "npz":
        return os.path.isfile(path)
    return os.path.isdir(path) and any(os.scandir(path))


def locate(name, data_dir=None):
    """(kind, path) of the first place holding the data set, or a DatasetNotAvailableError that
    lists every place looked at and how to fill one."""
    places = candidates(name, data_dir)
    for kind, path in places:
        if _found(kind, path):
            return kind, path
    looked = "; ".join(f"{path} ({'the four IDX .gz files' if kind == 'idx' else kind})"
                       for kind, path in places)
    raise DatasetNotAvailableError(
        f"dataset {name!r} was not found on this machine. Looked in: {looked}. Fill one of "
        f"them: {_HOW[name]}, or `tfds.builder({name!r}, data_dir=DIR).download_and_prepare()` "
        "and pass --data_dir=DIR; or use --dataset=digits, the embedded data set that needs "
        "no download.")


def load_arrays(name, data_dir=None):
    """(x_train, y_train, x_test, y_test) as uint8 images (N, 28, 28) and labels, and where from."""
    kind, path = locate(name, data_dir)
    if kind == "npz":
        with np.load(path) as archive:
            return tuple(archive[k] for k in ("x_train", "y_train", "x_test", "y_test")), path
    if kind == "tfds":
        return None, path
    arrays = [idx.read_idx(os.path.join(path, f), expect_ndim=3 if "images" in f else 1)
              for f in FILES]
    for images, labels, split in ((arrays[0], arrays[1], "train"), (arrays[2], arrays[3], "t10k")):
        if len(images) != len(labels):
            raise DatasetNotAvailableError(
                f"{path}: {split} images ({len(images)}) and labels ({len(labels)}) differ in "
                "count; the files do not belong together")
    return tuple(arrays), path


def loader(spec, data_dir, validation_fraction, split_seed):
    arrays, path = load_arrays(spec.name, data_dir)
    if arrays is None:  # a prepared tfds directory
        from tfprune.datasets import tfds

        return tfds.loader(spec, data_dir, validation_fraction, split_seed)
    x_train, y_train, x_test, y_test = arrays
    return Splits.from_arrays(x_train, y_train, x_test, y_test,
                              validation_fraction=validation_fraction, split_seed=split_seed,
                              source=path, num_classes=spec.num_classes)
